"""RecurrentGemma / Griffin (Botev et al. 2024; De et al. 2024): a constant-size state that
decodes at flat cost, and a recurrent-plus-local-attention LM that keeps up with MQA attention.

Arms: `decode` (no training: per-token decode latency and cache bytes at growing contexts, Griffin
with a local window against the same stack with global attention, claim A), and three byte-level
LMs of equal width trained on the Python standard library's source (claim B): `griffin` (R, R, A,
local attention), `hawk` (R only) and `transformer` (A only, global MQA). Facts: griffin.md.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

import matplotlib.pyplot as plt
import numpy as np
import torch

from repdyn.bench import config as cfg
from repdyn.bench.checkpoint import list_checkpoints, load_checkpoint
from repdyn.bench.claims import Claim, Verdict, not_run
from repdyn.bench.config import param
from repdyn.bench.context import RunContext
from repdyn.bench.errors import CheckpointError, ConfigError, UserError
from repdyn.bench.precision import autocast_param
from repdyn.bench.store import RunStore
from repdyn.bench.study import Figure, Study
from repdyn.bench.view import ArmView, RunView
from repdyn.methods.lm import bits_per_byte, make_optimizer, make_scheduler, train_step
from repdyn.models.griffin import Griffin, GriffinCache, GriffinConfig, block_pattern
from repdyn.tasks.text import (
    BatchSampler,
    ByteTokenizer,
    TokenStream,
    encode_documents,
    load_corpus,
    pydoc_documents,
    split_documents,
)

LM_ARMS = ("griffin", "hawk", "transformer")
DECODE_MODELS = ("griffin", "global")  # local-window Griffin vs the all-global-attention stack


@dataclass(frozen=True)
class ModelConfig:
    """The LMs of claim B (griffin.md §8: about 1M parameters, width 128, 3 layers, window 64)."""

    width: int = param(128, min=4, help="model width D")
    num_heads: int = param(4, min=1, help="attention heads (and RG-LRU gate blocks)")
    num_layers: int = param(3, min=1, help="residual blocks")
    window: int = param(64, min=1, help="local attention window of the griffin arm")
    pattern: Literal["griffin", "hawk", "transformer"] = param(
        "griffin", help="set per arm by arms()"
    )


@dataclass(frozen=True)
class DataConfig:
    """Byte-level text: the stdlib's own source (default) or a user file/folder; pydoc as shift."""

    corpus: str = param("stdlib", help="'stdlib', 'pydoc', or a path to a UTF-8 file or folder")
    val_fraction: float = param(0.05, min=0.001, max=0.5, help="documents held out for evaluation")
    max_train_tokens: int = param(
        8_000_000, min=1000, help="training bytes kept (random documents)"
    )
    eval_windows: int = param(24, min=1, help="evaluation windows of the long length (4x train)")


@dataclass(frozen=True)
class TrainConfig:
    """AdamW with warm-up and cosine decay on random windows (griffin.md §8 claim B)."""

    steps: int = param(300, min=1, help="optimizer steps per LM arm")
    batch_size: int = param(16, min=1)
    seq_len: int = param(256, min=8, help="training length T (evaluated at T and 4T)")
    lr: float = param(4e-3, min=0.0)
    warmup_steps: int = param(30, min=0)
    weight_decay: float = param(0.1, min=0.0)
    grad_clip: float = param(1.0, min=0.0, help="0 = no clipping")
    eval_every: int = param(100, min=1, help="validation bits/byte every N steps")
    eval_factor: int = param(4, min=1, help="the long evaluation length is eval_factor x seq_len")


@dataclass(frozen=True)
class DecodeConfig:
    """Claim A: per-token decode cost at growing contexts (griffin.md §8: 256 to 8192)."""

    contexts: tuple[int, ...] = param((256, 1024, 4096, 8192), help="context lengths measured")
    batch_size: int = param(4, min=1, help="sequences decoded together")
    width: int = param(256, min=4)
    num_heads: int = param(4, min=1)
    num_layers: int = param(3, min=1)
    window: int = param(64, min=1, help="local window of the Griffin model")
    steps: int = param(8, min=1, help="decode steps per timing")
    repeats: int = param(7, min=1, help="timings per context (the median is kept)")
    prefill_chunk: int = param(512, min=1, help="prompt tokens per prefill call")


@dataclass(frozen=True)
class GriffinStudyConfig:
    """Claim A (the `decode` arm) and claim B (one LM arm per block pattern)."""

    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    decode: DecodeConfig = field(default_factory=DecodeConfig)
    role: Literal["lm", "decode"] = param("lm", help="set per arm by arms()")
    lm_arms: tuple[str, ...] = param(
        LM_ARMS, help="LM arms trained for claim B (subset of griffin, hawk, transformer)"
    )
    decode_arm: bool = param(True, help="measure decoding for claim A")
    autocast: str = autocast_param()  # RecurrentGemma runs in bf16 (griffin.md §1.3, §1.6)
    checkpoint_every: int = param(
        100, min=0, help="checkpoint every N steps (0 = at the end and on signals)"
    )

    def validate(self) -> None:
        unknown = sorted(set(self.lm_arms) - set(LM_ARMS))
        if unknown:
            raise ConfigError(
                "lm_arms", f"unknown arm {unknown[0]!r}; accepted: {', '.join(LM_ARMS)}"
            )
        for section in ("model", "decode"):
            width, heads = getattr(self, section).width, getattr(self, section).num_heads
            if width % heads or (width // heads) % 4:
                raise ConfigError(
                    f"{section}.num_heads", "must split width into heads of 4k channels"
                )
        if not self.decode.contexts or min(self.decode.contexts) < 1:
            raise ConfigError("decode.contexts", "must be a non-empty list of positive lengths")


def arms(config: GriffinStudyConfig) -> dict[str, GriffinStudyConfig]:
    """`decode` (claim A) and one LM arm per pattern in `lm_arms` (claim B)."""
    out = {}
    if config.decode_arm:
        out["decode"] = replace(config, role="decode")
    for name in config.lm_arms:
        out[name] = replace(config, role="lm", model=replace(config.model, pattern=name))
    return out


def lm_model_config(model: ModelConfig, vocab_size: int) -> GriffinConfig:
    """The arm's LM: RecurrentGemma's recipe (bf16 sqrt(D) embedding scale, soft-cap 30), small.

    The transformer arm attends globally (the paper's MQA baseline); griffin uses the local window.
    """
    return GriffinConfig(
        vocab_size=vocab_size,
        width=model.width,
        num_heads=model.num_heads,
        mlp_width=3 * model.width,
        block_types=block_pattern(model.pattern, model.num_layers),
        attention_window=None if model.pattern == "transformer" else model.window,
        logits_soft_cap=30.0,
        embeddings_scale_by_sqrt_dim=True,
    )


# ---- claim B: language modelling ----------------------------------------------------------------


def load_streams(
    data: DataConfig, eval_tokens: int
) -> tuple[TokenStream, TokenStream, TokenStream]:
    """(train, validation, shifted) byte streams; split and document order use a fixed seed (0)."""
    tokenizer = ByteTokenizer()
    train_docs, val_docs = split_documents(load_corpus(data.corpus), data.val_fraction, seed=0)
    order = torch.randperm(len(train_docs), generator=torch.Generator().manual_seed(0)).tolist()
    train = encode_documents(
        [train_docs[i] for i in order], tokenizer, max_tokens=data.max_train_tokens
    )
    val = encode_documents(val_docs, tokenizer, max_tokens=eval_tokens)
    shifted = encode_documents(pydoc_documents(), tokenizer, max_tokens=eval_tokens)
    return train, val, shifted


def train_lm(ctx: RunContext) -> None:
    """Train one LM arm; log train loss and validation bits/byte at T; at the end 4T and pydoc."""
    cfg: GriffinStudyConfig = ctx.config
    t = cfg.train
    long_len = t.eval_factor * t.seq_len
    eval_tokens = cfg.data.eval_windows * long_len + 1
    train_stream, val_stream, shifted_stream = load_streams(cfg.data, eval_tokens)
    tokenizer = ByteTokenizer()
    model = Griffin(lm_model_config(cfg.model, tokenizer.vocab_size)).to(ctx.device)
    optimizer = make_optimizer(model, lr=t.lr, weight_decay=t.weight_decay)
    scheduler = make_scheduler(optimizer, warmup_steps=t.warmup_steps, total_steps=t.steps)
    sampler = BatchSampler(train_stream, t.batch_size, t.seq_len, seed=ctx.seed)
    state = {
        "model": model,
        "optimizer": optimizer,
        "scheduler": scheduler,
        "batches": sampler.generator,
    }
    start = ctx.restore(state)
    ctx.begin(total=t.steps, done=start)
    short_windows = cfg.data.eval_windows * t.eval_factor  # the same bytes as the long windows

    def evaluate(length: int, stream: TokenStream, windows: int) -> float:
        with ctx.autocast():
            return bits_per_byte(model, stream, tokenizer, eval_len=length, max_windows=windows)

    for step in range(start, t.steps):
        loss = train_step(
            model,
            optimizer,
            scheduler,
            sampler.sample().to(ctx.device),
            grad_clip=t.grad_clip or None,
            autocast=ctx.autocast,
        )
        done = step + 1
        ctx.log(done, train_bpb=loss / math.log(2), lr=scheduler.get_last_lr()[0])
        if done % t.eval_every == 0 or done == t.steps:
            ctx.log(done, val_bpb=evaluate(t.seq_len, val_stream, short_windows))
        ctx.tick(done, state)
    ctx.log(
        t.steps,
        val_bpb_long=evaluate(long_len, val_stream, cfg.data.eval_windows),
        shift_bpb=evaluate(t.seq_len, shifted_stream, short_windows),
        params=sum(p.numel() for p in model.parameters()),
    )


def load_lm(store: RunStore, run_id: str, arm: str = "griffin") -> tuple[Griffin, ByteTokenizer]:
    """A trained LM of this study and its tokenizer, for `repdyn.methods.lm.generate`.

    `run_id` is a study run (`griffin-3`, then `arm` picks the LM) or an arm (`griffin-3/hawk`);
    the arm's newest checkpoint is loaded.
    """
    record = store.get_run(run_id)
    if record.parent is None:
        run_id = f"{run_id}/{arm}"
        record = store.get_run(run_id)
    config = cfg.from_dict(GriffinStudyConfig, record.config)
    if record.study != "griffin" or config.role != "lm":
        raise UserError(f"{run_id} is not a griffin LM arm; LM arms: {', '.join(LM_ARMS)}")
    tokenizer = ByteTokenizer()
    model = Griffin(lm_model_config(config.model, tokenizer.vocab_size))
    found = list_checkpoints(store.run_dir(run_id) / "checkpoints")
    if not found:
        raise CheckpointError(f"{run_id} has no checkpoint yet")
    load_checkpoint(found[-1], {"model": model}, restore_rng=False)
    return model.eval(), tokenizer


# ---- claim A: decoding cost ---------------------------------------------------------------------


def decode_model_config(decode: DecodeConfig, kind: str) -> GriffinConfig:
    """`griffin`: R, R, A with a local window; `global`: all blocks global attention, same width."""
    pattern, window = ("griffin", decode.window) if kind == "griffin" else ("transformer", None)
    return GriffinConfig(
        vocab_size=256,
        width=decode.width,
        num_heads=decode.num_heads,
        mlp_width=3 * decode.width,
        block_types=block_pattern(pattern, decode.num_layers),
        attention_window=window,
        logits_soft_cap=30.0,
        embeddings_scale_by_sqrt_dim=True,
    )


@torch.no_grad()
def prefill(
    model: Griffin, contexts: Sequence[int], batch_size: int, chunk: int, seed: int
) -> dict[int, GriffinCache]:
    """The cache after each of `contexts` random bytes, from one chunked prefill of the longest.

    One row is prefilled and then copied to `batch_size` rows.
    """
    device = next(model.parameters()).device
    tokens = torch.randint(
        0, 256, (1, max(contexts)), generator=torch.Generator().manual_seed(seed)
    ).to(device, non_blocking=True)
    rows = torch.zeros(batch_size, dtype=torch.long, device=device)
    caches, cache, done = {}, None, 0
    for n in sorted(contexts):
        while done < n:
            step = min(chunk, n - done)
            _, cache = model(tokens[:, done : done + step], cache=cache)
            done += step
        caches[n] = cache.index_batch(rows)
    return caches


@torch.no_grad()
def decode_seconds(model: Griffin, cache: GriffinCache, steps: int) -> float:
    """Seconds per decode step from `cache` (CPU time of this process on CPU, wall time on CUDA)."""
    device = next(model.parameters()).device
    token = torch.zeros(cache.next_segment_pos.shape[0], 1, dtype=torch.long, device=device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        clock = time.perf_counter
    else:
        clock = time.process_time
    start = clock()
    for _ in range(steps):
        _, cache = model(token, cache=cache)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return (clock() - start) / steps


def measure_decode(ctx: RunContext) -> None:
    """Log per-token latency (ms) and cache bytes of both models at every context (step = context).

    Timings use one thread and interleave contexts round-robin, keeping the median of `repeats`,
    so load from other processes spreads evenly over the contexts compared.
    """
    d: DecodeConfig = ctx.config.decode
    contexts = sorted(d.contexts)
    ctx.begin(total=len(DECODE_MODELS) * d.repeats)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        done = 0
        for kind in DECODE_MODELS:
            torch.manual_seed(ctx.seed)
            model = Griffin(decode_model_config(d, kind)).to(ctx.device).eval()
            caches = prefill(model, contexts, d.batch_size, d.prefill_chunk, ctx.seed)
            times: dict[int, list[float]] = {n: [] for n in contexts}
            for _ in range(d.repeats):
                for n in contexts:
                    times[n].append(decode_seconds(model, caches[n], d.steps))
                done += 1
                ctx.tick(done, {})
            for n in contexts:
                ctx.log(
                    n,
                    **{
                        f"{kind}_latency_ms": 1e3 * float(np.median(times[n])),
                        f"{kind}_cache_bytes": caches[n].nbytes,
                    },
                )
    finally:
        torch.set_num_threads(threads)


def train(ctx: RunContext) -> None:
    """One arm: the decode measurement or one LM."""
    if ctx.config.role == "decode":
        measure_decode(ctx)
    else:
        train_lm(ctx)


# ---- claims -------------------------------------------------------------------------------------

# griffin.md §8 check A: Griffin latency at the longest context <= 1.25x at the shortest with
# constant cache bytes; global attention latency grows >= 2x and its cache grows linearly.
A_FLAT, A_GROWTH, A_LINEAR_TOLERANCE = 1.25, 2.0, 0.10
# griffin.md §8 check B (bits per byte; the fact sheet's "bpc" is the same byte-level quantity).
B_GRIFFIN_GAP, B_HAWK_GAP, B_EXTRAPOLATION = 0.02, 0.10, 0.02


def _decode_numbers(arm: ArmView, kind: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    latency, cache = arm.series(f"{kind}_latency_ms"), arm.series(f"{kind}_cache_bytes")
    return latency.steps, latency.values, cache.values


def claim_a(run: RunView) -> Verdict:
    """Constant-size state: flat decode latency and cache bytes, unlike global attention."""
    arm = run.arm("decode")
    if arm is None or not arm.has("griffin_latency_ms"):
        return not_run("needs the decode arm (decode_arm=true)")
    contexts, g_lat, g_bytes = _decode_numbers(arm, "griffin")
    _, t_lat, t_bytes = _decode_numbers(arm, "global")
    first, last = int(contexts[0]), int(contexts[-1])
    g_ratio, t_ratio = g_lat[-1] / g_lat[0], t_lat[-1] / t_lat[0]
    g_constant = bool(np.all(g_bytes == g_bytes[0]))
    per_token = t_bytes / contexts
    t_linear = bool(per_token.max() / per_token.min() <= 1 + A_LINEAR_TOLERANCE) and last > first
    ok = bool(g_ratio <= A_FLAT and g_constant and t_ratio >= A_GROWTH and t_linear)
    summary = (
        f"context {first} -> {last}: griffin {g_lat[0]:.2f} -> {g_lat[-1]:.2f} ms/token "
        f"({g_ratio:.2f}x, needs <= {A_FLAT}x), cache {g_bytes[0] / 1e6:.2f} MB "
        f"{'constant' if g_constant else 'NOT constant'}; global attention {t_lat[0]:.2f} -> "
        f"{t_lat[-1]:.2f} ms/token ({t_ratio:.2f}x, needs >= {A_GROWTH:g}x), "
        f"cache {t_bytes[0] / 1e6:.2f} -> {t_bytes[-1] / 1e6:.1f} MB "
        f"({'linear' if t_linear else 'NOT linear'} in context)"
    )
    numbers = {
        "griffin_latency_ratio": float(g_ratio),
        "global_latency_ratio": float(t_ratio),
        "griffin_cache_bytes": float(g_bytes[-1]),
        "global_cache_bytes_per_token": float(per_token[-1]),
    }
    return Verdict(ok, summary, numbers, figures=("decode",))


def _final(arm: ArmView | None, name: str) -> float:
    return arm.series(name).last if arm is not None and arm.has(name) else float("nan")


def _gap_claim(run: RunView, name: str, gap: float) -> Verdict:
    ours, base = run.arm(name), run.arm("transformer")
    if ours is None or base is None:
        return not_run(f"needs the {name} and transformer arms")
    a, b = _final(ours, "val_bpb"), _final(base, "val_bpb")
    ok = bool(a <= b + gap)
    summary = (
        f"validation bits/byte at T={ours.config.train.seq_len} after "
        f"{ours.config.train.steps} steps: "
        f"{name} {a:.3f} vs MQA transformer {b:.3f} -> gap {a - b:+.3f} (needs <= +{gap})"
    )
    return Verdict(
        ok, summary, {f"{name}_bpb": a, "transformer_bpb": b, "gap": a - b}, figures=("lm",)
    )


def claim_b1(run: RunView) -> Verdict:
    """Griffin trains about as well as an equal-width MQA transformer."""
    return _gap_claim(run, "griffin", B_GRIFFIN_GAP)


def claim_b2(run: RunView) -> Verdict:
    """Hawk (recurrence only) comes close to the transformer."""
    return _gap_claim(run, "hawk", B_HAWK_GAP)


def claim_b3(run: RunView) -> Verdict:
    """Griffin extrapolates: at 4x the training length it does not get worse (within 0.02)."""
    arm = run.arm("griffin")
    if arm is None:
        return not_run("needs the griffin arm")
    short, long = _final(arm, "val_bpb"), _final(arm, "val_bpb_long")
    t = arm.config.train
    ok = bool(long <= short + B_EXTRAPOLATION)
    base = run.arm("transformer")
    note = ""
    if base is not None:
        note = (
            f"; the global transformer goes {_final(base, 'val_bpb'):.3f} -> "
            f"{_final(base, 'val_bpb_long'):.3f}"
        )
    summary = (
        f"griffin bits/byte at T={t.seq_len}: {short:.3f}, at {t.eval_factor}x = "
        f"{t.eval_factor * t.seq_len}: {long:.3f} -> {long - short:+.3f} "
        f"(needs <= +{B_EXTRAPOLATION}){note}"
    )
    return Verdict(
        ok,
        summary,
        {"bpb_train_length": short, "bpb_long": long, "change": long - short},
        figures=("lm",),
    )


CLAIMS = (
    Claim(
        "A",
        "constant-size decoding state: flat latency and cache, unlike global attention",
        claim_a,
        "griffin.md §8 check A; study question 2",
    ),
    Claim(
        "B1",
        "Griffin within 0.02 bits/byte of an equal-width MQA transformer",
        claim_b1,
        "griffin.md §8 check B; study question 1",
    ),
    Claim("B2", "Hawk within 0.10 bits/byte of the MQA transformer", claim_b2, "griffin.md §8 B"),
    Claim(
        "B3",
        "Griffin at 4x the training length no worse than +0.02 bits/byte",
        claim_b3,
        "griffin.md §8 check B; study question 1 (extrapolation)",
    ),
)


# ---- figures ------------------------------------------------------------------------------------


def figures(run: RunView) -> list[Figure]:
    """Decode latency and cache bytes against context; LM validation curves and final bits/byte."""
    out = []
    decode = run.arm("decode")
    if decode is not None and decode.has("griffin_latency_ms"):
        fig, (ax_lat, ax_mem) = plt.subplots(1, 2, figsize=(10, 3.6))
        for kind, label in (("griffin", "Griffin (local window)"), ("global", "global attention")):
            contexts, latency, cache = _decode_numbers(decode, kind)
            ax_lat.plot(contexts, latency, "o-", label=label)
            ax_mem.plot(contexts, cache / 1e6, "o-", label=label)
        ax_lat.set(xlabel="context (tokens)", ylabel="ms per decoded token", title="decode latency")
        ax_lat.set_ylim(bottom=0)
        ax_mem.set(yscale="log", xlabel="context (tokens)", ylabel="cache MB", title="cache size")
        for ax in (ax_lat, ax_mem):
            ax.set_xscale("log", base=2)
        ax_lat.legend(fontsize=8)
        ax_mem.legend(fontsize=8)
        fig.tight_layout()
        out.append(
            Figure(
                "decode",
                "Decoding cost against context",
                "Per-token decode latency (CPU time, one thread, median) and cache bytes after a "
                "prefill of each context: Griffin's stay flat, global attention's grow.",
                fig,
            )
        )
    lm_arms = [run.arm(name) for name in LM_ARMS if run.arm(name) is not None]
    if lm_arms:
        fig, (ax_curve, ax_bar) = plt.subplots(1, 2, figsize=(10, 3.6))
        for arm in lm_arms:
            s = arm.series("val_bpb")
            ax_curve.plot(s.steps, s.values, "o-", label=arm.name)
        ax_curve.set(
            xlabel="step", ylabel="validation bits/byte", title="validation at the training length"
        )
        ax_curve.legend(fontsize=8)
        names = [a.name for a in lm_arms]
        x = np.arange(len(names))
        heights = []
        for offset, key, label in (
            (-0.2, "val_bpb", "T"),
            (0.0, "val_bpb_long", "4T"),
            (0.2, "shift_bpb", "pydoc"),
        ):
            values = [_final(a, key) for a in lm_arms]
            heights += values
            ax_bar.bar(x + offset, values, width=0.2, label=label)
        finite = [h for h in heights if math.isfinite(h)]
        if finite:
            ax_bar.set_ylim(min(finite) - 0.1, max(finite) + 0.1)
        ax_bar.set_xticks(x, names)
        ax_bar.set(ylabel="bits/byte", title="final: stdlib at T and 4T, pydoc at T")
        ax_bar.legend(fontsize=8)
        fig.tight_layout()
        out.append(
            Figure(
                "lm",
                "Byte-level language modelling",
                "Validation bits per byte of the three block patterns on held-out stdlib files at "
                "the training length T and at 4T, and on the pydoc topics (a distribution shift).",
                fig,
            )
        )
    return out


STUDY = Study(
    name="griffin",
    title="RecurrentGemma / Griffin",
    paper="Botev et al. 2024, arXiv 2404.07839; De et al. 2024, arXiv 2402.19427",
    summary="RG-LRU + local attention: constant-size decoding state; trains close to MQA attention",
    config=GriffinStudyConfig,
    train=train,
    presets={
        "smoke": {
            "train.steps": 6,
            "train.batch_size": 2,
            "train.seq_len": 32,
            "train.eval_every": 3,
            "train.warmup_steps": 2,
            "data.corpus": "pydoc",
            "data.max_train_tokens": 50_000,
            "data.eval_windows": 2,
            "model.width": 32,
            "model.num_heads": 2,
            "model.window": 8,
            "decode.contexts": (16, 64),
            "decode.width": 32,
            "decode.num_heads": 2,
            "decode.window": 8,
            "decode.batch_size": 2,
            "decode.steps": 2,
            "decode.repeats": 2,
            "decode.prefill_chunk": 32,
            "checkpoint_every": 0,
        },
        "default": {},
        "long": {"train.steps": 2000, "train.eval_every": 250},
        "paper": {
            "model.width": 1024,
            "model.num_heads": 8,
            "model.num_layers": 12,
            "model.window": 1024,
            "train.steps": 20_000,
            "train.batch_size": 32,
            "train.seq_len": 2048,
            "train.lr": 1e-3,
            "train.warmup_steps": 1000,
            "data.max_train_tokens": 40_000_000,
            "train.eval_every": 1000,
            "decode.width": 2560,
            "decode.num_heads": 10,
            "decode.num_layers": 26,
            "decode.window": 2048,
            "decode.contexts": (2048, 8192, 32768),
            "decode.batch_size": 8,
            "autocast": "bf16",
        },
    },
    arms=arms,
    claims=CLAIMS,
    figures=figures,
    progress_keys=("train_bpb", "val_bpb"),
    load_lm=load_lm,
    wall_times={
        "smoke": "seconds",
        "default": "~10 min on 2 CPU cores (measured)",
        "long": "~40 min on 2 CPU cores",
        "paper": "~7 h on one H100-class GPU in bf16 autocast; 4 arms of ~150M parameters, 20k steps of 64k "
                 "tokens (estimate, not yet run)",
    },
)
