"""Dynamic evaluation (Krause et al. 2018; Rannen-Triki et al. 2024): score a segment, then learn from it.

The token stream is cut into segments of `segment_len` predictions inside each document. Each
segment is scored with the current weights (seeing `context_len` earlier tokens of its document
too), and only then is one optimizer step taken on that segment's loss (dynamic_eval.md §2), so
a segment's score never depends on its own or later tokens. Weights return to the trained ones
at every document start (`reset="document"`) or never, and always when the evaluation ends.

    config = DynamicEvalConfig(segment_len=64, optimizer="sgd", lr=0.1)
    result = dynamic_evaluate(model, stream, tokenizer, config)   # lr 0: static evaluation
    result.bits_per_byte, result.flops_per_token, result.cpu_seconds

Works with every model called as `model(tokens, segment_pos, return_cache=False) -> (logits, _)`
(Griffin, Hawk, Mamba). Costs are counted analytically (dynamic_eval.md §4) and timed.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor, nn

from repdyn.bench.errors import ConfigError, UserError
from repdyn.tasks.text import LMBatch, Tokenizer, TokenStream

__all__ = [
    "DynamicEvalConfig",
    "DynamicEvalResult",
    "RMSDecay",
    "Segment",
    "dynamic_evaluate",
    "flops_per_token",
    "mean_squared_gradients",
    "segments",
    "select_parameters",
    "static_evaluate",
]

OPTIMIZERS = ("sgd", "adam", "rms")
SUBSETS = ("all", "last_blocks", "norms_biases")
# Elementwise operations per trained parameter and update (approximate): SGD p -= lr g; Adam two
# moment updates, bias corrections, sqrt, divide, step; RMS divide by sqrt(MS) + eps, decay term.
OPTIMIZER_FLOPS = {"sgd": 2, "adam": 12, "rms": 7}
NORM_TYPES = (nn.LayerNorm, nn.RMSNorm)


@dataclass(frozen=True)
class DynamicEvalConfig:
    """How to adapt: segment and context lengths, optimizer, which parameters, when to reset."""

    segment_len: int = 64
    context_len: int = 0
    optimizer: Literal["sgd", "adam", "rms"] = "sgd"
    lr: float = 0.0
    decay: float = 0.0  # rms: the pull lambda * sqrt(MS) * (theta0 - theta) towards the trained weights
    eps: float = 1e-3  # rms: added to sqrt(MS) (Krause's code: 1e-3); adam: its eps
    betas: tuple[float, float] = (0.9, 0.999)  # adam
    subset: Literal["all", "last_blocks", "norms_biases"] = "all"
    last_blocks: int = 1  # subset="last_blocks": how many of the final residual blocks adapt
    reset: Literal["never", "document"] = "never"
    grad_clip: float = 0.0  # 0 = no clipping of the segment gradient's norm

    def __post_init__(self) -> None:
        if self.segment_len < 1 or self.context_len < 0:
            raise ConfigError("segment_len", f"needs segment_len >= 1 and context_len >= 0; got {self.segment_len}, "
                              f"{self.context_len}")
        if self.optimizer not in OPTIMIZERS:
            raise ConfigError("optimizer", f"unknown optimizer {self.optimizer!r}; accepted: {', '.join(OPTIMIZERS)}")
        if self.subset not in SUBSETS:
            raise ConfigError("subset", f"unknown subset {self.subset!r}; accepted: {', '.join(SUBSETS)}")
        if self.reset not in ("never", "document"):
            raise ConfigError("reset", f"must be 'never' or 'document'; got {self.reset!r}")
        if self.lr < 0 or self.decay < 0 or self.eps <= 0 or self.grad_clip < 0 or self.last_blocks < 1:
            raise ConfigError("lr", "needs lr >= 0, decay >= 0, eps > 0, grad_clip >= 0 and last_blocks >= 1")


@dataclass(frozen=True)
class Segment:
    """One scored segment: stream indices [start, stop) of its inputs, the first `context` of them
    only context; the targets are the next tokens of the scored inputs. `first` marks a document start."""

    start: int
    stop: int
    context: int
    first: bool


def _document_bounds(stream: TokenStream) -> list[tuple[int, int]]:
    starts = torch.nonzero(stream.segment_pos == 0).flatten().tolist()
    if not starts or starts[0] != 0:
        starts = [0, *starts]
    return list(zip(starts, [*starts[1:], len(stream)], strict=True))


def segments(stream: TokenStream, segment_len: int, context_len: int = 0) -> list[Segment]:
    """Segments inside each document: every token but a document's first is predicted exactly once."""
    out = []
    for lo, hi in _document_bounds(stream):
        for begin in range(lo, hi - 1, segment_len):
            end = min(begin + segment_len, hi - 1)  # scored inputs [begin, end) predict [begin+1, end+1)
            start = max(lo, begin - context_len)
            out.append(Segment(start, end, begin - start, begin == lo))
    if not out:
        raise UserError("the token stream has no document of 2 or more tokens to score")
    return out


def select_parameters(model: nn.Module, subset: str = "all", last_blocks: int = 1) -> dict[str, nn.Parameter]:
    """The parameters dynamic evaluation adapts: all, those of the last k residual blocks, or norms and biases."""
    params = dict(model.named_parameters())
    if subset == "all":
        return params
    if subset == "last_blocks":
        blocks = getattr(model, "blocks", None)
        if not isinstance(blocks, nn.ModuleList):
            raise UserError(f"subset 'last_blocks' needs a model with a `blocks` ModuleList; {type(model).__name__} has none")
        if last_blocks > len(blocks):
            raise ConfigError("last_blocks", f"the model has {len(blocks)} blocks; got {last_blocks}")
        chosen = {id(p) for block in list(blocks)[-last_blocks:] for p in block.parameters()}
        return {name: p for name, p in params.items() if id(p) in chosen}
    if subset == "norms_biases":
        norms = {id(p) for m in model.modules() if isinstance(m, NORM_TYPES) or type(m).__name__ == "RMSNorm"
                 for p in m.parameters(recurse=False)}
        return {name: p for name, p in params.items() if id(p) in norms or name.rsplit(".", 1)[-1] in ("bias", "b")}
    raise ConfigError("subset", f"unknown subset {subset!r}; accepted: {', '.join(SUBSETS)}")


class RMSDecay(torch.optim.Optimizer):
    """Krause et al.'s dynamic-evaluation rule (dynamic_eval.md §3), one tensor at a time:

        theta <- theta - lr * g / (sqrt(MS) + eps) - decay * sqrt(MS) * (theta - theta0)

    MS is the gradients' mean square collected on training data (`mean_squared_gradients`);
    the decay pulls each weight back to its trained value theta0 in proportion to sqrt(MS).
    """

    def __init__(self, params: list[nn.Parameter], ms: list[Tensor], *, lr: float, decay: float, eps: float) -> None:
        if len(ms) != len(params):
            raise UserError(f"RMSDecay needs one MS tensor per parameter; got {len(ms)} for {len(params)}")
        super().__init__(params, {"lr": lr, "decay": decay, "eps": eps})
        for p, square in zip(params, ms, strict=True):
            if square.shape != p.shape:
                raise UserError(f"an MS tensor of shape {tuple(square.shape)} does not match parameter {tuple(p.shape)}")
            self.state[p]["theta0"] = p.detach().clone()
            self.state[p]["rms"] = square.detach().to(p.dtype).sqrt()

    @torch.no_grad()
    def step(self, closure=None):  # type: ignore[override]
        for group in self.param_groups:
            for p in group["params"]:
                state = self.state[p]
                grad = torch.zeros_like(p) if p.grad is None else p.grad
                update = grad * group["lr"] / (state["rms"] + group["eps"])
                update += group["decay"] * state["rms"] * (p - state["theta0"])
                p.sub_(update)


def mean_squared_gradients(
    model: nn.Module, batches: Iterable[LMBatch], params: dict[str, nn.Parameter] | None = None
) -> dict[str, Tensor]:
    """Mean over training batches of each parameter's squared gradient of the batch's mean loss (RMSDecay's MS)."""
    params = dict(model.named_parameters()) if params is None else params
    total = {name: torch.zeros_like(p) for name, p in params.items()}
    count = 0
    for batch in batches:
        logits, _ = model(batch.inputs, batch.segment_pos, return_cache=False)
        loss = nn.functional.cross_entropy(logits.float().flatten(0, 1), batch.targets.flatten())
        grads = torch.autograd.grad(loss, list(params.values()), allow_unused=True)
        for (name, _), grad in zip(params.items(), grads, strict=True):
            if grad is not None:
                total[name] += grad.square()
        count += 1
    if count == 0:
        raise UserError("mean_squared_gradients needs at least one training batch")
    return {name: t / count for name, t in total.items()}


def _gradient_path_parameters(model: nn.Module, trained: dict[str, nn.Parameter]) -> int:
    """Parameters that backward passes activation gradients through: all but the blocks below the
    first block holding a trained parameter (the embedding lookup needs none)."""
    total = sum(p.numel() for p in model.parameters())
    blocks = getattr(model, "blocks", None)
    if not isinstance(blocks, nn.ModuleList):
        return total
    ids = {id(p) for p in trained.values()}
    below = 0
    for block in blocks:
        if any(id(p) in ids for p in block.parameters()):
            break
        below += sum(p.numel() for p in block.parameters())
    return total - below


def flops_per_token(
    num_params: int,
    *,
    segment_len: int,
    context_len: int = 0,
    dynamic: bool = False,
    num_trained: int = 0,
    gradient_path: int | None = None,
    optimizer: str = "sgd",
) -> float:
    """Analytical FLOPs per scored token (dynamic_eval.md §4).

    Forward 2N per processed token; dynamic adds backward (2N activation gradients along the
    gradient path plus 2N_trained weight gradients) and the optimizer's elementwise work once per
    segment. Each segment processes context_len + segment_len tokens to score segment_len of them.
    Attention's context-dependent terms are left out (small at these contexts).
    """
    processed = (context_len + segment_len) / segment_len
    flops = 2.0 * num_params * processed
    if dynamic:
        path = num_params if gradient_path is None else gradient_path
        flops += (2.0 * path + 2.0 * num_trained) * processed
        flops += OPTIMIZER_FLOPS[optimizer] * num_trained / segment_len
    return flops


@dataclass(frozen=True)
class DynamicEvalResult:
    """Scores and costs of one pass over a stream."""

    nll_nats: float  # summed over every scored token
    num_tokens: int
    num_bytes: int
    segment_nll: tuple[float, ...]  # nats per segment, in stream order
    updates: int
    flops_per_token: float
    cpu_seconds: float  # process CPU time of the pass

    @property
    def bits_per_byte(self) -> float:
        return self.nll_nats / math.log(2) / self.num_bytes

    @property
    def nats_per_token(self) -> float:
        return self.nll_nats / self.num_tokens


def _segment_batches(
    stream: TokenStream, parts: list[Segment], device: torch.device
) -> Iterator[tuple[Segment, LMBatch, Tensor]]:
    """Each segment as a one-row batch on `device`, with its scored targets on the host (to count bytes)."""
    for seg in parts:
        inputs = stream.tokens[seg.start : seg.stop]
        targets = stream.tokens[seg.start + 1 : seg.stop + 1]
        positions = stream.segment_pos[seg.start : seg.stop]
        yield seg, LMBatch(inputs[None], targets[None], positions[None]).to(device), targets[seg.context :]


def _make_optimizer(config: DynamicEvalConfig, params: dict[str, nn.Parameter], ms: dict[str, Tensor] | None):
    values = list(params.values())
    if config.optimizer == "sgd":
        return torch.optim.SGD(values, lr=config.lr)
    if config.optimizer == "adam":
        return torch.optim.Adam(values, lr=config.lr, betas=config.betas, eps=config.eps)
    if ms is None:
        raise UserError("optimizer 'rms' needs mean squared gradients from training data (mean_squared_gradients)")
    missing = sorted(set(params) - set(ms))
    if missing:
        raise UserError(f"no mean squared gradient for parameter {missing[0]!r}")
    return RMSDecay(values, [ms[name] for name in params], lr=config.lr, decay=config.decay, eps=config.eps)


def dynamic_evaluate(
    model: nn.Module,
    stream: TokenStream,
    tokenizer: Tokenizer,
    config: DynamicEvalConfig,
    *,
    ms: dict[str, Tensor] | None = None,
    keep_adapted: bool = False,
) -> DynamicEvalResult:
    """Score every segment, then take one optimizer step on it; returns bits/byte and costs.

    `ms` feeds the RMS optimizer. The trained weights are restored at the end unless `keep_adapted`.
    """
    trained = select_parameters(model, config.subset, config.last_blocks)
    if not trained:
        raise UserError(f"subset {config.subset!r} selects no parameter of {type(model).__name__}")
    device = next(model.parameters()).device
    theta0 = {name: p.detach().clone() for name, p in model.named_parameters()}
    flags = {name: p.requires_grad for name, p in model.named_parameters()}
    for name, p in model.named_parameters():
        p.requires_grad_(name in trained)
    was_training = model.training
    model.eval()
    parts = segments(stream, config.segment_len, config.context_len)
    optimizer = _make_optimizer(config, trained, ms)
    num_bytes, num_tokens, scores = 0, 0, []
    start = time.process_time()
    try:
        for i, (seg, batch, host_targets) in enumerate(_segment_batches(stream, parts, device)):
            if seg.first and config.reset == "document" and i > 0:
                _restore(model, theta0)
                optimizer = _make_optimizer(config, trained, ms)
            logits, _ = model(batch.inputs, batch.segment_pos, return_cache=False)
            scored_logits, scored_targets = logits[0, seg.context :].float(), batch.targets[0, seg.context :]
            nll = nn.functional.cross_entropy(scored_logits, scored_targets, reduction="sum")
            scores.append(nll.detach())  # the score is fixed before any update on this segment
            num_tokens += scored_targets.numel()
            num_bytes += tokenizer.count_bytes(host_targets.tolist())
            optimizer.zero_grad(set_to_none=True)
            (nll / scored_targets.numel()).backward()
            if config.grad_clip:
                nn.utils.clip_grad_norm_(list(trained.values()), config.grad_clip)
            optimizer.step()
        per_segment = torch.stack(scores).tolist() if scores else []  # read once, not once per segment
        seconds = time.process_time() - start
    finally:
        for name, p in model.named_parameters():
            p.requires_grad_(flags[name])
        if not keep_adapted:
            _restore(model, theta0)
        model.train(was_training)
    num_params = sum(p.numel() for p in model.parameters())
    flops = flops_per_token(
        num_params, segment_len=config.segment_len, context_len=config.context_len, dynamic=True,
        num_trained=sum(p.numel() for p in trained.values()), gradient_path=_gradient_path_parameters(model, trained),
        optimizer=config.optimizer,
    )
    return DynamicEvalResult(sum(per_segment), num_tokens, num_bytes, tuple(per_segment), len(parts), flops, seconds)


@torch.no_grad()
def static_evaluate(
    model: nn.Module, stream: TokenStream, tokenizer: Tokenizer, segment_len: int, context_len: int = 0
) -> DynamicEvalResult:
    """The same segments scored with fixed weights: the baseline dynamic evaluation is compared with."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    parts = segments(stream, segment_len, context_len)
    num_bytes, num_tokens, scores = 0, 0, []
    start = time.process_time()
    for seg, batch, host_targets in _segment_batches(stream, parts, device):
        logits, _ = model(batch.inputs, batch.segment_pos, return_cache=False)
        scored_targets = batch.targets[0, seg.context :]
        nll = nn.functional.cross_entropy(logits[0, seg.context :].float(), scored_targets, reduction="sum")
        scores.append(nll)
        num_tokens += scored_targets.numel()
        num_bytes += tokenizer.count_bytes(host_targets.tolist())
    per_segment = torch.stack(scores).tolist() if scores else []
    seconds = time.process_time() - start
    model.train(was_training)
    num_params = sum(p.numel() for p in model.parameters())
    flops = flops_per_token(num_params, segment_len=segment_len, context_len=context_len)
    return DynamicEvalResult(sum(per_segment), num_tokens, num_bytes, tuple(per_segment), 0, flops, seconds)


@torch.no_grad()
def _restore(model: nn.Module, theta0: dict[str, Tensor]) -> None:
    for name, p in model.named_parameters():
        p.copy_(theta0[name])
