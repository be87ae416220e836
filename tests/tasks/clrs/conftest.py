"""Shared helpers for the CLRS tests: where the dm-clrs fixtures live and how to read them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "clrs"


def read_npz(name: str) -> dict[str, np.ndarray]:
    """All arrays of `tests/fixtures/clrs/<name>.npz` (no pickle)."""
    with np.load(FIXTURES / f"{name}.npz", allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


def group(data: dict[str, np.ndarray], prefix: str) -> dict[str, np.ndarray]:
    """Entries under `prefix/`, with the prefix removed."""
    cut = len(prefix) + 1
    return {k[cut:]: v for k, v in data.items() if k.startswith(prefix + "/")}


def assert_same(ours: np.ndarray, ref: np.ndarray, what: str) -> None:
    """Bit-for-bit equality, shape and dtype included."""
    ours, ref = np.asarray(ours), np.asarray(ref)
    assert ours.shape == ref.shape, f"{what}: shape {ours.shape} != {ref.shape}"
    assert ours.dtype == ref.dtype, f"{what}: dtype {ours.dtype} != {ref.dtype}"
    assert np.array_equal(ours, ref), f"{what}: values differ"


@pytest.fixture
def fixture_npz():
    return read_npz
