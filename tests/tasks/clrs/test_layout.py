"""Specs equal dm-clrs's, and sampled probes respect them (shapes, value ranges, one-hot)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from repdyn.tasks.clrs import ALGORITHMS, SPECS, sample
from repdyn.tasks.clrs.specs import CLRS_30_ALGS, NUM_SAMPLES_MULTIPLIER, Location, Type

from .conftest import FIXTURES


def test_specs_equal_dm_clrs():
    ref = json.loads((FIXTURES / "specs.json").read_text())
    assert list(SPECS) == list(ref)
    for name, spec in ref.items():
        assert list(SPECS[name]) == list(spec), name
        assert {k: list(v) for k, v in SPECS[name].items()} == spec, name


def test_clrs30_list_and_multipliers():
    assert len(CLRS_30_ALGS) == 30
    assert NUM_SAMPLES_MULTIPLIER["find_maximum_subarray_kadane"] == 32
    assert NUM_SAMPLES_MULTIPLIER["kmp_matcher"] == 64
    assert NUM_SAMPLES_MULTIPLIER["bfs"] == 1


def _check(name: str, probe: str, data: np.ndarray, n: int, batch: int, stage: str) -> None:
    _, loc, typ = SPECS[name][probe]
    lead = (batch,) if stage != "hint" else (data.shape[0], batch)
    tail = {Location.NODE: (n,), Location.EDGE: (n, n), Location.GRAPH: ()}[loc]
    assert data.shape[:len(lead) + len(tail)] == lead + tail, (name, probe, data.shape)
    if stage == "hint":  # padded steps are zero; check only the real ones
        return
    if typ in (Type.MASK, Type.MASK_ONE, Type.CATEGORICAL):
        assert np.isin(data, (0, 1, -1)).all(), (name, probe)
    if typ in (Type.MASK_ONE, Type.CATEGORICAL):
        assert (np.abs(data).sum(-1) == 1).all(), (name, probe)
    if typ in (Type.POINTER, Type.SHOULD_BE_PERMUTATION):
        assert ((data >= 0) & (data < n) & (data == np.round(data))).all(), (name, probe)


@pytest.mark.parametrize("name", sorted(ALGORITHMS))
def test_sampled_probes_respect_the_spec(name):
    batch = sample(name, 3, 9, seed=5)
    n = batch.inputs["pos"].shape[1]  # 9 nodes, but 4 for segments and 10 for optimal BST
    for stage, arrays in (("input", batch.inputs), ("hint", batch.hints),
                          ("output", batch.outputs)):
        names = [k for k, (s, _, _) in SPECS[name].items() if s == stage]
        assert sorted(arrays) == sorted(names), (name, stage)
        for probe, data in arrays.items():
            _check(name, probe, data, n, 3, stage)
    for b in range(3):  # unpadded hints satisfy the value constraints too
        t = batch.trajectory(b)
        for probe, data in t.hints.items():
            _, _, typ = SPECS[name][probe]
            if typ in (Type.MASK_ONE, Type.CATEGORICAL):
                assert (np.abs(data).sum(-1) == 1).all(), (name, probe)
            if typ == Type.POINTER:
                assert ((data >= 0) & (data < n)).all(), (name, probe)
