"""Graph algorithms without a DFS stack: BFS, Bellman-Ford, Dijkstra, Prim, Kruskal, Floyd-Warshall.

Each function takes a batch of instances ([B, n, n] weights `A`, [B] sources `s`) in CLRS's
argument order and returns a `Batch` whose probes equal dm-clrs's, push for push (clrs.md §4):
every loop iteration below advances all unfinished instances by one CLRS hint.
"""

from __future__ import annotations

import numpy as np

from repdyn.tasks.clrs import specs
from repdyn.tasks.clrs.probes import Batch, HintTape, OneHot, graph_adj, node_pos, one_hot, rows


def _graph_inputs(A: np.ndarray, s: np.ndarray | None = None) -> dict[str, np.ndarray]:
    batch, n, _ = A.shape
    inputs = {"pos": node_pos(batch, n), "A": A.copy(), "adj": graph_adj(A)}
    if s is not None:
        inputs["s"] = one_hot(s, n)
    return inputs


def first_of_argsort(key: np.ndarray) -> np.ndarray:
    """Per row, `np.argsort(key[b])[0]` (CLRS's extract-min), computed fast.

    np.argsort is not stable, so rows with a tied minimum are sorted exactly as CLRS does.
    """
    first = key.argmin(-1)
    at_min = key == key[np.arange(len(key)), first][:, None]
    if np.count_nonzero(at_min) > len(key):  # some row has its minimum twice
        tied = np.count_nonzero(at_min, axis=-1) > 1
        first[tied] = np.argsort(key[tied], axis=-1)[:, 0]
    return first


def bfs(A: np.ndarray, s: np.ndarray) -> Batch:
    """Breadth-first search in synchronous rounds; pi[j] = lowest reached i with A[i, j] > 0.

    Edges are kept transposed ([B, j, i]) so that a round's search over i is along the last,
    contiguous axis.
    """
    A, s = np.asarray(A), np.asarray(s, dtype=np.int64)
    batch, n, _ = A.shape
    ids = np.arange(n)
    reach = np.zeros((batch, n))
    reach[rows(batch), s] = 1
    pi = np.broadcast_to(ids, (batch, n)).copy()
    edge_t = (A > 0).transpose(0, 2, 1).copy()
    tape, active = HintTape(n + 1), np.ones(batch, dtype=bool)
    while np.count_nonzero(active):
        tape.push(active, reach_h=reach, pi_h=pi)
        cand = edge_t & (reach == 1)[:, None, :]
        first = cand.argmax(-1)
        has = np.take_along_axis(cand, first[..., None], -1)[..., 0] & active[:, None]
        claim = has & (pi == ids) & (ids != s[:, None])
        pi = np.where(claim, first, pi)
        new_reach = np.where(has, 1.0, reach)
        active &= (new_reach != reach).any(1)
        reach = new_reach
    hints, lengths = tape.finish()
    return Batch("bfs", _graph_inputs(A, s), hints, {"pi": pi}, lengths)


def bellman_ford(A: np.ndarray, s: np.ndarray) -> Batch:
    """Bellman-Ford in rounds over prev_d; ties keep the current value, then the lowest u.

    A round's candidates prev_d[u] + A[u, v] are laid out [B, v, u], with +inf for non-edges
    and unreached u, so that the choice of u is one contiguous argmin (the first minimum).
    """
    A, s = np.asarray(A), np.asarray(s, dtype=np.int64)
    batch, n, _ = A.shape
    d = np.zeros((batch, n))
    msk = np.zeros((batch, n))
    msk[rows(batch), s] = 1
    pi = np.broadcast_to(np.arange(n), (batch, n)).copy()
    weights_t = np.where(A != 0, A, np.inf).transpose(0, 2, 1).copy()
    tape, active = HintTape(n + 1), np.ones(batch, dtype=bool)
    while np.count_nonzero(active):
        tape.push(active, pi_h=pi, d=d, msk=msk)
        via = np.where(msk == 1, d, np.inf)[:, None, :] + weights_t
        arg = via.argmin(-1)
        best = np.take_along_axis(via, arg[..., None], -1)[..., 0]
        has = (best < np.inf) & active[:, None]
        take = has & ((msk == 0) | (best < d))
        new_d = np.where(take, best, d)
        pi = np.where(take, arg, pi)
        msk = np.where(has, 1.0, msk)
        active &= (new_d != d).any(1)
        d = new_d
    hints, lengths = tape.finish()
    return Batch("bellman_ford", _graph_inputs(A, s), hints, {"pi": pi}, lengths)


def _greedy_tree(name: str, A: np.ndarray, s: np.ndarray, prim: bool) -> Batch:
    """Dijkstra (prim=False, key = distance) and Prim (prim=True, key = edge weight).

    Marking u and taking it out of the queue are scatters into flat arrays whose last cell
    takes the writes of finished instances.
    """
    A, s = np.asarray(A), np.asarray(s, dtype=np.int64)
    batch, n, _ = A.shape
    r = rows(batch)
    off, spare = r * n, batch * n
    weights, edges = A.reshape(batch * n, n), (A != 0).reshape(batch * n, n)
    key = np.zeros((batch, n))
    mark_flat, queue_flat = np.zeros(batch * n + 1), np.zeros(batch * n + 1)
    mark, in_queue = mark_flat[:-1].reshape(batch, n), queue_flat[:-1].reshape(batch, n)
    in_queue[r, s] = 1
    pi = np.broadcast_to(np.arange(n), (batch, n)).copy()
    key_name = "key" if prim else "d"
    tape, active = HintTape(n + 1), np.ones(batch, dtype=bool)
    tape.push(active, pi_h=pi, **{key_name: key}, mark=mark, in_queue=in_queue, u=OneHot(s, n))
    for _ in range(n):
        u = first_of_argsort(key + (1.0 - in_queue) * 1e9)
        cell_u = off + u
        active &= queue_flat[cell_u] != 0
        if not np.count_nonzero(active):
            break
        cell = np.where(active, cell_u, spare)
        mark_flat[cell] = 1
        queue_flat[cell] = 0
        new = weights[cell_u]
        if not prim:
            new = key[r, u][:, None] + new
        cand = edges[cell_u] & (mark == 0) & ((in_queue == 0) | (new < key)) & active[:, None]
        np.copyto(pi, u[:, None], where=cand)
        np.copyto(key, new, where=cand)
        np.copyto(in_queue, 1.0, where=cand)
        tape.push(active, pi_h=pi, **{key_name: key}, mark=mark, in_queue=in_queue,
                  u=OneHot(u, n))
    hints, lengths = tape.finish()
    return Batch(name, _graph_inputs(A, s), hints, {"pi": pi}, lengths)


def dijkstra(A: np.ndarray, s: np.ndarray) -> Batch:
    """Dijkstra with CLRS's argsort extract-min over d + 1e9 * (not in queue)."""
    return _greedy_tree("dijkstra", A, s, prim=False)


def mst_prim(A: np.ndarray, s: np.ndarray) -> Batch:
    """Prim's minimum spanning tree with the same extract-min as Dijkstra."""
    return _greedy_tree("mst_prim", A, s, prim=True)


def floyd_warshall(A: np.ndarray) -> Batch:
    """Floyd-Warshall; one hint per k pushed before the k-update; strict improvements only."""
    A = np.asarray(A)
    batch, n, _ = A.shape
    D = A.copy()
    Pi = np.broadcast_to(np.arange(n, dtype=np.float64)[:, None], (batch, n, n)).copy()
    msk = graph_adj(A)
    tape, active = HintTape(n), np.ones(batch, dtype=bool)
    for k in range(n):
        tape.push(active, Pi_h=Pi, D=D, msk=msk, k=OneHot(np.full(batch, k), n))
        ok = (msk[:, :, k] > 0)[:, :, None] & (msk[:, k, :] > 0)[:, None, :]
        via = D[:, :, k][:, :, None] + D[:, k, :][:, None, :]
        better = ok & ((msk == 0) | (via < D))
        # Row k of Pi is only ever reassigned to itself during step k, so every i reads it as is.
        Pi = np.where(better, Pi[:, k, :][:, None, :], Pi)
        D = np.where(better, via, D)
        msk = np.where(ok, 1.0, msk)
    hints, lengths = tape.finish()
    return Batch("floyd_warshall", _graph_inputs(A), hints, {"Pi": Pi}, lengths)


def kruskal_edges(A: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per instance, the edges i < j with A > 0 in CLRS's `np.argsort(wts)` order.

    Returns endpoints u, v [B, m_max] (zero-padded) and edge counts [B]. np.argsort is not
    stable, so ties must be ordered as a 1-d argsort of exactly that instance's weight list
    orders them: instances with m edges are sorted together, row by row, as one [k, m] argsort.
    """
    batch, n, _ = A.shape
    iu, ju = np.triu_indices(n, 1)  # dm-clrs's `for i: for j > i` order
    weights = A[:, iu, ju]
    present = weights > 0
    counts = present.sum(1)
    eu = np.zeros((batch, max(1, int(counts.max(initial=0)))), dtype=np.int64)
    ev = eu.copy()
    for m in np.unique(counts[counts > 0]):
        rows = np.flatnonzero(counts == m)
        pairs = np.nonzero(present[rows])[1].reshape(len(rows), m)
        order = np.argsort(weights[rows][present[rows]].reshape(len(rows), m), axis=1)
        pairs = np.take_along_axis(pairs, order, 1)
        eu[rows, :m], ev[rows, :m] = iu[pairs], ju[pairs]
    return eu, ev, counts


_START, _FIND_U, _FIND_V, _UNION, _DONE = range(5)


def mst_kruskal(A: np.ndarray) -> Batch:
    """Kruskal with CLRS's union-find: edges i < j with A > 0, in `np.argsort` order of weight.

    Per edge: one hint on entry, one per path-compression step from u, then from v, one on union.
    Updates that only some instances make are scatters into flat arrays whose last cell is spare.
    """
    A = np.asarray(A)
    batch, n, _ = A.shape
    eu, ev, n_edges = kruskal_edges(A)
    edge_off = np.arange(batch) * eu.shape[1]
    eu, ev = eu.reshape(-1), ev.reshape(-1)
    off, spare = np.arange(batch) * n, batch * n
    pi_flat = np.append(np.tile(np.arange(n), batch), 0)
    pi = pi_flat[:-1].reshape(batch, n)
    mask_u_flat, mask_v_flat = np.zeros(batch * n + 1), np.zeros(batch * n + 1)
    mask_u, mask_v = mask_u_flat[:-1].reshape(batch, n), mask_v_flat[:-1].reshape(batch, n)
    mst_flat = np.zeros(batch * n * n + 1)
    in_mst = mst_flat[:-1].reshape(batch, n, n)
    u = np.zeros(batch, dtype=np.int64)
    v, root_u, root_v, edge, phase = u.copy(), u.copy(), u.copy(), u.copy(), u.copy()
    mode = np.where(n_edges > 0, _START, _DONE)
    tape = HintTape(2 + 4 * int(n_edges.max(initial=0)))

    def push(active: np.ndarray) -> None:
        tape.push(active, in_mst_h=in_mst, pi=pi, u=OneHot(u, n), v=OneHot(v, n),
                  root_u=OneHot(root_u, n), root_v=OneHot(root_v, n), mask_u=mask_u,
                  mask_v=mask_v, phase=OneHot(phase, 3))

    push(np.ones(batch, dtype=bool))
    while np.count_nonzero(active := mode != _DONE):
        np.putmask(mode, (mode == _FIND_U) & (pi_flat[off + root_u] == root_u), _FIND_V)
        np.putmask(mode, (mode == _FIND_V) & (pi_flat[off + root_v] == root_v), _UNION)
        start, union = mode == _START, mode == _UNION
        if np.count_nonzero(start):
            at = edge_off + np.minimum(edge, n_edges - 1)
            np.copyto(u, eu[at], where=start)
            np.copyto(v, ev[at], where=start)
            np.copyto(root_u, u, where=start)
            np.copyto(root_v, v, where=start)
            for mask_flat, mask, node in ((mask_u_flat, mask_u, u), (mask_v_flat, mask_v, v)):
                mask[start] = 0
                mask_flat[np.where(start, off + node, spare)] = 1
        for find, root, mask_flat, mask in ((mode == _FIND_U, root_u, mask_u_flat, mask_u),
                                            (mode == _FIND_V, root_v, mask_v_flat, mask_v)):
            if np.count_nonzero(find):  # root = pi[root]; the masked path points to it
                np.copyto(root, pi_flat[off + root], where=find)
                np.copyto(pi, root[:, None], where=find[:, None] & (mask == 1))
                mask_flat[np.where(find, off + root, spare)] = 1
        joined = union & (root_u != root_v)
        at = np.where(joined, off * n + u * n + v, batch * n * n)
        mst_flat[at] = 1
        mst_flat[np.where(joined, off * n + v * n + u, batch * n * n)] = 1
        low, high = np.minimum(root_u, root_v), np.maximum(root_u, root_v)
        pi_flat[np.where(joined, off + low, spare)] = high
        phase = np.where(mode == _FIND_V, 2, np.where(union, 0, 1))
        push(active)
        np.putmask(mode, start, _FIND_U)
        edge += union
        np.putmask(mode, union, np.where(edge < n_edges, _START, _DONE))
    hints, lengths = tape.finish()
    return Batch("mst_kruskal", _graph_inputs(A), hints, {"in_mst": in_mst}, lengths)


_BF_ROUND, _AUG_START, _AUG_STEP, _FLOW_DONE = range(4)


def bipartite_matching(A: np.ndarray, n: np.ndarray, m: np.ndarray, s: np.ndarray,
                       t: np.ndarray) -> Batch:
    """Edmonds-Karp on the unit flow network of a bipartite graph (not in CLRS-30).

    Shortest augmenting paths come from Bellman-Ford rounds on the residual graph (one hint per
    round, phase 0); each augmentation walks back from t (one hint per edge, phase 1). `n`, `m`
    are the part sizes; s = 0 and t = n + m + 1 are the super source and sink.
    """
    A = np.asarray(A)
    s, t = np.asarray(s, dtype=np.int64), np.asarray(t, dtype=np.int64)
    batch, size, _ = A.shape
    r, ids = rows(batch), np.arange(size)
    adj = graph_adj(A)
    residual = A.astype(np.float64)
    in_matching = np.zeros((batch, size, size)) + specs.OutputClass.MASKED + adj \
        + adj.transpose(0, 2, 1)
    u = t.copy()
    mode = np.full(batch, _BF_ROUND)

    def restart(idx: np.ndarray):
        d[idx], mask[idx], pi[idx] = 0.0, one_hot(s[idx], size), ids

    d, mask = np.zeros((batch, size)), np.zeros((batch, size))
    pi = np.broadcast_to(ids, (batch, size)).copy()
    restart(r)
    shown_d, shown_mask = d.copy(), mask.copy()
    tape = HintTape(4 * size)
    while (mode != _FLOW_DONE).any():
        bf = mode == _BF_ROUND
        step = np.nonzero(mode == _AUG_STEP)[0]
        back = pi[step, u[step]]
        forward = back < u[step]
        in_matching[step[forward], back[forward], u[step][forward]] = 1
        in_matching[step[~forward], u[step][~forward], back[~forward]] = 0
        residual[step, back, u[step]] = 0
        residual[step, u[step], back] = 1
        u[step] = back
        u = np.where(mode == _AUG_START, t, u)
        shown_d, shown_mask = np.where(bf[:, None], d, shown_d), np.where(bf[:, None], mask,
                                                                          shown_mask)
        tape.push(mode != _FLOW_DONE, in_matching_h=in_matching, A_h=residual,
                  adj_h=graph_adj(residual), d=shown_d, msk=shown_mask, pi=pi,
                  u=OneHot(u, size), phase=np.where(bf, 0, 1))

        cand = (residual != 0) & (shown_mask == 1)[:, :, None] & bf[:, None, None]
        val = np.where(cand, shown_d[:, :, None] + residual, np.inf)
        best, arg = val.min(1), val.argmin(1)
        take = cand.any(1) & ((shown_mask == 0) | (best < shown_d))
        d, pi = np.where(take, best, d), np.where(take, arg, pi)
        mask = np.where(take, 1.0, mask)
        settled = bf & (d == shown_d).all(1)
        found = bf & ~settled & (pi[r, t] != t)
        u = np.where(bf & ~settled, size - 1, u)  # the `for u` loop's last value
        walked = (mode == _AUG_STEP) & (pi[r, u] == u)
        restart(np.nonzero(walked)[0])
        mode = np.select([settled, found, mode == _AUG_START, walked],
                         [_FLOW_DONE, _AUG_START, _AUG_STEP, _BF_ROUND], mode)
    hints, lengths = tape.finish()
    inputs = {**_graph_inputs(A, s), "t": one_hot(t, size)}
    return Batch("bipartite_matching", inputs, hints, {"in_matching": in_matching}, lengths)
