"""Export runs to the tools researchers already use: TensorBoard event files, CSV, Parquet.

Every export reads the store only. TensorBoard gets one folder per arm (`DIR/<run>/<arm>/`) with
its scalars, and the study run's report figures as images in `DIR/<run>/`; CSV and Parquet get
one long table with columns run, arm, study, seed, step, name, value.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator, Sequence
from pathlib import Path

from repdyn.bench.errors import UserError
from repdyn.bench.report import render_figures, study_run
from repdyn.bench.store import RunStore
from repdyn.bench.tensorboard import EventWriter

COLUMNS = ("run", "arm", "study", "seed", "step", "name", "value")


def _rows(store: RunStore, run_refs: Sequence[str]) -> Iterator[tuple]:
    for ref in run_refs:
        record = study_run(store, ref)
        for arm in store.children(record.id):
            for name, series in store.all_series(arm.id).items():
                for step, value in zip(series.steps.tolist(), series.values.tolist(), strict=True):
                    yield record.id, arm.arm, record.study, record.seed, step, name, value


def export_tensorboard(store: RunStore, run_refs: Sequence[str], out_dir: str | Path) -> list[Path]:
    """Write TensorBoard event files; returns the files written."""
    out_dir = Path(out_dir)
    written = []
    for ref in run_refs:
        record = study_run(store, ref)
        for arm in store.children(record.id):
            with EventWriter(out_dir / record.id / arm.arm) as writer:
                for name, series in store.all_series(arm.id).items():
                    for step, value in zip(series.steps.tolist(), series.values.tolist(), strict=True):
                        writer.scalar(name, value, step)
                written.append(writer.path)
        figures = render_figures(store, record)
        if figures:
            with EventWriter(out_dir / record.id) as writer:
                for figure, png in figures:
                    writer.image(f"report/{figure.name}", png)
                written.append(writer.path)
    return written


def export_csv(store: RunStore, run_refs: Sequence[str], path: str | Path) -> Path:
    """One long CSV table of every series of the given runs."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(COLUMNS)
        writer.writerows(_rows(store, run_refs))
    return path


def export_parquet(store: RunStore, run_refs: Sequence[str], path: str | Path) -> Path:
    """The same long table as Parquet (needs the optional package pyarrow)."""
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise UserError("--to parquet needs the package pyarrow (pip install pyarrow)") from None
    rows = list(_rows(store, run_refs))
    columns = {name: [row[i] for row in rows] for i, name in enumerate(COLUMNS)}
    types = {"run": pa.string(), "arm": pa.string(), "study": pa.string(), "seed": pa.int64(),
             "step": pa.int64(), "name": pa.string(), "value": pa.float64()}
    table = pa.table({k: pa.array(v, type=types[k]) for k, v in columns.items()})
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path)
    return path
