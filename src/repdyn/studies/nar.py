"""Neural algorithmic reasoning on CLRS-30 (Ibarz et al. 2022): one NAR, CLRS's recipe, OOD test.

Trains an encode-process-decode network (default Triplet-GMPNN) on one CLRS-30 algorithm with
Ibarz et al.'s recipe (mixed sizes n <= 16, random p and pos, soft hints, no teacher forcing),
validates at n = 16 every `eval_every` steps, keeps the best-validation weights (a checkpoint in
the arm's folder) and tests them out of distribution on the CLRS-30 test split (n = 64).

    repdyn run nar --set algorithm=bfs --set processor=triplet_gmpnn

Facts: clrs.md §2.3, §6, §7, §8. The claim compares the OOD micro-F1 with Ibarz et al.'s Table 2,
which is for 10k steps at H = 128 (the `paper` preset); the default preset is a CPU budget.
"""

from __future__ import annotations

import matplotlib.pyplot as plt

from repdyn.bench.claims import Claim, Verdict, not_run
from repdyn.bench.context import RunContext
from repdyn.bench.study import Figure, Study
from repdyn.bench.view import RunView
from repdyn.methods.nar_training import IBARZ_TABLE2, NARTrainConfig, train_nar

# clrs.md §8: Table 2 is a 10-seed mean at 10k steps; within 5 points counts as reproduced.
N1_TOLERANCE = 5.0


def train(ctx: RunContext) -> None:
    """Train, validate, keep the best weights, test them at n = 64."""
    train_nar(ctx, ctx.config, ctx.seed)


def claim_n1(run: RunView) -> Verdict:
    """The best-validation weights' OOD micro-F1 against Ibarz et al.'s Table 2."""
    arm = run.arm("main")
    if arm is None or not arm.has("ood_score"):
        return not_run("the main arm did not finish")
    cfg = arm.config
    ours = 100 * arm.series("ood_score").last
    published = IBARZ_TABLE2.get(cfg.algorithm, float("nan"))
    ok = bool(ours >= published - N1_TOLERANCE)
    best = int(arm.series("best_step").last)
    summary = (f"{cfg.algorithm}, {cfg.processor} H={cfg.hidden}, {cfg.train_steps} steps: OOD "
               f"(n=64) micro-F1 {ours:.2f} at the best-validation step {best} (val "
               f"{arm.series('best_val_score').last:.3f}) vs Ibarz et al. Table 2 {published:.2f} "
               f"(10k steps, H=128; needs >= {published - N1_TOLERANCE:.2f})")
    return Verdict(ok, summary, {"ood": ours, "published": published, "best_step": best},
                   figures=("scores",))


CLAIMS = (Claim("N1", "OOD micro-F1 near Ibarz et al.'s Table 2", claim_n1,
                "clrs.md §8 Table 2, §14 E1-E2"),)


def figures(run: RunView) -> list[Figure]:
    """Training losses; validation, test and per-hint scores with the selected step."""
    arm = run.arm("main")
    if arm is None or not arm.has("train_loss"):
        return []
    fig, (ax_loss, ax_score) = plt.subplots(1, 2, figsize=(10, 3.6))
    s = arm.series("train_loss")
    ax_loss.plot(s.steps, s.values, lw=0.8, label="total")
    for name in arm.names("loss/"):
        s = arm.series(name)
        ax_loss.plot(s.steps, s.values, lw=0.6, alpha=0.7, label=name[5:])
    ax_loss.set(yscale="log", xlabel="step", ylabel="loss", title="training loss")
    ax_loss.legend(fontsize=7)
    for name, style in (("val_score", "-"), ("test_score", "o-")):
        if arm.has(name):
            s = arm.series(name)
            ax_score.plot(s.steps, s.values, style, ms=3, label=name.replace("_", " "))
    for name in arm.names("val_hint/"):
        s = arm.series(name)
        ax_score.plot(s.steps, s.values, ":", lw=0.8, label=f"val hint {name[9:]}")
    best = arm.series("best_step").last
    ax_score.axvline(best, color="gray", ls="--", lw=1, label=f"best val step {best:.0f}")
    ax_score.scatter([arm.config.train_steps], [arm.series("ood_score").last], marker="*", s=80,
                     color="C3", zorder=3, label="OOD (n=64), best weights")
    ax_score.set(xlabel="step", ylabel="CLRS score", ylim=(0, 1.02), title="scores")
    ax_score.legend(fontsize=7)
    fig.tight_layout()
    return [Figure("scores", "Losses and scores", "Left: training loss and each probe's part. "
                   "Right: validation (n=16) and test (n=64) micro-F1 over training, per-hint "
                   "validation scores, and the OOD score of the best-validation weights (star).",
                   fig)]


STUDY = Study(
    name="nar",
    title="Neural algorithmic reasoning on CLRS-30",
    paper="Ibarz et al. 2022, arXiv 2209.11142 (CLRS: Velickovic et al. 2022)",
    summary="one NAR trained with CLRS's recipe; best-validation weights tested OOD at n = 64",
    config=NARTrainConfig,
    train=train,
    presets={
        "smoke": {"train_steps": 12, "hidden": 16, "eval_every": 6, "val_samples": 8,
                  "test_samples": 4, "checkpoint_every": 6},
        "default": {},
        "paper": {"hidden": 128, "train_steps": 10_000, "test_every": 500, "checkpoint_every": 1000},
    },
    claims=CLAIMS,
    figures=figures,
    progress_keys=("train_loss", "val_score"),
    wall_times={
        "smoke": "seconds",
        "default": "~1 min on 2 CPU cores (measured)",
        "paper": "~20 min per algorithm on one GPU (estimate, not yet run)",
    },
)
