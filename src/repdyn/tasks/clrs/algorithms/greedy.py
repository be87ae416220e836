"""Greedy algorithms: activity selection and unit-task scheduling (CLRS 3rd ed. 16.1, 16.5)."""

from __future__ import annotations

import numpy as np

from repdyn.tasks.clrs.probes import Batch, HintTape, OneHot, identity_pred, node_pos, rows


def activity_selector(s: np.ndarray, f: np.ndarray) -> Batch:
    """Pick activities by increasing finish time (`np.argsort(f)`), compatible with the last."""
    s, f = np.asarray(s), np.asarray(f)
    batch, n = s.shape
    r = rows(batch)
    pred = identity_pred(batch, n)
    selected = np.zeros((batch, n))
    tape, all_on = HintTape(n + 1), np.ones(batch, dtype=bool)
    zero = OneHot(np.zeros(batch, dtype=np.int64), n)  # m = k = 0 before the first pick
    tape.push(all_on, pred_h=pred, selected_h=selected, m=zero, k=zero)
    ind = np.argsort(f, axis=-1)
    k = ind[:, 0]
    selected[r, k] = 1
    tape.push(all_on, pred_h=pred, selected_h=selected, m=OneHot(k, n), k=OneHot(k, n))
    for m in range(1, n):
        pick = s[r, ind[:, m]] >= f[r, k]
        selected[r[pick], ind[pick, m]] = 1
        k = np.where(pick, ind[:, m], k)
        tape.push(all_on, pred_h=pred, selected_h=selected, m=OneHot(ind[:, m], n),
                  k=OneHot(k, n))
    hints, lengths = tape.finish()
    inputs = {"pos": node_pos(batch, n), "s": s.copy(), "f": f.copy()}
    return Batch("activity_selector", inputs, hints, {"selected": selected}, lengths)


def task_scheduling(d: np.ndarray, w: np.ndarray) -> Batch:
    """Schedule unit tasks by decreasing weight (`np.argsort(-w)`) while deadlines allow."""
    d, w = np.asarray(d), np.asarray(w)
    batch, n = d.shape
    r = rows(batch)
    pred = identity_pred(batch, n)
    selected = np.zeros((batch, n))
    tape, all_on = HintTape(n + 1), np.ones(batch, dtype=bool)
    t = np.zeros(batch, dtype=np.int64)
    tape.push(all_on, pred_h=pred, selected_h=selected, i=OneHot(t, n), t=t)
    ind = np.argsort(-w, axis=-1)
    selected[r, ind[:, 0]] = 1
    t = t + 1
    tape.push(all_on, pred_h=pred, selected_h=selected, i=OneHot(ind[:, 0], n), t=t)
    for i in range(1, n):
        pick = t < d[r, ind[:, i]]
        selected[r[pick], ind[pick, i]] = 1
        t = t + pick
        tape.push(all_on, pred_h=pred, selected_h=selected, i=OneHot(ind[:, i], n), t=t)
    hints, lengths = tape.finish()
    inputs = {"pos": node_pos(batch, n), "d": d.copy(), "w": w.copy()}
    return Batch("task_scheduling", inputs, hints, {"selected": selected}, lengths)
