"""Geometry: segment intersection, Graham scan, Jarvis' march (CLRS 3rd ed. 33.1, 33.3).

Cross products are evaluated with dm-clrs's exact expressions (same operand order), and the
polar angles with `math.atan2`, so every float and every tie matches bit for bit.
"""

from __future__ import annotations

import math

import numpy as np

from repdyn.tasks.clrs.probes import Batch, HintTape, OneHot, identity_pred, node_pos, rows


def _inputs(xs: np.ndarray, ys: np.ndarray) -> dict[str, np.ndarray]:
    batch, n = xs.shape
    return {"pos": node_pos(batch, n), "x": xs.copy(), "y": ys.copy()}


def segments_intersect(xs: np.ndarray, ys: np.ndarray) -> Batch:
    """Do segments (p0, p1) and (p2, p3) intersect? Four orientation tests, one hint each."""
    xs, ys = np.asarray(xs), np.asarray(ys)
    batch, n = xs.shape
    dirs, on_seg = np.zeros((batch, n)), np.zeros((batch, n))
    tape, all_on = HintTape(5), np.ones(batch, dtype=bool)

    def push(i: int, j: int, k: int) -> None:
        tape.push(all_on, i=OneHot(np.full(batch, i), n), j=OneHot(np.full(batch, j), n),
                  k=OneHot(np.full(batch, k), n), dir=dirs, on_seg=on_seg)

    push(0, 0, 0)
    for i, j, k in ((2, 3, 0), (2, 3, 1), (0, 1, 2), (0, 1, 3)):
        dirs[:, k] = ((xs[:, k] - xs[:, i]) * (ys[:, j] - ys[:, i])
                      - (xs[:, j] - xs[:, i]) * (ys[:, k] - ys[:, i]))
        on_seg[:, k] = ((np.minimum(xs[:, i], xs[:, j]) <= xs[:, k])
                        & (xs[:, k] <= np.maximum(xs[:, i], xs[:, j]))
                        & (np.minimum(ys[:, i], ys[:, j]) <= ys[:, k])
                        & (ys[:, k] <= np.maximum(ys[:, i], ys[:, j])))
        push(i, j, k)
    straddle = (((dirs[:, 0] > 0) & (dirs[:, 1] < 0)) | ((dirs[:, 0] < 0) & (dirs[:, 1] > 0))) \
        & (((dirs[:, 2] > 0) & (dirs[:, 3] < 0)) | ((dirs[:, 2] < 0) & (dirs[:, 3] > 0)))
    touch = ((dirs == 0) & (on_seg == 1)).any(1)
    hints, lengths = tape.finish()
    return Batch("segments_intersect", _inputs(xs, ys), hints,
                 {"intersect": (straddle | touch).astype(np.int64)}, lengths)


def _lowest(xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """First index of the lowest point, leftmost among equally low ones."""
    low = ys == ys.min(1, keepdims=True)
    xs_low = np.where(low, xs, np.inf)
    return (low & (xs_low == xs_low.min(1, keepdims=True))).argmax(1)


def _take(a: np.ndarray, idx: np.ndarray) -> np.ndarray:
    return a[rows(len(a)), idx]


def graham_scan(xs: np.ndarray, ys: np.ndarray) -> Batch:
    """Graham scan: sort by polar angle around the lowest point, pop while not turning left."""
    xs, ys = np.asarray(xs), np.asarray(ys)
    batch, n = xs.shape
    r = rows(batch)
    in_hull, atans = np.zeros((batch, n)), np.zeros((batch, n))
    stack_prev = np.broadcast_to(np.arange(n), (batch, n)).copy()
    tape = HintTape(2 * n + 3)

    def push(active, best, last, i, phase) -> None:
        tape.push(active, best=OneHot(best, n), atans=atans, in_hull_h=in_hull,
                  stack_prev=stack_prev, last_stack=OneHot(last, n), i=OneHot(i, n),
                  phase=OneHot(np.broadcast_to(phase, (batch,)), 5))

    all_on, zero = np.ones(batch, dtype=bool), np.zeros(batch, dtype=np.int64)
    push(all_on, zero, zero, zero, 0)
    best = _lowest(xs, ys)
    in_hull[r, best] = 1
    last = best.copy()
    push(all_on, best, last, best, 1)
    dy, dx = ys - _take(ys, best)[:, None], xs - _take(xs, best)[:, None]
    angles = [math.atan2(a, b) for a, b in zip(dy.ravel(), dx.ravel(), strict=True)]
    atans = np.array(angles).reshape(dy.shape)
    atans[r, best] = -123456789  # dm-clrs's sentinel: best sorts first
    ind = np.argsort(atans, axis=-1)
    atans[r, best] = 0
    push(all_on, best, last, best, 2)
    i = np.ones(batch, dtype=np.int64)
    while (i < n).any():
        active = i < n
        k = ind[r, np.minimum(i, n - 1)]
        below = _take(stack_prev, last)
        cross = ((_take(xs, last) - _take(xs, below)) * (_take(ys, k) - _take(ys, below))
                 - (_take(ys, last) - _take(ys, below)) * (_take(xs, k) - _take(xs, below)))
        pop = active & (i >= 3) & (cross <= 0)
        add = active & ~pop
        popped = np.nonzero(pop)[0]
        stack_prev[popped, last[popped]] = last[popped]
        in_hull[popped, last[popped]] = 0
        last = np.where(pop, below, last)
        added = np.nonzero(add)[0]
        in_hull[added, k[added]] = 1
        stack_prev[added, k[added]] = last[added]
        last = np.where(add, k, last)
        push(active, best, last, k, np.where(pop, 3, 4))
        i = i + add
    hints, lengths = tape.finish()
    return Batch("graham_scan", _inputs(xs, ys), hints, {"in_hull": in_hull}, lengths)


def jarvis_march(xs: np.ndarray, ys: np.ndarray) -> Batch:
    """Jarvis' march: from the lowest point, wrap by scanning all points for the next turn."""
    xs, ys = np.asarray(xs), np.asarray(ys)
    batch, n = xs.shape
    r = rows(batch)
    pred = identity_pred(batch, n)
    in_hull = np.zeros((batch, n))
    tape = HintTape(4 * n)

    def push(active, best, last, end, i, phase) -> None:
        tape.push(active, pred_h=pred, in_hull_h=in_hull, best=OneHot(best, n),
                  last_point=OneHot(last, n), endpoint=OneHot(end, n), i=OneHot(i, n),
                  phase=OneHot(np.broadcast_to(phase, (batch,)), 2))

    zero = np.zeros(batch, dtype=np.int64)
    push(np.ones(batch, dtype=bool), zero, zero, zero, zero, 0)
    best = _lowest(xs, ys)
    in_hull[r, best] = 1
    last, end = best.copy(), zero.copy()
    push(np.ones(batch, dtype=bool), best, last, end, zero, 1)
    cursor = zero.copy()  # next i of the scan; n = the scan is over
    active = np.ones(batch, dtype=bool)
    while active.any():
        closing = active & (cursor == n)
        active &= ~(closing & (_take(in_hull, end) > 0))
        new = closing & active
        in_hull[r[new], end[new]] = 1
        last = np.where(new, end, last)
        end = np.where(new, 0, end)
        scan = active & ~new
        i = np.minimum(cursor, n - 1)
        turn = ((_take(xs, end) - _take(xs, last)) * (_take(ys, i) - _take(ys, last))
                - (_take(ys, end) - _take(ys, last)) * (_take(xs, i) - _take(xs, last))) <= 0
        turn &= (i != last) & (i != end)
        end = np.where(scan & ((end == last) | turn), i, end)
        push(active, best, last, end, np.where(new, 0, i), 1)
        cursor = np.where(new, 0, np.where(scan, cursor + 1, cursor))
    hints, lengths = tape.finish()
    return Batch("jarvis_march", _inputs(xs, ys), hints, {"in_hull": in_hull}, lengths)
