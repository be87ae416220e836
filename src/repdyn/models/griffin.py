"""Griffin / Hawk / MQA-transformer language models with RecurrentGemma's layers (griffin.md §1).

    model = Griffin(griffin_config("griffin-small"))
    logits, cache = model(tokens)                      # tokens [B, T]; positions 0.. per row
    logits, cache = model(next_tokens, cache=cache)    # continue: one token or a whole chunk

`segment_pos` [B, T] gives each token's position inside its document; 0 starts a new
document, which resets the recurrence and masks the convolution and attention, in a full
forward and when continuing from a cache alike. Parameter names and shapes are those of the
official PyTorch checkpoint (griffin.md §4), so its `state_dict` loads as is.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from repdyn.bench.errors import CheckpointError, ConfigError
from repdyn.models.lm_inputs import checked_segment_pos
from repdyn.nn.local_attention import AttentionCache
from repdyn.nn.norms import RMSNorm
from repdyn.nn.recurrent_block import RecurrentCache
from repdyn.nn.residual_block import BlockCache, ResidualBlock

BLOCK_KINDS = ("recurrent", "attention")
PATTERNS = {  # griffin.md §1.1: block pattern cycle([R, R, A])
    "griffin": ("recurrent", "recurrent", "attention"),
    "hawk": ("recurrent",),
    "transformer": ("attention",),
}


def block_pattern(pattern: str, num_layers: int) -> tuple[str, ...]:
    """`num_layers` block kinds cycling `pattern`: griffin (R, R, A), hawk (R), transformer (A)."""
    if pattern not in PATTERNS:
        raise ConfigError(
            "pattern", f"unknown block pattern {pattern!r}; accepted: {', '.join(PATTERNS)}"
        )
    cycle = PATTERNS[pattern]
    return tuple(cycle[i % len(cycle)] for i in range(num_layers))


@dataclass(frozen=True)
class GriffinConfig:
    """Sizes and switches of a Griffin-family model (names follow the official `GriffinConfig`)."""

    vocab_size: int
    width: int
    num_heads: int
    mlp_width: int
    block_types: tuple[str, ...]
    attention_window: int | None  # None: global attention (the cache grows with the context)
    lru_width: int | None = None  # None: equal to width
    conv_width: int = 4  # griffin.md §1.2
    logits_soft_cap: float = 0.0  # 0: no soft-cap
    embeddings_scale_by_sqrt_dim: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "block_types", tuple(self.block_types))
        positive = {
            "vocab_size": self.vocab_size,
            "width": self.width,
            "num_heads": self.num_heads,
            "mlp_width": self.mlp_width,
            "lru_width": self.lru,
            "conv_width": self.conv_width,
        }
        for key, value in positive.items():
            if not isinstance(value, int) or value < 1:
                raise ConfigError(key, f"must be a positive integer; got {value!r}")
        if self.width % self.num_heads or self.lru % self.num_heads:
            raise ConfigError(
                "num_heads",
                f"must divide width {self.width} and lru_width {self.lru}; got {self.num_heads}",
            )
        if (self.width // self.num_heads) % 4:
            raise ConfigError(
                "num_heads",
                f"head_dim = width / num_heads must be a multiple of 4 (RoPE); got {self.head_dim}",
            )
        if not self.block_types or any(kind not in BLOCK_KINDS for kind in self.block_types):
            raise ConfigError(
                "block_types",
                f"must be a non-empty sequence of {BLOCK_KINDS}; got {self.block_types!r}",
            )
        if self.attention_window is not None and (
            not isinstance(self.attention_window, int) or self.attention_window < 1
        ):
            raise ConfigError(
                "attention_window",
                f"must be a positive integer or None (global); got {self.attention_window!r}",
            )
        if self.logits_soft_cap < 0:
            raise ConfigError(
                "logits_soft_cap", f"must be >= 0 (0 turns it off); got {self.logits_soft_cap}"
            )

    @property
    def lru(self) -> int:
        """The RG-LRU width L."""
        return self.width if self.lru_width is None else self.lru_width

    @property
    def num_layers(self) -> int:
        return len(self.block_types)

    @property
    def head_dim(self) -> int:
        return self.width // self.num_heads

    def with_pattern(self, pattern: str) -> GriffinConfig:
        """The same sizes with another block pattern: griffin, hawk or transformer (MQA)."""
        return dataclasses.replace(self, block_types=block_pattern(pattern, self.num_layers))

    def with_global_attention(self) -> GriffinConfig:
        """Attention over the whole context (no window): the global-attention baseline."""
        return dataclasses.replace(self, attention_window=None)

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "block_types": list(self.block_types)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GriffinConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(
                unknown[0], f"unknown Griffin config key; accepted: {', '.join(sorted(known))}"
            )
        return cls(**data)


def _preset(
    width: int,
    heads: int,
    lru: int,
    layers: int,
    pattern: str,
    window: int,
    cap: float,
    scale: bool,
    vocab: int,
) -> GriffinConfig:
    return GriffinConfig(
        vocab_size=vocab,
        width=width,
        num_heads=heads,
        mlp_width=3 * width,  # griffin.md §1.7: MLP 3 D
        block_types=block_pattern(pattern, layers),
        attention_window=window,
        lru_width=lru,
        logits_soft_cap=cap,
        embeddings_scale_by_sqrt_dim=scale,
    )


PRESETS: dict[str, GriffinConfig] = {  # griffin.md §1.7, plus CPU sizes
    "recurrentgemma-2b": _preset(2560, 10, 2560, 26, "griffin", 2048, 30.0, True, 256_000),
    "recurrentgemma-9b": _preset(4096, 16, 4096, 38, "griffin", 2048, 30.0, True, 256_000),
    "griffin-7b": _preset(4096, 32, 5632, 32, "griffin", 1024, 0.0, False, 256_000),
    "hawk-7b": _preset(4096, 32, 5632, 32, "hawk", 1024, 0.0, False, 256_000),
    "griffin-small": _preset(
        128, 4, 128, 3, "griffin", 64, 30.0, True, 256
    ),  # griffin.md §8 claim B size
    "griffin-tiny": _preset(32, 2, 32, 3, "griffin", 8, 30.0, True, 256),
}


def griffin_config(preset: str, *, pattern: str | None = None, **overrides: Any) -> GriffinConfig:
    """A preset config, optionally with another block pattern and field overrides."""
    if preset not in PRESETS:
        raise ConfigError(
            "preset", f"unknown Griffin preset {preset!r}; accepted: {', '.join(PRESETS)}"
        )
    config = PRESETS[preset]
    if pattern is not None:
        config = config.with_pattern(pattern)
    return dataclasses.replace(config, **overrides) if overrides else config


def embedding_scale(width: int) -> float:
    """sqrt(width) rounded to bf16 as the official code does (griffin.md §1.6: 50.5 for 2560)."""
    return torch.tensor(math.sqrt(width), dtype=torch.bfloat16, device="cpu").item()


@dataclass(frozen=True)
class GriffinCache:
    """Decoding state of every layer, and each row's next in-document position [B]."""

    blocks: tuple[BlockCache, ...]
    next_segment_pos: Tensor

    @property
    def nbytes(self) -> int:
        """Bytes held by the cache tensors."""
        pos = self.next_segment_pos
        return sum(block.nbytes for block in self.blocks) + pos.numel() * pos.element_size()

    def clone(self) -> GriffinCache:
        """An independent copy (continuing from it leaves this cache untouched either way)."""
        return GriffinCache(
            tuple(block.clone() for block in self.blocks), self.next_segment_pos.clone()
        )

    def index_batch(self, rows: Tensor) -> GriffinCache:
        """The states of batch `rows`, in that order; repeat a row to copy it (one prompt -> a batch)."""

        def pick(block: BlockCache) -> BlockCache:
            fields = dataclasses.fields(block)
            tensors = {f.name: getattr(block, f.name) for f in fields}
            return dataclasses.replace(
                block, **{k: v[rows] for k, v in tensors.items() if isinstance(v, Tensor)}
            )

        return GriffinCache(tuple(pick(b) for b in self.blocks), self.next_segment_pos[rows])

    def save(self, path: str | Path) -> None:
        """Write one safetensors file; the block layout travels as JSON in its metadata."""
        from safetensors.torch import save_file

        tensors: dict[str, Tensor] = {"next_segment_pos": self.next_segment_pos}
        layout = []
        for i, block in enumerate(self.blocks):
            for field in dataclasses.fields(block):
                value = getattr(block, field.name)
                if isinstance(value, Tensor):
                    tensors[f"blocks.{i}.{field.name}"] = value.contiguous()
            kind = "recurrent" if isinstance(block, RecurrentCache) else "attention"
            layout.append(
                {"kind": kind, **({"num_tokens": block.num_tokens} if kind == "attention" else {})}
            )
        save_file(
            tensors,
            str(path),
            metadata={
                "repdyn": json.dumps({"format": "griffin-cache", "version": 1, "blocks": layout})
            },
        )

    @classmethod
    def load(cls, path: str | Path) -> GriffinCache:
        """Read a file written by `save`."""
        from safetensors import SafetensorError, safe_open

        try:
            with safe_open(str(path), framework="pt") as handle:
                layout = json.loads((handle.metadata() or {}).get("repdyn", "null"))
                tensors = {key: handle.get_tensor(key) for key in handle.keys()}  # noqa: SIM118
        except (OSError, ValueError, SafetensorError) as exc:
            raise CheckpointError(f"{path}: not a readable Griffin cache file ({exc})") from exc
        if not isinstance(layout, dict) or layout.get("format") != "griffin-cache":
            raise CheckpointError(f"{path}: safetensors file without Griffin cache metadata")
        try:
            blocks: list[BlockCache] = []
            for i, entry in enumerate(layout["blocks"]):
                if entry["kind"] == "recurrent":
                    blocks.append(
                        RecurrentCache(
                            tensors[f"blocks.{i}.rg_lru_state"], tensors[f"blocks.{i}.conv1d_state"]
                        )
                    )
                else:
                    blocks.append(
                        AttentionCache(
                            tensors[f"blocks.{i}.keys"],
                            tensors[f"blocks.{i}.values"],
                            int(entry["num_tokens"]),
                            tensors[f"blocks.{i}.doc_start"],
                        )
                    )
            return cls(tuple(blocks), tensors["next_segment_pos"])
        except KeyError as exc:
            raise CheckpointError(f"{path}: Griffin cache is missing {exc.args[0]!r}") from exc


class Embedder(nn.Module):
    """Token embedding [vocab, D], tied to the output layer, optionally scaled by bf16(sqrt D)."""

    def __init__(self, vocab_size: int, width: int, scale_by_sqrt_dim: bool) -> None:
        super().__init__()
        self.scale = embedding_scale(width) if scale_by_sqrt_dim else 1.0
        self.input_embedding = nn.Parameter(torch.empty(vocab_size, width))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.normal_(self.input_embedding, std=math.sqrt(1.0 / self.input_embedding.shape[1]))

    def encode(self, tokens: Tensor) -> Tensor:
        x = nn.functional.embedding(tokens, self.input_embedding)
        return x * self.scale if self.scale != 1.0 else x

    def decode(self, x: Tensor) -> Tensor:
        return x @ self.input_embedding.T


class Griffin(nn.Module):
    """Embedding, residual blocks (recurrent or attention), final RMSNorm, tied capped logits."""

    def __init__(self, config: GriffinConfig, *, gradient_checkpointing: bool = False) -> None:
        super().__init__()
        self.config = config
        self.gradient_checkpointing = gradient_checkpointing
        self.embedder = Embedder(
            config.vocab_size, config.width, config.embeddings_scale_by_sqrt_dim
        )
        final_scale = (
            2.0 / config.num_layers
        )  # griffin.md §1.4: last projections, variance 2 / num_layers
        self.blocks = nn.ModuleList(
            ResidualBlock(
                kind,
                config.width,
                config.mlp_width,
                config.num_heads,
                config.lru,
                config.attention_window,
                config.conv_width,
                final_scale,
            )
            for kind in config.block_types
        )
        self.final_norm = RMSNorm(config.width)

    def forward(
        self,
        tokens: Tensor,
        segment_pos: Tensor | None = None,
        cache: GriffinCache | None = None,
        *,
        return_cache: bool = True,
    ) -> tuple[Tensor, GriffinCache | None]:
        """Logits [B, T, vocab] for tokens [B, T] following `cache`, and the cache after them.

        `segment_pos` defaults to consecutive positions (from 0, or after the cache's last token).
        """
        segment_pos = checked_segment_pos(tokens, segment_pos, cache, len(self.blocks))
        x = self.embedder.encode(tokens)
        new_blocks = []
        for i, block in enumerate(self.blocks):
            block_cache = None if cache is None else cache.blocks[i]
            if self.gradient_checkpointing and torch.is_grad_enabled():
                x, block_cache = checkpoint(
                    block, x, segment_pos, block_cache, return_cache, use_reentrant=False
                )
            else:
                x, block_cache = block(x, segment_pos, block_cache, return_cache)
            new_blocks.append(block_cache)
        logits = self.embedder.decode(self.final_norm(x))
        cap = self.config.logits_soft_cap
        if cap:
            logits = torch.tanh(logits / cap) * cap  # griffin.md §1.6: 30 tanh(logits / 30)
        if not return_cache:
            return logits, None
        return logits, GriffinCache(tuple(new_blocks), segment_pos[:, -1] + 1)

    @classmethod
    def from_recurrentgemma(cls, path: str | Path, **settings: Any) -> Griffin:
        """Load a `torch.save`d state_dict of the official recurrentgemma PyTorch model."""
        from repdyn.models.griffin_checkpoints import load_recurrentgemma

        return load_recurrentgemma(path, **settings)

    @classmethod
    def from_hf(cls, path: str | Path) -> Griffin:
        """Load a local Hugging Face RecurrentGemma folder (config.json + safetensors)."""
        from repdyn.models.griffin_checkpoints import load_hf

        return load_hf(path)

    @classmethod
    def from_pretrained(cls, path: str | Path) -> Griffin:
        """Load a folder written by `save_pretrained`."""
        from repdyn.models.griffin_checkpoints import load_pretrained

        return load_pretrained(path)

    def save_pretrained(self, path: str | Path) -> None:
        """Write model.safetensors (official parameter names) and config.json into folder `path`."""
        from repdyn.models.griffin_checkpoints import save_pretrained

        save_pretrained(self, path)
