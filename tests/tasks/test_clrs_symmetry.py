"""Symmetry and resolution samplers: Bellman-Ford's tree is preserved, permuted, or resolved."""

import numpy as np
import pytest

from repdyn.bench.errors import UserError
from repdyn.tasks.clrs import run_batch, sample
from repdyn.tasks.clrs_symmetry import (
    johnson_reweight,
    resolution_batch,
    scale_weights,
    shuffle_nodes,
)


@pytest.fixture(scope="module")
def graphs():
    return sample("bellman_ford", 100, 12, seed=7)


@pytest.mark.parametrize("c", [0.5, 2.0, 4.0, 3.0])
def test_scaling_weights_keeps_the_tree_and_scales_distances(graphs, c):
    scaled = scale_weights(graphs, c)
    np.testing.assert_array_equal(scaled.outputs["pi"], graphs.outputs["pi"])
    np.testing.assert_allclose(scaled.inputs["A"], c * graphs.inputs["A"])
    last = graphs.lengths - 1
    rows = np.arange(graphs.size)
    np.testing.assert_allclose(scaled.hints["d"][scaled.lengths - 1, rows],
                               c * graphs.hints["d"][last, rows], rtol=1e-12)


def test_johnson_reweighting_keeps_the_tree_but_changes_the_weights(graphs):
    moved = johnson_reweight(graphs, np.random.RandomState(0))
    np.testing.assert_array_equal(moved.outputs["pi"], graphs.outputs["pi"])
    assert np.array_equal(moved.inputs["A"] != 0, graphs.inputs["A"] != 0)
    assert not np.allclose(moved.inputs["A"], graphs.inputs["A"])
    assert not np.allclose(moved.inputs["A"], moved.inputs["A"].transpose(0, 2, 1))


def test_shuffling_nodes_permutes_the_tree(graphs):
    rng = np.random.RandomState(1)
    perm = np.stack([rng.permutation(12) for _ in range(graphs.size)])
    shuffled = shuffle_nodes(graphs, perm)
    inverse = np.argsort(perm, axis=1)
    rows = np.arange(graphs.size)[:, None]
    expected = inverse[rows, graphs.outputs["pi"][rows, perm]]  # new i -> old perm[i] -> new id
    np.testing.assert_array_equal(shuffled.outputs["pi"], expected)


@pytest.mark.parametrize("delta", [0.1, 0.01, 0.001])
def test_resolution_graphs_have_two_paths_differing_by_exactly_delta(delta):
    res = resolution_batch(40, 16, delta, seed=3)
    rows = np.arange(40)
    pi = res.batch.outputs["pi"]
    np.testing.assert_array_equal(pi[rows, res.target], res.predecessor)
    d = res.batch.hints["d"][res.batch.lengths - 1, rows]
    cut = res.batch.inputs["A"].copy()
    cut[rows, res.predecessor, res.target] = cut[rows, res.target, res.predecessor] = 0.0
    rerun = run_batch("bellman_ford", cut, res.batch.inputs["s"].argmax(1))
    d_other = rerun.hints["d"][rerun.lengths - 1, rows]
    np.testing.assert_allclose(d_other[rows, res.target] - d[rows, res.target], delta, atol=1e-12)
    assert res.batch.inputs["A"].max() <= 1.0 and np.all(res.batch.inputs["A"] >= 0)


def test_transforms_refuse_what_they_cannot_do():
    with pytest.raises(UserError, match="positive"):
        scale_weights(sample("bellman_ford", 2, 5, seed=0), 0.0)
    with pytest.raises(UserError, match="does not take"):
        scale_weights(sample("bfs", 2, 5, seed=0), 2.0)
    with pytest.raises(UserError, match="n must be"):
        resolution_batch(2, 5, 0.1, seed=0)
