"""Plain PPO study: the CLI contract, determinism per seed, exact resume at checkpoint boundaries, CartPole (slow)."""

import importlib.util
import json
import sys
from pathlib import Path

import pytest

from repdyn.bench import config as cfg
from repdyn.bench import context
from repdyn.bench.context import RunContext
from repdyn.bench.progress import NullProgress
from repdyn.bench.runner import create_study_run, prepare_resume, run_arm
from repdyn.bench.store import RunStore
from repdyn.bench.view import differing_series
from repdyn.cli import main
from repdyn.studies.ppo import STUDY

TINY = ["--set", "total_timesteps=384", "--set", "num_envs=2", "--set", "num_steps=32",
        "--set", "checkpoint_every=2", "--set", "diagnostics.capacity_every=3", "--set", "diagnostics.capacity_steps=5",
        "--set", "diagnostics.rank_every=2"]
WALL_CLOCK = {"sps"}  # the only series that may differ between two runs of one seed


@pytest.fixture
def store_path(tmp_path, monkeypatch):
    path = tmp_path / "runs" / "repdyn.db"
    monkeypatch.setenv("REPDYN_STORE", str(path))
    return path


def _json(capsys) -> dict:
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_run_ppo_with_cleanrl_keys_reports_sps_and_return(store_path, capsys):
    argv = ["run", "ppo", *TINY, "--set", "env_id=MountainCar-v0", "--set", "num_envs=1", "--set", "num_steps=64",
            "--set", "update_epochs=2", "--set", "checkpoint_every=0", "--quiet", "--json", "--no-report"]
    assert main(argv) == 0
    summary = _json(capsys)
    final = summary["final"]
    assert final["sps"] > 0 and final["global_step"] == 384
    assert final["episodic_return_mean"] == -200  # -1 per step until the 200-step limit: a random policy never wins
    store = RunStore(store_path)
    arm = f"{summary['run_id']}/main"
    assert store.get_run(arm).config["env_id"] == "MountainCar-v0"
    assert store.series(arm, "trust/frac_outside").steps.tolist() == list(range(1, 7))  # every update
    assert store.series(arm, "actor/feature_rank_lyle").steps.tolist() == [1, 2, 4, 6]  # rank_every=2, first, last
    assert store.series(arm, "capacity/value").steps.tolist() == [1, 3, 6]
    assert summary["claims"][0]["ok"] is None  # the CartPole threshold does not apply to MountainCar


def test_bad_environment_is_a_one_line_usage_error(store_path, capsys):
    assert main(["run", "ppo", "--set", "env_id=CartPol-v1"]) == 2
    assert "env_id: unknown environment 'CartPol-v1'" in capsys.readouterr().err


def test_same_seed_same_series(store_path, capsys):
    for _ in range(2):
        assert main(["run", "ppo", *TINY, "--seed", "4", "--quiet", "--no-report"]) == 0
    store = RunStore(store_path)
    assert len(store.all_series("ppo-1/main")) > 25
    assert differing_series(store, "ppo-1/main", "ppo-2/main", ignore_values=WALL_CLOCK) == []


def test_resume_from_a_checkpoint_boundary_is_exact(tmp_path, monkeypatch):
    store = RunStore(tmp_path / "s.db")
    config = cfg.override(STUDY.config(), cfg.flatten({
        "total_timesteps": 384, "num_envs": 2, "num_steps": 32, "checkpoint_every": 2,
        "diagnostics": {"capacity_every": 3, "capacity_steps": 5, "rank_every": 2}}))
    clean = create_study_run(store, STUDY, "t", config, 9, device="cpu").arm_ids[0]
    stopped = create_study_run(store, STUDY, "t", config, 9, device="cpu").arm_ids[0]
    assert run_arm(store, clean, NullProgress()).status == "finished"

    original = RunContext.tick

    def stop_after_four(self, done, state):  # a crash right after the checkpoint of update 4
        if done == 4:
            monkeypatch.setattr(context, "stop_requested", lambda: True)
        original(self, done, state)

    monkeypatch.setattr(RunContext, "tick", stop_after_four)
    assert run_arm(store, stopped, NullProgress()).status == "interrupted"
    monkeypatch.undo()
    assert store.series(stopped, "global_step").values.max() == 4 * 64
    prepare_resume(store, store.get_run(stopped.split("/")[0]))
    assert run_arm(store, stopped, NullProgress()).status == "finished"
    assert differing_series(store, clean, stopped, ignore_values=WALL_CLOCK) == []


@pytest.mark.slow
def test_default_preset_solves_cartpole(store_path, capsys):
    assert main(["run", "ppo", "--seed", "3", "--quiet", "--json", "--no-report"]) == 0
    summary = _json(capsys)
    assert summary["claims"][0]["ok"] is True, summary["claims"][0]["summary"]
    assert summary["final"]["episodic_return_mean"] >= 450


def _benchmark_module():
    path = Path(__file__).resolve().parents[2] / "benchmarks" / "ppo.py"
    spec = importlib.util.spec_from_file_location("bench_ppo", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


FAKE_CLEANRL = """
import os, sys
assert os.environ["OMP_NUM_THREADS"] == "1"
args = sys.argv[1:]
assert args[args.index("--total-timesteps") + 1] == "1024" and args[args.index("--update-epochs") + 1] == "4"
assert {style}
print("SPS: 100"); print("global_step=8, episodic_return=8.0"); print("SPS: 1234")
"""


@pytest.mark.parametrize(("marker", "style"), [("", '"--track" in args and args[args.index("--track") + 1] == "False"'),
                                               ("import tyro", '"--no-track" in args and "--no-cuda" in args')])
def test_benchmark_runs_cleanrl_on_one_thread_and_reads_its_last_sps(tmp_path, marker, style):
    bench = _benchmark_module()
    script = tmp_path / "ppo.py"
    script.write_text(f"# {marker}\n" + FAKE_CLEANRL.format(style=style))
    assert bench.cleanrl_sps(script, 1024, sys.executable) == 1234.0
