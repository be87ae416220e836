"""Attention variants against explicit loop references and the official JAX module's outputs."""

import math
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from repdyn.nn.attention import (
    ATTENTION_KINDS,
    MultiHeadAttention,
    apply_value_network,
    normalize_scores,
)

FIXTURE = Path(__file__).parents[1] / "fixtures" / "hypernetwork" / "official_attention.safetensors"
D_MODEL, HEADS, QK, V = 6, 3, 12, 6



def make_attention(kind: str, **kwargs) -> MultiHeadAttention:
    torch.manual_seed(0)
    return MultiHeadAttention(D_MODEL, HEADS, qk_dim=QK, v_dim=V, kind=kind, **kwargs).double()


def head_weights(attn: MultiHeadAttention, h: int):
    """(W^Q_h, b^Q_h, W^K_h, b^K_h, W^V_h, b^V_h, W^O_h) of one head, sliced from the projections."""
    dq, dv = QK // HEADS, V // HEADS
    q, k, v, o = attn.query, attn.key, attn.value, attn.out
    sq, sv = slice(h * dq, (h + 1) * dq), slice(h * dv, (h + 1) * dv)

    def bias(layer, part):
        return torch.zeros(part.stop - part.start, dtype=torch.float64) if layer.bias is None else layer.bias[part]

    wq, wk, wv, wo = q.weight[sq], k.weight[sq], v.weight[sv], o.weight[:, sv]
    return wq, bias(q, sq), wk, bias(k, sq), wv, bias(v, sv), wo


def loop_scores(attn: MultiHeadAttention, x: torch.Tensor, b: int, q: int, k: int) -> torch.Tensor:
    """Raw scores s_h(q, k) = q_h . k_h / sqrt(d), one head at a time."""
    out = []
    for h in range(HEADS):
        wq, bq, wk, bk, *_ = head_weights(attn, h)
        qh, kh = wq @ x[b, q] + bq, wk @ x[b, k] + bk
        out.append(qh @ kh / math.sqrt(QK // HEADS))
    return torch.stack(out)


@torch.no_grad()
def test_softmax_attention_equals_its_hypernetwork_form():
    """hypernetwork.md §1: y_q = sum_k [sum_h a_h W^O_h W^V_h] x_k (+ biases), causal softmax."""
    attn = make_attention("softmax", causal=True)
    x = torch.randn(2, 5, D_MODEL, dtype=torch.float64)
    expected = torch.zeros(2, 5, D_MODEL, dtype=torch.float64)
    for b in range(2):
        for q in range(5):
            scores = torch.stack([loop_scores(attn, x, b, q, k) for k in range(q + 1)], dim=1)
            a = torch.softmax(scores, dim=1)  # over keys, per head
            y = attn.out.bias.clone()
            for k in range(q + 1):
                for h in range(HEADS):
                    *_, wv, bv, wo = head_weights(attn, h)
                    y += a[h, k] * (wo @ wv @ x[b, k] + wo @ bv)
            expected[b, q] = y
    fused, _ = attn(x)
    explicit, _ = attn(x, return_latents=True)
    torch.testing.assert_close(fused, expected, rtol=0, atol=1e-10)
    torch.testing.assert_close(explicit, expected, rtol=0, atol=1e-10)


@torch.no_grad()
def test_linear_attention_equals_explicit_sum():
    """Linear attention: raw scores, no feature map: y_q = sum_{k<=q} sum_h s_h W^O_h v_h(k)."""
    attn = make_attention("linear", causal=True)
    x = torch.randn(1, 4, D_MODEL, dtype=torch.float64)
    got, _ = attn(x)
    for q in range(4):
        y = attn.out.bias.clone()
        for k in range(q + 1):
            s = loop_scores(attn, x, 0, q, k)
            for h in range(HEADS):
                *_, wv, bv, wo = head_weights(attn, h)
                y += s[h] * (wo @ (wv @ x[0, k] + bv))
        torch.testing.assert_close(got[0, q], y, rtol=0, atol=1e-10)


def _generated_weights(attn, a):
    """W^V(z) = sum_h a_h W^V_h  [dv, d_in] and W^O(z) = sum_h a_h W^O_h  [d_out, dv]."""
    wv = sum(a[h] * head_weights(attn, h)[4] for h in range(HEADS))
    wo = sum(a[h] * head_weights(attn, h)[6] for h in range(HEADS))
    return wv, wo


@pytest.mark.parametrize("kind", ["hyla_mlp_linear", "hyla"])
@torch.no_grad()
def test_hyla_equals_its_generated_network(kind):
    """hypernetwork.md §2: y_q = sum_k W^O(z) act(W^V(z) x_k), z = RMS-over-heads scores."""
    torch.manual_seed(0)
    attn = MultiHeadAttention(D_MODEL, HEADS, qk_dim=QK, v_dim=V, kind=kind, bias=False).double()
    x = torch.randn(1, 5, D_MODEL, dtype=torch.float64)
    got, _ = attn(x)
    act = torch.relu if kind == "hyla" else (lambda t: t)
    for q in range(5):
        y = torch.zeros(D_MODEL, dtype=torch.float64)
        for k in range(q + 1):
            s = loop_scores(attn, x, 0, q, k)
            z = s / torch.sqrt((s**2).mean() + 1e-6)  # RMS over heads, eps 1e-6, no scale
            wv, wo = _generated_weights(attn, z)
            y += wo @ act(wv @ x[0, k])
        torch.testing.assert_close(got[0, q], y, rtol=0, atol=1e-10)


@torch.no_grad()
def test_rms_head_latent_code_has_unit_mean_square_over_heads():
    """a_h = s_h / sqrt(mean_h s^2 + 1e-6), so mean_h a_h^2 = m / (m + 1e-6) with m = mean_h s^2."""
    x = torch.randn(2, 7, D_MODEL, dtype=torch.float64)
    _, a = make_attention("hyla", causal=False)(x, return_latents=True)
    _, raw = make_attention("linear", causal=False)(x, return_latents=True)  # same seed, same weights
    m = raw.square().mean(dim=1)
    torch.testing.assert_close(a.square().mean(dim=1), m / (m + 1e-6), rtol=0, atol=1e-12)
    assert (a.square().mean(dim=1)[m > 1e-3] > 0.999).all()


@pytest.mark.parametrize("kind", sorted(ATTENTION_KINDS))
@torch.no_grad()
def test_masked_keys_contribute_nothing(kind):
    attn = make_attention(kind, causal=False)
    x = torch.randn(2, 6, D_MODEL, dtype=torch.float64)
    padding = torch.ones(2, 6, dtype=torch.bool)
    padding[:, 2] = False
    x2 = x.clone()
    x2[:, 2] += 5 * torch.randn(2, D_MODEL, dtype=torch.float64)
    y1, a = attn(x, key_padding_mask=padding, return_latents=True)
    y2, _ = attn(x2, key_padding_mask=padding)
    keep = [0, 1, 3, 4, 5]  # the perturbed token's own query changes; every other output must not
    torch.testing.assert_close(y1[:, keep], y2[:, keep], rtol=0, atol=1e-12)
    assert (a[..., 2] == 0).all()


@pytest.mark.parametrize("kind", sorted(ATTENTION_KINDS))
@torch.no_grad()
def test_causal_mask_future_tokens_do_not_change_the_past(kind):
    attn = make_attention(kind, causal=True)
    x = torch.randn(1, 8, D_MODEL, dtype=torch.float64)
    x2 = x.clone()
    x2[:, 5:] = torch.randn(1, 3, D_MODEL, dtype=torch.float64)
    y1, _ = attn(x)
    y2, _ = attn(x2)
    torch.testing.assert_close(y1[:, :5], y2[:, :5], rtol=0, atol=1e-12)
    assert (y1[:, 5:] - y2[:, 5:]).abs().amax() > 1e-3


@pytest.mark.parametrize("kind", ["softmax", "linear", "hyla"])
@pytest.mark.parametrize("causal", [True, False])
@torch.no_grad()
def test_sliding_window_ignores_tokens_outside(kind, causal):
    window = 3
    attn = make_attention(kind, causal=causal, window=window)
    x = torch.randn(1, 10, D_MODEL, dtype=torch.float64)
    x2 = x.clone()
    x2[:, 4] += torch.randn(D_MODEL, dtype=torch.float64)
    y1, _ = attn(x)
    y2, _ = attn(x2)
    changed = (y1 - y2).abs().amax(dim=-1)[0] > 1e-9
    inside = [q for q in range(10) if abs(q - 4) < window and (q >= 4 or not causal)]
    assert changed.nonzero().flatten().tolist() == inside


@pytest.mark.parametrize("positional", ["none", "rope", "alibi", "t5"])
@pytest.mark.parametrize("window", [None, 4])
@torch.no_grad()
def test_fused_softmax_path_equals_explicit_path(positional, window):
    attn = make_attention("softmax", positional=positional, window=window)
    x = torch.randn(2, 9, D_MODEL, dtype=torch.float64)
    fused, none = attn(x)
    explicit, _ = attn(x, return_latents=True)
    assert none is None
    torch.testing.assert_close(fused, explicit, rtol=0, atol=1e-10)


@pytest.mark.parametrize("kind", sorted(ATTENTION_KINDS))
@torch.no_grad()
def test_latent_code_is_the_score_tensor_that_mixes_the_values(kind):
    attn = make_attention(kind, positional="alibi")
    x = torch.randn(2, 5, D_MODEL, dtype=torch.float64)
    y, a = attn(x, return_latents=True)
    assert a.shape == (2, HEADS, 5, 5)
    v = attn.value(x).unflatten(-1, (HEADS, -1))
    rebuilt = attn.out(apply_value_network(a, v, attn.value_network).flatten(-2))
    torch.testing.assert_close(rebuilt, y, rtol=0, atol=1e-12)
    # and a is the normalised score of each (query, key) pair, recomputed by hand
    scores = torch.stack(
        [torch.stack([loop_scores(attn, x, 1, q, k) for k in range(5)], -1) for q in range(5)], 1
    )  # [H, Tq, Tk]
    scores = scores + attn.score_bias(torch.arange(5)[None])[0]
    causal = torch.tril(torch.ones(5, 5, dtype=torch.bool))[None, None]
    expected = normalize_scores(scores[None], causal, attn.normalization)[0]
    torch.testing.assert_close(a[1], expected, rtol=0, atol=1e-12)


def test_unknown_kind_is_rejected_with_the_accepted_names():
    with pytest.raises(ValueError, match="hyla"):
        MultiHeadAttention(4, 2, kind="performer")


OFFICIAL_KINDS = {
    ("softmax", "default"): "softmax",
    ("none", "default"): "linear",
    ("rms_head", "default"): "linear_rms_head",
    ("rms_head", "mlp_relu"): "hyla",
    ("none", "mlp_relu"): "hyla_no_rms_head",
    ("rms_head", "mlp_linear"): "hyla_mlp_linear",
    ("none", "mlp_linear"): "hyla_mlp_linear_no_rms_head",
    ("softmax", "mlp_relu"): "softmax_hyla",
}


@pytest.mark.parametrize("official, kind", sorted(OFFICIAL_KINDS.items()))
@torch.no_grad()
def test_matches_official_jax_module(official, kind):
    """Fixture from smonsays/hypernetwork-attention's Flax module (make_official_fixture.py):
    same weights, T5 relative bias table, causal + padding mask -> same outputs and latent codes."""
    t = load_file(FIXTURE)
    features = t["x"].shape[-1]
    heads, buckets = t["rel_embedding"].shape
    attn = MultiHeadAttention(
        features,
        heads,
        qk_dim=t["query.kernel"].shape[1] * t["query.kernel"].shape[2],
        v_dim=t["value.kernel"].shape[1] * t["value.kernel"].shape[2],
        kind=kind,
        positional="t5",
        causal=True,
        t5_num_buckets=buckets,
        t5_max_distance=buckets,  # the fixture uses max_distance == num_buckets, as the paper's model
    )
    for name in ("query", "key", "value"):  # flax DenseGeneral kernel [in, H, d] -> torch [H*d, in]
        getattr(attn, name).weight.copy_(t[f"{name}.kernel"].flatten(1).T)
        getattr(attn, name).bias.copy_(t[f"{name}.bias"].flatten())
    attn.out.weight.copy_(t["out.kernel"].flatten(0, 1).T)  # [H, d, out] -> [out, H*d]
    attn.out.bias.copy_(t["out.bias"])
    attn.relative_bias.table.copy_(t["rel_embedding"])
    norm, target = official
    y, a = attn(t["x"], key_padding_mask=t["key_padding_mask"].bool(), return_latents=True)
    torch.testing.assert_close(y, t[f"out.{norm}.{target}"], rtol=0, atol=1e-5)
    visible = torch.tril(torch.ones(6, 6, dtype=torch.bool)) & t["key_padding_mask"].bool()[:, None]
    official_latent = t[f"latent.{norm}.{target}"]
    # where every key is masked the official softmax spreads weight uniformly; there are none here
    torch.testing.assert_close(a, official_latent * visible[:, None], rtol=0, atol=1e-5)
