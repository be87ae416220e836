"""Run arms as Ray tasks, on a local Ray instance or an existing cluster (`--backend ray`).

Workers never open the driver's SQLite file: each task trains its arm against a `RelayStore`
that streams every write (rows, tables, status, progress) through a Ray queue back to the driver,
which applies them to the run store as they arrive. Rows already streamed survive a worker that
dies; Ray retries the task (`max_retries`), and the retry resumes from the arm's newest checkpoint
when the checkpoint folder is visible to it (same machine or a shared file system), otherwise it
starts the arm again and overwrites the same (step, name) rows. A task that still fails is marked
failed with its error. Ctrl-C cancels the tasks; the arms save a checkpoint where they can.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from repdyn.bench.context import stop_requested
from repdyn.bench.errors import UserError
from repdyn.bench.progress import ProgressSink
from repdyn.bench.store import RunRecord, RunStore

MAX_RETRIES = 2


def _import_ray():
    try:
        import ray
    except ImportError:
        raise UserError("--backend ray needs the package ray (pip install 'ray>=2.9')") from None
    return ray


class RelayStore:
    """The store interface an arm writes to inside a Ray worker; every write goes to the driver."""

    def __init__(self, record: RunRecord, root: str, queue: Any) -> None:
        self.record = record
        self.queue = queue
        root_path = Path(root)
        self.root = root_path if root_path.is_dir() and os.access(root_path, os.W_OK) else Path(tempfile.mkdtemp())

    def _send(self, *message: Any) -> None:
        self.queue.put(message)

    def get_run(self, run_id: str) -> RunRecord:
        return self.record

    def set_status(self, run_id: str, status: str, error: str | None = None) -> None:
        self.record = replace(self.record, status=status, error=error)
        self._send("status", run_id, status, error, os.uname().nodename, os.getpid())

    def set_threads(self, run_id: str, threads: int) -> None:
        self.record = replace(self.record, threads=threads)
        self._send("threads", run_id, threads)

    def log_scalars(self, run_id: str, rows: Iterable[tuple[int, str, float]]) -> None:
        self._send("rows", run_id, [(int(s), n, float(v)) for s, n, v in rows])

    def log_table(self, run_id: str, name: str, rows: Sequence[dict[str, Any]]) -> None:
        self._send("table", run_id, name, list(rows))

    def truncate_series(self, run_id: str, after_step: int) -> None:
        self._send("truncate", run_id, after_step)

    def run_dir(self, run_id: str) -> Path:
        path = self.root / run_id
        path.mkdir(parents=True, exist_ok=True)
        return path


class _RelayProgress:
    """Progress sink inside a worker: forwards to the driver through the same queue."""

    def __init__(self, queue: Any) -> None:
        self.queue = queue

    def start(self, run_id: str, total: int, done: int = 0) -> None:
        self.queue.put(("progress", "start", run_id, total, done))

    def update(self, run_id: str, step: int, metrics: dict[str, float]) -> None:
        self.queue.put(("progress", "update", run_id, step, metrics))

    def finish(self, run_id: str, status: str) -> None:
        self.queue.put(("progress", "finish", run_id, status))

    def message(self, text: str) -> None:
        self.queue.put(("progress", "message", text))

    def close(self) -> None:
        pass


def _train_remote(record: RunRecord, root: str, queue: Any) -> str:
    """Body of a Ray task: train one arm with writes relayed to the driver; returns the status."""
    import torch

    from repdyn.bench.runner import run_arm

    torch.set_num_threads(record.threads or 1)
    store = RelayStore(record, root, queue)
    outcome = run_arm(store, record.id, _RelayProgress(queue))
    return outcome.status


def _apply(store: RunStore, progress: ProgressSink, message: tuple) -> None:
    kind, *args = message
    if kind == "rows":
        store.log_scalars(args[0], args[1])
    elif kind == "status":
        run_id, status, error, host, pid = args
        store.set_status(run_id, status, error, host=host, pid=pid)
    elif kind == "threads":
        store.set_threads(*args)
    elif kind == "table":
        store.log_table(*args)
    elif kind == "truncate":
        store.truncate_series(*args)
    elif kind == "progress":
        getattr(progress, args[0])(*args[1:])


def _drain(store: RunStore, progress: ProgressSink, queue: Any) -> None:
    size = queue.qsize()
    if size:
        for message in queue.get_nowait_batch(size):
            _apply(store, progress, message)


def execute_arms_ray(
    store: RunStore,
    arm_ids: Sequence[str],
    progress: ProgressSink,
    *,
    address: str | None = None,
    num_cpus: int | None = None,
    max_retries: int = MAX_RETRIES,
) -> dict[str, str]:
    """Train arms as Ray tasks (one CPU each) and relay their results into `store`; returns statuses."""
    ray = _import_ray()
    from ray.util.queue import Queue

    started_here = not ray.is_initialized()
    if started_here:
        kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False, "configure_logging": False}
        if address:
            kwargs["address"] = address
        elif num_cpus:
            kwargs["num_cpus"] = num_cpus
        ray.init(**kwargs)
    queue = Queue()
    task = ray.remote(num_cpus=1, max_retries=max_retries)(_train_remote)
    pending = {}
    for arm_id in arm_ids:
        record = replace(store.get_run(arm_id), threads=1)
        store.set_threads(arm_id, 1)
        pending[task.remote(record, str(store.root), queue)] = arm_id
    statuses: dict[str, str] = {}
    cancelled = False
    try:
        while pending:
            _drain(store, progress, queue)
            if stop_requested() and not cancelled:
                for ref in pending:
                    ray.cancel(ref)
                cancelled = True
            done, _ = ray.wait(list(pending), num_returns=1, timeout=0.2)
            for ref in done:
                arm_id = pending.pop(ref)
                try:
                    statuses[arm_id] = ray.get(ref)
                except Exception as err:  # worker died after all retries, or the task was cancelled
                    _drain(store, progress, queue)
                    reason = f"{type(err).__name__}: {str(err).strip().splitlines()[0] if str(err).strip() else ''}"
                    status = "interrupted" if cancelled else "failed"
                    store.set_status(arm_id, status, None if cancelled else reason)
                    progress.finish(arm_id, status)
                    statuses[arm_id] = status
        _drain(store, progress, queue)
    finally:
        ray.kill(queue.actor)
        if started_here:
            ray.shutdown()
    return statuses
