"""Samplers with CLRS's input distributions, consuming the random stream exactly as dm-clrs does.

`Sampler(name, num_samples, length, seed=..., **kwargs)` mirrors dm-clrs's
`build_sampler(name, num_samples, length=length, seed=seed, **kwargs)` (clrs.md §2): one
`np.random.RandomState(seed)` drives every draw, in the same order and with the same calls, so
the data are bit-identical; `next(batch_size)` draws batches from a fixed dataset with
replacement (num_samples > 0) or generates them on the fly (num_samples < 0, after the 1000-sample
warm-up that estimates the padding length when `track_max_steps`). The algorithms run on the
whole batch at once. Input draws are made instance by instance (`GENERATORS`, one per dm-clrs
`_sample_data`), or - for the graph, sorting and search samplers - for the whole batch at once
(`BATCH_GENERATORS`), reading the Mersenne Twister's raw words in the order the per-instance
calls would (numpy's legacy `binomial`, `randint`, `permutation` and `uniform` replayed).
"""

from __future__ import annotations

import copy
import inspect
import itertools
import math
import warnings
from functools import lru_cache
from typing import Any, Callable

import numpy as np

from repdyn.bench.errors import UserError
from repdyn.tasks.clrs import specs
from repdyn.tasks.clrs.algorithms import run_batch
from repdyn.tasks.clrs.probes import Batch


def bernoulli(rng: np.random.RandomState, p: float, size: tuple[int, ...]) -> np.ndarray:
    """`rng.binomial(1, p, size)`, bit for bit and leaving `rng` in the same state, but fast.

    numpy's legacy binomial with n = 1 is an inversion (CLRS's graphs use it per edge): one
    uniform U per draw, X = [U > q^n] for p <= 0.5 (mirrored for p > 0.5), and - only when
    U - q^n > p q^n / q in float arithmetic, a case of probability ~1e-16 - a redraw. Drawing
    all U with `random_sample` consumes the same stream; a redraw, if ever, is replayed exactly.
    """
    flip = p > 0.5
    p_eff = 1.0 - p if flip else p
    q = 1.0 - p_eff
    qn = math.exp(1 * math.log(q))  # q >= 0.5; numpy computes exp(n log q) with libm too
    count = math.prod(size)
    u = rng.random_sample(count)
    x = u > qn
    if np.any(x & (u - qn > (p_eff * qn) / q)):
        x = np.array(_inversion_draws(rng, list(u), p_eff, q, qn, count), dtype=bool)
    out = (~x if flip else x).astype(np.int64)
    return out.reshape(size)


def _inversion_draws(rng: np.random.RandomState, us: list, p: float, q: float, qn: float,
                     count: int) -> list[bool]:
    """numpy's `legacy_random_binomial_inversion` for n = 1, replayed draw by draw."""
    out, k = [], 0

    def next_u() -> float:
        nonlocal k
        if k == len(us):
            us.append(float(rng.random_sample()))
        k += 1
        return us[k - 1]

    for _ in range(count):
        x, px, u = 0, qn, next_u()
        while u > px:
            x += 1
            if x > 1:  # bound = min(n, np + 10 sqrt(npq + 1)) = 1
                x, px, u = 0, qn, next_u()
            else:
                u -= px
                px = ((1 - x + 1) * p * px) / (x * q)
        out.append(x == 1)
    return out


class _Draws:
    """dm-clrs's sampler helpers (`_random_sequence`, `_random_er_graph`, ...) on one RNG."""

    def __init__(self, rng: np.random.RandomState, truncate_decimals: int | None) -> None:
        self.rng = rng
        self.truncate_decimals = truncate_decimals

    def sequence(self, length: int, low: float = 0.0, high: float = 1.0) -> np.ndarray:
        return self.rng.uniform(low=low, high=high, size=(length,))

    def string(self, length: int, chars: int = 4) -> np.ndarray:
        return self.rng.randint(0, high=chars, size=(length,))

    def er_graph(self, n: int, p: float = 0.5, directed: bool = False, acyclic: bool = False,
                 weighted: bool = False, low: float = 0.0, high: float = 1.0) -> np.ndarray:
        """Erdos-Renyi graph with self-loops possible (clrs.md §2.2)."""
        mat = bernoulli(self.rng, p, (n, n))
        if not directed:
            mat = mat * mat.T
        elif acyclic:
            mat = np.triu(mat, k=1)
            perm = self.rng.permutation(n)
            mat = mat[perm, :][:, perm]
        if weighted:
            weights = self.rng.uniform(low=low, high=high, size=(n, n))
            if not directed:
                weights = np.sqrt(weights * weights.T + 1e-3)  # clrs.md §2.2
            mat = mat.astype(float) * weights
        return mat

    def community_graph(self, n: int, k: int = 4, p: float = 0.5, eps: float = 0.01,
                        directed: bool = False, acyclic: bool = False, weighted: bool = False,
                        low: float = 0.0, high: float = 1.0) -> np.ndarray:
        """k dense ER communities plus eps-sparse links that close no new cycles, permuted."""
        if k > n:
            raise UserError(f"community graph: k={k} communities need at least {k} nodes, got {n}")
        mat = np.zeros((n, n))
        bounds = []
        lo = 0
        for i in range(k):
            hi = n if i == k - 1 else lo + n // k
            mat[lo:hi, lo:hi] = self.er_graph(hi - lo, p, directed, acyclic, weighted, low, high)
            bounds.append((lo, hi))
            lo = hi
        toggle = self.er_graph(n, eps, directed, acyclic, weighted, low, high)
        for i, (lo_i, hi_i) in enumerate(bounds):
            for lo_j, hi_j in bounds[:i]:
                toggle[lo_i:hi_i, lo_j:hi_j] *= 0
        mat = np.where(toggle > 0.0, (1.0 - (mat > 0.0)) * toggle, mat)
        perm = self.rng.permutation(n)
        return mat[perm, :][:, perm]

    def choice(self, a: Any) -> Any:
        """`rng.choice(a)` for an int or a 1-d sequence, drawn via the same `randint` call."""
        if isinstance(a, (int, np.integer)):
            return self.rng.randint(0, a)
        if len(a) == 1:  # randint(0, 1) draws nothing from the stream
            return a[0]
        return a[self.rng.randint(0, len(a))]

    def truncate(self, data: Any) -> Any:
        """dm-clrs's `_trunc_array`: truncate float arrays and floats to the set decimals."""
        if not self.truncate_decimals:
            return data
        data = copy.deepcopy(data)
        scale = 10 ** self.truncate_decimals
        for i in range(len(data)):
            x = data[i]
            if isinstance(x, np.ndarray) and np.issubdtype(x.dtype, np.floating):
                data[i] = np.trunc(x * scale) / scale
            elif isinstance(x, float):
                data[i] = float(np.trunc(x * scale) / scale)
        return data


# ---------------------------------------------------------------- input generators (one instance)
# Each mirrors one dm-clrs `_sample_data`; keyword names and defaults are CLRS's (clrs.md §2.2).

def _sorting(d: _Draws, length: int, low: float = 0.0, high: float = 1.0) -> list:
    return [d.sequence(length, low, high)]


def _search(d: _Draws, length: int, low: float = 0.0, high: float = 1.0) -> list:
    arr = d.sequence(length, low, high)
    arr.sort()
    return [d.rng.uniform(low=low, high=high), arr]


def _max_subarray(d: _Draws, length: int, low: float = -1.0, high: float = 1.0) -> list:
    return [d.sequence(length, low, high)]


def _lcs(d: _Draws, length: int, length_2: int | None = None, chars: int = 4) -> list:
    if length_2 is None:
        length_2 = length // 2
        length -= length_2
    return [d.string(length, chars), d.string(length_2, chars)]


def _optimal_bst(d: _Draws, length: int) -> list:
    arr = d.sequence(2 * length + 1)
    arr /= np.sum(arr)
    return [arr[:length], arr[length:]]


def _activity(d: _Draws, length: int, low: float = 0.0, high: float = 1.0) -> list:
    a, b = d.sequence(length, low, high), d.sequence(length, low, high)
    return [np.minimum(a, b), np.maximum(a, b)]


def _task(d: _Draws, length: int, max_deadline: int | None = None, low: float = 0.0,
          high: float = 1.0) -> list:
    deadlines = d.string(length, length if max_deadline is None else max_deadline) + 1
    return [deadlines, d.sequence(length, low, high)]


def _dfs(d: _Draws, length: int, p: tuple = (0.5,)) -> list:
    return [d.er_graph(length, d.choice(p), directed=True)]


def _bfs(d: _Draws, length: int, p: tuple = (0.5,)) -> list:
    graph = d.er_graph(length, d.choice(p))
    return [graph, d.choice(length)]


def _topo(d: _Draws, length: int, p: tuple = (0.5,)) -> list:
    return [d.er_graph(length, d.choice(p), directed=True, acyclic=True)]


def _articulation(d: _Draws, length: int, p: tuple = (0.2,)) -> list:
    return [d.er_graph(length, d.choice(p))]


def _mst(d: _Draws, length: int, p: tuple = (0.2,), low: float = 0.0, high: float = 1.0) -> list:
    return [d.er_graph(length, d.choice(p), weighted=True, low=low, high=high)]


def _bellman_ford(d: _Draws, length: int, p: tuple = (0.5,), low: float = 0.0,
                  high: float = 1.0) -> list:
    graph = d.er_graph(length, d.choice(p), weighted=True, low=low, high=high)
    return [graph, d.choice(length)]


def _dag_path(d: _Draws, length: int, p: tuple = (0.5,), low: float = 0.0,
              high: float = 1.0) -> list:
    graph = d.er_graph(length, d.choice(p), directed=True, acyclic=True, weighted=True,
                       low=low, high=high)
    return [graph, d.choice(length)]


def _floyd_warshall(d: _Draws, length: int, p: tuple = (0.5,), low: float = 0.0,
                    high: float = 1.0) -> list:
    return [d.er_graph(length, d.choice(p), weighted=True, low=low, high=high)]


def _scc(d: _Draws, length: int, k: int = 4, p: tuple = (0.5,), eps: float = 0.01) -> list:
    return [d.community_graph(length, k=k, p=d.choice(p), eps=eps, directed=True)]


def _bipartite(d: _Draws, length: int, length_2: int | None = None, p: tuple = (0.3,)) -> list:
    if length_2 is None:
        length_2 = length // 2
        length -= length_2
    n, m = length, length_2
    prob = d.choice(p)
    mat = np.zeros((n + m + 2, n + m + 2))
    mat[0, 1:n + 1] = 1.0  # supersource
    mat[n + 1:n + m + 1, n + m + 1] = 1.0  # supersink
    mat[1:n + 1, n + 1:n + m + 1] = d.rng.binomial(1, prob, size=(n, m))
    return [mat, n, m, 0, n + m + 1]


def _matcher(d: _Draws, length: int, length_needle: int | None = None, chars: int = 4) -> list:
    if length_needle is None:
        length_needle = 1 if length < 5 else length // 5
    elif length_needle < 0:  # random needle length in 1..-length_needle
        length_needle = d.rng.randint(1, high=1 - length_needle)
    length_haystack = length - length_needle
    needle = d.string(length_needle, chars)
    haystack = d.string(length_haystack, chars)
    at = d.choice(length_haystack - length_needle)
    haystack[at:at + length_needle] = needle
    return [haystack, needle]


def _segments(d: _Draws, length: int, low: float = 0.0, high: float = 1.0) -> list:
    def ccw(xa, ya, xb, yb, xc, yc):
        return (yc - ya) * (xb - xa) > (yb - ya) * (xc - xa)

    def intersect(x, y):
        return (ccw(x[0], y[0], x[2], y[2], x[3], y[3]) != ccw(x[1], y[1], x[2], y[2], x[3], y[3])
                and ccw(x[0], y[0], x[1], y[1], x[2], y[2])
                != ccw(x[0], y[0], x[1], y[1], x[3], y[3]))

    coin = d.rng.binomial(1, 0.5)  # half the samples intersect
    xs, ys = d.sequence(4, low, high), d.sequence(4, low, high)
    while intersect(xs, ys) != coin:
        xs, ys = d.sequence(4, low, high), d.sequence(4, low, high)
    return [xs, ys]


@lru_cache(maxsize=16)
def _triples(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    combos = np.array(list(itertools.combinations(range(n), 3)), dtype=np.int64).reshape(-1, 3)
    return combos[:, 0], combos[:, 1], combos[:, 2]


def _has_collinear(xs: np.ndarray, ys: np.ndarray, eps: float) -> bool:
    """Any triple with |cross(p2 - p1, p3 - p1)| < eps (dm-clrs's `_is_collinear`, vectorised)."""
    i, j, k = _triples(len(xs))
    ax, ay = xs[j] - xs[i], ys[j] - ys[i]
    bx, by = xs[k] - xs[i], ys[k] - ys[i]
    return bool((np.abs(ax * by - ay * bx) < eps).any())


def _convex_hull(d: _Draws, length: int, origin_x: float = 0.0, origin_y: float = 0.0,
                 radius: float = 2.0, collinearity_resampling_attempts: int = 1000,
                 collineararity_eps: float = 1e-12) -> list:
    for _ in range(collinearity_resampling_attempts):
        thetas = d.sequence(length, 0.0, 2.0 * np.pi)
        rs = radius * np.sqrt(d.sequence(length, 0.0, 1.0))
        xs = rs * np.cos(thetas) + origin_x
        ys = rs * np.sin(thetas) + origin_y
        # dm-clrs truncates each coordinate here too (and once more after sampling).
        xs = np.array(d.truncate(list(xs)), dtype=np.float64)
        ys = np.array(d.truncate(list(ys)), dtype=np.float64)
        if not _has_collinear(xs, ys, collineararity_eps):
            return [xs, ys]
    raise UserError(f"convex hull sampler: no {length} points without collinear triples in "
                    f"{collinearity_resampling_attempts} tries; raise collineararity_eps")


# ------------------------------------------------------- whole-batch input generators (fast path)
# For the samplers below, all instances' draws are made at once while consuming the stream in
# exactly the per-instance order above, so results equal the per-instance generators bit for bit.

class _Words:
    """The raw 32-bit outputs of a RandomState's MT19937, fetched in order and never past need.

    Each fetch asks for at most the words the rest of the batch certainly consumes, so after
    sampling the RandomState has advanced exactly as the per-instance draws would advance it.
    """

    def __init__(self, rng: np.random.RandomState) -> None:
        self.rng = rng
        self.words = np.empty(0, dtype=np.uint32)  # words[:filled] came from the stream
        self.filled = 0
        self.pos = 0

    def _need(self, count: int, reserve: int) -> None:
        """Have `count` words from `pos` on; fetch up to `reserve` (a sure need) at once."""
        if self.pos + count > self.filled:
            short = self.pos + max(count, reserve) - self.filled
            fresh = self.rng.randint(0, 2**32, size=short, dtype=np.uint32)
            if not self.filled:
                self.words = fresh
            else:  # late fetches are short (draws rejected): grow with room for more
                if self.filled + short > len(self.words):
                    grown = np.empty(self.filled + short + self.filled // 8 + 1024, np.uint32)
                    grown[:self.filled] = self.words[:self.filled]
                    self.words = grown
                self.words[self.filled:self.filled + short] = fresh
            self.filled += short

    def layout(self, num: int, items: list[tuple[str, int]]) -> np.ndarray:
        """Walk `num` instances, each drawing `items` in order; [num, len(items)] int64.

        An item ("skip", k) is a block of k words (k / 2 doubles): its entry is where it starts.
        An item ("draw", high) is `randint(0, high + 1)` by masked rejection (legacy numpy; no
        word when high = 0): its entry is the value. Without a draw that can reject, every
        instance takes the same words and the walk is one vectorised gather.
        """
        size = [k if kind == "skip" else int(k > 0) for kind, k in items]
        per_instance = sum(size)
        masks = [(1 << int(k).bit_length()) - 1 for _, k in items]
        draws = [c for c, (kind, k) in enumerate(items) if kind == "draw" and k > 0]
        if all(masks[c] == items[c][1] for c in draws):  # ranges of 2^b values never reject
            self._need(num * per_instance, 0)
            at = self.pos + np.arange(num)[:, None] * per_instance + np.cumsum([0] + size[:-1])
            out = at.astype(np.int64)
            for c in draws:
                out[:, c] = self.words[at[:, c]] & masks[c]
            for c, (kind, k) in enumerate(items):
                if kind == "draw" and k == 0:
                    out[:, c] = 0
            self.pos += num * per_instance
            return out
        return self._walk(num, items, masks, per_instance)

    def _walk(self, num: int, items: list[tuple[str, int]], masks: list[int],
              per_instance: int) -> np.ndarray:
        """`layout` item by item, for draws that may reject (a tight loop on Python ints)."""
        plan = [(-k if kind == "skip" else k, mask) for (kind, k), mask in zip(items, masks,
                                                                             strict=True)]
        left = num * per_instance  # words the rest of the batch surely takes
        self._need(0, left)
        words, filled, pos, out = memoryview(self.words), self.filled, self.pos, []
        for _ in range(num):
            for k, mask in plan:
                if k < 0:  # a block of -k words
                    if pos - k > filled:
                        self.pos = pos
                        self._need(-k, left)
                        words, filled = memoryview(self.words), self.filled
                    out.append(pos)
                    pos -= k
                    left += k
                    continue
                value = 0
                if k:
                    while True:  # masked rejection: draw until the value is in range
                        if pos == filled:
                            self.pos = pos
                            self._need(1, left)
                            words, filled = memoryview(self.words), self.filled
                        value = words[pos] & mask
                        pos += 1
                        if value <= k:
                            break
                    left -= 1
                out.append(value)
        self.pos = pos
        return np.array(out, dtype=np.int64).reshape(num, len(items))

    def doubles(self, starts: np.ndarray, count: int) -> np.ndarray:
        """[len(starts), count] doubles as `random_sample` makes them (two words each)."""
        # each row is a contiguous run of words: copy rows of a window view, no index array
        w = np.lib.stride_tricks.sliding_window_view(self.words[:self.filled],
                                                     2 * count)[np.asarray(starts)]
        out = np.empty((len(starts), count))
        np.right_shift(w[:, 0::2], 5, out=out, casting="unsafe")
        out *= 67108864.0
        out += w[:, 1::2] >> 6
        out *= 1.0 / 9007199254740992.0  # exact: (a * 2^26 + b) < 2^53, times a power of two
        return out


def _bernoulli_rows(words: _Words, starts: np.ndarray, probs: np.ndarray,
                    count: int) -> np.ndarray | None:
    """`binomial(1, probs[i], count)` of each instance from its reserved words; None on a redraw
    (see `bernoulli`)."""
    flip = probs > 0.5
    p_eff = np.where(flip, 1.0 - probs, probs)
    q = 1.0 - p_eff
    levels, which = np.unique(q, return_inverse=True)  # a few distinct p per batch
    qn = np.array([math.exp(1 * math.log(x)) for x in levels])[which]
    u = words.doubles(starts, count)
    above = u > qn[:, None]
    if np.any(above & (u - qn[:, None] > ((p_eff * qn) / q)[:, None])):
        return None
    return np.where(flip[:, None], ~above, above).astype(np.int64)


def _shuffles(draws: np.ndarray, n: int) -> np.ndarray:
    """Legacy `permutation(n)` per row from its draws k_j = random_interval(j), j = n-1..1."""
    perm = np.tile(np.arange(n), (len(draws), 1))
    r = np.arange(len(draws))
    for c, j in enumerate(range(n - 1, 0, -1)):
        k = draws[:, c]
        swapped = perm[r, k]
        perm[r, k] = perm[:, j]
        perm[:, j] = swapped
    return perm


def _er_batch(d: _Draws, num: int, n: int, p: tuple, directed: bool, acyclic: bool,
              weighted: bool, low: float, high: float, source: bool) -> list | None:
    """`num` x (choice(p), er_graph(...), [choice(n)]) at once; None if a binomial redraws."""
    words = _Words(d.rng)
    shuffle = directed and acyclic
    items = [("draw", len(p) - 1), ("skip", 2 * n * n)]
    items += [("draw", j) for j in range(n - 1, 0, -1)] if shuffle else []
    items += [("skip", 2 * n * n)] if weighted else []
    items += [("draw", n - 1)] if source else []
    drawn = words.layout(num, items)
    p_index, bern = drawn[:, 0], drawn[:, 1]
    edges = _bernoulli_rows(words, bern, np.asarray(p, dtype=np.float64)[p_index], n * n)
    if edges is None:
        return None  # a redraw (probability ~1e-16): let the per-instance path replay it
    mat = edges.reshape(num, n, n)
    if not directed:
        mat = mat * mat.transpose(0, 2, 1)
    elif acyclic:
        mat = np.triu(mat, k=1)
        order = _shuffles(drawn[:, 2:n + 1], n)
        mat = np.take_along_axis(np.take_along_axis(mat, order[:, :, None], 1),
                                 order[:, None, :], 2)
    if weighted:
        at = n + 1 if shuffle else 2
        w = (low + (high - low) * words.doubles(drawn[:, at], n * n)).reshape(num, n, n)
        if not directed:
            w = np.sqrt(w * w.transpose(0, 2, 1) + 1e-3)  # clrs.md §2.2
        mat = mat.astype(float) * w
        if d.truncate_decimals:
            scale = 10 ** d.truncate_decimals
            mat = np.trunc(mat * scale) / scale
    out = [mat]
    if source:
        out.append(drawn[:, -1])
    return out


def _scc_batch(d: _Draws, num: int, length: int, k: int = 4, p: tuple = (0.5,),
               eps: float = 0.01) -> list | None:
    """`num` x (choice(p), community_graph(length, k, p, eps, directed=True)) at once."""
    n = length
    if k > n:
        raise UserError(f"community graph: k={k} communities need at least {k} nodes, got {n}")
    bounds = [(i * (n // k), n if i == k - 1 else (i + 1) * (n // k)) for i in range(k)]
    words = _Words(d.rng)
    items = [("draw", len(p) - 1)] + [("skip", 2 * (hi - lo) ** 2) for lo, hi in bounds]
    items += [("skip", 2 * n * n)] + [("draw", j) for j in range(n - 1, 0, -1)]
    drawn = words.layout(num, items)
    p_index, toggles = drawn[:, 0], drawn[:, k + 1]
    probs = np.asarray(p, dtype=np.float64)[p_index]
    mat = np.zeros((num, n, n))
    for c, (lo, hi) in enumerate(bounds):
        block = _bernoulli_rows(words, drawn[:, 1 + c], probs, (hi - lo) ** 2)
        if block is None:
            return None
        mat[:, lo:hi, lo:hi] = block.reshape(num, hi - lo, hi - lo)
    toggle = _bernoulli_rows(words, toggles, np.full(num, float(eps)), n * n)
    if toggle is None:
        return None
    toggle = toggle.reshape(num, n, n)
    for c, (lo_i, hi_i) in enumerate(bounds):  # no links from a later to an earlier community
        for lo_j, hi_j in bounds[:c]:
            toggle[:, lo_i:hi_i, lo_j:hi_j] = 0
    mat = np.where(toggle > 0.0, (1.0 - (mat > 0.0)) * toggle, mat)
    order = _shuffles(drawn[:, k + 2:], n)
    mat = np.take_along_axis(np.take_along_axis(mat, order[:, :, None], 1), order[:, None, :], 2)
    return [mat]


def _uniform_rows(d: _Draws, num: int, width: int, low: float, high: float) -> np.ndarray:
    rows = d.rng.uniform(low=low, high=high, size=(num, width))
    if d.truncate_decimals:
        scale = 10 ** d.truncate_decimals
        rows = np.trunc(rows * scale) / scale
    return rows


def _sorting_batch(d: _Draws, num: int, length: int, low: float = 0.0,
                   high: float = 1.0) -> list:
    return [_uniform_rows(d, num, length, low, high)]


def _max_subarray_batch(d: _Draws, num: int, length: int, low: float = -1.0,
                        high: float = 1.0) -> list:
    return [_uniform_rows(d, num, length, low, high)]


def _search_batch(d: _Draws, num: int, length: int, low: float = 0.0, high: float = 1.0) -> list:
    draws = d.rng.uniform(low=low, high=high, size=(num, length + 1))
    arr, x = np.sort(draws[:, :length], axis=1), draws[:, length]
    return d.truncate([x, arr]) if d.truncate_decimals else [x, arr]


def _activity_batch(d: _Draws, num: int, length: int, low: float = 0.0,
                    high: float = 1.0) -> list:
    draws = d.rng.uniform(low=low, high=high, size=(num, 2, length))
    out = [np.minimum(draws[:, 0], draws[:, 1]), np.maximum(draws[:, 0], draws[:, 1])]
    return d.truncate(out) if d.truncate_decimals else out


def _optimal_bst_batch(d: _Draws, num: int, length: int) -> list:
    arr = d.rng.uniform(size=(num, 2 * length + 1))
    arr = arr / np.sum(arr, axis=1, keepdims=True)
    out = [arr[:, :length], arr[:, length:]]
    return d.truncate(out) if d.truncate_decimals else out


def _graph_batch(directed: bool, acyclic: bool = False, weighted: bool = False,
                 source: bool = False, p_default: tuple = (0.5,)) -> Callable[..., list | None]:
    def generate(d: _Draws, num: int, length: int, p: tuple = p_default, low: float = 0.0,
                 high: float = 1.0) -> list | None:
        return _er_batch(d, num, length, tuple(p), directed, acyclic, weighted, low, high,
                         source)
    return generate


BATCH_GENERATORS: dict[str, Callable[..., list | None]] = {
    **{name: _sorting_batch for name in ("insertion_sort", "bubble_sort", "heapsort",
                                         "quicksort", "quickselect", "minimum",
                                         "matrix_chain_order")},
    "binary_search": _search_batch,
    "find_maximum_subarray": _max_subarray_batch,
    "find_maximum_subarray_kadane": _max_subarray_batch,
    "optimal_bst": _optimal_bst_batch,
    "activity_selector": _activity_batch,
    "dfs": _graph_batch(directed=True),
    "topological_sort": _graph_batch(directed=True, acyclic=True),
    "articulation_points": _graph_batch(directed=False, p_default=(0.2,)),
    "bridges": _graph_batch(directed=False, p_default=(0.2,)),
    "bfs": _graph_batch(directed=False, source=True),
    "mst_kruskal": _graph_batch(directed=False, weighted=True, p_default=(0.2,)),
    "mst_prim": _graph_batch(directed=False, weighted=True, source=True),
    "bellman_ford": _graph_batch(directed=False, weighted=True, source=True),
    "dijkstra": _graph_batch(directed=False, weighted=True, source=True),
    "dag_shortest_paths": _graph_batch(directed=True, acyclic=True, weighted=True, source=True),
    "floyd_warshall": _graph_batch(directed=False, weighted=True),
    "strongly_connected_components": _scc_batch,
}


GENERATORS: dict[str, Callable[..., list]] = {
    "insertion_sort": _sorting, "bubble_sort": _sorting, "heapsort": _sorting,
    "quicksort": _sorting, "quickselect": _sorting, "minimum": _sorting,
    "binary_search": _search,
    "find_maximum_subarray": _max_subarray, "find_maximum_subarray_kadane": _max_subarray,
    "matrix_chain_order": _sorting, "lcs_length": _lcs, "optimal_bst": _optimal_bst,
    "activity_selector": _activity, "task_scheduling": _task,
    "dfs": _dfs, "topological_sort": _topo, "strongly_connected_components": _scc,
    "articulation_points": _articulation, "bridges": _articulation, "bfs": _bfs,
    "mst_kruskal": _mst, "mst_prim": _bellman_ford, "bellman_ford": _bellman_ford,
    "dag_shortest_paths": _dag_path, "dijkstra": _bellman_ford,
    "floyd_warshall": _floyd_warshall, "bipartite_matching": _bipartite,
    "naive_string_matcher": _matcher, "kmp_matcher": _matcher,
    "segments_intersect": _segments, "graham_scan": _convex_hull, "jarvis_march": _convex_hull,
}


def _stack(values: list) -> Any:
    """Batch one argument: equal-shape arrays/scalars stack; ragged arrays stay a list."""
    first = np.asarray(values[0])
    if all(np.shape(v) == first.shape for v in values):
        return np.stack([np.asarray(v) for v in values])
    return [np.asarray(v) for v in values]


class Sampler:
    """A CLRS sampler: same constructor semantics, random stream and `next` as dm-clrs's."""

    def __init__(self, name: str, num_samples: int, length: int, *, seed: int | None = None,
                 track_max_steps: bool = True, truncate_decimals: int | None = None,
                 **kwargs: Any) -> None:
        if name not in GENERATORS:
            raise UserError(f"unknown CLRS algorithm {name!r}; accepted: "
                            f"{', '.join(sorted(GENERATORS))}")
        self.name = name
        self.spec = specs.SPECS[name]
        self._generator = GENERATORS[name]
        accepted = inspect.signature(self._generator).parameters
        self._kwargs = {k: v for k, v in kwargs.items() if k in accepted}
        if set(self._kwargs) != set(kwargs):  # dm-clrs drops them with a warning too
            warnings.warn(f"{name}: ignoring sampler kwargs {sorted(set(kwargs) - set(accepted))}",
                          stacklevel=2)
        self._length = length
        self._rng = np.random.RandomState(seed)
        self._draws = _Draws(self._rng, truncate_decimals)
        self._num_samples = num_samples
        self._track_max_steps = track_max_steps
        if num_samples < 0:
            self.max_steps = -1
            if track_max_steps:  # dm-clrs: 1000 samples to estimate the padding length
                self.max_steps = int(self._make_batch(1000).lengths.max())
        else:
            self._data = self._make_batch(num_samples)

    def _make_batch(self, num_samples: int, min_length: int = 0) -> Batch:
        columns = None
        fast = BATCH_GENERATORS.get(self.name)
        if fast is not None:
            state = self._rng.get_state()
            columns = fast(self._draws, num_samples, self._length, **self._kwargs)
            if columns is None:
                self._rng.set_state(state)
        if columns is None:
            args = []
            for _ in range(num_samples):
                data = self._generator(self._draws, self._length, **self._kwargs)
                args.append(self._draws.truncate(data))
            columns = [_stack(list(column)) for column in zip(*args, strict=True)]
        return _pad_hints(run_batch(self.name, *columns), min_length)

    def next(self, batch_size: int | None = None) -> Batch:
        """A batch: drawn with replacement from the dataset, or generated on the fly."""
        if not batch_size:
            if self._num_samples < 0:
                raise UserError("next(): an on-the-fly sampler (num_samples < 0) needs batch_size")
            return self._data
        if self._num_samples < 0:
            min_length = self.max_steps if self._track_max_steps else 0
            batch = self._make_batch(batch_size, min_length)
            if self._track_max_steps:
                self.max_steps = max(self.max_steps, int(batch.lengths.max()))
            return batch
        if batch_size > self._num_samples:
            raise UserError(f"next(): batch_size {batch_size} > dataset size {self._num_samples}")
        index = self._rng.choice(self._num_samples, (batch_size,), replace=True)
        return self._data.select(index)


def _pad_hints(batch: Batch, min_length: int) -> Batch:
    t_max = next(iter(batch.hints.values())).shape[0]
    if t_max >= min_length:
        return batch
    pad = min_length - t_max
    batch.hints = {k: np.concatenate([v, np.zeros((pad,) + v.shape[1:])])
                   for k, v in batch.hints.items()}
    return batch


def sample(name: str, num_samples: int, length: int, seed: int | None = None,
           **kwargs: Any) -> Batch:
    """The dataset of `build_sampler(name, num_samples, length=length, seed=seed, **kwargs)`."""
    if num_samples <= 0:
        raise UserError(f"sample(): num_samples must be positive, got {num_samples}")
    return Sampler(name, num_samples, length, seed=seed, **kwargs).next()

