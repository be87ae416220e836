"""Unit-activity metrics: dormant, dead, active and linearised units (probes.md §3).

Inputs are activations `[n, d]` (samples x units) or conv maps `[n, d, *spatial]`, which are
averaged over batch and spatial dimensions as ReDo does. Each function returns the *fraction*
of units; the `*_mask` variants return the per-unit boolean mask that interventions need.
"""

from __future__ import annotations

import torch
from torch import Tensor


def _per_unit_abs_mean(activations: Tensor) -> Tensor:
    """Mean |a| per unit, averaging over the batch and any spatial dimensions."""
    a = activations.abs().float()
    dims = [0, *range(2, a.ndim)]
    return a.mean(dim=dims)


def redo_scores(activations: Tensor) -> Tensor:
    """ReDo neuron scores s_i = mean|a_i| / (mean over units of mean|a_k| + 1e-9); scale-invariant."""
    unit_mean = _per_unit_abs_mean(activations)
    return unit_mean / (unit_mean.mean() + 1e-9)


def dormant_mask(activations: Tensor, tau: float = 0.0) -> Tensor:
    """ReDo dormant units: score s_i <= tau (tau = 0 means exactly zero on the batch)."""
    return redo_scores(activations) <= tau


def dormant_fraction(activations: Tensor, tau: float = 0.0) -> float:
    """Fraction of ReDo-dormant units (Sokar et al. 2023); common tau: 0, 0.025, 0.1."""
    return dormant_mask(activations, tau).float().mean().item()


def dead_mask(activations: Tensor, kind: str = "relu") -> Tensor:
    """Units that never respond on the batch, per activation kind (CLAIRE's definition).

    relu: zero on every sample; leaky_relu: negative on every sample; tanh (or any smooth
    unit): standard deviation over the batch below 1e-3.
    """
    a = activations.float().flatten(2) if activations.ndim > 2 else activations.float().unsqueeze(-1)
    if kind == "relu":
        return (a == 0).all(dim=2).all(dim=0)
    if kind == "leaky_relu":
        return (a < 0).all(dim=2).all(dim=0)
    if kind == "tanh":
        return a.transpose(0, 1).reshape(a.shape[1], -1).std(dim=1) < 1e-3
    raise ValueError(f"unknown activation kind {kind!r}; expected relu, leaky_relu or tanh")


def dead_fraction(activations: Tensor, kind: str = "relu") -> float:
    """Fraction of dead units (see `dead_mask`)."""
    return dead_mask(activations, kind).float().mean().item()


def active_fraction(activations: Tensor, kind: str = "relu") -> float:
    """Plasticine's fraction of active units (FAU): mean over entries of being active.

    relu: a != 0; tanh: |a| <= 0.99 (saturated entries count as inactive).
    """
    a = activations.float()
    if kind == "relu":
        return (a != 0).float().mean().item()
    if kind == "tanh":
        return (a.abs() <= 0.99).float().mean().item()
    raise ValueError(f"unknown activation kind {kind!r}; expected relu or tanh")


def lop_dormant_fraction(activations: Tensor, threshold: float = 0.01) -> float:
    """Dohare et al. (loss of plasticity) dormant units: non-zero on < `threshold` of samples."""
    a = activations.float()
    nonzero = (a != 0).float().mean(dim=[0, *range(2, a.ndim)])
    return (nonzero < threshold).float().mean().item()


def linearised_mask(preactivations: Tensor, kind: str = "relu", std_threshold: float = 1e-3) -> Tensor:
    """Linearised ("zombie") units (Lyle et al. 2024): the nonlinearity acts as a linear map.

    relu: the pre-activation is strictly positive on every sample (the unit is the identity);
    smooth units: the pre-activation's standard deviation is below `std_threshold`, so the unit
    sees an almost constant input and its local linearisation is exact. No threshold is given by
    the paper; 1e-3 matches the dead-tanh criterion above.
    """
    z = preactivations.float()
    if z.ndim > 2:
        z = z.transpose(0, 1).reshape(z.shape[1], -1).T
    if kind == "relu":
        return (z > 0).all(dim=0)
    return z.std(dim=0) < std_threshold


def linearised_fraction(preactivations: Tensor, kind: str = "relu") -> float:
    """Fraction of linearised units (see `linearised_mask`)."""
    return linearised_mask(preactivations, kind).float().mean().item()
