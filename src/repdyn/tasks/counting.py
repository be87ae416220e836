"""Counting and copying sequences of the over-squashing paper (oversquashing.md §1, §3).

Token sequences over a five-symbol vocabulary that end in a query token ``=``; the answer is a
class index read at the last position:

* ``count_ones``: ``1 1 0 1 =`` -> number of ones (all ones by default; ``p_one=0.7`` gives the
  paper's Bernoulli(0.7) strings);
* ``sum_ones``: ``1 + 1 + 1 =`` -> the sum;
* ``copy_last``: ``1 1 1 0 =`` -> the last element (paper: last element of ``1...10``);
* ``copy_first``: ``0 1 1 1 =`` -> the first element.

``separator_every=k`` puts a comma after every k tokens before the query (the paper's
prompt-level fix: ``111,111,11``). ``mixed_length_batch`` puts different lengths in one batch,
left-padded so that every query is the last token.
"""

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from repdyn.bench.errors import UserError

VOCAB = ("0", "1", "+", ",", "=")
ZERO, ONE, PLUS, COMMA, QUERY = range(len(VOCAB))
TASKS = ("count_ones", "sum_ones", "copy_last", "copy_first")


@dataclass
class CountingBatch:
    """``tokens`` ``[B, T]`` ids into ``VOCAB``; ``targets`` ``[B]`` the answer at the last token
    (a count in ``0..length`` or a copied digit ``0``/``1``); ``mask`` ``[B, T]`` False on left
    padding (None when every row has the same length)."""

    tokens: Tensor
    targets: Tensor
    mask: Tensor | None = None

    def to(self, device: torch.device) -> "CountingBatch":
        """The batch on `device`, copied without waiting for the device (batches are drawn on the CPU)."""
        tokens, targets = (t.to(device, non_blocking=True) for t in (self.tokens, self.targets))
        return CountingBatch(tokens, targets, None if self.mask is None else self.mask.to(device, non_blocking=True))


def counting_batch(
    task: str,
    batch_size: int,
    length: int,
    *,
    generator: torch.Generator | None = None,
    p_one: float = 1.0,
    separator_every: int | None = None,
) -> CountingBatch:
    """Draw ``batch_size`` sequences of ``length`` digits for ``task``.

    Digits are 1 with probability ``p_one`` (1.0: the all-ones strings of the paper); in the copy
    tasks the element to copy is uniform over {0, 1} and the other digits fill the rest.
    """
    if task not in TASKS:
        raise UserError(f"unknown counting task {task!r}; accepted: {TASKS}")
    if length < 1:
        raise UserError(f"length must be >= 1, got {length}")
    if not 0.0 <= p_one <= 1.0:
        raise UserError(f"p_one must be in [0, 1], got {p_one}")
    if separator_every is not None and separator_every < 1:
        raise UserError(f"separator_every must be >= 1 or None, got {separator_every}")
    digits = (torch.rand(batch_size, length, generator=generator) < p_one).long()
    if task in ("copy_last", "copy_first"):
        slot = length - 1 if task == "copy_last" else 0
        digits[:, slot] = torch.randint(2, (batch_size,), generator=generator)
        targets = digits[:, slot].clone()
    else:
        targets = digits.sum(dim=1)
    tokens = _interleave(digits, PLUS) if task == "sum_ones" else digits
    if separator_every is not None:
        tokens = _insert_separators(tokens, separator_every)
    query = torch.full((batch_size, 1), QUERY, dtype=torch.long)
    return CountingBatch(tokens=torch.cat([tokens, query], dim=1), targets=targets)


def _interleave(digits: Tensor, symbol: int) -> Tensor:
    """``d1 d2 d3`` -> ``d1 s d2 s d3``."""
    batch, length = digits.shape
    out = torch.full((batch, 2 * length - 1), symbol, dtype=torch.long)
    out[:, 0::2] = digits
    return out


def _insert_separators(tokens: Tensor, every: int) -> Tensor:
    """A comma after every ``every`` tokens, none at the end: ``111,111,11``."""
    chunks = tokens.split(every, dim=1)
    comma = torch.full((tokens.shape[0], 1), COMMA, dtype=torch.long)
    pieces = [piece for chunk in chunks[:-1] for piece in (chunk, comma)] + [chunks[-1]]
    return torch.cat(pieces, dim=1)


def mixed_length_batch(
    task: str,
    lengths: Sequence[int],
    *,
    generator: torch.Generator | None = None,
    p_one: float = 1.0,
) -> CountingBatch:
    """One sequence of each length in ``lengths`` (digits, as ``counting_batch``), left-padded with
    ``ZERO`` to the longest; ``mask`` marks the real tokens, so a model given it as its key
    padding mask sees each row exactly as it would alone."""
    rows = [counting_batch(task, 1, n, generator=generator, p_one=p_one) for n in lengths]
    width = max(row.tokens.shape[1] for row in rows)
    tokens = torch.full((len(rows), width), ZERO, dtype=torch.long)
    mask = torch.zeros(len(rows), width, dtype=torch.bool)
    for i, row in enumerate(rows):
        tokens[i, width - row.tokens.shape[1] :] = row.tokens[0]
        mask[i, width - row.tokens.shape[1] :] = True
    return CountingBatch(tokens, torch.cat([row.targets for row in rows]), mask)
