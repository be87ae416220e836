"""Sweeps on a local Ray instance: every row reaches the driver's store, a killed worker is retried."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from repdyn.bench.store import RunStore

pytest.importorskip("ray")

SWEEP = ["--preset", "smoke", "--set", "train.steps=1500", "--set", "checkpoint_every=100", "--set", "control=false",
         "--set", "log_points=30", "--backend", "ray", "--workers", "2", "--quiet", "--no-report", "--json"]


def _repdyn(store: Path, *args: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src"), "REPDYN_STORE": str(store)}
    return subprocess.Popen([sys.executable, "-m", "repdyn", *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _kill_one_running_arm(store_path: Path, proc: subprocess.Popen, timeout: float = 600) -> tuple[str, int]:
    """SIGKILL the Ray worker of the first arm seen training (after its first checkpoint)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        if store_path.exists():
            store = RunStore(store_path)
            for record in store.list_runs():
                for arm in store.children(record.id):
                    checkpoints = store_path.parent / arm.id / "checkpoints"
                    if arm.status == "running" and arm.pid and list(checkpoints.glob("*.json")):
                        os.kill(arm.pid, signal.SIGKILL)
                        store.close()
                        return arm.id, arm.pid
            store.close()
        time.sleep(0.05)
    raise AssertionError("no arm was ever seen running")


def _sweep_with_a_kill(tmp_path: Path, seeds: str) -> tuple[RunStore, dict, str]:
    store_path = tmp_path / "runs" / "repdyn.db"
    proc = _repdyn(store_path, "run", "grokking", "--seeds", seeds, *SWEEP)
    killed, pid = _kill_one_running_arm(store_path, proc)
    out, err = proc.communicate(timeout=1200)
    assert proc.returncode == 0, err[-3000:]
    store = RunStore(store_path)
    assert store.get_run(killed).pid != pid  # Ray retried the task in a new worker
    return store, json.loads(out.strip().splitlines()[-1]), killed


def _assert_complete(store: RunStore, summary: dict, killed: str, n_runs: int) -> None:
    runs = summary["runs"]
    assert len(runs) == n_runs and all(r["status"] == "finished" for r in runs)
    reference = {r["run_id"]: store.all_series(f"{r['run_id']}/main") for r in runs}
    shape = {name: s.steps.tolist() for name, s in next(iter(reference.values())).items()}
    for run_id, series in reference.items():
        assert {name: s.steps.tolist() for name, s in series.items()} == shape, run_id
    assert store.get_run(killed).status == "finished"


def test_sweep_with_a_killed_worker_loses_no_row(tmp_path):
    store, summary, killed = _sweep_with_a_kill(tmp_path, "0-3")
    _assert_complete(store, summary, killed, 4)
    # The retried arm resumed from its checkpoint and ends exactly like a clean run of its seed.
    seed = store.get_run(killed.split("/")[0]).seed
    again = _repdyn(store.path, "run", "grokking", "--seed", str(seed), *SWEEP)
    out, err = again.communicate(timeout=1200)
    assert again.returncode == 0, err[-3000:]
    clean = store.all_series(f"{json.loads(out.strip().splitlines()[-1])['run_id']}/main")
    resumed = store.all_series(killed)
    for name, series in clean.items():
        assert resumed[name].values.tolist() == series.values.tolist(), name


@pytest.mark.slow
def test_twenty_run_sweep_with_a_killed_worker(tmp_path):
    store, summary, killed = _sweep_with_a_kill(tmp_path, "0-19")
    _assert_complete(store, summary, killed, 20)
