"""CLRS training recipe pieces: exact stream replay, fixed validation/test sets, chunked scoring."""

import numpy as np
import pytest
import torch

from repdyn.methods.nar_training import (
    IBARZ_FAMILY_MEAN,
    IBARZ_PLAIN_MEAN,
    IBARZ_TABLE2,
    NARTrainConfig,
    TrainStream,
    build_model,
    evaluate_model,
    family_mean,
    ood_test_feedback,
    validation_feedback,
)
from repdyn.models.nar import nb_dims_of
from repdyn.tasks.clrs import CLRS_30_ALGS


@pytest.fixture(autouse=True)
def _test_cache(tmp_path, monkeypatch):
    """Test splits cached under tmp_path."""
    monkeypatch.setenv("REPDYN_CACHE", str(tmp_path))


def test_skipping_replays_the_stream_exactly():
    a, b = TrainStream("bellman_ford", 5, 4), TrainStream("bellman_ford", 5, 4)
    for _ in range(3):
        next(a)
    b.skip(3)
    for _ in range(3):
        x, y = next(a), next(b)
        for p, q in zip([*x.features.inputs, *x.outputs], [*y.features.inputs, *y.outputs], strict=True):
            np.testing.assert_array_equal(p.data, q.data)
    sizes = [next(a).features.inputs[0].data.shape[1] for _ in range(5)]
    assert sorted(sizes) == [4, 7, 11, 13, 16]  # clrs.md §2.3: mixed sizes, cycled


def test_validation_and_test_sets_follow_the_recipe():
    val = validation_feedback("bfs", 16)
    pos = val.features.inputs[0].data
    assert val.features.inputs[0].name == "pos" and pos.shape == (16, 16)
    assert np.all(np.diff(pos, axis=1) > 0) and not np.allclose(pos[0], np.arange(16) / 16)
    np.testing.assert_array_equal(val.outputs[0].data, validation_feedback("bfs", 16).outputs[0].data)
    test = ood_test_feedback("bfs", 5)
    assert test.features.inputs[0].data.shape == (5, 64)
    np.testing.assert_allclose(test.features.inputs[0].data[0], np.arange(64) / 64)
    sorting = validation_feedback("insertion_sort", 4)
    assert [o.name for o in sorting.outputs] == ["pred", "pred_mask"]  # permutation pointers


def test_chunked_evaluation_equals_whole_batch_evaluation():
    val = validation_feedback("bellman_ford", 10)
    torch.manual_seed(0)
    model = build_model(NARTrainConfig(algorithm="bellman_ford", hidden=16),
                        TrainStream("bellman_ford", 0, 2).spec, nb_dims_of(val))
    whole = evaluate_model(model, val, batch_size=100)
    chunked = evaluate_model(model, val, batch_size=3)
    assert set(whole) == {"score", "pi", "hint/pi_h", "hint/d", "hint/msk"}
    for k, v in whole.items():
        assert chunked[k] == pytest.approx(v, abs=1e-6)


def test_published_table_reproduces_both_averages():
    assert set(IBARZ_TABLE2) == set(CLRS_30_ALGS)
    assert np.mean(list(IBARZ_TABLE2.values())) == pytest.approx(IBARZ_PLAIN_MEAN, abs=0.005)
    assert family_mean(IBARZ_TABLE2) == pytest.approx(IBARZ_FAMILY_MEAN, abs=0.005)
    assert family_mean({"bfs": 90.0, "dfs": 70.0, "minimum": 50.0}) == pytest.approx(65.0)
