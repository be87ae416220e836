"""The batched graph algorithms equal dm-clrs's own, push for push, on many random graphs.

Each batch mixes graphs of one size from empty (isolated nodes) to complete (self-loops
included), with uniform weights and with integer weights full of ties (Kruskal's and the
extract-min's argsort order, strict comparisons), so that instances of one batch take
different paths through the lockstep state machines. dm-clrs squeezes a single run's inputs
and outputs (`probing.finalize`), so at n = 1 those are compared squeezed. Runs only where
dm-clrs is installed.
"""

from __future__ import annotations

import importlib.util
import sys
import warnings

import numpy as np
import pytest

from repdyn.tasks.clrs import Sampler, run_batch, to_feedback

from .conftest import FIXTURES

if importlib.util.find_spec("clrs") is None:
    pytest.skip("dm-clrs is not installed", allow_module_level=True)
pytest.importorskip("attr")
pytest.importorskip("absl")
sys.path.insert(0, str(FIXTURES))
oracle = pytest.importorskip("clrs_oracle").load()

SIZES = (1, 2, 3, 5, 8, 13)
DENSITIES = (0.0, 0.15, 0.35, 0.6, 1.0)
# name: (directed, acyclic, weighted, takes a source)
GRAPHS = {
    "dfs": (True, False, False, False),
    "topological_sort": (True, True, False, False),
    "articulation_points": (False, False, False, False),
    "bridges": (False, False, False, False),
    "strongly_connected_components": (True, False, False, False),
    "dag_shortest_paths": (True, True, True, True),
    "bfs": (False, False, False, True),
    "bellman_ford": (False, False, True, True),
    "dijkstra": (False, False, True, True),
    "mst_prim": (False, False, True, True),
    "mst_kruskal": (False, False, True, False),
    "floyd_warshall": (False, False, True, False),
}


def _graph(rng: np.random.RandomState, n: int, p: float, directed: bool, acyclic: bool,
           weights: str) -> np.ndarray:
    """A random graph as dm-clrs's samplers shape them; 'ties' draws integer weights 1..3."""
    mat = (rng.rand(n, n) < p).astype(np.int64)
    if not directed:
        mat = np.triu(mat) + np.triu(mat, 1).T
    elif acyclic:
        perm = rng.permutation(n)
        mat = np.triu(mat, 1)[perm][:, perm]
    if weights == "none":
        return mat
    w = rng.randint(1, 4, size=(n, n)).astype(float) if weights == "ties" else rng.rand(n, n)
    if not directed:
        w = np.triu(w) + np.triu(w, 1).T
    return mat * w


def _instances(name: str, n: int, seed: int) -> list[list]:
    directed, acyclic, weighted, source = GRAPHS[name]
    rng = np.random.RandomState(seed)
    instances = []
    for p in DENSITIES:
        for weights in (("uniform", "ties") if weighted else ("none",)):
            for _ in range(2):
                args = [_graph(rng, n, p, directed, acyclic, weights)]
                if source:
                    args.append(int(rng.randint(n)))
                instances.append(args)
    return instances


def _same(a, b) -> bool:
    a, b = np.asarray(a), np.asarray(b)
    return a.shape == b.shape and a.dtype == b.dtype and np.array_equal(a, b)


def _assert_same_feedback(mine, theirs, name: str) -> None:
    assert _same(mine.features.lengths, theirs.features.lengths)
    for a, b in zip((*mine.features.inputs, *mine.features.hints, *mine.outputs),
                    (*theirs.features.inputs, *theirs.features.hints, *theirs.outputs),
                    strict=True):
        assert a.name == b.name and _same(a.data, b.data), (name, a.name)


@pytest.mark.parametrize("name", sorted(GRAPHS))
@pytest.mark.parametrize("n", SIZES)
def test_batched_graph_algorithm_equals_dm_clrs(name, n):
    instances = _instances(name, n, seed=100 * n + len(name))
    columns = [np.stack([np.asarray(args[i]) for args in instances])
               for i in range(len(instances[0]))]
    batch = run_batch(name, *columns)
    for b, args in enumerate(instances):
        _, probes = getattr(oracle.algorithms, name)(*[np.copy(a) for a in args])
        trajectory = batch.trajectory(b)
        assert np.all([np.all(h[trajectory.length:, b] == 0) for h in batch.hints.values()])
        for stage, arrays in (("input", trajectory.inputs), ("hint", trajectory.hints),
                              ("output", trajectory.outputs)):
            for loc in probes[stage].values():
                for probe, v in loc.items():
                    ours = arrays[probe] if stage == "hint" else np.squeeze(arrays[probe])
                    assert _same(ours, v["data"]), (name, n, b, stage, probe)


@pytest.mark.parametrize("name", sorted(GRAPHS))
@pytest.mark.parametrize("length,p", [(5, (0.3,)), (16, (0.1, 0.5, 0.9)), (7, (0.2, 0.4)),
                                      (32, (0.5,))])
def test_graph_sampler_equals_build_sampler(name, length, p):
    """Whole-batch input draws (choices of p that may be rejected, shuffles, sources) consume
    the random stream as dm-clrs does: the dataset and the batch drawn after it are equal."""
    seed = 7 * length + len(p)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref, _ = oracle.samplers.build_sampler(name, 12, length=length, seed=seed, p=p)
    ours = Sampler(name, 12, length, seed=seed, p=p)
    for mine, theirs in ((ours.next(), ref.next()), (ours.next(4), ref.next(4))):
        _assert_same_feedback(to_feedback(mine), theirs, name)


@pytest.mark.parametrize("name", sorted(GRAPHS))
def test_test_split_size_equals_build_sampler(name):
    """At the CLRS30 test size (n = 64, where hint tapes run for hundreds of steps)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref, _ = oracle.samplers.build_sampler(name, 4, length=64, seed=11)
    _assert_same_feedback(to_feedback(Sampler(name, 4, 64, seed=11).next()), ref.next(), name)
