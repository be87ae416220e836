"""Proximal Feature Optimization (PFO): a trust region on the policy's pre-activations (ppo_collapse.md §4).

    L_PFO = coef * E_s [ (1/D) sum_j (phi_theta(s)_j - phi_old(s)_j)^2 ]

phi is the pre-activation of the policy's last hidden layer ("last") or of all its hidden layers
concatenated ("all"); phi_old is recorded once per rollout, before the update epochs. Variants:
- distance `l2` (above) or `cosine` (1 - cos(phi_theta(s), phi_old(s)); same gradient as the
  reference's -cos, and zero when nothing changed);
- mode `regularize` adds coef * E[distance] to the loss; mode `clip` adds nothing but stops the
  policy-gain gradient of samples whose features left the trust region (l2 distance > limit, or
  cosine similarity < 1 - limit), as PPO's clipping does for ratios.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from repdyn.bench.config import param


@dataclass(frozen=True)
class PFOConfig:
    """Feature trust region of the policy (off at coef 0 in `regularize` mode)."""

    coef: float = param(0.0, min=0.0, help="regularisation coefficient (ppo_collapse.md §4: 1 last layer, 10 all)")
    layers: Literal["last", "all"] = param("last", help="pre-activations of the last hidden layer, or of all")
    distance: Literal["l2", "cosine"] = param("l2", help="mean squared change per unit, or 1 - cosine similarity")
    mode: Literal["regularize", "clip"] = param("regularize", help="add coef*distance, or stop the gain gradient")
    limit: float = param(0.1, min=0.0, help="trust-region limit of the clip mode (ppo_collapse.md §4: 0.1)")

    @property
    def active(self) -> bool:
        """Whether PFO changes the update at all."""
        return self.mode == "clip" or self.coef > 0


def policy_preactivations(pre: list[Tensor], layers: str) -> Tensor:
    """`[B, D]` pre-activations PFO compares: the last hidden layer's, or all hidden layers' concatenated."""
    if layers == "last":
        return pre[-1].flatten(1)
    return torch.cat([p.flatten(1) for p in pre], dim=1)


def feature_distance(new: Tensor, old: Tensor, kind: str = "l2") -> Tensor:
    """Per-sample distance `[B]` between new and old features: mean squared change, or 1 - cosine."""
    if kind == "l2":
        return (new - old).square().mean(-1)
    if kind == "cosine":
        return 1 - F.cosine_similarity(new, old, dim=-1)
    raise ValueError(f"unknown feature distance {kind!r}; expected l2 or cosine")


def out_of_trust(distance: Tensor, limit: float) -> Tensor:
    """Samples whose features left the trust region: distance > limit (for cosine: similarity < 1 - limit)."""
    return distance.detach() > limit


def pfo_loss(new: Tensor, old: Tensor, coef: float, kind: str = "l2") -> Tensor:
    """coef * mean over samples of `feature_distance(new, old)`."""
    return coef * feature_distance(new, old, kind).mean()


def block_out_of_trust(per_sample_loss: Tensor, outside: Tensor) -> Tensor:
    """Same values, but no gradient through the samples marked `outside` (the clip variant)."""
    mask = outside.to(per_sample_loss.dtype)
    return (per_sample_loss * mask).detach() + per_sample_loss * (1 - mask)
