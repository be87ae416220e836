"""PPO pieces against hand-derived values: GAE, the clipped losses, the trust-region diagnostics, PFO in the update."""

import math
from dataclasses import replace

import pytest
import torch

from repdyn.methods.pfo import PFOConfig
from repdyn.methods.ppo import PPO, Batch, PPOConfig, clipped_surrogate, compute_gae, value_loss

TINY = PPOConfig(total_timesteps=64, num_envs=2, num_steps=16, num_minibatches=2, update_epochs=2)



def test_gae_matches_a_hand_computed_trajectory():
    # One environment, T = 3; obs[2] starts a new episode (dones[2] = 1), the rollout bootstraps from 0.2.
    rewards = torch.tensor([[1.0], [1.0], [1.0]])
    values = torch.tensor([[0.5], [0.4], [0.3]])
    dones = torch.tensor([[0.0], [0.0], [1.0]])
    gamma, lam = 0.9, 0.8
    # t=2: delta = 1 + 0.9*0.2 - 0.3 = 0.88; A2 = 0.88
    # t=1: the episode ends after step 1 -> delta = 1 - 0.4 = 0.6; A1 = 0.6
    # t=0: delta = 1 + 0.9*0.4 - 0.5 = 0.86; A0 = 0.86 + 0.9*0.8*0.6 = 1.292
    adv, ret = compute_gae(rewards, values, dones, torch.tensor([0.2]), torch.tensor([0.0]), gamma, lam)
    assert adv.squeeze(1).tolist() == pytest.approx([1.292, 0.6, 0.88])
    assert ret.squeeze(1).tolist() == pytest.approx([1.792, 1.0, 1.18])
    # A terminal last step does not bootstrap: delta2 = 1 - 0.3.
    adv, _ = compute_gae(rewards, values, dones, torch.tensor([0.2]), torch.tensor([1.0]), gamma, lam)
    assert adv[2, 0].item() == pytest.approx(0.7)


def test_gae_treats_each_environment_separately():
    rewards = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    values = torch.zeros(2, 2)
    adv, _ = compute_gae(rewards, values, torch.zeros(2, 2), torch.zeros(2), torch.zeros(2), 0.5, 1.0)
    # env 0: A1 = 0, A0 = 1; env 1: A1 = 2, A0 = 0 + 0.5 * 2 = 1
    assert adv.flatten().tolist() == pytest.approx([1.0, 1.0, 0.0, 2.0])


def test_clipped_surrogate_on_hand_set_log_probabilities():
    ratios = torch.tensor([0.7, 0.7, 1.25, 1.25, 1.0])
    advantages = torch.tensor([1.0, -1.0, 1.0, -1.0, 2.0])
    logp_new = ratios.log().requires_grad_()
    loss = clipped_surrogate(logp_new, torch.zeros(5), advantages, clip_coef=0.2)
    # max(-A r, -A clip(r, 0.8, 1.2)) per sample
    assert loss.tolist() == pytest.approx([-0.7, 0.8, -1.2, 1.25, -2.0])
    loss.sum().backward()
    # d/dlogp of -A r is -A r where the unclipped term wins, 0 where the clipped constant wins.
    assert logp_new.grad.tolist() == pytest.approx([-0.7, 0.0, 0.0, 1.25, -2.0])


def test_value_loss_clipped_and_unclipped():
    new, old, returns = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 0.0]), torch.tensor([2.0, 1.0])
    # unclipped: 0.5 * mean((1-2)^2, (0-1)^2) = 0.5
    assert value_loss(new, old, returns, 0.2, clipped=False).item() == pytest.approx(0.5)
    # clipped prediction of sample 0 is 0.2 -> (0.2-2)^2 = 3.24 > 1; sample 1: max(1, 1) = 1 -> 0.5 * mean(3.24, 1)
    assert value_loss(new, old, returns, 0.2, clipped=True).item() == pytest.approx(0.5 * (3.24 + 1) / 2)


def _hand_set_batch(ppo: PPO, ratios: list[float]) -> Batch:
    """A batch whose stored log-probabilities make the current policy's ratios exactly `ratios`."""
    n = len(ratios)
    obs = torch.randn(n, 4, generator=torch.Generator().manual_seed(0))
    actions = torch.tensor([0, 1] * (n // 2) + [0] * (n % 2))
    with torch.no_grad():
        logp = ppo.agent.log_prob(ppo.agent(obs).policy, actions)
    old = logp - torch.tensor(ratios).log()
    zeros = torch.zeros(n)
    return Batch(obs, actions, old, zeros, zeros, zeros, ppo.agent(obs).actor_pre[-1].detach())


def test_trust_region_diagnostics_on_hand_set_log_probabilities():
    ppo = PPO(TINY, seed=0)
    try:
        metrics = ppo.diagnose(_hand_set_batch(ppo, [0.7, 1.0, 1.25]), ranks=False)
    finally:
        ppo.close()
    assert metrics["trust/frac_outside"] == pytest.approx(2 / 3)
    assert metrics["trust/frac_above"] == pytest.approx(1 / 3)
    assert metrics["trust/mean_above"] == pytest.approx(1.25, rel=1e-5)
    assert metrics["trust/max_above"] == pytest.approx(1.25, rel=1e-5)
    assert metrics["trust/min_below"] == pytest.approx(0.7, rel=1e-5)
    expected_kl = sum((r - 1) - math.log(r) for r in [0.7, 1.0, 1.25]) / 3
    assert metrics["trust/approx_kl"] == pytest.approx(expected_kl, rel=1e-4)
    assert metrics["actor/feature_change"] == pytest.approx(0.0, abs=1e-12)  # features unchanged


def _one_update(pfo: PFOConfig, num_minibatches: int) -> dict[str, torch.Tensor]:
    cfg = replace(TINY, update_epochs=1, num_minibatches=num_minibatches, pfo=pfo)
    ppo = PPO(cfg, seed=3)
    try:
        ppo.reset_envs(0)
        ppo.collect()
        stats = ppo.update(ppo.batch())
        return {**{k: v.clone() for k, v in ppo.agent.state_dict().items()}, "pfo": torch.tensor(stats["losses/pfo_distance"])}
    finally:
        ppo.close()


def test_pfo_is_zero_while_features_have_not_moved():
    # One minibatch step: the policy still equals the one that recorded phi_old, so PFO adds nothing.
    base, pfo = _one_update(PFOConfig(), 1), _one_update(PFOConfig(coef=10.0), 1)
    assert pfo["pfo"].item() == 0.0
    for name in base:
        assert torch.equal(base[name], pfo[name]), name
    # With a second minibatch the features have moved and the regulariser changes the step.
    base, pfo = _one_update(PFOConfig(), 2), _one_update(PFOConfig(coef=10.0), 2)
    assert pfo["pfo"].item() > 0
    assert not torch.equal(base["actor_trunk.layers.0.weight"], pfo["actor_trunk.layers.0.weight"])


def test_training_is_deterministic_per_seed_and_differs_across_seeds():
    def run(seed: int) -> list[dict[str, float]]:
        ppo = PPO(replace(TINY, total_timesteps=96), seed=seed)
        try:
            ppo.reset_envs(0)
            return [ppo.iterate(u) for u in range(3)]
        finally:
            ppo.close()

    a, b, c = run(5), run(5), run(6)
    assert a == b
    assert a != c
