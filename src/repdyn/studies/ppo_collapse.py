"""No Representation, No Trust (Moalla et al. 2024): PPO's representation degrades, its trust region with it; PFO helps.

Arms (ppo_collapse.md §8-9): for each number of epochs E in `epochs`, `baseline_eE` (plain PPO)
and `pfo_eE` (PPO + PFO as configured in `ppo.pfo`), on CartPole-v1 with the fact sheet's
collapse setting (separate 2 x 64 ReLU actor and critic, constant LR 1e-3, 300k steps); and
`toy`, the rank-1 example in which clipping fails (§6), whose ratios are logged so PPO3 is judged
from the store like the others.

Claims: PPO1 (PFO keeps the pre-activation norm down and still solves CartPole), PPO2 (more
epochs, faster norm growth) and PPO3 (the toy). The `slow` preset runs the same arms on MinAtar
Breakout (the closest CPU analogue of the Atari collapse, §9), `paper` on Atari Phoenix (§2).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import matplotlib.pyplot as plt
import numpy as np

from repdyn.bench.claims import Claim, Verdict, not_run
from repdyn.bench.config import param
from repdyn.bench.context import RunContext
from repdyn.bench.errors import ConfigError
from repdyn.bench.study import Figure, Study
from repdyn.bench.view import ArmView, RunView
from repdyn.methods.pfo import PFOConfig
from repdyn.methods.ppo import PPOConfig, run_ppo
from repdyn.methods.ppo_toy import ToyConfig, run_toy
from repdyn.tasks.rl_envs import require_family


def collapse_ppo() -> PPOConfig:
    """CleanRL's CartPole PPO in the fact sheet's collapse setting (ppo_collapse.md §8), PFO coef 1 (§4)."""
    return PPOConfig(total_timesteps=300_000, learning_rate=1e-3, anneal_lr=False, activation="relu",
                     pfo=PFOConfig(coef=1.0))


@dataclass(frozen=True)
class CollapseConfig:
    """Baseline and PFO arms at each number of epochs, plus the toy."""

    ppo: PPOConfig = field(default_factory=collapse_ppo)
    epochs: tuple[int, ...] = param((4, 16), min=1, help="update epochs of the arms (PPO2 compares the extremes)")
    toy: ToyConfig = field(default_factory=ToyConfig)
    checkpoint_every: int = param(100, min=0, help="checkpoint (and reset the environments) every N updates")

    def validate(self) -> None:
        if not self.epochs:
            raise ConfigError("epochs", "needs at least one number of epochs")


def arm_name(kind: str, epochs: int) -> str:
    """`baseline_e16`, `pfo_e4`, ..."""
    return f"{kind}_e{epochs}"


def arms(config: CollapseConfig) -> dict[str, CollapseConfig]:
    """Most epochs first (the longest arms start first in parallel workers), then the toy."""
    out = {}
    for epochs in sorted(set(config.epochs), reverse=True):
        base = replace(config.ppo, update_epochs=epochs)
        out[arm_name("baseline", epochs)] = replace(config, ppo=replace(base, pfo=PFOConfig()))
        out[arm_name("pfo", epochs)] = replace(config, ppo=base)
    out["toy"] = config
    return out


def check_inputs(config: CollapseConfig) -> None:
    """Refuse an unknown environment, or one whose package is missing, before any run starts."""
    require_family(config.ppo.env_id, key="ppo.env_id")


def toy_series(alpha: float, state: str) -> str:
    """Name of the toy's ratio series of state `x` or `y` at this alpha."""
    return f"toy/ratio_{state}/alpha_{alpha:g}"


def train(ctx: RunContext) -> None:
    """One arm: the toy's ratios, or a PPO run."""
    cfg: CollapseConfig = ctx.config
    if ctx.arm != "toy":
        run_ppo(ctx, cfg.ppo)
        return
    ctx.begin(total=1)
    for alpha in cfg.toy.alphas:
        trace = run_toy(alpha, cfg.toy)
        for step, (rx, ry) in enumerate(zip(trace.ratio_x, trace.ratio_y, strict=True)):
            ctx.log(step, **{toy_series(alpha, "x"): rx, toy_series(alpha, "y"): ry})
    ctx.tick(1, {})


# ---- claims -------------------------------------------------------------------------------------

# ppo_collapse.md §9, PPO1: PFO's end prenorm <= 0.75 x the baseline's; both reach >= 450 (mean of 20 episodes).
# "Reach" is read as: the 20-episode mean attains 450 during training. With a constant LR of 1e-3 and 16 epochs
# CartPole returns oscillate late in training (seed 1 calibration: 500 by 25k steps, 399 at the very end).
PPO1_NORM_RATIO, PPO1_RETURN = 0.75, 450.0
# ppo_collapse.md §9, PPO2: the baseline's prenorm at 16 epochs >= 1.3 x at 4 epochs.
PPO2_GROWTH = 1.3
# ppo_collapse.md §9, PPO3: ratio_y > 1 + eps at alpha = 3; within 0.02 of 1 at alpha in {0, -1}.
PPO3_ALIASED, PPO3_CONTROLS, PPO3_TOLERANCE = 3.0, (0.0, -1.0), 0.02
END_FRACTION = 0.1  # "end" of a series: the mean over its last 10% of updates (one update is noisy)


def end_value(arm: ArmView, name: str) -> float:
    """Mean of a series over its last `END_FRACTION` of logged points."""
    values = arm.series(name).values
    if not len(values):
        return float("nan")
    return float(np.mean(values[-max(1, round(len(values) * END_FRACTION)):]))


def _extreme_arms(run: RunView, kind: str) -> tuple[ArmView | None, ArmView | None]:
    epochs = sorted(run.config.epochs)
    return run.arm(arm_name(kind, epochs[0])), run.arm(arm_name(kind, epochs[-1]))


def claim_ppo1(run: RunView) -> Verdict:
    """At the most epochs, PFO ends with a pre-activation norm <= 0.75x the baseline's; both reach a return of 450."""
    e = max(run.config.epochs)
    base, pfo = run.arm(arm_name("baseline", e)), run.arm(arm_name("pfo", e))
    if base is None or pfo is None:
        return not_run(f"needs the baseline_e{e} and pfo_e{e} arms")
    norm_b, norm_p = end_value(base, "actor/prenorm"), end_value(pfo, "actor/prenorm")
    ratio = norm_p / norm_b
    returns_b, returns_p = base.series("episodic_return_mean"), pfo.series("episodic_return_mean")
    best_b, best_p = float(np.max(returns_b.values, initial=-np.inf)), float(np.max(returns_p.values, initial=-np.inf))
    cartpole = base.config.ppo.env_id.startswith("CartPole")
    returns_ok = not cartpole or (best_b >= PPO1_RETURN and best_p >= PPO1_RETURN)
    needs = f"needs >= {PPO1_RETURN:g}" if cartpole else "no threshold off CartPole"
    summary = (
        f"{e} epochs: end pre-activation norm PFO {norm_p:.2f} vs baseline {norm_b:.2f} -> {ratio:.2f}x "
        f"(needs <= {PPO1_NORM_RATIO}x); best mean return of 20 episodes PFO {best_p:.0f}, baseline {best_b:.0f} "
        f"({needs}); at the end PFO {returns_p.last:.0f}, baseline {returns_b.last:.0f}"
    )
    numbers = {"prenorm_pfo": norm_p, "prenorm_baseline": norm_b, "ratio": ratio, "best_return_pfo": best_p,
               "best_return_baseline": best_b, "final_return_pfo": returns_p.last,
               "final_return_baseline": returns_b.last}
    return Verdict(bool(ratio <= PPO1_NORM_RATIO and returns_ok), summary, numbers, figures=("training",))


def claim_ppo2(run: RunView) -> Verdict:
    """The baseline's pre-activation norm ends >= 1.3x higher at the most epochs than at the fewest."""
    low, high = _extreme_arms(run, "baseline")
    epochs = sorted(run.config.epochs)
    if low is None or high is None or epochs[0] == epochs[-1]:
        return not_run("needs baseline arms at two numbers of epochs")
    norm_low, norm_high = end_value(low, "actor/prenorm"), end_value(high, "actor/prenorm")
    start = high.series("actor/prenorm").values[0]
    growth = norm_high / norm_low
    summary = (
        f"baseline end pre-activation norm {norm_high:.2f} at {epochs[-1]} epochs vs {norm_low:.2f} at {epochs[0]} "
        f"-> {growth:.2f}x (needs >= {PPO2_GROWTH}x); after the first update it was {start:.2f}"
    )
    return Verdict(bool(growth >= PPO2_GROWTH), summary,
                   {"prenorm_high": norm_high, "prenorm_low": norm_low, "growth": growth}, figures=("training",))


def claim_ppo3(run: RunView) -> Verdict:
    """Toy: the aliased state's ratio leaves the clip range at alpha = 3 and stays at 1 for alpha 0 and -1."""
    toy = run.arm("toy")
    if toy is None:
        return not_run("needs the toy arm")
    eps = toy.config.toy.clip_eps
    wanted = (PPO3_ALIASED, *PPO3_CONTROLS)
    if not all(toy.has(toy_series(a, "y")) for a in wanted):
        return not_run(f"needs toy.alphas to include {', '.join(f'{a:g}' for a in wanted)}")
    final = {a: toy.series(toy_series(a, "y")).last for a in wanted}
    ok = final[PPO3_ALIASED] > 1 + eps and all(abs(final[a] - 1) <= PPO3_TOLERANCE for a in PPO3_CONTROLS)
    controls = ", ".join(f"alpha {a:g}: {final[a]:.3f}" for a in PPO3_CONTROLS)
    summary = (
        f"ratio of y after {toy.config.toy.steps} steps: alpha 3: {final[PPO3_ALIASED]:.3f} (needs > 1+eps = "
        f"{1 + eps:g}); {controls} (need within {PPO3_TOLERANCE} of 1); "
        f"ratio of x at alpha 3: {toy.series(toy_series(PPO3_ALIASED, 'x')).last:.3f}"
    )
    return Verdict(bool(ok), summary, {f"ratio_y_alpha_{a:g}": v for a, v in final.items()}, figures=("toy",))


CLAIMS = (
    Claim("PPO1", "PFO curbs pre-activation norm growth and still solves CartPole", claim_ppo1,
          "ppo_collapse.md §3, §8, §9 check PPO1"),
    Claim("PPO2", "more epochs, faster pre-activation norm growth", claim_ppo2, "ppo_collapse.md §3, §9 check PPO2"),
    Claim("PPO3", "clipping fails to bound an aliased state's ratio (toy)", claim_ppo3,
          "ppo_collapse.md §6, §9 check PPO3"),
)


# ---- figures ------------------------------------------------------------------------------------

SMOOTH = 10  # updates in the moving average drawn for the noisy per-update diagnostics
PANELS = (  # (series, title, smoothed)
    ("episodic_return_mean", "return (last 20 episodes)", False),
    ("actor/prenorm", "actor pre-activation norm", False),
    ("actor/feature_rank_lyle", "actor feature rank (Lyle)", False),
    ("critic/feature_rank_lyle", "critic feature rank (Lyle)", False),
    ("trust/frac_outside", f"ratios outside [1-eps, 1+eps] after the epochs ({SMOOTH}-update mean)", True),
    ("trust/max_above", f"max ratio above 1+eps ({SMOOTH}-update mean)", True),
    ("capacity/policy", "capacity loss, policy (KL)", False),
    ("capacity/value", "capacity loss, value (MSE)", False),
    ("actor/feature_change", f"policy pre-activation change per update ({SMOOTH}-update mean)", True),
)


def _moving_mean(x: np.ndarray, y: np.ndarray, window: int) -> tuple[np.ndarray, np.ndarray]:
    """Trailing mean of `y` over `window` points (x shifted to each window's last point)."""
    if len(y) < window:
        return x, y
    return x[window - 1:], np.convolve(y, np.ones(window) / window, mode="valid")


def _style(arm: ArmView, all_epochs: list[int]) -> dict:
    epochs = arm.config.ppo.update_epochs
    return {"color": f"C{all_epochs.index(epochs) if epochs in all_epochs else 0}",
            "ls": "--" if arm.name.startswith("pfo") else "-",
            "label": f"{'PFO' if arm.name.startswith('pfo') else 'baseline'}, {epochs} epochs"}


def figures(run: RunView) -> list[Figure]:
    """Training curves of every PPO arm on shared axes, and the toy's ratios."""
    out = []
    ppo_arms = [a for a in run.arms.values() if a.name != "toy" and a.has("global_step")]
    all_epochs = sorted({a.config.ppo.update_epochs for a in ppo_arms})
    if ppo_arms:
        fig, axes = plt.subplots(3, 3, figsize=(14, 10.5), sharex=True)
        for ax, (name, title, smooth) in zip(axes.flat, PANELS, strict=True):
            for arm in ppo_arms:
                s, steps = arm.series(name), arm.series("global_step")
                if len(s):
                    x, y = np.interp(s.steps, steps.steps, steps.values), s.values
                    x, y = _moving_mean(x, y, SMOOTH) if smooth else (x, y)
                    ax.plot(x, y, lw=1, **_style(arm, all_epochs))
            ax.set_title(title, fontsize=9)
        for ax in axes[-1]:
            ax.set_xlabel("environment steps")
        axes.flat[0].legend(fontsize=7)
        fig.tight_layout()
        out.append(Figure("training", "Baseline vs PFO over training",
                          "Every PPO arm on shared axes (solid: baseline, dashed: PFO; colour: epochs). Diagnostics "
                          "are measured on the whole rollout after each update; ranks and capacity every K updates.",
                          fig))
    toy = run.arms.get("toy")
    if toy is not None and toy.names("toy/"):
        fig, ax = plt.subplots(figsize=(6, 3.8))
        for i, alpha in enumerate(toy.config.toy.alphas):
            for state, ls in (("y", "-"), ("x", ":")):
                s = toy.series(toy_series(alpha, state))
                ax.plot(s.steps, s.values, ls, color=f"C{i}", label=f"alpha {alpha:g}, ratio of {state}")
        ax.axhline(1 + toy.config.toy.clip_eps, color="k", lw=0.8, ls="--", label="1 + eps")
        ax.set(xlabel="update (x on even, y on odd steps)", ylabel="pi(a1|s) / pi_old(a1|s)")
        ax.legend(fontsize=7)
        fig.tight_layout()
        out.append(Figure("toy", "Toy: clipping does not bound an aliased state's ratio",
                          "y = alpha * x shares x's only feature: at alpha 3 updates on x push y's ratio past 1+eps "
                          "after y's own term was clipped.", fig))
    return out


_MINATAR = {  # ppo_collapse.md §9 optional long check: MinAtar Breakout, ReLU, constant LR, epochs {4, 16}
    "ppo.env_id": "MinAtar/Breakout-v1", "ppo.total_timesteps": 3_000_000, "ppo.num_envs": 8,
    "ppo.learning_rate": 2.5e-4, "ppo.clip_coef": 0.1, "ppo.diagnostics.capacity_every": 25,
}
_ATARI = {  # ppo_collapse.md §2, Atari column: 8 x 128, minibatch 256, clip 0.1, unclipped value loss, 100M frames
    "ppo.env_id": "ALE/Phoenix-v5", "ppo.total_timesteps": 25_000_000, "ppo.num_envs": 8, "ppo.learning_rate": 2.5e-4,
    "ppo.clip_coef": 0.1, "ppo.clip_vloss": False, "epochs": [4, 8], "ppo.diagnostics.capacity_every": 100,
}

STUDY = Study(
    name="ppo_collapse",
    title="No Representation, No Trust",
    paper="Moalla, Miele, Pyatko, Pascanu, Gulcehre, NeurIPS 2024, arXiv 2405.00662",
    summary="PPO's pre-activation norm grows with epochs and its trust region fails; PFO curbs the growth",
    config=CollapseConfig,
    train=train,
    presets={
        "smoke": {"ppo.total_timesteps": 2048, "checkpoint_every": 2, "ppo.diagnostics.capacity_every": 2,
                  "ppo.diagnostics.capacity_steps": 10, "ppo.diagnostics.rank_every": 2, "epochs": [1, 2]},
        "default": {},
        "slow": _MINATAR,
        "paper": _ATARI,
    },
    arms=arms,
    claims=CLAIMS,
    figures=figures,
    progress_keys=("episodic_return_mean", "actor/prenorm"),
    check=check_inputs,
    wall_times={
        "smoke": "seconds",
        "default": "~3 min on 2 CPU cores (measured)",
        "paper": "~10 h on one GPU + 8 CPU env workers; needs `pip install .[rl]` (estimate, not yet run)",
    },
)
