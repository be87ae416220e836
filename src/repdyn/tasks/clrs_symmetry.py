"""Targeted tests of NAR latents on shortest paths (nar_latent.md §3, §6), from `tasks.clrs` parts.

Symmetries of a weighted graph algorithm taking (A, s) (Bellman-Ford, Dijkstra, ...): each
transforms a batch and re-runs the algorithm, so hints follow the new weights while the
shortest-path tree `pi` stays the same (`scale_weights`, `johnson_reweight`) or permutes with
the nodes (`shuffle_nodes`):

| transform          | weights                                   | `pi`                    |
| scale_weights(c)   | w' = c w (out-of-range test: c in 0.5..4) | unchanged               |
| johnson_reweight   | w'(u, v) = w(u, v) + h(u) - h(v), h ~ U[0, 1/4] | unchanged         |
| shuffle_nodes      | nodes permuted                            | permuted with the nodes |

`resolution_batch(num, n, delta, seed)` builds graphs whose only two source-target paths differ
in length by exactly `delta`: the target's pointer tells whether the model resolves `delta`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from repdyn.bench.errors import UserError
from repdyn.tasks.clrs import Batch, run_batch

WEIGHTED_SOURCE_ALGOS = ("bellman_ford", "dijkstra", "mst_prim", "dag_shortest_paths")


def _rerun(batch: Batch, A: np.ndarray, s: np.ndarray) -> Batch:
    if batch.name not in WEIGHTED_SOURCE_ALGOS:
        raise UserError(f"{batch.name!r} does not take (A, s); accepted: "
                        f"{', '.join(WEIGHTED_SOURCE_ALGOS)}")
    return run_batch(batch.name, A, s)


def _source(batch: Batch) -> np.ndarray:
    return batch.inputs["s"].argmax(-1)


def scale_weights(batch: Batch, c: float) -> Batch:
    """The same graphs with every weight multiplied by c > 0 (the tree is unchanged)."""
    if c <= 0:
        raise UserError(f"scale_weights: c must be positive, got {c}")
    return _rerun(batch, batch.inputs["A"] * c, _source(batch))


def johnson_reweight(batch: Batch, rng: np.random.RandomState, high: float = 0.25) -> Batch:
    """Potential reweighting w'(u, v) = w(u, v) + h(u) - h(v) on existing edges, h ~ U[0, high]
    per node: every s-v path length shifts by h(s) - h(v), so the tree is unchanged."""
    A = batch.inputs["A"]
    h = rng.uniform(0.0, high, size=A.shape[:2])
    return _rerun(batch, np.where(A != 0, A + h[:, :, None] - h[:, None, :], 0.0), _source(batch))


def shuffle_nodes(batch: Batch, perm: np.ndarray) -> Batch:
    """Relabel nodes: new node i is old node perm[b, i] ([B, n]); pointers follow."""
    rows = np.arange(batch.size)[:, None]
    A = batch.inputs["A"][rows[:, :, None], perm[:, :, None], perm[:, None, :]]
    inverse = np.argsort(perm, axis=1)
    return _rerun(batch, A, inverse[np.arange(batch.size), _source(batch)])


@dataclass
class ResolutionSet:
    """Graphs with two s-t paths of lengths differing by delta: the batch, each target t, and
    the predecessor of t on the shorter path (= the true pi[t])."""

    batch: Batch
    target: np.ndarray
    predecessor: np.ndarray


def resolution_batch(num: int, n: int, delta: float, seed: int,
                     algorithm: str = "bellman_ford") -> ResolutionSet:
    """`num` undirected graphs on n >= 6 nodes: two disjoint paths s -> t of 2-4 edges each with
    weights in [0.05, 1] whose lengths differ by exactly delta (the shorter one chosen at
    random), and the other nodes hanging off s as a random tree, so no other s-t route exists."""
    if n < 6:
        raise UserError(f"resolution_batch: n must be >= 6, got {n}")
    rng = np.random.RandomState(seed)
    A = np.zeros((num, n, n))
    s = np.zeros(num, dtype=np.int64)
    target = np.zeros(num, dtype=np.int64)
    predecessor = np.zeros(num, dtype=np.int64)
    for b in range(num):
        order = rng.permutation(n)
        edges = rng.randint(2, 5, size=2)
        inner = order[2:2 + edges.sum() - 2]
        paths = [inner[:edges[0] - 1], inner[edges[0] - 1:]]
        s[b], target[b] = order[0], order[1]
        while True:
            weights = [rng.uniform(0.2, 0.8, size=k) for k in edges]
            shorter = rng.randint(2)
            weights[1 - shorter][-1] += weights[shorter].sum() + delta - weights[1 - shorter].sum()
            if 0.05 <= weights[1 - shorter][-1] <= 1.0:
                break
        for nodes, w in zip(paths, weights, strict=True):
            walk = [s[b], *nodes, target[b]]
            for u, v, x in zip(walk[:-1], walk[1:], w, strict=True):
                A[b, u, v] = A[b, v, u] = x
        predecessor[b] = paths[shorter][-1]
        attached = [s[b]]
        for node in order[len(inner) + 2:]:
            parent = attached[rng.randint(len(attached))]
            A[b, node, parent] = A[b, parent, node] = rng.uniform(0.05, 1.0)
            attached.append(node)
    return ResolutionSet(run_batch(algorithm, A, s), target, predecessor)
