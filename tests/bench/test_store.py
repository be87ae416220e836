"""Run store: schema, ids, series, tables, claims; concurrent writers lose no row."""

import multiprocessing as mp
import sqlite3

import numpy as np
import pytest

from repdyn.bench.errors import UserError
from repdyn.bench.store import SCHEMA_VERSION, RunStore


def _make(store: RunStore, study: str = "demo", parent: str | None = None, arm: str | None = None) -> str:
    run_id = f"{parent}/{arm}" if parent else store.new_run_id(study)
    store.create_run(run_id, study=study, preset="smoke", config={"a": 1}, seed=3, versions={"repdyn": "t"},
                     parent=parent, arm=arm)
    return run_id


def test_run_lifecycle_and_lookup(tmp_path):
    store = RunStore(tmp_path / "s.db")
    first, second = _make(store), _make(store)
    assert (first, second) == ("demo-1", "demo-2")
    child = _make(store, parent=first, arm="main")
    assert [r.id for r in store.children(first)] == [child]
    store.set_status(child, "running")
    record = store.get_run(child)
    assert record.status == "running" and record.pid is not None and record.started is not None
    store.set_status(child, "failed", "boom")
    record = store.get_run(child)
    assert (record.status, record.error) == ("failed", "boom") and record.ended >= record.started
    assert store.resolve("last").id == second
    assert store.resolve("demo-2").id == second
    with pytest.raises(UserError, match="ambiguous"):
        store.resolve("demo-")
    with pytest.raises(UserError, match="no run"):
        store.resolve("other")
    assert [r.id for r in store.list_runs()] == [second, first]


def test_a_second_store_in_the_same_folder_never_adopts_the_first_ones_run_folders(tmp_path):
    first = RunStore(tmp_path / "a.db")
    run_id = _make(first)
    (first.run_dir(f"{run_id}/main") / "step-0000000010.json").write_text("{}")  # a checkpoint of a.db's run
    second = RunStore(tmp_path / "b.db")  # its counter also starts at demo-1
    with pytest.raises(UserError, match=r"run folder .*demo-1 already holds files from another store"):
        _make(second)
    with pytest.raises(UserError, match="no run 'demo-1'"):
        second.get_run(run_id)
    assert _make(second) == "demo-2"  # the next id's folder is free


def test_series_replace_truncate_and_finals(tmp_path):
    store = RunStore(tmp_path / "s.db")
    run = _make(store)
    store.log_scalars(run, [(0, "loss", 3.0), (10, "loss", 2.0), (10, "acc", 0.5), (20, "loss", float("nan"))])
    store.log_scalars(run, [(10, "loss", 1.5)])  # same step again: replaced, not duplicated
    loss = store.series(run, "loss")
    assert loss.steps.tolist() == [0, 10, 20]
    assert loss.values[:2].tolist() == [3.0, 1.5] and np.isnan(loss.values[2])
    assert loss.at(15) == 1.5 and np.isnan(loss.at(-1))
    assert loss.first_step_where(lambda v: v < 2) == 10
    assert store.final_values(run)["acc"] == 0.5
    store.truncate_series(run, 10)
    assert store.series(run, "loss").steps.tolist() == [0, 10]
    assert store.series_names(run) == ["acc", "loss"]


def test_tables_claims_artifacts(tmp_path):
    store = RunStore(tmp_path / "s.db")
    run = _make(store)
    store.log_table(run, "grid", [{"a": 1, "b": "x"}])
    assert store.table(run, "grid") == [{"a": 1, "b": "x"}]
    store.save_claims(run, [("C1", True, "fine", {"x": 1.0}), ("C2", None, "not run", {})])
    assert [(c["name"], c["ok"]) for c in store.claims(run)] == [("C1", True), ("C2", None)]
    path = store.run_dir(run) / "f.txt"
    path.write_text("hi")
    store.add_artifact(run, "note", path, "abc")
    assert store.artifacts(run)[0]["path"] == f"{run}/f.txt"


def test_newer_schema_is_refused(tmp_path):
    path = tmp_path / "s.db"
    RunStore(path).close()
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(UserError, match="schema version"):
        RunStore(path)


def _writer(path: str, run: str, worker: int, batches: int, per_batch: int) -> None:
    store = RunStore(path)
    for b in range(batches):
        rows = [(b * per_batch + i, f"w{worker}", float(i)) for i in range(per_batch)]
        store.log_scalars(run, rows)
        store.new_run_id("contended")
    store.close()


def test_parallel_writers_lose_no_row(tmp_path):
    path = tmp_path / "s.db"
    store = RunStore(path)
    run = _make(store)
    workers, batches, per_batch = 4, 40, 50
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(str(path), run, w, batches, per_batch)) for w in range(workers)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
        assert p.exitcode == 0
    assert store.count_rows(run) == workers * batches * per_batch
    for w in range(workers):
        assert len(store.series(run, f"w{w}")) == batches * per_batch
    # Every id allocation under contention was unique.
    assert store.new_run_id("contended") == f"contended-{workers * batches + 1}"
