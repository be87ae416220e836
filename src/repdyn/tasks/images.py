"""Image classification data without downloads: scikit-learn's bundled digits, or MNIST from a user folder.

Both loaders return `(x, y)` with `x` float32 in [0, 1] of shape `[N, pixels]` and `y` int64.
MNIST is read from the four standard IDX files (optionally gzipped) in a folder the user gives;
a missing or malformed file is a `DataError` naming the file and what was expected.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from repdyn.bench.errors import DataError

MNIST_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: np.dtype(">i2"), 0x0C: np.dtype(">i4"),
               0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}


def load_digits() -> tuple[Tensor, Tensor]:
    """scikit-learn's 8x8 digits (1797 images, bundled with the package), scaled to [0, 1]."""
    from sklearn.datasets import load_digits as sklearn_digits

    data = sklearn_digits()
    x = torch.from_numpy(data.data.astype(np.float32) / 16.0)
    y = torch.from_numpy(data.target.astype(np.int64))
    return x, y


def read_idx(path: str | Path) -> np.ndarray:
    """Parse an IDX file (the MNIST format): magic `00 00 type ndim`, big-endian dims, then data."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise DataError(f"{path}: cannot read IDX file ({err.strerror})") from None
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as err:
            raise DataError(f"{path}: corrupt gzip data ({err})") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise DataError(f"{path}: not an IDX file (bad magic number {raw[:4].hex() or 'empty'})")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{path}: truncated IDX header")
    shape = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    dtype = np.dtype(_IDX_DTYPES[raw[2]])
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(raw) - header != expected:
        raise DataError(f"{path}: IDX header declares shape {shape} ({expected} bytes) "
                        f"but the file holds {len(raw) - header} bytes")
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape)


def _find(folder: Path, stem: str) -> Path:
    for name in (stem, stem + ".gz", stem.replace("-idx", ".idx"), stem.replace("-idx", ".idx") + ".gz"):
        if (folder / name).is_file():
            return folder / name
    raise DataError(f"MNIST folder {folder} has no {stem}[.gz] (expected the four standard IDX files)")


def load_mnist(folder: str | Path, split: str = "train") -> tuple[Tensor, Tensor]:
    """MNIST `train` or `test` split from a folder of the standard IDX files, pixels scaled to [0, 1]."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"MNIST folder {folder} does not exist")
    image_stem, label_stem = MNIST_FILES[split]
    images = read_idx(_find(folder, image_stem))
    labels = read_idx(_find(folder, label_stem))
    if images.ndim != 3 or labels.ndim != 1:
        raise DataError(f"MNIST {split}: expected images [N, rows, cols] and labels [N], "
                        f"got {images.shape} and {labels.shape}")
    if images.shape[0] != labels.shape[0]:
        raise DataError(f"MNIST {split}: {images.shape[0]} images but {labels.shape[0]} labels")
    if labels.size and (labels.min() < 0 or labels.max() > 9):
        raise DataError(f"MNIST {split}: labels outside 0..9")
    x = torch.from_numpy(images.reshape(images.shape[0], -1).astype(np.float32) / 255.0)
    return x, torch.from_numpy(labels.astype(np.int64))


def check_mnist_folder(folder: str | Path) -> None:
    """Validate a user-given MNIST folder up front (all four files present and well-formed)."""
    for split in MNIST_FILES:
        load_mnist(folder, split)
