"""Multi-head attention read as a hypernetwork (hypernetwork.md §1-2), with its variants.

For each query-key pair the H head scores ``a(q, k) = (a_1, ..., a_H)`` form a latent code that
configures a value network applied to ``x_k``:

* ``linear`` value network (standard attention):  ``y_q = sum_k sum_h a_h W^O_h W^V_h x_k``;
* ``mlp_relu`` (HYLA):  ``y_q = sum_k sum_h a_h W^O_h relu(sum_h' a_h' W^V_h' x_k)``;
* ``mlp_linear``: the same without the ReLU.

The scores are normalised by a softmax over keys, by nothing (linear attention) or by an RMS norm
over the head axis (``rms_head``). ``ATTENTION_KINDS`` names the combinations the paper uses.
"""

import math
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from repdyn.nn.positional import T5RelativeBias, alibi_bias, alibi_slopes
from repdyn.nn.rope import apply_rope

Normalization = Literal["softmax", "none", "rms_head"]
ValueNetwork = Literal["linear", "mlp_linear", "mlp_relu"]

# hypernetwork.md §2 "Variants": our name -> (score normalisation, value network); the official
# `sequence_mixer` name is in the comment.
ATTENTION_KINDS: dict[str, tuple[Normalization, ValueNetwork]] = {
    "softmax": ("softmax", "linear"),  # softmax_attention
    "linear": ("none", "linear"),  # linear_attention
    "linear_rms_head": ("rms_head", "linear"),  # linear_attention_rms_head
    "hyla": ("rms_head", "mlp_relu"),  # linear_hypatt
    "hyla_no_rms_head": ("none", "mlp_relu"),  # linear_hypatt_no_rms_head
    "hyla_mlp_linear": ("rms_head", "mlp_linear"),  # linear_hypatt_mlp_linear
    "hyla_mlp_linear_no_rms_head": ("none", "mlp_linear"),  # linear_hypatt_mlp_linear_no_rms_head
    "softmax_hyla": ("softmax", "mlp_relu"),  # softmax_hypatt
}
# Position encodings that act inside attention; "sinusoidal" is added to the embeddings instead.
ATTENTION_POSITIONALS = ("none", "rope", "alibi", "t5")

RMS_HEAD_EPS = 1e-6  # hypernetwork.md §2.2: RMS over heads, no learnable scale, eps 1e-6


def visibility_mask(
    length: int,
    *,
    causal: bool,
    window: int | None,
    key_padding_mask: Tensor | None = None,
    device: torch.device | None = None,
) -> Tensor | None:
    """Which keys each query may see, ``[B or 1, 1, T, T]`` bool (True = visible), or None for all.

    Order is the sequence index. ``causal``: key index <= query index. ``window`` w: only keys with
    ``|q - k| < w`` (so a causal query sees itself and the w - 1 tokens before it).
    ``key_padding_mask`` ``[B, T]``: False marks padding keys.
    """
    mask = None
    if causal or window is not None:
        idx = torch.arange(length, device=device)
        offset = idx[:, None] - idx[None, :]  # query - key
        mask = torch.ones(length, length, dtype=torch.bool, device=device)
        if causal:
            mask = mask & (offset >= 0)
        if window is not None:
            mask = mask & (offset.abs() < window)
        mask = mask[None, None]
    if key_padding_mask is not None:
        keys = key_padding_mask.to(torch.bool)[:, None, None, :]
        mask = keys if mask is None else mask & keys
    return mask


def normalize_scores(scores: Tensor, mask: Tensor | None, normalization: Normalization) -> Tensor:
    """Turn raw scores ``[B, H, Tq, Tk]`` into the latent code ``a``; masked pairs get exactly 0."""
    if normalization == "softmax":
        if mask is not None:
            scores = scores.masked_fill(~mask, torch.finfo(scores.dtype).min)
        a = torch.softmax(scores, dim=-1)
    elif normalization == "rms_head":
        s = scores.to(torch.promote_types(scores.dtype, torch.float32))  # stats in >= fp32
        a = (s * torch.rsqrt(s.square().mean(dim=1, keepdim=True) + RMS_HEAD_EPS)).to(scores.dtype)
    elif normalization == "none":
        a = scores
    else:
        raise ValueError(f"unknown attention normalization {normalization!r}")
    return a if mask is None else a.masked_fill(~mask, 0.0)


def apply_value_network(a: Tensor, v: Tensor, value_network: ValueNetwork) -> Tensor:
    """Apply the value network configured by the latent code ``a`` ``[B, H, Tq, Tk]``.

    ``v`` is ``[B, Tk, H, d]`` (``W^V_h x_k`` per head); the result ``[B, Tq, H, d]`` goes to the
    output projection ``W^O``. For the generated MLPs the order follows the official code
    (hypernetwork.md §2.5): contract heads first, nonlinearity, then contract keys.
    """
    if value_network == "linear":
        return torch.einsum("bhqk,bkhd->bqhd", a, v)
    hidden = torch.einsum("bhqk,bkhd->bqkd", a, v)  # [B, Tq, Tk, d]: one hidden layer per pair
    if value_network == "mlp_relu":
        hidden = torch.relu(hidden)
    elif value_network != "mlp_linear":
        raise ValueError(f"unknown value network {value_network!r}")
    return torch.einsum("bhqk,bqkd->bqhd", a, hidden)


class MultiHeadAttention(nn.Module):
    """Self-attention with a selectable score normalisation, value network and position encoding.

    ``qk_dim`` and ``v_dim`` are totals over heads (hypernetwork.md §3: sRAVEN uses 64 for 16
    heads, so a per-head value dim of 4 is the hidden width of HYLA's generated network).
    """

    def __init__(
        self,
        d_model: int,
        num_heads: int,
        *,
        qk_dim: int | None = None,
        v_dim: int | None = None,
        kind: str = "softmax",
        positional: str = "none",
        causal: bool = True,
        window: int | None = None,
        bias: bool = True,
        rope_base: float = 10_000.0,
        rope_fraction: float = 1.0,
        t5_num_buckets: int = 32,
        t5_max_distance: int = 128,
        t5_bidirectional: bool = False,
    ) -> None:
        super().__init__()
        if kind not in ATTENTION_KINDS:
            accepted = sorted(ATTENTION_KINDS)
            raise ValueError(f"unknown attention kind {kind!r}; accepted: {accepted}")
        if positional not in ATTENTION_POSITIONALS:
            raise ValueError(
                f"unknown attention positional {positional!r}; accepted: {ATTENTION_POSITIONALS}"
            )
        qk_dim = qk_dim or d_model
        v_dim = v_dim or d_model
        if qk_dim % num_heads or v_dim % num_heads:
            raise ValueError(f"qk_dim {qk_dim} and v_dim {v_dim} must be divisible by {num_heads}")
        if window is not None and window < 1:
            raise ValueError(f"window must be >= 1 or None, got {window}")
        self.num_heads = num_heads
        self.kind = kind
        self.normalization, self.value_network = ATTENTION_KINDS[kind]
        self.positional = positional
        self.causal = causal
        self.window = window
        self.rope_base = rope_base
        self.rope_fraction = rope_fraction
        self.query = nn.Linear(d_model, qk_dim, bias=bias)
        self.key = nn.Linear(d_model, qk_dim, bias=bias)
        self.value = nn.Linear(d_model, v_dim, bias=bias)
        self.out = nn.Linear(v_dim, d_model, bias=bias)
        if positional == "alibi":
            self.register_buffer("alibi_slopes", alibi_slopes(num_heads), persistent=False)
        self.relative_bias = (
            T5RelativeBias(
                num_heads,
                num_buckets=t5_num_buckets,
                max_distance=t5_max_distance,
                bidirectional=t5_bidirectional,
            )
            if positional == "t5"
            else None
        )

    def score_bias(self, positions: Tensor) -> Tensor | None:
        """Additive position bias on the scores (ALiBi or T5), ``[B, H, T, T]``, or None."""
        if self.positional == "alibi":
            return alibi_bias(self.alibi_slopes, positions, positions)
        if self.relative_bias is not None:
            return self.relative_bias(positions, positions)
        return None

    def forward(
        self,
        x: Tensor,
        positions: Tensor | None = None,
        key_padding_mask: Tensor | None = None,
        *,
        return_latents: bool = False,
    ) -> tuple[Tensor, Tensor | None]:
        """Attend over ``x`` ``[B, T, d_model]``; return the output and, if asked, the latent code.

        ``positions`` ``[B, T]`` (default ``0..T-1``) feed RoPE / ALiBi / T5 only; masks follow the
        sequence index. The latent code is the normalised score tensor ``a`` ``[B, H, T, T]``
        actually used to mix the values.
        """
        batch, length, _ = x.shape
        if positions is None:
            positions = torch.arange(length, device=x.device).expand(batch, length)
        q = self.query(x).unflatten(-1, (self.num_heads, -1))  # [B, T, H, dk]
        k = self.key(x).unflatten(-1, (self.num_heads, -1))
        v = self.value(x).unflatten(-1, (self.num_heads, -1))  # [B, T, H, dv]
        if self.positional == "rope":
            q = apply_rope(q, positions, base=self.rope_base, fraction=self.rope_fraction)
            k = apply_rope(k, positions, base=self.rope_base, fraction=self.rope_fraction)
        bias = self.score_bias(positions)
        fused = self.kind == "softmax" and not return_latents and key_padding_mask is None
        kernel_causal = fused and self.causal and self.window is None and bias is None
        mask = None
        if not kernel_causal:  # the fused kernel applies a plain causal mask itself
            mask = visibility_mask(
                length,
                causal=self.causal,
                window=self.window,
                key_padding_mask=key_padding_mask,
                device=x.device,
            )
        scale = 1.0 / math.sqrt(q.shape[-1])
        if fused:
            mixed = self._fused_softmax(q, k, v, bias, mask, scale, is_causal=kernel_causal)
            return self.out(mixed.flatten(-2)), None
        scores = torch.einsum("bqhd,bkhd->bhqk", q * scale, k)
        if bias is not None:
            scores = scores + bias.to(scores.dtype)
        a = normalize_scores(scores, mask, self.normalization)
        mixed = apply_value_network(a, v, self.value_network)
        return self.out(mixed.flatten(-2)), (a if return_latents else None)

    @staticmethod
    def _fused_softmax(
        q: Tensor,
        k: Tensor,
        v: Tensor,
        bias: Tensor | None,
        mask: Tensor | None,
        scale: float,
        *,
        is_causal: bool,
    ) -> Tensor:
        """Softmax attention through PyTorch's fused kernel (no T x T tensor when causal)."""
        attn_mask = mask
        if bias is not None:
            attn_mask = bias.to(q.dtype)
            if mask is not None:
                attn_mask = attn_mask.masked_fill(~mask, float("-inf"))
        out = F.scaled_dot_product_attention(
            q.transpose(1, 2),
            k.transpose(1, 2),
            v.transpose(1, 2),
            attn_mask=attn_mask,
            is_causal=is_causal,
            scale=scale,
        )
        return out.transpose(1, 2)  # [B, T, H, dv]
