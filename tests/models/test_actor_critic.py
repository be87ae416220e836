"""Actor-critic networks: distributions against torch.distributions, CleanRL's init, features, shared trunks."""

import math

import pytest
import torch
from torch.distributions import Categorical, Normal

from repdyn.models.actor_critic import ActorCritic, make_trunk


def test_categorical_log_prob_entropy_and_sampling_match_torch_distributions():
    torch.manual_seed(0)
    agent = ActorCritic((4,), 3)
    logits = torch.randn(6, 3) * 3
    actions = torch.tensor([0, 1, 2, 2, 1, 0])
    ref = Categorical(logits=logits)
    assert torch.allclose(agent.log_prob(logits, actions), ref.log_prob(actions), atol=1e-6)
    assert torch.allclose(agent.entropy(logits), ref.entropy(), atol=1e-6)
    draws = agent.sample(logits[:1].expand(20000, 3), torch.Generator().manual_seed(1))
    freq = torch.bincount(draws, minlength=3) / 20000
    assert torch.allclose(freq, ref.probs[0], atol=0.015)
    again = agent.sample(logits[:1].expand(20000, 3), torch.Generator().manual_seed(1))
    assert torch.equal(draws, again)


def test_gaussian_log_prob_and_entropy_match_torch_distributions():
    torch.manual_seed(0)
    agent = ActorCritic((5,), 2, continuous=True)
    with torch.no_grad():
        agent.actor_logstd.copy_(torch.tensor([[-0.5, 0.3]]))
    mean = torch.randn(4, 2)
    actions = torch.randn(4, 2)
    ref = Normal(mean, agent.actor_logstd.exp().expand_as(mean))
    assert torch.allclose(agent.log_prob(mean, actions), ref.log_prob(actions).sum(-1), atol=1e-5)
    assert torch.allclose(agent.entropy(mean), ref.entropy().sum(-1), atol=1e-6)
    draws = agent.sample(torch.zeros(50000, 2), torch.Generator().manual_seed(0))
    assert torch.allclose(draws.std(0), agent.actor_logstd.exp().squeeze(0).detach(), rtol=0.02)


def test_cleanrl_initialisation():
    torch.manual_seed(0)
    agent = ActorCritic((4,), 2, hidden_sizes=(64, 64))
    w = agent.actor_trunk.layers[1].weight  # 64 x 64: orthogonal with gain sqrt(2)
    assert torch.allclose(w @ w.T, 2 * torch.eye(64), atol=1e-4)
    head = agent.actor_head.weight  # 2 x 64 rows orthonormal, gain 0.01
    assert torch.allclose(head @ head.T, 1e-4 * torch.eye(2), atol=1e-8)
    value_head = agent.critic_head.weight
    assert value_head.norm().item() == pytest.approx(1.0, rel=1e-5)
    assert all(layer.bias.abs().max() == 0 for layer in agent.actor_trunk.layers)


def test_forward_exposes_preactivations_and_matches_the_stand_alone_networks():
    torch.manual_seed(0)
    agent = ActorCritic((4,), 2, activation="relu")
    x = torch.randn(7, 4)
    out = agent(x)
    first = agent.actor_trunk.layers[0]
    assert torch.allclose(out.actor_pre[0], first(x))
    assert torch.allclose(out.actor_features, torch.relu(out.actor_pre[-1]))
    assert torch.allclose(agent.policy_network()(x), out.policy)
    assert torch.allclose(agent.value_network()(x).squeeze(-1), out.value)
    assert len(out.critic_pre) == 2 and not torch.equal(out.critic_pre[-1], out.actor_pre[-1])


def test_shared_trunk_is_one_set_of_parameters():
    torch.manual_seed(0)
    separate, shared = ActorCritic((4,), 2), ActorCritic((4,), 2, shared=True)
    trunk_params = sum(p.numel() for p in shared.actor_trunk.parameters())
    total = lambda m: sum(p.numel() for p in m.parameters())
    assert total(separate) - total(shared) == trunk_params
    out = shared(torch.randn(3, 4))
    assert out.critic_features is out.actor_features
    ids = {id(p) for p in shared.actor_parameters()} & {id(p) for p in shared.critic_parameters()}
    assert len(ids) == len(list(shared.actor_trunk.parameters()))


@pytest.mark.parametrize(("kind", "shape", "width"), [("minatar_cnn", (4, 10, 10), 128),
                                                       ("nature_cnn", (4, 84, 84), 512)])
def test_cnn_trunks(kind, shape, width):
    trunk = make_trunk(kind, shape, (), "relu")
    features, pre = trunk(torch.rand(2, *shape))
    assert features.shape == (2, width) and pre[-1].shape == (2, width)
    assert pre[0].ndim == 4  # a conv map
    with pytest.raises(ValueError, match="C, H, W"):
        make_trunk(kind, (4,), (), "relu")


def test_nature_cnn_scales_pixels():
    trunk = make_trunk("nature_cnn", (4, 84, 84), (), "relu")
    x = torch.full((1, 4, 84, 84), 255.0)
    conv = trunk.layers[0]
    assert torch.allclose(trunk(x)[1][0], conv(torch.ones(1, 4, 84, 84)), atol=1e-5)
    assert math.isclose(trunk.input_scale, 1 / 255)
