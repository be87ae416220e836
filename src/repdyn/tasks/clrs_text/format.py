"""The CLRS-Text format: one CLRS-30 instance as a (question, answer) pair of strings.

Character for character the strings of dm-clrs 2.0.3's `clrs_utils.format_clrs_example`
(clrs.md §9):

    question = "{algorithm}:\\n{inputs}\\n{output names}:\\n"      answer = "{outputs}\\n\\n"

- inputs are `name: value` joined by ", " in spec order; `pos` is dropped, and `adj` too (it is
  implied by `A`);
- node arrays print as `[a b c]`, edge arrays as `[[a b], [c d]]`, a mask_one as its index,
  pointers / masks / categoricals as integers, scalars with Python's shortest float repr;
- a sorting output (a predecessor chain) prints the `key` values in sorted order.

With traces (`use_hints=True`) the hints that shadow the outputs (`pi_h` for `pi`, ...) are
spelled out: the first one joins the inputs as `initial_trace: ...`, the header becomes
`trace | {output names}`, and the answer lists hints 2 .. T-1 then ` | ` and the output (the last
hint equals the output and is not repeated). Search tasks answer with their index hints
instead of their outputs (`binary_search` -> `(low, high)`), string matchers trace the shift
`s`; `binary_search` and Kadane's traces are parenthesised. An algorithm without such hints
(`segments_intersect`) prints the same strings with or without traces.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from repdyn.bench.errors import UserError
from repdyn.tasks.clrs import SPECS, Batch, Trajectory
from repdyn.tasks.clrs.specs import Location, OutputClass, Stage, Type

# clrs.md §9 / clrs_utils.py: the format's separators and markers.
SEPARATOR = ", "
TRACE_SEPARATOR = " | "
INITIAL_TRACE = "initial_trace:"
TRACE = "trace"
HINT_SUFFIX = "_h"

# With traces, these algorithms answer with (the last value of) hint fields instead of outputs.
SEARCH_ANSWERS: Mapping[str, tuple[str, ...]] = {
    "binary_search": ("low", "high"),
    "find_maximum_subarray_kadane": ("best_low", "best_high"),
    "quickselect": ("pivot",),
}
# With traces, the string matchers name their answer after (and trace) the shift hint `s`.
MATCHER_TRACE = {"naive_string_matcher": "s", "kmp_matcher": "s"}
PARENTHESISED = frozenset({"binary_search", "find_maximum_subarray_kadane"})


def format_example(algorithm: str, sample: Trajectory | Batch,
                   use_hints: bool = False) -> tuple[str, str]:
    """CLRS-Text (question, answer) for one instance (a `Trajectory` or a `Batch` of size 1)."""
    trajectory = _as_trajectory(algorithm, sample)
    spec = SPECS[algorithm]
    inputs = SEPARATOR.join(
        f"{name}: {_value_str(spec, name, trajectory.inputs[name], trajectory.inputs)}"
        for name, (stage, _, _) in spec.items()
        if stage == Stage.INPUT and not _hidden_input(name, spec))
    if use_hints and algorithm in SEARCH_ANSWERS:
        output = SEPARATOR.join(_value_str(spec, name, trajectory.hints[name][-1],
                                           trajectory.inputs) for name in SEARCH_ANSWERS[algorithm])
    else:  # the string matchers keep their `match` output under the header `s`
        output = SEPARATOR.join(_value_str(spec, name, trajectory.outputs[name], trajectory.inputs)
                                for name in answer_names(algorithm, use_hints=False))
    header = SEPARATOR.join(answer_names(algorithm, use_hints))
    fields = trace_fields(algorithm) if use_hints else ()
    if use_hints:
        output, header = _parenthesise(algorithm, [output]), _parenthesise(algorithm, [header])
    if fields:
        initial = _parenthesise(algorithm, [
            _value_str(spec, _shadowed(algorithm, f), trajectory.hints[f][0], trajectory.inputs)
            for f in fields])
        steps = [[_value_str(spec, _shadowed(algorithm, f), step, trajectory.inputs)
                  for step in trajectory.hints[f][1:-1]] for f in fields]
        trace = SEPARATOR.join(_parenthesise(algorithm, list(step)) for step in zip(*steps, strict=True))
        inputs = SEPARATOR.join([inputs, f"{INITIAL_TRACE} {initial}"])
        output = TRACE_SEPARATOR.join([trace, output])
        header = TRACE_SEPARATOR.join([TRACE, header])
    return f"{algorithm}:\n{inputs}\n{header}:\n", f"{output}\n\n"


def answer_names(algorithm: str, use_hints: bool) -> tuple[str, ...]:
    """The names the answer lists, in order (the question's last line, without `trace | `)."""
    spec = _spec(algorithm)
    if use_hints and algorithm in MATCHER_TRACE:
        return (MATCHER_TRACE[algorithm],)
    if use_hints and algorithm in SEARCH_ANSWERS:
        return SEARCH_ANSWERS[algorithm]
    return tuple(name for name, (stage, _, _) in spec.items() if stage == Stage.OUTPUT)


def trace_fields(algorithm: str) -> tuple[str, ...]:
    """The hints a trace spells out, in spec order; empty when the algorithm prints no trace."""
    spec = _spec(algorithm)
    hints = [name for name, (stage, _, _) in spec.items() if stage == Stage.HINT]
    if algorithm in MATCHER_TRACE:
        return tuple(h for h in hints if h == MATCHER_TRACE[algorithm])
    if algorithm in SEARCH_ANSWERS:
        return tuple(h for h in hints if h in SEARCH_ANSWERS[algorithm])
    outputs = answer_names(algorithm, use_hints=False)
    return tuple(h for h in hints if h[:-len(HINT_SUFFIX)] in outputs)


def _shadowed(algorithm: str, hint: str) -> str:
    """The probe whose spec formats a trace field (`pi` for `pi_h`; search hints themselves)."""
    if algorithm in MATCHER_TRACE:
        return MATCHER_TRACE[algorithm]
    if algorithm in SEARCH_ANSWERS:
        return hint
    return hint[:-len(HINT_SUFFIX)]


def _parenthesise(algorithm: str, parts: list[str]) -> str:
    joined = SEPARATOR.join(parts)
    return f"({joined})" if algorithm in PARENTHESISED else joined


def _hidden_input(name: str, spec: Mapping) -> bool:
    return name == "pos" or (name == "adj" and "A" in spec)


def _spec(algorithm: str):
    if algorithm not in SPECS:
        raise UserError(f"unknown CLRS algorithm {algorithm!r}; accepted: "
                        f"{', '.join(sorted(SPECS))}")
    return SPECS[algorithm]


def _as_trajectory(algorithm: str, sample: Trajectory | Batch) -> Trajectory:
    _spec(algorithm)
    if isinstance(sample, Batch):
        if sample.size != 1:
            raise UserError(f"format_example: a Batch must hold one instance, got {sample.size}")
        sample = sample.trajectory(0)
    if sample.name != algorithm:
        raise UserError(f"format_example: sample of {sample.name!r} given for {algorithm!r}")
    return sample


def _value_str(spec: Mapping, name: str, x: np.ndarray, inputs: Mapping[str, np.ndarray]) -> str:
    """One probe value (no batch axis) in CLRS-Text notation, read as `spec[name]` says."""
    _, location, kind = spec[name]
    x = np.asarray(x)
    if location == Location.NODE:
        return _node_str(kind, x, inputs)
    if location == Location.GRAPH:
        if kind == Type.SCALAR:
            return str(x[()])
        if kind == Type.CATEGORICAL:
            return str(np.argmax(x, axis=-1))
        return str(x.astype(int))
    if kind == Type.SCALAR:
        return _rows(x, str)
    if kind == Type.CATEGORICAL:  # lcs_length's masked cells (-1 everywhere) print as -1
        classes = np.argmax(x, axis=-1)
        classes[np.any(x == OutputClass.MASKED, axis=-1)] = -1
        return _rows(classes, str)
    return _rows(x.astype(int), str)


def _node_str(kind: str, x: np.ndarray, inputs: Mapping[str, np.ndarray]) -> str:
    if kind == Type.SHOULD_BE_PERMUTATION:
        key = np.asarray(inputs["key"])
        return _row(key[chain_order(x)], str)
    if kind == Type.MASK_ONE:
        [index] = np.flatnonzero(x)
        return str(index)
    if kind == Type.SCALAR:
        return _row(x, str)
    if kind == Type.CATEGORICAL:
        return _row(np.argmax(x, axis=-1), str)
    return _row(x.astype(int), str)


def _row(values: np.ndarray, to_str) -> str:
    return "[" + " ".join(to_str(v) for v in values) + "]"


def _rows(matrix: np.ndarray, to_str) -> str:
    return "[" + SEPARATOR.join(_row(r, to_str) for r in matrix) + "]"


def chain_order(pred: np.ndarray) -> np.ndarray:
    """Node ids in list order from predecessor pointers (the head points to itself).

    The tail is the one node nobody points to; walking predecessors from it gives the order
    back to front (clrs_utils.predecessors_to_order).
    """
    pred = np.asarray(pred).astype(int)
    pointed = np.zeros(len(pred), dtype=bool)
    pointed[pred] = True
    tails = np.flatnonzero(~pointed)
    if len(tails) != 1:
        raise ValueError(f"predecessor pointers {pred} do not form one chain")
    order = np.zeros(len(pred), dtype=int)
    order[-1] = tails[0]
    for i in range(len(pred) - 2, -1, -1):
        order[i] = pred[order[i + 1]]
    return order
