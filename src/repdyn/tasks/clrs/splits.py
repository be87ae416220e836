"""The CLRS-30 splits, regenerated locally and cached on disk (clrs.md §2.1).

train: 1000 samples at n = 16, seed 1; val: 32 x mult at n = 16, seed 2; test: 32 x mult at
n = 64, seed 3, all with the samplers' default kwargs - exactly how dm-clrs builds its
benchmark dataset, so no download is needed. Files live in `$REPDYN_CACHE/clrs` (default
`~/.cache/repdyn/clrs`) as `<algorithm>_<split>.npz` (no pickle) next to a JSON sidecar with
the settings and the file's SHA-256; a file whose hash or settings do not match is refused.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import types
from pathlib import Path

import numpy as np

from repdyn.bench.errors import DataError, UserError
from repdyn.tasks.clrs import specs
from repdyn.tasks.clrs.probes import Batch
from repdyn.tasks.clrs.samplers import sample

# clrs.md §2.1 (dm-clrs samplers.CLRS30)
CLRS30 = types.MappingProxyType({
    "train": types.MappingProxyType({"num_samples": 1000, "length": 16, "seed": 1}),
    "val": types.MappingProxyType({"num_samples": 32, "length": 16, "seed": 2}),
    "test": types.MappingProxyType({"num_samples": 32, "length": 64, "seed": 3}),
})
_FORMAT = 1


def split_settings(name: str, split: str) -> dict[str, int]:
    """num_samples, length and seed of a split (val/test scaled by the algorithm's multiplier)."""
    if split not in CLRS30:
        raise UserError(f"unknown split {split!r}; accepted: train, val, test")
    if name not in specs.NUM_SAMPLES_MULTIPLIER:
        raise UserError(f"{name!r} is not a CLRS-30 algorithm; accepted: "
                        f"{', '.join(specs.CLRS_30_ALGS)}")
    settings = dict(CLRS30[split])
    if split != "train":
        settings["num_samples"] *= specs.NUM_SAMPLES_MULTIPLIER[name]
    return settings


def cache_dir() -> Path:
    """Where splits are cached: `$REPDYN_CACHE/clrs`, else `~/.cache/repdyn/clrs`."""
    root = os.environ.get("REPDYN_CACHE")
    return Path(root) / "clrs" if root else Path.home() / ".cache" / "repdyn" / "clrs"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def save_batch(batch: Batch, path: Path, meta: dict) -> None:
    """Write a batch as npz plus `<path>.json` holding `meta` and the npz's SHA-256."""
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = {"lengths": batch.lengths}
    for group in ("inputs", "hints", "outputs"):
        arrays.update({f"{group}/{k}": v for k, v in getattr(batch, group).items()})
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".npz")
    os.close(fd)
    np.savez_compressed(tmp, **arrays)
    os.replace(tmp, path)
    sidecar = {**meta, "algorithm": batch.name, "format": _FORMAT, "sha256": _sha256(path)}
    Path(str(path) + ".json").write_text(json.dumps(sidecar, indent=1, sort_keys=True))


def load_batch(path: Path, expected: dict | None = None) -> Batch:
    """Read a batch written by `save_batch`; refuse it if its hash or settings differ."""
    sidecar = Path(str(path) + ".json")
    try:
        meta = json.loads(sidecar.read_text())
    except (OSError, ValueError) as e:
        raise DataError(f"{sidecar}: missing or unreadable cache sidecar ({e})") from e
    if meta.get("sha256") != _sha256(path):
        raise DataError(f"{path}: SHA-256 does not match {sidecar.name}; the cache file is "
                        "corrupt - delete it to regenerate")
    for key, value in (expected or {}).items():
        if meta.get(key) != value:
            raise DataError(f"{path}: cached {key}={meta.get(key)!r}, expected {value!r}; "
                            "delete it to regenerate")
    try:
        with np.load(path, allow_pickle=False) as data:
            groups: dict[str, dict] = {"inputs": {}, "hints": {}, "outputs": {}}
            for key in data.files:
                if key != "lengths":
                    group, name = key.split("/", 1)
                    groups[group][name] = data[key]
            return Batch(meta["algorithm"], groups["inputs"], groups["hints"],
                         groups["outputs"], data["lengths"])
    except (OSError, ValueError, KeyError) as e:
        raise DataError(f"{path}: unreadable cache file ({e}); delete it to regenerate") from e


def load_split(name: str, split: str, cache: Path | str | None = None) -> Batch:
    """The CLRS-30 `split` of algorithm `name`, generated once and then read from the cache."""
    settings = split_settings(name, split)
    folder = Path(cache) if cache is not None else cache_dir()
    path = folder / f"{name}_{split}.npz"
    expected = {"algorithm": name, "split": split, "format": _FORMAT, **settings}
    if path.exists():
        return load_batch(path, expected)
    batch = sample(name, settings["num_samples"], settings["length"], seed=settings["seed"])
    save_batch(batch, path, {"split": split, **settings})
    return batch
