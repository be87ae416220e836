"""A small pre-norm transformer: encoder (``causal=False``) or decoder-only LM (``causal=True``).

Attention variants (softmax, linear, HYLA, ...) and position encodings come from ``repdyn.nn``;
everything is picked by one frozen ``TransformerConfig``. Besides logits the model returns the
residual stream after every block and, on request, each layer's latent code (hypernetwork.md §1),
which the hypernetwork and over-squashing studies probe.
"""

import math
from dataclasses import dataclass, fields

import torch
from torch import Tensor, nn

from repdyn.bench.errors import ConfigError
from repdyn.nn.attention import ATTENTION_KINDS, MultiHeadAttention
from repdyn.nn.positional import sinusoidal_embedding

POSITIONALS = ("none", "rope", "alibi", "sinusoidal", "t5")
NORMS = ("layer", "rms")
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
NORM_EPS = 1e-6  # flax LayerNorm default, as in the official HYLA transformer (hypernetwork.md §8)


@dataclass(frozen=True)
class TransformerConfig:
    """Everything that defines a transformer.

    Inputs are token ids when ``vocab_size`` is set, else continuous vectors of ``input_dim``
    (sRAVEN one-hot panels, fuzzy-logic (x, y) pairs) mapped by a linear embedding.
    ``qk_dim``/``v_dim`` are totals over heads (default ``d_model``). ``window`` limits attention to
    keys with ``|q - k| < window``. ``dtype`` is the parameter and compute precision.
    """

    vocab_size: int | None = None
    input_dim: int | None = None
    output_dim: int | None = None  # default: vocab_size (a language-model head)
    d_model: int = 128
    num_layers: int = 2
    num_heads: int = 4
    qk_dim: int | None = None
    v_dim: int | None = None
    mlp_dim: int = 256
    attention: str = "softmax"
    positional: str = "none"
    causal: bool = True
    window: int | None = None
    norm: str = "layer"
    bias: bool = True
    rope_base: float = 10_000.0
    rope_fraction: float = 1.0
    t5_num_buckets: int = 32
    t5_max_distance: int = 128
    t5_bidirectional: bool = False
    dtype: str = "float32"

    def __post_init__(self) -> None:
        if (self.vocab_size is None) == (self.input_dim is None):
            raise ConfigError("vocab_size", "set exactly one of vocab_size (tokens) or input_dim")
        if self.output_dim is None and self.vocab_size is None:
            raise ConfigError("output_dim", "required when inputs are continuous (input_dim)")
        for name in ("d_model", "num_layers", "num_heads", "mlp_dim"):
            if getattr(self, name) < 1:
                raise ConfigError(name, f"must be >= 1, got {getattr(self, name)}")
        if self.attention not in ATTENTION_KINDS:
            accepted = sorted(ATTENTION_KINDS)
            raise ConfigError("attention", f"{self.attention!r}; accepted: {accepted}")
        if self.positional not in POSITIONALS:
            raise ConfigError("positional", f"{self.positional!r}; accepted: {POSITIONALS}")
        if self.norm not in NORMS:
            raise ConfigError("norm", f"{self.norm!r}; accepted: {NORMS}")
        if self.dtype not in DTYPES:
            raise ConfigError("dtype", f"{self.dtype!r}; accepted: {sorted(DTYPES)}")
        if self.window is not None and self.window < 1:
            raise ConfigError("window", f"must be >= 1 or None, got {self.window}")
        for name, total in (("qk_dim", self.qk_dim), ("v_dim", self.v_dim)):
            if (total or self.d_model) % self.num_heads:
                width = total or self.d_model
                raise ConfigError(name, f"{width} not divisible by num_heads {self.num_heads}")

    def replace(self, **changes: object) -> "TransformerConfig":
        """A copy with some fields changed (validated again)."""
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        values.update(changes)
        return TransformerConfig(**values)


@dataclass
class TransformerOutput:
    """What one forward pass exposes.

    ``hidden_states[i]`` is the residual stream entering block ``i`` (``i = 0``: embeddings plus
    absolute positions) and ``hidden_states[-1]`` the output of the last block; ``final`` is the
    last block's output after the final norm (the representation the head reads); ``latents[i]``
    is block ``i``'s latent code ``[B, H, T, T]`` when asked for.
    """

    logits: Tensor
    hidden_states: tuple[Tensor, ...]
    final: Tensor
    latents: tuple[Tensor, ...] | None = None


def _make_norm(config: TransformerConfig) -> nn.Module:
    if config.norm == "layer":
        return nn.LayerNorm(config.d_model, eps=NORM_EPS)
    return nn.RMSNorm(config.d_model, eps=NORM_EPS)


class Block(nn.Module):
    """Pre-norm block: ``x + attn(norm(x))`` then ``x + mlp(norm(x))`` (GELU MLP)."""

    def __init__(self, config: TransformerConfig) -> None:
        super().__init__()
        attention_positional = "none" if config.positional == "sinusoidal" else config.positional
        self.norm1 = _make_norm(config)
        self.attn = MultiHeadAttention(
            config.d_model,
            config.num_heads,
            qk_dim=config.qk_dim,
            v_dim=config.v_dim,
            kind=config.attention,
            positional=attention_positional,
            causal=config.causal,
            window=config.window,
            bias=config.bias,
            rope_base=config.rope_base,
            rope_fraction=config.rope_fraction,
            t5_num_buckets=config.t5_num_buckets,
            t5_max_distance=config.t5_max_distance,
            t5_bidirectional=config.t5_bidirectional,
        )
        self.norm2 = _make_norm(config)
        self.mlp = nn.Sequential(
            nn.Linear(config.d_model, config.mlp_dim, bias=config.bias),
            nn.GELU(approximate="tanh"),  # flax's default gelu, used by the official model
            nn.Linear(config.mlp_dim, config.d_model, bias=config.bias),
        )

    def forward(
        self,
        x: Tensor,
        positions: Tensor,
        key_padding_mask: Tensor | None,
        return_latents: bool,
    ) -> tuple[Tensor, Tensor | None]:
        """One block; returns the new residual stream and the latent code (or None)."""
        mixed, latents = self.attn(
            self.norm1(x), positions, key_padding_mask, return_latents=return_latents
        )
        x = x + mixed
        return x + self.mlp(self.norm2(x)), latents


class Transformer(nn.Module):
    """Embedding -> blocks -> final norm -> linear head, configured by ``TransformerConfig``."""

    def __init__(self, config: TransformerConfig) -> None:
        super().__init__()
        self.config = config
        if config.vocab_size is not None:
            self.embedding: nn.Module = nn.Embedding(config.vocab_size, config.d_model)
        else:
            self.embedding = nn.Linear(config.input_dim, config.d_model, bias=config.bias)
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.num_layers))
        self.norm_f = _make_norm(config)
        self.head = nn.Linear(
            config.d_model, config.output_dim or config.vocab_size, bias=config.bias
        )
        self.apply(_init_weights)
        self.to(DTYPES[config.dtype])

    @property
    def dtype(self) -> torch.dtype:
        """The parameters' (and so the forward pass's) floating-point type."""
        return self.head.weight.dtype

    def embed(self, inputs: Tensor) -> Tensor:
        """Token ids ``[B, T]`` or continuous inputs ``[B, T, input_dim]`` -> ``[B, T, d_model]``.

        No position information is added here, so gradients with respect to this output are the
        per-token input sensitivities the over-squashing probe measures.
        """
        if self.config.vocab_size is None:
            inputs = inputs.to(self.dtype)
        return self.embedding(inputs)

    def forward(
        self,
        inputs: Tensor,
        positions: Tensor | None = None,
        key_padding_mask: Tensor | None = None,
    ) -> Tensor:
        """Logits ``[B, T, output_dim]`` for every position."""
        return self.run(inputs, positions, key_padding_mask).logits

    def run(
        self,
        inputs: Tensor,
        positions: Tensor | None = None,
        key_padding_mask: Tensor | None = None,
        *,
        return_latents: bool = False,
    ) -> TransformerOutput:
        """Forward pass exposing hidden states (and latent codes when ``return_latents``)."""
        return self.run_embeddings(
            self.embed(inputs), positions, key_padding_mask, return_latents=return_latents
        )

    def run_embeddings(
        self,
        embeddings: Tensor,
        positions: Tensor | None = None,
        key_padding_mask: Tensor | None = None,
        *,
        return_latents: bool = False,
    ) -> TransformerOutput:
        """Forward pass from token embeddings ``[B, T, d_model]`` (as returned by ``embed``)."""
        batch, length, _ = embeddings.shape
        if positions is None:
            positions = torch.arange(length, device=embeddings.device).expand(batch, length)
        x = embeddings.to(self.dtype)
        if self.config.positional == "sinusoidal":
            x = x + sinusoidal_embedding(positions, self.config.d_model).to(self.dtype)
        hidden_states = [x]
        latents = []
        for block in self.blocks:
            x, a = block(x, positions, key_padding_mask, return_latents)
            hidden_states.append(x)
            latents.append(a)
        final = self.norm_f(x)
        return TransformerOutput(
            logits=self.head(final),
            hidden_states=tuple(hidden_states),
            final=final,
            latents=tuple(latents) if return_latents else None,
        )


def _init_weights(module: nn.Module) -> None:
    """LeCun-normal linear kernels and zero biases (flax's defaults, as in the official model);
    unit-normal token embeddings."""
    if isinstance(module, nn.Linear):
        nn.init.normal_(module.weight, std=1.0 / math.sqrt(module.in_features))
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.Embedding):
        nn.init.normal_(module.weight, std=1.0)
