"""CLRS's per-type losses (clrs.md §7; dm-clrs `losses.py`), summed over outputs and hints.

| type                  | loss                                                              |
| scalar                | squared error                                                     |
| mask                  | BCE with logits over entries whose truth is not -1                |
| mask_one, categorical | softmax cross-entropy (outputs: divided by the number of positives)|
| pointer               | cross-entropy over nodes of the true index                        |
| permutation_pointer   | -sum truth * log-Sinkhorn prediction                              |

Hint losses cover steps 1..T-1, each step i counted only for instances with length > i + 1,
and average over what is counted.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import Tensor

from repdyn.tasks.clrs.specs import OutputClass, Stage, Type

EPS = 1e-12  # dm-clrs losses.EPS


def _bce(logits: Tensor, truth: Tensor) -> Tensor:
    """Elementwise BCE with logits, in dm-clrs's stable form."""
    return logits.clamp_min(0) - logits * truth + torch.log1p(torch.exp(-logits.abs()))


def _pointer_ce(logits: Tensor, truth: Tensor) -> Tensor:
    """-log softmax(logits)[truth] over the last axis (truth: indices)."""
    return -torch.gather(torch.log_softmax(logits, -1), -1, truth.long().unsqueeze(-1)).squeeze(-1)


def output_loss(type_: str, pred: Tensor, truth: Tensor) -> Tensor:
    """Loss of one output probe (dm-clrs `output_loss`)."""
    if type_ == Type.SCALAR:
        return ((pred - truth) ** 2).mean()
    if type_ == Type.MASK:
        valid = (truth != OutputClass.MASKED).to(pred.dtype)
        return (_bce(pred, truth) * valid).sum() / valid.sum()
    if type_ in (Type.MASK_ONE, Type.CATEGORICAL):
        masked = truth * (truth != OutputClass.MASKED)
        return -(masked * torch.log_softmax(pred, -1)).sum() / (truth == OutputClass.POSITIVE).sum()
    if type_ == Type.POINTER:
        return _pointer_ce(pred, truth).mean()
    if type_ == Type.PERMUTATION_POINTER:
        return (-(truth * pred).sum(-1)).mean()
    raise ValueError(f"no loss for probes of type {type_!r}")


def _step_loss(type_: str, pred: Tensor, truth: Tensor) -> tuple[Tensor, Tensor]:
    """Unreduced hint loss and its mask (dm-clrs `_hint_loss`)."""
    if type_ == Type.SCALAR:
        loss = (pred - truth) ** 2
        return loss, torch.ones_like(loss)
    if type_ == Type.MASK:
        return _bce(pred, truth), (truth != OutputClass.MASKED).to(pred.dtype)
    if type_ == Type.MASK_ONE:
        loss = -(truth * torch.log_softmax(pred, -1)).sum(-1, keepdim=True)
        return loss, torch.ones_like(loss)
    if type_ == Type.CATEGORICAL:
        loss = -(truth * torch.log_softmax(pred, -1)).sum(-1)
        return loss, (truth == OutputClass.POSITIVE).any(-1).to(pred.dtype)
    if type_ == Type.POINTER:
        loss = _pointer_ce(pred, truth)
        return loss, torch.ones_like(loss)
    if type_ == Type.PERMUTATION_POINTER:
        loss = -(truth * pred).sum(-1)
        return loss, torch.ones_like(loss)
    raise ValueError(f"no loss for probes of type {type_!r}")


def hint_loss(type_: str, preds: Sequence[Tensor], truth: Tensor, lengths: Tensor) -> Tensor:
    """Loss of one hint: preds[i] predicts truth[i + 1] ([T, B, ...]); step i counts for
    instances with lengths > i + 1 (dm-clrs `hint_loss`)."""
    steps = min(len(preds), truth.shape[0] - 1)
    if steps <= 0:
        return truth.new_zeros(())
    loss, mask = _step_loss(type_, torch.stack(list(preds[:steps])), truth[1:steps + 1])
    live = (lengths[None, :] > torch.arange(steps, device=lengths.device)[:, None] + 1)
    mask = mask * live.reshape(live.shape + (1,) * (loss.dim() - 2)).to(loss.dtype)
    return (loss * mask).sum() / mask.sum().clamp_min(EPS)


def nar_loss(spec: Mapping[str, tuple[str, str, str]], output_preds: Mapping[str, Tensor],
             hint_preds: Sequence[Mapping[str, Tensor]], outputs: Mapping[str, Tensor],
             hints: Mapping[str, Tensor], lengths: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
    """Total loss (no weighting) and each probe's part: every output, and every decoded hint."""
    parts = {name: output_loss(spec[name][2], pred, outputs[name])
             for name, pred in output_preds.items()}
    for name in hint_preds[0] if hint_preds else ():
        if spec[name][0] == Stage.HINT:
            parts[name] = hint_loss(spec[name][2], [p[name] for p in hint_preds], hints[name],
                                    lengths)
    total = sum(parts.values(), torch.zeros((), device=lengths.device))
    return total, parts

