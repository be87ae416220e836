"""Language-model training and sampling: loss, AdamW, schedule, train step, bits/byte, generate.

They work with any model called as `model(tokens, segment_pos, cache=None, return_cache=...)
-> (logits, cache)` (repdyn's Griffin family), and are meant to be assembled by a study:

    optimizer = make_optimizer(model, lr=3e-3)
    scheduler = make_scheduler(optimizer, warmup_steps=50, total_steps=1000)
    for step in range(1000):
        loss = train_step(model, optimizer, scheduler, sampler.sample())
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import torch
from torch import Tensor, nn

from repdyn.bench.errors import UserError
from repdyn.tasks.text import LMBatch, Tokenizer, TokenStream, eval_batches

__all__ = [
    "bits_per_byte",
    "generate",
    "lm_loss",
    "make_optimizer",
    "make_scheduler",
    "sample_next",
    "train_step",
    "warmup_cosine",
]


def lm_loss(model: nn.Module, batch: LMBatch) -> Tensor:
    """Mean next-token cross-entropy (nats) of a batch."""
    logits, _ = model(batch.inputs, batch.segment_pos, return_cache=False)
    return nn.functional.cross_entropy(logits.float().flatten(0, 1), batch.targets.flatten())


def make_optimizer(
    model: nn.Module,
    *,
    lr: float,
    weight_decay: float = 0.1,
    betas: tuple[float, float] = (0.9, 0.95),
) -> torch.optim.AdamW:
    """AdamW; weight decay on matrices only (not on norms, biases, gates' biases or a_param)."""
    matrices = [p for p in model.parameters() if p.requires_grad and p.ndim >= 2]
    others = [p for p in model.parameters() if p.requires_grad and p.ndim < 2]
    groups = [
        {"params": matrices, "weight_decay": weight_decay},
        {"params": others, "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=lr, betas=betas)


def warmup_cosine(
    step: int, *, warmup_steps: int, total_steps: int, min_ratio: float = 0.1
) -> float:
    """LR multiplier: linear warm-up to 1 (step 0 -> 1/warmup), then cosine down to `min_ratio`."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
    return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


def make_scheduler(
    optimizer: torch.optim.Optimizer, *, warmup_steps: int, total_steps: int, min_ratio: float = 0.1
) -> torch.optim.lr_scheduler.LambdaLR:
    """`warmup_cosine` as a scheduler stepped once per optimizer step."""
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda step: warmup_cosine(
            step, warmup_steps=warmup_steps, total_steps=total_steps, min_ratio=min_ratio
        ),
    )


def train_step(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler | None,
    batch: LMBatch,
    *,
    grad_clip: float | None = 1.0,
    autocast: Callable[[], AbstractContextManager[Any]] = nullcontext,
) -> Tensor:
    """One optimizer step on `batch`, its forward pass inside `autocast()` (e.g. `RunContext.autocast`);
    returns the loss before it as a detached tensor, so a step does not wait for the device."""
    model.train()
    optimizer.zero_grad(set_to_none=True)
    with autocast():
        loss = lm_loss(model, batch)
    loss.backward()
    if grad_clip is not None:
        nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    optimizer.step()
    if scheduler is not None:
        scheduler.step()
    return loss.detach()


@torch.no_grad()
def bits_per_byte(
    model: nn.Module,
    stream: TokenStream,
    tokenizer: Tokenizer,
    *,
    eval_len: int,
    batch_size: int = 8,
    max_windows: int | None = None,
) -> float:
    """Next-token NLL in bits per UTF-8 byte predicted, over consecutive windows of `eval_len`.

    Every window starts from an empty state, so `eval_len` is the context length evaluated.
    """
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    nll_nats, num_bytes = torch.zeros((), dtype=torch.float64, device=device), 0
    for batch in eval_batches(stream, eval_len, batch_size, max_windows):
        num_bytes += sum(tokenizer.count_bytes(row.tolist()) for row in batch.targets)
        batch = batch.to(device)
        logits, _ = model(batch.inputs, batch.segment_pos, return_cache=False)
        nll = nn.functional.cross_entropy(
            logits.float().flatten(0, 1), batch.targets.flatten(), reduction="sum"
        )
        nll_nats += nll.double()
    model.train(was_training)
    return nll_nats.item() / math.log(2) / num_bytes


def sample_next(
    logits: Tensor,
    *,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    generator: torch.Generator | None = None,
) -> int:
    """Draw a token id from logits [vocab]: temperature 0 is argmax; top-k, then top-p (nucleus)."""
    if temperature == 0:
        return int(logits.argmax())
    logits = logits.float() / temperature
    if top_k is not None and top_k < logits.numel():
        kth = torch.topk(logits, top_k).values[-1]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p is not None and top_p < 1.0:
        sorted_logits, order = torch.sort(logits, descending=True)
        probs = torch.softmax(sorted_logits, dim=-1)
        # keep the smallest prefix with mass >= top_p: drop a token once the mass before it does
        drop = probs.cumsum(-1) - probs >= top_p
        logits = logits.masked_fill(torch.zeros_like(drop).scatter(0, order, drop), float("-inf"))
    probs = torch.softmax(logits, dim=-1)
    return int(torch.multinomial(probs, 1, generator=generator))


def _check_sampling(
    max_new_tokens: int, temperature: float, top_k: int | None, top_p: float | None
) -> None:
    if max_new_tokens < 0:
        raise UserError(f"max_new_tokens must be >= 0; got {max_new_tokens}")
    if temperature < 0:
        raise UserError(f"temperature must be >= 0 (0 = greedy); got {temperature}")
    if top_k is not None and top_k < 1:
        raise UserError(f"top_k must be >= 1; got {top_k}")
    if top_p is not None and not 0.0 < top_p <= 1.0:
        raise UserError(f"top_p must lie in (0, 1]; got {top_p}")


@torch.no_grad()
def generate(
    model: nn.Module,
    tokenizer: Tokenizer,
    prompt: str,
    max_new_tokens: int = 200,
    *,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    seed: int = 0,
    cache: Any = None,
) -> Iterator[str]:
    """Stream the continuation of `prompt` as text pieces, decoding token by token from the cache.

    `cache` starts from a given state (e.g. a stored or mixed one, see `methods.state_soup`); the
    prompt is processed after it. The same seed gives the same text. Text is withheld while it ends
    inside a multi-byte character.
    """
    _check_sampling(max_new_tokens, temperature, top_k, top_p)
    prompt_ids = tokenizer.encode(prompt)
    if not prompt_ids:
        raise UserError("prompt must not be empty: the model needs at least one token to continue")
    model.eval()
    device = next(model.parameters()).device
    generator = torch.Generator().manual_seed(seed)
    logits, cache = model(torch.tensor([prompt_ids], device=device), cache=cache)
    base = tokenizer.decode(prompt_ids)
    new_ids: list[int] = []
    emitted = ""
    for step in range(max_new_tokens):
        token = sample_next(
            logits[0, -1].cpu(),
            temperature=temperature,
            top_k=top_k,
            top_p=top_p,
            generator=generator,
        )
        new_ids.append(token)
        text = tokenizer.decode(prompt_ids + new_ids)
        text = text[len(base) :] if text.startswith(base) else tokenizer.decode(new_ids)
        stable = text if step == max_new_tokens - 1 else text.rstrip("\ufffd")
        if stable.startswith(emitted) and len(stable) > len(emitted):
            yield stable[len(emitted) :]
            emitted = stable
        if step < max_new_tokens - 1:
            logits, cache = model(torch.tensor([[token]], device=device), cache=cache)
