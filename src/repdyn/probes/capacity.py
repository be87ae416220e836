"""Capacity-loss probe (probes.md §6, Lyle et al. 2022): how well can a network still fit new targets?

A copy of the network is trained for a fixed budget to reproduce the outputs of a freshly
initialised network of the same class on a fixed dataset; a network that lost plasticity fits
worse. The probed network itself is never modified.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

OutputFn = Callable[[nn.Module, Tensor], Tensor]


def _forward(module: nn.Module, x: Tensor) -> Tensor:
    return module(x)


@dataclass(frozen=True)
class CapacityResult:
    """Fit losses of the capacity probe: last step, mean over the budget, and the curve."""

    final_loss: float
    mean_loss: float
    curve: list[float]


def fit_loss(prediction: Tensor, target: Tensor, kind: str) -> Tensor:
    """MSE for values, or KL(target || prediction) for logits of a categorical policy."""
    if kind == "mse":
        return F.mse_loss(prediction, target)
    if kind == "kl":
        target_logp = target.log_softmax(-1)
        return (target_logp.exp() * (target_logp - prediction.log_softmax(-1))).sum(-1).mean()
    raise ValueError(f"unknown capacity loss {kind!r}; expected mse or kl")


def capacity_loss(
    model: nn.Module,
    fresh_model: nn.Module,
    inputs: Tensor,
    *,
    steps: int = 200,
    lr: float = 1e-3,
    batch_size: int = 256,
    loss: str = "mse",
    output_fn: OutputFn = _forward,
    seed: int = 0,
) -> CapacityResult:
    """Fit a copy of `model` to `fresh_model`'s outputs on `inputs` with Adam for `steps` steps."""
    learner = copy.deepcopy(model).train()
    with torch.no_grad():
        targets = output_fn(fresh_model, inputs).detach()
    optimizer = torch.optim.Adam(learner.parameters(), lr=lr)
    generator = torch.Generator().manual_seed(seed)
    curve = []
    for _ in range(steps):
        idx = torch.randint(0, inputs.shape[0], (min(batch_size, inputs.shape[0]),), generator=generator)
        value = fit_loss(output_fn(learner, inputs[idx]), targets[idx], loss)
        optimizer.zero_grad(set_to_none=True)
        value.backward()
        optimizer.step()
        curve.append(value.item())
    return CapacityResult(final_loss=curve[-1], mean_loss=sum(curve) / len(curve), curve=curve)
