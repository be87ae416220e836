"""The nar study: claim logic on hand-made series, the smoke preset end to end, resume, and the
default preset (slow)."""

import json

import pytest

from repdyn.bench.store import RunStore
from repdyn.bench.view import differing_series, recorded_view
from repdyn.cli import main
from repdyn.methods.nar_training import NARTrainConfig
from repdyn.studies.nar import claim_n1


def _view(tmp_path, series: dict[str, list[tuple[int, float]]]):
    config = NARTrainConfig()
    rows = {"main": [(s, k, v) for k, pts in series.items() for s, v in pts]} if series else {}
    return recorded_view(RunStore(tmp_path / "s.db"), "nar", config, {"main": config}, rows)


def test_n1_compares_the_best_weights_ood_score_with_table_2(tmp_path):
    series = {"ood_score": [(500, 0.951)], "best_step": [(500, 350)], "best_val_score": [(500, 0.99)]}
    verdict = claim_n1(_view(tmp_path / "a", series))
    assert verdict.ok is True and verdict.numbers["published"] == 99.73
    assert verdict.numbers["ood"] == pytest.approx(95.1) and "step 350" in verdict.summary
    low = {**series, "ood_score": [(500, 0.94)]}
    assert claim_n1(_view(tmp_path / "b", low)).ok is False
    assert claim_n1(_view(tmp_path / "c", {})).ok is None


@pytest.fixture
def env(tmp_path, monkeypatch):
    monkeypatch.setenv("REPDYN_STORE", str(tmp_path / "runs" / "repdyn.db"))
    monkeypatch.setenv("REPDYN_CACHE", str(tmp_path / "cache"))
    return tmp_path


def test_smoke_preset_runs_end_to_end_and_keeps_the_best_checkpoint(env, capsys):
    assert main(["run", "nar", "--preset", "smoke", "--quiet", "--json", "--no-report"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["status"] == "finished"
    final = summary["final"]
    assert 0.0 <= final["ood_score"] <= 1.0 and final["ood/pi"] == final["ood_score"]
    assert {"val_hint/pi_h", "ood_hint/reach_h", "loss/pi_h", "gate_mean"} <= set(final)
    assert final["best_val_score"] == max(
        RunStore(env / "runs" / "repdyn.db").series(f"{summary['run_id']}/main", "val_score").values)
    store = RunStore(env / "runs" / "repdyn.db")
    best = list((store.run_dir(f"{summary['run_id']}/main") / "best").glob("step-*.safetensors"))
    assert len(best) == 1 and int(best[0].stem.split("-")[1]) == final["best_step"]
    assert [c["name"] for c in summary["claims"]] == ["N1"]


@pytest.mark.slow
@pytest.mark.parametrize("seed", [11, 12])
def test_default_preset_reaches_table_2_on_bfs(env, capsys, seed):
    assert main(["run", "nar", "--seed", str(seed), "--quiet", "--json", "--no-report"]) == 0
    claims = {c["name"]: c for c in json.loads(capsys.readouterr().out.strip().splitlines()[-1])["claims"]}
    assert claims["N1"]["ok"] is True, claims["N1"]["summary"]


def test_an_interrupted_run_resumes_to_the_same_series(env, capsys, monkeypatch):
    import repdyn.bench.context as context
    import repdyn.methods.nar_training as training

    argv = ["--preset", "smoke", "--set", "checkpoint_every=3", "--quiet", "--json", "--no-report"]
    assert main(["run", "nar", *argv]) == 0
    whole = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    with context.stop_at_call(training, "_validate", 2):  # a signal arrives after the step-6 validation
        assert main(["run", "nar", *argv]) == 130  # the CLI's status for an interrupted run
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["status"] == "interrupted"
    run_id = f"nar-{int(whole['run_id'].split('-')[1]) + 1}"
    assert main(["resume", run_id, "--quiet", "--json", "--no-report"]) == 0
    resumed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert resumed["status"] == "finished"
    store = RunStore(env / "runs" / "repdyn.db")
    keys = ("train_loss", "val_score", "ood_score")
    assert differing_series(store, f"{whole['run_id']}/main", f"{run_id}/main", keys) == []
