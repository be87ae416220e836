"""Searching: minimum, binary search, quickselect (CLRS 3rd ed. chapters 2, 9)."""

from __future__ import annotations

import numpy as np

from repdyn.tasks.clrs.algorithms.sorting import Partitioner
from repdyn.tasks.clrs.probes import Batch, HintTape, OneHot, identity_pred, node_pos, one_hot, pred_pointers, rows


def minimum(A: np.ndarray) -> Batch:
    """Linear scan for the minimum; ties keep the first index."""
    A = np.asarray(A)
    batch, n = A.shape
    pred = identity_pred(batch, n)
    tape, all_on = HintTape(n), np.ones(batch, dtype=bool)
    best = np.zeros(batch, dtype=np.int64)
    r = rows(batch)
    tape.push(all_on, pred_h=pred, min_h=OneHot(best, n), i=OneHot(best, n))
    for i in range(1, n):
        best = np.where(A[r, best] > A[:, i], i, best)
        tape.push(all_on, pred_h=pred, min_h=OneHot(best, n), i=OneHot(np.full(batch, i), n))
    hints, lengths = tape.finish()
    return Batch("minimum", {"pos": node_pos(batch, n), "key": A.copy()}, hints,
                 {"min": one_hot(best, n)}, lengths)


def binary_search(x: np.ndarray, A: np.ndarray) -> Batch:
    """Binary search for the first position with x <= A[pos] (the last one if none)."""
    x, A = np.asarray(x), np.asarray(A)
    batch, n = A.shape
    r = rows(batch)
    pred = identity_pred(batch, n)
    low, high = np.zeros(batch, dtype=np.int64), np.full(batch, n - 1)
    tape = HintTape()
    tape.push(np.ones(batch, dtype=bool), pred_h=pred, low=OneHot(low, n),
              high=OneHot(high, n), mid=OneHot((low + high) // 2, n))
    while (low < high).any():
        active = low < high
        mid = (low + high) // 2
        left = x <= A[r, mid]
        high = np.where(active & left, mid, high)
        low = np.where(active & ~left, mid + 1, low)
        tape.push(active, pred_h=pred, low=OneHot(low, n), high=OneHot(high, n),
                  mid=OneHot((low + high) // 2, n))
    hints, lengths = tape.finish()
    inputs = {"pos": node_pos(batch, n), "key": A.copy(), "target": x.astype(np.float64)}
    return Batch("binary_search", inputs, hints, {"return": one_hot(high, n)}, lengths)


def quickselect(A: np.ndarray) -> Batch:
    """Hoare's quickselect for the element of rank n // 2, with Lomuto partitions."""
    part = Partitioner(A)
    batch, n = part.arr.shape
    r, order = part.row, part.order
    target = np.full(batch, n // 2)
    running = np.ones(batch, dtype=bool)
    median = np.zeros(batch, dtype=np.int64)
    tape = HintTape(2 * n)
    while running.any():
        idx = np.nonzero(running)[0]
        loop, fin = part.step(idx)
        i_rank = (part.i + 1) * 1.0 / n
        i_rank[fin] = (part.i[fin] + 1 - part.p[fin]) * 1.0 / n
        j_pos, pivot = part.j.copy(), part.r.copy()
        j_pos[fin], pivot[fin] = part.r[fin], part.i[fin] + 1
        tape.push(running, pred_h=pred_pointers(order), p=OneHot(order[r, part.p], n),
                  r=OneHot(order[r, part.r], n), i=OneHot(order[r, part.i + 1], n),
                  j=OneHot(order[r, j_pos], n), i_rank=i_rank, target=target * 1.0 / n,
                  pivot=OneHot(order[r, pivot], n))
        part.j[loop] += 1
        q = part.i[fin] + 1
        k = q - part.p[fin]
        found, lower = target[fin] == k, target[fin] < k
        median[fin[found]] = order[fin[found], q[found]]
        running[fin[found]] = False
        go_left, go_right = fin[lower], fin[~found & ~lower]
        part.begin(go_left, part.p[go_left], q[lower] - 1)
        target[go_right] -= k[~found & ~lower] + 1
        part.begin(go_right, q[~found & ~lower] + 1, part.r[go_right])
    hints, lengths = tape.finish()
    return Batch("quickselect", part.inputs, hints, {"median": one_hot(median, n)}, lengths)
