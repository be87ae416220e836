"""Griffin checkpoints: the official recurrentgemma state_dict, Hugging Face folders, our folders.

Sizes and the block pattern are inferred from parameter names and shapes (griffin.md §4); what
shapes cannot tell (attention window, soft-cap, embedding scaling) is an argument defaulting to
RecurrentGemma's values. Any missing, unexpected or mis-shaped tensor is a one-line
`CheckpointError` naming the key and the file.
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path
from typing import Any, TypeVar

import torch
from torch import Tensor

from repdyn.bench.errors import CheckpointError, ConfigError
from repdyn.models.griffin import Griffin, GriffinConfig

RECURRENTGEMMA_WINDOW = 2048  # griffin.md §1.7
RECURRENTGEMMA_SOFT_CAP = 30.0  # griffin.md §1.6
FORMAT = "repdyn.griffin"
ModelT = TypeVar("ModelT", bound=torch.nn.Module)


def _get(state: dict[str, Tensor], key: str, source: str) -> Tensor:
    if key not in state:
        raise CheckpointError(f"{source}: missing key {key!r}")
    return state[key]


def infer_config(
    state: dict[str, Tensor],
    *,
    attention_window: int | None,
    logits_soft_cap: float,
    embeddings_scale_by_sqrt_dim: bool,
    source: str = "state_dict",
) -> GriffinConfig:
    """A GriffinConfig from official parameter names/shapes plus settings shapes cannot carry."""
    vocab_size, width = _get(state, "embedder.input_embedding", source).shape
    mlp_width = _get(state, "blocks.0.mlp_block.ffw_up.w", source).shape[-1]
    kinds, heads, lru_width, conv_width = [], {}, None, 4
    while f"blocks.{len(kinds)}.channel_pre_norm.scale" in state:
        prefix = f"blocks.{len(kinds)}"
        if f"{prefix}.recurrent_block.rg_lru.a_gate.w" in state:
            kinds.append("recurrent")
            gate_key = f"{prefix}.recurrent_block.rg_lru.a_gate.w"
            heads[gate_key] = state[gate_key].shape[0]
            lru_width = _get(state, f"{prefix}.recurrent_block.linear_x.weight", source).shape[0]
            conv_width = _get(state, f"{prefix}.recurrent_block.conv_1d.w", source).shape[0]
        elif f"{prefix}.attention_block.proj_k.weight" in state:
            kinds.append("attention")
            key = f"{prefix}.attention_block.proj_k.weight"
            heads[key] = width // state[key].shape[0]  # proj_k is [head_dim, D]
        else:
            raise CheckpointError(
                f"{source}: {prefix} has neither recurrent_block.rg_lru.a_gate.w "
                "nor attention_block.proj_k.weight"
            )
    if not kinds:
        raise CheckpointError(f"{source}: missing key 'blocks.0.channel_pre_norm.scale'")
    first_key, num_heads = next(iter(heads.items()))
    for key, value in heads.items():
        if value != num_heads:
            raise CheckpointError(
                f"{source}: {key!r} implies {value} heads but {first_key!r} implies {num_heads}"
            )
    try:
        return GriffinConfig(
            vocab_size=vocab_size,
            width=width,
            num_heads=num_heads,
            mlp_width=mlp_width,
            block_types=tuple(kinds),
            attention_window=attention_window,
            lru_width=lru_width,
            conv_width=conv_width,
            logits_soft_cap=logits_soft_cap,
            embeddings_scale_by_sqrt_dim=embeddings_scale_by_sqrt_dim,
        )
    except ConfigError as exc:
        raise CheckpointError(f"{source}: inconsistent sizes ({exc})") from exc


def load_state_exact(model: ModelT, state: dict[str, Tensor], source: str) -> ModelT:
    """Copy `state` into `model`, refusing missing, unexpected or mis-shaped tensors."""
    expected = model.state_dict()
    for key, tensor in state.items():
        if key not in expected:
            raise CheckpointError(f"{source}: unexpected key {key!r}")
        if not isinstance(tensor, Tensor) or tensor.shape != expected[key].shape:
            shape = tuple(tensor.shape) if isinstance(tensor, Tensor) else type(tensor).__name__
            raise CheckpointError(
                f"{source}: {key!r} has shape {shape}, expected {tuple(expected[key].shape)}"
            )
    for key in expected:
        if key not in state:
            raise CheckpointError(f"{source}: missing key {key!r}")
    model.load_state_dict(state)
    return model


def load_recurrentgemma(
    path: str | Path,
    *,
    attention_window: int | None = RECURRENTGEMMA_WINDOW,
    logits_soft_cap: float = RECURRENTGEMMA_SOFT_CAP,
    embeddings_scale_by_sqrt_dim: bool = True,
) -> Griffin:
    """Load `torch.save(model.state_dict())` of the official recurrentgemma PyTorch model."""
    source = str(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError as exc:
        raise CheckpointError(f"{source}: no such file") from exc
    except (RuntimeError, pickle.UnpicklingError, EOFError, OSError, ValueError) as exc:
        raise CheckpointError(
            f"{source}: not a torch state_dict ({str(exc).splitlines()[0]})"
        ) from exc
    if not isinstance(state, dict) or not all(isinstance(v, Tensor) for v in state.values()):
        raise CheckpointError(f"{source}: expected a dict of tensors (a state_dict)")
    config = infer_config(
        state,
        attention_window=attention_window,
        logits_soft_cap=logits_soft_cap,
        embeddings_scale_by_sqrt_dim=embeddings_scale_by_sqrt_dim,
        source=source,
    )
    return load_state_exact(Griffin(config), state, source).eval()


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


def _read_safetensors(files: list[Path]) -> dict[str, Tensor]:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    state: dict[str, Tensor] = {}
    for file in files:
        try:
            state.update(load_file(str(file)))
        except FileNotFoundError as exc:
            raise CheckpointError(f"{file}: no such file") from exc
        except (SafetensorError, OSError, ValueError) as exc:
            raise CheckpointError(f"{file}: not a readable safetensors file ({exc})") from exc
    return state


def _hf_weight_files(folder: Path) -> list[Path]:
    index = folder / "model.safetensors.index.json"
    if index.exists():
        weight_map = _read_json(index).get("weight_map")
        if not isinstance(weight_map, dict):
            raise CheckpointError(f"{index}: missing 'weight_map'")
        return [folder / name for name in sorted(set(weight_map.values()))]
    return [folder / "model.safetensors"]


def hf_config_to_griffin(hf: dict[str, Any], source: str) -> GriffinConfig:
    """Translate a Hugging Face RecurrentGemmaConfig (as JSON) into a GriffinConfig."""

    def need(key: str) -> Any:
        if key not in hf:
            raise CheckpointError(f"{source}: missing config key {key!r}")
        return hf[key]

    rope = hf.get("rope_parameters") or {}
    checks = {
        "num_key_value_heads": (
            hf.get("num_key_value_heads", 1),
            1,
        ),  # griffin.md §1.5: one KV head
        "partial_rotary_factor": (
            rope.get("partial_rotary_factor", hf.get("partial_rotary_factor", 0.5)),
            0.5,
        ),
        "rope_theta": (rope.get("rope_theta", hf.get("rope_theta", 10_000.0)), 10_000.0),
        "attention_bias": (hf.get("attention_bias", False), False),
        "hidden_activation": (
            hf.get("hidden_activation", "gelu_pytorch_tanh"),
            "gelu_pytorch_tanh",
        ),
    }
    for key, (value, supported) in checks.items():
        if value != supported:
            raise CheckpointError(
                f"{source}: {key} = {value!r} is not supported (only {supported!r})"
            )
    head_dim = hf.get("head_dim")
    if head_dim is not None and head_dim * need("num_attention_heads") != need("hidden_size"):
        raise CheckpointError(
            f"{source}: head_dim = {head_dim} must equal hidden_size / num_attention_heads"
        )
    layers = need("num_hidden_layers")
    cycle = list(need("block_types"))
    kinds = tuple(cycle[i % len(cycle)] for i in range(layers))
    try:
        return GriffinConfig(
            vocab_size=need("vocab_size"),
            width=need("hidden_size"),
            num_heads=need("num_attention_heads"),
            mlp_width=need("intermediate_size")
            // 2,  # griffin.md §4: HF intermediate_size = 2 x MLP width
            block_types=kinds,
            lru_width=hf.get("lru_width") or None,
            # HF's sliding window counts the query itself: it sees `attention_window_size` keys,
            # the official code window + 1 (griffin.md §1.5), hence the - 1.
            attention_window=need("attention_window_size") - 1,
            conv_width=hf.get("conv1d_width", 4),
            logits_soft_cap=float(need("logits_soft_cap")),
            embeddings_scale_by_sqrt_dim=True,  # HF always multiplies by its bf16 normalizer
        )
    except ConfigError as exc:
        raise CheckpointError(f"{source}: {exc}") from exc


def hf_state_to_official(
    hf_state: dict[str, Tensor], config: GriffinConfig, source: str
) -> dict[str, Tensor]:
    """Rename (and reshape where the layouts differ) HF RecurrentGemma tensors to official names."""

    def take(key: str) -> Tensor:
        return _get(hf_state, key, source)

    state = {
        "embedder.input_embedding": take("model.embed_tokens.weight"),
        "final_norm.scale": take("model.final_norm.weight"),
    }
    for i, kind in enumerate(config.block_types):
        hf, ours = f"model.layers.{i}", f"blocks.{i}"
        state[f"{ours}.temporal_pre_norm.scale"] = take(f"{hf}.temporal_pre_norm.weight")
        state[f"{ours}.channel_pre_norm.scale"] = take(f"{hf}.channel_pre_norm.weight")
        mlp = f"{hf}.mlp_block"
        state[f"{ours}.mlp_block.ffw_up.w"] = torch.stack(
            [take(f"{mlp}.gate_proj.weight").T, take(f"{mlp}.up_proj.weight").T]
        )
        state[f"{ours}.mlp_block.ffw_up.b"] = torch.stack(
            [take(f"{mlp}.gate_proj.bias"), take(f"{mlp}.up_proj.bias")]
        )[:, None, None]
        state[f"{ours}.mlp_block.ffw_down.weight"] = take(f"{mlp}.down_proj.weight")
        state[f"{ours}.mlp_block.ffw_down.bias"] = take(f"{mlp}.down_proj.bias")
        block = f"{hf}.temporal_block"
        if kind == "recurrent":
            rec = f"{ours}.recurrent_block"
            for name in ("linear_x", "linear_y", "linear_out"):
                for part in ("weight", "bias"):
                    state[f"{rec}.{name}.{part}"] = take(f"{block}.{name}.{part}")
            conv = take(
                f"{block}.conv_1d.weight"
            )  # nn.Conv1d: [L, 1, K]; tap K-1 is the current token
            if conv.ndim != 3:
                raise CheckpointError(
                    f"{source}: '{block}.conv_1d.weight' has shape {tuple(conv.shape)}, "
                    "expected [L, 1, K]"
                )
            state[f"{rec}.conv_1d.w"] = conv[:, 0, :].T.contiguous()
            state[f"{rec}.conv_1d.b"] = take(f"{block}.conv_1d.bias")
            state[f"{rec}.rg_lru.a_param"] = take(f"{block}.rg_lru.recurrent_param")
            state[f"{rec}.rg_lru.input_gate.w"] = take(f"{block}.rg_lru.input_gate_weight")
            state[f"{rec}.rg_lru.input_gate.b"] = take(f"{block}.rg_lru.input_gate_bias")
            state[f"{rec}.rg_lru.a_gate.w"] = take(f"{block}.rg_lru.recurrent_gate_weight")
            state[f"{rec}.rg_lru.a_gate.b"] = take(f"{block}.rg_lru.recurrent_gate_bias")
        else:
            att = f"{ours}.attention_block"
            for hf_name, name in (
                ("q_proj", "proj_q"),
                ("k_proj", "proj_k"),
                ("v_proj", "proj_v"),
                ("o_proj", "proj_final"),
            ):
                state[f"{att}.{name}.weight"] = take(f"{block}.{hf_name}.weight")
            state[f"{att}.proj_final.bias"] = take(f"{block}.o_proj.bias")
    head = hf_state.get("lm_head.weight")
    if head is not None and not torch.equal(head, state["embedder.input_embedding"]):
        raise CheckpointError(
            f"{source}: 'lm_head.weight' differs from the embedding; "
            "only tied embeddings are supported"
        )
    return state


def load_hf(path: str | Path) -> Griffin:
    """Load a local Hugging Face RecurrentGemma folder (config.json + model*.safetensors)."""
    folder = Path(path)
    if not folder.is_dir():
        raise CheckpointError(f"{folder}: not a folder (expected config.json + model.safetensors)")
    hf_config = _read_json(folder / "config.json")
    model_type = hf_config.get("model_type", "recurrent_gemma")
    if model_type != "recurrent_gemma":
        raise CheckpointError(
            f"{folder / 'config.json'}: model_type {model_type!r} is not 'recurrent_gemma'"
        )
    config = hf_config_to_griffin(hf_config, str(folder / "config.json"))
    hf_state = _read_safetensors(_hf_weight_files(folder))
    state = hf_state_to_official(hf_state, config, str(folder))
    return load_state_exact(Griffin(config), state, str(folder)).eval()


def save_pretrained(model: Griffin, path: str | Path) -> None:
    """Write model.safetensors (official names) and config.json (our config) into folder `path`."""
    from safetensors.torch import save_file

    folder = Path(path)
    folder.mkdir(parents=True, exist_ok=True)
    tensors = {key: value.detach().contiguous() for key, value in model.state_dict().items()}
    save_file(tensors, str(folder / "model.safetensors"), metadata={"format": FORMAT})
    config = {"format": FORMAT, "version": 1, "config": model.config.to_dict()}
    (folder / "config.json").write_text(json.dumps(config, indent=2) + "\n")


def load_pretrained(path: str | Path) -> Griffin:
    """Load a folder written by `save_pretrained`."""
    folder = Path(path)
    data = _read_json(folder / "config.json")
    if data.get("format") != FORMAT or not isinstance(data.get("config"), dict):
        raise CheckpointError(
            f"{folder / 'config.json'}: not a {FORMAT} config (format {data.get('format')!r})"
        )
    try:
        config = GriffinConfig.from_dict(data["config"])
    except (ConfigError, TypeError) as exc:
        raise CheckpointError(f"{folder / 'config.json'}: {exc}") from exc
    state = _read_safetensors([folder / "model.safetensors"])
    return load_state_exact(Griffin(config), state, str(folder / "model.safetensors")).eval()
