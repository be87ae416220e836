"""The blocked scan against the float64 loop, in value and gradient (gradcheck), and its reset
path without resets (what a GPU runs) against the path without a mask."""

import pytest
import torch

from repdyn.bench.fakegpu import FakeGPU
from repdyn.nn import scan
from repdyn.nn.scan import linear_scan, linear_scan_reference, may_hold_true


def _inputs(batch, length, width, dtype=torch.float32, seed=0):
    gen = torch.Generator().manual_seed(seed)
    a = (
        torch.rand(batch, length, width, generator=gen, dtype=torch.float64) ** 0.2
    )  # a in (0, 1), mostly near 1
    x = torch.randn(batch, length, width, generator=gen, dtype=torch.float64)
    h0 = torch.randn(batch, width, generator=gen, dtype=torch.float64)
    reset = torch.rand(batch, length, generator=gen) < 0.05
    return a.to(dtype), x.to(dtype), h0, reset


def _float64_loop(a, x, h0, reset):
    """The recurrence written out with scalars' worth of clarity, in float64."""
    a, x, h = a.double(), x.double(), h0.double()
    states = []
    for t in range(x.shape[1]):
        keep = (~reset[:, t]).double()[:, None]
        h = keep * a[:, t] * h + x[:, t]
        states.append(h)
    return torch.stack(states, 1), h


def test_scan_matches_float64_loop_with_resets_and_initial_state():
    a, x, h0, reset = _inputs(2, 257, 64)
    assert reset.any()
    h, last = linear_scan(a, x, h0.float(), reset)
    want, want_last = _float64_loop(a, x, h0, reset)
    assert h.dtype == torch.float32 and last.dtype == torch.float32
    assert (h.double() - want).abs().max() < 1e-5
    assert (last.double() - want_last).abs().max() < 1e-5


@pytest.mark.parametrize(
    "length,chunk", [(1, None), (2, None), (3, 2), (7, 3), (64, 8), (65, 8), (100, 64)]
)
def test_scan_lengths_and_chunks_agree_with_reference(length, chunk):
    a, x, h0, reset = _inputs(3, length, 5, dtype=torch.float64, seed=length)
    h, last = linear_scan(a, x, h0, reset, chunk=chunk)
    want, want_last = linear_scan_reference(a, x, h0, reset)
    torch.testing.assert_close(h, want, rtol=0, atol=1e-12)
    torch.testing.assert_close(last, want_last, rtol=0, atol=1e-12)


def test_bf16_inputs_accumulate_in_fp32():
    a, x, h0, reset = _inputs(2, 300, 16)
    a16, x16 = a.bfloat16(), x.bfloat16()
    h, last = linear_scan(a16, x16, h0.float(), reset)
    want, want_last = _float64_loop(a16, x16, h0.float(), reset)  # exact math on the bf16 values
    assert h.dtype == torch.bfloat16 and last.dtype == torch.float32
    assert (
        last.double() - want_last
    ).abs().max() < 1e-5  # a bf16 accumulator would be off by ~1e-2
    assert (h.double() - want).abs().max() <= 2**-7 * want.abs().max()  # only the output is rounded


def test_scan_without_initial_state_starts_from_zero():
    a, x, _, reset = _inputs(2, 40, 3, dtype=torch.float64)
    h, _ = linear_scan(a, x, None, reset)
    want, _ = _float64_loop(a, x, torch.zeros(2, 3, dtype=torch.float64), reset)
    torch.testing.assert_close(h, want)


@pytest.mark.parametrize("chunk", [None, 3])
def test_gradcheck_custom_backward(chunk):
    a, x, h0, reset = _inputs(2, 13, 3, dtype=torch.float64, seed=3)
    reset[0, 4] = True
    inputs = tuple(t.clone().requires_grad_() for t in (a, x, h0))
    assert torch.autograd.gradcheck(
        lambda a, x, h0: linear_scan(a, x, h0, reset, chunk=chunk), inputs
    )


def test_gradient_through_final_state_only():
    a, x, h0, reset = _inputs(1, 20, 2, dtype=torch.float64, seed=4)
    inputs = tuple(t.clone().requires_grad_() for t in (a, x, h0))
    assert torch.autograd.gradcheck(
        lambda a, x, h0: linear_scan(a, x, h0, reset, chunk=4)[1], inputs
    )


def test_shape_errors_name_the_argument():
    a, x, h0, reset = _inputs(2, 5, 3)
    with pytest.raises(ValueError, match="h0"):
        linear_scan(a, x, h0[:, :2].float())
    with pytest.raises(ValueError, match="reset"):
        linear_scan(a, x, None, reset[:, :4])


def test_the_reset_path_on_a_mask_without_resets_gives_the_no_reset_values(monkeypatch):
    """On a GPU the scan takes the reset path without reading the mask (`may_hold_true`): it must agree."""
    a, x, h0, _ = _inputs(2, 40, 8, dtype=torch.float64)
    a.requires_grad_(True)
    h, last = linear_scan(a, x, h0, None, chunk=8)
    grad = torch.autograd.grad((h.sum() + last.sum()), a)[0]
    monkeypatch.setattr(scan, "may_hold_true", lambda mask: True)
    h_mask, last_mask = linear_scan(a, x, h0, torch.zeros(2, 40, dtype=torch.bool), chunk=8)
    grad_mask = torch.autograd.grad((h_mask.sum() + last_mask.sum()), a)[0]
    assert torch.equal(h, h_mask) and torch.equal(last, last_mask) and torch.equal(grad, grad_mask)


def test_may_hold_true_reads_the_mask_on_the_cpu_only():
    assert not may_hold_true(torch.zeros(3, dtype=torch.bool)) and may_hold_true(torch.ones(3, dtype=torch.bool))
    with FakeGPU() as gpu:
        assert may_hold_true(torch.zeros(3, dtype=torch.bool, device=gpu.device))
    assert gpu.sync_log == []
