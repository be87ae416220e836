"""PFO's regulariser and trust-region variants against their formulas (ppo_collapse.md §4, probes.md §9)."""

import pytest
import torch
import torch.nn.functional as F

from repdyn.methods.pfo import (
    block_out_of_trust,
    feature_distance,
    out_of_trust,
    pfo_loss,
    policy_preactivations,
)


def test_pfo_is_zero_when_features_do_not_change():
    phi = torch.randn(8, 5, generator=torch.Generator().manual_seed(0))
    assert pfo_loss(phi, phi.clone(), coef=1.0).item() == 0.0
    assert pfo_loss(phi, phi.clone(), coef=10.0, kind="cosine").item() == pytest.approx(0.0, abs=1e-6)


def test_pfo_equals_coef_times_mean_squared_change():
    old = torch.zeros(2, 4)
    new = torch.tensor([[1.0, 1.0, 1.0, 1.0], [2.0, 0.0, 0.0, 0.0]])
    # per sample (1/D) sum delta^2: 1.0 and 1.0 -> mean 1.0
    assert pfo_loss(new, old, coef=3.0).item() == pytest.approx(3.0)
    delta = torch.randn(6, 3, generator=torch.Generator().manual_seed(1))
    assert pfo_loss(delta, torch.zeros(6, 3), coef=0.5).item() == pytest.approx(0.5 * delta.square().mean().item())


def test_cosine_distance_is_one_minus_cosine_similarity():
    new = torch.tensor([[1.0, 0.0], [1.0, 1.0]])
    old = torch.tensor([[0.0, 1.0], [2.0, 2.0]])
    assert feature_distance(new, old, "cosine").tolist() == pytest.approx([1.0, 0.0], abs=1e-6)
    assert feature_distance(new, old, "cosine").tolist() == pytest.approx(
        (1 - F.cosine_similarity(new, old, dim=-1)).tolist())
    with pytest.raises(ValueError, match="l2 or cosine"):
        feature_distance(new, old, "l1")


def test_clip_variant_stops_the_gain_gradient_of_out_of_trust_samples_only():
    distance = torch.tensor([0.05, 0.2, 0.1])
    outside = out_of_trust(distance, limit=0.1)
    assert outside.tolist() == [False, True, False]  # strictly above the limit
    x = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
    loss = block_out_of_trust(x.square(), outside)
    assert loss.tolist() == [1.0, 4.0, 9.0]  # values unchanged
    loss.sum().backward()
    assert x.grad.tolist() == [2.0, 0.0, 6.0]


def test_last_or_all_layers():
    pre = [torch.ones(3, 2), torch.zeros(3, 4)]
    assert torch.equal(policy_preactivations(pre, "last"), pre[-1])
    assert torch.equal(policy_preactivations(pre, "all"), torch.cat(pre, dim=1))
    conv = [torch.ones(3, 2, 2, 2), torch.zeros(3, 5)]
    assert policy_preactivations(conv, "all").shape == (3, 13)
