"""CLRS's evaluation (clrs.md §7), pure numpy, with dm-clrs's exact semantics.

`evaluate(outputs, predictions)` scores each output probe and averages them into `score`
(the papers' "micro-F1"); `evaluate_hints(hints, lengths, hint_preds)` scores each hint per
step. Truths are `DataPoint`s in the Feedback layout; predictions map probe names to
`DataPoint`s (any object with name, location, type_ and data works, dm-clrs's own included).

| type                  | metric                                                   |
| pointer               | accuracy of pred == truth                                |
| mask                  | F1 of pred > 0.5 over entries whose truth is not -1      |
| mask_one, categorical | argmax accuracy over rows whose truth is not all -1      |
| scalar                | mean squared error                                       |
| permutation_pointer   | fused with its `<name>_mask` into a pointer first        |
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

from repdyn.tasks.clrs import specs
from repdyn.tasks.clrs.feedback import DataPoint


def fuse_perm_and_mask(perm: Any, mask: Any) -> DataPoint:
    """A node pointer from a permutation pointer: nodes set in the mask point to themselves."""
    if perm.type_ != specs.Type.PERMUTATION_POINTER or mask.name != perm.name + "_mask":
        raise ValueError(f"cannot fuse {perm.name!r} ({perm.type_}) with {mask.name!r}")
    n = perm.data.shape[-1]
    data = np.where(mask.data > 0.5, np.arange(n), np.argmax(perm.data, axis=-1))
    return DataPoint(perm.name, perm.location, specs.Type.POINTER, data)


def _fuse_truths(truths: Sequence[Any]) -> list:
    out, i = [], 0
    while i < len(truths):
        if truths[i].type_ == specs.Type.PERMUTATION_POINTER:
            out.append(fuse_perm_and_mask(truths[i], truths[i + 1]))
            i += 2
        else:
            out.append(truths[i])
            i += 1
    return out


def _fuse_predictions(preds: Mapping[str, Any]) -> dict:
    out = {}
    for name, pred in preds.items():
        base = name[:-len("_mask")]
        if (name.endswith("_mask") and base in preds
                and preds[base].type_ == specs.Type.PERMUTATION_POINTER):
            continue
        if pred.type_ == specs.Type.PERMUTATION_POINTER:
            out[name] = fuse_perm_and_mask(pred, preds[name + "_mask"])
        else:
            out[name] = pred
    return out


def _argmax_accuracy(pred: np.ndarray, truth: np.ndarray):
    valid = np.all(truth != specs.OutputClass.MASKED, axis=-1)
    return np.sum((np.argmax(pred, -1) == np.argmax(truth, -1)) * valid) / np.sum(valid)


def _mask_f1(pred: np.ndarray, truth: np.ndarray):
    """F1 of the positive class; precision (recall) is 1 when nothing is predicted (true)."""
    valid = (truth != specs.OutputClass.MASKED).astype(np.float32)
    tp = np.sum((((pred > 0.5) * (truth > 0.5)) * 1.0) * valid)
    fp = np.sum((((pred > 0.5) * (truth < 0.5)) * 1.0) * valid)
    fn = np.sum((((pred < 0.5) * (truth > 0.5)) * 1.0) * valid)
    precision = tp / (tp + fp) if tp + fp > 0 else np.float32(1.0)
    recall = tp / (tp + fn) if tp + fn > 0 else np.float32(1.0)
    if precision + recall > 0.0:
        return 2.0 * precision * recall / (precision + recall)
    return np.float32(0.0)


_METRICS = {
    specs.Type.SCALAR: lambda pred, truth: np.mean((pred - truth) ** 2),
    specs.Type.MASK: _mask_f1,
    specs.Type.MASK_ONE: _argmax_accuracy,
    specs.Type.CATEGORICAL: _argmax_accuracy,
    specs.Type.POINTER: lambda pred, truth: np.mean((pred == truth) * 1.0),
}


def _score(truth: Any, pred: Any, step: int | None = None, lengths: np.ndarray | None = None):
    if (pred.name, pred.location, pred.type_) != (truth.name, truth.location, truth.type_):
        raise ValueError(f"prediction {pred.name!r} ({pred.location}, {pred.type_}) does not "
                         f"match truth {truth.name!r} ({truth.location}, {truth.type_})")
    if truth.type_ not in _METRICS:
        raise ValueError(f"cannot evaluate probes of type {truth.type_!r}")
    truth_data, pred_data = np.asarray(truth.data), np.asarray(pred.data)
    if step is not None:
        if np.all(step >= lengths):
            return 0.0
        live = step < lengths
        truth_data, pred_data = truth_data[step][live], pred_data[live]
    return _METRICS[truth.type_](pred_data, truth_data)


def evaluate(outputs: Sequence[Any], predictions: Mapping[str, Any]) -> dict[str, float]:
    """Per-output scores plus `score`, their mean (clrs.md §7)."""
    evals = {}
    preds = _fuse_predictions(predictions)
    for truth in _fuse_truths(list(outputs)):
        if truth.name not in preds:
            raise ValueError(f"no prediction for output {truth.name!r}")
        evals[truth.name] = _score(truth, preds[truth.name])
    evals["score"] = sum(np.asarray(v).item() for v in evals.values()) / len(evals)
    return evals


def evaluate_hints(hints: Sequence[Any], lengths: np.ndarray,
                   hint_preds: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Hint scores: `hint_preds[i]` predicts step i + 1; per hint a length-weighted mean and
    `<name>_along_time`, the per-step scores."""
    evals: dict[str, Any] = {}
    lengths = np.asarray(lengths)
    preds = [_fuse_predictions(p) for p in hint_preds]
    for truth in _fuse_truths(list(hints)):
        along = [_score(truth, p[truth.name], step=i + 1, lengths=lengths)
                 for i, p in enumerate(preds)]
        evals[truth.name] = np.sum([x * np.sum(i + 1 < lengths)
                                    for i, x in enumerate(along)]) / np.sum(lengths - 1)
        evals[truth.name + "_along_time"] = np.array(along)
    return evals
