"""String matching: naive and Knuth-Morris-Pratt (CLRS 3rd ed. 32.1, 32.4).

Nodes are the haystack T followed by the needle P (N = |T| + |P|). Batches whose needles differ
in length (the training recipe's random needles) run as one sub-batch per needle length and are
merged back in order.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from repdyn.tasks.clrs.probes import Batch, HintTape, OneHot, merge_batches, one_hot, rows, string_inputs, strings_pred


def _per_needle_length(fn: Callable[[np.ndarray, np.ndarray], Batch], T: Sequence,
                       P: Sequence) -> Batch:
    if isinstance(T, np.ndarray) and isinstance(P, np.ndarray):
        return fn(T, P)
    sizes = np.array([len(p) for p in P])
    groups = [np.nonzero(sizes == m)[0] for m in np.unique(sizes)]
    parts = [fn(np.stack([T[b] for b in g]), np.stack([P[b] for b in g])) for g in groups]
    return merge_batches(parts, groups)


def _naive(T: np.ndarray, P: np.ndarray) -> Batch:
    batch, n_t = T.shape
    n_p = P.shape[1]
    size = n_t + n_p
    r = rows(batch)
    pred = strings_pred(batch, n_t, n_p)
    s = np.zeros(batch, dtype=np.int64)
    i, j = s.copy(), s.copy()
    match = np.full(batch, n_t)  # dm-clrs's convention when there is no match
    tape, active = HintTape(2 * n_t), np.ones(batch, dtype=bool)
    while active.any():
        tape.push(active, pred_h=pred, s=OneHot(s, size), i=OneHot(i, size),
                  j=OneHot(n_t + j, size))
        same = T[r, np.minimum(i, n_t - 1)] == P[r, j]
        found = active & same & (j == n_p - 1)
        match = np.where(found, s, match)
        step = active & same & ~found
        i, j = i + step, j + step
        shift = active & ~same
        s = s + shift
        active &= ~found & ~(shift & (s > n_t - n_p))
        i, j = np.where(shift, s, i), np.where(shift, 0, j)
    hints, lengths = tape.finish()
    return Batch("naive_string_matcher", string_inputs(T, P), hints,
                 {"match": one_hot(match, size)}, lengths)


def naive_string_matcher(T: np.ndarray | Sequence, P: np.ndarray | Sequence) -> Batch:
    """Try every shift s; compare left to right; stop at the first full match."""
    return _per_needle_length(_naive, T, P)


_PREFIX, _TOP, _WHILE, _DONE = range(4)


def _kmp(T: np.ndarray, P: np.ndarray) -> Batch:
    batch, n_t = T.shape
    n_p = P.shape[1]
    size = n_t + n_p
    r = rows(batch)
    pred = strings_pred(batch, n_t, n_p)
    text_ids = np.broadcast_to(np.arange(n_t), (batch, n_t))
    pi = np.broadcast_to(np.arange(n_p), (batch, n_p)).copy()
    is_reset = np.zeros((batch, n_p))
    is_reset[:, 0] = 1
    k, k_reset = np.zeros(batch, dtype=np.int64), np.ones(batch, dtype=np.int64)
    q = np.full(batch, 1 if n_p > 1 else 0)  # dm-clrs's `delta`, for |P| = 1
    q_reset, s, i, phase = np.ones(batch, dtype=np.int64), k.copy(), k.copy(), k.copy()
    match = np.full(batch, n_t)  # dm-clrs's convention when there is no match
    tape = HintTape(2 * size)

    def at(a: np.ndarray, idx: np.ndarray) -> np.ndarray:
        return a[r, np.clip(idx, 0, a.shape[1] - 1)]

    def push(active: np.ndarray) -> None:
        tape.push(active, pred_h=pred, pi=np.concatenate([text_ids, n_t + pi], 1),
                  is_reset=np.concatenate([np.zeros((batch, n_t)), is_reset], 1),
                  k=OneHot(n_t + k, size), k_reset=k_reset, q=OneHot(n_t + q, size),
                  q_reset=q_reset, s=OneHot(s, size), i=OneHot(i, size), phase=phase)

    push(np.ones(batch, dtype=bool))
    mode = np.full(batch, _PREFIX if n_p > 1 else _TOP)
    while (mode != _DONE).any():
        # Prefix function at needle position q: one `while` step, or the rest of iteration q.
        pre = mode == _PREFIX
        step = pre & (k_reset == 0) & (at(P, k + 1) != at(P, q))
        reset = step & (at(is_reset, k) == 1)
        k = np.where(reset, 0, np.where(step, at(pi, k), k))
        k_reset = np.where(reset, 1, k_reset)
        end = pre & ~step
        restart = end & (k_reset == 1)
        k, k_reset = np.where(restart, -1, k), np.where(restart, 0, k_reset)
        k = np.where(end & (at(P, k + 1) == at(P, q)), k + 1, k)
        empty = end & (k == -1)
        k, k_reset = np.where(empty, 0, k), np.where(empty, 1, k_reset)
        is_reset[r[empty], q[empty]] = 1
        pi[r[end], q[end]] = k[end]

        # Matching at text position i: one `while` step, or the rest of iteration i, after
        # which iteration i + 1 starts (and pushes) in the same step.
        wh = mode == _WHILE
        step_m = wh & (q_reset == 0) & (at(P, q + 1) != at(T, i))
        reset_m = step_m & (at(is_reset, q) == 1)
        q = np.where(reset_m, 0, np.where(step_m, at(pi, q), q))
        q_reset = np.where(reset_m, 1, q_reset)
        rest = wh & ~step_m
        restart = rest & (q_reset == 1)
        q, q_reset = np.where(restart, -1, q), np.where(restart, 0, q_reset)
        hit = rest & (at(P, q + 1) == at(T, i))
        found = hit & (q == n_p - 2)
        match = np.where(found, s, match)
        q = np.where(hit & ~found, q + 1, q)
        empty = rest & ~found & (q == -1)
        q, q_reset = np.where(empty, 0, q), np.where(empty, 1, q_reset)
        i = np.where(rest & ~found, i + 1, i)
        mode = np.where(found | (rest & (i >= n_t)), _DONE, mode)
        top = (mode == _TOP) | (rest & (mode != _DONE))
        s = np.where(top & (i >= n_p), s + 1, s)
        phase = np.where(top, 1, phase)

        push(pre | step_m | top)
        q = np.where(end, q + 1, q)
        prefix_done = end & (q >= n_p)
        q, q_reset = np.where(prefix_done, 0, q), np.where(prefix_done, 1, q_reset)
        mode = np.where(prefix_done, _TOP, np.where(top, _WHILE, mode))
    hints, lengths = tape.finish()
    return Batch("kmp_matcher", string_inputs(T, P), hints, {"match": one_hot(match, size)},
                 lengths)


def kmp_matcher(T: np.ndarray | Sequence, P: np.ndarray | Sequence) -> Batch:
    """Knuth-Morris-Pratt with dm-clrs's explicit reset flags instead of pi = -1."""
    return _per_needle_length(_kmp, T, P)
