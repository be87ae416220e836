"""Parsing CLRS-Text answers back into arrays, and TransNAR's shape / parse / CLRS scores."""

from __future__ import annotations

import numpy as np
import pytest

from repdyn.bench.errors import UserError
from repdyn.tasks.clrs import CLRS_30_ALGS, SPECS, Sampler
from repdyn.tasks.clrs_text import (
    Scores,
    clrs_text_dataset,
    parse_answer,
    score_answer,
    score_answers,
)
from repdyn.tasks.clrs_text.format import chain_order


@pytest.mark.parametrize("use_hints", [False, True])
def test_every_true_answer_parses_back_to_the_sampled_outputs(use_hints):
    """Parsing inverts formatting: the arrays equal the outputs the sampler computed."""
    for name in CLRS_30_ALGS:
        batch = Sampler(name, -1, 7, seed=5, track_max_steps=False, truncate_decimals=3).next(4)
        examples = clrs_text_dataset(name, [7], 4, seed=5, use_hints=use_hints)
        for b, example in enumerate(examples):
            parsed = parse_answer(name, example.answer, use_hints)
            assert parsed is not None, (name, example.answer)
            traj = batch.trajectory(b)
            for field, value in parsed.items():
                assert np.array_equal(value, _expected(name, field, traj, use_hints)), \
                    (name, field, value)
            assert score_answer(name, example.answer, example.answer, use_hints) == \
                Scores(1.0, 1.0, 1.0)


def _expected(name, field, traj, use_hints):
    """The array an answer field prints, computed from the instance directly."""
    if use_hints and name in ("binary_search", "find_maximum_subarray_kadane", "quickselect"):
        return np.argmax(traj.hints[field][-1])  # index hints (mask_one)
    if field == "s" and name.endswith("matcher"):
        field = "match"
    value, kind = traj.outputs[field], SPECS[name][field][2]
    if kind == "should_be_permutation":  # sorting: the keys in sorted order
        return traj.inputs["key"][chain_order(value)]
    if kind == "mask_one":
        return np.argmax(value)
    if kind == "categorical":  # lcs_length: masked cells print -1
        return np.where(np.any(value == -1, -1), -1, np.argmax(value, -1))
    return value


def test_hand_made_bfs_answers():
    target = "[0 0 0 2 3]\n\n"
    assert score_answer("bfs", "[0 0 0 2 3]\n\n", target) == Scores(1.0, 1.0, 1.0)
    assert score_answer("bfs", "[0 0 1 2 0]\n\n", target) == Scores(1.0, 1.0, 0.6)
    assert score_answer("bfs", "[0 0 0 2]\n\n", target) == Scores(0.0, 1.0, 0.0)   # wrong shape
    assert score_answer("bfs", "[[0 0], [2 3]]", target) == Scores(0.0, 1.0, 0.0)  # a matrix
    for garbage in ("[0 0 0 2 3", "0 0 0 2 3]", "[0 0 0.5 2 3]", "[0,0,0,2,3]", "",
                    "[0  0 0 2 3]", "pi: [0 0 0 2 3]", "[0 0 0 2 3], 1"):
        assert parse_answer("bfs", garbage) is None, garbage
        assert score_answer("bfs", garbage, target) == Scores(0.0, 0.0, 0.0)
    # the answer ends at the first blank line: what a model generates after it is ignored
    assert score_answer("bfs", "[0 0 0 2 3]\n\nbfs:\ns: 1", target) == Scores(1.0, 1.0, 1.0)


def test_hand_made_answers_with_traces_and_several_fields():
    target = "(0, 0), (0, 1) | (0, 2)\n\n"
    assert parse_answer("find_maximum_subarray_kadane", target, True) == \
        {"best_low": 0, "best_high": 2}
    assert score_answer("find_maximum_subarray_kadane", "(1, 1) | (0, 3)\n\n", target,
                        True) == Scores(1.0, 1.0, 0.5)  # the trace itself is not scored
    assert score_answer("find_maximum_subarray_kadane", "(0, 2)", target, True).parse == 0.0
    assert score_answer("find_maximum_subarray_kadane", "| 0, 2", target, True).parse == 0.0
    # topological sort answers a list and an index; each element counts once
    topo = "[4 0 5 7 8 3 2 1 8], 6\n\n"
    assert score_answer("topological_sort", "[4 0 5 7 8 3 2 1 8], 5", topo).clrs == 0.9
    assert score_answer("topological_sort", "[4 0 5 7 8 3 2 1 8]", topo).parse == 0.0
    assert score_answer("topological_sort", "[4 0 5 7 8 3 2 1 8], [6]", topo) == \
        Scores(0.0, 1.0, 0.0)
    # edge outputs: matrices, ragged ones do not parse
    fw = "[[0 1], [1 1]]\n\n"
    assert score_answer("floyd_warshall", "[[0 1], [0 1]]", fw) == Scores(1.0, 1.0, 0.75)
    assert score_answer("floyd_warshall", "[[0 1], [1]]", fw) == Scores(0.0, 0.0, 0.0)
    assert score_answer("floyd_warshall", "[[0 1 1], [1 1 1]]", fw) == Scores(0.0, 1.0, 0.0)
    # sorting prints values: floats compare as printed
    keys = "[0.1 0.25 0.3]\n\n"
    assert score_answer("insertion_sort", "[0.1 0.3 0.25]", keys) == Scores(1.0, 1.0, 1 / 3)


def test_batch_scores_are_means():
    targets = ["[0 1 2]\n\n", "[0 1 2]\n\n", "[0 1 2]\n\n", "[0 1 2]\n\n"]
    preds = ["[0 1 2]", "[0 1 0]", "[0 1]", "nonsense"]
    scores = score_answers("dfs", preds, targets)
    assert scores == Scores(shape=0.5, parse=0.75, clrs=pytest.approx((1 + 2 / 3) / 4))
    with pytest.raises(UserError):
        score_answers("dfs", preds, targets[:2])
    with pytest.raises(UserError, match="target"):
        score_answer("dfs", "[0]", "not an answer")
