"""Live cross-check against dm-clrs itself, on seeds the fixtures do not use.

Runs only where dm-clrs 2.0.3 (plus attrs and absl-py) is installed; it is imported without
jax/tensorflow by `tests/fixtures/clrs/clrs_oracle.py` (clrs.md §10).
"""

from __future__ import annotations

import importlib.util
import sys
import warnings

import numpy as np
import pytest

from repdyn.tasks.clrs import ALGORITHMS, Sampler, execute, to_feedback

from .conftest import FIXTURES

if importlib.util.find_spec("clrs") is None:
    pytest.skip("dm-clrs is not installed", allow_module_level=True)
pytest.importorskip("attr")
pytest.importorskip("absl")
sys.path.insert(0, str(FIXTURES))
oracle = pytest.importorskip("clrs_oracle").load()


def _same(a, b) -> bool:
    a, b = np.asarray(a), np.asarray(b)
    return a.shape == b.shape and a.dtype == b.dtype and np.array_equal(a, b)


@pytest.mark.parametrize("name", sorted(ALGORITHMS))
def test_live_samplers_and_traces(name):
    seed = 1000 + sum(map(ord, name)) % 97
    length = 4 if name == "segments_intersect" else 10
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref_sampler, _ = oracle.samplers.build_sampler(name, 16, length=length, seed=seed)
        ours = to_feedback(Sampler(name, 16, length, seed=seed).next())
    ref = ref_sampler.next()
    assert _same(ours.features.lengths, ref.features.lengths)
    for mine, theirs in ((ours.features.inputs, ref.features.inputs),
                         (ours.features.hints, ref.features.hints), (ours.outputs, ref.outputs)):
        assert [d.name for d in mine] == [d.name for d in theirs]
        for a, b in zip(mine, theirs, strict=True):
            assert _same(a.data, b.data), (name, a.name)
    draw = oracle.samplers.build_sampler(name, 1, length=length, seed=seed + 1)[0]
    args = draw._sample_data(length)
    _, probes = getattr(oracle.algorithms, name)(*[np.copy(a) for a in args])
    trajectory = execute(name, *args)
    for stage, arrays in (("input", trajectory.inputs), ("hint", trajectory.hints),
                          ("output", trajectory.outputs)):
        for loc in probes[stage].values():
            for probe, v in loc.items():
                assert _same(arrays[probe], v["data"]), (name, stage, probe)
