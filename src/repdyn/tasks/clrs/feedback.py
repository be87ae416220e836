"""CLRS's `Feedback` layout and the preprocessing of Ibarz et al.'s training recipe.

`Feedback(features=Features(inputs, hints, lengths), outputs)` with lists of
`DataPoint(name, location, type_, data)`: inputs/outputs [B, ...], hints [T_max, B, ...]
zero-padded, lengths [B] float64 - field for field and array for array what dm-clrs's
samplers return (clrs.md §1.2-§1.3), without jax or attrs. `to_feedback` / `from_feedback`
convert to and from this package's `Batch`; objects from dm-clrs itself convert too.

The preprocessors mirror dm-clrs's `process_random_pos`, `process_pred_as_input` and
`process_permutations` (clrs.md §2.4), applied to one batch.
"""

from __future__ import annotations

import collections
import dataclasses
from typing import Any, Iterable, Mapping

import numpy as np

from repdyn.tasks.clrs import specs
from repdyn.tasks.clrs.probes import Batch

Features = collections.namedtuple("Features", ["inputs", "hints", "lengths"])
Feedback = collections.namedtuple("Feedback", ["features", "outputs"])


@dataclasses.dataclass
class DataPoint:
    """One probe of a batch: CLRS's `DataPoint` fields (name, location, type_, data)."""

    name: str
    location: str
    type_: str
    data: np.ndarray


def _ordered(names: Iterable[str], spec: specs.Spec) -> list[str]:
    names = list(names)
    in_spec = [k for k in spec if k in names]
    return in_spec + [k for k in names if k not in spec]


def to_feedback(batch: Batch, spec: specs.Spec | None = None) -> Feedback:
    """The CLRS `Feedback` of a batch (probes in spec order; lengths as float64)."""
    spec = specs.SPECS[batch.name] if spec is None else spec

    def points(arrays: Mapping[str, np.ndarray]) -> list[DataPoint]:
        return [DataPoint(k, spec[k][1], spec[k][2], arrays[k]) for k in _ordered(arrays, spec)]

    return Feedback(Features(points(batch.inputs), points(batch.hints),
                             batch.lengths.astype(np.float64)), points(batch.outputs))


def from_feedback(name: str, feedback: Any) -> Batch:
    """A `Batch` from a CLRS `Feedback` (this module's or dm-clrs's own objects)."""
    def arrays(points) -> dict[str, np.ndarray]:
        return {dp.name: np.asarray(dp.data) for dp in points}

    features = feedback.features
    return Batch(name, arrays(features.inputs), arrays(features.hints),
                 arrays(feedback.outputs), np.asarray(features.lengths).astype(np.int64))


def randomize_pos(feedback: Feedback, rng: np.random.RandomState) -> Feedback:
    """`process_random_pos`: replace `pos` by sorted U[0, 1] values within each string.

    Segments start where the original `pos` is 0 (two for string algorithms). Draws
    `rng.uniform(size=(B, n))` once per batch, as dm-clrs does.
    """
    inputs = list(feedback.features.inputs)
    (at,) = [i for i, dp in enumerate(inputs) if dp.name == "pos"]
    pos = inputs[at]
    batch, n = pos.data.shape
    unsorted = rng.uniform(size=(batch, n))
    new_pos = np.empty((batch, n))
    for b in range(batch):
        cuts = np.concatenate([np.nonzero(pos.data[b] == 0)[0], [n]])
        for lo, hi in zip(cuts[:-1], cuts[1:], strict=True):
            new_pos[b, lo:hi] = np.sort(unsorted[b, lo:hi])
    inputs[at] = DataPoint(pos.name, pos.location, pos.type_, new_pos)
    return feedback._replace(features=feedback.features._replace(inputs=inputs))


def pred_as_input_spec(spec: specs.Spec) -> dict:
    """`process_pred_as_input`'s spec: the constant `pred_h` hint becomes the input `pred`."""
    return {("pred" if k == "pred_h" else k):
            ((specs.Stage.INPUT, specs.Location.NODE, specs.Type.POINTER) if k == "pred_h" else v)
            for k, v in spec.items()}


def pred_as_input(feedback: Feedback) -> Feedback:
    """`process_pred_as_input`: move the first `pred_h` step to the inputs as `pred`."""
    features = feedback.features
    pred = [h for h in features.hints if h.name == "pred_h"]
    if not pred:
        return feedback
    (pred,) = pred
    for b, t in enumerate(np.asarray(features.lengths, dtype=np.int64)):
        if np.any(pred.data[1:t, b] != pred.data[0, b]):
            raise ValueError(f"pred_h changes over time in instance {b}: not an input")
    inputs = tuple(features.inputs) + (DataPoint("pred", pred.location, pred.type_,
                                                 pred.data[0]),)
    hints = tuple(h for h in features.hints if h.name != "pred_h")
    return feedback._replace(features=features._replace(inputs=inputs, hints=hints))


def cyclic_permutation(pointers: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`predecessor_to_cyclic_predecessor_and_first` in numpy (float32, as jax returns).

    Predecessor pointers [..., n] of a linear order become a one-hot [..., n, n] in which the
    first node points to the last, plus a one-hot [..., n] mask of the first node.
    """
    n = pointers.shape[-1]
    ids = np.arange(n)
    one_hot = (np.asarray(pointers)[..., None] == ids).astype(np.float32)
    last = one_hot.sum(-2).argmin(-1)
    first = np.diagonal(one_hot, axis1=-2, axis2=-1).argmax(-1)
    mask = (first[..., None] == ids).astype(np.float32)
    last_hot = (last[..., None] == ids).astype(np.float32)
    one_hot = one_hot + mask[..., :, None] * last_hot[..., None, :]
    one_hot = one_hot - mask[..., :, None] * mask[..., None, :]
    return one_hot, mask


def permutations_spec(spec: specs.Spec, enforce: bool = True) -> dict:
    """`process_permutations`'s spec: `should_be_permutation` -> pointer (+ `_mask`)."""
    out = {}
    for k, (stage, loc, t) in spec.items():
        if loc == specs.Location.NODE and t == specs.Type.SHOULD_BE_PERMUTATION:
            if enforce:
                out[k] = (stage, loc, specs.Type.PERMUTATION_POINTER)
                out[k + "_mask"] = (stage, loc, specs.Type.MASK_ONE)
            else:
                out[k] = (stage, loc, specs.Type.POINTER)
        else:
            out[k] = (stage, loc, t)
    return out


def permutations(feedback: Feedback, enforce: bool = True) -> Feedback:
    """`process_permutations`: sorting outputs become a permutation pointer plus a mask."""
    def convert(points) -> list[DataPoint]:
        out = []
        for dp in points:
            if dp.type_ != specs.Type.SHOULD_BE_PERMUTATION:
                out.append(dp)
            elif enforce:
                perm, mask = cyclic_permutation(dp.data)
                out.append(DataPoint(dp.name, dp.location, specs.Type.PERMUTATION_POINTER, perm))
                out.append(DataPoint(dp.name + "_mask", dp.location, specs.Type.MASK_ONE, mask))
            else:
                out.append(DataPoint(dp.name, dp.location, specs.Type.POINTER, dp.data))
        return out

    features = feedback.features
    features = features._replace(inputs=tuple(convert(features.inputs)),
                                 hints=tuple(convert(features.hints)))
    return feedback._replace(features=features, outputs=convert(feedback.outputs))
