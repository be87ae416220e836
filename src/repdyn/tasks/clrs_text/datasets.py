"""CLRS-Text data: the paper's settings as data, and generators equal to dm-clrs's.

Two official generators, both mirrored exactly (same samplers, seeds and sample order):
- `clrs_text_generator` = `huggingface_generators.clrs_generator`: one on-the-fly sampler per
  (algorithm, length), all seeded with `seed`, `truncate_decimals=num_decimals`; each example
  comes from a sampler picked by Python's `random.choice` after `random.seed(seed)`.
  `clrs_text_dataset` is its one-algorithm form.
- `paper_split` = `generate_clrs_text.py`: one sampler per (length, seed) in that order, each
  giving `num_samples` examples in turn, with the paper's lengths, counts and seeds below.

Samples come from `repdyn.tasks.clrs.Sampler` (bit-equal to dm-clrs's `build_sampler`), drawn a
whole batch at a time: a sampler's random stream does not depend on how its draws are batched.
"""

from __future__ import annotations

import dataclasses
import itertools
import random
from collections.abc import Iterator, Mapping, Sequence

from repdyn.bench.errors import UserError
from repdyn.tasks.clrs import CLRS_30_ALGS, Sampler
from repdyn.tasks.clrs_text.format import format_example

# clrs.md §9 / generate_clrs_text.py: training lengths per algorithm, 10,000 samples per
# (algorithm, length), seed 0.
TRAIN_LENGTHS: Mapping[str, tuple[int, ...]] = {
    "articulation_points": (4, 5, 10, 11, 12, 15, 19),
    "activity_selector": (4, 5, 10, 11, 12, 15, 19, 23, 28, 31),
    "bellman_ford": (4, 5, 10, 11, 12, 15, 19, 23, 28, 31),
    "bfs": (4, 5, 10, 11, 12, 15, 19, 23, 28, 31),
    "binary_search": (4, 5, 10, 11, 12, 15, 19, 23, 28, 31),
    "bridges": (4, 5),
    "bubble_sort": (4, 5, 10),
    "dag_shortest_paths": (4, 5, 10, 11, 12, 15, 19),
    "dfs": (4, 5, 10, 11, 12, 15, 19, 23),
    "dijkstra": (4, 5, 10, 11, 12, 15, 19, 23, 28),
    "find_maximum_subarray_kadane": (4, 5, 10, 11, 12, 15, 19, 23, 28, 31),
    "floyd_warshall": (4, 5, 10),
    "graham_scan": (4, 5, 10, 11, 12, 15, 19, 23, 28, 31),
    "heapsort": (4, 5, 10),
    "insertion_sort": (4, 5, 10, 11, 12, 15, 19, 23, 28, 31),
    "jarvis_march": (4, 5, 10, 11, 12),
    "kmp_matcher": (4, 5, 10, 11, 12, 15, 19, 23, 28, 31),
    "lcs_length": (4, 5, 10),
    "matrix_chain_order": (4, 5, 10),
    "minimum": (4, 5, 10, 11, 12, 15, 19, 23, 28, 31),
    "mst_kruskal": (4, 5, 10),
    "mst_prim": (4, 5, 10, 11, 12, 15, 19, 23, 28),
    "naive_string_matcher": (4, 5, 10, 11, 12, 15, 19, 23, 28, 31),
    "optimal_bst": (4, 5, 10),
    "quickselect": (4, 5, 10, 11, 12, 15, 19, 23, 28, 31),
    "quicksort": (4, 5, 10),
    "segments_intersect": (4, 5, 10, 11, 12, 15, 19, 23, 28, 31),
    "strongly_connected_components": (4, 5, 10, 11, 12, 15),
    "task_scheduling": (4, 5, 10, 11, 12, 15, 19, 23, 28, 31),
    "topological_sort": (4, 5, 10, 11, 12, 15, 19, 23),
}
TRAIN_SAMPLES = 10_000
TRAIN_SEEDS = (0,)

# generate_clrs_text.py: validation lengths 4 .. last (inclusive), 125 samples per (length,
# seed), seeds 3, 14, 35, 81, 94.
_VAL_LAST = {
    "activity_selector": 40, "articulation_points": 19, "bellman_ford": 32, "bfs": 41,
    "binary_search": 64, "bridges": 7, "bubble_sort": 11, "dag_shortest_paths": 19, "dfs": 20,
    "dijkstra": 25, "find_maximum_subarray_kadane": 64, "floyd_warshall": 11,
    "graham_scan": 31, "heapsort": 11, "insertion_sort": 25, "jarvis_march": 13,
    "kmp_matcher": 64, "lcs_length": 12, "matrix_chain_order": 12, "minimum": 64,
    "mst_kruskal": 10, "mst_prim": 26, "naive_string_matcher": 64, "optimal_bst": 10,
    "quickselect": 64, "quicksort": 12, "segments_intersect": 64,
    "strongly_connected_components": 16, "task_scheduling": 41, "topological_sort": 21,
}
VAL_LENGTHS: Mapping[str, tuple[int, ...]] = {
    name: tuple(range(4, last + 1)) for name, last in _VAL_LAST.items()}
VAL_SAMPLES = 125
VAL_SEEDS = (3, 14, 35, 81, 94)

# huggingface_generators.py: floats truncated to 3 decimals (generate_clrs_text.py's
# --num_decimals_in_float flag defaults to None, i.e. no truncation; pass None for that).
NUM_DECIMALS = 3
_SPLITS = {"train": (TRAIN_LENGTHS, TRAIN_SAMPLES, TRAIN_SEEDS),
           "val": (VAL_LENGTHS, VAL_SAMPLES, VAL_SEEDS)}
_BLOCK = 256  # examples drawn per round of the interleaving generator


@dataclasses.dataclass(frozen=True)
class ClrsTextExample:
    """One CLRS-Text example: the question, its answer and where it came from."""

    question: str
    answer: str
    algorithm: str
    length: int
    use_hints: bool

    @property
    def text(self) -> str:
        """Question and answer joined (the question ends with a newline)."""
        return self.question + self.answer


def clrs_text_generator(algos_and_lengths: Mapping[str, Sequence[int]],
                        num_samples: int | None = None, use_hints: bool = False, seed: int = 0,
                        num_decimals: int | None = NUM_DECIMALS) -> Iterator[ClrsTextExample]:
    """Examples as `huggingface_generators.clrs_generator` yields them (infinite if None)."""
    if num_samples is not None and num_samples < 0:
        raise UserError(f"num_samples must be >= 0 or None, got {num_samples}")
    sources = [(name, length, _sampler(name, length, seed, num_decimals))
               for name, lengths in algos_and_lengths.items() for length in lengths]
    if not sources:
        raise UserError("algos_and_lengths must name at least one (algorithm, length)")
    choose = random.Random(seed)  # = random.seed(seed); random.choice(...) in dm-clrs
    indices = range(len(sources))
    left = num_samples
    while left is None or left > 0:
        block = _BLOCK if left is None else min(_BLOCK, left)
        picks = [choose.choice(indices) for _ in range(block)]
        drawn = {i: iter(_examples(*sources[i], count=picks.count(i), use_hints=use_hints))
                 for i in set(picks)}
        yield from (next(drawn[i]) for i in picks)
        if left is not None:
            left -= block


def clrs_text_dataset(algorithm: str, lengths: Sequence[int], num_samples: int, seed: int = 0,
                      use_hints: bool = False,
                      num_decimals: int | None = NUM_DECIMALS) -> list[ClrsTextExample]:
    """`num_samples` examples of one algorithm, lengths mixed as `clrs_generator` mixes them."""
    return list(clrs_text_generator({algorithm: lengths}, num_samples, use_hints, seed,
                                    num_decimals))


def paper_split(algorithm: str, split: str, use_hints: bool = False,
                num_samples: int | None = None, seeds: Sequence[int] | None = None,
                lengths: Sequence[int] | None = None,
                num_decimals: int | None = NUM_DECIMALS) -> Iterator[ClrsTextExample]:
    """The CLRS-Text paper's `train` / `val` examples of one algorithm (generate_clrs_text.py).

    For each (length, seed) in that order: a fresh sampler gives `num_samples` examples.
    `num_samples`, `seeds` and `lengths` default to the split's settings.
    """
    if split not in _SPLITS:
        raise UserError(f"unknown CLRS-Text split {split!r}; accepted: train, val")
    default_lengths, default_samples, default_seeds = _SPLITS[split]
    if algorithm not in default_lengths:
        raise UserError(f"unknown CLRS-Text algorithm {algorithm!r}; accepted: "
                        f"{', '.join(CLRS_30_ALGS)}")
    count = default_samples if num_samples is None else num_samples
    for length, seed in itertools.product(lengths or default_lengths[algorithm],
                                          seeds or default_seeds):
        sampler = _sampler(algorithm, length, seed, num_decimals)
        yield from _examples(algorithm, length, sampler, count=count, use_hints=use_hints)


def _sampler(algorithm: str, length: int, seed: int, num_decimals: int | None) -> Sampler:
    """dm-clrs's CLRS-Text sampler: on the fly, unpadded, default sampler kwargs."""
    if algorithm not in CLRS_30_ALGS:
        raise UserError(f"unknown CLRS-Text algorithm {algorithm!r}; accepted: "
                        f"{', '.join(CLRS_30_ALGS)}")
    return Sampler(algorithm, -1, length, seed=seed, track_max_steps=False,
                   truncate_decimals=num_decimals)


def _examples(algorithm: str, length: int, sampler: Sampler, count: int,
              use_hints: bool) -> Iterator[ClrsTextExample]:
    """The sampler's next `count` instances, formatted (drawn in chunks of `_BLOCK`)."""
    while count > 0:
        batch = sampler.next(min(count, _BLOCK))
        for b in range(batch.size):
            question, answer = format_example(algorithm, batch.trajectory(b), use_hints)
            yield ClrsTextExample(question, answer, algorithm, length, use_hints)
        count -= batch.size
