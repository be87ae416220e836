"""Samplers consume the random stream exactly as dm-clrs's `build_sampler` does.

Reference: `sampler/<tag>/...` in each algorithm's fixture: dm-clrs's dataset (`next()`) and
the `next(4)` batch it draws afterwards (with replacement, from the same RandomState), for the
default kwargs and for varied ones (p tuple, random needle length, truncate_decimals).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from repdyn.bench.errors import UserError
from repdyn.tasks.clrs import ALGORITHMS, Sampler, sample, to_feedback
from repdyn.tasks.clrs.samplers import bernoulli

from .conftest import FIXTURES, assert_same, group, read_npz

NAMES = sorted(p.stem for p in FIXTURES.glob("*.npz") if p.stem in ALGORITHMS)
CASES = {  # make_fixtures.SAMPLER_CASES
    "default": (8, 6, 11, {}),
    "varied": (12, 5, 3, {"p": (0.1, 0.3, 0.6, 0.9), "length_needle": -3,
                          "truncate_decimals": 2}),
}


def _assert_feedback(feedback, ref: dict, what: str) -> None:
    assert_same(feedback.features.lengths, ref["lengths"], f"{what} lengths")
    for stage, points in (("input", feedback.features.inputs), ("hint", feedback.features.hints),
                          ("output", feedback.outputs)):
        expected = group(ref, stage)
        assert [dp.name for dp in points] == list(expected), f"{what} {stage} order"
        for dp in points:
            assert_same(dp.data, expected[dp.name], f"{what} {stage} {dp.name}")


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("tag", sorted(CASES))
def test_sampler_matches_build_sampler(name, tag):
    length, num, seed, kwargs = CASES[tag]
    data = read_npz(name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # kwargs a sampler does not take are dropped
        sampler = Sampler(name, num, length, seed=seed, **kwargs)
    _assert_feedback(to_feedback(sampler.next()), group(data, f"sampler/{tag}/all"), name)
    _assert_feedback(to_feedback(sampler.next(4)), group(data, f"sampler/{tag}/next4"),
                     f"{name} next(4)")


def test_same_seed_same_data_other_seed_other_data():
    a, b = sample("dijkstra", 5, 10, seed=7), sample("dijkstra", 5, 10, seed=7)
    c = sample("dijkstra", 5, 10, seed=8)
    for k in a.inputs:
        assert_same(a.inputs[k], b.inputs[k], k)
    for k in a.hints:
        assert_same(a.hints[k], b.hints[k], k)
    assert not np.array_equal(a.inputs["A"], c.inputs["A"])


def test_on_the_fly_pads_to_the_warm_up_length():
    """num_samples < 0: 1000 warm-up samples fix the padding, as dm-clrs's track_max_steps."""
    sampler = Sampler("bfs", -1, 6, seed=0)
    batch = sampler.next(3)
    assert next(iter(batch.hints.values())).shape[0] == sampler.max_steps
    assert sampler.max_steps >= batch.lengths.max()


def test_dropped_kwargs_warn_and_bad_requests_raise():
    with pytest.warns(UserWarning, match="ignoring sampler kwargs"):
        Sampler("insertion_sort", 2, 5, seed=0, p=(0.5,))
    with pytest.raises(UserError, match="unknown CLRS algorithm"):
        sample("nope", 2, 5)
    with pytest.raises(UserError, match="batch_size 9 > dataset size 2"):
        Sampler("bfs", 2, 5, seed=0).next(9)
    with pytest.raises(UserError, match="num_samples must be positive"):
        sample("bfs", 0, 5)


@pytest.mark.parametrize("p", [0.0, 0.05, 0.2, 0.3, 0.5, 0.5000001, 0.7, 0.95, 1.0])
def test_fast_bernoulli_equals_legacy_binomial(p):
    """The fast path draws exactly what `RandomState.binomial(1, p, size)` draws."""
    for seed in range(20):
        ours, ref = np.random.RandomState(seed), np.random.RandomState(seed)
        assert_same(bernoulli(ours, p, (9, 7)), ref.binomial(1, p, size=(9, 7)), f"p={p}")
        assert ours.randint(2**31) == ref.randint(2**31)  # the stream continues identically


def test_whole_batch_draws_equal_instance_draws():
    """Graph samplers draw a whole batch from raw MT19937 words; the per-instance draws (the
    slow path, used when no batch generator exists) give the same data and RNG state."""
    from repdyn.tasks.clrs import samplers as smp

    for name, kwargs in (("dag_shortest_paths", {"p": (0.2, 0.5, 0.7)}),
                         ("bfs", {"p": (0.1, 0.3, 0.5, 0.7, 0.9)}), ("bellman_ford", {})):
        fast = Sampler(name, 7, 11, seed=5, **kwargs)
        slow_gen = smp.GENERATORS[name]
        rng = np.random.RandomState(5)
        draws = smp._Draws(rng, None)
        per_instance = [slow_gen(draws, 11, **kwargs) for _ in range(7)]
        assert_same(fast.next().inputs["A"], np.stack([a[0] for a in per_instance]), name)
        assert fast._rng.randint(2**31) == rng.randint(2**31), name
