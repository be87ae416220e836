"""Trust-region metrics of a policy update (probes.md §5).

Measured after all epochs on the whole rollout: how many probability ratios
r = pi_new(a|s) / pi_old(a|s) left the clip range [1 - eps, 1 + eps], and how far. This differs
from CleanRL's minibatch `clipfrac`, measured during the epochs; log both under distinct names.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import Tensor


@dataclass(frozen=True)
class TrustRegionStats:
    """Out-of-clip statistics of probability ratios (NaN where a side has no samples)."""

    frac_outside: float
    frac_above: float
    frac_below: float
    mean_above: float
    max_above: float
    mean_below: float
    min_below: float

    def as_dict(self, prefix: str = "") -> dict[str, float]:
        """Flat dict of the statistics, keys prefixed (e.g. `tr/frac_outside`)."""
        return {prefix + k: v for k, v in asdict(self).items()}


def trust_region_stats(logp_new: Tensor, logp_old: Tensor, clip_eps: float) -> TrustRegionStats:
    """Ratios r = exp(logp_new - logp_old) against the clip range [1 - eps, 1 + eps]."""
    ratio = (logp_new.double() - logp_old.double()).exp().flatten()
    above = ratio[ratio > 1 + clip_eps]
    below = ratio[ratio < 1 - clip_eps]
    n = max(ratio.numel(), 1)
    nan = float("nan")
    return TrustRegionStats(
        frac_outside=(above.numel() + below.numel()) / n,
        frac_above=above.numel() / n,
        frac_below=below.numel() / n,
        mean_above=above.mean().item() if above.numel() else nan,
        max_above=above.max().item() if above.numel() else nan,
        mean_below=below.mean().item() if below.numel() else nan,
        min_below=below.min().item() if below.numel() else nan,
    )


def approx_kl(logp_new: Tensor, logp_old: Tensor) -> float:
    """Low-variance estimator of KL(old || new): mean((r - 1) - log r) (Schulman's k3, as CleanRL)."""
    log_ratio = logp_new.double() - logp_old.double()
    return ((log_ratio.exp() - 1) - log_ratio).mean().item()


def clip_fraction(logp_new: Tensor, logp_old: Tensor, clip_eps: float) -> float:
    """CleanRL's `clipfrac`: fraction of |r - 1| > eps on the given (mini)batch."""
    ratio = (logp_new.double() - logp_old.double()).exp()
    return ((ratio - 1).abs() > clip_eps).double().mean().item()


