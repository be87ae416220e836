"""PPO environment steps per second on CartPole-v1: ours vs CleanRL's `ppo.py`, one thread each.

Ours runs the `ppo` study's default config (CleanRL's CartPole hyperparameters, every diagnostic
at its default cadence, logging to a run store, checkpoints) in this process on one thread.
CleanRL's file is not shipped: give a copy with `--cleanrl PATH`; it runs in a subprocess with
`OMP_NUM_THREADS=1`, the same hyperparameters (its defaults, passed explicitly), tracking and CUDA
off, and its last printed `SPS:` is taken. Both SPS are env steps over the training loop's wall time;
the two alternate `--repeats` times and the best SPS of each counts (a shared machine only slows runs down).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

from repdyn.bench import config as cfg
from repdyn.bench.progress import NullProgress
from repdyn.bench.runner import create_study_run, run_arm
from repdyn.bench.store import RunStore
from repdyn.studies.ppo import STUDY

GOAL = 1.0
# CleanRL's ppo.py defaults for CartPole-v1 (ppo_collapse.md §7), passed to both implementations.
HYPERPARAMETERS = {"env-id": "CartPole-v1", "learning-rate": "0.00025", "num-envs": "4", "num-steps": "128",
                   "num-minibatches": "4", "update-epochs": "4", "clip-coef": "0.2", "ent-coef": "0.01",
                   "vf-coef": "0.5", "max-grad-norm": "0.5", "gamma": "0.99", "gae-lambda": "0.95"}


def ours_sps(steps: int, seed: int = 1) -> float:
    """SPS of the `ppo` study at its defaults for `steps` env steps, one thread, through the lab bench."""
    overrides = {key.replace("-", "_"): value for key, value in HYPERPARAMETERS.items()}
    config = cfg.override(STUDY.config(), {**overrides, "total_timesteps": str(steps)})
    with tempfile.TemporaryDirectory() as folder:
        store = RunStore(Path(folder) / "bench.db")
        arm = create_study_run(store, STUDY, "bench", config, seed, device="cpu").arm_ids[0]
        store.set_threads(arm, 1)
        outcome = run_arm(store, arm, NullProgress())
        if outcome.status != "finished":
            raise RuntimeError(f"our PPO run failed: {outcome.error}")
        sps = store.final_values(arm)["sps"]
        store.close()
    return sps


def cleanrl_command(path: Path, steps: int, python: str, seed: int = 1) -> list[str]:
    """Command line for CleanRL's ppo.py: argparse style (`--track False`) or tyro style (`--no-track`)."""
    args = [python, str(path), "--seed", str(seed), "--total-timesteps", str(steps)]
    for key, value in HYPERPARAMETERS.items():
        args += [f"--{key}", value]
    if "tyro" in path.read_text():
        return [*args, "--no-track", "--no-cuda", "--no-capture-video"]
    return [*args, "--track", "False", "--cuda", "False", "--capture-video", "False"]


def last_sps(output: str) -> float:
    """The last `SPS: N` line CleanRL printed (its running env steps per second)."""
    found = re.findall(r"SPS:\s*([0-9.]+)", output)
    if not found:
        raise RuntimeError("CleanRL's output has no 'SPS:' line:\n" + output[-2000:])
    return float(found[-1])


def cleanrl_sps(path: Path, steps: int, python: str) -> float:
    """Run CleanRL's ppo.py for `steps` env steps on one thread and read its SPS."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    with tempfile.TemporaryDirectory() as folder:  # CleanRL writes runs/<name>/ (TensorBoard) into its cwd
        done = subprocess.run(cleanrl_command(path, steps, python), cwd=folder, env=env, capture_output=True,
                              text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"CleanRL's ppo.py exited with {done.returncode}:\n{done.stderr[-2000:]}")
    return last_sps(done.stdout)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="repdyn bench ppo")
    parser.add_argument("--steps", type=int, default=50_000, help="env steps per implementation")
    parser.add_argument("--cleanrl", type=Path, help="path to a copy of CleanRL's cleanrl/ppo.py")
    parser.add_argument("--python", default=sys.executable, help="interpreter for CleanRL (with its dependencies)")
    parser.add_argument("--repeats", type=int, default=2, help="alternating runs of each; the best SPS counts")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    label = f"ppo CartPole-v1 ({args.steps} steps, 4 envs x 128, 4 epochs, 1 thread, default diagnostics)"
    if args.cleanrl is not None and not args.cleanrl.is_file():
        print(f"repdyn bench ppo: --cleanrl {args.cleanrl}: no such file", file=sys.stderr)
        return 2
    ours, reference = 0.0, 0.0
    for _ in range(max(1, args.repeats)):
        ours = max(ours, ours_sps(args.steps))
        if args.cleanrl is not None:
            reference = max(reference, cleanrl_sps(args.cleanrl, args.steps, args.python))
    if args.cleanrl is None:
        print(f"{label}: ours {ours:.0f} SPS; reference not given (--cleanrl PATH to a copy of CleanRL's ppo.py)")
        return 0
    print(f"{label}: {ours / reference:.2f}x CleanRL ppo.py (goal >= {GOAL:g}x) "
          f"[ours {ours:.0f} SPS, CleanRL {reference:.0f} SPS]")
    return 0
