"""Input checks of the `(logits, cache) = model(tokens, segment_pos, cache)` contract that Griffin and
Mamba share: tokens are [B, T], and positions default to counting on from the cache."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor


def checked_segment_pos(tokens: Tensor, segment_pos: Tensor | None, cache: Any | None, num_blocks: int) -> Tensor:
    """`segment_pos` [B, T] for `tokens`: as given (shape checked), or consecutive from 0 or from the
    cache's next position. A cache must hold one entry per block."""
    if tokens.ndim != 2 or tokens.shape[1] == 0:
        raise ValueError(f"tokens must be [B, T] with T >= 1; got shape {tuple(tokens.shape)}")
    if cache is not None and len(cache.blocks) != num_blocks:
        raise ValueError(f"cache has {len(cache.blocks)} blocks, the model {num_blocks}")
    if segment_pos is None:
        start = 0 if cache is None else cache.next_segment_pos[:, None]
        return start + torch.arange(tokens.shape[1], device=tokens.device).expand(tokens.shape)
    if segment_pos.shape != tokens.shape:
        raise ValueError(f"segment_pos must match tokens {tuple(tokens.shape)}; got {tuple(segment_pos.shape)}")
    return segment_pos
