"""CLRS30 splits: settings, regeneration equal to dm-clrs, disk cache and its integrity check."""

from __future__ import annotations

import numpy as np
import pytest

from repdyn.bench.errors import DataError, UserError
from repdyn.tasks.clrs import load_split, sample, to_feedback
from repdyn.tasks.clrs.splits import cache_dir, split_settings

from .conftest import assert_same, group, read_npz


def test_split_settings_follow_clrs30():
    assert split_settings("bfs", "train") == {"num_samples": 1000, "length": 16, "seed": 1}
    assert split_settings("bfs", "val") == {"num_samples": 32, "length": 16, "seed": 2}
    assert split_settings("bfs", "test") == {"num_samples": 32, "length": 64, "seed": 3}
    assert split_settings("minimum", "test")["num_samples"] == 32 * 64
    assert split_settings("find_maximum_subarray_kadane", "val")["num_samples"] == 32 * 32
    with pytest.raises(UserError, match="unknown split"):
        split_settings("bfs", "dev")


@pytest.mark.parametrize("name", ["bfs", "dijkstra", "insertion_sort", "kmp_matcher",
                                  "graham_scan"])
def test_first_test_instance_equals_dm_clrs(name):
    """The test split's first instance (n = 64, seed 3) as dm-clrs's benchmark builds it."""
    ref = group(read_npz("test_split_first"), name)
    feedback = to_feedback(sample(name, 1, 64, seed=3))
    for stage, points in (("input", feedback.features.inputs), ("hint", feedback.features.hints),
                          ("output", feedback.outputs)):
        for dp in points:
            assert_same(dp.data, ref[f"{stage}/{dp.name}"], f"{name} {dp.name}")


def test_cache_round_trip_and_corruption(tmp_path):
    first = load_split("bfs", "val", cache=tmp_path)
    path = tmp_path / "bfs_val.npz"
    assert path.exists() and (tmp_path / "bfs_val.npz.json").exists()
    fresh = sample("bfs", 32, 16, seed=2)
    again = load_split("bfs", "val", cache=tmp_path)
    for k in fresh.hints:
        assert_same(first.hints[k], fresh.hints[k], k)
        assert_same(again.hints[k], fresh.hints[k], k)
    assert_same(again.lengths, fresh.lengths, "lengths")
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    path.write_bytes(bytes(raw))
    with pytest.raises(DataError, match="SHA-256 does not match"):
        load_split("bfs", "val", cache=tmp_path)


def test_cache_with_other_settings_is_refused(tmp_path):
    load_split("bfs", "val", cache=tmp_path)
    (tmp_path / "bfs_val.npz").rename(tmp_path / "bfs_train.npz")
    (tmp_path / "bfs_val.npz.json").rename(tmp_path / "bfs_train.npz.json")
    with pytest.raises(DataError, match="expected"):
        load_split("bfs", "train", cache=tmp_path)


def test_cache_dir_honours_repdyn_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("REPDYN_CACHE", str(tmp_path))
    assert cache_dir() == tmp_path / "clrs"
    monkeypatch.delenv("REPDYN_CACHE")
    assert cache_dir().parts[-3:] == (".cache", "repdyn", "clrs")
    assert np.all(np.isfinite(sample("bfs", 1, 4, seed=0).inputs["pos"]))
