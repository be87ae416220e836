"""The Feedback layout and the recipe's preprocessing equal dm-clrs's."""

from __future__ import annotations

import json

import numpy as np
import pytest

from repdyn.tasks.clrs import Sampler, from_feedback, sample, to_feedback
from repdyn.tasks.clrs import feedback as fb

from .conftest import assert_same, group, read_npz


def test_feedback_round_trip_and_layout():
    batch = sample("dag_shortest_paths", 4, 7, seed=2)
    feedback = to_feedback(batch)
    assert [dp.name for dp in feedback.features.inputs] == ["pos", "s", "A", "adj"]
    assert feedback.features.lengths.dtype == np.float64
    for dp in feedback.features.hints:
        assert dp.data.shape[:2] == (batch.hints["pi_h"].shape[0], 4)
    back = from_feedback("dag_shortest_paths", feedback)
    for group_name in ("inputs", "hints", "outputs"):
        for k, v in getattr(batch, group_name).items():
            assert_same(getattr(back, group_name)[k], v, k)
    assert_same(back.lengths, batch.lengths, "lengths")


def test_cyclic_permutation_hand_example():
    """dm-clrs's docstring example: pointers [2, 1, 1] (order 1 -> 2 -> 0)."""
    perm, mask = fb.cyclic_permutation(np.array([2, 1, 1]))
    np.testing.assert_array_equal(perm, [[0, 0, 1], [1, 0, 0], [0, 1, 0]])
    np.testing.assert_array_equal(mask, [0, 1, 0])
    assert perm.dtype == np.float32


@pytest.mark.parametrize("name", ["insertion_sort", "binary_search", "naive_string_matcher"])
def test_preprocessing_matches_dm_clrs(name):
    """pred_h -> input, random pos, permutation pointers: fixture built by dm-clrs's own
    process_pred_as_input, process_random_pos(rng 9) and process_permutations."""
    ref = group(read_npz("permutations"), name)
    feedback = to_feedback(Sampler(name, 5, 9, seed=4).next(3))
    spec = dict(__import__("repdyn.tasks.clrs.specs", fromlist=["SPECS"]).SPECS[name])
    if name != "insertion_sort":
        feedback = fb.pred_as_input(feedback)
        spec = fb.pred_as_input_spec(spec)
    feedback = fb.randomize_pos(feedback, np.random.RandomState(9))
    feedback = fb.permutations(feedback)
    spec = fb.permutations_spec(spec)
    assert {k: list(v) for k, v in spec.items()} == json.loads(str(ref["spec"]))
    assert [dp.name for dp in feedback.features.inputs] == list(ref["input_order"])
    assert [dp.name for dp in feedback.outputs] == list(ref["output_order"])
    for stage, points in (("input", feedback.features.inputs), ("hint", feedback.features.hints),
                          ("output", feedback.outputs)):
        expected = group(ref, stage)
        assert sorted(dp.name for dp in points) == sorted(expected)
        for dp in points:
            assert_same(dp.data, expected[dp.name], f"{name} {stage} {dp.name}")


def test_pred_as_input_refuses_a_changing_pred_h():
    feedback = to_feedback(sample("insertion_sort", 2, 5, seed=0))
    with pytest.raises(ValueError, match="pred_h changes"):
        fb.pred_as_input(feedback)


def test_to_torch_keeps_pointers_integer():
    torch = pytest.importorskip("torch")
    t = sample("bfs", 2, 5, seed=0).to_torch(dtype=torch.float32)
    assert t["outputs"]["pi"].dtype == torch.int64
    assert t["hints"]["pi_h"].dtype == torch.float32
    assert t["inputs"]["A"].dtype == torch.int64 and t["lengths"].shape == (2,)
