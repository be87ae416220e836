"""Griffin's gated MLP: W_down(gelu_tanh(W_1 x + b_1) * (W_2 x + b_2)) + b (griffin.md §1.1)."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn


def gelu_tanh(x: Tensor) -> Tensor:
    """GeLU with the tanh approximation (the JAX default the official code matches)."""
    return nn.functional.gelu(x, approximate="tanh")


class PairedLinear(nn.Module):
    """Two affine maps of one input, stored as officially: w [2, D, F], b [2, 1, 1, F]."""

    def __init__(self, width: int, expanded_width: int) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.empty(2, width, expanded_width))
        self.b = nn.Parameter(torch.empty(2, 1, 1, expanded_width))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.normal_(self.w, std=math.sqrt(1.0 / self.w.shape[1]))
        nn.init.zeros_(self.b)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Return (W_1 x + b_1, W_2 x + b_2) for x [..., D]."""
        bias = self.b.reshape(2, -1)
        return x @ self.w[0] + bias[0], x @ self.w[1] + bias[1]


class GatedMLP(nn.Module):
    """The channel-mixing block: expansion F (3 D in every preset), gated by a tanh-GeLU branch."""

    def __init__(
        self, width: int, expanded_width: int, final_w_init_variance_scale: float = 1.0
    ) -> None:
        super().__init__()
        self.final_w_init_variance_scale = final_w_init_variance_scale
        self.ffw_up = PairedLinear(width, expanded_width)
        self.ffw_down = nn.Linear(expanded_width, width)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        self.ffw_up.reset_parameters()
        std = math.sqrt(self.final_w_init_variance_scale / self.ffw_down.in_features)
        nn.init.normal_(self.ffw_down.weight, std=std)
        nn.init.zeros_(self.ffw_down.bias)

    def forward(self, x: Tensor) -> Tensor:
        gate, value = self.ffw_up(x)
        return self.ffw_down(gelu_tanh(gate) * value)
