"""Graph algorithms built on CLRS's stack-based DFS: DFS, topological sort, articulation points,
bridges, strongly connected components (Kosaraju) and DAG shortest paths.

dm-clrs writes DFS iteratively: `s_prev` links the stack, `s_last` is its top, and a node is
coloured grey when stacked. One loop turn at node u may push these hints:
  A  a new tree starts at root s (u = v = s);
  B  u is discovered (time += 0.01, d[u] = time), when `color[u] == 0` (or `d[u] == 0` where
     the variant checks it);
  C  the first white v with A[u, v] != 0 is stacked (scan from v = 0, `break`);
  E  (articulation points, bridges) a non-white v != pi[u] lowers low[u]; the scan goes on;
  D  no white neighbour left: u finishes (v = n - 1, the loop variable's last value), and the
     stack pops.
Roots are tried in index order (Kosaraju's second pass: by decreasing finish time, on A^T;
DAG shortest paths: s only, then one hint per node relaxed in topological order and a last one).
`_DepthFirst` replays exactly this for a batch, one push per instance per step (modes START,
CHECK = loop top, SCAN, RELAX), with each variant's extra bookkeeping in small hooks.
"""

from __future__ import annotations

import numpy as np

from repdyn.tasks.clrs import specs
from repdyn.tasks.clrs.probes import Batch, HintTape, OneHot, graph_adj, node_pos, one_hot, rows

_START, _CHECK, _SCAN, _RELAX, _DONE = range(5)
_TIME_STEP = 0.01  # dm-clrs graphs.py: `time += 0.01` per discovery and per finish


class _DepthFirst:
    """Batched state of one DFS-family run (see the module docstring)."""

    def __init__(self, kind: str, A: np.ndarray, source: np.ndarray | None = None) -> None:
        self.kind = kind
        self.A = A
        batch, n, _ = A.shape
        self.n, self.r = n, rows(batch)
        self.color = np.zeros((batch, n), dtype=np.int64)
        self.pi = np.broadcast_to(np.arange(n), (batch, n)).copy()
        self.d = np.zeros((batch, n))
        self.f = np.zeros((batch, n))
        self.s_prev = self.pi.copy()
        self.time = np.zeros(batch)
        self.s = np.zeros(batch, dtype=np.int64)
        self.u, self.v, self.s_last = self.s.copy(), self.s.copy(), self.s.copy()
        self.mode = np.full(batch, _START)
        self.next_root = np.zeros(batch, dtype=np.int64)  # index into `roots`
        self.next_v = np.zeros(batch, dtype=np.int64)  # where the scan at u resumes
        self.roots = np.broadcast_to(np.arange(n), (batch, n)).copy()
        self.n_roots = np.full(batch, n)
        self.uses_d = kind not in ("topological_sort", "dag_shortest_paths")
        self.back_edges = kind in ("articulation_points", "bridges")
        if kind in ("articulation_points", "bridges"):
            self.low = np.zeros((batch, n))
        if kind == "articulation_points":
            self.child_cnt = np.zeros((batch, n))
            self.is_cut = np.zeros((batch, n))
        if kind == "bridges":
            self.is_bridge = np.zeros((batch, n, n)) + specs.OutputClass.MASKED + graph_adj(A)
        if kind in ("topological_sort", "dag_shortest_paths"):
            self.topo = self.pi.copy()
            self.topo_head = np.zeros(batch, dtype=np.int64)
        if kind == "strongly_connected_components":
            self.scc_id = self.pi.copy()
            self.phase = np.zeros(batch, dtype=np.int64)
            self.A_t_hint = graph_adj(np.transpose(A, (0, 2, 1)))
        if kind == "dag_shortest_paths":
            self.roots[:, 0] = source
            self.n_roots[:] = 1
            self.dist = np.zeros((batch, n))
            self.mark = np.zeros((batch, n))
            self.phase = np.zeros(batch, dtype=np.int64)

    # ----------------------------------------------------------------------------- hints
    def hints(self) -> dict[str, np.ndarray]:
        """The variant's hint probes for the current state."""
        n = self.n
        common = {"color": OneHot(self.color, 3), "s_prev": self.s_prev,
                  "u": OneHot(self.u, n), "v": OneHot(self.v, n),
                  "s_last": OneHot(self.s_last, n)}
        if self.kind != "dag_shortest_paths":
            common["s"] = OneHot(self.s, n)
        timing = {"d": self.d, "f": self.f, "time": self.time}
        if self.kind == "dfs":
            return {"pi_h": self.pi, **timing, **common}
        if self.kind == "articulation_points":
            return {"is_cut_h": self.is_cut, "pi_h": self.pi, "low": self.low,
                    "child_cnt": self.child_cnt, **timing, **common}
        if self.kind == "bridges":
            return {"is_bridge_h": self.is_bridge, "pi_h": self.pi, "low": self.low,
                    **timing, **common}
        if self.kind == "strongly_connected_components":
            return {"scc_id_h": self.scc_id, "A_t": self.A_t_hint, "phase": self.phase,
                    **timing, **common}
        topo = {"topo_h": self.topo, "topo_head_h": OneHot(self.topo_head, n)}
        if self.kind == "topological_sort":
            return {**topo, **common}
        return {"pi_h": self.pi, "d": self.dist, "mark": self.mark, "phase": self.phase,
                **topo, **common}

    # ----------------------------------------------------------------------------- steps
    def _start(self, idx: np.ndarray) -> np.ndarray:
        """Pick the next white root for instances idx; return those that found one."""
        pos = np.arange(self.n)
        white = (np.take_along_axis(self.color[idx], self.roots[idx], 1) == 0)
        white &= (pos >= self.next_root[idx, None]) & (pos < self.n_roots[idx, None])
        found, at = white.any(1), white.argmax(1)
        if self.kind == "strongly_connected_components":
            switch = ~found & (self.phase[idx] == 0)
            if switch.any():
                self._second_pass(idx[switch])
                found[switch] = True
                at[switch] = 0
        ok, miss = idx[found], idx[~found]
        s = self.roots[ok, at[found]]
        self.next_root[ok] = at[found] + 1
        self.s[ok] = self.u[ok] = self.v[ok] = self.s_last[ok] = s
        self.mode[ok] = _CHECK
        self.mode[miss] = _DONE
        return ok

    def _second_pass(self, idx: np.ndarray) -> None:
        """Kosaraju's second pass: reset colours and stack, roots by decreasing finish time."""
        self.color[idx] = 0
        self.s_prev[idx] = np.arange(self.n)
        self.roots[idx] = np.argsort(-self.f[idx], axis=-1)
        self.phase[idx] = 1

    def _discover(self, idx: np.ndarray) -> np.ndarray:
        """Loop top for idx: discover u if needed; return the instances that pushed."""
        u = self.u[idx]
        if self.kind == "strongly_connected_components":
            second = idx[self.phase[idx] == 1]
            self.scc_id[second, self.u[second]] = self.s[second]
        need = self.color[idx, u] == 0
        if self.uses_d:
            need |= self.d[idx, u] == 0.0
        hit, hu = idx[need], u[need]
        if self.uses_d:
            self.time[hit] += _TIME_STEP
            self.d[hit, hu] = self.time[hit]
        if self.back_edges:
            self.low[hit, hu] = self.time[hit]
        self.color[hit, hu] = 1
        self.mode[idx] = _SCAN
        self.next_v[idx] = 0
        return hit

    def _scan(self, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Next event at u for idx: tree edge (C), back edge (E) or finish (D)."""
        u = self.u[idx]
        graph = self.A[idx, u]
        if self.kind == "strongly_connected_components":  # the second pass walks A^T
            graph = np.where(self.phase[idx, None] == 1, self.A[idx, :, u], graph)
        pos = np.arange(self.n)
        white = self.color[idx] == 0
        wanted = white | (pos != self.pi[idx, u][:, None]) if self.back_edges else white
        wanted &= (graph != 0) & (pos >= self.next_v[idx, None])
        found, v = wanted.any(1), wanted.argmax(1)
        tree = found & white[np.arange(len(idx)), v]
        back = found & ~tree
        self._tree_edge(idx[tree], u[tree], v[tree])
        if self.back_edges:
            self._back_edge(idx[back], u[back], v[back])
        self._finish(idx[~found], u[~found])
        return idx[tree], idx[back], idx[~found]

    def _tree_edge(self, idx: np.ndarray, u: np.ndarray, v: np.ndarray) -> None:
        if self.kind in ("dfs", "articulation_points", "bridges"):
            self.pi[idx, v] = u
        if self.kind == "articulation_points":
            self.child_cnt[idx, u] += 0.01
        self.color[idx, v] = 1
        self.s_prev[idx, v] = self.s_last[idx]
        self.s_last[idx] = v
        self.v[idx] = v

    def _back_edge(self, idx: np.ndarray, u: np.ndarray, v: np.ndarray) -> None:
        self.low[idx, u] = np.minimum(self.low[idx, u], self.d[idx, v])
        self.v[idx] = v
        self.next_v[idx] = v + 1

    def _finish(self, idx: np.ndarray, u: np.ndarray) -> None:
        self.v[idx] = self.n - 1
        self.color[idx, u] = 2
        if self.uses_d:
            self.time[idx] += _TIME_STEP
            self.f[idx, u] = self.time[idx]
        if self.kind in ("articulation_points", "bridges"):
            children = self.pi[idx] == u[:, None]
            low_u = np.where(children, self.low[idx], np.inf).min(1)
            self.low[idx, u] = np.minimum(self.low[idx, u], low_u)
            d_u = self.d[idx, u][:, None]
            if self.kind == "articulation_points":
                is_root = self.pi[idx, u] == u
                cut = ~is_root & (children & (self.low[idx] >= d_u)).any(1)
                cut |= is_root & (self.child_cnt[idx, u] > 0.01)
                self.is_cut[idx[cut], u[cut]] = 1
            else:
                bridge = children & (self.low[idx] > d_u) & (np.arange(self.n) != u[:, None])
                b, w = np.nonzero(bridge)
                self.is_bridge[idx[b], u[b], w] = 1
                self.is_bridge[idx[b], w, u[b]] = 1
        if self.kind in ("topological_sort", "dag_shortest_paths"):
            head = self.topo_head[idx]
            link = self.color[idx, head] == 2
            self.topo[idx[link], u[link]] = head[link]
            self.topo_head[idx] = u

    def _after_finish(self, idx: np.ndarray) -> None:
        """After a D push: end the tree at its root, else pop the stack."""
        u = self.u[idx]
        done = self.s_prev[idx, u] == u
        if self.kind == "dag_shortest_paths":
            self._begin_relax(idx[done])
        else:
            self.mode[idx[done]] = _START
        pop = idx[~done]
        top = self.s_last[pop]
        parent = self.s_prev[pop, top]
        self.s_prev[pop, top] = top
        self.s_last[pop] = self.u[pop] = parent
        self.mode[pop] = _CHECK

    def _begin_relax(self, idx: np.ndarray) -> None:
        """DAG shortest paths, after the DFS from s: relax nodes in topological order."""
        self.dist[idx, self.topo_head[idx]] = 0
        self.mark[idx, self.topo_head[idx]] = 1
        self.phase[idx] = 1
        self.mode[idx] = _RELAX

    def step(self) -> np.ndarray:
        """Advance every unfinished instance by one push; return who pushed (before pushing)."""
        pushed = np.zeros(len(self.mode), dtype=bool)
        started = np.nonzero(self.mode == _START)[0]
        if len(started):
            pushed[self._start(started)] = True
        checking = np.nonzero((self.mode == _CHECK) & ~pushed)[0]
        if len(checking):
            pushed[self._discover(checking)] = True
        scanning = np.nonzero((self.mode == _SCAN) & ~pushed)[0]
        self._events = self._scan(scanning) if len(scanning) else None
        pushed[scanning] = True
        relaxing = np.nonzero(self.mode == _RELAX)[0]
        head = self.topo_head[relaxing] if len(relaxing) else relaxing
        last = self.topo[relaxing, head] == head if len(relaxing) else relaxing.astype(bool)
        self._relax_last, self._relax_now = relaxing[last], relaxing[~last]
        if len(self._relax_now):
            self.mark[self._relax_now, self.topo_head[self._relax_now]] = 1
        pushed[relaxing] = True
        return pushed

    def after_push(self) -> None:
        """State changes that dm-clrs makes after a push, before the next one."""
        if self._events is not None:
            tree, back, finished = self._events
            self.u[tree] = self.s_last[tree]
            self.mode[tree] = _CHECK
            self._after_finish(finished)
        if self.kind == "dag_shortest_paths":
            self.mode[self._relax_last] = _DONE
            idx = self._relax_now
            i = self.topo_head[idx]
            w = self.A[idx, i]
            new = self.dist[idx, i][:, None] + w
            take = (w != 0.0) & ((self.mark[idx] == 0) | (new < self.dist[idx]))
            self.dist[idx] = np.where(take, new, self.dist[idx])
            self.pi[idx] = np.where(take, i[:, None], self.pi[idx])
            self.mark[idx] = np.where(take, 1.0, self.mark[idx])
            self.topo_head[idx] = self.topo[idx, i]


def _run(kind: str, A: np.ndarray, source: np.ndarray | None = None) -> tuple[_DepthFirst, dict,
                                                                                np.ndarray]:
    state = _DepthFirst(kind, A, source)
    tape = HintTape(4 * A.shape[1])
    while True:
        pushed = state.step()
        if not pushed.any():
            break
        tape.push(pushed, **state.hints())
        state.after_push()
    hints, lengths = tape.finish()
    return state, hints, lengths


def _inputs(A: np.ndarray, s: np.ndarray | None = None) -> dict[str, np.ndarray]:
    batch, n, _ = A.shape
    inputs = {"pos": node_pos(batch, n), "A": A.copy(), "adj": graph_adj(A)}
    if s is not None:
        inputs["s"] = one_hot(s, n)
    return inputs


def dfs(A: np.ndarray) -> Batch:
    """Depth-first search over roots 0..n-1; output the DFS forest's parent pointers."""
    A = np.asarray(A)
    state, hints, lengths = _run("dfs", A)
    return Batch("dfs", _inputs(A), hints, {"pi": state.pi}, lengths)


def topological_sort(A: np.ndarray) -> Batch:
    """Topological sort: a linked list of finished nodes, head = last finished."""
    A = np.asarray(A)
    state, hints, lengths = _run("topological_sort", A)
    return Batch("topological_sort", _inputs(A), hints,
                 {"topo": state.topo, "topo_head": one_hot(state.topo_head, A.shape[1])},
                 lengths)


def articulation_points(A: np.ndarray) -> Batch:
    """Articulation points via DFS low-links."""
    A = np.asarray(A)
    state, hints, lengths = _run("articulation_points", A)
    return Batch("articulation_points", _inputs(A), hints, {"is_cut": state.is_cut}, lengths)


def bridges(A: np.ndarray) -> Batch:
    """Bridges via DFS low-links; non-edges are masked (-1)."""
    A = np.asarray(A)
    state, hints, lengths = _run("bridges", A)
    return Batch("bridges", _inputs(A), hints, {"is_bridge": state.is_bridge}, lengths)


def strongly_connected_components(A: np.ndarray) -> Batch:
    """Kosaraju: DFS on A, then DFS on A^T by decreasing finish time; scc_id = that root."""
    A = np.asarray(A)
    state, hints, lengths = _run("strongly_connected_components", A)
    return Batch("strongly_connected_components", _inputs(A), hints,
                 {"scc_id": state.scc_id}, lengths)


def dag_shortest_paths(A: np.ndarray, s: np.ndarray) -> Batch:
    """DAG shortest paths: DFS topological order from s, then relaxation along it."""
    A, s = np.asarray(A), np.asarray(s, dtype=np.int64)
    state, hints, lengths = _run("dag_shortest_paths", A, s)
    return Batch("dag_shortest_paths", _inputs(A, s), hints, {"pi": state.pi}, lengths)
