"""Ibarz et al.'s training recipe (dm-clrs `examples/run.py`, clrs.md §2.3-§2.4) as iterators.

`make_sampler` / `make_multi_sampler` reproduce run.py's functions of the same names for
generated data: one shared `np.random.RandomState` seeds each size's sampler
(`rng.randint(2**32)`) and later randomises `pos`; `pred_h` becomes an input for the
algorithms in `PRED_AS_INPUT_ALGOS`; sorting outputs become permutation pointers. Given the
same rng state and call order, the batches equal run.py's bit for bit. `train_iterator` is the
recipe's training stream; the test data are `splits.load_split(name, "test")`.
"""

from __future__ import annotations

from typing import Any, Iterator

import numpy as np

from repdyn.tasks.clrs import feedback as fb
from repdyn.tasks.clrs import specs
from repdyn.tasks.clrs.samplers import Sampler
from repdyn.tasks.clrs.splits import CLRS30

TRAIN_LENGTHS = (4, 7, 11, 13, 16)  # clrs.md §2.3
PRED_AS_INPUT_ALGOS = (  # run.py: `pred_h` is constant for these
    "binary_search", "minimum", "find_maximum_subarray", "find_maximum_subarray_kadane",
    "matrix_chain_order", "lcs_length", "optimal_bst", "activity_selector", "task_scheduling",
    "naive_string_matcher", "kmp_matcher", "jarvis_march",
)
_SPARSE = ("articulation_points", "bridges", "mst_kruskal", "bipartite_matching")


def recipe_kwargs(name: str, length_needle: int = -8) -> dict[str, Any]:
    """run.py's sampler kwargs: p in {0.1, ..., 0.9} (halved for sparse tasks), random needles."""
    p = tuple([0.1 + 0.1 * i for i in range(9)])
    if name in _SPARSE:
        p = tuple(np.array(p) / 2)
    kwargs: dict[str, Any] = {"p": p, "length_needle": length_needle}
    if length_needle == 0:
        kwargs.pop("length_needle")
    return kwargs


def recipe_lengths(name: str, lengths: tuple[int, ...] = TRAIN_LENGTHS) -> list[int]:
    """String matchers train at one length, max * 5 // 4 (haystack plus needle)."""
    if name in ("naive_string_matcher", "kmp_matcher"):
        return [max(lengths) * 5 // 4]
    return list(lengths)


def make_sampler(name: str, length: int, rng: np.random.RandomState, split: str,
                 batch_size: int, multiplier: int, randomize_pos: bool = True,
                 enforce_pred_as_input: bool = True, enforce_permutations: bool = True,
                 sampler_kwargs: dict | None = None) -> tuple[Iterator, int, dict]:
    """run.py's `make_sampler` for generated data: (Feedback iterator, num_samples, spec)."""
    num_samples = CLRS30[split]["num_samples"] * multiplier
    sampler = Sampler(name, num_samples, length, seed=rng.randint(2**32),
                      **(sampler_kwargs or {}))
    spec: dict = dict(specs.SPECS[name])
    pred_as_input = enforce_pred_as_input and name in PRED_AS_INPUT_ALGOS
    if pred_as_input:
        spec = fb.pred_as_input_spec(spec)
    spec = fb.permutations_spec(spec, enforce_permutations)

    def batches() -> Iterator:
        while True:
            feedback = fb.to_feedback(sampler.next(batch_size))
            if randomize_pos:
                feedback = fb.randomize_pos(feedback, rng)
            if pred_as_input:
                feedback = fb.pred_as_input(feedback)
            yield fb.permutations(feedback, enforce_permutations)

    return batches(), num_samples, spec


def make_multi_sampler(name: str, sizes: list[int], rng: np.random.RandomState,
                       **kwargs: Any) -> tuple[Iterator, int, dict]:
    """run.py's `make_multi_sampler`: one sampler per size, cycled batch by batch."""
    samplers, total, spec = [], 0, {}
    for length in sizes:
        sampler, num_samples, spec = make_sampler(name, length, rng, **kwargs)
        samplers.append(sampler)
        total += num_samples

    def cycle() -> Iterator:
        while True:
            for s in samplers:
                yield next(s)

    return cycle(), total, spec


def train_iterator(name: str, rng: np.random.RandomState, batch_size: int = 32,
                   lengths: tuple[int, ...] = TRAIN_LENGTHS) -> tuple[Iterator, dict]:
    """The recipe's training stream: on-the-fly batches cycling over the mixed sizes."""
    it, _, spec = make_multi_sampler(name, recipe_lengths(name, lengths), rng, split="train",
                                     batch_size=batch_size, multiplier=-1,
                                     sampler_kwargs=recipe_kwargs(name))
    return it, spec
