"""Local multi-query attention with RoPE and a ring-buffer KV cache (griffin.md §1.5, §3.1).

H query heads share one key/value head of size hd = D / H. RoPE (base 10k) turns the first
half of every head. A query at stream position q sees key k when k <= q <= k + window and both
tokens lie in the same document, i.e. window + 1 keys at most; `window=None` makes the
attention global (the transformer baseline whose cache grows with the context).

Positions: RoPE uses `segment_pos` (the position inside the document), while masking uses the
absolute stream position p = tokens seen before + index, and the absolute start of each
token's document. The cache keeps the keys of the last `window` tokens in a ring buffer
(stream position p in slot p % window) and grows only until it holds `window` of them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import torch
from torch import Tensor, nn

from repdyn.nn.rope import apply_rope

ROPE_BASE = 10_000.0  # griffin.md §1.5
ROPE_FRACTION = 0.5  # griffin.md §1.5: RoPE on the first half of head_dim


@dataclass(frozen=True)
class AttentionCache:
    """Keys/values [B, S, hd] of the last S = min(num_tokens, window) tokens, p in slot p % window.

    `doc_start` [B] is the absolute position where each row's current document began.
    """

    keys: Tensor
    values: Tensor
    num_tokens: int
    doc_start: Tensor

    @property
    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in (self.keys, self.values, self.doc_start))

    def slot_positions(self, window: int | None) -> Tensor:
        """Absolute stream position held by each slot, [S]."""
        slots = torch.arange(self.keys.shape[1], device=self.keys.device)
        if window is None or self.num_tokens <= window:
            return slots
        last = self.num_tokens - 1
        return last - torch.remainder(last - slots, window)

    def clone(self) -> AttentionCache:
        return replace(
            self,
            keys=self.keys.clone(),
            values=self.values.clone(),
            doc_start=self.doc_start.clone(),
        )


def empty_attention_cache(
    batch: int, head_dim: int, dtype: torch.dtype, device: torch.device | None = None
) -> AttentionCache:
    """The cache before any token."""
    keys = torch.zeros(batch, 0, head_dim, dtype=dtype, device=device)
    return AttentionCache(
        keys, keys.clone(), 0, torch.zeros(batch, dtype=torch.long, device=device)
    )


def _attend(q: Tensor, k: Tensor, v: Tensor, visible: Tensor) -> Tensor:
    """Multi-query attention: q [..., T, H, hd], k/v [..., S, hd], mask [..., T, S] -> [..., T, D].

    One fused `scaled_dot_product_attention` call (scale hd^-0.5; fp32 softmax for bf16 inputs)
    with the single key/value head shared by all H query heads.
    """
    out = nn.functional.scaled_dot_product_attention(
        q.transpose(-3, -2), k.unsqueeze(-3), v.unsqueeze(-3), attn_mask=visible.unsqueeze(-3),
        enable_gqa=True,
    )
    return out.transpose(-3, -2).flatten(-2)


class LocalAttention(nn.Module):
    """Local MQA: proj_q [D, D], proj_k / proj_v [hd, D] (no bias), proj_final [D, D] + bias."""

    def __init__(
        self,
        width: int,
        num_heads: int,
        window: int | None,
        final_w_init_variance_scale: float = 1.0,
    ) -> None:
        super().__init__()
        if width % num_heads:
            raise ValueError(f"width {width} is not divisible by num_heads {num_heads}")
        if window is not None and window < 1:
            raise ValueError(f"attention window must be >= 1 or None (global); got {window}")
        self.num_heads = num_heads
        self.head_dim = width // num_heads
        self.window = window
        self.final_w_init_variance_scale = final_w_init_variance_scale
        self.proj_q = nn.Linear(width, width, bias=False)
        self.proj_k = nn.Linear(width, self.head_dim, bias=False)
        self.proj_v = nn.Linear(width, self.head_dim, bias=False)
        self.proj_final = nn.Linear(width, width, bias=True)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        width = self.proj_q.in_features
        for proj in (self.proj_q, self.proj_k, self.proj_v):
            nn.init.normal_(proj.weight, std=math.sqrt(1.0 / width))
        nn.init.normal_(
            self.proj_final.weight, std=math.sqrt(self.final_w_init_variance_scale / width)
        )
        nn.init.zeros_(self.proj_final.bias)

    def forward(
        self,
        x: Tensor,
        segment_pos: Tensor,
        cache: AttentionCache | None = None,
        return_cache: bool = True,
    ) -> tuple[Tensor, AttentionCache | None]:
        """Attend over x [B, T, D] after the tokens in `cache`; return (y [B, T, D], new cache)."""
        batch, length, _ = x.shape
        # queries and the key share positions: rotate them as H + 1 heads in one call
        qk = torch.cat(
            [
                self.proj_q(x).unflatten(-1, (self.num_heads, self.head_dim)),
                self.proj_k(x)[:, :, None],
            ],
            2,
        )
        qk = apply_rope(qk, segment_pos, base=ROPE_BASE, fraction=ROPE_FRACTION)
        q, k = qk[:, :, :-1], qk[:, :, -1]
        v = self.proj_v(x)
        if cache is None:
            cache = empty_attention_cache(batch, self.head_dim, k.dtype, x.device)
        positions = cache.num_tokens + torch.arange(length, device=x.device)
        # absolute start of each query's document: the latest reset at or before it
        starts = torch.where(segment_pos == 0, positions, -1).cummax(dim=1).values
        doc_start = torch.maximum(starts, cache.doc_start[:, None])
        if self.window is None or length <= self.window:
            y = self._attend_dense(q, k, v, positions, doc_start, cache)
        else:
            y = self._attend_blocked(q, k, v, positions, doc_start, cache)
        y = self.proj_final(y)
        if not return_cache:
            return y, None
        return y, self._updated_cache(cache, k, v, doc_start[:, -1])

    def _visible(self, q_pos: Tensor, k_pos: Tensor, doc_start: Tensor) -> Tensor:
        """Mask [B, ..., T, S]: the key is causal, inside the window and in the query's document."""
        q_pos, k_pos = q_pos[..., :, None], k_pos[..., None, :]
        visible = (k_pos <= q_pos) & (k_pos >= doc_start[..., :, None])
        if self.window is not None:
            visible &= q_pos - k_pos <= self.window
        return visible

    def _attend_dense(
        self,
        q: Tensor,
        k: Tensor,
        v: Tensor,
        positions: Tensor,
        doc_start: Tensor,
        cache: AttentionCache,
    ) -> Tensor:
        """Every query against every cached and new key (used when T <= window or global)."""
        keys = torch.cat([cache.keys.to(k.dtype), k], dim=1)
        values = torch.cat([cache.values.to(v.dtype), v], dim=1)
        key_pos = torch.cat([cache.slot_positions(self.window), positions])
        return _attend(q, keys, values, self._visible(positions, key_pos, doc_start))

    def _attend_blocked(
        self,
        q: Tensor,
        k: Tensor,
        v: Tensor,
        positions: Tensor,
        doc_start: Tensor,
        cache: AttentionCache,
    ) -> Tensor:
        """Queries in blocks of `window` see their own and the previous block's keys: O(T W)."""
        window = self.window
        assert window is not None
        batch, length, heads, head_dim = q.shape
        blocks = -(-length // window)
        tail = blocks * window - length
        # the cached keys in stream order, left-padded to exactly `window` slots
        order = torch.argsort(cache.slot_positions(window))
        lead = window - cache.keys.shape[1]
        never = torch.full((lead,), -1, device=q.device)
        # queries padded after the end; their keys lie in every real query's future (masked)
        beyond = positions[-1] + 1 + torch.arange(tail, device=q.device)
        key_pos = torch.cat([never, cache.slot_positions(window)[order], positions, beyond])
        pad = (0, 0, lead, 0)
        keys = nn.functional.pad(torch.cat([cache.keys[:, order].to(k.dtype), k], 1), pad)
        values = nn.functional.pad(torch.cat([cache.values[:, order].to(v.dtype), v], 1), pad)
        keys, values = (nn.functional.pad(t, (0, 0, 0, tail)) for t in (keys, values))
        q = nn.functional.pad(q, (0, 0, 0, 0, 0, tail))
        q_pos = torch.cat([positions, beyond])
        doc_start = torch.cat([doc_start, doc_start[:, -1:].expand(batch, tail)], dim=1)

        def two_blocks(t: Tensor, dim: int) -> Tensor:  # block b -> key blocks b and b + 1
            t = t.unflatten(dim, (blocks + 1, window))
            return torch.cat([t.narrow(dim, 0, blocks), t.narrow(dim, 1, blocks)], dim=dim + 1)

        visible = self._visible(
            q_pos.view(blocks, window),
            two_blocks(key_pos, 0),
            doc_start.view(batch, blocks, window),
        )
        out = _attend(
            q.view(batch, blocks, window, heads, head_dim),
            two_blocks(keys, 1),
            two_blocks(values, 1),
            visible,
        )
        return out.flatten(1, 2)[:, :length]

    def _updated_cache(
        self, cache: AttentionCache, k: Tensor, v: Tensor, doc_start: Tensor
    ) -> AttentionCache:
        """Append new keys/values; once `window` are held, keep the last ones at slot p % window."""
        seen, length, held = cache.num_tokens, k.shape[1], cache.keys.shape[1]
        total = seen + length
        window = self.window
        if window is None or total <= window:
            keys, values = (
                torch.cat([cache.keys.to(k.dtype), k], 1),
                torch.cat([cache.values.to(v.dtype), v], 1),
            )
        elif held == window and length < window:  # a full ring: overwrite the oldest slots
            slots = torch.remainder(seen + torch.arange(length, device=k.device), window)
            keys, values = cache.keys.to(k.dtype).clone(), cache.values.to(v.dtype).clone()
            keys[:, slots], values[:, slots] = k, v
        else:  # the ring fills up or turns over completely: gather the last `window` positions
            first = total - window
            slot_pos = first + torch.remainder(
                torch.arange(window, device=k.device) - first, window
            )
            # index of each kept position in [cached slots | new tokens]; before the ring is full
            # (held < window) a cached position p sits in slot p
            cached_slot = torch.remainder(slot_pos, window) if held == window else slot_pos
            source = torch.where(slot_pos >= seen, slot_pos - seen + held, cached_slot)
            keys = torch.cat([cache.keys.to(k.dtype), k], 1)[:, source]
            values = torch.cat([cache.values.to(v.dtype), v], 1)[:, source]
        return AttentionCache(keys, values, total, doc_start)
