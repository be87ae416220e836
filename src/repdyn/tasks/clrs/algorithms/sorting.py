"""Sorting: insertion sort, bubble sort, heapsort, quicksort (CLRS 3rd ed. chapters 2, 6, 7).

The algorithms are sequential, so each loop iteration below advances a whole batch [B, n] of
arrays by one CLRS push: data-independent schedules (insertion, bubble) step in unison, the
others keep per-instance control state (heap cursor, explicit quicksort stack). `order[b, i]`
is dm-clrs's `A_pos`: the original index of the element now at position i.
"""

from __future__ import annotations

import numpy as np

from repdyn.tasks.clrs.probes import Batch, HintTape, OneHot, heap_pointers, node_pos, pred_pointers, rows


def _start(A: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict]:
    A = np.asarray(A)
    batch, n = A.shape
    order = np.broadcast_to(np.arange(n), (batch, n)).copy()
    return A.copy(), order, rows(batch), {"pos": node_pos(batch, n), "key": A.copy()}


def _swap(arrays: tuple[np.ndarray, ...], idx: np.ndarray, a: np.ndarray, b: np.ndarray) -> None:
    """Swap columns a[k] and b[k] of row idx[k] in every array."""
    for x in arrays:
        x[idx, a], x[idx, b] = x[idx, b], x[idx, a]


def insertion_sort(A: np.ndarray) -> Batch:
    """Insertion sort: one hint per inserted element j (the prefix stays sorted)."""
    arr, order, r, inputs = _start(A)
    batch, n = arr.shape
    cols = np.arange(n)
    tape, all_on = HintTape(n), np.ones(batch, dtype=bool)
    zero = OneHot(np.zeros(batch, dtype=np.int64), n)  # i = j = 0 before the first step
    tape.push(all_on, pred_h=pred_pointers(order), i=zero, j=zero)
    for j in range(1, n):
        key = arr[:, j].copy()
        at = j - (arr[:, :j] > key[:, None]).sum(1)  # the prefix is sorted: > key is a suffix
        stored = order[r, at]
        src = np.where((cols > at[:, None]) & (cols <= j), cols - 1, cols)
        arr, order = np.take_along_axis(arr, src, 1), np.take_along_axis(order, src, 1)
        arr[r, at], order[r, at] = key, j
        tape.push(all_on, pred_h=pred_pointers(order), i=OneHot(stored, n),
                  j=OneHot(np.full(batch, j), n))
    hints, lengths = tape.finish()
    return Batch("insertion_sort", inputs, hints, {"pred": pred_pointers(order)}, lengths)


def bubble_sort(A: np.ndarray) -> Batch:
    """Bubble sort: one hint per comparison, n(n-1)/2 + 1 in all."""
    arr, order, r, inputs = _start(A)
    batch, n = arr.shape
    tape, all_on = HintTape(n * (n - 1) // 2 + 1), np.ones(batch, dtype=bool)
    zero = OneHot(np.zeros(batch, dtype=np.int64), n)  # i = j = 0 before the first step
    tape.push(all_on, pred_h=pred_pointers(order), i=zero, j=zero)
    for i in range(n - 1):
        for j in reversed(range(i + 1, n)):
            swap = np.nonzero(arr[:, j] < arr[:, j - 1])[0]
            _swap((arr, order), swap, np.full(len(swap), j), np.full(len(swap), j - 1))
            tape.push(all_on, pred_h=pred_pointers(order), i=OneHot(order[:, i], n),
                      j=OneHot(order[:, j], n))
    hints, lengths = tape.finish()
    return Batch("bubble_sort", inputs, hints, {"pred": pred_pointers(order)}, lengths)


_HEAPIFY, _EXTRACT, _DONE = range(3)


def heapsort(A: np.ndarray) -> Batch:
    """Heapsort: one hint per max-heapify call (phase 0 build, 2 sift) and per extraction (1)."""
    arr, order, r, inputs = _start(A)
    batch, n = arr.shape
    last = np.full(batch, n - 1)
    tape = HintTape(4 * n)
    tape.push(np.ones(batch, dtype=bool), pred_h=pred_pointers(order),
              parent=heap_pointers(order, np.full(batch, n)), i=OneHot(last, n),
              j=OneHot(last, n), largest=OneHot(last, n), heap_size=OneHot(last, n),
              phase=OneHot(np.zeros(batch, dtype=np.int64), 3))
    mode = np.full(batch, _HEAPIFY)
    cur, ind, build = last.copy(), last.copy(), last.copy()  # build: BUILD-MAX-HEAP's i
    heap_size, phase, k = np.full(batch, n), np.zeros(batch, dtype=np.int64), last.copy()
    while (mode != _DONE).any():
        active = mode != _DONE
        ext = np.nonzero(mode == _EXTRACT)[0]
        _swap((arr, order), ext, np.zeros(len(ext), dtype=np.int64), k[ext])
        heap_size[ext] -= 1

        hp = np.nonzero(mode == _HEAPIFY)[0]
        c, hs = cur[hp], heap_size[hp]
        left, right = 2 * c + 1, 2 * c + 2
        key_l, key_r = arr[hp, np.minimum(left, n - 1)], arr[hp, np.minimum(right, n - 1)]
        largest = np.where((left < hs) & (key_l > arr[hp, c]), left, c)
        largest = np.where((right < hs) & (key_r > arr[hp, largest]), right, largest)
        moved = largest != c
        _swap((arr, order), hp[moved], c[moved], largest[moved])

        i_pos, j_pos, l_pos, ph = ind.copy(), cur.copy(), np.zeros(batch, dtype=np.int64), \
            np.where(mode == _EXTRACT, 1, phase)
        l_pos[hp] = largest
        i_pos[ext], j_pos[ext] = 0, k[ext]
        l_idx = order[r, l_pos]
        l_idx[ext] = 0  # dm-clrs pushes mask_one(0) here ("consider masking")
        tape.push(active, pred_h=pred_pointers(order), parent=heap_pointers(order, heap_size),
                  i=OneHot(order[r, i_pos], n), j=OneHot(order[r, j_pos], n),
                  largest=OneHot(l_idx, n),
                  heap_size=OneHot(order[r, np.maximum(heap_size - 1, 0)], n),
                  phase=OneHot(ph, 3))

        cur[ext], ind[ext], phase[ext] = 0, k[ext], 2
        mode[ext] = _HEAPIFY
        cur[hp[moved]] = largest[moved]
        settled = hp[~moved]
        building = settled[phase[settled] == 0]
        build[building] -= 1
        more = building[build[building] >= 0]
        cur[more], ind[more] = build[more], build[more]
        built = building[build[building] < 0]
        sifted = settled[phase[settled] == 2]
        k[sifted] -= 1
        extract = np.concatenate([built, sifted])
        mode[extract] = np.where(k[extract] >= 1, _EXTRACT, _DONE)
    hints, lengths = tape.finish()
    return Batch("heapsort", inputs, hints, {"pred": pred_pointers(order)}, lengths)


_PART, _NEXT, _SORTED = range(3)


class Partitioner:
    """Batched Lomuto partition (CLRS 7.1) shared by quicksort and quickselect."""

    def __init__(self, A: np.ndarray) -> None:
        self.arr, self.order, self.row, self.inputs = _start(A)
        batch, n = self.arr.shape
        self.n = n
        self.p = np.zeros(batch, dtype=np.int64)
        self.r = np.full(batch, n - 1)
        self.i = self.p - 1
        self.j = self.p.copy()
        self.x = self.arr[:, -1].copy()

    def begin(self, idx: np.ndarray, p: np.ndarray, r: np.ndarray) -> None:
        self.p[idx], self.r[idx] = p, r
        self.i[idx], self.j[idx] = p - 1, p
        self.x[idx] = self.arr[idx, r]

    def step(self, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """One loop iteration (j < r) or the final pivot swap; return (looped, finished)."""
        looping = self.j[idx] < self.r[idx]
        loop, fin = idx[looping], idx[~looping]
        le = loop[self.arr[loop, self.j[loop]] <= self.x[loop]]
        self.i[le] += 1
        _swap((self.arr, self.order), le, self.i[le], self.j[le])
        _swap((self.arr, self.order), fin, self.i[fin] + 1, self.r[fin])
        return loop, fin


def quicksort(A: np.ndarray) -> Batch:
    """Quicksort with Lomuto partition, left part first; one hint per partition step."""
    part = Partitioner(A)
    batch, n = part.arr.shape
    order = part.order
    stack = np.zeros((batch, n + 2, 2), dtype=np.int64)
    depth = np.zeros(batch, dtype=np.int64)
    mode = np.full(batch, _PART if n > 1 else _SORTED)
    tape = HintTape(4 * n)
    while True:
        need = np.nonzero(mode == _NEXT)[0]
        while len(need):  # pop until a range with p < r, like the recursion's `if p < r`
            empty = need[depth[need] == 0]
            mode[empty] = _SORTED
            need = need[depth[need] > 0]
            depth[need] -= 1
            p, r = stack[need, depth[need], 0], stack[need, depth[need], 1]
            ok = p < r
            part.begin(need[ok], p[ok], r[ok])
            mode[need[ok]] = _PART
            need = need[~ok]
        idx = np.nonzero(mode == _PART)[0]
        if not len(idx):
            break
        loop, fin = part.step(idx)
        j_pos = part.j.copy()
        j_pos[fin] = part.r[fin]
        row = part.row
        tape.push(mode == _PART, pred_h=pred_pointers(order), p=OneHot(order[row, part.p], n),
                  r=OneHot(order[row, part.r], n), i=OneHot(order[row, part.i + 1], n),
                  j=OneHot(order[row, j_pos], n))
        part.j[loop] += 1
        q = part.i[fin] + 1
        stack[fin, depth[fin]] = np.stack([q + 1, part.r[fin]], 1)
        stack[fin, depth[fin] + 1] = np.stack([part.p[fin], q - 1], 1)
        depth[fin] += 2
        mode[fin] = _NEXT
    hints, lengths = tape.finish()
    return Batch("quicksort", part.inputs, hints, {"pred": pred_pointers(order)}, lengths)
