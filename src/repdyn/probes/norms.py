"""Norms of features and weights (probes.md §4)."""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import Tensor, nn


def feature_norm(features: Tensor) -> float:
    """Mean over samples of the L2 norm of each sample's features `[n, ...]` (CLAIRE)."""
    return features.float().flatten(1).norm(dim=1).mean().item()


def prenorm(preactivations: Tensor) -> float:
    """Pre-activation norm: `feature_norm` of pre-activations, the quantity that grows in PPO collapse."""
    return feature_norm(preactivations)


def weight_norm(params: nn.Module | Iterable[Tensor]) -> float:
    """sqrt(sum theta^2) over all given parameters (or all parameters of a module)."""
    tensors = params.parameters() if isinstance(params, nn.Module) else params
    total = sum(float(p.detach().double().square().sum()) for p in tensors)
    return total**0.5


def weight_norms_by_layer(module: nn.Module) -> dict[str, float]:
    """Weight norm of each parameter tensor, keyed by its qualified name."""
    return {name: p.detach().double().norm().item() for name, p in module.named_parameters()}


def distance_from(module: nn.Module, reference: dict[str, Tensor]) -> float:
    """L2 distance between a module's parameters and a saved state (e.g. its initialisation)."""
    total = 0.0
    for name, p in module.named_parameters():
        total += float((p.detach().double() - reference[name].double()).square().sum())
    return total**0.5


def grad_norm(module: nn.Module) -> float:
    """Global L2 norm of the gradients currently stored on a module's parameters."""
    grads = [p.grad.detach().double() for p in module.parameters() if p.grad is not None]
    if not grads:
        return 0.0
    return torch.stack([g.square().sum() for g in grads]).sum().sqrt().item()
