"""Rank metrics of a feature matrix, each under one explicit name (probes.md §2).

Every function takes features `[..., n, d]` (n samples, d units) and works on batches.
"srank", "stable rank", "effective rank" and "feature rank" mean different formulas in
different codebases; here each formula has exactly one name:

| name                  | formula                                                   | source           |
|-----------------------|-----------------------------------------------------------|------------------|
| `feature_rank_lyle`   | #{i : sigma_i / sqrt(n) > eps}, uncentred                 | Lyle et al. 2022 |
| `srank_kumar`         | min k with sum_{i<=k} sigma_i >= (1 - delta) sum sigma    | Kumar et al. 2021|
| `approx_rank_pca`     | min k with sum_{i<=k} sigma_i^2 >= q sum sigma^2          | Yang et al. 2020 |
| `effective_rank_roy`  | exp(entropy of sigma / sum sigma)                         | Roy & Vetterli   |
| `numerical_rank`      | `torch.linalg.matrix_rank(features)`                      | CLAIRE           |
| `numerical_rank_cov`  | `matrix_rank(cov(features))`, data centred                | Deep Grokking    |

With n < d the metrics use the min(n, d) singular values that exist; `feature_rank_lyle`
still normalises by sqrt(n) (probes.md §1 leaves this case to the implementation).
`rank_metrics` computes several at once from one decomposition per kind (uncentred SVD,
centred covariance spectrum), which is what studies should call.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import Tensor

RANK_METRICS = (
    "feature_rank_lyle",
    "srank_kumar",
    "approx_rank_pca",
    "effective_rank_roy",
    "numerical_rank",
    "numerical_rank_cov",
)


def singular_values(features: Tensor) -> Tensor:
    """Singular values `[..., min(n, d)]` in descending order, computed in float32 or wider."""
    if features.dtype not in (torch.float32, torch.float64):
        features = features.float()
    return torch.linalg.svdvals(features)


def feature_rank_lyle_from_sv(sv: Tensor, n: int, eps: float = 0.01) -> Tensor:
    """Lyle et al. (2022) feature rank from singular values: count of sigma_i / sqrt(n) > eps."""
    return (sv / n**0.5 > eps).sum(-1)


def srank_kumar_from_sv(sv: Tensor, delta: float = 0.01) -> Tensor:
    """Kumar et al. (2021) srank: smallest k whose top-k singular values hold 1 - delta of the sum."""
    return _smallest_k_reaching(sv, 1.0 - delta)


def approx_rank_pca_from_sv(sv: Tensor, threshold: float = 0.99) -> Tensor:
    """Yang et al. (2020) approximate rank: smallest k whose top-k sigma^2 hold `threshold` of the energy."""
    return _smallest_k_reaching(sv.square(), threshold)


def effective_rank_roy_from_sv(sv: Tensor) -> Tensor:
    """Roy & Vetterli (2007) effective rank: exp of the entropy of sigma / sum(sigma), with 0 log 0 = 0."""
    p = sv / sv.sum(-1, keepdim=True).clamp_min(torch.finfo(sv.dtype).tiny)
    entropy = -torch.where(p > 0, p * p.clamp_min(torch.finfo(sv.dtype).tiny).log(), 0.0).sum(-1)
    return entropy.exp()


def numerical_rank_from_sv(sv: Tensor, n: int, d: int, dtype: torch.dtype) -> Tensor:
    """`torch.linalg.matrix_rank` from singular values: tol = sigma_max * max(n, d) * eps(dtype)."""
    tol = sv[..., :1] * max(n, d) * torch.finfo(dtype).eps
    return (sv > tol).sum(-1)


def covariance_eigenvalues(features: Tensor) -> Tensor:
    """Eigenvalues (descending) of the d x d covariance of centred features, as `torch.cov` forms it."""
    x = features if features.dtype in (torch.float32, torch.float64) else features.float()
    centred = x - x.mean(-2, keepdim=True)
    cov = centred.mT @ centred / max(x.shape[-2] - 1, 1)
    return torch.linalg.eigvalsh(cov).flip(-1).clamp_min(0.0)


def numerical_rank_cov_from_eig(eig: Tensor, d: int, dtype: torch.dtype) -> Tensor:
    """Deep Grokking's rank, `matrix_rank(cov(H.T))`, from the covariance spectrum (hermitian tol)."""
    tol = eig[..., :1] * d * torch.finfo(dtype).eps
    return (eig > tol).sum(-1)


def _smallest_k_reaching(values: Tensor, fraction: float) -> Tensor:
    """Smallest k >= 1 such that the top-k values (descending) sum to >= fraction of the total."""
    cumulative = values.cumsum(-1)
    total = cumulative[..., -1:]
    return (cumulative < fraction * total).sum(-1) + 1


def rank_metrics(
    features: Tensor,
    metrics: Iterable[str] = RANK_METRICS,
    *,
    lyle_eps: float = 0.01,
    kumar_delta: float = 0.01,
    pca_threshold: float = 0.99,
) -> dict[str, Tensor]:
    """Several rank metrics of `[..., n, d]` features sharing one decomposition of each kind.

    Returns a dict from metric name to a tensor of shape `[...]` (a 0-d tensor for one matrix).
    """
    wanted = list(metrics)
    unknown = sorted(set(wanted) - set(RANK_METRICS))
    if unknown:
        raise ValueError(f"unknown rank metric(s) {unknown}; known: {', '.join(RANK_METRICS)}")
    if features.ndim < 2:
        raise ValueError(f"features must be [..., n, d], got shape {tuple(features.shape)}")
    n, d = features.shape[-2], features.shape[-1]
    dtype = features.dtype if features.dtype in (torch.float32, torch.float64) else torch.float32
    out: dict[str, Tensor] = {}
    if any(m != "numerical_rank_cov" for m in wanted):
        sv = singular_values(features)
        formulas = {
            "feature_rank_lyle": lambda: feature_rank_lyle_from_sv(sv, n, lyle_eps),
            "srank_kumar": lambda: srank_kumar_from_sv(sv, kumar_delta),
            "approx_rank_pca": lambda: approx_rank_pca_from_sv(sv, pca_threshold),
            "effective_rank_roy": lambda: effective_rank_roy_from_sv(sv),
            "numerical_rank": lambda: numerical_rank_from_sv(sv, n, d, dtype),
        }
        out.update({m: formulas[m]() for m in wanted if m in formulas})
    if "numerical_rank_cov" in wanted:
        out["numerical_rank_cov"] = numerical_rank_cov_from_eig(covariance_eigenvalues(features), d, dtype)
    return {m: out[m] for m in wanted}


def feature_rank_lyle(features: Tensor, eps: float = 0.01) -> Tensor:
    """Lyle et al. (2022) feature rank of uncentred features; changes with their scale."""
    return rank_metrics(features, ["feature_rank_lyle"], lyle_eps=eps)["feature_rank_lyle"]


def srank_kumar(features: Tensor, delta: float = 0.01) -> Tensor:
    """Kumar et al. (2021) srank (sum of sigma, not sigma^2); invariant to scale."""
    return rank_metrics(features, ["srank_kumar"], kumar_delta=delta)["srank_kumar"]


def approx_rank_pca(features: Tensor, threshold: float = 0.99) -> Tensor:
    """Yang et al. (2020) PCA rank: components holding `threshold` of the energy; scale-invariant."""
    return rank_metrics(features, ["approx_rank_pca"], pca_threshold=threshold)["approx_rank_pca"]


def effective_rank_roy(features: Tensor) -> Tensor:
    """Roy & Vetterli (2007) effective rank; scale-invariant, real-valued."""
    return rank_metrics(features, ["effective_rank_roy"])["effective_rank_roy"]


def numerical_rank(features: Tensor) -> Tensor:
    """`torch.linalg.matrix_rank` of the (uncentred) features; tolerance depends on dtype."""
    return rank_metrics(features, ["numerical_rank"])["numerical_rank"]


def numerical_rank_cov(features: Tensor) -> Tensor:
    """Deep Grokking's feature rank: rank of the covariance of centred features; at most n - 1."""
    return rank_metrics(features, ["numerical_rank_cov"])["numerical_rank_cov"]
