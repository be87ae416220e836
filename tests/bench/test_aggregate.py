"""Across-seed statistics: bootstrap mean intervals and Wilson intervals against hand values."""

import pytest

from repdyn.bench.aggregate import bootstrap_mean, wilson_interval


def test_bootstrap_mean_contains_the_mean_and_is_deterministic():
    values = [0.9, 0.8, 0.95, 0.85, 0.7]
    a, b = bootstrap_mean(values), bootstrap_mean(values)
    assert a == b
    assert a.mean == pytest.approx(0.84)
    assert min(values) <= a.low < a.mean < a.high <= max(values)
    assert bootstrap_mean([1.0, float("nan")]).n == 1
    assert bootstrap_mean([]).n == 0


def test_constant_values_give_a_point_interval():
    interval = bootstrap_mean([2.0, 2.0, 2.0])
    assert (interval.low, interval.mean, interval.high) == (2.0, 2.0, 2.0)


def test_wilson_interval_hand_values():
    # n = 10, 5 successes: centre 0.5, half-width z*sqrt(0.025 + z^2/400)/(1 + z^2/10).
    low, high = wilson_interval(5, 10)
    assert (low, high) == pytest.approx((0.2366, 0.7634), abs=1e-4)
    low, high = wilson_interval(3, 3)
    assert high == 1.0 and low == pytest.approx(0.4385, abs=1e-4)
