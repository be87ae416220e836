"""Progress display: a live bar with ETA on a terminal, periodic plain lines otherwise, or nothing.

Everything goes to stderr so `--json` keeps stdout machine-readable. Worker processes send
their updates through a queue to the parent, which owns the display.
"""

from __future__ import annotations

import queue
import sys
import threading
import time
from typing import Any, Protocol

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeRemainingColumn


class ProgressSink(Protocol):
    """Receives progress of arms (child runs) as they train."""

    def start(self, run_id: str, total: int, done: int = 0) -> None: ...

    def update(self, run_id: str, step: int, metrics: dict[str, float]) -> None: ...

    def finish(self, run_id: str, status: str) -> None: ...

    def message(self, text: str) -> None: ...

    def close(self) -> None: ...


def format_metrics(metrics: dict[str, float]) -> str:
    """`name value` pairs with 3-4 significant digits."""
    return "  ".join(f"{k} {v:.4g}" for k, v in metrics.items())


def format_duration(seconds: float) -> str:
    """1h02m, 3m05s or 12s."""
    seconds = max(0, int(seconds))
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    if seconds >= 60:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds}s"


class NullProgress:
    """`--quiet`: shows nothing."""

    def start(self, run_id: str, total: int, done: int = 0) -> None:
        pass

    def update(self, run_id: str, step: int, metrics: dict[str, float]) -> None:
        pass

    def finish(self, run_id: str, status: str) -> None:
        pass

    def message(self, text: str) -> None:
        pass

    def close(self) -> None:
        pass


class PlainProgress:
    """One line per arm every `interval` seconds (for logs and non-terminals)."""

    def __init__(self, interval: float = 10.0, stream: Any = None) -> None:
        self.interval = interval
        self.stream = stream or sys.stderr
        self._runs: dict[str, dict[str, float]] = {}

    def start(self, run_id: str, total: int, done: int = 0) -> None:
        self._runs[run_id] = {"total": total, "t0": time.monotonic(), "s0": done, "last": 0.0}
        self._print(f"[{run_id}] started ({done}/{total})")

    def update(self, run_id: str, step: int, metrics: dict[str, float]) -> None:
        info = self._runs.get(run_id)
        if info is None:
            return
        now = time.monotonic()
        if now - info["last"] < self.interval and step < info["total"]:
            return
        info["last"] = now
        total = int(info["total"])
        done = max(step - info["s0"], 0)
        rate = done / max(now - info["t0"], 1e-9)
        eta = (total - step) / rate if rate > 0 else float("nan")
        eta_text = format_duration(eta) if eta == eta else "?"
        pct = 100 * step / max(total, 1)
        self._print(f"[{run_id}] {step}/{total} {pct:.0f}% eta {eta_text}  {format_metrics(metrics)}")

    def finish(self, run_id: str, status: str) -> None:
        info = self._runs.pop(run_id, None)
        took = format_duration(time.monotonic() - info["t0"]) if info else "?"
        self._print(f"[{run_id}] {status} after {took}")

    def message(self, text: str) -> None:
        self._print(text)

    def close(self) -> None:
        pass

    def _print(self, text: str) -> None:
        print(text, file=self.stream, flush=True)


class RichProgress:
    """A live bar per arm with ETA and key metrics, on a terminal."""

    def __init__(self) -> None:
        self.console = Console(stderr=True)
        self._bar = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            TextColumn("{task.fields[metrics]}"),
            console=self.console,
            transient=False,
        )
        self._tasks: dict[str, TaskID] = {}
        self._bar.start()

    def start(self, run_id: str, total: int, done: int = 0) -> None:
        self._tasks[run_id] = self._bar.add_task(run_id, total=total, completed=done, metrics="")

    def update(self, run_id: str, step: int, metrics: dict[str, float]) -> None:
        if run_id in self._tasks:
            self._bar.update(self._tasks[run_id], completed=step, metrics=format_metrics(metrics))

    def finish(self, run_id: str, status: str) -> None:
        task = self._tasks.pop(run_id, None)
        if task is not None:
            self._bar.update(task, description=f"{run_id} [{status}]")
            if status == "finished":
                self._bar.update(task, completed=self._bar.tasks[task].total)

    def message(self, text: str) -> None:
        self._bar.console.print(text, highlight=False)

    def close(self) -> None:
        self._bar.stop()


def make_progress(quiet: bool, interval: float = 10.0) -> ProgressSink:
    """Rich bars on a terminal, plain periodic lines otherwise, nothing with `--quiet`."""
    if quiet:
        return NullProgress()
    if sys.stderr.isatty():
        return RichProgress()
    return PlainProgress(interval=interval)


class QueueProgress:
    """Progress sink used inside worker processes: forwards every call to the parent's queue."""

    def __init__(self, q: Any) -> None:
        self.q = q

    def start(self, run_id: str, total: int, done: int = 0) -> None:
        self.q.put(("start", run_id, total, done))

    def update(self, run_id: str, step: int, metrics: dict[str, float]) -> None:
        self.q.put(("update", run_id, step, metrics))

    def finish(self, run_id: str, status: str) -> None:
        self.q.put(("finish", run_id, status))

    def message(self, text: str) -> None:
        self.q.put(("message", text))

    def close(self) -> None:
        pass


class QueueDrain:
    """Parent-side thread that replays worker progress messages onto the real display."""

    def __init__(self, q: Any, sink: ProgressSink) -> None:
        self.q = q
        self.sink = sink
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set() or not self.q.empty():
            try:
                kind, *args = self.q.get(timeout=0.2)
            except (queue.Empty, EOFError, OSError):
                continue
            getattr(self.sink, kind)(*args)

    def close(self) -> None:
        """Drain what is left and stop the thread."""
        self._stop.set()
        self._thread.join(timeout=5)
