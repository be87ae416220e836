"""Representation diagnostics: pure functions on feature tensors, and hooks for any `nn.Module`.

Each metric of probes.md exists once, under one explicit name. See `rank` for the rank metrics,
`units` for dormant/dead/active/linearised units, `norms`, `trust_region`, `capacity` and
`hooks.FeatureRecorder`.
"""

from repdyn.probes.capacity import CapacityResult, capacity_loss
from repdyn.probes.hooks import FeatureRecorder, select_modules
from repdyn.probes.norms import distance_from, feature_norm, grad_norm, prenorm, weight_norm
from repdyn.probes.rank import (
    RANK_METRICS,
    approx_rank_pca,
    effective_rank_roy,
    feature_rank_lyle,
    numerical_rank,
    numerical_rank_cov,
    rank_metrics,
    srank_kumar,
)
from repdyn.probes.trust_region import TrustRegionStats, approx_kl, clip_fraction, trust_region_stats
from repdyn.probes.units import (
    active_fraction,
    dead_fraction,
    dead_mask,
    dormant_fraction,
    dormant_mask,
    linearised_fraction,
    linearised_mask,
    lop_dormant_fraction,
    redo_scores,
)

__all__ = [
    "RANK_METRICS",
    "CapacityResult",
    "FeatureRecorder",
    "TrustRegionStats",
    "active_fraction",
    "approx_kl",
    "approx_rank_pca",
    "capacity_loss",
    "clip_fraction",
    "dead_fraction",
    "dead_mask",
    "distance_from",
    "dormant_fraction",
    "dormant_mask",
    "effective_rank_roy",
    "feature_norm",
    "feature_rank_lyle",
    "grad_norm",
    "linearised_fraction",
    "linearised_mask",
    "lop_dormant_fraction",
    "numerical_rank",
    "numerical_rank_cov",
    "prenorm",
    "rank_metrics",
    "redo_scores",
    "select_modules",
    "srank_kumar",
    "trust_region_stats",
    "weight_norm",
]
