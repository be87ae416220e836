"""Rotary position embedding (RoPE), recurrentgemma convention: two non-interleaved halves."""

import torch
from torch import Tensor


def apply_rope(
    x: Tensor, positions: Tensor, *, base: float = 10_000.0, fraction: float = 1.0
) -> Tensor:
    """Rotate the first ``int(head_dim * fraction)`` channels of ``x`` by position-dependent angles.

    ``x`` is ``[B, T, H, head_dim]`` and ``positions`` ``[B, T]`` integers. The rotated part is
    split into a first half ``x1`` and a second half ``x2`` (not interleaved); channel pair ``i`` turns at
    frequency ``base ** (-2 i / rot_dim)``: ``out = [x1 cos - x2 sin, x2 cos + x1 sin]``. The
    remaining channels pass unchanged. Angles are computed in float32, the rotation in ``x.dtype``,
    so a bf16 forward stays a bf16 forward.
    """
    head_dim = x.shape[-1]
    rot_dim = int(head_dim * fraction)
    if rot_dim % 2:
        raise ValueError(f"RoPE needs an even number of rotated channels, got {rot_dim}")
    if rot_dim == 0:
        return x
    half = rot_dim // 2
    exponents = torch.arange(half, dtype=torch.float32, device=x.device) * 2.0 / rot_dim
    inv_freq = base ** (-exponents)  # [half]
    angles = positions.to(torch.float32)[..., None] * inv_freq  # [B, T, half]
    cos = angles.cos()[:, :, None, :].to(x.dtype)  # [B, T, 1, half]
    sin = angles.sin()[:, :, None, :].to(x.dtype)
    x1, x2, rest = x[..., :half], x[..., half:rot_dim], x[..., rot_dim:]
    return torch.cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin, rest], dim=-1)
