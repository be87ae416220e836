"""The toy in which PPO's clipping fails to keep an aliased state's ratio in the trust region (ppo_collapse.md §6).

A linear softmax policy over two actions, logits = w * s with one scalar feature s, sees two
states: x and y = alpha * x, so the feature matrix [x; y] has rank 1. Clipped PPO with a fixed
advantage A = 1 on action 1 updates the policy with SGD, alternating between x (even steps) and y
(odd steps), each step on its own ratio r_s = pi(a1|s) / pi_old(a1|s) clipped at 1 + eps. With
alpha = 3 the updates on x keep pushing y's ratio up after y's own term was clipped, so r_y ends
far above 1 + eps; with alpha = -1 the two states pull against each other and with alpha = 0 y
never moves, so r_y stays at 1.

The starting point (w, x) is the draw of the reference script (seed 1); with it the 20-step run
reproduces the fact sheet's table exactly (alpha = 3: r_x 1.10, r_y 1.25).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from repdyn.bench.config import param
from repdyn.bench.errors import ConfigError


@dataclass(frozen=True)
class ToyConfig:
    """The toy's constants (ppo_collapse.md §6)."""

    alphas: tuple[float, ...] = param((3.0, 0.0, -1.0), help="feature of y = alpha * feature of x")
    clip_eps: float = param(0.1, min=0.0, help="PPO clip epsilon (§6: 0.1)")
    lr: float = param(1.5, min=0.0, help="SGD learning rate (§6: 1.5)")
    steps: int = param(20, min=1, help="alternating updates, x first (§6: 20)")
    x: float = param(0.1163, help="feature of state x (the reference's seed-1 draw)")
    w: tuple[float, ...] = param((0.5153, -0.4414), help="initial logit weights of the two actions (seed-1 draw)")

    def validate(self) -> None:
        if len(self.w) != 2:
            raise ConfigError("w", f"needs 2 weights (one per action), got {len(self.w)}")


@dataclass(frozen=True)
class ToyTrace:
    """Ratios pi(a1|s) / pi_old(a1|s) of both states after each update (index 0: before any)."""

    alpha: float
    ratio_x: list[float]
    ratio_y: list[float]


def run_toy(alpha: float, config: ToyConfig = ToyConfig()) -> ToyTrace:
    """Alternate clipped-PPO SGD steps on x and y = alpha * x; record both ratios after every step."""
    w = torch.tensor(config.w, dtype=torch.float64, requires_grad=True)
    states = torch.tensor([config.x, alpha * config.x], dtype=torch.float64)

    def prob_a1() -> torch.Tensor:
        return torch.softmax(states[:, None] * w[None, :], dim=-1)[:, 0]

    with torch.no_grad():
        old = prob_a1()
    ratios = [[1.0, 1.0]]
    for step in range(config.steps):
        s = step % 2
        ratio = torch.softmax(states[s] * w, dim=-1)[0] / old[s]
        gain = torch.minimum(ratio, ratio.clamp(max=1 + config.clip_eps))  # advantage A = 1 > 0
        (-gain).backward()
        with torch.no_grad():
            w -= config.lr * w.grad
            w.grad = None
            ratios.append((prob_a1() / old).tolist())
    return ToyTrace(alpha, [r[0] for r in ratios], [r[1] for r in ratios])
