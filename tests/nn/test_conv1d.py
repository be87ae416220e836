"""Causal Conv1D against its definition, with document masking and carried state."""

import torch

from repdyn.nn import conv1d
from repdyn.nn.conv1d import Conv1D


def _definition(conv, x, reset):
    """y_t = b + sum_s w[K-1-s] x_{t-s}, skipping inputs from an earlier document."""
    batch, length, _ = x.shape
    k = conv.temporal_width
    doc = torch.cumsum(reset.long(), dim=1)
    y = torch.zeros_like(x)
    for b in range(batch):
        for t in range(length):
            y[b, t] = conv.b
            for s in range(k):
                if t - s >= 0 and doc[b, t - s] == doc[b, t]:
                    y[b, t] += conv.w[k - 1 - s] * x[b, t - s]
    return y


def _conv(seed=0):
    torch.manual_seed(seed)
    conv = Conv1D(5).double()
    with torch.no_grad():
        conv.w.normal_()
        conv.b.normal_()
    return conv


def test_conv_matches_definition_with_resets():
    conv = _conv()
    x = torch.randn(2, 12, 5, dtype=torch.float64)
    reset = torch.zeros(2, 12, dtype=torch.bool)
    reset[0, 3] = reset[0, 5] = reset[1, 10] = True
    y, _ = conv(x, reset)
    torch.testing.assert_close(y, _definition(conv, x, reset))


def test_last_tap_multiplies_the_current_token():
    conv = _conv(1)
    x = torch.zeros(1, 6, 5, dtype=torch.float64)
    x[0, 2] = 1.0  # an impulse at t = 2
    y, _ = conv(x, torch.zeros(1, 6, dtype=torch.bool))
    for shift in range(4):  # y_{2+s} - b = w[3 - s]
        torch.testing.assert_close(y[0, 2 + shift] - conv.b, conv.w[3 - shift])


def test_state_continuation_equals_one_call_across_resets():
    conv = _conv(2)
    x = torch.randn(3, 20, 5, dtype=torch.float64)
    reset = torch.rand(3, 20) < 0.2
    reset[0, 6] = True  # a reset one step before a chunk boundary
    full, _ = conv(x, reset)
    state, pieces = None, []
    for lo, hi in [(0, 7), (7, 8), (8, 9), (9, 15), (15, 20)]:
        y, state = conv(x[:, lo:hi], reset[:, lo:hi], state)
        pieces.append(y)
    torch.testing.assert_close(torch.cat(pieces, 1), full)
    assert state.shape == (3, 3, 5)


def test_the_reset_path_on_a_mask_without_resets_gives_the_no_reset_values(monkeypatch):
    """On a GPU the conv takes the reset path without reading the mask (`may_hold_true`): it must agree."""
    conv = _conv(3)
    x, no_reset = torch.randn(2, 9, 5, dtype=torch.float64), torch.zeros(2, 9, dtype=torch.bool)
    y, state = conv(x, no_reset)
    monkeypatch.setattr(conv1d, "may_hold_true", lambda mask: True)
    y_mask, state_mask = conv(x, no_reset)
    assert torch.equal(y, y_mask) and torch.equal(state, state_mask)
