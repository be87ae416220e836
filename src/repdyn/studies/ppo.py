"""Plain PPO with CleanRL's semantics: `repdyn run ppo --set env_id=... --set total_timesteps=...`.

Config keys are CleanRL's `ppo.py` argument names with its CartPole defaults (ppo_collapse.md §7);
one arm, `main`. The run logs CleanRL's statistics (`losses/*`, `sps`, `episodic_return_mean` over
the last 20 episodes) and the representation diagnostics of `repdyn.methods.ppo` after every update.
"""

from __future__ import annotations

from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np

from repdyn.bench.claims import Claim, Verdict, not_run
from repdyn.bench.config import param
from repdyn.bench.context import RunContext
from repdyn.bench.study import Figure, Study
from repdyn.bench.view import RunView
from repdyn.methods.ppo import PPOConfig, run_ppo
from repdyn.tasks.rl_envs import require_family


@dataclass(frozen=True)
class PPOStudyConfig(PPOConfig):
    """CleanRL's arguments plus how often to checkpoint (also where environments are reset, see `run_ppo`)."""

    checkpoint_every: int = param(100, min=0, help="checkpoint (and reset the environments) every N updates")


def check_inputs(config: PPOStudyConfig) -> None:
    """Refuse an unknown environment, or one whose optional package is missing, before the run starts."""
    require_family(config.env_id)


def train(ctx: RunContext) -> None:
    """Train the single arm."""
    run_ppo(ctx, ctx.config)


# ppo_collapse.md §7: CleanRL reports 490.04 +- 6.12 on CartPole-v1; §9 uses >= 450 over the last 20 episodes.
SOLVED_RETURN = 450.0


def claim_solves(run: RunView) -> Verdict:
    """CartPole-v1 is solved: mean return of the last 20 episodes >= 450 at the end."""
    arm = run.arm("main")
    if arm is None:
        return not_run("the main arm did not finish")
    if not arm.config.env_id.startswith("CartPole"):
        return not_run(f"the threshold is defined for CartPole, not {arm.config.env_id}")
    final = arm.series("episodic_return_mean").last
    return Verdict(final >= SOLVED_RETURN,
                   f"mean return of the last 20 episodes {final:.1f} at {arm.series('global_step').last:.0f} steps "
                   f"(needs >= {SOLVED_RETURN:g}; CleanRL reports 490 +- 6)", {"final_return": final})


def figures(run: RunView) -> list[Figure]:
    """Return, trust region, pre-activation norm, feature ranks, capacity and speed over training."""
    arm = run.arm("main")
    if arm is None or not arm.has("global_step"):
        return []
    panels = [("episodic_return_mean", "return (last 20 episodes)"), ("trust/frac_outside", "ratios outside clip"),
              ("actor/prenorm", "actor pre-activation norm"), ("actor/feature_rank_lyle", "actor feature rank"),
              ("capacity/policy", "capacity loss (policy)"), ("sps", "env steps per second")]
    fig, axes = plt.subplots(2, 3, figsize=(13, 6.4))
    steps = arm.series("global_step")
    for ax, (name, title) in zip(axes.flat, panels, strict=True):
        s = arm.series(name)
        x = np.interp(s.steps, steps.steps, steps.values) if len(steps) else s.steps
        ax.plot(x, s.values)
        ax.set(title=title, xlabel="environment steps")
    fig.tight_layout()
    return [Figure("training", "PPO training and diagnostics",
                   "CleanRL statistics and representation probes on the whole rollout after each update.", fig)]


STUDY = Study(
    name="ppo",
    title="PPO (CleanRL semantics)",
    paper="Schulman et al. 2017, arXiv 1707.06347; CleanRL ppo.py (Huang et al. 2022)",
    summary="plain PPO with CleanRL's arguments and defaults, plus representation diagnostics",
    config=PPOStudyConfig,
    train=train,
    presets={
        "smoke": {"total_timesteps": 4096, "checkpoint_every": 4, "diagnostics.capacity_every": 4,
                  "diagnostics.capacity_steps": 20, "diagnostics.rank_every": 2},
        "default": {},
        "paper": {},  # CleanRL ppo.py's defaults are the default preset
    },
    claims=(Claim("P1", "solves CartPole-v1", claim_solves, "ppo_collapse.md §7 (CleanRL returns), §9"),),
    figures=figures,
    progress_keys=("episodic_return_mean", "sps"),
    check=check_inputs,
    wall_times={
        "smoke": "seconds",
        "default": "~1.5 min on 2 CPU cores (measured: 76 CPU-s)",
        "paper": "= default (the defaults of CleanRL ppo.py); a GPU does not help this tiny MLP",
    },
)
