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
CHECK = loop top, SCAN, RELAX). Every step costs a fixed, small number of numpy calls over the
whole batch: an update that only some instances make (colour u, set d[u], ...) is one scatter
into the flat node array, in which the other instances write to a spare cell at its end.
"""

from __future__ import annotations

import numpy as np

from repdyn.tasks.clrs import specs
from repdyn.tasks.clrs.probes import Batch, HintTape, OneHot, graph_adj, node_pos, one_hot

_START, _CHECK, _SCAN, _RELAX, _DONE = range(5)
_TIME_STEP = 0.01  # dm-clrs graphs.py: `time += 0.01` per discovery and per finish
_TIMED = ("dfs", "articulation_points", "bridges", "strongly_connected_components")  # time, d, f


class _Nodes:
    """A [B, n] node array (`grid`) and its flat view (`flat`) with one spare cell at the end.

    `flat[where(mask, cell, spare)] = value` updates only the masked instances in one call.
    """

    def __init__(self, batch: int, n: int, dtype, init: np.ndarray | None = None) -> None:
        self.flat = np.zeros(batch * n + 1, dtype=dtype)
        self.grid = self.flat[:-1].reshape(batch, n)
        if init is not None:
            self.grid[...] = init


class _DepthFirst:
    """Batched state of one DFS-family run (see the module docstring)."""

    def __init__(self, kind: str, A: np.ndarray, source: np.ndarray | None = None) -> None:
        batch, n, _ = A.shape
        self.kind, self.n = kind, n
        self.uses_d = kind in _TIMED  # these also discover u when d[u] == 0
        self.back_edges = kind in ("articulation_points", "bridges")
        self.topological = kind in ("topological_sort", "dag_shortest_paths")
        self.spare = batch * n  # the flat index of every node array's spare cell
        self.off = np.arange(batch) * n  # flat index of node 0 of each instance
        self.pos = np.arange(n)
        self.from_ = self.pos[None, :] >= np.arange(n + 1)[:, None]  # from_[k]: nodes >= k
        ids = np.broadcast_to(self.pos, (batch, n))
        self.edges = (A != 0).reshape(batch * n, n)  # row off + u: u's out-neighbours
        self.row_off = self.off.copy()  # where each instance's rows of `edges` start
        self.color = _Nodes(batch, n, np.int8)
        self.s_prev = _Nodes(batch, n, np.int64, ids)
        self.d, self.f = _Nodes(batch, n, np.float64), _Nodes(batch, n, np.float64)
        self.pi = _Nodes(batch, n, np.int64, ids)
        self.time = np.zeros(batch)
        self.s = np.zeros(batch, dtype=np.int64)
        self.u, self.v, self.s_last = self.s.copy(), self.s.copy(), self.s.copy()
        self.mode = np.full(batch, _START)
        self.roots = ids.copy()  # root order; next_root indexes it
        self.next_root = self.s.copy()
        self.phase = self.s.copy()
        if self.back_edges:
            self.resume = np.ones((batch, n), dtype=bool)  # where an E-interrupted scan goes on
            self.low = _Nodes(batch, n, np.float64)
            self.children_low = _Nodes(batch, n, np.float64, np.inf)  # min low of done children
        if kind == "articulation_points":
            self.child_cnt = _Nodes(batch, n, np.float64)
            self.is_cut = _Nodes(batch, n, np.float64)
            self.cut_child = _Nodes(batch, n, bool)  # a done child v has low[v] >= d[u]
        if kind == "bridges":
            self.is_bridge = np.zeros((batch, n, n)) + specs.OutputClass.MASKED + graph_adj(A)
            self.bridge_up = _Nodes(batch, n, bool)  # done v with low[v] > d[pi[v]]
            self.bridges_below = _Nodes(batch, n, np.int64)  # how many children are bridge_up
        if self.topological:
            self.topo = _Nodes(batch, n, np.int64, ids)
            self.topo_head = self.s.copy()
        if kind == "strongly_connected_components":
            self.scc_id = _Nodes(batch, n, np.int64, ids)
            A_t = np.transpose(A, (0, 2, 1))
            self.A_t_hint = graph_adj(A_t)
            self.edges = np.concatenate([self.edges, (A_t != 0).reshape(batch * n, n)])
        if kind == "dag_shortest_paths":
            self.roots[:] = np.asarray(source)[:, None]
            self.weights = A.reshape(batch * n, n)
            self.dist = _Nodes(batch, n, np.float64)
            self.mark = _Nodes(batch, n, np.float64)
        self._walked: tuple[np.ndarray, ...] | None = None  # this step's DFS events
        self._relaxed: tuple[np.ndarray, np.ndarray] | None = None  # relaxing, last relaxed

    # ----------------------------------------------------------------------------- hints
    def hints(self) -> dict[str, np.ndarray | OneHot]:
        """The variant's hint probes for the current state."""
        n = self.n
        common = {"color": OneHot(self.color.grid, 3), "s_prev": self.s_prev.grid,
                  "u": OneHot(self.u, n), "v": OneHot(self.v, n),
                  "s_last": OneHot(self.s_last, n)}
        if self.kind != "dag_shortest_paths":
            common["s"] = OneHot(self.s, n)
        timing = {"d": self.d.grid, "f": self.f.grid, "time": self.time}
        if self.kind == "dfs":
            return {"pi_h": self.pi.grid, **timing, **common}
        if self.kind == "articulation_points":
            return {"is_cut_h": self.is_cut.grid, "pi_h": self.pi.grid, "low": self.low.grid,
                    "child_cnt": self.child_cnt.grid, **timing, **common}
        if self.kind == "bridges":
            return {"is_bridge_h": self.is_bridge, "pi_h": self.pi.grid, "low": self.low.grid,
                    **timing, **common}
        if self.kind == "strongly_connected_components":
            return {"scc_id_h": self.scc_id.grid, "A_t": self.A_t_hint, "phase": self.phase,
                    **timing, **common}
        topo = {"topo_h": self.topo.grid, "topo_head_h": OneHot(self.topo_head, n)}
        if self.kind == "topological_sort":
            return {**topo, **common}
        return {"pi_h": self.pi.grid, "d": self.dist.grid, "mark": self.mark.grid,
                "phase": self.phase, **topo, **common}

    # ----------------------------------------------------------------------------- steps
    def step(self) -> np.ndarray:
        """Advance every unfinished instance to its next push; return who pushes."""
        mode = self.mode
        check, scan = mode == _CHECK, mode == _SCAN
        relax = mode == _RELAX if self.kind == "dag_shortest_paths" else None
        if np.count_nonzero(mode == _START):
            self._start(np.flatnonzero(mode == _START))
        self._walked = self._walk(check, scan) if np.count_nonzero(check | scan) else None
        self._relaxed = None
        if relax is not None and np.count_nonzero(relax):
            self._relaxed = relax, self._relax_mark(relax)
        return self.mode != _DONE

    def _walk(self, check: np.ndarray, scan: np.ndarray) -> tuple[np.ndarray, ...]:
        """The DFS proper: one push (B, C, E or D) of each `check` / `scan` instance."""
        cell_u = self.off + self.u
        discovered = self._discover(check, cell_u)
        scan |= check & ~discovered
        tree, back, finished, v = self._scan(scan, cell_u)
        self._tree_edge(tree, cell_u, v)
        if self.back_edges:
            self._back_edge(back, cell_u, v)
        self._finish(finished, cell_u)
        np.copyto(self.v, v, where=scan)
        np.copyto(self.v, self.n - 1, where=finished)
        return discovered, tree, back, finished

    def _start(self, idx: np.ndarray) -> None:
        """Pick the next white root for instances idx (push A), or end their run."""
        order = self.roots[idx]
        white = self.color.flat[self.off[idx, None] + order] == 0
        white &= self.from_[self.next_root[idx]]
        at = white.argmax(1)
        found = white[np.arange(len(idx)), at]
        if self.kind == "strongly_connected_components":
            switch = ~found & (self.phase[idx] == 0)
            if switch.any():
                self._second_pass(idx[switch])
                order[switch] = self.roots[idx[switch]]
                found[switch], at[switch] = True, 0
        ok = idx[found]
        s = order[found, at[found]]
        self.next_root[ok] = at[found] + 1
        self.s[ok] = self.u[ok] = self.v[ok] = self.s_last[ok] = s
        self.mode[ok] = _CHECK
        self.mode[idx[~found]] = _DONE

    def _second_pass(self, idx: np.ndarray) -> None:
        """Kosaraju's second pass: reset colours and stack, roots by decreasing finish time."""
        self.color.grid[idx] = 0
        self.s_prev.grid[idx] = self.pos
        self.roots[idx] = np.argsort(-self.f.grid[idx], axis=-1)
        self.phase[idx] = 1
        self.row_off[idx] += self.spare  # walk A^T's rows
        self.next_root[idx] = 0

    def _discover(self, check: np.ndarray, cell_u: np.ndarray) -> np.ndarray:
        """Loop top at u for the `check` instances: discover u where needed (push B)."""
        if self.kind == "strongly_connected_components":  # the second pass labels u first
            self.scc_id.flat[np.where(check & (self.phase == 1), cell_u, self.spare)] = self.s
        need = self.color.flat[cell_u] == 0
        if self.uses_d:
            need |= self.d.flat[cell_u] == 0.0
        need &= check
        cell = np.where(need, cell_u, self.spare)
        if self.uses_d:
            np.copyto(self.time, self.time + _TIME_STEP, where=need)
            self.d.flat[cell] = self.time
        if self.back_edges:
            self.low.flat[cell] = self.time
        self.color.flat[cell] = 1
        return need

    def _scan(self, scan: np.ndarray, cell_u: np.ndarray) -> tuple[np.ndarray, ...]:
        """The scan's next event at u: tree edge (C), back edge (E) or finish (D), and its v."""
        wanted = self.edges[self.row_off + self.u]
        white = self.color.grid == 0
        if self.back_edges:  # a non-white v != pi[u] is a back edge: E
            white_or_back = white | (self.pos != self.pi.flat[cell_u][:, None])
            wanted &= white_or_back & self.resume
        else:
            wanted &= white
        v = wanted.argmax(1)
        cell_v = self.off + v
        found = wanted.reshape(-1)[cell_v] & scan
        if self.back_edges:
            tree = found & (self.color.flat[cell_v] == 0)
            back = found & ~tree
        else:
            tree, back = found, None
        return tree, back, scan & ~found, v

    def _tree_edge(self, tree: np.ndarray, cell_u: np.ndarray, v: np.ndarray) -> None:
        """C: stack v on top of s_last (and make u its parent)."""
        cell = np.where(tree, self.off + v, self.spare)
        if self.kind in ("dfs", "articulation_points", "bridges"):
            self.pi.flat[cell] = self.u
        if self.kind == "articulation_points":
            at_u = np.where(tree, cell_u, self.spare)
            self.child_cnt.flat[at_u] += 0.01
        self.color.flat[cell] = 1
        self.s_prev.flat[cell] = self.s_last
        np.copyto(self.s_last, v, where=tree)

    def _back_edge(self, back: np.ndarray, cell_u: np.ndarray, v: np.ndarray) -> None:
        """E: low[u] = min(low[u], d[v]); the scan resumes after v."""
        cell = np.where(back, cell_u, self.spare)
        self.low.flat[cell] = np.minimum(self.low.flat[cell], self.d.flat[self.off + v])

    def _finish(self, finished: np.ndarray, cell_u: np.ndarray) -> None:
        """D: u is done (black, f[u] = time; low-links, cut vertices, bridges, topo order)."""
        cell = np.where(finished, cell_u, self.spare)
        self.color.flat[cell] = 2
        if self.uses_d:
            np.copyto(self.time, self.time + _TIME_STEP, where=finished)
            self.f.flat[cell] = self.time
        if self.back_edges:
            self._low_links(finished, cell)
        if self.topological:
            head = self.topo_head
            link = finished & (self.color.flat[self.off + head] == 2)
            self.topo.flat[np.where(link, cell_u, self.spare)] = head
            np.copyto(self.topo_head, self.u, where=finished)

    def _low_links(self, finished: np.ndarray, cell: np.ndarray) -> None:
        """At u's finish (cells `cell`): dm-clrs's loop over u's children, from running totals.

        Children finish before their parent with their low final, so each child's finish
        folds its low into its parent's `children_low` (and `cut_child` / `bridge_up`); u's
        finish then reads them. A root counts itself as its child in dm-clrs, harmlessly.
        """
        low = np.minimum(self.low.flat[cell], self.children_low.flat[cell])
        self.low.flat[cell] = low
        if self.kind == "articulation_points":
            is_root = self.pi.flat[cell] == self.u
            cut = np.where(is_root, self.child_cnt.flat[cell] > 0.01, self.cut_child.flat[cell])
            self.is_cut.flat[np.where(cut, cell, self.spare)] = 1
        else:
            self._bridges_at(finished & (self.bridges_below.flat[cell] > 0))
        parent = np.where(finished, self.off + self.pi.flat[cell], self.spare)
        self.children_low.flat[parent] = np.minimum(self.children_low.flat[parent], low)
        if self.kind == "articulation_points":
            self.cut_child.flat[parent] |= low >= self.d.flat[parent]
        else:
            up = finished & (low > self.d.flat[parent])
            self.bridge_up.flat[np.where(up, cell, self.spare)] = True
            self.bridges_below.flat[np.where(up, parent, self.spare)] += 1

    def _bridges_at(self, idx_mask: np.ndarray) -> None:
        """Mark the bridges from the finishing u to its `bridge_up` children."""
        idx = np.flatnonzero(idx_mask)
        if not len(idx):
            return
        u = self.u[idx]
        b, w = np.nonzero((self.pi.grid[idx] == u[:, None]) & self.bridge_up.grid[idx])
        self.is_bridge[idx[b], u[b], w] = 1
        self.is_bridge[idx[b], w, u[b]] = 1

    def _relax_mark(self, relax: np.ndarray) -> np.ndarray:
        """DAG shortest paths' relaxation: mark the node at the list's head (push phase 1)."""
        cell_head = self.off + self.topo_head
        last = relax & (self.topo.flat[cell_head] == self.topo_head)
        self.mark.flat[np.where(relax & ~last, cell_head, self.spare)] = 1
        return last

    def after_push(self) -> None:
        """State changes that dm-clrs makes after a push, before the next one."""
        if self._walked is not None:
            self._after_walk(*self._walked)
        if self._relaxed is not None:
            relax, last = self._relaxed
            self._relax(relax & ~last)
            np.putmask(self.mode, last, _DONE)

    def _after_walk(self, discovered: np.ndarray, tree: np.ndarray, back: np.ndarray,
                    finished: np.ndarray) -> None:
        """After a DFS push: go down to the stacked v, pop after a finish, or end the tree."""
        cell_u = self.off + self.u
        parent = self.s_prev.flat[cell_u]
        pop = finished & (parent != self.u)
        self.s_prev.flat[np.where(pop, cell_u, self.spare)] = self.u
        np.copyto(self.s_last, parent, where=pop)
        moved = tree | pop
        np.copyto(self.u, self.s_last, where=moved)
        np.putmask(self.mode, moved, _CHECK)
        np.putmask(self.mode, discovered, _SCAN)
        if self.back_edges:  # an E push continues the scan after v; any other starts afresh
            self.resume[...] = True
            self.resume[back] = self.from_[self.v[back] + 1]
        tree_done = finished ^ pop
        if self.kind != "dag_shortest_paths":
            np.putmask(self.mode, tree_done, _START)
        elif np.count_nonzero(tree_done):
            self._begin_relax(tree_done)

    def _begin_relax(self, done: np.ndarray) -> None:
        """DAG shortest paths, after the DFS from s: d[s] = 0, s marked, relax in topo order."""
        self.mark.flat[np.where(done, self.off + self.topo_head, self.spare)] = 1
        np.putmask(self.phase, done, 1)
        np.putmask(self.mode, done, _RELAX)

    def _relax(self, now: np.ndarray) -> None:
        """Relax the out-edges of the head i of the topological list, then move on."""
        i = self.topo_head
        cell_i = self.off + i
        dist, mark = self.dist.grid, self.mark.grid
        new = self.dist.flat[cell_i][:, None] + self.weights[cell_i]
        take = self.edges[cell_i] & ((mark == 0) | (new < dist)) & now[:, None]
        np.copyto(dist, new, where=take)
        np.copyto(self.pi.grid, i[:, None], where=take)
        np.copyto(mark, 1.0, where=take)
        np.copyto(self.topo_head, self.topo.flat[cell_i], where=now)


_CAPACITY = {"dfs": 3, "topological_sort": 3}  # dfs: exactly 3n pushes; topo: 2n + roots


def _run(kind: str, A: np.ndarray, source: np.ndarray | None = None) -> _DepthFirst:
    state = _DepthFirst(kind, A, source)
    tape = HintTape(_CAPACITY.get(kind, 6) * A.shape[1])
    while True:
        pushed = state.step()
        if not pushed.any():
            break
        tape.push(pushed, **state.hints())
        state.after_push()
    state.hint_trace, state.lengths = tape.finish()
    return state


def _batch(kind: str, A: np.ndarray, state: _DepthFirst, outputs: dict[str, np.ndarray],
           s: np.ndarray | None = None) -> Batch:
    batch, n, _ = A.shape
    inputs = {"pos": node_pos(batch, n), "A": A.copy(), "adj": graph_adj(A)}
    if s is not None:
        inputs["s"] = one_hot(s, n)
    return Batch(kind, inputs, state.hint_trace, outputs, state.lengths)


def dfs(A: np.ndarray) -> Batch:
    """Depth-first search over roots 0..n-1; output the DFS forest's parent pointers."""
    A = np.asarray(A)
    state = _run("dfs", A)
    return _batch("dfs", A, state, {"pi": state.pi.grid})


def topological_sort(A: np.ndarray) -> Batch:
    """Topological sort: a linked list of finished nodes, head = last finished."""
    A = np.asarray(A)
    state = _run("topological_sort", A)
    return _batch("topological_sort", A, state,
                  {"topo": state.topo.grid, "topo_head": one_hot(state.topo_head, A.shape[1])})


def articulation_points(A: np.ndarray) -> Batch:
    """Articulation points via DFS low-links."""
    A = np.asarray(A)
    state = _run("articulation_points", A)
    return _batch("articulation_points", A, state, {"is_cut": state.is_cut.grid})


def bridges(A: np.ndarray) -> Batch:
    """Bridges via DFS low-links; non-edges are masked (-1)."""
    A = np.asarray(A)
    state = _run("bridges", A)
    return _batch("bridges", A, state, {"is_bridge": state.is_bridge})


def strongly_connected_components(A: np.ndarray) -> Batch:
    """Kosaraju: DFS on A, then DFS on A^T by decreasing finish time; scc_id = that root."""
    A = np.asarray(A)
    state = _run("strongly_connected_components", A)
    return _batch("strongly_connected_components", A, state, {"scc_id": state.scc_id.grid})


def dag_shortest_paths(A: np.ndarray, s: np.ndarray) -> Batch:
    """DAG shortest paths: DFS topological order from s, then relaxation along it."""
    A, s = np.asarray(A), np.asarray(s, dtype=np.int64)
    state = _run("dag_shortest_paths", A, s)
    return _batch("dag_shortest_paths", A, state, {"pi": state.pi.grid}, s)
