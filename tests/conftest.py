"""Shared fixtures: tiny data files written by the tests themselves (no downloads)."""

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest

MNIST_NAMES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
               "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}


def idx_bytes(array: np.ndarray) -> bytes:
    """An IDX file of unsigned bytes, built from the format's definition."""
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + b"".join(struct.pack(">I", d) for d in array.shape)
    return header + array.astype(np.uint8).tobytes()


def write_tiny_mnist(folder: Path, n_train: int = 6, n_test: int = 4, gz: bool = False, seed: int = 0) -> dict:
    """Write the four MNIST IDX files with random images; returns {split: (images, labels)}."""
    rng = np.random.default_rng(seed)
    data = {}
    for split, n in (("train", n_train), ("test", n_test)):
        images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, size=n, dtype=np.uint8)
        for name, array in zip(MNIST_NAMES[split], (images, labels), strict=True):
            raw = idx_bytes(array)
            (folder / (name + (".gz" if gz else ""))).write_bytes(gzip.compress(raw) if gz else raw)
        data[split] = (images, labels)
    return data


@pytest.fixture
def tiny_mnist(tmp_path):
    """Factory writing a tiny MNIST folder under tmp_path."""

    def make(**kwargs):
        folder = tmp_path / "mnist"
        folder.mkdir(exist_ok=True)
        return folder, write_tiny_mnist(folder, **kwargs)

    return make
