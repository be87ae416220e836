"""Rotary position embedding (RoPE) on a leading fraction of the head dimension.

RecurrentGemma rotates only the first half of each head (griffin.md §1.5), as two
non-interleaved halves: channel i pairs with channel i + rope_dim / 2.
"""

from __future__ import annotations

import torch
from torch import Tensor


def apply_rope(
    x: Tensor, positions: Tensor, *, base: float = 10_000.0, fraction: float = 1.0
) -> Tensor:
    """Rotate the first int(head_dim * fraction) channels of x [B, T, H, head_dim] by positions.

    Pair (i, i + r/2) of the rotated block (r channels) turns by angle position / base^(2i / r);
    the remaining channels pass through unchanged. Angles are computed in float32 and the rotation
    in x.dtype, so a bf16 forward stays bf16. Shared by Griffin's local attention (fraction 0.5) and
    the transformer's RoPE (fraction 1).
    """
    if x.ndim != 4 or positions.shape != x.shape[:2]:
        raise ValueError(
            f"x must be [B, T, H, head_dim] and positions [B, T]; "
            f"got {tuple(x.shape)}, {tuple(positions.shape)}"
        )
    rope_dim = int(x.shape[-1] * fraction)
    if rope_dim % 2:
        raise ValueError(
            f"the rotated part must have an even width; head_dim * fraction = {rope_dim}"
        )
    if rope_dim == 0:
        return x
    half = rope_dim // 2
    exponents = 2 * torch.arange(half, device=x.device) / rope_dim
    inv_frequencies = 1.0 / base**exponents
    angles = positions[..., None, None] * inv_frequencies  # [B, T, 1, half], float32
    sin = torch.sin(angles).to(x.dtype)
    cos = torch.cos(angles).to(x.dtype)
    first, second, rest = x[..., :half], x[..., half:rope_dim], x[..., rope_dim:]
    return torch.cat([first * cos - second * sin, second * cos + first * sin, rest], dim=-1)
