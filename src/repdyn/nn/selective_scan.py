"""Mamba's selective scan: a diagonal linear recurrence over (channel, state) pairs (state_soup.md §2).

For inputs x [B, T, E], step sizes dt [B, T, E] (already softplus-ed), A [E, N] (negative),
and input-dependent B, C [B, T, N]:

    h_t = exp(dt_t A) * h_{t-1} + (dt_t B_t) x_t        h [B, E, N]
    y_t = h_t C_t + D x_t,   then y_t * silu(z_t) when a gate z is given

`selective_scan` flattens the E x N channels and runs the shared blocked scan
(`repdyn.nn.scan.linear_scan`: fp32 accumulation, document resets, h0 in and out, hand-written
backward); `selective_scan_reference` is the same recurrence as a plain loop over time, the
definition the fast path is tested against.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.nn import functional as F

from repdyn.nn.scan import linear_scan

__all__ = ["discretize", "selective_scan", "selective_scan_reference"]


def _accumulation_dtype(dtype: torch.dtype) -> torch.dtype:
    return torch.promote_types(dtype, torch.float32)


def discretize(x: Tensor, dt: Tensor, A: Tensor, B: Tensor) -> tuple[Tensor, Tensor]:
    """(a, b) of h_t = a_t * h_{t-1} + b_t, each [B, T, E, N]: a = exp(dt A), b = (dt B) x.

    Computed in fp32 (fp64 for fp64 inputs), in the order the Hugging Face slow path uses.
    """
    acc = _accumulation_dtype(x.dtype)
    dt_acc = dt.to(acc)
    a = torch.exp(dt_acc[..., None] * A.to(acc))
    b = dt_acc[..., None] * B.to(acc)[:, :, None, :] * x.to(acc)[..., None]
    return a, b


def _check(x: Tensor, dt: Tensor, A: Tensor, B: Tensor, C: Tensor, h0: Tensor | None) -> None:
    batch, length, width = x.shape
    state = A.shape[-1]
    if dt.shape != x.shape or A.shape != (width, state):
        raise ValueError(f"dt must be [B, T, E] like x and A [E, N]; got {tuple(dt.shape)}, {tuple(A.shape)}")
    if B.shape != (batch, length, state) or C.shape != B.shape:
        raise ValueError(f"B and C must be [B, T, N] = {(batch, length, state)}; got {tuple(B.shape)}, {tuple(C.shape)}")
    if h0 is not None and h0.shape != (batch, width, state):
        raise ValueError(f"h0 must be [B, E, N] = {(batch, width, state)}; got {tuple(h0.shape)}")


def _output(h: Tensor, x: Tensor, C: Tensor, D: Tensor | None, z: Tensor | None) -> Tensor:
    """y = h C (+ D x) (* silu z), in x's dtype; h [B, T, E, N] in the accumulation dtype."""
    acc = h.dtype
    y = (h @ C.to(acc)[..., None]).squeeze(-1)
    if D is not None:
        y = y + x.to(acc) * D.to(acc)
    if z is not None:
        y = y * F.silu(z.to(acc))
    return y.to(x.dtype)


def selective_scan(
    x: Tensor,
    dt: Tensor,
    A: Tensor,
    B: Tensor,
    C: Tensor,
    D: Tensor | None = None,
    z: Tensor | None = None,
    h0: Tensor | None = None,
    reset: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """y [B, T, E] and the last state [B, E, N] (fp32) of the selective SSM, via the blocked scan.

    `reset` [B, T] (True at a document start) zeroes the decay there, so h_t = b_t.
    """
    _check(x, dt, A, B, C, h0)
    batch, length, width = x.shape
    state = A.shape[-1]
    a, b = discretize(x, dt, A, B)
    flat_h0 = None if h0 is None else h0.to(a.dtype).reshape(batch, width * state)
    h, last = linear_scan(a.flatten(2), b.flatten(2), flat_h0, reset)
    return _output(h.view(batch, length, width, state), x, C, D, z), last.view(batch, width, state)


def selective_scan_reference(
    x: Tensor,
    dt: Tensor,
    A: Tensor,
    B: Tensor,
    C: Tensor,
    D: Tensor | None = None,
    z: Tensor | None = None,
    h0: Tensor | None = None,
    reset: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """The same recurrence as a Python loop over time (differentiable by autograd)."""
    _check(x, dt, A, B, C, h0)
    batch, length, width = x.shape
    acc = _accumulation_dtype(x.dtype)
    h = torch.zeros(batch, width, A.shape[-1], dtype=acc, device=x.device) if h0 is None else h0.to(acc)
    states = []
    for t in range(length):
        decay = torch.exp(dt[:, t, :, None].to(acc) * A.to(acc))
        if reset is not None:
            decay = decay * (~reset[:, t]).to(acc)[:, None, None]
        h = decay * h + dt[:, t, :, None].to(acc) * B[:, t, None, :].to(acc) * x[:, t, :, None].to(acc)
        states.append(h)
    return _output(torch.stack(states, 1), x, C, D, z), h
