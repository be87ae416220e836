"""Transformers need glasses! (Barbero et al. 2024): last-token collapse, precision, local attention.

Two experiments, as arms of one run:

* **Untrained sweep** (arms ``<encoding>`` and ``<encoding>_w<window>``): random causal
  transformers (one attention layer, d 64, by default) read counting and copying prompts of
  growing length, and the probe ``repdyn.probes.collapse`` measures how far apart the last
  token's final representations of ``v`` and ``v*`` (``v`` with its last token repeated) stay,
  in fp32 and bf16:

  - ``count`` pair: ``prefix 1^n`` vs ``prefix 1^(n+1)`` (counting ones; the paper's repeated digits);
  - ``copy`` pair: ``prefix 1^n 0`` vs ``prefix 1^n 0 0`` (copying the last element of ``1...10``).

  Each arm draws several random models (the claims' seeds).
* **Trained extension** (arms ``trained_count``, ``trained_copy``, ``trained_copy_w<w>``;
  oversquashing.md §6): small causal transformers learn to count ones (NoPE) or to copy the last
  digit of a random 0/1 string (RoPE, full attention and a sliding window), on strings of at most
  ``max_length`` digits, and are then read at longer lengths, in fp32 and bf16.

Lengths are logged as the step axis. Facts: oversquashing.md.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field, replace

import matplotlib.pyplot as plt
import numpy as np
import torch
from torch import Tensor

from repdyn.bench.claims import Claim, Verdict, not_run
from repdyn.bench.config import param
from repdyn.bench.context import RunContext
from repdyn.bench.errors import ConfigError
from repdyn.bench.study import Figure, Study
from repdyn.bench.view import ArmView, RunView
from repdyn.models.transformer import Transformer, TransformerConfig
from repdyn.probes.collapse import as_probe_model, collapse_distance, last_token_distance, sensitivity_profile
from repdyn.tasks.counting import VOCAB as COUNTING_VOCAB
from repdyn.tasks.counting import counting_batch, mixed_length_batch

PAIRS = ("count", "copy")
DTYPES = ("float32", "bfloat16")
POSITIONALS = ("none", "rope", "alibi", "sinusoidal")
ZERO, ONE, VOCAB = 0, 1, 4
EXPERIMENTS = ("sweep", "count", "copy")
TRAINED_TASKS = {"count": "count_ones", "copy": "copy_last"}  # repdyn.tasks.counting names


@dataclass(frozen=True)
class ModelConfig:
    """The random causal transformer probed (oversquashing.md §5: one layer, d 64, one head)."""

    d_model: int = param(64, min=2, help="width (even, for RoPE)")
    num_layers: int = param(1, min=1)
    num_heads: int = param(1, min=1)
    positional: str = param("none", choices=POSITIONALS, help="set per arm from `positionals`")
    window: int = param(0, min=0, help="sliding window; 0 = full attention (set per arm)")


@dataclass(frozen=True)
class TrainedConfig:
    """The trained extension (oversquashing.md §6: a 2-layer transformer, D 64, trained on short
    strings and read at longer ones)."""

    tasks: tuple[str, ...] = param(
        ("count", "copy"),
        choices=tuple(TRAINED_TASKS),
        help="count: NoPE counter of ones; copy: RoPE copier, full and windowed",
    )
    d_model: int = param(64, min=8)
    num_layers: int = param(2, min=1)
    num_heads: int = param(4, min=1)
    max_length: int = param(32, min=2, help="training strings have 1..max_length digits")
    count_steps: int = param(1500, min=1, help="training steps of the counter")
    copy_steps: int = param(500, min=1, help="training steps of each copier (they reach loss ~0 by then)")
    batch_size: int = param(32, min=1)
    lr: float = param(1e-3, min=0.0)
    warmup: int = param(100, min=0)
    window: int = param(8, min=1, help="window of the trained_copy_w<window> arm")
    count_lengths: tuple[int, ...] = param(
        (4, 16, 64, 256, 1024, 4096), help="n for the trained counter's 1^n = vs 1^(n+1) = distance"
    )
    copy_lengths: tuple[int, ...] = param((8, 32, 128, 512, 1024), help="n for the copiers' accuracy")
    eval_size: int = param(128, min=8, help="random strings per copy length")


@dataclass(frozen=True)
class OversquashingConfig:
    """Which arms, which lengths, how many random models per arm."""

    model: ModelConfig = field(default_factory=ModelConfig)
    trained: TrainedConfig = field(default_factory=TrainedConfig)
    positionals: tuple[str, ...] = param(("none", "rope"), help="one full-attention arm per encoding")
    window: int = param(32, min=0, help="also a windowed arm per encoding with this window; 0 = none")
    lengths: tuple[int, ...] = param((64, 256, 1024, 4096), help="n, the number of ones")
    draws: int = param(5, min=1, help="random models per arm: the claims' seeds")
    prefix: int = param(8, min=0, help="random tokens before the ones")
    sensitivity_length: int = param(64, min=2, help="copy prompt length for the sensitivity profile")
    experiment: str = param("sweep", choices=EXPERIMENTS, help="set per arm: sweep or a trained task")
    checkpoint_every: int = param(
        0, min=0, help="sweep: checkpoint every N lengths; trained: every N steps (0 = at the end)"
    )

    def validate(self) -> None:
        if any(p not in POSITIONALS for p in self.positionals):
            raise ConfigError("positionals", f"{self.positionals}; accepted values: {POSITIONALS}")
        if not self.positionals and not self.trained.tasks:
            raise ConfigError("positionals", "no arm left: give positionals or trained.tasks")
        for key, lengths in (
            ("lengths", self.lengths),
            ("trained.count_lengths", self.trained.count_lengths),
            ("trained.copy_lengths", self.trained.copy_lengths),
        ):
            if not lengths or any(n < 1 for n in lengths) or list(lengths) != sorted(set(lengths)):
                raise ConfigError(key, "must be increasing positive integers")


def arms(config: OversquashingConfig) -> dict[str, OversquashingConfig]:
    """Sweep: ``<encoding>`` with full attention and ``<encoding>_w<window>`` with the sliding window.
    Trained: ``trained_count`` (NoPE), ``trained_copy`` (RoPE) and ``trained_copy_w<w>``."""
    out = {}
    for positional in config.positionals:
        out[positional] = replace(config, model=replace(config.model, positional=positional, window=0))
        if config.window:
            windowed = replace(config.model, positional=positional, window=config.window)
            out[f"{positional}_w{config.window}"] = replace(config, model=windowed)
    if "count" in config.trained.tasks:
        counter = replace(config.model, positional="none", window=0)
        out["trained_count"] = replace(config, experiment="count", model=counter)
    if "copy" in config.trained.tasks:
        for window in (0, config.trained.window):
            copier = replace(config.model, positional="rope", window=window)
            name = "trained_copy" + (f"_w{window}" if window else "")
            out[name] = replace(config, experiment="copy", model=copier)
    return out


def build_model(config: ModelConfig, seed: int) -> Transformer:
    """A random causal transformer over the 4-token vocabulary (0, 1 and two prefix symbols)."""
    torch.manual_seed(seed)
    return Transformer(
        TransformerConfig(
            vocab_size=VOCAB,
            d_model=config.d_model,
            num_layers=config.num_layers,
            num_heads=config.num_heads,
            mlp_dim=config.d_model,
            positional=config.positional,
            window=config.window or None,
        )
    ).eval()


def prompt(pair: str, prefix: Tensor, n: int) -> Tensor:
    """``v`` of a pair, on the prefix's device; the probe appends the repeated last token to make ``v*``."""
    ones = torch.full((1, n), ONE, dtype=torch.long, device=prefix.device)
    tail = [torch.full((1, 1), ZERO, dtype=torch.long, device=prefix.device)] if pair == "copy" else []
    return torch.cat([prefix, ones, *tail], dim=1)


def draw_seed(seed: int, draw: int) -> int:
    """Seed of random model ``draw`` of a run with seed ``seed`` (same models in every arm)."""
    return seed * 1000 + draw


def train(ctx: RunContext) -> None:
    """One arm: the untrained sweep or a trained counter / copier."""
    if ctx.config.experiment == "sweep":
        sweep(ctx)
    else:
        train_counting(ctx)


def sweep(ctx: RunContext) -> None:
    """Probe every length for every draw, pair and dtype; then the sensitivity profile of draw 0."""
    cfg: OversquashingConfig = ctx.config
    models, prefixes = [], []
    for draw in range(cfg.draws):
        model = build_model(cfg.model, draw_seed(ctx.seed, draw)).to(ctx.device)
        models.append({dtype: as_probe_model(model).to_dtype(getattr(torch, dtype)) for dtype in DTYPES})
        gen = torch.Generator().manual_seed(draw_seed(ctx.seed, draw))
        prefixes.append(torch.randint(0, VOCAB, (1, cfg.prefix), generator=gen).to(ctx.device, non_blocking=True))
    start = ctx.restore({})
    ctx.begin(total=len(cfg.lengths), done=start)
    for done, n in enumerate(cfg.lengths[start:], start=start + 1):
        for pair in PAIRS:
            for dtype in DTYPES:
                values = [
                    collapse_distance(probes[dtype], prompt(pair, prefix, n), dtype=getattr(torch, dtype)).item()
                    for probes, prefix in zip(models, prefixes, strict=True)
                ]
                ctx.log(n, **{f"{pair}/{dtype}/{d}": v for d, v in enumerate(values)})
                ctx.log(n, **{f"{pair}/{dtype}/mean": float(np.mean(values))})
        if done == len(cfg.lengths):
            profile = sensitivity_profile(models[0]["float32"], prompt("copy", prefixes[0], cfg.sensitivity_length))
            for position, value in enumerate(profile[0].tolist()):
                ctx.log(position, sensitivity=value)
        ctx.tick(done, {})


# ---- trained extension --------------------------------------------------------------------------


def build_trained_model(config: OversquashingConfig) -> Transformer:
    """The trained arm's causal transformer; counting has one class per count 0..max_length."""
    t = config.trained
    classes = t.max_length + 1 if config.experiment == "count" else 2
    return Transformer(
        TransformerConfig(
            vocab_size=len(COUNTING_VOCAB),
            output_dim=classes,
            d_model=t.d_model,
            num_layers=t.num_layers,
            num_heads=t.num_heads,
            mlp_dim=4 * t.d_model,
            positional=config.model.positional,
            window=config.model.window or None,
        )
    )


def train_counting(ctx: RunContext) -> None:
    """Train on strings of 1..max_length digits (mixed in each batch), log the loss, then read the
    model at every length in fp32 and bf16."""
    cfg: OversquashingConfig = ctx.config
    t, task = cfg.trained, TRAINED_TASKS[cfg.experiment]
    steps = t.count_steps if cfg.experiment == "count" else t.copy_steps
    torch.manual_seed(ctx.seed)
    model = build_trained_model(cfg).to(ctx.device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=t.lr, weight_decay=0.01)
    warmup = max(t.warmup, 1)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: min(1.0, (s + 1) / warmup))
    # Batches are drawn on the CPU, where their lengths (host decisions: the shapes) come from, and
    # copied to the device without waiting for it: one copy per step, where drawing row by row on
    # the device would launch a few kernels per row.
    batches = torch.Generator().manual_seed(ctx.seed)
    state = {"model": model, "optimizer": optimizer, "scheduler": scheduler, "batches": batches}
    start = ctx.restore(state)
    ctx.begin(total=steps, done=start)
    for step in range(start, steps):
        lengths = torch.randint(1, t.max_length + 1, (t.batch_size,), generator=batches).tolist()
        batch = mixed_length_batch(task, lengths, generator=batches, p_one=1.0 if task == "count_ones" else 0.5)
        batch = batch.to(ctx.device)
        logits = model(batch.tokens, key_padding_mask=batch.mask)[:, -1]
        loss = torch.nn.functional.cross_entropy(logits, batch.targets)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        if step % 50 == 0 or step == steps - 1:
            ctx.log(step, train_loss=loss.detach())
        ctx.tick(step + 1, state)
    model.eval()
    if cfg.experiment == "count":
        evaluate_counter(ctx, model)
    else:
        evaluate_copier(ctx, model)


def in_each_dtype(model: Transformer) -> dict[str, Transformer]:
    """The trained model in fp32 and a bf16 copy of it."""
    return {dtype: model if dtype == "float32" else copy.deepcopy(model).to(getattr(torch, dtype)) for dtype in DTYPES}


@torch.no_grad()
def evaluate_counter(ctx: RunContext, model: Transformer) -> None:
    """Is ``1^n =`` counted right, for every training length n (``correct/<dtype>``), and how far
    apart are the answers' representations of ``1^n =`` and ``1^(n+1) =`` (``pair/<dtype>``)."""
    t = ctx.config.trained
    for dtype, cast in in_each_dtype(model).items():
        for n in range(1, t.max_length + 1):
            logits = cast(counting_batch("count_ones", 1, n).to(ctx.device).tokens)[:, -1]
            ctx.log(n, **{f"correct/{dtype}": float(logits.argmax(-1).item() == n)})
        for n in t.count_lengths:
            first = counting_batch("count_ones", 1, n).to(ctx.device).tokens
            second = counting_batch("count_ones", 1, n + 1).to(ctx.device).tokens
            distance = last_token_distance(cast, first, second, dtype=cast.dtype)
            ctx.log(n, **{f"pair/{dtype}": distance})


@torch.no_grad()
def evaluate_copier(ctx: RunContext, model: Transformer) -> None:
    """Accuracy of copying the last digit at every evaluation length (``accuracy/<dtype>``), and the
    mean L1 distance between the last token's final representations of ``x 0 =`` and ``x 1 =``
    (``pair/<dtype>``: how much of the digit to copy reaches the last token)."""
    t = ctx.config.trained
    gen = torch.Generator().manual_seed(12345)
    for n in t.copy_lengths:
        batch = counting_batch("copy_last", t.eval_size, n, generator=gen, p_one=0.5).to(ctx.device)
        flipped = batch.tokens.clone()
        flipped[:, -2] = 1 - flipped[:, -2]  # the digit to copy, the other way round
        for dtype, cast in in_each_dtype(model).items():
            correct, distance = 0.0, 0.0
            for rows in torch.arange(t.eval_size, device=ctx.device).split(16):  # bounds T x T attention memory
                read, other = cast.run(batch.tokens[rows]), cast.run(flipped[rows])
                correct += (read.logits[:, -1].argmax(-1) == batch.targets[rows]).sum().item()
                gap = read.final[:, -1].float() - other.final[:, -1].float()
                distance += gap.abs().sum().item()
            ctx.log(n, **{f"accuracy/{dtype}": correct / t.eval_size, f"pair/{dtype}": distance / t.eval_size})


# ---- claims -------------------------------------------------------------------------------------

# oversquashing.md §6 "collapse trend": Spearman rho <= -0.9 over a geometric length grid.
O1_RHO = -0.9
# oversquashing.md §6 "precision": bf16 exactly 0 in >= 4 of 5 seeds while fp32 stays apart. Judged on
# the count pair, whose gap shrinks like 1/n^2. "Apart" means above fp32 rounding: the final LayerNorm
# outputs are O(1), where fp32's spacing is 1.2e-7, so > 1e-6 is 8 ulps. (A floor of 1e-5 failed on
# seed 7, whose smallest-scale draw was 7.4e-6 apart in fp32 at n = 4096 while bf16 was 0 in 5/5.)
O2_MIN_ZERO_FRACTION, O2_FP32_FLOOR = 0.8, 1e-6
# oversquashing.md §6 "glasses": the windowed copy-pair distance stays >= 0.1 at every length.
O3_FLOOR = 0.1
# oversquashing.md §6 trained extension. O4: the counter must have learned to count (>= 80% of 1^n,
# n = 1..max_length, right in fp32) before its failure means anything; then its 1^n = vs 1^(n+1) =
# distance falls with n (rho as O1) and bf16 makes the pair identical at the longest n while fp32
# keeps it > 1e-6 (as O2).
O4_MIN_COUNT_ACCURACY = 0.8
# O5: the copiers are exact on training lengths (>= 0.95); past them full attention drops to near
# chance (<= 0.7 of 2-way at the longest n) and the copied digit's trace at the last token shrinks
# >= 10x, while the windowed copier stays >= 0.95 at every n (oversquashing.md §1: copying fails
# from ~300 elements; §3: local attention is the fix).
O5_EXACT, O5_FAILED, O5_SHRINK = 0.95, 0.7, 0.1


def _draws(arm: ArmView, pair: str, dtype: str) -> list[np.ndarray]:
    count = arm.config.draws
    return [arm.series(f"{pair}/{dtype}/{d}").values for d in range(count)]


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman rank correlation (no ties expected in the logged distances)."""
    rx, ry = np.argsort(np.argsort(x)), np.argsort(np.argsort(y))
    return float(np.corrcoef(rx, ry)[0, 1])


def _sweep_arms(run: RunView) -> list[ArmView]:
    return [a for name in run.arms if (a := run.arm(name)) is not None and a.config.experiment == "sweep"]


def _full_arms(run: RunView) -> list[ArmView]:
    return [a for a in _sweep_arms(run) if not a.config.model.window]


def _windowed_arms(run: RunView) -> list[ArmView]:
    return [a for a in _sweep_arms(run) if a.config.model.window]


def claim_o1(run: RunView) -> Verdict:
    """Full attention: the last-token distance falls with length (both pairs, fp32 mean of draws)."""
    full = _full_arms(run)
    if not full:
        return not_run("no full-attention arm finished")
    parts, numbers, ok = [], {}, True
    for arm in full:
        for pair in PAIRS:
            mean = arm.series(f"{pair}/float32/mean")
            rho = spearman(mean.steps, mean.values) if len(mean) > 1 else float("nan")
            ok &= bool(rho <= O1_RHO)
            numbers[f"{arm.name}/{pair}/rho"] = rho
            parts.append(
                f"{arm.name} {pair}: {mean.values[0]:.3g} at n={mean.steps[0]} -> "
                f"{mean.last:.3g} at n={mean.steps[-1]} (rho {rho:.2f})"
            )
    return Verdict(ok, "; ".join(parts) + f" (needs rho <= {O1_RHO})", numbers, figures=("distance",))


def claim_o2(run: RunView) -> Verdict:
    """bf16 makes v and v* identical at a length where fp32 still tells them apart (count pair).

    Judged on the NoPE arm, the theorem's cleanest case: its count-pair gap shrinks like 1/n^2.
    Other full-attention arms are reported alongside (RoPE's gap shrinks like 1/n: the prefix
    moves one position farther, so it needs longer prompts).
    """
    full = {arm.config.model.positional: arm for arm in _full_arms(run)}
    if "none" not in full:
        return not_run("needs the NoPE arm (positionals including none)")
    parts, numbers, ok = [], {}, False
    for positional, arm in full.items():
        bf16, fp32 = np.stack(_draws(arm, "count", "bfloat16")), np.stack(_draws(arm, "count", "float32"))
        lengths = arm.series("count/bfloat16/mean").steps
        zero_fraction = (bf16 == 0).mean(axis=0)
        hits = np.flatnonzero((zero_fraction >= O2_MIN_ZERO_FRACTION) & (fp32.min(axis=0) > O2_FP32_FLOOR))
        at = hits[0] if hits.size else -1
        if positional == "none":
            ok = bool(hits.size)
        numbers[f"{arm.name}/length"] = float(lengths[at]) if hits.size else float("nan")
        numbers[f"{arm.name}/bf16_zero_fraction"] = float(zero_fraction[at])
        numbers[f"{arm.name}/fp32_min"] = float(fp32[:, at].min())
        parts.append(
            f"{arm.name}: bf16 exactly 0 in {int(round(zero_fraction[at] * bf16.shape[0]))}/{bf16.shape[0]} "
            f"draws at n={lengths[at]} while fp32 >= {fp32[:, at].min():.2g}"
            + ("" if hits.size else " (no length qualifies yet)")
        )
    summary = "; ".join(parts) + f" (needs, for none: >= {O2_MIN_ZERO_FRACTION:.0%} zeros and fp32 > {O2_FP32_FLOOR:g})"
    return Verdict(ok, summary, numbers, figures=("distance",))


def claim_o3(run: RunView) -> Verdict:
    """Sliding-window attention keeps the copy-pair representations apart at every length."""
    windowed = _windowed_arms(run)
    if not windowed:
        return not_run("no windowed arm (window=0)")
    parts, numbers, ok = [], {}, True
    for arm in windowed:
        lowest = float(np.stack(_draws(arm, "copy", "float32")).mean(axis=0).min())
        ok &= lowest >= O3_FLOOR
        numbers[f"{arm.name}/min_distance"] = lowest
        parts.append(f"{arm.name}: copy distance >= {lowest:.3g} at every n up to {max(arm.config.lengths)}")
    return Verdict(ok, "; ".join(parts) + f" (needs >= {O3_FLOOR})", numbers, figures=("distance",))


def _trained_arm(run: RunView, name: str) -> ArmView | None:
    arm = run.arm(name)
    return arm if arm is not None and arm.has("pair/float32") else None


def claim_o4(run: RunView) -> Verdict:
    """A trained counter cannot tell ``1^n`` from ``1^(n+1)`` at long n: its representations converge,
    exactly so in bf16."""
    arm = _trained_arm(run, "trained_count")
    if arm is None:
        return not_run("no finished trained_count arm (trained.tasks including count)")
    accuracy = float(np.mean(arm.series("correct/float32").values))
    fp32, bf16 = arm.series("pair/float32"), arm.series("pair/bfloat16")
    rho = spearman(fp32.steps, fp32.values) if len(fp32) > 1 else float("nan")
    ok = accuracy >= O4_MIN_COUNT_ACCURACY and rho <= O1_RHO and bf16.last == 0.0 and fp32.last > O2_FP32_FLOOR
    max_length = arm.config.trained.max_length
    summary = (
        f"counts 1^n right for {accuracy:.0%} of n = 1..{max_length}; distance of 1^n = vs 1^(n+1) = "
        f"{fp32.values[0]:.3g} at n={fp32.steps[0]} -> {fp32.last:.3g} at n={fp32.steps[-1]} in fp32 "
        f"(rho {rho:.2f}), bf16 {bf16.last:.3g} there (needs >= {O4_MIN_COUNT_ACCURACY:.0%}, "
        f"rho <= {O1_RHO}, bf16 exactly 0 and fp32 > {O2_FP32_FLOOR:g} at the longest n)"
    )
    numbers = {"count_accuracy": accuracy, "rho": rho, "fp32_last": fp32.last, "bf16_last": bf16.last}
    return Verdict(bool(ok), summary, numbers, figures=("trained",))


def claim_o5(run: RunView) -> Verdict:
    """Trained copiers: full attention loses the last digit past its training lengths, the window keeps it."""
    full = _trained_arm(run, "trained_copy")
    windowed = [a for name in run.arms if name.startswith("trained_copy_w") and (a := _trained_arm(run, name))]
    if full is None or not windowed:
        return not_run("needs finished trained_copy and trained_copy_w<w> arms (trained.tasks including copy)")
    max_length = full.config.trained.max_length
    accuracy, pair = full.series("accuracy/float32"), full.series("pair/float32")
    seen = accuracy.values[accuracy.steps <= max_length]
    shrink = pair.last / pair.values[0]
    ok = bool(seen.size) and seen.min() >= O5_EXACT and accuracy.last <= O5_FAILED and shrink <= O5_SHRINK
    bf16 = full.series("accuracy/bfloat16")
    parts = [
        f"{full.name}: accuracy {seen.min() if seen.size else float('nan'):.2f} at n <= {max_length} -> "
        f"{accuracy.last:.2f} at n={accuracy.steps[-1]} (bf16 {bf16.last:.2f}), digit trace "
        f"{pair.values[0]:.3g} -> {pair.last:.3g} (x{shrink:.2g})"
    ]
    numbers = {f"{full.name}/last_accuracy": accuracy.last, f"{full.name}/shrink": shrink}
    for arm in windowed:
        lowest = float(arm.series("accuracy/float32").values.min())
        ok &= lowest >= O5_EXACT
        numbers[f"{arm.name}/min_accuracy"] = lowest
        parts.append(
            f"{arm.name}: accuracy >= {lowest:.2f} at every n up to {arm.series('accuracy/float32').steps[-1]}"
        )
    summary = "; ".join(parts) + (
        f" (needs full: >= {O5_EXACT} on training lengths, <= {O5_FAILED} at the longest, "
        f"trace x{O5_SHRINK} or less; windowed: >= {O5_EXACT} everywhere)"
    )
    return Verdict(bool(ok), summary, numbers, figures=("trained",))


CLAIMS = (
    Claim(
        "O1",
        "last-token representations converge with length",
        claim_o1,
        "oversquashing.md §2 Theorem 4.2, §6 collapse trend",
    ),
    Claim(
        "O2", "bf16 makes them identical where fp32 does not", claim_o2, "oversquashing.md §2 Theorem 4.2, §6 precision"
    ),
    Claim("O3", "local attention (glasses) keeps them apart", claim_o3, "oversquashing.md §3, §6 glasses"),
    Claim(
        "O4",
        "a trained counter collapses 1^n and 1^(n+1), exactly in bf16",
        claim_o4,
        "oversquashing.md §2 Theorem 4.2, Corollary 6.2, §6 trained extension",
    ),
    Claim(
        "O5",
        "a trained copier fails at long n, unless it has a window",
        claim_o5,
        "oversquashing.md §1 copying, §3 local attention, §6 trained extension",
    ),
)


# ---- figures ------------------------------------------------------------------------------------


def figures(run: RunView) -> list[Figure]:
    """Untrained sweep: distance over length and sensitivity; trained extension: counter and copiers."""
    return sweep_figures(run) + trained_figures(run)


def sweep_figures(run: RunView) -> list[Figure]:
    """Distance over length per pair (fp32 solid, bf16 dashed, exact zeros at the bottom), sensitivity."""
    arms_ = [a for name in run.arms if (a := run.arm(name)) is not None and a.has("copy/float32/mean")]
    if not arms_:
        return []
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    positive = [a.series(f"{p}/{d}/mean").values for a in arms_ for p in PAIRS for d in DTYPES]
    positive = np.concatenate(positive)
    floor = positive[positive > 0].min() / 3 if (positive > 0).any() else 1e-8
    for ax, pair in zip(axes, PAIRS, strict=True):
        for i, arm in enumerate(arms_):
            for dtype, style in zip(DTYPES, ("-", "--"), strict=True):
                s = arm.series(f"{pair}/{dtype}/mean")
                ax.plot(
                    s.steps,
                    np.where(s.values > 0, s.values, floor),
                    style,
                    color=f"C{i}",
                    marker="o" if dtype == "float32" else "x",
                    label=f"{arm.name} {dtype}",
                )
        ax.axhline(floor, color="grey", lw=0.5)
        ax.set(
            xscale="log",
            yscale="log",
            xlabel="n (ones)",
            ylabel="L1 distance, mean of draws",
            title=f"{pair} pair" + (": prefix 1^n vs 1^(n+1)" if pair == "count" else ": prefix 1^n 0 vs 1^n 0 0"),
        )
        ax.legend(fontsize=6)
    fig.tight_layout()
    out = [
        Figure(
            "distance",
            "Last-token distance between v and v*",
            "Mean over random models of the L1 distance of the last token's final representation; "
            "points on the grey line are exactly 0 (representational collapse in that precision).",
            fig,
        )
    ]
    fig, ax = plt.subplots(figsize=(6, 3.4))
    for i, arm in enumerate(arms_):
        s = arm.series("sensitivity")
        if len(s):
            ax.plot(s.steps, s.values, color=f"C{i}", label=arm.name)
    ax.set(yscale="log", xlabel="input position i", ylabel="||d y_n / d x_i||", title="sensitivity of the last token")
    ax.legend(fontsize=7)
    fig.tight_layout()
    out.append(
        Figure(
            "sensitivity",
            "Sensitivity profile",
            "Norm of the Jacobian of the last token's final representation with respect to each input "
            "embedding, copy prompt, first random model (Theorem 5.1's quantity).",
            fig,
        )
    )
    return out


def trained_figures(run: RunView) -> list[Figure]:
    """Trained counter's pair distance, copiers' accuracy and digit trace, over length (fp32 / bf16)."""
    arms_ = [a for name in run.arms if (a := _trained_arm(run, name)) is not None]
    if not arms_:
        return []
    fig, axes = plt.subplots(1, 3, figsize=(14, 3.8))
    panels = (
        ("trained_count", "pair", axes[0], "L1 distance, 1^n = vs 1^(n+1) ="),
        ("trained_copy", "accuracy", axes[1], "accuracy of copying the last digit"),
        ("trained_copy", "pair", axes[2], "L1 distance, x 0 = vs x 1 ="),
    )
    floor = 1e-7
    for prefix, key, ax, ylabel in panels:
        for i, arm in enumerate(a for a in arms_ if a.name.startswith(prefix)):
            for dtype, style in zip(DTYPES, ("-", "--"), strict=True):
                s = arm.series(f"{key}/{dtype}")
                values = np.where(s.values > 0, s.values, floor) if key == "pair" else s.values
                ax.plot(
                    s.steps,
                    values,
                    style,
                    color=f"C{i}",
                    marker="o" if dtype == "float32" else "x",
                    label=f"{arm.name} {dtype}",
                )
        max_length = arms_[0].config.trained.max_length
        ax.axvline(max_length, color="grey", lw=0.5, ls=":")
        ax.set(xscale="log", yscale="log" if key == "pair" else "linear", xlabel="n (digits)", ylabel=ylabel)
        ax.legend(fontsize=6)
    axes[0].axhline(floor, color="grey", lw=0.5)
    axes[1].set_ylim(0.0, 1.05)
    fig.tight_layout()
    return [
        Figure(
            "trained",
            "Trained counter and copiers beyond their training lengths",
            "Left: the trained counter's last-token distance between 1^n = and 1^(n+1) = (exact zeros on "
            "the grey floor line). Middle: copy-last-digit accuracy of the full-attention and windowed "
            "copiers. Right: how far apart the copiers' last tokens are for the two values of the digit "
            "to copy. Dotted line: the longest training string; fp32 solid, bf16 dashed.",
            fig,
        )
    ]


STUDY = Study(
    name="oversquashing",
    title="Transformers need glasses!",
    paper="Barbero et al. 2024, arXiv 2406.04267",
    summary="last-token representations collapse with length, exactly so in bf16, also in trained counters and "
    "copiers; a sliding window prevents it",
    config=OversquashingConfig,
    train=train,
    presets={
        "smoke": {
            "lengths": (16, 64, 256),
            "draws": 2,
            "sensitivity_length": 12,
            "trained.max_length": 8,
            "trained.count_steps": 40,
            "trained.copy_steps": 40,
            "trained.count_lengths": (4, 16, 64),
            "trained.copy_lengths": (8, 32),
            "trained.eval_size": 16,
            "trained.d_model": 16,
        },
        "default": {},
        "paper": {"lengths": (64, 256, 1024, 4096, 16384), "positionals": ("none", "rope", "alibi", "sinusoidal")},
    },
    arms=arms,
    claims=CLAIMS,
    max_threads=1,  # tiny models: one thread per arm beats two
    figures=figures,
    progress_keys=("copy/float32/mean",),
    wall_times={
        "smoke": "seconds",
        "default": "~2 min on 2 CPU cores (measured: 2.1 CPU-min)",
        "paper": "~30 min on 2 CPU cores; minutes on one GPU (estimate, not yet run)",
    },
)
