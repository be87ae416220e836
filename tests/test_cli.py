"""The CLI contract: exit codes, one-line errors, --json, sweeps in workers, kill -9 then resume."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from repdyn.bench.store import RunStore
from repdyn.bench.view import differing_series
from repdyn.cli import main, parse_seeds

TINY = ["--preset", "smoke", "--set", "train.steps=400", "--set", "log_points=20", "--quiet"]


@pytest.fixture
def store_path(tmp_path, monkeypatch):
    path = tmp_path / "runs" / "repdyn.db"
    monkeypatch.setenv("REPDYN_STORE", str(path))
    monkeypatch.chdir(tmp_path)
    return path


def _err_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["run", "grokking", "--set", "model.depht=3"], "model.depht: unknown key"),
        (["run", "grokking", "--set", "model.depth=deep"], "model.depth: got 'deep', expected an integer"),
        (["run", "grokking", "--set", "train.lr=-1"], "train.lr: got -1.0, expected a value >= 0.0"),
        (["run", "grokking", "--set", "data.dataset=cifar"], "data.dataset: got 'cifar', expected one of digits, mnist"),
        (["run", "grokking", "--set", "data.dataset=mnist"], "data.path: dataset=mnist needs data.path"),
        (["run", "grokking", "--set", "data.dataset=mnist", "--set", "data.path=/nonexistent"],
         "MNIST folder /nonexistent does not exist"),
        (["run", "grokking", "--preset", "huge"], "--preset 'huge': grokking has presets smoke, default"),
        (["run", "nosuch"], "unknown study 'nosuch'"),
        (["run", "grokking", "--seeds", "a-b"], "--seeds 'a-b'"),
        (["run", "grokking", "--workers", "0"], "--workers 0"),
        (["run", "grokking", "--device", "tpu"], "--device 'tpu'"),
        (["run", "oversquashing", "--device", "cuda"], "--device cuda: "),
        (["run", "grokking", "--autocast", "bf16"], "--autocast bf16: grokking has no bf16 option"),
        (["run", "griffin", "--autocast", "fp8"], "--autocast 'fp8': expected one of off, bf16"),
        (["resume", "grokking-99"], "no run 'grokking-99'"),
        (["bogus"], "invalid choice"),
    ],
)
def test_bad_input_exits_2_with_one_line(store_path, capsys, argv, needle):
    assert main(argv) == 2
    line = _err_line(capsys)
    assert line.startswith("repdyn: error: ") and needle in line
    assert not store_path.exists() or RunStore(store_path).list_runs() == []


def test_seed_specs():
    assert parse_seeds("0-3") == [0, 1, 2, 3]
    assert parse_seeds("1,5,9") == [1, 5, 9]


def test_json_summary_and_verdicts_come_from_the_store(store_path, capsys):
    assert main(["run", "grokking", *TINY, "--seed", "3", "--json", "--no-report"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    summary = json.loads(out[-1])
    assert {"run_id", "study", "preset", "seed", "wall_s", "final", "claims"} <= set(summary)
    assert (summary["study"], summary["preset"], summary["seed"]) == ("grokking", "smoke", 3)
    assert [c["name"] for c in summary["claims"]] == ["G1", "G2", "G3"]
    assert summary["claims"][1]["ok"] is None  # G2 needs the deep arm, absent at this preset
    store = RunStore(store_path)
    run = summary["run_id"]
    arm = f"{run}/main"
    assert summary["final"]["main/test_acc"] == store.final_values(arm)["test_acc"]
    # The verdict's numbers are those of the stored series, recomputed here independently.
    acc = store.series(arm, "train_acc")
    fit = next((int(s) for s, v in zip(acc.steps, acc.values, strict=True) if v >= 0.99), None)
    numbers = store.claims(run)[0]["numbers"]
    assert (numbers["fit_step"] == fit) if fit is not None else numbers["fit_step"] != numbers["fit_step"]
    control = store.series(f"{run}/control", "test_acc")
    g3 = store.claims(run)[2]
    gen = next(int(s) for s, v in zip(control.steps, control.values, strict=True) if v >= 0.8)
    assert g3["numbers"]["generalization_step"] == gen
    assert str(gen) in g3["summary"] or f"{gen / 1e3:.3g}k" in g3["summary"]
    assert any(line.startswith("  G1 delayed generalization:") for line in out)


def test_same_seed_same_series(store_path, capsys):
    for _ in range(2):
        assert main(["run", "grokking", *TINY, "--set", "control=false", "--no-report"]) == 0
    store = RunStore(store_path)
    assert len(store.all_series("grokking-1/main")) > 10
    assert differing_series(store, "grokking-1/main", "grokking-2/main") == []


def test_sweep_runs_each_setting_in_workers_into_one_store(store_path, capsys):
    argv = ["run", "grokking", *TINY, "--set", "model.width=16,24", "--set", "control=false",
            "--workers", "2", "--json", "--no-report"]
    assert main(argv) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert [r["status"] for r in summary["runs"]] == ["finished", "finished"]
    store = RunStore(store_path)
    widths = [store.get_run(r["run_id"]).config["model"]["width"] for r in summary["runs"]]
    assert widths == [16, 24]
    assert all(store.count_rows(f"{r['run_id']}/main") > 0 for r in summary["runs"])
    assert main(["compare", *[r["run_id"] for r in summary["runs"]]]) == 0
    table = capsys.readouterr().out
    assert "model.width" in table and "main/test_acc" in table


def test_report_is_redrawn_from_the_store(store_path, capsys):
    assert main(["run", "grokking", *TINY, "--no-report"]) == 0
    folder = store_path.parent / "grokking-1"
    assert not (folder / "report.html").exists()
    assert main(["report", "grokking-1"]) == 0
    html = (folder / "report.html").read_text()
    assert html.count("data:image/png;base64,") == 3 and "G1" in html
    md = (folder / "report.md").read_text()
    assert "![Train and test accuracy](accuracy.png)" in md
    kinds = {a["kind"] for a in RunStore(store_path).artifacts("grokking-1")}
    assert kinds == {"figure", "report-md", "report-html"}
    assert main(["runs"]) == 0
    assert "grokking-1" in capsys.readouterr().out


def _repdyn(*args: str, **kw) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")}
    return subprocess.Popen([sys.executable, "-m", "repdyn", *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kw)


def _wait_for(path: Path, proc: subprocess.Popen, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.02)


LONG = ["--preset", "smoke", "--set", "train.steps=3000", "--set", "checkpoint_every=300", "--set", "control=false",
        "--quiet", "--no-report"]


def test_sigkill_then_resume_ends_with_the_same_series(store_path):
    proc = _repdyn("run", "grokking", *LONG)
    _wait_for(store_path.parent / "grokking-1" / "main" / "checkpoints" / "step-0000000900.json", proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    store = RunStore(store_path)
    assert store.get_run("grokking-1/main").status == "running"  # killed without a chance to record
    resumed = _repdyn("resume", "grokking-1", "--quiet", "--no-report", "--json")
    out, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err
    assert json.loads(out.strip().splitlines()[-1])["status"] == "finished"
    fresh = _repdyn("run", "grokking", *LONG)
    assert fresh.wait(timeout=300) == 0
    assert differing_series(store, "grokking-1/main", "grokking-2/main") == []


def test_sigterm_checkpoints_and_marks_interrupted(store_path):
    proc = _repdyn("run", "grokking", *LONG)
    _wait_for(store_path.parent / "grokking-1" / "main" / "checkpoints" / "step-0000000600.json", proc)
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert "repdyn resume grokking-1" in out
    store = RunStore(store_path)
    assert store.get_run("grokking-1").status == "interrupted"
    assert store.get_run("grokking-1/main").status == "interrupted"
    resumed = _repdyn("resume", "grokking-1", "--quiet", "--no-report")
    assert resumed.wait(timeout=300) == 0
    assert store.get_run("grokking-1").status == "finished"
