"""Dynamic evaluation study: claim logic on hand-made series, smoke end to end, resume, reproductions (slow)."""

import json

import pytest

from repdyn.bench import config as cfg
from repdyn.bench import context
from repdyn.bench.errors import ConfigError
from repdyn.bench.store import RunStore
from repdyn.bench.view import differing_series, recorded_view
from repdyn.cli import main
from repdyn.studies import dynamic_eval
from repdyn.studies.dynamic_eval import STUDY, DynamicEvalStudyConfig, claim_d1, claim_d2, claim_d3


def _view(tmp_path, bpb):
    """bpb: {(mode, set): {context: value}} for a finished main arm; None for no arm."""
    config = DynamicEvalStudyConfig()
    rows = []
    for (mode, name), points in (bpb or {}).items():
        for context_len, value in points.items():
            rows += [
                (context_len, f"{mode}_{name}_bpb", value),
                (context_len, f"{mode}_{name}_flops", (3.0 if mode == "dynamic" else 1.0) * 1e6),
            ]
    arm_rows = {"main": rows} if bpb is not None else {}
    return recorded_view(RunStore(tmp_path / "s.db"), "dynamic_eval", config, {"main": config}, arm_rows)


def _bpb(shift_static=(3.3, 3.2), shift_dynamic=(2.9, 2.8), val_static=(2.6, 2.5), val_dynamic=(2.5, 2.4)):
    return {
        ("static", "shift"): dict(zip((16, 64), shift_static, strict=True)),
        ("dynamic", "shift"): dict(zip((16, 64), shift_dynamic, strict=True)),
        ("static", "val"): dict(zip((16, 64), val_static, strict=True)),
        ("dynamic", "val"): dict(zip((16, 64), val_dynamic, strict=True)),
    }


def test_claims_read_gains_at_each_context(tmp_path):
    view = _view(tmp_path / "a", _bpb())
    d1, d2, d3 = claim_d1(view), claim_d2(view), claim_d3(view)
    assert (d1.ok, d2.ok, d3.ok) == (True, True, True)
    assert d1.numbers["gain"] == pytest.approx(0.4 / 3.2)  # at the longest context, 64
    assert d2.numbers["shift_gain_16"] == pytest.approx(0.4 / 3.3)
    assert d2.numbers["val_gain_64"] == pytest.approx(0.1 / 2.5)
    assert d3.numbers == {"dynamic_short": 2.9, "static_long": 3.2}
    # a 9.4% gain fails D1; a larger in-distribution gain at one context fails D2; dynamic at 16 worse than
    # static at 64 fails D3
    view = _view(tmp_path / "b", _bpb(shift_dynamic=(3.25, 2.9), val_dynamic=(2.5, 2.2)))
    assert (claim_d1(view).ok, claim_d2(view).ok, claim_d3(view).ok) == (False, False, False)
    view = _view(tmp_path / "c", None)
    assert (claim_d1(view).ok, claim_d2(view).ok, claim_d3(view).ok) == (None, None, None)


def test_claim_d3_needs_four_times_the_shortest_context(tmp_path):
    bpb = {key: {16: v[16], 32: v[64]} for key, v in _bpb().items()}
    assert claim_d3(_view(tmp_path, bpb)).ok is None


def test_config_checks():
    with pytest.raises(ConfigError, match="adapt.contexts"):
        cfg.override(DynamicEvalStudyConfig(), {"adapt.contexts": "[]"})
    with pytest.raises(ConfigError, match="model.num_heads"):
        cfg.override(DynamicEvalStudyConfig(), {"model.num_heads": "3"})


def _run(argv, capsys):
    code = main(argv)
    return code, json.loads(capsys.readouterr().out.strip().splitlines()[-1]) if code == 0 else None


SMOKE = ["run", "dynamic_eval", "--preset", "smoke", "--quiet", "--json", "--no-report"]


def test_smoke_preset_runs_end_to_end(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("REPDYN_STORE", str(tmp_path / "runs" / "repdyn.db"))
    code, summary = _run(
        [*SMOKE, "--set", "adapt.optimizer=rms", "--set", "adapt.lr=1e-3", "--set", "adapt.decay=0.01"], capsys
    )
    assert code == 0 and summary["status"] == "finished"
    store = RunStore(tmp_path / "runs" / "repdyn.db")
    series = store.all_series(summary["run_id"] + "/main")
    for mode in ("static", "dynamic"):
        for name in ("val", "shift"):
            assert series[f"{mode}_{name}_bpb"].steps.tolist() == [8, 32]
            assert all(1.0 < v < 9.0 for v in series[f"{mode}_{name}_bpb"].values)
    # dynamic evaluation costs more FLOPs per token than static at the same context (forward + backward)
    assert (series["dynamic_shift_flops"].values > 2 * series["static_shift_flops"].values).all()
    assert {c["name"] for c in summary["claims"]} == {"D1", "D2", "D3"}


def test_an_interrupted_run_resumes_to_the_same_results(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("REPDYN_STORE", str(tmp_path / "runs" / "repdyn.db"))
    argv = [*SMOKE, "--set", "train.steps=8", "--set", "checkpoint_every=2"]
    with context.stop_at_call(dynamic_eval, "train_step", 5, before=True):  # a stop signal during the fifth update
        assert main(argv) == 130
    store = RunStore(tmp_path / "runs" / "repdyn.db")
    assert store.get_run("dynamic_eval-1/main").status == "interrupted"
    capsys.readouterr()
    code, resumed = _run(["resume", "dynamic_eval-1", "--quiet", "--json", "--no-report"], capsys)
    assert code == 0 and resumed["status"] == "finished"
    code, fresh = _run(argv, capsys)
    assert code == 0
    names = store.all_series("dynamic_eval-2/main").keys()
    timings = {name for name in names if name.endswith("_cpu_s")}  # timings, not results
    assert differing_series(store, "dynamic_eval-1/main", "dynamic_eval-2/main", names, timings) == []


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_default_preset_reproduces_the_claims(tmp_path, monkeypatch, capsys, seed):
    monkeypatch.setenv("REPDYN_STORE", str(tmp_path / "runs" / "repdyn.db"))
    code, summary = _run(["run", "dynamic_eval", "--seed", str(seed), "--quiet", "--json", "--no-report"], capsys)
    assert code == 0
    for claim in summary["claims"]:
        assert claim["ok"] is True, claim["summary"]


def test_study_is_registered():
    assert STUDY.name == "dynamic_eval" and STUDY.preset_names()[:2] == ["smoke", "default"]
