"""Actor-critic networks for PPO: separate or shared trunks, discrete or continuous actions.

Trunks (CleanRL's, ppo_collapse.md §2 and §7):
- `mlp`: Linear -> activation per hidden size (CleanRL's CartPole/MuJoCo: 2 x 64 tanh);
- `minatar_cnn`: 3x3 conv with 16 channels, then Linear 128 (the MinAtar baseline network);
- `nature_cnn`: the Nature-DQN CNN with 512 features (CleanRL's Atari network), inputs scaled by 1/255.

Every trunk returns its output features and the pre-activation of every layer, so PFO and the
probes get the penultimate layer's pre-activations (the quantity whose norm grows in PPO collapse)
without hooks. Weights use CleanRL's `layer_init`: orthogonal with gain sqrt(2), zero biases,
gain 0.01 for the policy head and 1 for the value head.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor, nn

TrunkKind = Literal["mlp", "minatar_cnn", "nature_cnn"]
ACTIVATIONS = {"tanh": torch.tanh, "relu": torch.relu}
_HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


def layer_init(layer: nn.Module, std: float = math.sqrt(2), bias: float = 0.0) -> nn.Module:
    """CleanRL's initialisation: orthogonal weights with gain `std`, constant bias."""
    nn.init.orthogonal_(layer.weight, std)
    nn.init.constant_(layer.bias, bias)
    return layer


class Trunk(nn.Module):
    """A stack of layers, each followed by the activation; returns (features, pre-activations per layer)."""

    def __init__(self, layers: Sequence[nn.Module], activation: str, *, input_scale: float = 1.0) -> None:
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {activation!r}; expected one of {', '.join(ACTIVATIONS)}")
        self.layers = nn.ModuleList(layers)
        self.activation = activation
        self._act = ACTIVATIONS[activation]
        self.input_scale = input_scale

    def forward(self, x: Tensor) -> tuple[Tensor, list[Tensor]]:
        if self.input_scale != 1.0:
            x = x * self.input_scale
        pre = []
        for layer in self.layers:
            if isinstance(layer, nn.Linear) and x.ndim > 2:
                x = x.flatten(1)
            z = layer(x)
            pre.append(z)
            x = self._act(z)
        return x, pre

    @property
    def out_dim(self) -> int:
        """Number of output features."""
        return self.layers[-1].out_features


def make_trunk(kind: TrunkKind, obs_shape: Sequence[int], hidden_sizes: Sequence[int], activation: str) -> Trunk:
    """Build a trunk for observations of `obs_shape` (`[D]` for mlp, `[C, H, W]` for the CNNs)."""
    if kind == "mlp":
        dims = [math.prod(obs_shape), *hidden_sizes]
        return Trunk([layer_init(nn.Linear(a, b)) for a, b in itertools.pairwise(dims)], activation)
    if len(obs_shape) != 3:
        raise ValueError(f"{kind} needs [C, H, W] observations, got shape {tuple(obs_shape)}")
    c, h, w = obs_shape
    if kind == "minatar_cnn":
        return Trunk([layer_init(nn.Conv2d(c, 16, 3)), layer_init(nn.Linear(16 * (h - 2) * (w - 2), 128))], activation)
    if kind == "nature_cnn":
        convs = [layer_init(nn.Conv2d(c, 32, 8, stride=4)), layer_init(nn.Conv2d(32, 64, 4, stride=2)),
                 layer_init(nn.Conv2d(64, 64, 3, stride=1))]
        with torch.no_grad():
            flat = nn.Sequential(*convs)(torch.zeros(1, c, h, w)).numel()
        return Trunk([*convs, layer_init(nn.Linear(flat, 512))], activation, input_scale=1 / 255)
    raise ValueError(f"unknown trunk {kind!r}; expected mlp, minatar_cnn or nature_cnn")


@dataclass
class AgentOutput:
    """One forward pass: policy parameters (logits, or action means), values, and both trunks' features."""

    policy: Tensor
    value: Tensor
    actor_features: Tensor
    actor_pre: list[Tensor]
    critic_features: Tensor
    critic_pre: list[Tensor]


class ActorCritic(nn.Module):
    """Policy and value networks: separate trunks (CleanRL's default) or one shared trunk."""

    def __init__(
        self,
        obs_shape: Sequence[int],
        action_dim: int,
        *,
        continuous: bool = False,
        trunk: TrunkKind = "mlp",
        hidden_sizes: Sequence[int] = (64, 64),
        activation: str = "tanh",
        shared: bool = False,
    ) -> None:
        super().__init__()
        self.continuous = continuous
        self.shared = shared
        self.actor_trunk = make_trunk(trunk, obs_shape, hidden_sizes, activation)
        self.critic_trunk = None if shared else make_trunk(trunk, obs_shape, hidden_sizes, activation)
        width = self.actor_trunk.out_dim
        self.actor_head = layer_init(nn.Linear(width, action_dim), std=0.01)
        self.critic_head = layer_init(nn.Linear(width, 1), std=1.0)
        self.actor_logstd = nn.Parameter(torch.zeros(1, action_dim)) if continuous else None

    def forward(self, obs: Tensor) -> AgentOutput:
        actor_features, actor_pre = self.actor_trunk(obs)
        if self.critic_trunk is None:
            critic_features, critic_pre = actor_features, actor_pre
        else:
            critic_features, critic_pre = self.critic_trunk(obs)
        policy = self.actor_head(actor_features)
        value = self.critic_head(critic_features).squeeze(-1)
        return AgentOutput(policy, value, actor_features, actor_pre, critic_features, critic_pre)

    # ---- the action distribution: categorical over logits, or diagonal Gaussian ----------------

    def sample(self, policy: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Draw one action per row of `policy`."""
        if self.continuous:
            noise = torch.randn(policy.shape, generator=generator, dtype=policy.dtype)
            return policy + self.actor_logstd.to(policy.device).exp() * noise
        # Inverse CDF: the number of cumulative probabilities below one uniform draw (cheaper than multinomial).
        cdf = policy.softmax(-1).cumsum(-1)
        u = torch.rand((policy.shape[0], 1), generator=generator, dtype=cdf.dtype)
        return (cdf < u).sum(-1).clamp_max(policy.shape[-1] - 1)

    def log_prob(self, policy: Tensor, action: Tensor) -> Tensor:
        """log pi(action | s) per row."""
        if self.continuous:
            logstd = self.actor_logstd.to(policy.device).expand_as(policy)
            z = (action - policy) * (-logstd).exp()
            return (-0.5 * z.square() - logstd - _HALF_LOG_2PI).sum(-1)
        return policy.log_softmax(-1).gather(-1, action.long().unsqueeze(-1)).squeeze(-1)

    def entropy(self, policy: Tensor) -> Tensor:
        """Entropy of pi(. | s) per row."""
        if self.continuous:
            return (self.actor_logstd + 0.5 + _HALF_LOG_2PI).sum(-1).expand(policy.shape[0])
        logp = policy.log_softmax(-1)
        return -(logp.exp() * logp).sum(-1)

    # ---- the two networks as stand-alone modules (for the capacity probe) -----------------------

    def policy_network(self) -> nn.Module:
        """obs -> policy parameters, sharing this agent's parameters."""
        return _Path(self.actor_trunk, self.actor_head)

    def value_network(self) -> nn.Module:
        """obs -> value, sharing this agent's parameters."""
        return _Path(self.critic_trunk or self.actor_trunk, self.critic_head)

    def actor_parameters(self) -> list[nn.Parameter]:
        """Parameters of the policy network (trunk, head, log-std)."""
        extra = [self.actor_logstd] if self.actor_logstd is not None else []
        return [*self.actor_trunk.parameters(), *self.actor_head.parameters(), *extra]

    def critic_parameters(self) -> list[nn.Parameter]:
        """Parameters of the value network (its trunk, shared or not, and head)."""
        return [*(self.critic_trunk or self.actor_trunk).parameters(), *self.critic_head.parameters()]


class _Path(nn.Module):
    """trunk -> head as one module (returns the head's output)."""

    def __init__(self, trunk: Trunk, head: nn.Linear) -> None:
        super().__init__()
        self.trunk = trunk
        self.head = head

    def forward(self, obs: Tensor) -> Tensor:
        return self.head(self.trunk(obs)[0])
