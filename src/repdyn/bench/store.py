"""The run store: one embedded SQLite file holding runs, scalar series, tables, claims, artifacts.

WAL mode lets several worker processes write at once; every write is a short transaction and
SQLite's busy timeout serialises them, so no row is lost. Series rows are keyed by
(run, name, step): logging the same step again (after a resume) replaces the value.

Run ids are `<study>-<n>`; the arms of a study run are child runs `<study>-<n>/<arm>`.
Each run owns the folder `<store folder>/<run id>/` for checkpoints and reports.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from repdyn.bench.errors import UserError

SCHEMA_VERSION = 1
STATUSES = ("pending", "running", "finished", "failed", "interrupted")
DEFAULT_STORE = Path("runs") / "repdyn.db"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS counters (study TEXT PRIMARY KEY, next INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY,
    parent TEXT REFERENCES runs(id),
    arm TEXT,
    study TEXT NOT NULL,
    preset TEXT NOT NULL,
    config TEXT NOT NULL,
    seed INTEGER NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending','running','finished','failed','interrupted')),
    created REAL NOT NULL,
    started REAL,
    ended REAL,
    error TEXT,
    versions TEXT NOT NULL,
    host TEXT,
    pid INTEGER,
    threads INTEGER,
    device TEXT,
    sweep TEXT
);
CREATE INDEX IF NOT EXISTS runs_sweep ON runs(sweep);
CREATE INDEX IF NOT EXISTS runs_parent ON runs(parent);
CREATE TABLE IF NOT EXISTS series (
    run TEXT NOT NULL REFERENCES runs(id),
    name TEXT NOT NULL,
    step INTEGER NOT NULL,
    value REAL,
    PRIMARY KEY (run, name, step)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS tables (
    run TEXT NOT NULL REFERENCES runs(id),
    name TEXT NOT NULL,
    rows TEXT NOT NULL,
    PRIMARY KEY (run, name)
);
CREATE TABLE IF NOT EXISTS claims (
    run TEXT NOT NULL REFERENCES runs(id),
    name TEXT NOT NULL,
    ok INTEGER,
    summary TEXT NOT NULL,
    numbers TEXT NOT NULL,
    PRIMARY KEY (run, name)
);
CREATE TABLE IF NOT EXISTS artifacts (
    run TEXT NOT NULL REFERENCES runs(id),
    kind TEXT NOT NULL,
    path TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    created REAL NOT NULL,
    PRIMARY KEY (run, path)
);
"""


@dataclass(frozen=True)
class RunRecord:
    """One row of the `runs` table, with JSON columns decoded."""

    id: str
    parent: str | None
    arm: str | None
    study: str
    preset: str
    config: dict[str, Any]
    seed: int
    status: str
    created: float
    started: float | None
    ended: float | None
    error: str | None
    versions: dict[str, str]
    host: str | None
    pid: int | None
    threads: int | None
    device: str | None
    sweep: str | None

    @property
    def wall_s(self) -> float | None:
        """Seconds from start to end (or to now while running)."""
        if self.started is None:
            return None
        return (self.ended or time.time()) - self.started


@dataclass(frozen=True)
class Series:
    """A logged scalar series: steps and values as numpy arrays, in step order."""

    name: str
    steps: np.ndarray
    values: np.ndarray

    def __len__(self) -> int:
        return len(self.steps)

    @property
    def last(self) -> float:
        """Last logged value (NaN when empty)."""
        return float(self.values[-1]) if len(self.values) else float("nan")

    def first_step_where(self, predicate) -> int | None:
        """First step whose value satisfies `predicate(values) -> bool array`, or None."""
        hits = np.flatnonzero(predicate(self.values))
        return int(self.steps[hits[0]]) if hits.size else None

    def at(self, step: int) -> float:
        """Value at the last logged step <= `step` (NaN before the first)."""
        i = np.searchsorted(self.steps, step, side="right") - 1
        return float(self.values[i]) if i >= 0 else float("nan")

    def between(self, start: int, end: int) -> np.ndarray:
        """Values logged at steps in [start, end]."""
        keep = (self.steps >= start) & (self.steps <= end)
        return self.values[keep]


class ArmStore(Protocol):
    """What training one arm needs from a store: the local `RunStore`, or a relay to a remote driver."""

    def get_run(self, run_id: str) -> RunRecord: ...

    def set_status(self, run_id: str, status: str, error: str | None = None) -> None: ...

    def set_threads(self, run_id: str, threads: int) -> None: ...

    def log_scalars(self, run_id: str, rows: Iterable[tuple[int, str, float]]) -> None: ...

    def log_table(self, run_id: str, name: str, rows: Sequence[dict[str, Any]]) -> None: ...

    def truncate_series(self, run_id: str, after_step: int) -> None: ...

    def run_dir(self, run_id: str) -> Path: ...


class RunStore:
    """SQLite-backed store of runs and their results; safe to share between processes."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path).resolve()
        self.root = self.path.parent
        self.root.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(self.path, timeout=120.0, isolation_level=None)
        self._conn.execute("PRAGMA busy_timeout = 120000")
        self._conn.execute("PRAGMA journal_mode = WAL")
        self._conn.execute("PRAGMA synchronous = NORMAL")
        self._migrate()

    @classmethod
    def default_path(cls, explicit: str | None = None) -> Path:
        """`--store PATH`, else `$REPDYN_STORE`, else `./runs/repdyn.db`."""
        return Path(explicit or os.environ.get("REPDYN_STORE") or DEFAULT_STORE)

    def close(self) -> None:
        """Close the connection (the store object is unusable afterwards)."""
        self._conn.close()

    def _migrate(self) -> None:
        version = self._conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise UserError(
                f"store {self.path} has schema version {version}; this repdyn reads up to {SCHEMA_VERSION}"
            )
        if version < SCHEMA_VERSION:
            with self._transaction():
                for statement in filter(str.strip, _SCHEMA.split(";")):
                    self._conn.execute(statement)
                self._conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def _transaction(self):
        return _Transaction(self._conn)

    # ---- runs -------------------------------------------------------------------------------

    def new_run_id(self, study: str) -> str:
        """Allocate the next `<study>-<n>` id atomically across processes."""
        with self._transaction():
            row = self._conn.execute("SELECT next FROM counters WHERE study = ?", (study,)).fetchone()
            n = row[0] if row else 1
            self._conn.execute(
                "INSERT INTO counters(study, next) VALUES (?, ?) "
                "ON CONFLICT(study) DO UPDATE SET next = excluded.next",
                (study, n + 1),
            )
        return f"{study}-{n}"

    def create_run(
        self,
        run_id: str,
        *,
        study: str,
        preset: str,
        config: dict[str, Any],
        seed: int,
        versions: dict[str, str],
        parent: str | None = None,
        arm: str | None = None,
        device: str | None = None,
        threads: int | None = None,
        sweep: str | None = None,
    ) -> RunRecord:
        """Insert a run in status `pending` (`sweep`: id shared by the runs of one invocation).

        A new top-level run must not find its folder already filled: that folder belongs to another
        store in the same directory (or a deleted one), and its checkpoints would be resumed as ours.
        """
        folder = self.root / run_id
        if parent is None and folder.is_dir() and any(folder.iterdir()):
            raise UserError(
                f"run folder {folder} already holds files from another store in {self.root} (or a deleted "
                "one); give this store a folder of its own (--store DIR/repdyn.db) or remove that folder"
            )
        with self._transaction():
            self._conn.execute(
                "INSERT INTO runs(id, parent, arm, study, preset, config, seed, status, created, versions,"
                " device, threads, sweep) VALUES (?, ?, ?, ?, ?, ?, ?, 'pending', ?, ?, ?, ?, ?)",
                (run_id, parent, arm, study, preset, json.dumps(config), seed, time.time(),
                 json.dumps(versions), device, threads, sweep),
            )
        return self.get_run(run_id)

    def set_status(
        self, run_id: str, status: str, error: str | None = None, *, host: str | None = None, pid: int | None = None
    ) -> None:
        """Move a run to a new status, stamping start/end times and the owning process.

        `host` and `pid` name the process that runs it (default: this one; a remote worker's
        when its status is relayed by the driver).
        """
        if status not in STATUSES:
            raise ValueError(f"unknown status {status!r}")
        now = time.time()
        with self._transaction():
            if status == "running":
                self._conn.execute(
                    "UPDATE runs SET status = ?, started = COALESCE(started, ?), ended = NULL, error = NULL,"
                    " host = ?, pid = ? WHERE id = ?",
                    (status, now, host or os.uname().nodename, pid or os.getpid(), run_id),
                )
            else:
                ended = now if status in ("finished", "failed", "interrupted") else None
                self._conn.execute(
                    "UPDATE runs SET status = ?, ended = ?, error = ? WHERE id = ?",
                    (status, ended, error, run_id),
                )

    def set_threads(self, run_id: str, threads: int) -> None:
        """Record the torch thread count a run uses, so a resume can use the same."""
        with self._transaction():
            self._conn.execute("UPDATE runs SET threads = ? WHERE id = ?", (threads, run_id))

    def get_run(self, run_id: str) -> RunRecord:
        """The run with exactly this id (UserError if there is none)."""
        row = self._conn.execute(f"SELECT {_RUN_COLUMNS} FROM runs WHERE id = ?", (run_id,)).fetchone()
        if row is None:
            raise UserError(f"no run {run_id!r} in {self.path}")
        return _record(row)

    def resolve(self, ref: str) -> RunRecord:
        """A run by id, unique id prefix, or `last` (the newest top-level run)."""
        if ref == "last":
            row = self._conn.execute(
                f"SELECT {_RUN_COLUMNS} FROM runs WHERE parent IS NULL ORDER BY created DESC LIMIT 1"
            ).fetchone()
            if row is None:
                raise UserError(f"no runs in {self.path}")
            return _record(row)
        row = self._conn.execute(f"SELECT {_RUN_COLUMNS} FROM runs WHERE id = ?", (ref,)).fetchone()
        if row is not None:
            return _record(row)
        rows = self._conn.execute(
            f"SELECT {_RUN_COLUMNS} FROM runs WHERE id LIKE ? ESCAPE '\\' AND parent IS NULL",
            (_like_prefix(ref),),
        ).fetchall()
        if len(rows) == 1:
            return _record(rows[0])
        if not rows:
            raise UserError(f"no run {ref!r} in {self.path} (see `repdyn runs`)")
        raise UserError(f"run {ref!r} is ambiguous: {', '.join(r[0] for r in rows[:5])} ...")

    def children(self, run_id: str) -> list[RunRecord]:
        """Arms of a study run, in creation order."""
        rows = self._conn.execute(
            f"SELECT {_RUN_COLUMNS} FROM runs WHERE parent = ? ORDER BY created, id", (run_id,)
        ).fetchall()
        return [_record(r) for r in rows]

    def list_runs(self, study: str | None = None, limit: int = 50) -> list[RunRecord]:
        """Newest top-level runs first."""
        query = f"SELECT {_RUN_COLUMNS} FROM runs WHERE parent IS NULL"
        args: tuple[Any, ...] = ()
        if study:
            query += " AND study = ?"
            args = (study,)
        rows = self._conn.execute(query + " ORDER BY created DESC LIMIT ?", (*args, limit)).fetchall()
        return [_record(r) for r in rows]

    def sweep_runs(self, sweep: str) -> list[RunRecord]:
        """Top-level runs created by one invocation, in creation order."""
        rows = self._conn.execute(
            f"SELECT {_RUN_COLUMNS} FROM runs WHERE sweep = ? AND parent IS NULL ORDER BY created, id", (sweep,)
        ).fetchall()
        return [_record(r) for r in rows]

    def run_dir(self, run_id: str) -> Path:
        """The folder a run owns next to the store (created on demand)."""
        path = self.root / run_id
        path.mkdir(parents=True, exist_ok=True)
        return path

    # ---- series -----------------------------------------------------------------------------

    def log_scalars(self, run_id: str, rows: Iterable[tuple[int, str, float]]) -> None:
        """Insert (step, name, value) rows in one transaction; a repeated (name, step) is replaced."""
        data = [(run_id, name, int(step), _as_float(value)) for step, name, value in rows]
        if not data:
            return
        with self._transaction():
            self._conn.executemany(
                "INSERT OR REPLACE INTO series(run, name, step, value) VALUES (?, ?, ?, ?)", data
            )

    def truncate_series(self, run_id: str, after_step: int) -> None:
        """Drop rows logged after `after_step` (a resumed run logs them again)."""
        with self._transaction():
            self._conn.execute("DELETE FROM series WHERE run = ? AND step > ?", (run_id, after_step))

    def series(self, run_id: str, name: str) -> Series:
        """One series in step order (empty arrays if never logged)."""
        rows = self._conn.execute(
            "SELECT step, value FROM series WHERE run = ? AND name = ? ORDER BY step", (run_id, name)
        ).fetchall()
        steps = np.array([r[0] for r in rows], dtype=np.int64)
        values = np.array([np.nan if r[1] is None else r[1] for r in rows], dtype=np.float64)
        return Series(name, steps, values)

    def series_names(self, run_id: str) -> list[str]:
        """Names of the series a run logged, sorted."""
        rows = self._conn.execute(
            "SELECT DISTINCT name FROM series WHERE run = ? ORDER BY name", (run_id,)
        ).fetchall()
        return [r[0] for r in rows]

    def all_series(self, run_id: str) -> dict[str, Series]:
        """Every series of a run, keyed by name."""
        rows = self._conn.execute(
            "SELECT name, step, value FROM series WHERE run = ? ORDER BY name, step", (run_id,)
        ).fetchall()
        grouped: dict[str, list[tuple[int, float]]] = {}
        for name, step, value in rows:
            grouped.setdefault(name, []).append((step, np.nan if value is None else value))
        return {
            name: Series(name, np.array([s for s, _ in pts], dtype=np.int64), np.array([v for _, v in pts]))
            for name, pts in grouped.items()
        }

    def final_values(self, run_id: str) -> dict[str, float]:
        """The value at the last logged step of every series of a run."""
        rows = self._conn.execute(
            "SELECT s.name, s.value FROM series s JOIN "
            "(SELECT name, MAX(step) AS step FROM series WHERE run = ? GROUP BY name) last "
            "ON s.name = last.name AND s.step = last.step WHERE s.run = ? ORDER BY s.name",
            (run_id, run_id),
        ).fetchall()
        return {name: (float("nan") if value is None else value) for name, value in rows}

    def count_rows(self, run_id: str | None = None) -> int:
        """Number of series rows (of one run, or in the whole store)."""
        if run_id is None:
            return self._conn.execute("SELECT COUNT(*) FROM series").fetchone()[0]
        return self._conn.execute("SELECT COUNT(*) FROM series WHERE run = ?", (run_id,)).fetchone()[0]

    # ---- tables, claims, artifacts ----------------------------------------------------------

    def log_table(self, run_id: str, name: str, rows: Sequence[dict[str, Any]]) -> None:
        """Store a named table (list of row dicts) for a run, replacing any previous one."""
        with self._transaction():
            self._conn.execute(
                "INSERT OR REPLACE INTO tables(run, name, rows) VALUES (?, ?, ?)",
                (run_id, name, json.dumps(list(rows))),
            )

    def table(self, run_id: str, name: str) -> list[dict[str, Any]]:
        """A stored table's rows (empty if absent)."""
        row = self._conn.execute("SELECT rows FROM tables WHERE run = ? AND name = ?", (run_id, name)).fetchone()
        return json.loads(row[0]) if row else []

    def table_names(self, run_id: str) -> list[str]:
        """Names of a run's tables."""
        rows = self._conn.execute("SELECT name FROM tables WHERE run = ? ORDER BY name", (run_id,)).fetchall()
        return [r[0] for r in rows]

    def save_claims(self, run_id: str, verdicts: Sequence[tuple[str, bool | None, str, dict[str, float]]]) -> None:
        """Replace a run's claim verdicts: (name, ok, summary, numbers) each."""
        with self._transaction():
            self._conn.execute("DELETE FROM claims WHERE run = ?", (run_id,))
            self._conn.executemany(
                "INSERT INTO claims(run, name, ok, summary, numbers) VALUES (?, ?, ?, ?, ?)",
                [(run_id, n, None if ok is None else int(ok), s, json.dumps(num)) for n, ok, s, num in verdicts],
            )

    def claims(self, run_id: str) -> list[dict[str, Any]]:
        """Stored verdicts of a run: dicts with name, ok (True/False/None), summary, numbers."""
        rows = self._conn.execute(
            "SELECT name, ok, summary, numbers FROM claims WHERE run = ? ORDER BY rowid", (run_id,)
        ).fetchall()
        return [
            {"name": n, "ok": None if ok is None else bool(ok), "summary": s, "numbers": json.loads(num)}
            for n, ok, s, num in rows
        ]

    def add_artifact(self, run_id: str, kind: str, path: Path, sha256: str) -> None:
        """Record a file a run produced (path relative to the store folder when inside it)."""
        try:
            stored = str(Path(path).resolve().relative_to(self.root))
        except ValueError:
            stored = str(Path(path).resolve())
        with self._transaction():
            self._conn.execute(
                "INSERT OR REPLACE INTO artifacts(run, kind, path, sha256, created) VALUES (?, ?, ?, ?, ?)",
                (run_id, kind, stored, sha256, time.time()),
            )

    def artifacts(self, run_id: str) -> list[dict[str, Any]]:
        """Files recorded for a run."""
        rows = self._conn.execute(
            "SELECT kind, path, sha256, created FROM artifacts WHERE run = ? ORDER BY created", (run_id,)
        ).fetchall()
        return [{"kind": k, "path": p, "sha256": h, "created": c} for k, p, h, c in rows]


_RUN_COLUMNS = (
    "id, parent, arm, study, preset, config, seed, status, created, started, ended, error, versions,"
    " host, pid, threads, device, sweep"
)


def _record(row: tuple) -> RunRecord:
    (rid, parent, arm, study, preset, config, seed, status, created, started, ended, error, versions,
     host, pid, threads, device, sweep) = row
    return RunRecord(
        id=rid, parent=parent, arm=arm, study=study, preset=preset, config=json.loads(config), seed=seed,
        status=status, created=created, started=started, ended=ended, error=error,
        versions=json.loads(versions), host=host, pid=pid, threads=threads, device=device,
        sweep=sweep,
    )


def _as_float(value: Any) -> float | None:
    number = float(value)
    return None if np.isnan(number) else number


def _like_prefix(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


class _Transaction:
    """`BEGIN IMMEDIATE ... COMMIT` so concurrent writers queue on the busy timeout, not fail."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def __enter__(self) -> None:
        self.conn.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.conn.execute("COMMIT")
        else:
            self.conn.execute("ROLLBACK")
