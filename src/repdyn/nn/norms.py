"""RMSNorm with a (1 + scale) gain, as in Gemma and RecurrentGemma (griffin.md §1.1)."""

from __future__ import annotations

import torch
from torch import Tensor, nn


class RMSNorm(nn.Module):
    """x / sqrt(mean(x^2) + eps) * (1 + scale); scale starts at 0 (a pure norm at init)."""

    def __init__(self, width: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.eps = eps  # griffin.md §1.1: eps = 1e-6
        self.scale = nn.Parameter(torch.zeros(width))

    def reset_parameters(self) -> None:
        nn.init.zeros_(self.scale)

    def forward(self, x: Tensor) -> Tensor:
        x32 = x.float()
        normed = x32 * torch.rsqrt(x32.square().mean(dim=-1, keepdim=True) + self.eps)
        return (normed * (1.0 + self.scale.float())).to(x.dtype)
