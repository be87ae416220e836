"""Reading a model's CLRS-Text answer back into arrays, and TransNAR's three scores.

TransNAR (transnar.md §3) scores a generated answer three ways, averaged over examples:
- parse score: the answer reads as CLRS-Text values, one per output field;
- shape score: every field also has the ground truth's shape;
- CLRS score: the fraction of elements equal to the ground truth, 0 when a shape is wrong.

Only the final output is scored; with traces it is the part after the last ` | `. An answer
ends at its first blank line (`\\n\\n`, the format's terminator), so a model that goes on
generating is cut there. A number is an integer or a decimal (`-?digits[.digits][e±digits]`);
index-like fields (pointers, masks, categories, indices) must hold integers; a matrix with rows
of unequal length does not parse.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence

import numpy as np

from repdyn.bench.errors import UserError
from repdyn.tasks.clrs import SPECS
from repdyn.tasks.clrs.specs import Type
from repdyn.tasks.clrs_text.format import (
    PARENTHESISED,
    SEARCH_ANSWERS,
    SEPARATOR,
    TRACE_SEPARATOR,
    answer_names,
    trace_fields,
)

_NUMBER = r"-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?"
_SCALAR = re.compile(_NUMBER)
_INTEGER = re.compile(r"-?\d+")
_ROW = re.compile(rf"\[{_NUMBER}(?: {_NUMBER})*\]")
_MATRIX = re.compile(rf"\[{_ROW.pattern}(?:, {_ROW.pattern})*\]")
_FLOAT_TYPES = frozenset({Type.SCALAR, Type.SHOULD_BE_PERMUTATION})


@dataclasses.dataclass(frozen=True)
class Scores:
    """TransNAR's three scores, each a mean over examples in [0, 1]."""

    shape: float
    parse: float
    clrs: float


def parse_answer(algorithm: str, text: str,
                 use_hints: bool = False) -> dict[str, np.ndarray] | None:
    """The answer's output fields as arrays (name -> array), or None if it does not parse.

    Field names are those the answer lists (`answer_names`); a scalar field gives a 0-d array,
    a list 1-d, a matrix 2-d - whatever shape the text has, right or wrong.
    """
    if algorithm not in SPECS:
        raise UserError(f"unknown CLRS algorithm {algorithm!r}; accepted: "
                        f"{', '.join(sorted(SPECS))}")
    body = text.split("\n\n", 1)[0].strip()
    if use_hints and trace_fields(algorithm):
        if TRACE_SEPARATOR.strip() not in body:
            return None
        body = body.rsplit(TRACE_SEPARATOR.strip(), 1)[1].strip()
    if use_hints and algorithm in PARENTHESISED:
        if not (body.startswith("(") and body.endswith(")")):
            return None
        body = body[1:-1]
    names = answer_names(algorithm, use_hints)
    parts = _split_top_level(body)
    if parts is None or len(parts) != len(names):
        return None
    out = {}
    for name, part in zip(names, parts, strict=True):
        value = _parse_value(part, integer=_field_type(algorithm, name, use_hints)
                             not in _FLOAT_TYPES)
        if value is None:
            return None
        out[name] = value
    return out


def score_answer(algorithm: str, prediction: str, target: str,
                 use_hints: bool = False) -> Scores:
    """The three scores (each 0 or 1, CLRS score in [0, 1]) of one predicted answer."""
    truth = parse_answer(algorithm, target, use_hints)
    if truth is None:
        raise UserError(f"score_answer: the target is not a CLRS-Text answer of {algorithm}: "
                        f"{target!r}")
    pred = parse_answer(algorithm, prediction, use_hints)
    if pred is None:
        return Scores(0.0, 0.0, 0.0)
    if any(pred[k].shape != truth[k].shape for k in truth):
        return Scores(0.0, 1.0, 0.0)
    equal = np.concatenate([(pred[k] == truth[k]).ravel() for k in truth])
    return Scores(1.0, 1.0, float(equal.mean()))


def score_answers(algorithm: str, predictions: Sequence[str], targets: Sequence[str],
                  use_hints: bool = False) -> Scores:
    """Shape, parse and CLRS scores averaged over a batch of (prediction, target) answers."""
    if len(predictions) != len(targets) or not targets:
        raise UserError(f"score_answers: need as many predictions as targets (>= 1), got "
                        f"{len(predictions)} and {len(targets)}")
    each = [score_answer(algorithm, p, t, use_hints) for p, t in zip(predictions, targets, strict=True)]
    return Scores(*(float(np.mean([getattr(s, f) for s in each]))
                    for f in ("shape", "parse", "clrs")))


def _field_type(algorithm: str, name: str, use_hints: bool) -> str:
    """The spec type that formats an answer field (the matchers' `s` holds `match`)."""
    if use_hints and algorithm in SEARCH_ANSWERS:
        return SPECS[algorithm][name][2]
    outputs = answer_names(algorithm, use_hints=False)
    index = answer_names(algorithm, use_hints).index(name)
    return SPECS[algorithm][outputs[index]][2]


def _split_top_level(text: str) -> list[str] | None:
    """`text` split at the ", " that sit outside brackets; None if brackets do not balance."""
    parts, depth, start = [], 0, 0
    for i, c in enumerate(text):
        if c == "[":
            depth += 1
        elif c == "]":
            depth -= 1
            if depth < 0:
                return None
        elif depth == 0 and text.startswith(SEPARATOR, i):
            parts.append(text[start:i])
            start = i + len(SEPARATOR)
    if depth != 0:
        return None
    return parts + [text[start:]]


def _parse_value(text: str, integer: bool) -> np.ndarray | None:
    """A number, `[a b]` or `[[a b], [c d]]` as a 0-, 1- or 2-d array; None if malformed."""
    if _SCALAR.fullmatch(text):
        rows, ndim = [[text]], 0
    elif _ROW.fullmatch(text):
        rows, ndim = [text[1:-1].split(" ")], 1
    elif _MATRIX.fullmatch(text):
        rows, ndim = [row.split(" ") for row in text[2:-2].split("], [")], 2
        if len({len(r) for r in rows}) != 1:
            return None
    else:
        return None
    if integer and not all(_INTEGER.fullmatch(v) for row in rows for v in row):
        return None
    values = np.array(rows, dtype=np.int64 if integer else np.float64)
    return values.reshape(values.shape[2 - ndim:]) if ndim < 2 else values
