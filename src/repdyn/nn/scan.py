"""Diagonal linear recurrence h_t = a_t * h_{t-1} + x_t: a sequential reference and a fast scan.

This is the serial core of the RG-LRU (griffin.md §1.3) and of any diagonal linear RNN
(State Soup, Hawk, Mamba-lite). Both functions take `a`, `x` shaped [B, T, D], an optional
initial state `h0` [B, D], and optional document resets `reset` [B, T] (True zeroes a_t, so
h_t = x_t there). They return every state h [B, T, D] in the dtype of `x` and the final
state [B, D] in float32 (float64 for float64 inputs): bf16 inputs accumulate in fp32.

The fast path (`linear_scan`) is a blocked scan with a hand-written backward. The time axis
is cut into chunks of C steps; one Python step advances every chunk at once, so a
sequence of T steps costs about 2C + T/C Python steps instead of T (griffin.md §7: at small
widths the scan is bound by per-step overhead, not bandwidth):
1. local pass: run the recurrence inside all chunks in parallel from a zero state, keeping
   only each chunk's end state, and reduce the product of `a` over each chunk;
2. carry pass: one step per chunk propagates the true state across chunk boundaries;
3. final pass: rerun the chunks in parallel from their true initial states, writing h.
The backward pass is the same scan run in reverse time on the output gradients.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = ["default_chunk_size", "linear_scan", "linear_scan_reference", "may_hold_true"]


def may_hold_true(mask: Tensor) -> bool:
    """Whether `mask` may hold a True: exact on the CPU; always True on an accelerator, where reading
    the mask would make the host wait for the device (the reset paths give the same values either way)."""
    return mask.device.type != "cpu" or bool(mask.any())


def _accumulation_dtype(dtype: torch.dtype) -> torch.dtype:
    """fp32 for half/bf16/fp32 inputs (griffin.md §1.3: h held in fp32), fp64 for fp64 inputs."""
    return torch.promote_types(dtype, torch.float32)


def _check_inputs(a: Tensor, x: Tensor, h0: Tensor | None, reset: Tensor | None) -> None:
    if x.ndim != 3 or a.shape != x.shape:
        raise ValueError(
            f"a and x must both be [B, T, D]; got {tuple(a.shape)} and {tuple(x.shape)}"
        )
    batch, _, width = x.shape
    if h0 is not None and h0.shape != (batch, width):
        raise ValueError(f"h0 must be [B, D] = {(batch, width)}; got {tuple(h0.shape)}")
    if reset is not None and reset.shape != x.shape[:2]:
        raise ValueError(f"reset must be [B, T] = {tuple(x.shape[:2])}; got {tuple(reset.shape)}")


def linear_scan_reference(
    a: Tensor, x: Tensor, h0: Tensor | None = None, reset: Tensor | None = None
) -> tuple[Tensor, Tensor]:
    """Plain Python loop over time (differentiable by autograd): the definition of the scan."""
    _check_inputs(a, x, h0, reset)
    acc = _accumulation_dtype(x.dtype)
    a_acc = a.to(acc)
    if reset is not None:
        a_acc = a_acc.masked_fill(reset[..., None], 0.0)
    h = (
        torch.zeros(x.shape[0], x.shape[2], dtype=acc, device=x.device)
        if h0 is None
        else h0.to(acc)
    )
    states = []
    for t in range(x.shape[1]):
        h = a_acc[:, t] * h + x[:, t].to(acc)
        states.append(h)
    return torch.stack(states, dim=1).to(x.dtype), h


def default_chunk_size(length: int) -> int:
    """Chunk length balancing the 2C local steps against the T/C carry steps (about sqrt(T/2))."""
    return max(4, min(64, round(math.sqrt(length / 2))))


def _blocked_scan(a: Tensor, x: Tensor, h0: Tensor, reverse: bool, chunk: int) -> Tensor:
    """All states of y_t = a_t * y_prev + x_t (prev = t-1, or t+1 when `reverse`); y0 = h0.

    Inputs are contiguous tensors of the accumulation dtype; returns a new [B, T, D] tensor.
    """
    batch, length, width = x.shape
    out = torch.empty_like(x)
    num_chunks = length // chunk if chunk >= 2 else 0
    if num_chunks < 2:
        num_chunks = 0
    blocked = num_chunks * chunk
    # Forward time: chunks cover [0, blocked), the loose tail follows. Reverse: the loose part
    # sits at the start of time, which is the end of a reverse pass.
    lo, hi = (length - blocked, length) if reverse else (0, blocked)
    h = h0
    if num_chunks:
        shape = (batch, num_chunks, chunk, width)
        av, xv, ov = (t[:, lo:hi].view(shape) for t in (a, x, out))
        order = range(chunk - 1, -1, -1) if reverse else range(chunk)
        first, *rest = order
        # 1. Local pass: each chunk's end state from a zero start, and the product of its a's.
        local_end = xv[:, :, first].clone()
        for j in rest:
            torch.addcmul(xv[:, :, j], av[:, :, j], local_end, out=local_end)
        chunk_decay = av.prod(dim=2)
        # 2. Carry pass: the true state entering each chunk.
        entering = torch.empty_like(local_end)
        for k in range(num_chunks - 1, -1, -1) if reverse else range(num_chunks):
            entering[:, k] = h
            h = torch.addcmul(local_end[:, k], chunk_decay[:, k], h)
        # 3. Final pass: rerun every chunk from its true initial state.
        prev = entering
        for j in order:
            prev = torch.addcmul(xv[:, :, j], av[:, :, j], prev, out=ov[:, :, j])
    loose = range(lo - 1, -1, -1) if reverse else range(hi, length)
    for t in loose:
        h = torch.addcmul(x[:, t], a[:, t], h, out=out[:, t])
    return out


class _LinearScanFunction(torch.autograd.Function):
    """Blocked scan with a reverse-time blocked scan as its backward; resets zero a_t."""

    @staticmethod
    def forward(  # type: ignore[override]
        ctx, a: Tensor, x: Tensor, h0: Tensor, reset: Tensor | None, chunk: int
    ) -> tuple[Tensor, Tensor]:
        batch, length, width = x.shape
        # One padded copy of a serves both directions: a_pad[:, :T] is a with resets applied,
        # a_pad[:, 1:] is the reverse scan's a_{t+1} (1 after the end lets dL/dh_T enter).
        a_pad = torch.empty(batch, length + 1, width, dtype=a.dtype, device=a.device)
        a_pad[:, :length] = a
        a_pad[:, length] = 1.0
        if reset is not None:
            a_pad[:, :length].masked_fill_(reset[..., None], 0.0)
        a_eff = a_pad[:, :length]
        h = _blocked_scan(a_eff, x, h0, reverse=False, chunk=chunk)
        ctx.save_for_backward(a_pad, h, h0, reset)
        ctx.chunk = chunk
        return h, h[:, -1].clone()

    @staticmethod
    def backward(ctx, grad_h: Tensor | None, grad_last: Tensor | None):  # type: ignore[override]
        a_pad, h, h0, reset = ctx.saved_tensors
        # delta_t = dL/dh_t (total) obeys delta_t = grad_h_t + a_{t+1} * delta_{t+1}, a reverse
        # scan whose initial state is the final state's gradient.
        grad_h = torch.zeros_like(h) if grad_h is None else grad_h.contiguous()
        grad_last = torch.zeros_like(h0) if grad_last is None else grad_last
        delta = _blocked_scan(a_pad[:, 1:], grad_h, grad_last, reverse=True, chunk=ctx.chunk)
        grad_a = torch.empty_like(h)
        torch.mul(delta[:, 1:], h[:, :-1], out=grad_a[:, 1:])
        torch.mul(delta[:, 0], h0, out=grad_a[:, 0])
        if reset is not None:
            grad_a.masked_fill_(reset[..., None], 0.0)
        grad_h0 = a_pad[:, 0] * delta[:, 0]
        return grad_a, delta, grad_h0, None, None


def linear_scan(
    a: Tensor,
    x: Tensor,
    h0: Tensor | None = None,
    reset: Tensor | None = None,
    *,
    chunk: int | None = None,
) -> tuple[Tensor, Tensor]:
    """Fast h_t = a_t * h_{t-1} + x_t with resets; returns (h [B, T, D] in x.dtype, h_T fp32).

    Same contract as `linear_scan_reference`; `chunk` overrides the blocked-scan chunk length.
    """
    _check_inputs(a, x, h0, reset)
    acc = _accumulation_dtype(x.dtype)
    batch, length, width = x.shape
    h0_acc = torch.zeros(batch, width, dtype=acc, device=x.device) if h0 is None else h0.to(acc)
    if reset is not None and not may_hold_true(reset):
        reset = None
    if length == 0:
        return x.clone(), h0_acc
    if length == 1:  # one decoding step: no scan needed
        a_acc = a.to(acc) if reset is None else a.to(acc).masked_fill(reset[..., None], 0.0)
        h = torch.addcmul(x[:, 0].to(acc), a_acc[:, 0], h0_acc)
        return h[:, None].to(x.dtype), h
    chunk = default_chunk_size(length) if chunk is None else chunk
    h, last = _LinearScanFunction.apply(a.to(acc), x.to(acc).contiguous(), h0_acc, reset, chunk)
    return h.to(x.dtype), last
