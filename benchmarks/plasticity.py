"""Cost of the plasticity study's diagnostics at their default cadence, as a fraction of training time.

Goal (issue 3): at most 10%. One arm of the random-label stream (default model, default cadence:
evaluations, unit / drift / norm / rank diagnostics after every task; sharpness, eNTK and a fresh
network's K updates every `diag.every` tasks) is trained by the study's `train` with every
diagnostic function timed (CPU seconds); the ratio is diagnostics over the rest of the run. As a
cross-check the same updates are also made by a bare loop with no diagnostics at all.
"""

from __future__ import annotations

import argparse
import tempfile
import time

import torch

from repdyn.bench import config as cfg
from repdyn.bench.context import RunContext
from repdyn.bench.progress import NullProgress
from repdyn.bench.seeding import seed_everything
from repdyn.bench.store import RunStore
from repdyn.studies import plasticity as study

GOAL = 0.10
DIAGNOSTICS = ("evaluate", "unit_diagnostics", "curvature_diagnostics", "fresh_trainability")


class Stopwatch:
    """Accumulates CPU time spent in wrapped functions (outermost calls only, so nesting counts once)."""

    def __init__(self) -> None:
        self.total, self._depth, self._start = 0.0, 0, 0.0

    def wrap(self, fn):
        def timed(*args, **kwargs):
            if self._depth == 0:
                self._start = time.process_time()
            self._depth += 1
            try:
                return fn(*args, **kwargs)
            finally:
                self._depth -= 1
                if self._depth == 0:
                    self.total += time.process_time() - self._start

        return timed


def bare_training(config: study.PlasticityConfig, seed: int) -> float:
    """CPU seconds of the arm's updates alone: same stream, learner and batches, no diagnostics."""
    seed_everything(seed)
    start = time.process_time()
    stream = study.build_stream(config, seed)
    readout = study.build_readout(config.method, stream)
    first = stream.task(0)
    learner = study.build_learner(config, first.x.shape[1], readout, torch.device("cpu"))
    batches = torch.Generator().manual_seed(seed)
    step = 0
    for t in range(stream.num_tasks):
        task = stream.task(t)
        learner.start_task(t)
        for _ in range(task.steps):
            idx = torch.randint(0, len(task.x), (config.train.batch_size,), generator=batches)
            learner.step(task.x[idx], task.targets[idx], step)
            step += 1
    return time.process_time() - start


def study_training(config: study.PlasticityConfig, seed: int) -> tuple[float, float]:
    """CPU seconds of the study's `train` for the same arm (store writes included), and of its diagnostics."""
    watch = Stopwatch()
    originals = {name: getattr(study, name) for name in DIAGNOSTICS}
    for name, fn in originals.items():
        setattr(study, name, watch.wrap(fn))
    try:
        return _timed_train(config, seed), watch.total
    finally:
        for name, fn in originals.items():
            setattr(study, name, fn)


def _timed_train(config: study.PlasticityConfig, seed: int) -> float:
    with tempfile.TemporaryDirectory() as folder:
        store = RunStore(f"{folder}/bench.db")
        record = store.create_run("plasticity-1", study="plasticity", preset="bench", config=cfg.to_dict(config),
                                  seed=seed, versions={})
        ctx = RunContext(store, record, config, NullProgress(), device=torch.device("cpu"))
        seed_everything(seed)
        start = time.process_time()
        study.train(ctx)
        ctx.flush()
        elapsed = time.process_time() - start
        store.close()
    return elapsed


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="repdyn bench plasticity")
    parser.add_argument("--tasks", type=int, default=30, help="tasks of the stream (30, the study's default)")
    parser.add_argument("--arm", default="labels_ln_l2", choices=sorted(study.ARM_RECIPES))
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    recipe = study.ARM_RECIPES[args.arm]
    config = cfg.override(study.PlasticityConfig(),
                          {**recipe, f"{recipe['stream']}.tasks": args.tasks, "checkpoint_every": 0})
    bare_training(config, seed=0)  # warm-up: imports, allocator, first-call overheads
    full, diagnostics = study_training(config, seed=0)
    bare = bare_training(config, seed=0)
    ratio = diagnostics / (full - diagnostics)
    verdict = "ok" if ratio <= GOAL else "above goal"
    print(f"plasticity diagnostics ({args.arm}, {args.tasks} tasks, expensive ones every {config.diag.every} tasks, "
          f"{args.threads} thread): {ratio:.1%} of training time (goal <= {GOAL:.0%}, {verdict}) "
          f"[diagnostics {diagnostics:.2f} s, rest of the run {full - diagnostics:.2f} s CPU; "
          f"a bare loop of the same updates {bare:.2f} s]")
    return 0
