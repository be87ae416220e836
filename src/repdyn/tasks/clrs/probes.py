"""Probe containers and helpers: what an algorithm run records, single and batched.

Layout (clrs.md §1.2-§1.3), shared by every algorithm:
- `Trajectory` (one instance): `inputs[name]` and `outputs[name]` hold the probe as CLRS's
  `probes[stage][loc][name]['data']` does ([n], [n, n], [n, C] or a 0-d graph value);
  `hints[name]` is stacked over time, [T, ...].
- `Batch` (B instances of one size): inputs/outputs [B, ...]; hints [T_max, B, ...] float64,
  zero past each instance's `lengths[b]`. This is exactly the array content of CLRS's
  `Feedback` (see `feedback.py` for the namedtuple view).

Pointers are integer node indices (edge pointers [.., n, n]); categoricals and mask_one are
one-hot over the last axis; masks hold 0/1 and -1 (= masked).
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import NamedTuple

import numpy as np

from repdyn.tasks.clrs import specs


@dataclasses.dataclass
class Trajectory:
    """One algorithm run: probe name -> numpy array, hints stacked [T, ...]."""

    name: str
    inputs: dict[str, np.ndarray]
    hints: dict[str, np.ndarray]
    outputs: dict[str, np.ndarray]

    @property
    def length(self) -> int:
        """Number of hint steps T."""
        return int(next(iter(self.hints.values())).shape[0])


@dataclasses.dataclass
class Batch:
    """B runs of one algorithm: inputs/outputs [B, ...], hints [T_max, B, ...], lengths [B]."""

    name: str
    inputs: dict[str, np.ndarray]
    hints: dict[str, np.ndarray]
    outputs: dict[str, np.ndarray]
    lengths: np.ndarray

    @property
    def size(self) -> int:
        """Number of instances B."""
        return int(self.lengths.shape[0])

    def trajectory(self, b: int) -> Trajectory:
        """Instance b, unpadded, with hint dtypes as CLRS's probes hold them."""
        t = int(self.lengths[b])
        ints = specs.INTEGER_PROBES.get(self.name, frozenset())
        hints = {k: _cast(v[:t, b], k in ints) for k, v in self.hints.items()}
        return Trajectory(self.name, {k: v[b] for k, v in self.inputs.items()}, hints,
                          {k: v[b] for k, v in self.outputs.items()})

    def select(self, index: np.ndarray) -> "Batch":
        """The instances at `index` (like CLRS's `_subsample_data`), hints kept at T_max."""
        return Batch(self.name, {k: v[index] for k, v in self.inputs.items()},
                     {k: v[:, index] for k, v in self.hints.items()},
                     {k: v[index] for k, v in self.outputs.items()}, self.lengths[index])

    def to_torch(self, device: str = "cpu", dtype=None) -> dict[str, dict]:
        """Tensors on `device`: {'inputs': {...}, 'hints': {...}, 'outputs': {...}, 'lengths'}.

        Floating arrays are cast to `dtype` (default: torch's default dtype); integer pointers
        stay int64.
        """
        import torch

        dtype = dtype or torch.get_default_dtype()

        def conv(a: np.ndarray):
            t = torch.from_numpy(np.ascontiguousarray(a))
            return t.to(device=device, dtype=dtype if t.is_floating_point() else torch.int64)

        return {"inputs": {k: conv(v) for k, v in self.inputs.items()},
                "hints": {k: conv(v) for k, v in self.hints.items()},
                "outputs": {k: conv(v) for k, v in self.outputs.items()},
                "lengths": torch.as_tensor(self.lengths, dtype=torch.int64, device=device)}


def _cast(a: np.ndarray, integer: bool) -> np.ndarray:
    return a.astype(np.int64) if integer else a


class OneHot(NamedTuple):
    """A mask_one / categorical hint given by its indices [B, ...] (or one index for all)."""

    index: np.ndarray
    size: int


_SMALL_PUSH = 1 << 20  # bytes: pushes this small always copy whole frames


class HintTape:
    """Records one hint snapshot per lockstep step for a batch of instances.

    Every algorithm here advances all unfinished instances by exactly one CLRS `push` per step,
    so step t holds hint t of every instance still `active`; finished instances' rows are zero
    (CLRS's padded [T_max, B, ...] layout). A push costs one plain copy per hint: while at least
    half the batch is active, or a push's frames are small, whole [B, ...] frames are copied
    (the rows of finished instances are zeroed once, in `finish`); otherwise only the active
    rows (a fancy-indexed copy costs a few microseconds more a call, but moves fewer bytes).
    `OneHot` hints are logged as indices and expanded to float64 one-hots in `finish`, with one
    `np.take` per hint.

    All buffers ([capacity, B, ...], grown by doubling) are carved from one zeroed allocation:
    it is mapped lazily (unused capacity costs no memory) and, being large, with transparent
    huge pages, so that writing the hints for the first time costs few page faults (one per
    4 KiB page of a small allocation is most of the run time on some machines).
    """

    def __init__(self, capacity: int = 16) -> None:
        self._capacity = max(1, capacity)
        self._shapes: dict[str, tuple[int, ...]] = {}  # hint -> shape of one frame [B, ...]
        self._frames: dict[str, np.ndarray] = {}  # float64 frames, or the indices of a OneHot
        self._sizes: dict[str, int] = {}  # OneHot hint -> number of classes
        self._one_hots: dict[str, np.ndarray] = {}  # OneHot hint -> its float64 expansion
        self._steps = 0
        self._active: np.ndarray | None = None  # [capacity, B] bool: who pushed at each step
        self._whole: np.ndarray | None = None  # [capacity] bool: steps that copied whole frames
        self._push_bytes = 0  # bytes of one push's whole frames

    def push(self, active: np.ndarray, **values: np.ndarray | OneHot) -> None:
        """Record the current state (each value [B, ...]) of the instances in `active`."""
        active = np.asarray(active, dtype=bool)
        count = int(np.count_nonzero(active))
        if count == 0:
            return
        if self._steps == self._capacity or not values.keys() <= self._frames.keys():
            if self._steps == self._capacity:
                self._capacity *= 2
            self._allocate(active.shape[0], values)
        t = self._steps
        whole = 2 * count >= active.shape[0] or self._push_bytes <= _SMALL_PUSH
        live = None if whole else np.flatnonzero(active)
        for name, value in values.items():
            frames = self._frames[name]
            if (self._sizes.get(name) is None) == isinstance(value, OneHot):
                raise TypeError(f"hint {name!r} is pushed both as a OneHot and as an array")
            if isinstance(value, OneHot):
                frames[t] = value.index  # a single index broadcasts
            elif whole:
                frames[t] = value
            else:
                frames[t][live] = np.asarray(value)[live]
        self._active[t] = active
        self._whole[t] = whole
        self._steps += 1

    def _allocate(self, batch: int, values: dict[str, np.ndarray | OneHot]) -> None:
        """(Re)lay out every buffer at the current capacity, keeping the steps recorded so far."""
        for name, value in values.items():
            if name not in self._shapes:
                if isinstance(value, OneHot):
                    self._sizes[name] = value.size
                    self._shapes[name] = np.shape(value.index) or (batch,)
                else:
                    self._shapes[name] = np.shape(value)
        cap = self._capacity
        layout = {("active", ""): ((cap, batch), bool), ("whole", ""): ((cap,), bool)}
        for name, shape in self._shapes.items():
            size = self._sizes.get(name)
            layout["frames", name] = ((cap,) + shape, np.float64 if size is None else np.intp)
            if size is not None:
                layout["one_hot", name] = ((cap,) + shape + (size,), np.float64)
        block = _zeroed_block(layout)
        kept = self._steps
        if kept:
            block["active", ""][:kept] = self._active[:kept]
            block["whole", ""][:kept] = self._whole[:kept]
            for name, frames in self._frames.items():
                block["frames", name][:kept] = frames[:kept]
        self._active, self._whole = block["active", ""], block["whole", ""]
        self._frames = {name: block["frames", name] for name in self._shapes}
        self._push_bytes = sum(frames[0].nbytes for frames in self._frames.values())
        self._one_hots = {name: block["one_hot", name] for name in self._sizes}

    def finish(self) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """Hints [T, B, ...] (zero past each length) and lengths [B] (int64)."""
        if self._active is None:
            return {}, np.zeros(0, dtype=np.int64)
        steps = self._steps
        active = self._active[:steps]
        stale = ~active & self._whole[:steps, None]  # finished rows copied with whole frames
        any_stale = bool(stale.any())
        hints = {}
        for name, frames in self._frames.items():
            frames = frames[:steps]
            size = self._sizes.get(name)
            if size is None:
                if any_stale:
                    frames[stale] = 0.0
                hints[name] = frames
            else:
                frames[~active] = size  # the all-zero row of `_one_hot_table`
                out = self._one_hots[name][:steps]
                np.take(_one_hot_table(size), frames, axis=0, out=out, mode="clip")  # unbuffered
                hints[name] = out
        return hints, active.sum(0, dtype=np.int64)


def _zeroed_block(shapes: dict[tuple[str, str], tuple[tuple[int, ...], type]]
                  ) -> dict[tuple[str, str], np.ndarray]:
    """Zeroed arrays of the given (shape, dtype), all views of one allocation (64-byte aligned)."""
    offsets, total = {}, 0
    for name, (shape, dtype) in shapes.items():
        offsets[name] = total
        total += -(-math.prod(shape) * np.dtype(dtype).itemsize // 64) * 64
    block = np.zeros(total, dtype=np.uint8)
    return {name: block[offsets[name]:offsets[name] + math.prod(shape) * np.dtype(dtype).itemsize]
            .view(dtype).reshape(shape) for name, (shape, dtype) in shapes.items()}


@functools.lru_cache(maxsize=64)
def _one_hot_table(size: int) -> np.ndarray:
    """Rows 0..size-1 of the identity, then a zero row: one-hot lookup with a 'none' index."""
    table = np.vstack([np.eye(size), np.zeros((1, size))])
    table.flags.writeable = False
    return table


@functools.lru_cache(maxsize=64)
def _eye(n: int) -> np.ndarray:
    eye = np.eye(n)
    eye.flags.writeable = False
    return eye


def one_hot(index: np.ndarray, n: int) -> np.ndarray:
    """Batched `probing.mask_one`: [B] indices -> [B, n] float64 one-hot."""
    return _eye(n)[index]


def node_pos(batch: int, n: int) -> np.ndarray:
    """The `pos` input i / n, [B, n] (float64, as `np.arange(n) * 1.0 / n`)."""
    return np.broadcast_to(np.arange(n) * 1.0 / n, (batch, n)).copy()


def graph_adj(A: np.ndarray) -> np.ndarray:
    """Batched `probing.graph`: 1.0 where A + I != 0 (the `adj` input has self-loops)."""
    n = A.shape[-1]
    return ((A + np.eye(n)) != 0) * 1.0


def pred_pointers(order: np.ndarray) -> np.ndarray:
    """Batched `probing.array`: order[b] lists node ids; each points to its predecessor.

    The first node points to itself. [B, n] int64.
    """
    batch, n = order.shape
    probe = np.broadcast_to(np.arange(n), (batch, n)).copy()
    np.put_along_axis(probe, order[:, 1:], order[:, :-1], axis=1)
    return probe


def identity_pred(batch: int, n: int) -> np.ndarray:
    """`probing.array` of the untouched order: node i points to i - 1 (node 0 to itself)."""
    return pred_pointers(np.broadcast_to(np.arange(n), (batch, n)))


def heap_pointers(order: np.ndarray, heap_size: np.ndarray) -> np.ndarray:
    """Batched `probing.heap`: node at heap position i points to the node at (i - 1) // 2.

    Only positions 1 <= i < heap_size[b] point to a parent; the rest point to themselves.
    """
    batch, n = order.shape
    pos = np.arange(n)
    parent_pos = np.maximum(pos - 1, 0) // 2
    in_heap = (pos[None, :] >= 1) & (pos[None, :] < np.asarray(heap_size)[:, None])
    values = np.where(in_heap, np.take_along_axis(order, np.broadcast_to(
        parent_pos, (batch, n)), axis=1), order)
    probe = np.empty_like(order)
    np.put_along_axis(probe, order, values, axis=1)
    return probe


def rows(batch: int) -> np.ndarray:
    """`np.arange(batch)`, the row index used with per-instance column indices."""
    return np.arange(batch)


def string_inputs(x: np.ndarray, y: np.ndarray) -> dict[str, np.ndarray]:
    """Inputs of two-string algorithms: `string` (0 for x, 1 for y), per-string `pos`, one-hot
    `key` over the 4-letter alphabet (`probing.strings_id`, `strings_pos`, `array_cat`)."""
    batch, n1 = x.shape
    n2 = y.shape[1]
    pos = np.concatenate([np.arange(n1) * 1.0 / n1, np.arange(n2) * 1.0 / n2])
    return {"string": np.broadcast_to(np.r_[np.zeros(n1), np.ones(n2)], (batch, n1 + n2)).copy(),
            "pos": np.broadcast_to(pos, (batch, n1 + n2)).copy(),
            "key": np.eye(4)[np.concatenate([x, y], 1)]}


def strings_pred(batch: int, n1: int, n2: int) -> np.ndarray:
    """`probing.strings_pred`: each character points to the previous one of its string."""
    probe = np.arange(n1 + n2)
    probe[1:n1] -= 1
    probe[n1 + 1:] -= 1
    return np.broadcast_to(probe, (batch, n1 + n2)).copy()


def merge_batches(parts: list[Batch], groups: list[np.ndarray]) -> Batch:
    """One batch from sub-batches of the same algorithm and node count.

    `groups[g]` lists the positions in the merged batch of `parts[g]`'s instances; hints are
    zero-padded to the longest T.
    """
    order = np.argsort(np.concatenate(groups), kind="stable")
    t_max = max(next(iter(p.hints.values())).shape[0] for p in parts)

    def cat(key: str, axis: int) -> dict[str, np.ndarray]:
        out = {}
        for name in getattr(parts[0], key):
            arrays = [getattr(p, key)[name] for p in parts]
            if axis == 1:
                arrays = [np.concatenate([a, np.zeros((t_max - len(a),) + a.shape[1:])])
                          for a in arrays]
            out[name] = np.take(np.concatenate(arrays, axis), order, axis)
        return out

    lengths = np.concatenate([p.lengths for p in parts])[order]
    return Batch(parts[0].name, cat("inputs", 0), cat("hints", 1), cat("outputs", 0), lengths)
