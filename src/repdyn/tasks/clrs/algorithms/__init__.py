"""The algorithms, batched: name -> function(*batched CLRS arguments) -> Batch.

`execute(name, *args)` runs one instance with CLRS's own argument order (clrs.md §3),
e.g. `execute("bfs", A, s)`, and returns its `Trajectory`.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from repdyn.bench.errors import UserError
from repdyn.tasks.clrs.algorithms import (
    depth_first,
    divide_and_conquer,
    dynamic_programming,
    geometry,
    graphs,
    greedy,
    searching,
    sorting,
    strings,
)
from repdyn.tasks.clrs.probes import Batch, Trajectory

ALGORITHMS: dict[str, Callable[..., Batch]] = {
    "bfs": graphs.bfs,
    "bellman_ford": graphs.bellman_ford,
    "dijkstra": graphs.dijkstra,
    "mst_prim": graphs.mst_prim,
    "floyd_warshall": graphs.floyd_warshall,
    "mst_kruskal": graphs.mst_kruskal,
    "bipartite_matching": graphs.bipartite_matching,
    "dfs": depth_first.dfs,
    "topological_sort": depth_first.topological_sort,
    "articulation_points": depth_first.articulation_points,
    "bridges": depth_first.bridges,
    "strongly_connected_components": depth_first.strongly_connected_components,
    "dag_shortest_paths": depth_first.dag_shortest_paths,
    "insertion_sort": sorting.insertion_sort,
    "bubble_sort": sorting.bubble_sort,
    "heapsort": sorting.heapsort,
    "quicksort": sorting.quicksort,
    "minimum": searching.minimum,
    "binary_search": searching.binary_search,
    "quickselect": searching.quickselect,
    "find_maximum_subarray_kadane": divide_and_conquer.find_maximum_subarray_kadane,
    "find_maximum_subarray": divide_and_conquer.find_maximum_subarray,
    "matrix_chain_order": dynamic_programming.matrix_chain_order,
    "lcs_length": dynamic_programming.lcs_length,
    "optimal_bst": dynamic_programming.optimal_bst,
    "activity_selector": greedy.activity_selector,
    "task_scheduling": greedy.task_scheduling,
    "segments_intersect": geometry.segments_intersect,
    "graham_scan": geometry.graham_scan,
    "jarvis_march": geometry.jarvis_march,
    "naive_string_matcher": strings.naive_string_matcher,
    "kmp_matcher": strings.kmp_matcher,
}


def run_batch(name: str, *args: np.ndarray) -> Batch:
    """Run `name` on a batch: every argument carries a leading batch axis."""
    if name not in ALGORITHMS:
        raise UserError(f"unknown CLRS algorithm {name!r}; accepted: "
                        f"{', '.join(sorted(ALGORITHMS))}")
    return ALGORITHMS[name](*args)


def execute(name: str, *args) -> Trajectory:
    """Run one instance of `name` on CLRS's arguments; return its probes as a `Trajectory`."""
    return run_batch(name, *(np.asarray(a)[None] for a in args)).trajectory(0)
