"""Every algorithm's probes equal dm-clrs's push for push (inputs, hint traces, outputs).

Reference: `tests/fixtures/clrs/<algorithm>.npz`, made by dm-clrs 2.0.3 itself
(`make_fixtures.py`): its own sampler draws at several sizes plus integer-valued instances
full of ties (argsort order, strict comparisons, first-minimum rules).
"""

from __future__ import annotations

import numpy as np
import pytest

from repdyn.bench.errors import UserError
from repdyn.tasks.clrs import ALGORITHMS, execute
from repdyn.tasks.clrs.probes import one_hot

from .conftest import FIXTURES, assert_same, group, read_npz

NAMES = sorted(p.stem for p in FIXTURES.glob("*.npz")
               if p.stem in ALGORITHMS)


def test_all_clrs30_algorithms_are_implemented():
    from repdyn.tasks.clrs.specs import CLRS_30_ALGS

    assert set(CLRS_30_ALGS) <= set(ALGORITHMS)
    assert set(CLRS_30_ALGS) <= set(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_execute_matches_dm_clrs(name):
    data = read_npz(name)
    instances = sorted({int(k.split("/")[1]) for k in data if k.startswith("exec/")})
    assert len(instances) >= 6
    for i in instances:
        inst = group(data, f"exec/{i}")
        args = [inst[f"arg/{j}"] for j in range(len(group(inst, "arg")))]
        trajectory = execute(name, *args)
        for stage, ours in (("input", trajectory.inputs), ("hint", trajectory.hints),
                            ("output", trajectory.outputs)):
            ref = group(inst, stage)
            assert set(ours) == set(ref), f"{name}[{i}] {stage} names"
            for probe in ref:
                assert_same(ours[probe], ref[probe], f"{name}[{i}] {stage} {probe}")


def test_bfs_hand_example():
    """Path 0-1-2 plus isolated 3, source 0: one hint per round, the last one unchanged."""
    A = np.array([[0, 1, 0, 0], [1, 0, 1, 0], [0, 1, 0, 0], [0, 0, 0, 0]])
    t = execute("bfs", A, 0)
    np.testing.assert_array_equal(t.hints["reach_h"], [[1, 0, 0, 0], [1, 1, 0, 0],
                                                       [1, 1, 1, 0]])
    np.testing.assert_array_equal(t.hints["pi_h"], [[0, 1, 2, 3], [0, 0, 2, 3], [0, 0, 1, 3]])
    np.testing.assert_array_equal(t.outputs["pi"], [0, 0, 1, 3])
    np.testing.assert_array_equal(t.inputs["adj"], (A + np.eye(4) != 0) * 1.0)


def test_insertion_sort_hand_example():
    t = execute("insertion_sort", np.array([0.3, 0.1, 0.2]))
    # predecessor pointers of the sorted order 1 -> 2 -> 0; the first points to itself
    np.testing.assert_array_equal(t.outputs["pred"], [2, 1, 1])
    assert t.length == 3
    np.testing.assert_array_equal(t.hints["j"], one_hot(np.array([0, 1, 2]), 3))


def test_batched_run_equals_single_runs():
    rng = np.random.RandomState(0)
    A = (rng.rand(5, 7, 7) < 0.4).astype(float)
    from repdyn.tasks.clrs import run_batch

    batch = run_batch("dfs", A)
    for b in range(5):
        single = execute("dfs", A[b])
        whole = batch.trajectory(b)
        for k in single.hints:
            assert_same(whole.hints[k], single.hints[k], f"dfs hint {k}")
        assert_same(whole.outputs["pi"], single.outputs["pi"], "dfs pi")
        assert np.all(batch.hints["pi_h"][batch.lengths[b]:, b] == 0)


def test_unknown_algorithm_is_a_user_error():
    with pytest.raises(UserError, match="unknown CLRS algorithm"):
        execute("bogo_sort", np.zeros(3))
