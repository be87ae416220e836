"""Transformers need glasses! (Barbero et al. 2024): last-token collapse, precision, local attention.

No training: random causal transformers (one attention layer, d 64, by default) read counting and
copying prompts of growing length, and the probe ``repdyn.probes.collapse`` measures how far
apart the last token's final representations of ``v`` and ``v*`` (``v`` with its last token
repeated) stay, in fp32 and bf16:

* ``count`` pair: ``prefix 1^n`` vs ``prefix 1^(n+1)`` (counting ones; the paper's repeated digits);
* ``copy`` pair: ``prefix 1^n 0`` vs ``prefix 1^n 0 0`` (copying the last element of ``1...10``).

Arms: one per position encoding with full attention, and the same with a sliding window (the
paper's "glasses"). Each arm draws several random models (the claims' seeds). Lengths are logged
as the step axis. Facts: oversquashing.md.
"""

from __future__ import annotations

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
from repdyn.probes.collapse import as_probe_model, collapse_distance, sensitivity_profile

PAIRS = ("count", "copy")
DTYPES = ("float32", "bfloat16")
POSITIONALS = ("none", "rope", "alibi", "sinusoidal")
ZERO, ONE, VOCAB = 0, 1, 4


@dataclass(frozen=True)
class ModelConfig:
    """The random causal transformer probed (oversquashing.md §5: one layer, d 64, one head)."""

    d_model: int = param(64, min=2, help="width (even, for RoPE)")
    num_layers: int = param(1, min=1)
    num_heads: int = param(1, min=1)
    positional: str = param("none", choices=POSITIONALS, help="set per arm from `positionals`")
    window: int = param(0, min=0, help="sliding window; 0 = full attention (set per arm)")


@dataclass(frozen=True)
class OversquashingConfig:
    """Which arms, which lengths, how many random models per arm."""

    model: ModelConfig = field(default_factory=ModelConfig)
    positionals: tuple[str, ...] = param(("none", "rope"), help="one full-attention arm per encoding")
    window: int = param(32, min=0, help="also a windowed arm per encoding with this window; 0 = none")
    lengths: tuple[int, ...] = param((64, 256, 1024, 4096), help="n, the number of ones")
    draws: int = param(5, min=1, help="random models per arm: the claims' seeds")
    prefix: int = param(8, min=0, help="random tokens before the ones")
    sensitivity_length: int = param(64, min=2, help="copy prompt length for the sensitivity profile")
    checkpoint_every: int = param(0, min=0, help="checkpoint every N lengths (0 = at the end)")

    def validate(self) -> None:
        if not self.positionals or any(p not in POSITIONALS for p in self.positionals):
            raise ConfigError("positionals", f"{self.positionals}; accepted values: {POSITIONALS}")
        if not self.lengths or any(n < 1 for n in self.lengths) or list(self.lengths) != sorted(set(self.lengths)):
            raise ConfigError("lengths", "must be increasing positive integers")


def arms(config: OversquashingConfig) -> dict[str, OversquashingConfig]:
    """``<encoding>`` with full attention and ``<encoding>_w<window>`` with the sliding window."""
    out = {}
    for positional in config.positionals:
        out[positional] = replace(config, model=replace(config.model, positional=positional, window=0))
        if config.window:
            windowed = replace(config.model, positional=positional, window=config.window)
            out[f"{positional}_w{config.window}"] = replace(config, model=windowed)
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
    """``v`` of a pair; the probe appends the repeated last token to make ``v*``."""
    ones = torch.full((1, n), ONE, dtype=torch.long)
    tail = [torch.full((1, 1), ZERO, dtype=torch.long)] if pair == "copy" else []
    return torch.cat([prefix, ones, *tail], dim=1)


def draw_seed(seed: int, draw: int) -> int:
    """Seed of random model ``draw`` of a run with seed ``seed`` (same models in every arm)."""
    return seed * 1000 + draw


def train(ctx: RunContext) -> None:
    """Probe every length for every draw, pair and dtype; then the sensitivity profile of draw 0."""
    cfg: OversquashingConfig = ctx.config
    models, prefixes = [], []
    for draw in range(cfg.draws):
        model = build_model(cfg.model, draw_seed(ctx.seed, draw))
        models.append({dtype: as_probe_model(model).to_dtype(getattr(torch, dtype)) for dtype in DTYPES})
        gen = torch.Generator().manual_seed(draw_seed(ctx.seed, draw))
        prefixes.append(torch.randint(0, VOCAB, (1, cfg.prefix), generator=gen))
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


# ---- claims -------------------------------------------------------------------------------------

# oversquashing.md §6 "collapse trend": Spearman rho <= -0.9 over a geometric length grid.
O1_RHO = -0.9
# oversquashing.md §6 "precision": bf16 exactly 0 in >= 4 of 5 seeds while fp32 stays apart. Judged on
# the count pair, whose gap shrinks like 1/n^2, so "apart" is > 1e-5 (many fp32 ulps of O(1) values).
O2_MIN_ZERO_FRACTION, O2_FP32_FLOOR = 0.8, 1e-5
# oversquashing.md §6 "glasses": the windowed copy-pair distance stays >= 0.1 at every length.
O3_FLOOR = 0.1


def _draws(arm: ArmView, pair: str, dtype: str) -> list[np.ndarray]:
    count = arm.config.draws
    return [arm.series(f"{pair}/{dtype}/{d}").values for d in range(count)]


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman rank correlation (no ties expected in the logged distances)."""
    rx, ry = np.argsort(np.argsort(x)), np.argsort(np.argsort(y))
    return float(np.corrcoef(rx, ry)[0, 1])


def _full_arms(run: RunView) -> list[ArmView]:
    return [a for name in run.arms if (a := run.arm(name)) is not None and not a.config.model.window]


def _windowed_arms(run: RunView) -> list[ArmView]:
    return [a for name in run.arms if (a := run.arm(name)) is not None and a.config.model.window]


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
            parts.append(f"{arm.name} {pair}: {mean.values[0]:.3g} at n={mean.steps[0]} -> "
                         f"{mean.last:.3g} at n={mean.steps[-1]} (rho {rho:.2f})")
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
        parts.append(f"{arm.name}: bf16 exactly 0 in {int(round(zero_fraction[at] * bf16.shape[0]))}/{bf16.shape[0]} "
                     f"draws at n={lengths[at]} while fp32 >= {fp32[:, at].min():.2g}"
                     + ("" if hits.size else " (no length qualifies yet)"))
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


CLAIMS = (
    Claim("O1", "last-token representations converge with length", claim_o1,
          "oversquashing.md §2 Theorem 4.2, §6 collapse trend"),
    Claim("O2", "bf16 makes them identical where fp32 does not", claim_o2,
          "oversquashing.md §2 Theorem 4.2, §6 precision"),
    Claim("O3", "local attention (glasses) keeps them apart", claim_o3, "oversquashing.md §3, §6 glasses"),
)


# ---- figures ------------------------------------------------------------------------------------

def figures(run: RunView) -> list[Figure]:
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
                ax.plot(s.steps, np.where(s.values > 0, s.values, floor), style, color=f"C{i}",
                        marker="o" if dtype == "float32" else "x", label=f"{arm.name} {dtype}")
        ax.axhline(floor, color="grey", lw=0.5)
        ax.set(xscale="log", yscale="log", xlabel="n (ones)", ylabel="L1 distance, mean of draws",
               title=f"{pair} pair" + (": prefix 1^n vs 1^(n+1)" if pair == "count" else ": prefix 1^n 0 vs 1^n 0 0"))
        ax.legend(fontsize=6)
    fig.tight_layout()
    out = [Figure("distance", "Last-token distance between v and v*",
                  "Mean over random models of the L1 distance of the last token's final representation; "
                  "points on the grey line are exactly 0 (representational collapse in that precision).", fig)]
    fig, ax = plt.subplots(figsize=(6, 3.4))
    for i, arm in enumerate(arms_):
        s = arm.series("sensitivity")
        if len(s):
            ax.plot(s.steps, s.values, color=f"C{i}", label=arm.name)
    ax.set(yscale="log", xlabel="input position i", ylabel="||d y_n / d x_i||", title="sensitivity of the last token")
    ax.legend(fontsize=7)
    fig.tight_layout()
    out.append(Figure("sensitivity", "Sensitivity profile",
                      "Norm of the Jacobian of the last token's final representation with respect to each input "
                      "embedding, copy prompt, first random model (Theorem 5.1's quantity).", fig))
    return out


STUDY = Study(
    name="oversquashing",
    title="Transformers need glasses!",
    paper="Barbero et al. 2024, arXiv 2406.04267",
    summary="last-token representations collapse with length, exactly so in bf16; a sliding window prevents it",
    config=OversquashingConfig,
    train=train,
    presets={
        "smoke": {"lengths": (16, 64, 256), "draws": 2, "sensitivity_length": 12},
        "default": {},
        "paper": {"lengths": (64, 256, 1024, 4096, 16384), "positionals": ("none", "rope", "alibi", "sinusoidal")},
    },
    arms=arms,
    claims=CLAIMS,
    figures=figures,
    progress_keys=("copy/float32/mean",),
    wall_times={
        "smoke": "seconds",
        "default": "~5 min on 2 CPU cores (measured)",
        "paper": "~30 min on 2 CPU cores; a GPU runs it in minutes (untrained models, no training)",
    },
)
