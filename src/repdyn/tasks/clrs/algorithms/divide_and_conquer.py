"""Maximum subarray: Kadane's scan (CLRS-30) and the recursive divide and conquer (CLRS 4.1)."""

from __future__ import annotations

import numpy as np

from repdyn.tasks.clrs.probes import Batch, HintTape, OneHot, identity_pred, node_pos, one_hot


def find_maximum_subarray_kadane(A: np.ndarray) -> Batch:
    """Kadane: extend the running sum while that beats restarting; keep the first best."""
    A = np.asarray(A)
    batch, n = A.shape
    pred = identity_pred(batch, n)
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


class _MaxSubarray:
    """CLRS 4.1's recursion on a batch. Its schedule depends on n only, so the recursion runs
    once with [B] vectors for the data-dependent values, pushing dm-clrs's 22 hints."""

    def __init__(self, A: np.ndarray) -> None:
        self.A = A
        self.batch, self.n = A.shape
        self.pred = identity_pred(self.batch, self.n)
        self.tape = HintTape(4 * self.n * max(1, int(np.log2(self.n))))
        self.on = np.ones(self.batch, dtype=bool)

    def push(self, phase: int, low, high, mid, left, right, cross, ret, i, j, total,
             left_x, right_x) -> None:
        def hot(x):
            return OneHot(np.broadcast_to(np.asarray(x, dtype=np.int64), (self.batch,)), self.n)

        def val(x):
            return np.broadcast_to(np.asarray(x, dtype=np.float64), (self.batch,))

        self.tape.push(self.on, pred_h=self.pred, low=hot(low), high=hot(high), mid=hot(mid),
                       left_low=hot(left[0]), left_high=hot(left[1]), left_sum=val(left[2]),
                       right_low=hot(right[0]), right_high=hot(right[1]),
                       right_sum=val(right[2]), cross_low=hot(cross[0]),
                       cross_high=hot(cross[1]), cross_sum=val(cross[2]), ret_low=hot(ret[0]),
                       ret_high=hot(ret[1]), ret_sum=val(ret[2]), i=hot(i), j=hot(j),
                       sum=val(total), left_x_sum=val(left_x), right_x_sum=val(right_x),
                       phase=OneHot(np.full(self.batch, phase), 3))

    def crossing(self, low: int, mid: int, high: int, left: tuple, right: tuple):
        A = self.A
        first = (mid, mid + 1, A[:, mid] + A[:, mid + 1] - 0.2)
        ret0 = (low, high, 0.0)
        self.push(1, low, high, mid, left, right, first, ret0, mid, mid + 1, 0.0,
                  A[:, mid] - 0.1, A[:, mid + 1] - 0.1)
        left_sum, total = A[:, mid] - 0.1, np.zeros(self.batch)
        max_left = np.zeros(self.batch, dtype=np.int64)
        for i in range(mid, low - 1, -1):
            total = total + A[:, i]
            better = total > left_sum
            left_sum, max_left = np.where(better, total, left_sum), np.where(better, i, max_left)
            self.push(1, low, high, mid, left, right,
                      (max_left, mid + 1, left_sum + A[:, mid + 1] - 0.1), ret0, i, mid + 1,
                      total, left_sum, A[:, mid + 1] - 0.1)
        right_sum, total = A[:, mid + 1] - 0.1, np.zeros(self.batch)
        max_right = np.zeros(self.batch, dtype=np.int64)
        ctx_l, ctx_r = (left[0], left[1], left_sum), (right[0], right[1], right_sum)
        self.push(2, low, high, mid, ctx_l, ctx_r, (max_left, mid + 1, left_sum + right_sum),
                  ret0, low, mid + 1, 0.0, left_sum, A[:, mid + 1] - 0.1)
        for j in range(mid + 1, high + 1):
            total = total + A[:, j]
            better = total > right_sum
            right_sum = np.where(better, total, right_sum)
            max_right = np.where(better, j, max_right)
            self.push(2, low, high, mid, (left[0], left[1], left_sum),
                      (right[0], right[1], right_sum),
                      (max_left, max_right, left_sum + right_sum), ret0, low, j, total,
                      left_sum, right_sum)
        return (max_left, max_right, left_sum + right_sum), (total, left_sum, right_sum)

    def solve(self, low: int, high: int):
        A, mid = self.A, (low + high) // 2
        if high == low:
            self.push(0, low, high, mid, (low, high, 0.0), (low, high, 0.0), (low, high, 0.0),
                      (low, high, A[:, low]), low, high, 0.0, A[:, low] - 0.1, A[:, high] - 0.1)
            return low, high, A[:, low]
        first = (mid, mid + 1, A[:, mid] + A[:, mid + 1] - 0.2)
        ret0, xs = (low, high, 0.0), (A[:, mid] - 0.1, A[:, mid + 1] - 0.1)
        self.push(0, low, high, mid, (low, mid, 0.0), (mid + 1, high, 0.0), first, ret0, mid,
                  mid + 1, 0.0, *xs)
        left = self.solve(low, mid)
        self.push(0, low, high, mid, left, (mid + 1, high, 0.0), first, ret0, mid, mid + 1,
                  0.0, *xs)
        right = self.solve(mid + 1, high)
        self.push(0, low, high, mid, left, right, first, ret0, mid, mid + 1, 0.0, *xs)
        cross, (x_sum, x_left, x_right) = self.crossing(low, mid, high, left, right)
        take_left = (left[2] >= right[2]) & (left[2] >= cross[2])
        take_right = ~take_left & (right[2] >= left[2]) & (right[2] >= cross[2])
        best = tuple(np.where(take_left, lv, np.where(take_right, rv, cv))
                     for lv, rv, cv in zip(left, right, cross, strict=True))
        if not (low == 0 and high == self.n - 1):
            self.push(0, low, high, mid, left, right, cross, best, low, high, x_sum, x_left,
                      x_right)
        return best


def find_maximum_subarray(A: np.ndarray) -> Batch:
    """Divide-and-conquer maximum subarray (not in CLRS-30); one hint per dm-clrs push."""
    A = np.asarray(A)
    batch, n = A.shape
    solver = _MaxSubarray(A)
    low, high, _ = solver.solve(0, n - 1)
    hints, lengths = solver.tape.finish()
    low = np.broadcast_to(np.asarray(low, dtype=np.int64), (batch,))
    high = np.broadcast_to(np.asarray(high, dtype=np.int64), (batch,))
    return Batch("find_maximum_subarray", {"pos": node_pos(batch, n), "key": A.copy()}, hints,
                 {"start": one_hot(low, n), "end": one_hot(high, n)}, lengths)
