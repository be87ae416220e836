"""Checkpoints: safetensors for every tensor plus a JSON sidecar for everything else. No pickle.

A checkpoint of step S is two files in a run's `checkpoints/` folder:
`step-0000S.safetensors` (model, optimizer and RNG tensors) and `step-0000S.json` (step, the
structure of every saved state with tensor references, plain values, metadata, and the sha256
of the tensors file). Both are written atomically (temp file, fsync, rename) and the sidecar
last, so a sidecar on disk always names a complete tensors file; a crash while saving leaves the
previous checkpoint intact. Loading verifies the hash and refuses a corrupt or truncated
checkpoint with a `CheckpointError` instead of loading it.

What can be saved (values of the `objects` mapping): anything with `state_dict()` /
`load_state_dict()` (modules, optimizers, LR schedulers), `torch.Generator`,
`numpy.random.Generator`, and plain `dict`s of JSON values or tensors (restored in place).
The global Python/NumPy/PyTorch generator states are always included.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import safetensors.torch
import torch

from repdyn.bench.errors import CheckpointError
from repdyn.bench.seeding import capture_rng_state, restore_rng_state

FORMAT = "repdyn-checkpoint"
FORMAT_VERSION = 1
_NAME = re.compile(r"^step-(\d+)\.json$")


class _Encoder:
    """Turns nested state into a JSON skeleton plus a flat dict of tensors (shared storage saved once)."""

    def __init__(self) -> None:
        self.tensors: dict[str, torch.Tensor] = {}
        self._seen: dict[tuple, str] = {}

    def encode(self, value: Any, path: str) -> Any:
        if isinstance(value, torch.Tensor):
            return {"$tensor": self._add(value, path)}
        if isinstance(value, np.ndarray):
            return {"$ndarray": self._add(torch.from_numpy(np.ascontiguousarray(value)), path)}
        if isinstance(value, Mapping):
            return {"$dict": [[k, self.encode(v, f"{path}.{k}")] for k, v in value.items() if _json_key(k, path)]}
        if isinstance(value, tuple):
            return {"$tuple": [self.encode(v, f"{path}.{i}") for i, v in enumerate(value)]}
        if isinstance(value, list):
            return [self.encode(v, f"{path}.{i}") for i, v in enumerate(value)]
        if value is None or isinstance(value, (bool, int, float, str)):
            return value
        if isinstance(value, (np.integer, np.floating, np.bool_)):
            return value.item()
        raise TypeError(f"cannot checkpoint {path}: unsupported value of type {type(value).__name__}")

    def _add(self, tensor: torch.Tensor, path: str) -> str:
        tensor = tensor.detach()
        identity = (
            tensor.untyped_storage().data_ptr(), tensor.storage_offset(), tuple(tensor.shape),
            tuple(tensor.stride()), tensor.dtype, tensor.device,
        )
        if tensor.numel() and identity in self._seen:
            return self._seen[identity]
        key = path
        self.tensors[key] = tensor.cpu().contiguous().clone() if tensor.numel() else tensor.cpu().contiguous()
        self._seen[identity] = key
        return key


def _json_key(key: Any, path: str) -> bool:
    if isinstance(key, (str, int)) and not isinstance(key, bool):
        return True
    raise TypeError(f"cannot checkpoint {path}: dict key {key!r} is not a str or int")


def _decode(value: Any, tensors: Mapping[str, torch.Tensor]) -> Any:
    if isinstance(value, dict):
        if "$tensor" in value:
            return tensors[value["$tensor"]]
        if "$ndarray" in value:
            return tensors[value["$ndarray"]].numpy()
        if "$dict" in value:
            return {k: _decode(v, tensors) for k, v in value["$dict"]}
        if "$tuple" in value:
            return tuple(_decode(v, tensors) for v in value["$tuple"])
    if isinstance(value, list):
        return [_decode(v, tensors) for v in value]
    return value


def _state_of(obj: Any, name: str) -> Any:
    if isinstance(obj, torch.Generator):
        return obj.get_state()
    if isinstance(obj, np.random.Generator):
        return obj.bit_generator.state
    if hasattr(obj, "state_dict") and hasattr(obj, "load_state_dict"):
        return obj.state_dict()
    if isinstance(obj, dict):
        return dict(obj)
    raise TypeError(f"cannot checkpoint {name!r}: {type(obj).__name__} has no state_dict()")


def _restore(obj: Any, state: Any, name: str) -> None:
    if isinstance(obj, torch.Generator):
        obj.set_state(state)
    elif isinstance(obj, np.random.Generator):
        obj.bit_generator.state = state
    elif hasattr(obj, "load_state_dict"):
        obj.load_state_dict(state)
    elif isinstance(obj, dict):
        obj.clear()
        obj.update(state)
    else:
        raise TypeError(f"cannot restore {name!r} into {type(obj).__name__}")


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def save_checkpoint(
    directory: str | Path,
    step: int,
    objects: Mapping[str, Any],
    *,
    meta: Mapping[str, Any] | None = None,
    keep: int = 2,
) -> Path:
    """Atomically write the checkpoint of `step`; keep the newest `keep` checkpoints. Returns the sidecar."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    encoder = _Encoder()
    skeleton = {name: encoder.encode(_state_of(obj, name), name) for name, obj in objects.items()}
    rng = encoder.encode(capture_rng_state(), "$rng")
    payload = safetensors.torch.save(encoder.tensors)
    stem = f"step-{step:010d}"
    tensors_path = directory / f"{stem}.safetensors"
    _write_atomic(tensors_path, payload)
    sidecar = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "step": step,
        "created": time.time(),
        "tensors_file": tensors_path.name,
        "tensors_sha256": hashlib.sha256(payload).hexdigest(),
        "meta": dict(meta or {}),
        "objects": skeleton,
        "rng": rng,
    }
    sidecar_path = directory / f"{stem}.json"
    _write_atomic(sidecar_path, json.dumps(sidecar).encode())
    _fsync_dir(directory)
    for old in list_checkpoints(directory)[:-keep] if keep > 0 else []:
        old.unlink(missing_ok=True)
        old.with_suffix(".safetensors").unlink(missing_ok=True)
    return sidecar_path


def list_checkpoints(directory: str | Path) -> list[Path]:
    """Sidecars in a checkpoint folder, oldest step first."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in directory.iterdir() if (m := _NAME.match(p.name))]
    return [p for _, p in sorted(found)]


def read_checkpoint(sidecar_path: str | Path) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """Read and verify one checkpoint: (sidecar dict, tensors). Raises CheckpointError when corrupt."""
    sidecar_path = Path(sidecar_path)
    try:
        sidecar = json.loads(sidecar_path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise CheckpointError(f"checkpoint {sidecar_path} is unreadable or truncated: {err}") from None
    if not isinstance(sidecar, dict) or sidecar.get("format") != FORMAT:
        raise CheckpointError(f"checkpoint {sidecar_path} is not a {FORMAT} sidecar")
    if sidecar.get("version") != FORMAT_VERSION:
        raise CheckpointError(f"checkpoint {sidecar_path} has format version {sidecar.get('version')}, expected 1")
    tensors_path = sidecar_path.with_name(str(sidecar.get("tensors_file")))
    try:
        payload = tensors_path.read_bytes()
    except OSError:
        raise CheckpointError(f"checkpoint {sidecar_path}: tensors file {tensors_path.name} is missing") from None
    if hashlib.sha256(payload).hexdigest() != sidecar.get("tensors_sha256"):
        raise CheckpointError(
            f"checkpoint {tensors_path} is corrupt or truncated (sha256 differs from its sidecar); refusing to load"
        )
    try:
        tensors = safetensors.torch.load(payload)
    except Exception as err:  # safetensors raises its own error types for malformed headers
        raise CheckpointError(f"checkpoint {tensors_path} is not a valid safetensors file: {err}") from None
    return sidecar, tensors


def load_checkpoint(
    sidecar_path: str | Path, objects: Mapping[str, Any], *, restore_rng: bool = True
) -> tuple[int, dict[str, Any]]:
    """Restore `objects` (in place) and the global RNGs from a checkpoint; returns (step, meta)."""
    sidecar, tensors = read_checkpoint(sidecar_path)
    saved = sidecar["objects"]
    missing = sorted(set(objects) - set(saved))
    if missing:
        raise CheckpointError(f"checkpoint {sidecar_path} has no state for {', '.join(missing)}")
    for name, obj in objects.items():
        try:
            _restore(obj, _decode(saved[name], tensors), name)
        except (RuntimeError, KeyError, ValueError) as err:
            first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise CheckpointError(f"checkpoint {sidecar_path}: cannot restore {name!r}: {first_line}") from None
    if restore_rng:
        restore_rng_state(_decode(sidecar["rng"], tensors))
    return int(sidecar["step"]), sidecar.get("meta", {})
