"""The training recipe's batches equal run.py's (dm-clrs samplers + preprocessors, seed 42)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from repdyn.tasks.clrs.recipe import make_multi_sampler, recipe_kwargs, recipe_lengths, train_iterator

from .conftest import assert_same, group, read_npz


@pytest.mark.parametrize("name", ["bfs", "insertion_sort", "kmp_matcher"])
def test_training_batches_match_run_py(name):
    ref = read_npz("recipe")
    lengths = recipe_lengths(name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        it, _, spec = make_multi_sampler(name, lengths, np.random.RandomState(42),
                                         split="train", batch_size=4, multiplier=-1,
                                         sampler_kwargs=recipe_kwargs(name))
        for step in range(len(lengths) + 1):
            feedback = next(it)
            expected = group(ref, f"{name}/{step}")
            assert_same(feedback.features.lengths, expected["lengths"], "lengths")
            for stage, points in (("input", feedback.features.inputs),
                                  ("hint", feedback.features.hints), ("output", feedback.outputs)):
                assert sorted(dp.name for dp in points) == sorted(group(expected, stage))
                for dp in points:
                    assert_same(dp.data, expected[f"{stage}/{dp.name}"], f"{name} {dp.name}")
    if name == "insertion_sort":
        assert spec["pred"][2] == "permutation_pointer" and "pred_mask" in spec


def test_recipe_settings():
    assert recipe_lengths("bfs") == [4, 7, 11, 13, 16]
    assert recipe_lengths("kmp_matcher") == [20]
    assert recipe_kwargs("bridges")["p"][0] == pytest.approx(0.05)
    assert len(recipe_kwargs("bfs")["p"]) == 9
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        it, spec = train_iterator("binary_search", np.random.RandomState(0), batch_size=2)
    feedback = next(it)
    assert "pred" in [dp.name for dp in feedback.features.inputs] and "pred" in spec
    pos = feedback.features.inputs[0].data
    assert np.all(np.diff(pos, axis=1) > 0) and not np.allclose(pos[0], np.arange(4) / 4)
