"""Local MQA against a per-query loop, and its ring-buffer cache against the full forward."""

import pytest
import torch

from repdyn.nn.local_attention import LocalAttention
from repdyn.nn.rope import apply_rope


def _segment_pos(reset):
    pos = torch.zeros(reset.shape, dtype=torch.long)
    for b in range(reset.shape[0]):
        for t in range(1, reset.shape[1]):
            pos[b, t] = 0 if reset[b, t] else pos[b, t - 1] + 1
    return pos


def _naive(layer, x, segment_pos):
    """Every query attends, head by head, to keys of its document at most `window` back."""
    batch, length, _ = x.shape
    q = apply_rope(
        layer.proj_q(x).unflatten(-1, (layer.num_heads, layer.head_dim)), segment_pos, fraction=0.5
    )
    k = apply_rope(layer.proj_k(x)[:, :, None], segment_pos, fraction=0.5)[:, :, 0]
    v = layer.proj_v(x)
    doc = torch.cumsum((segment_pos == 0).long(), 1)
    out = torch.zeros(batch, length, layer.num_heads, layer.head_dim, dtype=x.dtype)
    for b in range(batch):
        for t in range(length):
            lo = 0 if layer.window is None else max(0, t - layer.window)
            keys = [s for s in range(lo, t + 1) if doc[b, s] == doc[b, t]]
            for h in range(layer.num_heads):
                weights = torch.softmax(
                    torch.stack([q[b, t, h] @ k[b, s] for s in keys]) / layer.head_dim**0.5, 0
                )
                out[b, t, h] = sum(w * v[b, s] for w, s in zip(weights, keys, strict=True))
    return layer.proj_final(out.flatten(2))


@pytest.mark.parametrize("window,length", [(4, 4), (4, 15), (3, 13), (None, 11)])
def test_attention_matches_per_query_loop(window, length):
    torch.manual_seed(length)
    layer = LocalAttention(16, 2, window).double()
    x = torch.randn(2, length, 16, dtype=torch.float64)
    reset = torch.rand(2, length) < 0.15
    reset[:, 0] = True
    pos = _segment_pos(reset)
    y, _ = layer(x, pos)
    torch.testing.assert_close(y, _naive(layer, x, pos))


@pytest.mark.parametrize("window", [3, 5, None])
def test_cached_chunks_and_steps_equal_full_forward(window):
    torch.manual_seed(0)
    layer = LocalAttention(16, 4, window).double()
    x = torch.randn(2, 30, 16, dtype=torch.float64)
    reset = torch.rand(2, 30) < 0.1
    reset[:, 0] = True
    reset[0, 17] = True  # a reset inside a decoded stretch
    pos = _segment_pos(reset)
    full, _ = layer(x, pos)
    cache, pieces = None, []
    for lo, hi in [
        (0, 2),
        (2, 12),
        (12, 13),
        (13, 14),
        (14, 15),
        (15, 16),
        (16, 17),
        (17, 18),
        (18, 29),
        (29, 30),
    ]:
        y, cache = layer(x[:, lo:hi], pos[:, lo:hi], cache)
        pieces.append(y)
    torch.testing.assert_close(torch.cat(pieces, 1), full)
    held = 30 if window is None else window
    assert cache.keys.shape == (2, held, 4) and cache.num_tokens == 30
