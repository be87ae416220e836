"""Norms, trust-region statistics and the capacity probe against hand-derived values."""

import math

import pytest
import torch
from torch import nn

from repdyn.probes import approx_kl, capacity_loss, clip_fraction, feature_norm, trust_region_stats, weight_norm
from repdyn.probes.norms import distance_from, grad_norm


def test_trust_region_hand_set_ratios():
    logp_old = torch.zeros(3)
    logp_new = torch.log(torch.tensor([0.7, 1.0, 1.25]))
    stats = trust_region_stats(logp_new, logp_old, clip_eps=0.2)
    assert stats.frac_outside == pytest.approx(2 / 3)
    assert stats.frac_above == pytest.approx(1 / 3)
    assert stats.mean_above == pytest.approx(1.25)
    assert stats.max_above == pytest.approx(1.25)
    assert stats.mean_below == pytest.approx(0.7)
    assert clip_fraction(logp_new, logp_old, 0.2) == pytest.approx(2 / 3)


def test_trust_region_empty_sides_are_nan():
    stats = trust_region_stats(torch.zeros(4), torch.zeros(4), 0.2)
    assert stats.frac_outside == 0.0 and math.isnan(stats.mean_above) and math.isnan(stats.min_below)


def test_approx_kl_estimator():
    r = torch.tensor([0.5, 2.0])
    expected = float(((r - 1) - r.log()).mean())
    assert approx_kl(r.log(), torch.zeros(2)) == pytest.approx(expected)
    assert approx_kl(torch.zeros(5), torch.zeros(5)) == 0.0


def test_norms():
    x = torch.tensor([[3.0, 4.0], [0.0, 1.0]])
    assert feature_norm(x) == pytest.approx(3.0)
    layer = nn.Linear(2, 2)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[1.0, 2.0], [2.0, 0.0]]))
        layer.bias.copy_(torch.tensor([0.0, 4.0]))
    assert weight_norm(layer) == pytest.approx(5.0)
    init = {k: torch.zeros_like(v) for k, v in layer.state_dict().items()}
    assert distance_from(layer, init) == pytest.approx(5.0)
    layer(torch.ones(1, 2)).sum().backward()
    assert grad_norm(layer) == pytest.approx(math.sqrt(4 * 1.0 + 2 * 1.0))


def test_capacity_probe_fits_a_copy_and_leaves_the_model_untouched():
    torch.manual_seed(0)
    model, fresh = nn.Linear(8, 3), nn.Linear(8, 3)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x = torch.randn(256, 8)
    result = capacity_loss(model, fresh, x, steps=300, lr=0.05, loss="mse")
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    # A linear model can represent a linear target exactly: the fit loss goes to ~0.
    assert result.final_loss < 1e-3 < result.curve[0]
    kl = capacity_loss(model, fresh, x, steps=300, lr=0.05, loss="kl")
    assert kl.final_loss < 1e-2 < kl.curve[0]
