"""Rank metrics against hand-derived identities (probes.md §9) and an independent numpy SVD."""

import numpy as np
import pytest
import torch

from repdyn.probes import (
    approx_rank_pca,
    effective_rank_roy,
    feature_rank_lyle,
    numerical_rank,
    numerical_rank_cov,
    rank_metrics,
    srank_kumar,
)


def test_identity_matrix():
    eye = torch.eye(64)
    assert effective_rank_roy(eye).item() == pytest.approx(64.0, rel=1e-5)
    assert srank_kumar(eye).item() == 64
    assert approx_rank_pca(eye).item() == 64
    assert feature_rank_lyle(eye).item() == 64  # sigma / sqrt(n) = 0.125 > 0.01
    assert numerical_rank(eye).item() == 64


def test_rank_one_matrix():
    g = torch.Generator().manual_seed(0)
    phi = torch.randn(256, 1, generator=g) @ torch.randn(1, 32, generator=g)
    ranks = rank_metrics(phi, ["effective_rank_roy", "srank_kumar", "feature_rank_lyle", "numerical_rank"])
    assert ranks["effective_rank_roy"].item() == pytest.approx(1.0, abs=1e-4)
    assert ranks["srank_kumar"].item() == 1
    assert ranks["feature_rank_lyle"].item() == 1
    assert ranks["numerical_rank"].item() == 1


def test_duplicated_columns_keep_ranks():
    g = torch.Generator().manual_seed(1)
    phi = torch.randn(200, 16, generator=g, dtype=torch.float64)
    doubled = torch.cat([phi, phi], dim=1)
    assert numerical_rank(doubled).item() == numerical_rank(phi).item() == 16
    assert feature_rank_lyle(doubled).item() == feature_rank_lyle(phi).item()
    # sigma scales by sqrt(2) uniformly, so the normalised spectrum is unchanged.
    assert effective_rank_roy(doubled).item() == pytest.approx(effective_rank_roy(phi).item(), rel=1e-9)


def test_scale_invariance_and_its_absence():
    g = torch.Generator().manual_seed(2)
    phi = torch.randn(300, 40, generator=g, dtype=torch.float64) * torch.logspace(0, -3, 40, dtype=torch.float64)
    for c in (1e-3, 7.0):
        assert effective_rank_roy(c * phi).item() == pytest.approx(effective_rank_roy(phi).item(), rel=1e-9)
        assert srank_kumar(c * phi).item() == srank_kumar(phi).item()
        assert approx_rank_pca(c * phi).item() == approx_rank_pca(phi).item()
    # Lyle's feature rank uses an absolute threshold: shrinking the features lowers it.
    assert feature_rank_lyle(1e-2 * phi).item() < feature_rank_lyle(phi).item()


def test_covariance_rank_is_capped_by_centring():
    h = torch.randn(10, 64, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    assert numerical_rank_cov(h).item() == 9
    assert numerical_rank(h).item() == 10


def test_covariance_rank_matches_the_papers_expression():
    g = torch.Generator().manual_seed(4)
    for n, d, k in [(500, 64, 20), (100, 128, 40), (1000, 32, 32)]:
        h = (torch.randn(n, k, generator=g) @ torch.randn(k, d, generator=g)).double()
        expected = torch.linalg.matrix_rank(torch.cov(h.T)).item()  # Deep Grokking's code
        assert numerical_rank_cov(h).item() == expected == min(k, n - 1)


def _numpy_reference(phi: np.ndarray) -> dict[str, float]:
    """Independent formulas on numpy's SVD (probes.md §2)."""
    n, d = phi.shape
    s = np.linalg.svd(phi, compute_uv=False)
    p = s / s.sum()
    cum = np.cumsum(s) / s.sum()
    cum2 = np.cumsum(s**2) / (s**2).sum()
    return {
        "feature_rank_lyle": float((s / np.sqrt(n) > 0.01).sum()),
        "srank_kumar": float(np.argmax(cum >= 0.99) + 1),
        "approx_rank_pca": float(np.argmax(cum2 >= 0.99) + 1),
        "effective_rank_roy": float(np.exp(-(p[p > 0] * np.log(p[p > 0])).sum())),
        "numerical_rank": float(np.linalg.matrix_rank(phi)),
    }


@pytest.mark.parametrize("seed", range(6))
def test_agrees_with_numpy_on_prescribed_spectra(seed):
    rng = np.random.default_rng(seed)
    n, d = [(256, 64), (128, 128), (40, 96)][seed % 3]
    k = min(n, d)
    # Random orthogonal factors around a spectrum with a chosen decay and an exact zero tail.
    u, _ = np.linalg.qr(rng.standard_normal((n, k)))
    v, _ = np.linalg.qr(rng.standard_normal((d, k)))
    spectrum = np.geomspace(10.0, 10.0 * 0.9 ** (k - 1), k)
    spectrum[k - k // 4 :] = 0.0
    phi = (u * spectrum) @ v.T
    ours = rank_metrics(torch.from_numpy(phi))
    reference = _numpy_reference(phi)
    for name, value in reference.items():
        assert ours[name].item() == pytest.approx(value, rel=1e-9), name
    assert ours["numerical_rank"].item() == k - k // 4


def test_batched_input_equals_per_matrix():
    x = torch.randn(3, 50, 20, generator=torch.Generator().manual_seed(5))
    batched = rank_metrics(x)
    for i in range(3):
        single = rank_metrics(x[i])
        for name in batched:
            assert batched[name][i].item() == pytest.approx(single[name].item(), rel=1e-5)


def test_unknown_metric_is_named():
    with pytest.raises(ValueError, match="stable_rank"):
        rank_metrics(torch.eye(4), ["stable_rank"])
