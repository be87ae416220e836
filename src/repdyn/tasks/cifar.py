"""CIFAR-10 from the official binary batches in a user-given folder (no download).

The "binary version" of CIFAR-10 holds `data_batch_1.bin` ... `data_batch_5.bin` and
`test_batch.bin` (optionally inside a `cifar-10-batches-bin/` sub-folder). Each record is one
label byte (0-9) followed by 3072 pixel bytes: 1024 red, 1024 green, 1024 blue, row-major 32x32.
A missing or malformed file is a `DataError` naming the file and what was expected.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from repdyn.bench.errors import DataError

PIXELS = 3 * 32 * 32
RECORD = 1 + PIXELS
CIFAR10_FILES = {
    "train": tuple(f"data_batch_{i}.bin" for i in range(1, 6)),
    "test": ("test_batch.bin",),
}


def read_cifar10_batch(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """One binary batch file as (images uint8 [N, 3, 32, 32], labels uint8 [N])."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise DataError(f"{path}: cannot read CIFAR-10 batch ({err.strerror})") from None
    if not raw or len(raw) % RECORD:
        raise DataError(f"{path}: {len(raw)} bytes is not a whole number of {RECORD}-byte CIFAR-10 records "
                        f"(1 label byte + {PIXELS} pixel bytes each)")
    records = np.frombuffer(raw, dtype=np.uint8).reshape(-1, RECORD)
    labels = records[:, 0]
    if labels.max() > 9:
        raise DataError(f"{path}: label byte {int(labels.max())} outside 0..9 (is this the binary version?)")
    return records[:, 1:].reshape(-1, 3, 32, 32), labels


def _folder(folder: str | Path) -> Path:
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"CIFAR-10 folder {folder} does not exist")
    nested = folder / "cifar-10-batches-bin"
    return nested if nested.is_dir() else folder


def load_cifar10(folder: str | Path, split: str = "train") -> tuple[Tensor, Tensor]:
    """CIFAR-10 `train` (5 batches) or `test`: x float32 [N, 3072] in [0, 1], y int64 [N]."""
    if split not in CIFAR10_FILES:
        raise ValueError(f"split must be train or test, got {split!r}")
    root = _folder(folder)
    images, labels = [], []
    for name in CIFAR10_FILES[split]:
        if not (root / name).is_file():
            raise DataError(f"CIFAR-10 folder {root} has no {name} (expected the binary batches "
                            f"{', '.join(CIFAR10_FILES['train'] + CIFAR10_FILES['test'])})")
        x, y = read_cifar10_batch(root / name)
        images.append(x)
        labels.append(y)
    x = np.concatenate(images).reshape(-1, PIXELS).astype(np.float32) / 255.0
    return torch.from_numpy(x), torch.from_numpy(np.concatenate(labels).astype(np.int64))


def check_cifar10_folder(folder: str | Path) -> None:
    """Validate a user-given CIFAR-10 folder up front (all six binary batches present and well-formed)."""
    for split in CIFAR10_FILES:
        load_cifar10(folder, split)
