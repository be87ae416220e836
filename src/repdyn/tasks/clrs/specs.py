"""CLRS-30 specs as data: for every algorithm, each probe's (stage, location, type).

These tables equal dm-clrs 2.0.3's `clrs/_src/specs.py` (clrs.md §1.1, §2.1, §3); everything
downstream (samplers, feedback layout, evaluation, models) dispatches on them only.
"""

from __future__ import annotations

import types
from typing import Mapping


class Stage:
    """When a probe is seen: once before (input), once after (output), or every step (hint)."""

    INPUT = "input"
    OUTPUT = "output"
    HINT = "hint"


class Location:
    """What a probe is attached to: nodes [.., n], edges [.., n, n] or the graph [..]."""

    NODE = "node"
    EDGE = "edge"
    GRAPH = "graph"


class Type:
    """How a probe's values are read (clrs.md §1.1)."""

    SCALAR = "scalar"
    CATEGORICAL = "categorical"
    MASK = "mask"
    MASK_ONE = "mask_one"
    POINTER = "pointer"
    SHOULD_BE_PERMUTATION = "should_be_permutation"
    PERMUTATION_POINTER = "permutation_pointer"
    SOFT_POINTER = "soft_pointer"


class OutputClass:
    """Values of mask-like probes; MASKED entries are ignored by losses and evaluation."""

    POSITIVE = 1
    NEGATIVE = 0
    MASKED = -1


Spec = Mapping[str, tuple[str, str, str]]

IN, OUT, HINT = Stage.INPUT, Stage.OUTPUT, Stage.HINT
NODE, EDGE, GRAPH = Location.NODE, Location.EDGE, Location.GRAPH
SCALAR, CATEGORICAL, MASK = Type.SCALAR, Type.CATEGORICAL, Type.MASK
MASK_ONE, POINTER, SHOULD_BE_PERMUTATION = Type.MASK_ONE, Type.POINTER, Type.SHOULD_BE_PERMUTATION

# clrs.md §3: the 30 benchmark algorithms (dm-clrs's order).
CLRS_30_ALGS = (
    "articulation_points", "activity_selector", "bellman_ford", "bfs", "binary_search",
    "bridges", "bubble_sort", "dag_shortest_paths", "dfs", "dijkstra",
    "find_maximum_subarray_kadane", "floyd_warshall", "graham_scan", "heapsort",
    "insertion_sort", "jarvis_march", "kmp_matcher", "lcs_length", "matrix_chain_order",
    "minimum", "mst_kruskal", "mst_prim", "naive_string_matcher", "optimal_bst",
    "quickselect", "quicksort", "segments_intersect", "strongly_connected_components",
    "task_scheduling", "topological_sort",
)

# clrs.md §2.1: val/test splits hold 32 x multiplier samples.
NUM_SAMPLES_MULTIPLIER = types.MappingProxyType({
    **{name: 1 for name in CLRS_30_ALGS},
    "find_maximum_subarray_kadane": 32,
    **{name: 64 for name in ("quickselect", "minimum", "binary_search",
                             "naive_string_matcher", "kmp_matcher", "segments_intersect")},
})

# clrs.md §8: the families over which Ibarz et al. average (Table 1).
FAMILIES = types.MappingProxyType({
    "divide_and_conquer": ("find_maximum_subarray_kadane",),
    "dynamic_programming": ("matrix_chain_order", "lcs_length", "optimal_bst"),
    "geometry": ("segments_intersect", "graham_scan", "jarvis_march"),
    "graphs": ("dfs", "bfs", "topological_sort", "articulation_points", "bridges",
               "strongly_connected_components", "mst_kruskal", "mst_prim", "bellman_ford",
               "dijkstra", "dag_shortest_paths", "floyd_warshall"),
    "greedy": ("activity_selector", "task_scheduling"),
    "searching": ("minimum", "binary_search", "quickselect"),
    "sorting": ("insertion_sort", "bubble_sort", "heapsort", "quicksort"),
    "strings": ("naive_string_matcher", "kmp_matcher"),
})

_SPECS = {
    "insertion_sort": {
        "pos": (IN, NODE, SCALAR),
        "key": (IN, NODE, SCALAR),
        "pred": (OUT, NODE, SHOULD_BE_PERMUTATION),
        "pred_h": (HINT, NODE, POINTER),
        "i": (HINT, NODE, MASK_ONE),
        "j": (HINT, NODE, MASK_ONE),
    },
    "bubble_sort": {
        "pos": (IN, NODE, SCALAR),
        "key": (IN, NODE, SCALAR),
        "pred": (OUT, NODE, SHOULD_BE_PERMUTATION),
        "pred_h": (HINT, NODE, POINTER),
        "i": (HINT, NODE, MASK_ONE),
        "j": (HINT, NODE, MASK_ONE),
    },
    "heapsort": {
        "pos": (IN, NODE, SCALAR),
        "key": (IN, NODE, SCALAR),
        "pred": (OUT, NODE, SHOULD_BE_PERMUTATION),
        "pred_h": (HINT, NODE, POINTER),
        "parent": (HINT, NODE, POINTER),
        "i": (HINT, NODE, MASK_ONE),
        "j": (HINT, NODE, MASK_ONE),
        "largest": (HINT, NODE, MASK_ONE),
        "heap_size": (HINT, NODE, MASK_ONE),
        "phase": (HINT, GRAPH, CATEGORICAL),
    },
    "quicksort": {
        "pos": (IN, NODE, SCALAR),
        "key": (IN, NODE, SCALAR),
        "pred": (OUT, NODE, SHOULD_BE_PERMUTATION),
        "pred_h": (HINT, NODE, POINTER),
        "p": (HINT, NODE, MASK_ONE),
        "r": (HINT, NODE, MASK_ONE),
        "i": (HINT, NODE, MASK_ONE),
        "j": (HINT, NODE, MASK_ONE),
    },
    "quickselect": {
        "pos": (IN, NODE, SCALAR),
        "key": (IN, NODE, SCALAR),
        "median": (OUT, NODE, MASK_ONE),
        "pred_h": (HINT, NODE, POINTER),
        "p": (HINT, NODE, MASK_ONE),
        "r": (HINT, NODE, MASK_ONE),
        "i": (HINT, NODE, MASK_ONE),
        "j": (HINT, NODE, MASK_ONE),
        "i_rank": (HINT, GRAPH, SCALAR),
        "target": (HINT, GRAPH, SCALAR),
        "pivot": (HINT, NODE, MASK_ONE),
    },
    "minimum": {
        "pos": (IN, NODE, SCALAR),
        "key": (IN, NODE, SCALAR),
        "min": (OUT, NODE, MASK_ONE),
        "pred_h": (HINT, NODE, POINTER),
        "min_h": (HINT, NODE, MASK_ONE),
        "i": (HINT, NODE, MASK_ONE),
    },
    "binary_search": {
        "pos": (IN, NODE, SCALAR),
        "key": (IN, NODE, SCALAR),
        "target": (IN, GRAPH, SCALAR),
        "return": (OUT, NODE, MASK_ONE),
        "pred_h": (HINT, NODE, POINTER),
        "low": (HINT, NODE, MASK_ONE),
        "high": (HINT, NODE, MASK_ONE),
        "mid": (HINT, NODE, MASK_ONE),
    },
    "find_maximum_subarray": {
        "pos": (IN, NODE, SCALAR),
        "key": (IN, NODE, SCALAR),
        "start": (OUT, NODE, MASK_ONE),
        "end": (OUT, NODE, MASK_ONE),
        "pred_h": (HINT, NODE, POINTER),
        "low": (HINT, NODE, MASK_ONE),
        "high": (HINT, NODE, MASK_ONE),
        "mid": (HINT, NODE, MASK_ONE),
        "left_low": (HINT, NODE, MASK_ONE),
        "left_high": (HINT, NODE, MASK_ONE),
        "left_sum": (HINT, GRAPH, SCALAR),
        "right_low": (HINT, NODE, MASK_ONE),
        "right_high": (HINT, NODE, MASK_ONE),
        "right_sum": (HINT, GRAPH, SCALAR),
        "cross_low": (HINT, NODE, MASK_ONE),
        "cross_high": (HINT, NODE, MASK_ONE),
        "cross_sum": (HINT, GRAPH, SCALAR),
        "ret_low": (HINT, NODE, MASK_ONE),
        "ret_high": (HINT, NODE, MASK_ONE),
        "ret_sum": (HINT, GRAPH, SCALAR),
        "i": (HINT, NODE, MASK_ONE),
        "j": (HINT, NODE, MASK_ONE),
        "sum": (HINT, GRAPH, SCALAR),
        "left_x_sum": (HINT, GRAPH, SCALAR),
        "right_x_sum": (HINT, GRAPH, SCALAR),
        "phase": (HINT, GRAPH, CATEGORICAL),
    },
    "find_maximum_subarray_kadane": {
        "pos": (IN, NODE, SCALAR),
        "key": (IN, NODE, SCALAR),
        "start": (OUT, NODE, MASK_ONE),
        "end": (OUT, NODE, MASK_ONE),
        "pred_h": (HINT, NODE, POINTER),
        "best_low": (HINT, NODE, MASK_ONE),
        "best_high": (HINT, NODE, MASK_ONE),
        "best_sum": (HINT, GRAPH, SCALAR),
        "i": (HINT, NODE, MASK_ONE),
        "j": (HINT, NODE, MASK_ONE),
        "sum": (HINT, GRAPH, SCALAR),
    },
    "matrix_chain_order": {
        "pos": (IN, NODE, SCALAR),
        "p": (IN, NODE, SCALAR),
        "s": (OUT, EDGE, POINTER),
        "pred_h": (HINT, NODE, POINTER),
        "m": (HINT, EDGE, SCALAR),
        "s_h": (HINT, EDGE, POINTER),
        "msk": (HINT, EDGE, MASK),
    },
    "lcs_length": {
        "string": (IN, NODE, MASK),
        "pos": (IN, NODE, SCALAR),
        "key": (IN, NODE, CATEGORICAL),
        "b": (OUT, EDGE, CATEGORICAL),
        "pred_h": (HINT, NODE, POINTER),
        "b_h": (HINT, EDGE, CATEGORICAL),
        "c": (HINT, EDGE, SCALAR),
    },
    "optimal_bst": {
        "pos": (IN, NODE, SCALAR),
        "p": (IN, NODE, SCALAR),
        "q": (IN, NODE, SCALAR),
        "root": (OUT, EDGE, POINTER),
        "pred_h": (HINT, NODE, POINTER),
        "root_h": (HINT, EDGE, POINTER),
        "e": (HINT, EDGE, SCALAR),
        "w": (HINT, EDGE, SCALAR),
        "msk": (HINT, EDGE, MASK),
    },
    "activity_selector": {
        "pos": (IN, NODE, SCALAR),
        "s": (IN, NODE, SCALAR),
        "f": (IN, NODE, SCALAR),
        "selected": (OUT, NODE, MASK),
        "pred_h": (HINT, NODE, POINTER),
        "selected_h": (HINT, NODE, MASK),
        "m": (HINT, NODE, MASK_ONE),
        "k": (HINT, NODE, MASK_ONE),
    },
    "task_scheduling": {
        "pos": (IN, NODE, SCALAR),
        "d": (IN, NODE, SCALAR),
        "w": (IN, NODE, SCALAR),
        "selected": (OUT, NODE, MASK),
        "pred_h": (HINT, NODE, POINTER),
        "selected_h": (HINT, NODE, MASK),
        "i": (HINT, NODE, MASK_ONE),
        "t": (HINT, GRAPH, SCALAR),
    },
    "dfs": {
        "pos": (IN, NODE, SCALAR),
        "A": (IN, EDGE, SCALAR),
        "adj": (IN, EDGE, MASK),
        "pi": (OUT, NODE, POINTER),
        "pi_h": (HINT, NODE, POINTER),
        "color": (HINT, NODE, CATEGORICAL),
        "d": (HINT, NODE, SCALAR),
        "f": (HINT, NODE, SCALAR),
        "s_prev": (HINT, NODE, POINTER),
        "s": (HINT, NODE, MASK_ONE),
        "u": (HINT, NODE, MASK_ONE),
        "v": (HINT, NODE, MASK_ONE),
        "s_last": (HINT, NODE, MASK_ONE),
        "time": (HINT, GRAPH, SCALAR),
    },
    "topological_sort": {
        "pos": (IN, NODE, SCALAR),
        "A": (IN, EDGE, SCALAR),
        "adj": (IN, EDGE, MASK),
        "topo": (OUT, NODE, POINTER),
        "topo_head": (OUT, NODE, MASK_ONE),
        "topo_h": (HINT, NODE, POINTER),
        "topo_head_h": (HINT, NODE, MASK_ONE),
        "color": (HINT, NODE, CATEGORICAL),
        "s_prev": (HINT, NODE, POINTER),
        "s": (HINT, NODE, MASK_ONE),
        "u": (HINT, NODE, MASK_ONE),
        "v": (HINT, NODE, MASK_ONE),
        "s_last": (HINT, NODE, MASK_ONE),
    },
    "strongly_connected_components": {
        "pos": (IN, NODE, SCALAR),
        "A": (IN, EDGE, SCALAR),
        "adj": (IN, EDGE, MASK),
        "scc_id": (OUT, NODE, POINTER),
        "scc_id_h": (HINT, NODE, POINTER),
        "A_t": (HINT, EDGE, MASK),
        "color": (HINT, NODE, CATEGORICAL),
        "d": (HINT, NODE, SCALAR),
        "f": (HINT, NODE, SCALAR),
        "s_prev": (HINT, NODE, POINTER),
        "s": (HINT, NODE, MASK_ONE),
        "u": (HINT, NODE, MASK_ONE),
        "v": (HINT, NODE, MASK_ONE),
        "s_last": (HINT, NODE, MASK_ONE),
        "time": (HINT, GRAPH, SCALAR),
        "phase": (HINT, GRAPH, MASK),
    },
    "articulation_points": {
        "pos": (IN, NODE, SCALAR),
        "A": (IN, EDGE, SCALAR),
        "adj": (IN, EDGE, MASK),
        "is_cut": (OUT, NODE, MASK),
        "is_cut_h": (HINT, NODE, MASK),
        "pi_h": (HINT, NODE, POINTER),
        "color": (HINT, NODE, CATEGORICAL),
        "d": (HINT, NODE, SCALAR),
        "f": (HINT, NODE, SCALAR),
        "low": (HINT, NODE, SCALAR),
        "child_cnt": (HINT, NODE, SCALAR),
        "s_prev": (HINT, NODE, POINTER),
        "s": (HINT, NODE, MASK_ONE),
        "u": (HINT, NODE, MASK_ONE),
        "v": (HINT, NODE, MASK_ONE),
        "s_last": (HINT, NODE, MASK_ONE),
        "time": (HINT, GRAPH, SCALAR),
    },
    "bridges": {
        "pos": (IN, NODE, SCALAR),
        "A": (IN, EDGE, SCALAR),
        "adj": (IN, EDGE, MASK),
        "is_bridge": (OUT, EDGE, MASK),
        "is_bridge_h": (HINT, EDGE, MASK),
        "pi_h": (HINT, NODE, POINTER),
        "color": (HINT, NODE, CATEGORICAL),
        "d": (HINT, NODE, SCALAR),
        "f": (HINT, NODE, SCALAR),
        "low": (HINT, NODE, SCALAR),
        "s_prev": (HINT, NODE, POINTER),
        "s": (HINT, NODE, MASK_ONE),
        "u": (HINT, NODE, MASK_ONE),
        "v": (HINT, NODE, MASK_ONE),
        "s_last": (HINT, NODE, MASK_ONE),
        "time": (HINT, GRAPH, SCALAR),
    },
    "bfs": {
        "pos": (IN, NODE, SCALAR),
        "s": (IN, NODE, MASK_ONE),
        "A": (IN, EDGE, SCALAR),
        "adj": (IN, EDGE, MASK),
        "pi": (OUT, NODE, POINTER),
        "reach_h": (HINT, NODE, MASK),
        "pi_h": (HINT, NODE, POINTER),
    },
    "mst_kruskal": {
        "pos": (IN, NODE, SCALAR),
        "A": (IN, EDGE, SCALAR),
        "adj": (IN, EDGE, MASK),
        "in_mst": (OUT, EDGE, MASK),
        "in_mst_h": (HINT, EDGE, MASK),
        "pi": (HINT, NODE, POINTER),
        "u": (HINT, NODE, MASK_ONE),
        "v": (HINT, NODE, MASK_ONE),
        "root_u": (HINT, NODE, MASK_ONE),
        "root_v": (HINT, NODE, MASK_ONE),
        "mask_u": (HINT, NODE, MASK),
        "mask_v": (HINT, NODE, MASK),
        "phase": (HINT, GRAPH, CATEGORICAL),
    },
    "mst_prim": {
        "pos": (IN, NODE, SCALAR),
        "s": (IN, NODE, MASK_ONE),
        "A": (IN, EDGE, SCALAR),
        "adj": (IN, EDGE, MASK),
        "pi": (OUT, NODE, POINTER),
        "pi_h": (HINT, NODE, POINTER),
        "key": (HINT, NODE, SCALAR),
        "mark": (HINT, NODE, MASK),
        "in_queue": (HINT, NODE, MASK),
        "u": (HINT, NODE, MASK_ONE),
    },
    "bellman_ford": {
        "pos": (IN, NODE, SCALAR),
        "s": (IN, NODE, MASK_ONE),
        "A": (IN, EDGE, SCALAR),
        "adj": (IN, EDGE, MASK),
        "pi": (OUT, NODE, POINTER),
        "pi_h": (HINT, NODE, POINTER),
        "d": (HINT, NODE, SCALAR),
        "msk": (HINT, NODE, MASK),
    },
    "dag_shortest_paths": {
        "pos": (IN, NODE, SCALAR),
        "s": (IN, NODE, MASK_ONE),
        "A": (IN, EDGE, SCALAR),
        "adj": (IN, EDGE, MASK),
        "pi": (OUT, NODE, POINTER),
        "pi_h": (HINT, NODE, POINTER),
        "d": (HINT, NODE, SCALAR),
        "mark": (HINT, NODE, MASK),
        "topo_h": (HINT, NODE, POINTER),
        "topo_head_h": (HINT, NODE, MASK_ONE),
        "color": (HINT, NODE, CATEGORICAL),
        "s_prev": (HINT, NODE, POINTER),
        "u": (HINT, NODE, MASK_ONE),
        "v": (HINT, NODE, MASK_ONE),
        "s_last": (HINT, NODE, MASK_ONE),
        "phase": (HINT, GRAPH, MASK),
    },
    "dijkstra": {
        "pos": (IN, NODE, SCALAR),
        "s": (IN, NODE, MASK_ONE),
        "A": (IN, EDGE, SCALAR),
        "adj": (IN, EDGE, MASK),
        "pi": (OUT, NODE, POINTER),
        "pi_h": (HINT, NODE, POINTER),
        "d": (HINT, NODE, SCALAR),
        "mark": (HINT, NODE, MASK),
        "in_queue": (HINT, NODE, MASK),
        "u": (HINT, NODE, MASK_ONE),
    },
    "floyd_warshall": {
        "pos": (IN, NODE, SCALAR),
        "A": (IN, EDGE, SCALAR),
        "adj": (IN, EDGE, MASK),
        "Pi": (OUT, EDGE, POINTER),
        "Pi_h": (HINT, EDGE, POINTER),
        "D": (HINT, EDGE, SCALAR),
        "msk": (HINT, EDGE, MASK),
        "k": (HINT, NODE, MASK_ONE),
    },
    "bipartite_matching": {
        "pos": (IN, NODE, SCALAR),
        "A": (IN, EDGE, SCALAR),
        "adj": (IN, EDGE, MASK),
        "s": (IN, NODE, MASK_ONE),
        "t": (IN, NODE, MASK_ONE),
        "in_matching": (OUT, EDGE, MASK),
        "in_matching_h": (HINT, EDGE, MASK),
        "A_h": (HINT, EDGE, SCALAR),
        "adj_h": (HINT, EDGE, MASK),
        "d": (HINT, NODE, SCALAR),
        "msk": (HINT, NODE, MASK),
        "pi": (HINT, NODE, POINTER),
        "u": (HINT, NODE, MASK_ONE),
        "phase": (HINT, GRAPH, MASK),
    },
    "naive_string_matcher": {
        "string": (IN, NODE, MASK),
        "pos": (IN, NODE, SCALAR),
        "key": (IN, NODE, CATEGORICAL),
        "match": (OUT, NODE, MASK_ONE),
        "pred_h": (HINT, NODE, POINTER),
        "s": (HINT, NODE, MASK_ONE),
        "i": (HINT, NODE, MASK_ONE),
        "j": (HINT, NODE, MASK_ONE),
    },
    "kmp_matcher": {
        "string": (IN, NODE, MASK),
        "pos": (IN, NODE, SCALAR),
        "key": (IN, NODE, CATEGORICAL),
        "match": (OUT, NODE, MASK_ONE),
        "pred_h": (HINT, NODE, POINTER),
        "pi": (HINT, NODE, POINTER),
        "is_reset": (HINT, NODE, MASK),
        "k": (HINT, NODE, MASK_ONE),
        "k_reset": (HINT, GRAPH, MASK),
        "q": (HINT, NODE, MASK_ONE),
        "q_reset": (HINT, GRAPH, MASK),
        "s": (HINT, NODE, MASK_ONE),
        "i": (HINT, NODE, MASK_ONE),
        "phase": (HINT, GRAPH, MASK),
    },
    "segments_intersect": {
        "pos": (IN, NODE, SCALAR),
        "x": (IN, NODE, SCALAR),
        "y": (IN, NODE, SCALAR),
        "intersect": (OUT, GRAPH, MASK),
        "i": (HINT, NODE, MASK_ONE),
        "j": (HINT, NODE, MASK_ONE),
        "k": (HINT, NODE, MASK_ONE),
        "dir": (HINT, NODE, SCALAR),
        "on_seg": (HINT, NODE, MASK),
    },
    "graham_scan": {
        "pos": (IN, NODE, SCALAR),
        "x": (IN, NODE, SCALAR),
        "y": (IN, NODE, SCALAR),
        "in_hull": (OUT, NODE, MASK),
        "best": (HINT, NODE, MASK_ONE),
        "atans": (HINT, NODE, SCALAR),
        "in_hull_h": (HINT, NODE, MASK),
        "stack_prev": (HINT, NODE, POINTER),
        "last_stack": (HINT, NODE, MASK_ONE),
        "i": (HINT, NODE, MASK_ONE),
        "phase": (HINT, GRAPH, CATEGORICAL),
    },
    "jarvis_march": {
        "pos": (IN, NODE, SCALAR),
        "x": (IN, NODE, SCALAR),
        "y": (IN, NODE, SCALAR),
        "in_hull": (OUT, NODE, MASK),
        "pred_h": (HINT, NODE, POINTER),
        "in_hull_h": (HINT, NODE, MASK),
        "best": (HINT, NODE, MASK_ONE),
        "last_point": (HINT, NODE, MASK_ONE),
        "endpoint": (HINT, NODE, MASK_ONE),
        "i": (HINT, NODE, MASK_ONE),
        "phase": (HINT, GRAPH, CATEGORICAL),
    },
}

SPECS: Mapping[str, Spec] = types.MappingProxyType(
    {name: types.MappingProxyType(spec) for name, spec in _SPECS.items()})

# Probes that dm-clrs stores as integer arrays (everything else is float64): pointers built
# from `np.arange`, and graph flags pushed as Python ints. Inputs keep the caller's dtype.
INTEGER_PROBES: Mapping[str, frozenset[str]] = types.MappingProxyType({
    name: frozenset(names) for name, names in {
        "insertion_sort": ("pred", "pred_h"),
        "bubble_sort": ("pred", "pred_h"),
        "heapsort": ("pred", "pred_h", "parent"),
        "quicksort": ("pred", "pred_h"),
        "quickselect": ("pred_h",),
        "minimum": ("pred_h",),
        "binary_search": ("pred_h",),
        "find_maximum_subarray": ("pred_h",),
        "find_maximum_subarray_kadane": ("pred_h",),
        "matrix_chain_order": ("pred_h",),
        "lcs_length": ("pred_h",),
        "optimal_bst": ("pred_h",),
        "activity_selector": ("pred_h",),
        "task_scheduling": ("pred_h", "t"),
        "dfs": ("pi", "pi_h", "s_prev"),
        "topological_sort": ("topo", "topo_h", "s_prev"),
        "strongly_connected_components": ("scc_id", "scc_id_h", "s_prev", "phase"),
        "articulation_points": ("pi_h", "s_prev"),
        "bridges": ("pi_h", "s_prev"),
        "bfs": ("pi", "pi_h"),
        "mst_kruskal": ("pi",),
        "mst_prim": ("pi", "pi_h"),
        "bellman_ford": ("pi", "pi_h"),
        "dag_shortest_paths": ("pi", "pi_h", "topo_h", "s_prev", "phase"),
        "dijkstra": ("pi", "pi_h"),
        "floyd_warshall": (),
        "bipartite_matching": ("pi", "phase"),
        "naive_string_matcher": ("pred_h",),
        "kmp_matcher": ("pred_h", "pi", "k_reset", "q_reset", "phase"),
        "segments_intersect": ("intersect",),
        "graham_scan": ("stack_prev",),
        "jarvis_march": ("pred_h",),
    }.items()
})

