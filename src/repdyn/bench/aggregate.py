"""Across-seed statistics for sweeps: mean with a bootstrap confidence interval, claim success rates.

Runs that share a study, preset and config (everything but the seed) form one *setting*; for each
setting `repdyn compare` reports every series' final value as mean [low, high] over seeds and each
claim as the fraction of seeds on which it held, with its bootstrap interval and, because the
bootstrap collapses to a point at 0/n and n/n, the Wilson score interval too.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from repdyn.bench.store import RunRecord, RunStore

BOOTSTRAP_SAMPLES = 2000
CONFIDENCE = 0.95


@dataclass(frozen=True)
class Interval:
    """A mean and its bootstrap percentile interval over n values."""

    mean: float
    low: float
    high: float
    n: int

    def __str__(self) -> str:
        if self.n < 2:
            return f"{self.mean:.4g} (n=1)"
        return f"{self.mean:.4g} [{self.low:.4g}, {self.high:.4g}] (n={self.n})"


def bootstrap_mean(values: Sequence[float], seed: int = 0) -> Interval:
    """Mean of `values` with a percentile bootstrap interval (NaNs dropped; deterministic)."""
    x = np.asarray([v for v in values if v == v], dtype=float)
    if x.size == 0:
        return Interval(float("nan"), float("nan"), float("nan"), 0)
    if x.size == 1:
        return Interval(float(x[0]), float(x[0]), float(x[0]), 1)
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, x.size, size=(BOOTSTRAP_SAMPLES, x.size))].mean(axis=1)
    alpha = (1 - CONFIDENCE) / 2
    low, high = np.quantile(means, alpha), np.quantile(means, 1 - alpha)
    return Interval(float(x.mean()), float(low), float(high), int(x.size))


def wilson_interval(successes: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    """Wilson score interval of a proportion; unlike the bootstrap it stays wide at 0/n and n/n."""
    if n == 0:
        return float("nan"), float("nan")
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * ((p * (1 - p) / n + z * z / (4 * n * n)) ** 0.5) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def setting_key(record: RunRecord) -> str:
    """Identity of a setting: study, preset and config, not the seed."""
    return json.dumps([record.study, record.preset, record.config], sort_keys=True)


def group_by_setting(records: Sequence[RunRecord]) -> list[list[RunRecord]]:
    """Runs grouped by setting, in first-seen order."""
    groups: dict[str, list[RunRecord]] = {}
    for record in records:
        groups.setdefault(setting_key(record), []).append(record)
    return list(groups.values())


@dataclass(frozen=True)
class SettingSummary:
    """Across-seed summary of one setting."""

    runs: list[str]
    seeds: list[int]
    finals: dict[str, Interval]
    claims: dict[str, Interval]


def summarize_setting(store: RunStore, records: Sequence[RunRecord]) -> SettingSummary:
    """Final value of every series (per arm) and success rate of every claim, across the seeds."""
    finals: dict[str, list[float]] = {}
    claims: dict[str, list[float]] = {}
    for record in records:
        arms = store.children(record.id)
        for arm in arms:
            prefix = "" if len(arms) == 1 else f"{arm.arm}/"
            for name, value in store.final_values(arm.id).items():
                finals.setdefault(prefix + name, []).append(value)
        for claim in store.claims(record.id):
            if claim["ok"] is not None:
                claims.setdefault(claim["name"], []).append(float(claim["ok"]))
    return SettingSummary(
        runs=[r.id for r in records],
        seeds=[r.seed for r in records],
        finals={k: bootstrap_mean(v) for k, v in sorted(finals.items())},
        claims={k: bootstrap_mean(v) for k, v in claims.items()},
    )


def format_summary(summary: SettingSummary) -> str:
    """Plain-text block: claims as success fractions, then series finals as mean [CI]."""
    lines = [f"setting of {len(summary.runs)} run(s): {', '.join(summary.runs)} (seeds {summary.seeds})"]
    for name, interval in summary.claims.items():
        held = round(interval.mean * interval.n)
        low, high = wilson_interval(held, interval.n)
        lines.append(f"  claim {name}: held on {held}/{interval.n} seeds ({interval.mean:.0%}; bootstrap "
                     f"{CONFIDENCE:.0%} CI [{interval.low:.0%}, {interval.high:.0%}], Wilson [{low:.0%}, {high:.0%}])")
    for name, interval in summary.finals.items():
        lines.append(f"  {name}: {interval}")
    return "\n".join(lines)
