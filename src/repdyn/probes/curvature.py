"""Sharpness: the top eigenvalue of the loss Hessian by power iteration on Hessian-vector products.

Lyle et al. 2024 (plasticity.md §3, mechanism 3) track sharpness alongside parameter-norm growth.
The Hessian is never formed: each iteration costs one Hessian-vector product, a second backward
pass through the graph of the gradient (Pearlmutter's trick), so the probe runs on any model.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor


def hessian_vector_product(grads: Sequence[Tensor], params: Sequence[Tensor], vector: Sequence[Tensor]) -> list[Tensor]:
    """H v for gradients built with `create_graph=True`: d(g . v)/d(theta); unused parameters give zeros."""
    hv = torch.autograd.grad(grads, params, grad_outputs=vector, retain_graph=True, allow_unused=True)
    return [torch.zeros_like(p) if h is None else h for h, p in zip(hv, params, strict=True)]


def top_hessian_eigenvalue(
    loss_fn: Callable[[], Tensor],
    params: Sequence[Tensor],
    *,
    iters: int = 20,
    tol: float = 1e-3,
    seed: int = 0,
) -> float:
    """Eigenvalue of largest magnitude of the Hessian of `loss_fn()` w.r.t. `params` (power iteration).

    Starts from a seeded Gaussian direction and stops after `iters` products or when the Rayleigh
    quotient changes by less than `tol` (relative). For trained networks the dominant eigenvalue
    is the positive top one, the sharpness; the sign is kept so a negative dominant one shows.
    """
    params = [p for p in params if p.requires_grad]
    loss = loss_fn()
    grads = torch.autograd.grad(loss, params, create_graph=True, allow_unused=True)
    pairs = [(g, p) for g, p in zip(grads, params, strict=True) if g is not None]
    if not pairs:
        return 0.0
    grads, params = [g for g, _ in pairs], [p for _, p in pairs]
    gen = torch.Generator().manual_seed(seed)
    v = [torch.randn(p.shape, generator=gen, dtype=p.dtype).to(p.device) for p in params]
    norm = torch.sqrt(sum((x * x).sum() for x in v))
    v = [x / norm for x in v]
    eigenvalue = 0.0
    for _ in range(iters):
        hv = hessian_vector_product(grads, params, v)
        rayleigh = float(sum((a * b).sum() for a, b in zip(v, hv, strict=True)))
        norm = torch.sqrt(sum((x * x).sum() for x in hv))
        if norm == 0:
            return 0.0
        v = [x / norm for x in hv]
        converged = abs(rayleigh - eigenvalue) <= tol * abs(rayleigh)
        eigenvalue = rayleigh
        if converged:
            break
    return eigenvalue
