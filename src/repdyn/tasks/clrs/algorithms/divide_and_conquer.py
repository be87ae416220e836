"""Maximum subarray: Kadane's scan (CLRS-30) and the recursive divide and conquer (CLRS 4.1)."""

from __future__ import annotations

import numpy as np

from repdyn.tasks.clrs.algorithms.searching import _identity_pred
from repdyn.tasks.clrs.probes import OneHot, Batch, HintTape, node_pos, one_hot


def find_maximum_subarray_kadane(A: np.ndarray) -> Batch:
    """Kadane: extend the running sum while that beats restarting; keep the first best."""
    A = np.asarray(A)
    batch, n = A.shape
    pred = _identity_pred(batch, n)
    zero = np.zeros(batch, dtype=np.int64)
    low, high, start = zero.copy(), zero.copy(), zero.copy()
    best, total = A[:, 0].copy(), A[:, 0].copy()
    tape, all_on = HintTape(n), np.ones(batch, dtype=bool)
    tape.push(all_on, pred_h=pred, best_low=OneHot(low, n), best_high=OneHot(high, n),
              best_sum=best, i=OneHot(start, n), j=OneHot(zero, n), sum=total)
    for j in range(1, n):
        x = A[:, j]
        extend = total + x >= x
        total = np.where(extend, total + x, x)
        start = np.where(extend, start, j)
        better = total > best
        low, high = np.where(better, start, low), np.where(better, j, high)
        best = np.where(better, total, best)
        tape.push(all_on, pred_h=pred, best_low=OneHot(low, n), best_high=OneHot(high, n),
                  best_sum=best, i=OneHot(start, n), j=OneHot(np.full(batch, j), n), sum=total)
    hints, lengths = tape.finish()
    return Batch("find_maximum_subarray_kadane", {"pos": node_pos(batch, n), "key": A.copy()},
                 hints, {"start": one_hot(low, n), "end": one_hot(high, n)}, lengths)
