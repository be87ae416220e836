"""The selective scan (blocked, through `linear_scan`) against the loop over time, values and gradients."""

import pytest
import torch

from repdyn.nn.selective_scan import selective_scan, selective_scan_reference


def _inputs(batch=2, length=37, width=6, state=4, dtype=torch.float64, seed=0):
    gen = torch.Generator().manual_seed(seed)

    def randn(*shape):
        return torch.randn(*shape, generator=gen, dtype=torch.float64).to(dtype)

    x = randn(batch, length, width)
    dt = torch.nn.functional.softplus(randn(batch, length, width) - 1.0)
    A = -torch.exp(randn(width, state) * 0.5)
    B, C = randn(batch, length, state), randn(batch, length, state)
    D, z = randn(width), randn(batch, length, width)
    h0 = randn(batch, width, state)
    reset = torch.rand(batch, length, generator=gen) < 0.1
    reset[0, length // 2] = True
    return x, dt, A, B, C, D, z, h0, reset


def _explicit_loop(x, dt, A, B, C, D, z, h0, reset):
    """Every (row, channel, state) scalar written out, in float64: the textbook recurrence."""
    batch, length, width = x.shape
    y = torch.zeros(batch, length, width, dtype=torch.float64)
    h = h0.clone().double()
    for b in range(batch):
        for t in range(length):
            for e in range(width):
                total = 0.0
                for n in range(A.shape[1]):
                    decay = 0.0 if reset[b, t] else float(torch.exp(dt[b, t, e] * A[e, n]))
                    h[b, e, n] = decay * h[b, e, n] + dt[b, t, e] * B[b, t, n] * x[b, t, e]
                    total += float(h[b, e, n] * C[b, t, n])
                gate = float(z[b, t, e] * torch.sigmoid(z[b, t, e]))
                y[b, t, e] = (total + float(D[e] * x[b, t, e])) * gate
    return y, h


def test_reference_loop_is_the_textbook_recurrence():
    args = _inputs(batch=1, length=8, width=2, state=2)
    y, h = selective_scan_reference(*args)
    want_y, want_h = _explicit_loop(*args)
    torch.testing.assert_close(y, want_y, rtol=0, atol=1e-12)
    torch.testing.assert_close(h, want_h, rtol=0, atol=1e-12)


@pytest.mark.parametrize("length", [1, 2, 37, 130])
def test_blocked_scan_matches_loop_in_float64(length):
    args = _inputs(length=length, seed=length)
    y, h = selective_scan(*args)
    want_y, want_h = selective_scan_reference(*args)
    torch.testing.assert_close(y, want_y, rtol=0, atol=1e-11)
    torch.testing.assert_close(h, want_h, rtol=0, atol=1e-11)


def test_float32_inputs_accumulate_in_float32_close_to_float64():
    args64 = _inputs(length=200, seed=3)
    args32 = [a.float() if a.dtype == torch.float64 else a for a in args64]
    y, h = selective_scan(*args32)
    want_y, want_h = selective_scan_reference(*args64)
    assert y.dtype == torch.float32 and h.dtype == torch.float32
    assert (y.double() - want_y).abs().max() < 1e-4
    assert (h.double() - want_h).abs().max() < 1e-5


def test_gradients_match_the_loop():
    args = [a.requires_grad_() if a.is_floating_point() else a for a in _inputs(length=21, seed=5)]
    y, h = selective_scan(*args)
    weights = torch.randn_like(y), torch.randn_like(h)
    grads = torch.autograd.grad((y * weights[0]).sum() + (h * weights[1]).sum(), args[:8])
    y, h = selective_scan_reference(*args)
    want = torch.autograd.grad((y * weights[0]).sum() + (h * weights[1]).sum(), args[:8])
    for name, got, ref in zip("x dt A B C D z h0".split(), grads, want, strict=True):
        torch.testing.assert_close(got, ref, rtol=1e-9, atol=1e-10, msg=f"gradient of {name}")


def test_gradcheck():
    x, dt, A, B, C, D, z, h0, reset = _inputs(batch=1, length=6, width=2, state=2, seed=7)
    inputs = tuple(t.requires_grad_() for t in (x, dt, A, B, C, D, z, h0))
    assert torch.autograd.gradcheck(lambda *a: selective_scan(*a, reset=reset), inputs)
