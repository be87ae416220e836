"""Multilayer perceptron with optional LayerNorm and an init scale, as used by grokking and plasticity.

`depth` counts Linear layers (Deep Grokking's convention: depth 4 = 3 hidden layers + output).
Layers are named `layers.0 ... layers.{depth-1}` so probes can hook them by name; with
`norm="layer"` a LayerNorm sits before each hidden nonlinearity (Lyle et al. 2024).
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn

ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "gelu": nn.GELU, "leaky_relu": nn.LeakyReLU}


class MLP(nn.Module):
    """Flatten -> [Linear -> (LayerNorm) -> activation] x (depth - 1) -> Linear."""

    def __init__(
        self,
        in_dim: int,
        width: int,
        out_dim: int,
        depth: int,
        *,
        activation: str = "relu",
        norm: Literal["none", "layer"] = "none",
        init_scale: float = 1.0,
    ) -> None:
        super().__init__()
        if depth < 1:
            raise ValueError(f"depth must be >= 1, got {depth}")
        if activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {activation!r}; expected one of {', '.join(ACTIVATIONS)}")
        dims = [in_dim] + [width] * (depth - 1) + [out_dim]
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:], strict=True))
        self.norms = nn.ModuleList(nn.LayerNorm(width) if norm == "layer" else nn.Identity() for _ in range(depth - 1))
        self.acts = nn.ModuleList(ACTIVATIONS[activation]() for _ in range(depth - 1))
        if init_scale != 1.0:
            scale_parameters(self, init_scale)

    def forward(self, x: Tensor) -> Tensor:
        x = x.flatten(1)
        for layer, norm, act in zip(self.layers[:-1], self.norms, self.acts, strict=True):
            x = act(norm(layer(x)))
        return self.layers[-1](x)

    def hidden(self, x: Tensor) -> list[Tensor]:
        """Post-activation features of every hidden layer (the penultimate one last)."""
        feats = []
        x = x.flatten(1)
        for layer, norm, act in zip(self.layers[:-1], self.norms, self.acts, strict=True):
            x = act(norm(layer(x)))
            feats.append(x)
        return feats


@torch.no_grad()
def scale_parameters(module: nn.Module, scale: float) -> None:
    """Multiply every parameter, biases included, by `scale` (Deep Grokking's init scaling)."""
    for p in module.parameters():
        p.mul_(scale)
