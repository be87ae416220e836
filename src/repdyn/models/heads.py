"""Output heads ("readouts"): how a network's raw outputs become predictions and a loss.

A readout owns no parameters; it says how many raw outputs the network needs (`out_dim`), the
training loss, and the prediction. `DistributionalReadout` is the scale-invariant head for large
regression targets (plasticity.md §5: two-hot / distributional outputs): each target is encoded
as a distribution over a fixed support of bins and learnt with cross-entropy, so gradients stay
bounded however large the target is; the prediction is the distribution's mean.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor


class Readout(ABC):
    """Maps raw network outputs to predictions and a training loss."""

    out_dim: int

    @abstractmethod
    def loss(self, out: Tensor, targets: Tensor) -> Tensor:
        """Mean training loss of raw outputs `out` against `targets`."""

    @abstractmethod
    def predict(self, out: Tensor) -> Tensor:
        """Predictions: class logits, or values `[n, dim]`."""


class ClassificationReadout(Readout):
    """Softmax cross-entropy on `num_classes` logits."""

    def __init__(self, num_classes: int) -> None:
        self.out_dim = num_classes

    def loss(self, out: Tensor, targets: Tensor) -> Tensor:
        return F.cross_entropy(out, targets)

    def predict(self, out: Tensor) -> Tensor:
        return out


class RegressionReadout(Readout):
    """Mean squared error on `dim` linear outputs."""

    def __init__(self, dim: int) -> None:
        self.out_dim = dim

    def loss(self, out: Tensor, targets: Tensor) -> Tensor:
        return F.mse_loss(out, targets)

    def predict(self, out: Tensor) -> Tensor:
        return out


def uniform_support(limit: float, bins: int) -> Tensor:
    """`bins` evenly spaced values on [-limit, limit]."""
    s = torch.linspace(-limit, limit, bins)
    return (s - s.flip(0)) / 2


def symlog_support(limit: float, bins: int) -> Tensor:
    """`bins` values evenly spaced in symlog(y) = sign(y) log(1 + |y|) on [-limit, limit]: dense near 0."""
    s = torch.linspace(-math.log1p(limit), math.log1p(limit), bins)
    s = (s - s.flip(0)) / 2  # exactly antisymmetric, so an odd number of bins has 0 in the middle
    return torch.sign(s) * torch.expm1(s.abs())


def two_hot(y: Tensor, support: Tensor) -> Tensor:
    """Two-hot encoding `[..., bins]`: mass on the two bins around y (clamped), linear in y, mean exactly y."""
    y = y.clamp(support[0], support[-1])
    upper = torch.searchsorted(support, y.contiguous(), right=True).clamp(1, len(support) - 1)
    low, high = support[upper - 1], support[upper]
    w_high = (y - low) / (high - low)
    probs = torch.zeros(*y.shape, len(support), dtype=y.dtype, device=y.device)
    probs.scatter_(-1, (upper - 1).unsqueeze(-1), (1 - w_high).unsqueeze(-1))
    probs.scatter_add_(-1, upper.unsqueeze(-1), w_high.unsqueeze(-1))
    return probs


def hl_gauss(y: Tensor, support: Tensor, sigma: float) -> Tensor:
    """HL-Gauss encoding (Imani & White 2018): a Gaussian N(y, sigma^2) integrated over each bin, renormalised.

    Bin edges lie halfway between support points; the outer edges extend half a spacing outwards.
    """
    mids = (support[1:] + support[:-1]) / 2
    edges = torch.cat([support[:1] - (mids[0] - support[0]), mids, support[-1:] + (support[-1] - mids[-1])])
    cdf = torch.special.ndtr((edges - y.unsqueeze(-1)) / sigma)
    mass = cdf[..., 1:] - cdf[..., :-1]
    return mass / mass.sum(-1, keepdim=True).clamp_min(1e-12)


class DistributionalReadout(Readout):
    """Scale-invariant regression head: per target dimension, logits over a fixed support of bins.

    `kind="twohot"` encodes targets with `two_hot`, `"hlgauss"` with `hl_gauss` (sigma =
    `sigma_ratio` x the mean bin spacing, 0.75 as recommended by Farebrother et al. 2024).
    """

    def __init__(self, dim: int, support: Tensor, kind: Literal["twohot", "hlgauss"] = "twohot",
                 sigma_ratio: float = 0.75) -> None:
        if kind not in ("twohot", "hlgauss"):
            raise ValueError(f"kind must be twohot or hlgauss, got {kind!r}")
        self.dim, self.support, self.kind = dim, support, kind
        self.sigma = sigma_ratio * float((support[-1] - support[0]) / (len(support) - 1))
        self.out_dim = dim * len(support)

    def encode(self, targets: Tensor) -> Tensor:
        """Target distributions `[n, dim, bins]` of values `[n, dim]`."""
        support = self.support.to(targets)
        return two_hot(targets, support) if self.kind == "twohot" else hl_gauss(targets, support, self.sigma)

    def _logits(self, out: Tensor) -> Tensor:
        return out.reshape(out.shape[0], self.dim, len(self.support))

    def loss(self, out: Tensor, targets: Tensor) -> Tensor:
        logp = self._logits(out).log_softmax(-1)
        return -(self.encode(targets) * logp).sum(-1).mean()

    def predict(self, out: Tensor) -> Tensor:
        return self._logits(out).softmax(-1) @ self.support.to(out)
