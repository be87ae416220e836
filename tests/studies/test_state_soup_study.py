"""State Soup study: claim logic on hand-made series, the training data, smoke end to end, resume, reproductions."""

import json

import pytest
import torch

from repdyn.bench import config as cfg
from repdyn.bench import context
from repdyn.bench.errors import ConfigError
from repdyn.bench.store import RunStore
from repdyn.bench.view import differing_series, recorded_view
from repdyn.cli import main
from repdyn.studies import state_soup
from repdyn.studies.state_soup import STUDY, StateSoupConfig, claim_s1, claim_s2, claim_s3, training_batch
from repdyn.tasks.skills import SkillTasks


def _view(tmp_path, values, table=()):
    config = StateSoupConfig()
    rows, tables = {}, {}
    if values is not None:
        # retrieval is logged at step = query length; claim S3 judges 8-token queries
        rows["main"] = [(8 if name == "retrieval_top1" else 300, name, v) for name, v in values.items()]
        rows["main"].append((16, "retrieval_top1", 1.0))
        tables["main"] = {"interpolation": list(table)}
    return recorded_view(RunStore(tmp_path / "s.db"), "state_soup", config, {"main": config}, rows, tables=tables)


def _nll(soup, a, b, concat, top1=0.95):
    return {
        "nll_soup_mean": soup,
        "nll_a": a,
        "nll_b": b,
        "nll_concat": concat,
        "nll_zero": 4.1,
        "nll_soup_sum": soup + 0.1,
        "retrieval_top1": top1,
    }


def test_claims_compare_the_soup_with_single_states_concat_and_retrieval(tmp_path):
    view = _view(tmp_path / "a", _nll(3.0, 3.30, 3.26, 2.95))
    s1, s2, s3 = claim_s1(view), claim_s2(view), claim_s3(view)
    assert (s1.ok, s2.ok, s3.ok) == (True, True, True)
    assert s1.numbers["gain"] == pytest.approx(0.26) and s2.numbers["gap"] == pytest.approx(0.05)
    assert "95.0%" in s3.summary
    # a gain of 0.24 nats, a gap of 0.11 nats and 89% top-1 each fail
    view = _view(tmp_path / "b", _nll(3.0, 3.30, 3.24, 2.89, top1=0.89))
    assert (claim_s1(view).ok, claim_s2(view).ok, claim_s3(view).ok) == (False, False, False)
    view = _view(tmp_path / "c", None)
    assert (claim_s1(view).ok, claim_s2(view).ok, claim_s3(view).ok) == (None, None, None)


def test_training_rows_are_one_skill_two_skills_or_a_switch():
    tasks = SkillTasks(vocab=64, support=8)
    t = StateSoupConfig().train
    batch = training_batch(tasks, t, torch.Generator().manual_seed(0))
    assert batch.inputs.shape == (t.batch_size, t.seq_len) and torch.equal(batch.inputs[:, 1:], batch.targets[:, :-1])
    distinct = torch.tensor([len(set(row.tolist())) for row in torch.cat([batch.inputs, batch.targets[:, -1:]], 1)])
    # 97 tokens from one support of 8 show at most 8 distinct tokens; two skills or a switch show more
    assert (distinct <= 8).any() and (distinct > 8).any() and (distinct <= 16).all()


def test_config_checks():
    with pytest.raises(ConfigError, match="skills.support"):
        cfg.override(StateSoupConfig(), {"skills.support": "65"})
    with pytest.raises(ConfigError, match="switch_fraction"):
        cfg.override(StateSoupConfig(), {"train.switch_fraction": "0.6"})


def _run(argv, capsys):
    code = main(argv)
    return code, json.loads(capsys.readouterr().out.strip().splitlines()[-1]) if code == 0 else None


def test_smoke_preset_runs_end_to_end(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("REPDYN_STORE", str(tmp_path / "runs" / "repdyn.db"))
    for arch in ("hawk", "mamba"):
        code, summary = _run(
            [
                "run",
                "state_soup",
                "--preset",
                "smoke",
                "--set",
                f"model.arch={arch}",
                "--quiet",
                "--json",
                "--no-report",
            ],
            capsys,
        )
        assert code == 0 and summary["status"] == "finished"
        final = summary["final"]
        # an untrained-ish model on 64 tokens: every NLL near log 64 = 4.16; top-1 is a fraction
        for key in ("nll_zero", "nll_a", "nll_b", "nll_concat", "nll_soup_mean", "nll_soup_sum"):
            assert 3.0 < final[key] < 5.5, key
        store = RunStore(tmp_path / "runs" / "repdyn.db")
        top1 = store.series(summary["run_id"] + "/main", "retrieval_top1")
        assert top1.steps.tolist() == [1, 2, 4, 8, 16] and ((0 <= top1.values) & (top1.values <= 1)).all()
        assert {c["name"] for c in summary["claims"]} == {"S1", "S2", "S3"}
        rows = store.table(summary["run_id"] + "/main", "interpolation")
        assert [r["weight_a"] for r in rows] == [0.0, 0.5, 1.0]


def test_an_interrupted_run_resumes_to_the_same_results(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("REPDYN_STORE", str(tmp_path / "runs" / "repdyn.db"))
    argv = [
        "run",
        "state_soup",
        "--preset",
        "smoke",
        "--set",
        "train.steps=8",
        "--set",
        "checkpoint_every=2",
        "--quiet",
        "--json",
        "--no-report",
    ]
    with context.stop_at_call(state_soup, "train_step", 5, before=True):  # a stop signal during the fifth update
        assert main(argv) == 130
    store = RunStore(tmp_path / "runs" / "repdyn.db")
    assert store.get_run("state_soup-1/main").status == "interrupted"
    capsys.readouterr()
    code, resumed = _run(["resume", "state_soup-1", "--quiet", "--json", "--no-report"], capsys)
    assert code == 0 and resumed["status"] == "finished"
    code, fresh = _run(argv, capsys)
    assert code == 0
    assert resumed["final"] == fresh["final"]
    assert differing_series(store, "state_soup-1/main", "state_soup-2/main") == []


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_default_preset_reproduces_the_claims(tmp_path, monkeypatch, capsys, seed):
    monkeypatch.setenv("REPDYN_STORE", str(tmp_path / "runs" / "repdyn.db"))
    code, summary = _run(["run", "state_soup", "--seed", str(seed), "--quiet", "--json", "--no-report"], capsys)
    assert code == 0
    for claim in summary["claims"]:
        assert claim["ok"] is True, claim["summary"]


def test_study_is_registered():
    assert STUDY.name == "state_soup" and STUDY.preset_names()[:2] == ["smoke", "default"]
