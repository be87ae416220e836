"""Mamba (Gu and Dao 2023): selective state-space language model in pure PyTorch (state_soup.md §2, §5).

    model = Mamba(MambaConfig(vocab_size=256, width=64, num_layers=2))
    logits, cache = model(tokens)                      # tokens [B, T]
    logits, cache = model(next_tokens, cache=cache)    # continue: one token or a whole chunk

The API is Griffin's: `segment_pos` [B, T] (0 starts a document, which resets the scan and masks
the convolution), `(logits, cache)` out. A sequence runs through the blocked selective scan, one
decoding step through a single recurrence update. Module and parameter names follow Hugging Face's
`MambaForCausalLM` (`backbone.layers.i.mixer.{in_proj, x_proj, dt_proj, A_log, D, out_proj}`),
except the causal convolution, which is the toolkit's `Conv1D` (`conv1d.w` [K, E] and `conv1d.b`
for HF's `conv1d.weight` [E, 1, K] and `conv1d.bias`); `Mamba.from_hf` converts.
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
from torch.nn import functional as F

from repdyn.bench.errors import CheckpointError, ConfigError
from repdyn.models.lm_inputs import checked_segment_pos
from repdyn.nn.conv1d import Conv1D
from repdyn.nn.selective_scan import selective_scan

DT_RANGE = (1e-3, 1e-1)  # mamba_ssm / HF MambaConfig: time_step_min, time_step_max
DT_FLOOR = 1e-4  # HF MambaConfig: time_step_floor
EMBEDDING_STD = 0.02  # mamba_ssm's initializer_range for the embedding


@dataclass(frozen=True)
class MambaConfig:
    """Sizes of a Mamba LM (HF names in brackets): width [hidden_size], num_layers [num_hidden_layers]."""

    vocab_size: int
    width: int
    num_layers: int
    state_size: int = 16  # N [state_size]
    expand: int = 2  # inner width E = expand * width [expand]
    conv_width: int = 4  # [conv_kernel]
    dt_rank: int | None = None  # [time_step_rank]; None = ceil(width / 16)
    use_bias: bool = False  # biases of in_proj and out_proj [use_bias]
    norm_eps: float = 1e-5  # [layer_norm_epsilon]
    tie_embeddings: bool = True  # [tie_word_embeddings]

    def __post_init__(self) -> None:
        for key in ("vocab_size", "width", "num_layers", "state_size", "expand", "conv_width", "rank"):
            value = getattr(self, key)
            if not isinstance(value, int) or value < 1:
                raise ConfigError(key, f"must be a positive integer; got {value!r}")
        if self.norm_eps <= 0:
            raise ConfigError("norm_eps", f"must be > 0; got {self.norm_eps}")

    @property
    def inner(self) -> int:
        """The inner width E of the mixer."""
        return self.expand * self.width

    @property
    def rank(self) -> int:
        """The rank of the step-size projection."""
        return math.ceil(self.width / 16) if self.dt_rank is None else self.dt_rank

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MambaConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(unknown[0], f"unknown Mamba config key; accepted: {', '.join(sorted(known))}")
        return cls(**data)


@dataclass(frozen=True)
class MambaLayerCache:
    """One layer's fixed-size state: last K-1 conv inputs [B, K-1, E] and the SSM state [B, E, N] (fp32)."""

    conv_state: Tensor
    ssm_state: Tensor

    @property
    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in (self.conv_state, self.ssm_state))

    def clone(self) -> MambaLayerCache:
        return MambaLayerCache(self.conv_state.clone(), self.ssm_state.clone())


@dataclass(frozen=True)
class MambaCache:
    """Decoding state of every layer, and each row's next in-document position [B]."""

    blocks: tuple[MambaLayerCache, ...]
    next_segment_pos: Tensor

    @property
    def nbytes(self) -> int:
        """Bytes held by the cache tensors."""
        pos = self.next_segment_pos
        return sum(block.nbytes for block in self.blocks) + pos.numel() * pos.element_size()

    def clone(self) -> MambaCache:
        """An independent copy."""
        return MambaCache(tuple(block.clone() for block in self.blocks), self.next_segment_pos.clone())

    def index_batch(self, rows: Tensor) -> MambaCache:
        """The states of batch `rows`, in that order; repeat a row to copy it."""
        blocks = tuple(MambaLayerCache(b.conv_state[rows], b.ssm_state[rows]) for b in self.blocks)
        return MambaCache(blocks, self.next_segment_pos[rows])

    def save(self, path: str | Path) -> None:
        """Write one safetensors file (format `mamba-cache` in its metadata)."""
        from safetensors.torch import save_file

        tensors = {"next_segment_pos": self.next_segment_pos.contiguous()}
        for i, block in enumerate(self.blocks):
            tensors[f"blocks.{i}.conv_state"] = block.conv_state.contiguous()
            tensors[f"blocks.{i}.ssm_state"] = block.ssm_state.contiguous()
        meta = {"format": "mamba-cache", "version": 1, "num_layers": len(self.blocks)}
        save_file(tensors, str(path), metadata={"repdyn": json.dumps(meta)})

    @classmethod
    def load(cls, path: str | Path) -> MambaCache:
        """Read a file written by `save`."""
        from safetensors import SafetensorError, safe_open

        try:
            with safe_open(str(path), framework="pt") as handle:
                meta = json.loads((handle.metadata() or {}).get("repdyn", "null"))
                tensors = {key: handle.get_tensor(key) for key in handle.keys()}  # noqa: SIM118
        except (OSError, ValueError, SafetensorError) as exc:
            raise CheckpointError(f"{path}: not a readable Mamba cache file ({exc})") from exc
        if not isinstance(meta, dict) or meta.get("format") != "mamba-cache":
            raise CheckpointError(f"{path}: safetensors file without Mamba cache metadata")
        try:
            blocks = tuple(
                MambaLayerCache(tensors[f"blocks.{i}.conv_state"], tensors[f"blocks.{i}.ssm_state"])
                for i in range(int(meta["num_layers"]))
            )
            return cls(blocks, tensors["next_segment_pos"])
        except KeyError as exc:
            raise CheckpointError(f"{path}: Mamba cache is missing {exc.args[0]!r}") from exc


def inverse_softplus(y: Tensor) -> Tensor:
    """x with softplus(x) = y (y > 0)."""
    return y + torch.log(-torch.expm1(-y))


class MambaMixer(nn.Module):
    """The selective SSM block: in_proj -> (conv, silu, selective scan) gated by silu(z) -> out_proj."""

    def __init__(self, config: MambaConfig) -> None:
        super().__init__()
        self.config = config
        inner, rank, state = config.inner, config.rank, config.state_size
        self.in_proj = nn.Linear(config.width, 2 * inner, bias=config.use_bias)
        self.conv1d = Conv1D(inner, config.conv_width)
        self.x_proj = nn.Linear(inner, rank + 2 * state, bias=False)
        self.dt_proj = nn.Linear(rank, inner, bias=True)
        self.A_log = nn.Parameter(torch.empty(inner, state))
        self.D = nn.Parameter(torch.empty(inner))
        self.out_proj = nn.Linear(inner, config.width, bias=config.use_bias)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """mamba_ssm's init: S4D-real A, D = 1, dt ~ logU[1e-3, 1e-1] through softplus, scaled out_proj."""
        config = self.config
        for linear in (self.in_proj, self.x_proj, self.out_proj):
            linear.reset_parameters()
        bound = 1.0 / math.sqrt(config.conv_width)  # PyTorch's default for a depthwise Conv1d
        nn.init.uniform_(self.conv1d.w, -bound, bound)
        nn.init.uniform_(self.conv1d.b, -bound, bound)
        dt_std = config.rank**-0.5
        nn.init.uniform_(self.dt_proj.weight, -dt_std, dt_std)
        low, high = math.log(DT_RANGE[0]), math.log(DT_RANGE[1])
        dt = torch.exp(torch.rand(config.inner) * (high - low) + low).clamp(min=DT_FLOOR)
        with torch.no_grad():
            self.dt_proj.bias.copy_(inverse_softplus(dt))
            self.A_log.copy_(torch.log(torch.arange(1, config.state_size + 1, dtype=torch.float32)).expand_as(self.A_log))
            self.D.fill_(1.0)
            self.out_proj.weight.div_(math.sqrt(config.num_layers))  # GPT-2-style residual rescaling
        if self.out_proj.bias is not None:
            nn.init.zeros_(self.out_proj.bias)

    def forward(
        self, x: Tensor, reset: Tensor, cache: MambaLayerCache | None = None
    ) -> tuple[Tensor, MambaLayerCache]:
        """x [B, T, D] after the state in `cache` (zeros if None) -> (y [B, T, D], new state)."""
        config = self.config
        xs, z = self.in_proj(x).chunk(2, dim=-1)
        xs, conv_state = self.conv1d(xs, reset, None if cache is None else cache.conv_state)
        xs = F.silu(xs)
        dt, B, C = self.x_proj(xs).split([config.rank, config.state_size, config.state_size], dim=-1)
        dt = F.softplus(self.dt_proj(dt).float())
        A = -torch.exp(self.A_log.float())
        h0 = None if cache is None else cache.ssm_state
        y, ssm_state = selective_scan(xs, dt, A, B, C, self.D, z, h0, reset)
        return self.out_proj(y), MambaLayerCache(conv_state, ssm_state)


class MambaBlock(nn.Module):
    """Pre-norm residual block: x + mixer(RMSNorm(x))."""

    def __init__(self, config: MambaConfig) -> None:
        super().__init__()
        self.norm = nn.RMSNorm(config.width, eps=config.norm_eps)
        self.mixer = MambaMixer(config)

    def forward(
        self, x: Tensor, reset: Tensor, cache: MambaLayerCache | None = None
    ) -> tuple[Tensor, MambaLayerCache]:
        y, cache = self.mixer(self.norm(x), reset, cache)
        return x + y, cache


class MambaBackbone(nn.Module):
    """Embedding, Mamba blocks, final RMSNorm (HF's `backbone`)."""

    def __init__(self, config: MambaConfig) -> None:
        super().__init__()
        self.embeddings = nn.Embedding(config.vocab_size, config.width)
        nn.init.normal_(self.embeddings.weight, std=EMBEDDING_STD)
        self.layers = nn.ModuleList(MambaBlock(config) for _ in range(config.num_layers))
        self.norm_f = nn.RMSNorm(config.width, eps=config.norm_eps)


class Mamba(nn.Module):
    """The Mamba language model; logits come from the (by default tied) embedding."""

    def __init__(self, config: MambaConfig) -> None:
        super().__init__()
        self.config = config
        self.backbone = MambaBackbone(config)
        self.lm_head = None if config.tie_embeddings else nn.Linear(config.width, config.vocab_size, bias=False)

    @property
    def blocks(self) -> nn.ModuleList:
        """The residual blocks, first to last (the name Griffin uses)."""
        return self.backbone.layers

    def forward(
        self,
        tokens: Tensor,
        segment_pos: Tensor | None = None,
        cache: MambaCache | None = None,
        *,
        return_cache: bool = True,
    ) -> tuple[Tensor, MambaCache | None]:
        """Logits [B, T, vocab] for tokens [B, T] following `cache`, and the cache after them.

        `segment_pos` defaults to consecutive positions (from 0, or after the cache's last token).
        """
        segment_pos = checked_segment_pos(tokens, segment_pos, cache, len(self.blocks))
        reset = segment_pos == 0
        x = self.backbone.embeddings(tokens)
        new_blocks = []
        for i, block in enumerate(self.blocks):
            x, block_cache = block(x, reset, None if cache is None else cache.blocks[i])
            new_blocks.append(block_cache)
        x = self.backbone.norm_f(x)
        logits = x @ self.backbone.embeddings.weight.T if self.lm_head is None else self.lm_head(x)
        if not return_cache:
            return logits, None
        return logits, MambaCache(tuple(new_blocks), segment_pos[:, -1] + 1)

    @classmethod
    def from_hf(cls, path: str | Path) -> Mamba:
        """Load a local Hugging Face (or original mamba_ssm) Mamba folder: config.json + weights."""
        return load_hf(path)


# ---- Hugging Face checkpoints -------------------------------------------------------------------

HF_WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin")


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise CheckpointError(f"{path}: no such file") from exc
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{path}: not valid JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise CheckpointError(f"{path}: expected a JSON object")
    return data


def _read_weights(folder: Path) -> dict[str, Tensor]:
    """Tensors of model.safetensors, of the shards an index names, or of pytorch_model.bin (no pickle)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    if (folder / "model.safetensors.index.json").exists():
        weight_map = _read_json(folder / "model.safetensors.index.json").get("weight_map")
        if not isinstance(weight_map, dict):
            raise CheckpointError(f"{folder / 'model.safetensors.index.json'}: missing 'weight_map'")
        files = [folder / name for name in sorted(set(weight_map.values()))]
    elif (folder / "model.safetensors").exists():
        files = [folder / "model.safetensors"]
    elif (folder / "pytorch_model.bin").exists():
        file = folder / "pytorch_model.bin"
        try:
            state = torch.load(file, map_location="cpu", weights_only=True)
        except Exception as exc:  # torch raises many types for a bad or unsafe file
            raise CheckpointError(f"{file}: not a weights-only torch state_dict ({str(exc).splitlines()[0]})") from exc
        if not isinstance(state, dict) or not all(isinstance(v, Tensor) for v in state.values()):
            raise CheckpointError(f"{file}: expected a dict of tensors (a state_dict)")
        return state
    else:
        raise CheckpointError(f"{folder}: holds none of {', '.join(HF_WEIGHT_FILES)}")
    state: dict[str, Tensor] = {}
    for file in files:
        try:
            state.update(load_file(str(file)))
        except FileNotFoundError as exc:
            raise CheckpointError(f"{file}: no such file") from exc
        except (SafetensorError, OSError, ValueError) as exc:
            raise CheckpointError(f"{file}: not a readable safetensors file ({exc})") from exc
    return state


def hf_config_to_mamba(hf: dict[str, Any], vocab_size: int, source: str) -> MambaConfig:
    """A MambaConfig from an HF `MambaConfig` JSON or an original mamba_ssm `config.json`.

    The vocabulary size comes from the embedding (mamba_ssm pads it to a multiple of 8).
    """
    if "d_model" in hf:  # mamba_ssm's MambaConfig: d_model, n_layer, ssm_cfg, rms_norm, ...
        ssm = hf.get("ssm_cfg") or {}
        if not hf.get("rms_norm", True):
            raise CheckpointError(f"{source}: rms_norm = false (LayerNorm) is not supported")
        if ssm.get("layer", "Mamba1") != "Mamba1":
            raise CheckpointError(f"{source}: ssm_cfg.layer = {ssm['layer']!r} is not supported (only Mamba1)")
        fields = {
            "width": hf["d_model"],
            "num_layers": hf.get("n_layer"),
            "state_size": ssm.get("d_state", 16),
            "expand": ssm.get("expand", 2),
            "conv_width": ssm.get("d_conv", 4),
            "dt_rank": None if ssm.get("dt_rank", "auto") == "auto" else ssm["dt_rank"],
            "use_bias": ssm.get("bias", False),
            "norm_eps": hf.get("norm_epsilon", 1e-5),
            "tie_embeddings": hf.get("tie_embeddings", True),
        }
        conv_bias = ssm.get("conv_bias", True)
    else:
        model_type = hf.get("model_type", "mamba")
        if model_type != "mamba":
            raise CheckpointError(f"{source}: model_type {model_type!r} is not 'mamba'")
        if hf.get("hidden_act", "silu") != "silu":
            raise CheckpointError(f"{source}: hidden_act = {hf['hidden_act']!r} is not supported (only 'silu')")
        rank = hf.get("time_step_rank", "auto")
        fields = {
            "width": hf.get("hidden_size"),
            "num_layers": hf.get("num_hidden_layers"),
            "state_size": hf.get("state_size", 16),
            "expand": hf.get("expand", 2),
            "conv_width": hf.get("conv_kernel", 4),
            "dt_rank": None if rank == "auto" else rank,
            "use_bias": hf.get("use_bias", False),
            "norm_eps": hf.get("layer_norm_epsilon", 1e-5),
            "tie_embeddings": hf.get("tie_word_embeddings", True),
        }
        conv_bias = hf.get("use_conv_bias", True)
    if not conv_bias:
        raise CheckpointError(f"{source}: a convolution without bias is not supported")
    try:
        return MambaConfig(vocab_size=vocab_size, **fields)
    except ConfigError as exc:
        raise CheckpointError(f"{source}: {exc}") from exc


def hf_state_to_mamba(hf_state: dict[str, Tensor], config: MambaConfig, source: str) -> dict[str, Tensor]:
    """Our state_dict from HF / mamba_ssm tensors: the same names except the convolution's layout."""
    state = dict(hf_state)
    if "backbone.embedding.weight" in state:  # mamba_ssm's name; HF renamed it `embeddings`
        state["backbone.embeddings.weight"] = state.pop("backbone.embedding.weight")
    for i in range(config.num_layers):
        prefix = f"backbone.layers.{i}.mixer.conv1d"
        if f"{prefix}.weight" not in state:
            raise CheckpointError(f"{source}: missing key '{prefix}.weight'")
        weight = state.pop(f"{prefix}.weight")  # nn.Conv1d [E, 1, K]; tap K-1 is the current token
        if weight.ndim != 3 or weight.shape[1] != 1:
            raise CheckpointError(f"{source}: '{prefix}.weight' has shape {tuple(weight.shape)}, expected [E, 1, K]")
        state[f"{prefix}.w"] = weight[:, 0, :].T.contiguous()
        if f"{prefix}.bias" in state:
            state[f"{prefix}.b"] = state.pop(f"{prefix}.bias")
    head = state.get("lm_head.weight")
    if config.tie_embeddings and head is not None:
        if not torch.equal(head, state.get("backbone.embeddings.weight", head)):
            raise CheckpointError(f"{source}: 'lm_head.weight' differs from the tied embedding")
        del state["lm_head.weight"]
    return state


def load_hf(path: str | Path) -> Mamba:
    """Load a local Hugging Face `MambaForCausalLM` folder (or an original mamba_ssm one), in eval mode."""
    from repdyn.models.griffin_checkpoints import load_state_exact

    folder = Path(path)
    if not folder.is_dir():
        raise CheckpointError(f"{folder}: not a folder (expected config.json + model.safetensors)")
    hf_config = _read_json(folder / "config.json")
    hf_state = _read_weights(folder)
    embedding = hf_state.get("backbone.embeddings.weight", hf_state.get("backbone.embedding.weight"))
    if embedding is None:
        raise CheckpointError(f"{folder}: missing key 'backbone.embeddings.weight'")
    config = hf_config_to_mamba(hf_config, embedding.shape[0], str(folder / "config.json"))
    state = hf_state_to_mamba(hf_state, config, str(folder))
    return load_state_exact(Mamba(config), state, str(folder)).eval()
