"""Unit-activity metrics against the identities of probes.md §9."""

import pytest
import torch

from repdyn.probes import (
    active_fraction,
    dead_fraction,
    dead_mask,
    dormant_fraction,
    dormant_mask,
    linearised_fraction,
    lop_dormant_fraction,
    redo_scores,
)


def _half_dead():
    return torch.cat([torch.eye(32), torch.zeros(32, 32)], dim=1)


def test_padded_identity_has_half_dead_units():
    a = _half_dead()
    assert dead_fraction(a) == 0.5
    assert dormant_fraction(a, tau=0.0) == 0.5
    assert lop_dormant_fraction(a) == 0.5
    assert dead_mask(a).tolist() == [False] * 32 + [True] * 32


def test_redo_is_scale_invariant():
    a = torch.rand(100, 20, generator=torch.Generator().manual_seed(0)) * torch.linspace(0, 1, 20)
    for tau in (0.0, 0.025, 0.1, 0.5):
        assert dormant_mask(a, tau).tolist() == dormant_mask(10 * a, tau).tolist()


def test_redo_score_definition():
    a = torch.tensor([[1.0, -3.0, 0.0], [3.0, 1.0, 0.0]])
    # mean |a| per unit = [2, 2, 0]; mean over units = 4/3
    assert redo_scores(a).tolist() == pytest.approx([1.5, 1.5, 0.0], abs=1e-6)
    assert dormant_mask(a, tau=0.1).tolist() == [False, False, True]


def test_conv_maps_average_over_space():
    a = torch.zeros(4, 3, 5, 5)
    a[:, 0] = 1.0
    a[0, 1, 2, 2] = 1.0  # a single active pixel keeps unit 1 alive
    assert dead_mask(a).tolist() == [False, False, True]
    assert dormant_fraction(a, tau=0.0) == pytest.approx(1 / 3)


def test_tanh_and_leaky_relu_dead_units():
    a = torch.stack([torch.linspace(-1, 1, 50), torch.full((50,), 0.3)], dim=1)
    assert dead_mask(a, "tanh").tolist() == [False, True]
    b = torch.stack([torch.linspace(-1, 1, 50), -torch.rand(50) - 0.1], dim=1)
    assert dead_mask(b, "leaky_relu").tolist() == [False, True]


def test_active_fraction_counts_entries():
    a = torch.tensor([[0.0, 1.0], [2.0, 0.0]])
    assert active_fraction(a) == 0.5
    t = torch.tensor([[0.995, 0.2], [-0.999, 0.0]])
    assert active_fraction(t, "tanh") == 0.5


def test_linearised_relu_units():
    z = torch.stack([torch.rand(64) + 0.1, torch.randn(64), -torch.rand(64) - 0.1], dim=1)
    assert linearised_fraction(z) == pytest.approx(1 / 3)
    smooth = torch.stack([torch.full((64,), 2.0), torch.randn(64)], dim=1)
    assert linearised_fraction(smooth, kind="tanh") == 0.5
