"""Create study runs, train their arms (in this process or in parallel workers), judge the claims.

A study run is a parent row plus one child row per arm. Arms run in the current process when
`workers == 1`, otherwise in spawned worker processes (at most `workers` at once) that write to
the same store and report progress through a queue. When every arm is done, the parent's
claims are evaluated from the store and the parent gets its final status.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import platform
import signal
import sys
import time
import traceback
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

import repdyn
from repdyn.bench import config as cfg
from repdyn.bench.claims import Claim, Verdict
from repdyn.bench.context import Interrupted, RunContext, install_signal_handlers, stop_requested
from repdyn.bench.errors import UserError
from repdyn.bench.progress import ProgressSink, QueueDrain, QueueProgress
from repdyn.bench.seeding import configure_determinism, seed_everything
from repdyn.bench.store import ArmStore, RunRecord, RunStore
from repdyn.bench.study import Study
from repdyn.bench.view import RunView

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


def versions() -> dict[str, str]:
    """Versions recorded with every run."""
    return {
        "repdyn": repdyn.__version__,
        "torch": torch.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
    }


def resolve_device(name: str, cuda_ok: bool = True) -> str:
    """`auto` -> cuda when available (and the study supports it) else cpu; `cuda` without a GPU, or
    for a CPU-only study, is a usage error. Plain `cuda` comes back as `cuda:0` (a fresh process's
    current device), the form a tensor's `.device` takes, so `tensor.device == ctx.device` holds."""
    if name == "auto":
        name = "cuda" if cuda_ok and torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not cuda_ok:
        raise UserError(f"--device {name}: this study runs on CPU only (use --device cpu or auto)")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"--device {name}: no CUDA device is available (use --device cpu or auto)")
    if name != "cpu" and not name.startswith("cuda"):
        raise UserError(f"--device {name!r}: expected auto, cpu, cuda or cuda:N")
    return "cuda:0" if name == "cuda" else name


@dataclass(frozen=True)
class StudyRun:
    """A created study run: the parent record and its arms' ids."""

    parent: RunRecord
    arm_ids: list[str]


def create_study_run(
    store: RunStore, study: Study, preset: str, config: Any, seed: int, *, device: str, sweep: str | None = None
) -> StudyRun:
    """Insert the parent run and one pending child per arm of `study.arms(config)`.

    `sweep` groups the runs of one invocation (settings x seeds); the first run's id by default.
    """
    run_id = store.new_run_id(study.name)
    common = {"study": study.name, "preset": preset, "seed": seed, "versions": versions(), "device": device}
    parent = store.create_run(run_id, config=cfg.to_dict(config), sweep=sweep or run_id, **common)
    arm_ids = []
    for arm, arm_config in study.arms(config).items():
        arm_id = f"{run_id}/{arm}"
        store.create_run(arm_id, parent=run_id, arm=arm, config=cfg.to_dict(arm_config), **common)
        arm_ids.append(arm_id)
    return StudyRun(parent, arm_ids)


@dataclass(frozen=True)
class ArmOutcome:
    """How one arm ended: status and, for failures, a one-line reason and whether it was bad input."""

    status: str
    error: str | None = None
    user_error: bool = False


def run_arm(store: ArmStore, arm_id: str, progress: ProgressSink) -> ArmOutcome:
    """Train one arm in this process, recording its status; never raises for a failed arm."""
    from repdyn import registry

    record = store.get_run(arm_id)
    study = registry.get(record.study)
    config = cfg.from_dict(study.config, record.config)
    threads = record.threads or max(1, os.cpu_count() or 1)
    torch.set_num_threads(threads)
    store.set_threads(arm_id, threads)
    configure_determinism(record.device or "cpu")
    seed_everything(record.seed)
    store.set_status(arm_id, "running")
    ctx = RunContext(
        store, store.get_run(arm_id), config, progress,
        device=torch.device(record.device or "cpu"), progress_keys=tuple(study.progress_keys),
    )
    try:
        study.train(ctx)
        ctx.flush()
        outcome = ArmOutcome("finished")
    except Interrupted:
        ctx.flush()
        outcome = ArmOutcome("interrupted")
    except KeyboardInterrupt:
        ctx.flush()
        outcome = ArmOutcome("interrupted", "interrupted before its next checkpoint")
    except UserError as err:
        outcome = ArmOutcome("failed", str(err), user_error=True)
    except Exception as err:  # any failure inside a study is recorded, and the other arms go on
        traceback.print_exc(file=sys.stderr)
        outcome = ArmOutcome("failed", f"{type(err).__name__}: {err}".splitlines()[0])
    store.set_status(arm_id, outcome.status, outcome.error)
    progress.finish(arm_id, outcome.status)
    return outcome


def _worker_main(store_path: str, arm_id: str, q: Any) -> None:
    """Entry point of a spawned worker process: train one arm, exit with its outcome."""
    install_signal_handlers()
    store = RunStore(store_path)
    outcome = run_arm(store, arm_id, QueueProgress(q))
    store.close()
    codes = {"finished": EXIT_OK, "interrupted": EXIT_INTERRUPTED}
    sys.exit(EXIT_USAGE if outcome.user_error else codes.get(outcome.status, EXIT_FAILED))


def execute_arms(
    store: RunStore, arm_ids: Sequence[str], workers: int, progress: ProgressSink
) -> dict[str, ArmOutcome]:
    """Train arms in this process (workers == 1) or in up to `workers` processes at once."""
    outcomes: dict[str, ArmOutcome] = {}
    if workers <= 1 or len(arm_ids) <= 1:
        for arm_id in arm_ids:
            if stop_requested():
                break
            outcomes[arm_id] = run_arm(store, arm_id, progress)
        return outcomes
    spawn = mp.get_context("spawn")
    q = spawn.Queue()
    drain = QueueDrain(q, progress)
    pending, running = list(arm_ids), {}
    try:
        while pending or running:
            while pending and len(running) < workers and not stop_requested():
                arm_id = pending.pop(0)
                proc = spawn.Process(target=_worker_main, args=(str(store.path), arm_id, q), daemon=False)
                proc.start()
                running[arm_id] = proc
            if stop_requested():
                pending.clear()
                for proc in running.values():
                    if proc.is_alive():
                        os.kill(proc.pid, signal.SIGTERM)
            for arm_id, proc in list(running.items()):
                proc.join(timeout=0.1)
                if proc.exitcode is not None:
                    del running[arm_id]
                    outcomes[arm_id] = _outcome_from_store(store, arm_id, proc.exitcode)
    finally:
        drain.close()
    return outcomes


def _outcome_from_store(store: RunStore, arm_id: str, exitcode: int) -> ArmOutcome:
    record = store.get_run(arm_id)
    if record.status == "running":  # the worker died without recording (killed, out of memory)
        reason = f"worker exited with code {exitcode}"
        store.set_status(arm_id, "failed", reason)
        return ArmOutcome("failed", reason)
    return ArmOutcome(record.status, record.error, user_error=exitcode == EXIT_USAGE)


def assign_threads(store: RunStore, arm_ids: Sequence[str], workers: int) -> None:
    """Split the machine's cores between concurrent workers, capped by the study's `max_threads`.

    Recorded per arm, so a resumed arm uses the same thread count (and gives the same numbers).
    """
    from repdyn import registry

    concurrent = max(1, min(workers, len(arm_ids)))
    per_worker = max(1, (os.cpu_count() or 1) // concurrent)
    for arm_id in arm_ids:
        record = store.get_run(arm_id)
        if record.threads is None:
            cap = registry.get(record.study).max_threads
            store.set_threads(arm_id, min(per_worker, cap) if cap else per_worker)


def evaluate_claims(store: RunStore, study: Study, run_id: str) -> list[tuple[Claim, Verdict]]:
    """Judge every claim of the study on the stored run and save the verdicts."""
    view = RunView(store, store.get_run(run_id), study.config)
    results = []
    for claim in study.claims:
        try:
            verdict = claim(view)
        except Exception as err:  # a broken claim must show up as a failure, not abort the report
            verdict = Verdict(ok=False, summary=f"claim check raised {type(err).__name__}: {err}")
        results.append((claim, verdict))
    store.save_claims(run_id, [(c.name, v.ok, v.summary, v.numbers) for c, v in results])
    return results


def finalize(store: RunStore, study: Study, run_id: str, outcomes: dict[str, ArmOutcome]) -> str:
    """Set the parent's status from its arms and, when all finished, evaluate the claims."""
    statuses = [a.status for a in store.children(run_id)]
    if all(s == "finished" for s in statuses):
        evaluate_claims(store, study, run_id)
        status, error = "finished", None
    elif any(s == "failed" for s in statuses):
        errors = [f"{a.arm}: {a.error}" for a in store.children(run_id) if a.status == "failed"]
        status, error = "failed", "; ".join(errors)
    else:
        status, error = "interrupted", None
    store.set_status(run_id, status, error)
    return status


def prepare_resume(store: RunStore, run: RunRecord) -> list[str]:
    """Arms of a study run that still need training; refuses when one is alive elsewhere."""
    arms = store.children(run.id)
    todo = []
    for arm in arms:
        if arm.status == "finished":
            continue
        if arm.status == "running" and _alive(arm):
            raise UserError(f"run {arm.id} is still running (pid {arm.pid} on {arm.host})")
        store.set_status(arm.id, "pending")
        todo.append(arm.id)
    return todo


def _alive(record: RunRecord) -> bool:
    if record.pid is None or record.host != os.uname().nodename or record.pid == os.getpid():
        return False
    try:
        os.kill(record.pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A pid may be reused: only a process whose command line mentions repdyn counts.
    try:
        cmdline = Path(f"/proc/{record.pid}/cmdline").read_bytes()
    except OSError:
        return True
    return b"repdyn" in cmdline or b"multiprocessing" in cmdline


def wall_seconds(store: RunStore, run_id: str) -> float:
    """Wall time of a study run from its first arm's start to its end."""
    record = store.get_run(run_id)
    start = record.started or record.created
    return (record.ended or time.time()) - start
