"""Griffin's pre-norm residual block: x += Temporal(RMSNorm(x)); x += MLP(RMSNorm(x)) (§1.1)."""

from __future__ import annotations

from torch import Tensor, nn

from repdyn.nn.gated_mlp import GatedMLP
from repdyn.nn.local_attention import AttentionCache, LocalAttention
from repdyn.nn.norms import RMSNorm
from repdyn.nn.recurrent_block import RecurrentBlock, RecurrentCache

BlockCache = RecurrentCache | AttentionCache


class ResidualBlock(nn.Module):
    """One layer; its temporal mixer is `recurrent_block` or `attention_block` (official names)."""

    def __init__(
        self,
        kind: str,
        width: int,
        mlp_width: int,
        num_heads: int,
        lru_width: int,
        attention_window: int | None,
        conv_width: int = 4,
        final_w_init_variance_scale: float = 1.0,
    ) -> None:
        super().__init__()
        self.kind = kind
        self.temporal_pre_norm = RMSNorm(width)
        if kind == "recurrent":
            self.recurrent_block = RecurrentBlock(
                width, lru_width, num_heads, conv_width, final_w_init_variance_scale
            )
        elif kind == "attention":
            self.attention_block = LocalAttention(
                width, num_heads, attention_window, final_w_init_variance_scale
            )
        else:
            raise ValueError(f"block kind must be 'recurrent' or 'attention'; got {kind!r}")
        self.channel_pre_norm = RMSNorm(width)
        self.mlp_block = GatedMLP(width, mlp_width, final_w_init_variance_scale)

    @property
    def temporal_block(self) -> RecurrentBlock | LocalAttention:
        return self.recurrent_block if self.kind == "recurrent" else self.attention_block

    def forward(
        self,
        x: Tensor,
        segment_pos: Tensor,
        cache: BlockCache | None = None,
        return_cache: bool = True,
    ) -> tuple[Tensor, BlockCache | None]:
        mixed, cache = self.temporal_block(
            self.temporal_pre_norm(x), segment_pos, cache, return_cache
        )
        x = x + mixed
        return x + self.mlp_block(self.channel_pre_norm(x)), cache
