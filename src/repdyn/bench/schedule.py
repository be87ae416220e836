"""Evaluation schedules: log-spaced steps, dense early and sparse late (as grokking curves need)."""

from __future__ import annotations

import numpy as np


def log_schedule(total: int, points: int, *, include_zero: bool = True) -> list[int]:
    """About `points` integer steps spaced evenly in log(step) over [1, total], plus 0 and `total`."""
    steps = np.unique(np.round(np.geomspace(1, max(total, 1), max(points, 2))).astype(np.int64))
    out = sorted({int(s) for s in steps} | {total} | ({0} if include_zero else set()))
    return [s for s in out if 0 <= s <= total]
