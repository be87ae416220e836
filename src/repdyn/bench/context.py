"""The handle a study's training function gets for one arm: logging, progress, checkpoints, stop signals.

A training loop looks like this (see `studies/grokking.py`):

    def train(ctx):
        model, opt = ...
        start = ctx.restore({"model": model, "optimizer": opt})   # 0 on a fresh run
        ctx.begin(total=cfg.steps, done=start)
        for step in range(start, cfg.steps):
            if step in log_steps:
                ctx.log(step, train_loss=..., test_acc=...)
            ...one update...
            ctx.tick(step + 1, {"model": model, "optimizer": opt})

`tick(n, ...)` is called after n updates: it checkpoints every `checkpoint_every` updates, at
the last update, and when SIGINT/SIGTERM arrived (then it raises `Interrupted`). Rows are
buffered and flushed before every checkpoint, so the store holds everything up to the newest
checkpoint; a resumed run drops rows logged after it and logs them again.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import torch

from repdyn.bench.checkpoint import list_checkpoints, load_checkpoint, save_checkpoint
from repdyn.bench.precision import autocast
from repdyn.bench.progress import ProgressSink
from repdyn.bench.store import ArmStore, RunRecord

_STOP = threading.Event()
_FLUSH_ROWS = 2000
_FLUSH_SECONDS = 5.0
_PROGRESS_SECONDS = 0.5


class Interrupted(Exception):
    """A stop signal arrived; the arm saved a checkpoint and can be resumed."""


def request_stop(signum: int, frame: Any) -> None:
    """Signal handler: ask every running arm to checkpoint and stop at its next `tick`."""
    if _STOP.is_set() and signum == signal.SIGINT:
        raise KeyboardInterrupt
    _STOP.set()


def install_signal_handlers() -> None:
    """Route SIGINT and SIGTERM to `request_stop` (first signal: checkpoint and stop)."""
    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)


def stop_requested() -> bool:
    """Whether a stop signal has arrived in this process."""
    return _STOP.is_set()


@contextlib.contextmanager
def stop_at_call(owner: Any, name: str, call: int, *, before: bool = False) -> Iterator[None]:
    """Within the block, the `call`-th call of `owner.name` raises the stop signal (as SIGTERM would),
    before or after the call itself; on leaving, the original is restored and the signal cleared.

    For testing that a study checkpoints at an exact point and resumes to an uninterrupted run's series.
    """
    original, calls = getattr(owner, name), []

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if before and len(calls) == call:
            _STOP.set()
        out = original(*args, **kwargs)
        if not before and len(calls) == call:
            _STOP.set()
        return out

    setattr(owner, name, wrapper)
    try:
        yield
    finally:
        setattr(owner, name, original)
        _STOP.clear()


class RunContext:
    """Everything one arm's training function touches outside its own model and data."""

    def __init__(
        self,
        store: ArmStore,
        record: RunRecord,
        config: Any,
        progress: ProgressSink,
        *,
        device: torch.device,
        progress_keys: tuple[str, ...] = (),
    ) -> None:
        self.store = store
        self.record = record
        self.config = config
        self.device = device
        self.progress_keys = progress_keys
        self._progress = progress
        self._rows: list[tuple[int, str, float]] = []
        self._last_flush = time.monotonic()
        self._last_progress = 0.0
        self._metrics: dict[str, float] = {}
        self._total = 0
        self.checkpoint_every = int(getattr(config, "checkpoint_every", 0) or 0)

    @property
    def run_id(self) -> str:
        """This arm's run id (`<study>-<n>/<arm>`)."""
        return self.record.id

    @property
    def arm(self) -> str:
        """This arm's name."""
        return self.record.arm or "main"

    @property
    def seed(self) -> int:
        """The run's seed (already applied to the global generators)."""
        return self.record.seed

    @property
    def dir(self) -> Path:
        """Folder owned by this arm (checkpoints, artifacts)."""
        return self.store.run_dir(self.run_id)

    def autocast(self) -> contextlib.AbstractContextManager[Any]:
        """Context for forward passes: bf16 autocast on this arm's device when its config says
        `autocast = "bf16"` (see `repdyn.bench.precision`), else nothing."""
        return autocast(self.device, getattr(self.config, "autocast", "off"))

    @property
    def checkpoint_dir(self) -> Path:
        """Where this arm's checkpoints live."""
        return self.dir / "checkpoints"

    # ---- results ----------------------------------------------------------------------------

    def log(self, step: int, **values: float | torch.Tensor) -> None:
        """Record scalar values at a step (buffered; flushed periodically and before checkpoints)."""
        for name, given in values.items():
            value = float(given)  # once: for a device tensor, each conversion waits for the device
            self._rows.append((step, name, value))
            if name in self.progress_keys:
                self._metrics[name] = value
        if len(self._rows) >= _FLUSH_ROWS or time.monotonic() - self._last_flush > _FLUSH_SECONDS:
            self.flush()

    def log_table(self, name: str, rows: list[dict[str, Any]]) -> None:
        """Store a named table (list of row dicts) for this arm."""
        self.store.log_table(self.run_id, name, rows)

    def flush(self) -> None:
        """Write buffered rows to the store."""
        if self._rows:
            self.store.log_scalars(self.run_id, self._rows)
            self._rows = []
        self._last_flush = time.monotonic()

    # ---- progress and checkpoints -----------------------------------------------------------

    def begin(self, total: int, done: int = 0) -> None:
        """Announce the number of updates this arm will make (for the progress bar and ETA)."""
        self._total = total
        self._progress.start(self.run_id, total, done)

    def tick(self, done: int, state: Mapping[str, Any]) -> None:
        """Call after `done` updates: checkpoint when due or asked to stop; raise Interrupted on a stop."""
        now = time.monotonic()
        if now - self._last_progress > _PROGRESS_SECONDS or done == self._total:
            self._progress.update(self.run_id, done, dict(self._metrics))
            self._last_progress = now
        due = self.checkpoint_every > 0 and done % self.checkpoint_every == 0
        if due or done == self._total or stop_requested():
            self.save(done, state)
        if stop_requested():
            raise Interrupted(f"{self.run_id} stopped at update {done}; resume with `repdyn resume`")

    def save(self, done: int, state: Mapping[str, Any]) -> Path:
        """Flush rows, then write a checkpoint of `state` after `done` updates."""
        self.flush()
        return save_checkpoint(
            self.checkpoint_dir, done, state, meta={"run_id": self.run_id, "config": self.record.config}
        )

    def restore(self, state: Mapping[str, Any]) -> int:
        """Load the newest checkpoint into `state` (in place) and return its update count; 0 if none.

        Rows logged after that checkpoint are dropped: the resumed run logs them again.
        """
        found = list_checkpoints(self.checkpoint_dir)
        if not found:
            return 0
        done, _ = load_checkpoint(found[-1], state)
        self.store.truncate_series(self.run_id, done)
        return done

    def latest_checkpoint(self) -> Path | None:
        """Sidecar of this arm's newest checkpoint (e.g. to reuse a trained model), or None."""
        found = list_checkpoints(self.checkpoint_dir)
        return found[-1] if found else None
