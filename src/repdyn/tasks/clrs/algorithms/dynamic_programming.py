"""Dynamic programming: matrix-chain order, LCS length, optimal BST (CLRS 3rd ed. 15.2-15.5).

Matrix chain and LCS relax their tables in synchronous rounds (each reads the previous round's
table) until nothing changes; optimal BST fills one interval length per hint. Within a cell,
dm-clrs's sequential `if value < best` keeps the first minimiser, which `argmin` reproduces.
"""

from __future__ import annotations

import numpy as np

from repdyn.tasks.clrs import specs
from repdyn.tasks.clrs.probes import Batch, HintTape, identity_pred, node_pos, string_inputs, strings_pred


def matrix_chain_order(p: np.ndarray) -> Batch:
    """Cheapest parenthesisation of matrices of sizes p[i-1] x p[i], i >= 1; s = split point."""
    p = np.asarray(p)
    batch, n = p.shape
    pred = identity_pred(batch, n)
    ids = np.arange(n)
    m = np.zeros((batch, n, n))
    s = np.zeros((batch, n, n))
    msk = np.zeros((batch, n, n))
    msk[:, ids[1:], ids[1:]] = 1
    cell = (ids[:, None] >= 1) & (ids[None, :] > ids[:, None])  # the (i, j) the loops visit
    p_prev = p[:, np.maximum(ids - 1, 0)]  # p[i - 1]
    tape, active = HintTape(), np.ones(batch, dtype=bool)
    while active.any():
        tape.push(active, pred_h=pred, m=m, s_h=s, msk=msk)
        best = np.full((batch, n, n), np.inf)
        arg = np.zeros((batch, n, n))
        seen = np.zeros((batch, n, n), dtype=bool)
        for k in range(1, n - 1):
            valid = (msk[:, :, k] == 1)[:, :, None] & (msk[:, k + 1, :] == 1)[:, None, :]
            valid &= cell & (ids[:, None] <= k) & (k < ids[None, :])
            q = (m[:, :, k][:, :, None] + m[:, k + 1, :][:, None, :]) \
                + (p_prev * p[:, k, None])[:, :, None] * p[:, None, :]
            better = valid & (q < best)
            best = np.where(better, q, best)
            arg = np.where(better, k, arg)
            seen |= valid
        seen &= active[:, None, None]
        take = seen & ((msk == 0) | (best < m))
        new_m = np.where(take, best, m)
        s = np.where(take, arg, s)
        msk = np.where(seen, 1.0, msk)
        active &= (new_m != m).any((1, 2))
        m = new_m
    hints, lengths = tape.finish()
    return Batch("matrix_chain_order", {"pos": node_pos(batch, n), "p": p.copy()}, hints,
                 {"s": s}, lengths)


def _pair(c: np.ndarray) -> np.ndarray:
    """`probing.strings_pair`: the [n1, n2] table in the x-rows, y-columns block."""
    batch, n1, n2 = c.shape
    out = np.zeros((batch, n1 + n2, n1 + n2))
    out[:, :n1, n1:] = c
    return out


def _pair_cat(b: np.ndarray) -> np.ndarray:
    """`probing.strings_pair_cat` with 3 classes plus a 4th 'blank' class set to MASKED."""
    batch, n1, n2 = b.shape
    out = np.zeros((batch, n1 + n2, n1 + n2, 4))
    out[:, :n1, n1:, :3] = np.eye(3)[b.astype(np.int64)]
    out[:, :n1, :n1, 3] = specs.OutputClass.MASKED
    out[:, n1:, :, 3] = specs.OutputClass.MASKED
    return out


def lcs_length(x: np.ndarray, y: np.ndarray) -> Batch:
    """Longest common subsequence table c and arrows b (0 diagonal, 1 up, 2 left)."""
    x, y = np.asarray(x), np.asarray(y)
    batch, n1 = x.shape
    n2 = y.shape[1]
    eq = x[:, :, None] == y[:, None, :]
    c = np.zeros((batch, n1, n2))
    b = np.zeros((batch, n1, n2))
    c[:, :, 0] = np.logical_or.accumulate(eq[:, :, 0], axis=1)
    b[:, :, 0] = np.where(eq[:, :, 0], 0, 1)
    row = np.logical_or.accumulate(eq[:, 0, :], axis=1)
    c[:, 0, :] = row
    after_match = np.concatenate([np.zeros((batch, 1), dtype=bool), row[:, :-1]], 1)
    b[:, 0, :] = np.where(eq[:, 0, :], 0, np.where(after_match, 2, 1))
    pred = strings_pred(batch, n1, n2)
    tape, active = HintTape(), np.ones(batch, dtype=bool)
    while active.any():
        tape.push(active, pred_h=pred, b_h=_pair_cat(b), c=_pair(c))
        up, left, diag = c[:, :-1, 1:], c[:, 1:, :-1], c[:, :-1, :-1] + 1
        inner = eq[:, 1:, 1:]
        new_c, new_b = c.copy(), b.copy()
        new_c[:, 1:, 1:] = np.where(inner, diag, np.where(up >= left, up, left))
        new_b[:, 1:, 1:] = np.where(inner, 0, np.where(up >= left, 1, 2))
        keep = ~active[:, None, None]
        new_c, new_b = np.where(keep, c, new_c), np.where(keep, b, new_b)
        active &= (new_c != c).any((1, 2))
        c, b = new_c, new_b
    hints, lengths = tape.finish()
    return Batch("lcs_length", string_inputs(x, y), hints, {"b": _pair_cat(b)}, lengths)


def optimal_bst(p: np.ndarray, q: np.ndarray) -> Batch:
    """Optimal BST over keys with probabilities p and gaps q; one hint per interval length."""
    p, q = np.asarray(p), np.asarray(q)
    batch, n = p.shape
    size = n + 1
    ids = np.arange(size)
    p_pad = np.zeros((batch, size))
    p_pad[:, :-1] = p
    e = np.zeros((batch, size, size))
    w = np.zeros((batch, size, size))
    root = np.zeros((batch, size, size))
    msk = np.zeros((batch, size, size))
    e[:, ids, ids] = q
    w[:, ids, ids] = q
    msk[:, ids, ids] = 1
    pred = identity_pred(batch, size)
    tape, all_on = HintTape(n + 1), np.ones(batch, dtype=bool)
    tape.push(all_on, pred_h=pred, root_h=root, e=e, w=w, msk=msk)
    for length in range(1, n + 1):
        i = np.arange(n - length + 1)
        j = i + length
        w[:, i, j] = w[:, i, j - 1] + p[:, j - 1] + q[:, j]
        r = i[:, None] + np.arange(length)[None, :]  # candidate roots r in [i, j)
        t = e[:, i[:, None], r] + e[:, r + 1, j[:, None]] + w[:, i, j][:, :, None]
        best, arg = t.min(-1), t.argmin(-1)
        better = best < 1e9  # dm-clrs starts each cell at e = 1e9
        e[:, i, j] = np.where(better, best, 1e9)
        root[:, i, j] = np.where(better, r[None, np.arange(len(i)), arg], root[:, i, j])
        msk[:, i, j] = 1
        tape.push(all_on, pred_h=pred, root_h=root, e=e, w=w, msk=msk)
    hints, lengths = tape.finish()
    inputs = {"pos": node_pos(batch, size), "p": p_pad, "q": q.copy()}
    return Batch("optimal_bst", inputs, hints, {"root": root}, lengths)
