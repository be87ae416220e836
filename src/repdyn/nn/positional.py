"""Position information for attention: ALiBi slopes, sinusoidal tables, T5 relative buckets.

RoPE lives in ``repdyn.nn.rope`` (shared with Griffin). Everything here is computed from integer
``positions`` tensors ``[B, T]`` so padded or offset sequences need no special case.
"""

import math

import torch
from torch import Tensor, nn


def alibi_slopes(num_heads: int) -> Tensor:
    """ALiBi head slopes (Press et al. 2022): the geometric sequence ``2^(-8/n), 2^(-16/n), ...``.

    For a head count ``n`` that is not a power of two, the slopes of the closest smaller power of
    two are followed by every other slope of the next power of two, as in the ALiBi reference.
    """
    if num_heads < 1:
        raise ValueError(f"num_heads must be >= 1, got {num_heads}")

    def power_of_two_slopes(n: int) -> list[float]:
        start = 2.0 ** (-8.0 / n)
        return [start ** (i + 1) for i in range(n)]

    closest = 2 ** math.floor(math.log2(num_heads))
    slopes = power_of_two_slopes(closest)
    if closest < num_heads:
        slopes += power_of_two_slopes(2 * closest)[0::2][: num_heads - closest]
    return torch.tensor(slopes, dtype=torch.float32)


def alibi_bias(slopes: Tensor, q_pos: Tensor, k_pos: Tensor) -> Tensor:
    """Additive ALiBi score bias ``-m_h |q - k|`` shaped ``[B, H, Tq, Tk]``.

    For causal attention ``|q - k| = q - k`` on every visible pair, which is the original form;
    the absolute value makes the same bias usable without a causal mask.
    """
    distance = (q_pos[:, :, None] - k_pos[:, None, :]).abs().to(torch.float32)  # [B, Tq, Tk]
    return -slopes.to(distance.device)[None, :, None, None] * distance[:, None]


def sinusoidal_embedding(positions: Tensor, dim: int, base: float = 10_000.0) -> Tensor:
    """Absolute sinusoidal position codes (Vaswani et al. 2017) shaped ``[B, T, dim]``.

    ``PE[p, 2i] = sin(p / base^(2i/dim))`` and ``PE[p, 2i+1] = cos(p / base^(2i/dim))``.
    """
    if dim % 2:
        raise ValueError(f"sinusoidal embedding needs an even dim, got {dim}")
    exponents = torch.arange(0, dim, 2, dtype=torch.float32, device=positions.device) / dim
    angles = positions.to(torch.float32)[..., None] / base**exponents  # [B, T, dim/2]
    table = torch.stack([angles.sin(), angles.cos()], dim=-1)  # [B, T, dim/2, 2]
    return table.flatten(-2)


def t5_relative_bucket(
    relative_position: Tensor, *, bidirectional: bool, num_buckets: int, max_distance: int
) -> Tensor:
    """T5's bucket of ``relative_position = key_position - query_position`` (Raffel et al. 2020).

    Half the buckets hold exact small distances, the rest grow logarithmically up to
    ``max_distance``; farther distances share the last bucket. Without ``bidirectional`` every key
    after the query falls in bucket 0 (hypernetwork.md §3: the official sRAVEN model uses that).
    """
    n = -relative_position
    bucket = torch.zeros_like(n)
    if bidirectional:
        num_buckets //= 2
        bucket = bucket + (n < 0).long() * num_buckets
        n = n.abs()
    else:
        n = n.clamp(min=0)
    max_exact = num_buckets // 2
    eps = torch.finfo(torch.float32).eps
    log_ratio = torch.log(n.to(torch.float32) / max_exact + eps)
    log_ratio = log_ratio / math.log(max_distance / max_exact)
    if_large = max_exact + (log_ratio * (num_buckets - max_exact)).long()
    if_large = if_large.clamp(max=num_buckets - 1)
    return bucket + torch.where(n < max_exact, n, if_large)


class T5RelativeBias(nn.Module):
    """A learned scalar bias per (head, relative-position bucket), added to attention scores."""

    def __init__(
        self, num_heads: int, *, num_buckets: int, max_distance: int, bidirectional: bool
    ) -> None:
        super().__init__()
        self.num_buckets = num_buckets
        self.max_distance = max_distance
        self.bidirectional = bidirectional
        # Scale of flax's default embedding init on a [heads, buckets] table (std 1/sqrt(heads)).
        self.table = nn.Parameter(torch.randn(num_heads, num_buckets) / math.sqrt(num_heads))

    def forward(self, q_pos: Tensor, k_pos: Tensor) -> Tensor:
        """Bias ``[B, H, Tq, Tk]`` for query positions ``[B, Tq]`` and key positions ``[B, Tk]``."""
        relative = k_pos[:, None, :] - q_pos[:, :, None]
        buckets = t5_relative_bucket(
            relative,
            bidirectional=self.bidirectional,
            num_buckets=self.num_buckets,
            max_distance=self.max_distance,
        )
        return self.table[:, buckets].permute(1, 0, 2, 3)
