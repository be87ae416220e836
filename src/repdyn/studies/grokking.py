"""Deep Grokking (Fan, Pascanu, Jaggi 2024): deep MLPs grok, in stages, while feature rank falls.

A ReLU MLP with every parameter scaled x8 at init is trained with AdamW on MSE to one-hot
targets from a small training set (scikit-learn's digits by default, MNIST from a folder).
Train accuracy saturates long before test accuracy rises; deeper nets fit and generalize later,
in stages, while the rank of deep layers' test-set pre-activations falls.

Arms: `main` (the configured depth, init scale 8), `control` (same net at init scale 1, G3) and,
when `deep_depth > 0`, `deep` (a deeper net trained longer, G2). Facts: grokking.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Literal

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from repdyn.bench.claims import Claim, Verdict, fmt_step, not_run
from repdyn.bench.config import param
from repdyn.bench.context import RunContext
from repdyn.bench.errors import ConfigError
from repdyn.bench.schedule import log_schedule
from repdyn.bench.study import Figure, Study
from repdyn.bench.view import ArmView, RunView
from repdyn.models.mlp import MLP
from repdyn.probes import FeatureRecorder, rank_metrics, weight_norm
from repdyn.tasks.images import check_mnist_folder, load_digits, load_mnist

RANKS = ("numerical_rank_cov", "effective_rank_roy", "srank_kumar")


@dataclass(frozen=True)
class ModelConfig:
    """The MLP: depth counts Linear layers (grokking.md §2)."""

    depth: int = param(4, min=2, help="number of Linear layers (4, 8, 12 in the paper)")
    width: int = param(128, min=1, help="hidden width (400 in the paper; 128 on digits)")
    init_scale: float = param(8.0, min=1e-6, help="every parameter, biases included, is multiplied by this at init")


@dataclass(frozen=True)
class DataConfig:
    """Training and test data: digits (bundled) or MNIST read from `path`."""

    dataset: Literal["digits", "mnist"] = "digits"
    path: str = param("", help="folder with the four MNIST IDX files (dataset=mnist)")
    train_size: int = param(200, min=10, help="training examples (the paper: 1000-8000 of MNIST)")
    test_size: int = param(0, min=0, help="test examples; 0 = all held-out digits / the full MNIST test set")

    def validate(self) -> None:
        if self.dataset == "mnist" and not self.path:
            raise ConfigError("path", "dataset=mnist needs data.path=FOLDER with the MNIST IDX files")


@dataclass(frozen=True)
class TrainConfig:
    """AdamW on MSE to one-hot targets (grokking.md §2)."""

    steps: int = param(20_000, min=1, help="optimizer steps of the main and control arms")
    lr: float = param(1e-3, min=0.0)
    weight_decay: float = param(0.1, min=0.0, help="decoupled (AdamW); 0.1 on digits, 0.005-0.1 in the paper")
    batch_size: int = param(0, min=0, help="0 = full batch")
    dtype: Literal["float32", "float64"] = "float32"


@dataclass(frozen=True)
class GrokkingConfig:
    """The grokking study: a main arm, an init-scale-1 control (G3), an optional deeper arm (G2)."""

    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    control: bool = param(True, help="also train the init-scale control arm (claim G3)")
    control_init_scale: float = param(1.0, min=1e-6)
    deep_depth: int = param(0, min=0, help="also train an arm of this depth (claim G2); 0 = off")
    deep_steps: int = param(40_000, min=1, help="steps of the deep arm")
    log_points: int = param(150, min=2, help="log-spaced evaluation points")
    rank_points: int = param(60, min=2, help="log-spaced points where layer ranks are computed")
    checkpoint_every: int = param(2000, min=0, help="checkpoint every N steps (0 = only at the end and on signals)")


def arms(config: GrokkingConfig) -> dict[str, GrokkingConfig]:
    """main, control (init scale 1) and deep (`deep_depth`, `deep_steps`) as configured."""
    out = {"main": config}
    if config.control:
        out["control"] = replace(config, model=replace(config.model, init_scale=config.control_init_scale))
    if config.deep_depth:
        out["deep"] = replace(
            config,
            model=replace(config.model, depth=config.deep_depth),
            train=replace(config.train, steps=config.deep_steps),
        )
    return out


def check_inputs(config: GrokkingConfig) -> None:
    """Refuse a missing or malformed MNIST folder before any run starts."""
    if config.data.dataset == "mnist":
        check_mnist_folder(config.data.path)


def load_data(config: DataConfig, seed: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """(x_train, y_train, x_test, y_test): a seeded split of digits, or MNIST's own split."""
    if config.dataset == "digits":
        x, y = load_digits()
        order = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
        train, rest = order[: config.train_size], order[config.train_size:]
        test = rest[: config.test_size] if config.test_size else rest
        if len(test) == 0:
            raise ConfigError("data.train_size", f"leaves no digits for testing (there are {len(x)})")
        return x[train], y[train], x[test], y[test]
    x_train, y_train = load_mnist(config.path, "train")
    x_test, y_test = load_mnist(config.path, "test")
    if config.train_size > len(x_train):
        raise ConfigError("data.train_size", f"exceeds the {len(x_train)} MNIST training images")
    test = slice(None, config.test_size or None)
    return x_train[: config.train_size], y_train[: config.train_size], x_test[test], y_test[test]


def evaluate(model: MLP, x: Tensor, y: Tensor) -> tuple[float, float]:
    """(MSE to one-hot targets, accuracy)."""
    with torch.no_grad():
        out = model(x)
        loss = F.mse_loss(out, F.one_hot(y, out.shape[1]).to(out.dtype)).item()
        acc = (out.argmax(1) == y).double().mean().item()
    return loss, acc


def layer_ranks(model: MLP, x_test: Tensor) -> dict[str, float]:
    """Ranks of every Linear layer's test-set outputs (pre-activations), as the paper's code takes them."""
    with FeatureRecorder(model, names="layers.*") as rec, torch.no_grad():
        model(x_test)
    out = {}
    for name, feats in rec.features.items():
        index = name.split(".")[1]
        for metric, value in rank_metrics(feats, RANKS).items():
            out[f"{metric}/{index}"] = float(value)
    return out


def train(ctx: RunContext) -> None:
    """Train one arm: evaluate on a log-spaced schedule, ranks on a coarser one, checkpoint as due."""
    cfg: GrokkingConfig = ctx.config
    dtype = getattr(torch, cfg.train.dtype)
    x_train, y_train, x_test, y_test = load_data(cfg.data, ctx.seed)
    x_train, x_test = x_train.to(ctx.device, dtype), x_test.to(ctx.device, dtype)
    y_train, y_test = y_train.to(ctx.device), y_test.to(ctx.device)
    targets = F.one_hot(y_train, 10).to(dtype)
    model = MLP(x_train.shape[1], cfg.model.width, 10, cfg.model.depth, init_scale=cfg.model.init_scale)
    model = model.to(ctx.device, dtype)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.train.lr, weight_decay=cfg.train.weight_decay)
    batches = torch.Generator().manual_seed(ctx.seed)
    state = {"model": model, "optimizer": optimizer, "batches": batches}
    steps = cfg.train.steps
    schedule = log_schedule(steps, cfg.log_points)
    eval_steps = set(schedule)
    stride = -(-len(schedule) // cfg.rank_points)
    rank_steps = set(schedule[::stride]) | {steps}
    start = ctx.restore(state)
    ctx.begin(total=steps, done=start)
    for step in range(start, steps + 1):
        if step in eval_steps:
            train_loss, train_acc = evaluate(model, x_train, y_train)
            test_loss, test_acc = evaluate(model, x_test, y_test)
            ctx.log(step, train_loss=train_loss, train_acc=train_acc, test_loss=test_loss, test_acc=test_acc,
                    weight_norm=weight_norm(model))
            if step in rank_steps:
                ctx.log(step, **layer_ranks(model, x_test))
        if step == steps:
            break
        if cfg.train.batch_size:
            idx = torch.randint(0, len(x_train), (cfg.train.batch_size,), generator=batches)
            idx = idx.to(ctx.device, non_blocking=True)
            x, t = x_train[idx], targets[idx]
        else:
            x, t = x_train, targets
        loss = F.mse_loss(model(x), t)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        ctx.tick(step + 1, state)


# ---- claims -------------------------------------------------------------------------------------

# grokking.md §6, check G1 (calibrated on digits, 3 seeds, depth 4, 20k steps).
G1_FIT_ACC, G1_FIT_BY, G1_TEST_AT_FIT, G1_GEN_ACC, G1_DELAY = 0.99, 5_000, 0.35, 0.85, 2.0
# grokking.md §6, check G2 (depth 12 vs depth 4; windows scale with the deep arm's steps, 40k in the sheet).
G2_FIT_RATIO, G2_SURGE, G2_RANK_DROP, G2_REF_STEPS = 2.0, 0.10, 0.50, 40_000
G2_PLATEAU, G2_RANK_FROM = (12_000, 20_000), 12_000
# grokking.md §6, check G3 (init scale 1 control): no delay.
G3_GEN_ACC, G3_DELAY = 0.80, 2.0


def fit_step(arm: ArmView, threshold: float = G1_FIT_ACC) -> int | None:
    """First logged step with train accuracy >= threshold."""
    return arm.series("train_acc").first_step_where(lambda v: v >= threshold)


def generalization_step(arm: ArmView, threshold: float) -> int | None:
    """First logged step with test accuracy >= threshold."""
    return arm.series("test_acc").first_step_where(lambda v: v >= threshold)


def claim_g1(run: RunView) -> Verdict:
    """Delayed generalization: fit early with low test accuracy, generalize at least 2x later."""
    arm = run.arm("main")
    if arm is None:
        return not_run("the main arm did not finish")
    a, b = fit_step(arm), generalization_step(arm, G1_GEN_ACC)
    test_at_a = arm.series("test_acc").at(a) if a is not None else float("nan")
    delay = b / a if a and b else float("nan")
    ok = a is not None and b is not None and a <= G1_FIT_BY and test_at_a <= G1_TEST_AT_FIT and b >= G1_DELAY * a
    summary = (
        f"depth {arm.config.model.depth}: train acc >= {G1_FIT_ACC} at step {fmt_step(a)} "
        f"(test {test_at_a:.2f} there), "
        f"test acc >= {G1_GEN_ACC} at step {fmt_step(b)} -> delay {delay:.1f}x "
        f"(needs fit by {fmt_step(G1_FIT_BY)}, test at fit <= {G1_TEST_AT_FIT}, delay >= {G1_DELAY:g}x); "
        f"final test acc {arm.series('test_acc').last:.3f}"
    )
    numbers = {"fit_step": a or float("nan"), "test_at_fit": test_at_a, "generalization_step": b or float("nan"),
               "delay": delay}
    return Verdict(ok, summary, numbers, figures=("accuracy",))


def claim_g2(run: RunView) -> Verdict:
    """Deeper nets fit later and generalize in stages while their deep-layer ranks fall."""
    main, deep = run.arm("main"), run.arm("deep")
    if deep is None or main is None:
        return not_run("needs the deep arm (e.g. --preset long, or --set deep_depth=12)")
    scale = deep.config.train.steps / G2_REF_STEPS
    plateau = (int(G2_PLATEAU[0] * scale), int(G2_PLATEAU[1] * scale))
    rank_from = int(G2_RANK_FROM * scale)
    a_main, a_deep = fit_step(main, 1.0), fit_step(deep, 1.0)
    fit_ratio = a_deep / a_main if a_main and a_deep else float("nan")
    test = deep.series("test_acc")
    plateau_values = test.between(*plateau)
    plateau_acc = float(plateau_values.max()) if plateau_values.size else float("nan")
    surge = test.last - plateau_acc
    depth = deep.config.model.depth
    layers = [i for i in range(3, depth - 2)]  # 1-based layers 4 .. depth-2 (4-10 at depth 12)
    rank_start = np.mean([deep.series(f"numerical_rank_cov/{i}").at(rank_from) for i in layers])
    rank_end = np.mean([deep.series(f"numerical_rank_cov/{i}").last for i in layers])
    drop = 1 - rank_end / rank_start if rank_start else float("nan")
    ok = bool(fit_ratio >= G2_FIT_RATIO and surge >= G2_SURGE and drop >= G2_RANK_DROP)
    summary = (
        f"train acc 1.0 at {fmt_step(a_deep)} (depth {depth}) vs {fmt_step(a_main)} (depth {main.config.model.depth}) "
        f"-> {fit_ratio:.1f}x (needs >= {G2_FIT_RATIO:g}x); depth-{depth} test acc {test.last:.3f} at the end vs "
        f"plateau {plateau_acc:.3f} in {fmt_step(plateau[0])}-{fmt_step(plateau[1])} -> +{surge:.3f} "
        f"(needs >= {G2_SURGE}); mean rank of layers 4-{depth - 2} {rank_start:.0f} -> {rank_end:.0f} "
        f"(drop {drop:.0%}, needs >= {G2_RANK_DROP:.0%})"
    )
    numbers = {"fit_ratio": fit_ratio, "plateau_acc": plateau_acc, "final_test_acc": test.last, "surge": surge,
               "rank_start": float(rank_start), "rank_end": float(rank_end), "rank_drop": drop}
    return Verdict(ok, summary, numbers, figures=("accuracy", "ranks"))


def claim_g3(run: RunView) -> Verdict:
    """At init scale 1 the same net generalizes without delay."""
    arm = run.arm("control")
    if arm is None:
        return not_run("needs the control arm (control=true)")
    a, b = fit_step(arm), generalization_step(arm, G3_GEN_ACC)
    delay = b / a if a and b else float("nan")
    ok = a is not None and b is not None and b <= G3_DELAY * a
    summary = (
        f"init scale {arm.config.model.init_scale:g}: train acc >= {G1_FIT_ACC} at step {fmt_step(a)}, "
        f"test acc >= {G3_GEN_ACC} at step {fmt_step(b)} -> delay {delay:.2f}x (needs <= {G3_DELAY:g}x); "
        f"final test acc {arm.series('test_acc').last:.3f}"
    )
    return Verdict(ok, summary, {"fit_step": a or float("nan"), "generalization_step": b or float("nan"),
                                 "delay": delay}, figures=("accuracy",))


CLAIMS = (
    Claim("G1", "delayed generalization", claim_g1, "grokking.md §4 claim 1, §6 check G1"),
    Claim("G2", "deeper nets grok later, in stages, as deep-layer rank falls", claim_g2,
          "grokking.md §4 claims 1-3, §6 check G2"),
    Claim("G3", "no delay at init scale 1", claim_g3, "grokking.md §6 check G3"),
)


# ---- figures ------------------------------------------------------------------------------------

def _arm_label(arm: ArmView) -> str:
    return f"{arm.name}: depth {arm.config.model.depth}, init x{arm.config.model.init_scale:g}"


def _log_edges(centres: np.ndarray) -> np.ndarray:
    """Cell edges halfway (in log space) between positive, increasing centres."""
    logs = np.log(centres.astype(float))
    mids = (logs[1:] + logs[:-1]) / 2
    first = logs[0] - (mids[0] - logs[0]) if len(mids) else logs[0] - 0.5
    last = logs[-1] + (logs[-1] - mids[-1]) if len(mids) else logs[0] + 0.5
    return np.exp(np.concatenate([[first], mids, [last]]))


def figures(run: RunView) -> list[Figure]:
    """Accuracy with fit/generalization steps marked, layer-rank heat maps, weight norm, losses."""
    arms_ = [a for a in run.arms.values() if a.has("test_acc")]
    if not arms_:
        return []
    out = []
    fig, axes = plt.subplots(1, len(arms_), figsize=(5 * len(arms_), 3.6), squeeze=False, sharey=True)
    for ax, arm in zip(axes[0], arms_, strict=True):
        for name, style in (("train_acc", "-"), ("test_acc", "-")):
            s = arm.series(name)
            ax.plot(np.maximum(s.steps, 1), s.values, style, label=name.replace("_", " "))
        a, b = fit_step(arm), generalization_step(arm, G1_GEN_ACC)
        for step, label, color in ((a, f"fit {fmt_step(a)}", "C0"), (b, f"generalize {fmt_step(b)}", "C1")):
            if step:
                ax.axvline(step, color=color, ls="--", lw=1, label=label)
        ax.set_xscale("log")
        ax.set_xlabel("step")
        ax.set_title(_arm_label(arm), fontsize=9)
        ax.legend(fontsize=7, loc="lower right")
    axes[0][0].set_ylabel("accuracy")
    fig.tight_layout()
    out.append(Figure("accuracy", "Train and test accuracy",
                      f"Accuracy on a log step axis; dashed lines mark train acc >= {G1_FIT_ACC} and test acc >= "
                      f"{G1_GEN_ACC}. Grokking shows as the gap between them.", fig))

    fig, axes = plt.subplots(1, len(arms_), figsize=(5 * len(arms_), 3.2), squeeze=False)
    for ax, arm in zip(axes[0], arms_, strict=True):
        hidden = sorted(int(n.split("/")[1]) for n in arm.names("numerical_rank_cov/"))[:-1]
        if not hidden:
            ax.axis("off")
            continue
        steps = np.maximum(arm.series(f"numerical_rank_cov/{hidden[0]}").steps, 1)
        grid = np.stack([arm.series(f"numerical_rank_cov/{i}").values for i in hidden])
        mesh = ax.pcolormesh(_log_edges(steps), np.arange(len(hidden) + 1) + 0.5, grid, cmap="viridis")
        ax.set_xscale("log")
        ax.set_xlabel("step")
        ax.set_ylabel("hidden layer")
        ax.set_yticks(np.array(hidden) + 1)
        ax.set_title(_arm_label(arm), fontsize=9)
        fig.colorbar(mesh, ax=ax, label="rank of cov")
    fig.tight_layout()
    out.append(Figure("ranks", "Feature rank per layer over training",
                      "numerical_rank of the covariance of each hidden Linear layer's test-set outputs (the "
                      "paper's measure); it falls in deep layers as test accuracy rises.", fig))

    fig, (ax_norm, ax_loss) = plt.subplots(1, 2, figsize=(10, 3.4))
    for arm in arms_:
        s = arm.series("weight_norm")
        ax_norm.plot(np.maximum(s.steps, 1), s.values, label=_arm_label(arm))
        for name, style in (("train_loss", "--"), ("test_loss", "-")):
            s = arm.series(name)
            ax_loss.plot(np.maximum(s.steps, 1), s.values, style, label=f"{arm.name} {name.replace('_', ' ')}")
    ax_norm.set(xscale="log", xlabel="step", ylabel="||theta||", title="weight norm")
    ax_loss.set(xscale="log", yscale="log", xlabel="step", ylabel="MSE", title="loss")
    ax_norm.legend(fontsize=7)
    ax_loss.legend(fontsize=7)
    fig.tight_layout()
    out.append(Figure("norm_loss", "Weight norm and loss",
                      "Weight decay shrinks the x8-scaled weights while test loss falls; the paper argues feature "
                      "rank tracks generalization better than weight norm.", fig))
    return out


STUDY = Study(
    name="grokking",
    title="Deep Grokking",
    paper="Fan, Pascanu, Jaggi 2024, arXiv 2405.19454",
    summary="deep MLPs grok; deeper nets generalize later and in stages while feature rank falls",
    config=GrokkingConfig,
    train=train,
    presets={
        "smoke": {"train.steps": 1500, "log_points": 40, "rank_points": 8, "model.width": 64,
                  "checkpoint_every": 500},
        "default": {},
        "long": {"deep_depth": 12, "deep_steps": 40_000},
        "paper": {"data.dataset": "mnist", "data.train_size": 1000, "model.width": 400, "train.steps": 100_000,
                  "train.batch_size": 200, "train.weight_decay": 0.01, "train.dtype": "float64",
                  "deep_depth": 12, "deep_steps": 100_000},
    },
    arms=arms,
    claims=CLAIMS,
    figures=figures,
    progress_keys=("train_acc", "test_acc"),
    check=check_inputs,
    max_threads=1,
    wall_times={
        "smoke": "seconds",
        "default": "~1 min on 2 CPU cores (measured)",
        "long": "~10 min on 2 CPU cores",
        "paper": "~1 h on one GPU (estimate, not yet run)",
    },
)
