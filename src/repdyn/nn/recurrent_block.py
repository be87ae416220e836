"""Griffin's recurrent block: W_out(RG-LRU(Conv1D(W_x x)) * gelu_tanh(W_y x)) (griffin.md §1.2)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from torch import Tensor, nn

from repdyn.nn.conv1d import Conv1D
from repdyn.nn.gated_mlp import gelu_tanh
from repdyn.nn.rglru import RGLRU


@dataclass(frozen=True)
class RecurrentCache:
    """Fixed-size decoding state: RG-LRU state [B, L] (fp32), last K-1 conv inputs [B, K-1, L]."""

    rg_lru_state: Tensor
    conv1d_state: Tensor

    @property
    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in (self.rg_lru_state, self.conv1d_state))

    def clone(self) -> RecurrentCache:
        return RecurrentCache(self.rg_lru_state.clone(), self.conv1d_state.clone())


class RecurrentBlock(nn.Module):
    """Width D -> lru_width L -> D; every linear map has a bias."""

    def __init__(
        self,
        width: int,
        lru_width: int,
        num_heads: int,
        conv_width: int = 4,
        final_w_init_variance_scale: float = 1.0,
    ) -> None:
        super().__init__()
        self.final_w_init_variance_scale = final_w_init_variance_scale
        self.linear_y = nn.Linear(width, lru_width)
        self.linear_x = nn.Linear(width, lru_width)
        self.linear_out = nn.Linear(lru_width, width)
        self.conv_1d = Conv1D(lru_width, conv_width)
        self.rg_lru = RGLRU(lru_width, num_heads)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        width, lru_width = self.linear_x.in_features, self.linear_x.out_features
        for linear in (self.linear_x, self.linear_y):
            nn.init.normal_(linear.weight, std=math.sqrt(1.0 / width))
            nn.init.zeros_(linear.bias)
        # griffin.md §1.4: last projection of each block has variance scale 2 / num_layers
        nn.init.normal_(
            self.linear_out.weight, std=math.sqrt(self.final_w_init_variance_scale / lru_width)
        )
        nn.init.zeros_(self.linear_out.bias)
        self.conv_1d.reset_parameters()
        self.rg_lru.reset_parameters()

    def forward(
        self,
        x: Tensor,
        segment_pos: Tensor,
        cache: RecurrentCache | None = None,
        return_cache: bool = True,
    ) -> tuple[Tensor, RecurrentCache | None]:
        """x [B, T, D] after the state in `cache` (empty if None) -> (y [B, T, D], new cache)."""
        reset = segment_pos == 0
        gate = gelu_tanh(self.linear_y(x))
        u, conv_state = self.conv_1d(
            self.linear_x(x), reset, None if cache is None else cache.conv1d_state
        )
        h, lru_state = self.rg_lru(u, reset, None if cache is None else cache.rg_lru_state)
        y = self.linear_out(h * gate)
        return y, (RecurrentCache(lru_state, conv_state) if return_cache else None)
