"""Plasticity study: arms and config errors, claim logic on hand-made series, the smoke preset end to end
(verdict numbers recomputed from the stored series, resume mid-task), and the reproductions (slow)."""

import json
import os
import shutil

import numpy as np
import pytest

from repdyn.bench import config as cfg
from repdyn.bench.errors import ConfigError
from repdyn.bench.store import RunStore
from repdyn.bench.view import RunView, recorded_view
from repdyn.cli import main
from repdyn.studies.plasticity import (
    COMPOSITE_GRID,
    DEFAULT_ARMS,
    PlasticityConfig,
    arms,
    claim_p1,
    claim_p2,
    claim_p3,
    interventions,
    mechanism_table,
    readout_for,
)


def _view(tmp_path, series: dict[str, dict[str, list[float]]], names=DEFAULT_ARMS) -> RunView:
    """A stored study run whose arms log the given per-task series (one value per task, in order)."""
    config = cfg.override(PlasticityConfig(), {"arms": tuple(names)})
    rows = {}
    for arm, arm_series in series.items():
        length = len(next(iter(arm_series.values())))
        values = {"task": list(range(length)), **arm_series}  # a fresh offset arm starts at task 1
        rows[arm] = [(100 * (t + 1), name, float(v)) for name, vs in values.items() for t, v in enumerate(vs)]
    return recorded_view(RunStore(tmp_path / "s.db"), "plasticity", config, arms(config), rows)


def test_arm_recipes_set_stream_and_interventions():
    config = cfg.override(PlasticityConfig(), {"arms": ("labels_ln_l2", "offset_fresh_twohot", "offset_c10"),
                                                "method.l2": 3e-4, "offset.pretrain_steps": 500})
    out = arms(config)
    assert list(out) == ["labels_ln_l2", "offset_fresh_twohot", "offset_c10"]
    assert out["labels_ln_l2"].stream == "labels" and out["labels_ln_l2"].method.use == ("ln", "l2")
    iv = interventions(out["labels_ln_l2"].method, depth=3)
    assert iv.layer_norm and iv.l2 == 3e-4 and iv.weight_decay == 0 and iv.redo_every == 0
    fresh = out["offset_fresh_twohot"]
    assert fresh.offset.pretrain_steps == 0 and interventions(fresh.method, depth=3).reset_layers == 3
    assert out["offset_c10"].offset.c == 10.0 and out["offset_c10"].offset.pretrain_steps == 500
    assert list(arms(PlasticityConfig())) == ["main"]


@pytest.mark.parametrize(("values", "needle"), [
    ({"arms": ("labels_plain", "nope")}, "arms: unknown arm(s) nope"),
    ({"method.use": ("ln", "dropout")}, "method.use: unknown intervention(s) dropout"),
    ({"method.use": ("twohot", "hlgauss")}, "method.use: twohot and hlgauss exclude each other"),
    ({"data.dataset": "cifar10"}, "data.path: dataset=cifar10 needs data.path"),
])
def test_bad_settings_are_refused_naming_the_key(values, needle):
    with pytest.raises(ConfigError, match=needle.replace("(", r"\(").replace(")", r"\)")):
        cfg.override(PlasticityConfig(), values)


def _p1_series(plain_last=0.11, ln_last=0.95):
    tasks = np.arange(30)
    plain_acc = np.where(tasks < 8, 0.7, np.linspace(0.7, plain_last, 30))
    return {
        "labels_plain": {"acc": plain_acc, "dead/1": np.linspace(0.02, 0.99, 30),
                         "feature_rank": np.linspace(250, 1, 30)},
        "labels_ln_l2": {"acc": np.linspace(0.93, ln_last, 30), "dead/1": np.zeros(30),
                         "feature_rank": np.full(30, 256.0)},
    }


def test_p1_on_hand_made_series(tmp_path):
    verdict = claim_p1(_view(tmp_path / "a", _p1_series()))
    assert verdict.ok is True
    assert verdict.numbers["plain_last_acc"] == pytest.approx(np.linspace(0.7, 0.11, 30)[-5:].mean())
    assert verdict.numbers["plain_dead"] == pytest.approx(0.99) and verdict.numbers["plain_rank_last"] == 1
    assert verdict.numbers["ln_first_acc"] == pytest.approx(0.93)
    assert "250 -> 1" in verdict.summary
    assert claim_p1(_view(tmp_path / "b", _p1_series(plain_last=0.5))).ok is False  # the plain net did not fail
    assert claim_p1(_view(tmp_path / "c", _p1_series(ln_last=0.85))).ok is False  # LayerNorm lost accuracy too
    assert claim_p1(_view(tmp_path / "d", {"labels_plain": _p1_series()["labels_plain"]})).ok is None


def _p2_series(c100=0.5, ln=0.6, twohot=0.05):
    def arm(mse, sv=4.0):
        return {"mse": [0.5, *mse], "sv_ratio": [sv, 4.0, 4.0, 4.0]}

    def fresh(mse, sv=4.0):
        return {"task": [1, 2, 3], "mse": mse, "sv_ratio": [sv] * 3}

    return {"offset_fresh": fresh([0.01, 0.01, 0.01]),
            "offset_c0": arm([0.002, 0.002, 0.002], sv=4.0), "offset_c10": arm([0.03, 0.03, 0.03], sv=40.0),
            "offset_c100": arm([c100] * 3, sv=130.0),
            "offset_fresh_ln": fresh([0.01, 0.01, 0.01]),
            "offset_c100_ln": arm([ln] * 3, sv=200.0),
            "offset_fresh_twohot": fresh([0.04, 0.05, 0.06], sv=8.0),
            "offset_c100_twohot": arm([twohot] * 3, sv=40.0)}


def test_p2_on_hand_made_series(tmp_path):
    verdict = claim_p2(_view(tmp_path / "a", _p2_series()))
    assert verdict.ok is True
    numbers = verdict.numbers
    assert numbers["mse_c100"] == pytest.approx(0.5)  # the pretraining task (MSE 0.5 at c) is not fine-tuning
    assert numbers["penalty"] == pytest.approx(50.0) and numbers["ln_penalty"] == pytest.approx(60.0)
    assert numbers["head_penalty"] == pytest.approx(1.0) and numbers["sv_ratio_c100"] / numbers["sv_ratio_c0"] == 32.5
    assert claim_p2(_view(tmp_path / "b", _p2_series(c100=0.05))).ok is False  # only 5x a fresh net
    assert claim_p2(_view(tmp_path / "c", _p2_series(ln=0.05))).ok is False  # LayerNorm alone would fix it
    assert claim_p2(_view(tmp_path / "d", _p2_series(twohot=0.5))).ok is False  # the head would not
    assert claim_p2(_view(tmp_path / "e", {"offset_c0": _p2_series()["offset_c0"]})).ok is None


@pytest.fixture
def one_thread(monkeypatch):
    """Arms train on one thread, as in the calibration: on a busy 2-core machine two threads per arm stall."""
    monkeypatch.setattr(os, "cpu_count", lambda: 1)


def _run(argv, capsys) -> dict:
    assert main(["run", "plasticity", *argv, "--quiet", "--json", "--no-report"]) == 0
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_smoke_preset_end_to_end_verdicts_come_from_the_stored_series(tmp_path, monkeypatch, capsys, one_thread):
    monkeypatch.setenv("REPDYN_STORE", str(tmp_path / "runs" / "repdyn.db"))
    summary = _run(["--preset", "smoke", "--seed", "4"], capsys)
    assert summary["status"] == "finished"
    claims = {c["name"]: c for c in summary["claims"]}
    assert claims["P1"]["ok"] is not None and claims["P2"]["ok"] is not None
    store = RunStore(tmp_path / "runs" / "repdyn.db")
    run = summary["run_id"]
    numbers = {c["name"]: c["numbers"] for c in store.claims(run)}
    plain = store.series(f"{run}/labels_plain", "acc").values
    assert numbers["P1"]["plain_last_acc"] == pytest.approx(plain[-5:].mean())
    assert numbers["P1"]["plain_dead"] == store.series(f"{run}/labels_plain", "dead/1").values[-1]
    mse = {arm: store.series(f"{run}/offset_{arm}", "mse").values for arm in ("fresh", "c100", "fresh_twohot")}
    assert len(mse["fresh"]) == 2 and len(mse["c100"]) == 3  # fresh arms skip pretraining
    assert numbers["P2"]["penalty"] == pytest.approx(mse["c100"][1:].mean() / mse["fresh"].mean())
    assert summary["final"]["offset_c100/task"] == 2
    # Diagnostics are logged at the end of every task; the expensive ones at the configured cadence.
    tasks = store.series(f"{run}/labels_ln_l2", "task")
    assert tasks.values.tolist() == [0, 1, 2]
    assert store.series(f"{run}/labels_ln_l2", "sharpness").steps.tolist() == tasks.steps[[0, 1, 2]].tolist()
    assert set(store.series(f"{run}/labels_ln_l2", "ntk_rank").values) <= set(range(1, 65))


def test_resume_mid_task_repeats_the_same_series(tmp_path, monkeypatch, capsys, one_thread):
    monkeypatch.setenv("REPDYN_STORE", str(tmp_path / "runs" / "repdyn.db"))
    argv = ["--preset", "smoke", "--set", "arms=[]", "--set", "method.use=[ln,l2,redo,cbp]",
            "--set", "method.redo_every=7", "--set", "method.cbp_rate=0.01", "--set", "checkpoint_every=25"]
    run = _run(argv, capsys)["run_id"]
    arm = f"{run}/main"
    store = RunStore(tmp_path / "runs" / "repdyn.db")
    before = {name: s.values.copy() for name, s in store.all_series(arm).items()}
    folder = store.run_dir(arm) / "checkpoints"
    newest = max(folder.glob("step-*.json"))
    assert newest.name == "step-0000000180.json"
    newest.unlink()
    newest.with_suffix(".safetensors").unlink()  # the newest left is step 175, inside the last task
    store.set_status(arm, "interrupted")
    store.set_status(run, "interrupted")
    assert main(["resume", run, "--quiet", "--no-report"]) == 0
    after = {name: s.values for name, s in store.all_series(arm).items()}
    assert after.keys() == before.keys() and before["recycled"][-1] + before["replaced"][-1] > 0
    for name, values in before.items():
        np.testing.assert_array_equal(after[name], values, err_msg=name)
    shutil.rmtree(tmp_path / "runs")


def _composite_arm(final_acc, dead=0.0, norm=1.0, sharpness=1.0, ntk=1.0, rank=1.0, tasks=10):
    """Per-task series of a composite arm whose diagnostics grow by the given factors from first to last task."""
    ramp = np.linspace(0, 1, tasks)
    return {"acc": np.full(tasks, final_acc), "dead/1": dead * ramp, "zombie/1": np.zeros(tasks),
            "init_hidden_norm": [5.0],  # = sqrt(3^2 + 4^2), the hidden norm of the first task below
            "param_norm/0": 3.0 * (1 + (norm - 1) * ramp), "param_norm/1": 4.0 * (1 + (norm - 1) * ramp),
            "sharpness": 2.0 * (1 + (sharpness - 1) * ramp), "ntk_cond": 50.0 * (1 + (ntk - 1) * ramp),
            "feature_rank": 250.0 * (1 + (rank - 1) * ramp)}


def _grid(**changes):
    arms_ = {"plain": _composite_arm(0.1, dead=0.99, rank=0.01, ntk=1e5), "ln": _composite_arm(0.85, norm=3.2),
             "l2": _composite_arm(0.67, dead=0.3, sharpness=15), "wd": _composite_arm(0.12, dead=0.98),
             "l2init": _composite_arm(0.7, dead=0.25, sharpness=6), "snp": _composite_arm(0.74, sharpness=11),
             "redo": _composite_arm(0.85, norm=2.9, sharpness=8), "cbp": _composite_arm(0.37, dead=0.75, rank=0.25),
             "ln_l2": _composite_arm(0.98, norm=1.5, sharpness=1.5)}
    arms_.update(changes)
    return {f"composite_{k}": v for k, v in arms_.items()}


def test_p3_on_hand_made_series(tmp_path):
    names = [f"composite_{n}" for n in COMPOSITE_GRID]
    verdict = claim_p3(_view(tmp_path / "a", _grid(), names))
    assert verdict.ok is True, verdict.summary
    assert verdict.numbers["final_ln_l2"] == pytest.approx(0.98) and verdict.numbers["final_redo"] == pytest.approx(0.85)
    assert verdict.numbers["active_ln"] == 1 and verdict.numbers["active_redo"] == 2
    assert "ln 0.85 [norm 3.2x]" in verdict.summary and "cbp 0.37 [units 75%, rank 0.25x]" in verdict.summary
    # LN + L2 not the best: fails.
    assert claim_p3(_view(tmp_path / "b", _grid(redo=_composite_arm(0.99, norm=2.9)), names)).ok is False
    # A single fix that holds every mechanism off: fails, and the summary says which.
    verdict = claim_p3(_view(tmp_path / "c", _grid(snp=_composite_arm(0.74, sharpness=2.5)), names))
    assert verdict.ok is False and "snp 0.74 [none active]" in verdict.summary
    assert claim_p3(_view(tmp_path / "d", _grid(), names[:-1])).ok is None


def test_mechanism_table_marks_active_mechanisms_by_threshold(tmp_path):
    view = _view(tmp_path, _grid(), [f"composite_{n}" for n in COMPOSITE_GRID])
    rows = {r["arm"]: r for r in mechanism_table([view.arm(f"composite_{n}") for n in COMPOSITE_GRID])}
    plain = rows["composite_plain"]
    assert plain["units"] == pytest.approx(0.99) and plain["units_active"]
    assert plain["rank"] == pytest.approx(0.01) and plain["rank_active"] and plain["ntk_active"]
    assert plain["norm"] == pytest.approx(1.0) and not plain["norm_active"]
    assert rows["composite_ln"]["norm"] == pytest.approx(3.2) and not rows["composite_ln"]["sharpness_active"]
    assert rows["composite_ln_l2"]["norm"] == pytest.approx(1.5) and not rows["composite_ln_l2"]["norm_active"]
    assert plain["readout"] == "acc" and plain["final"] == pytest.approx(0.1)


def test_saturated_streams_are_compared_on_a_harder_readout(tmp_path):
    full = {"acc": np.ones(6), "acc_at_k": np.linspace(0.9, 0.6, 6), "mean_batch_acc": np.full(6, 0.95)}
    also_full = {"acc": np.ones(6), "acc_at_k": np.full(6, 1.0), "mean_batch_acc": np.full(6, 0.97)}
    view = _view(tmp_path / "a", {"permuted_plain": full, "permuted_ln": also_full}, ["permuted_plain", "permuted_ln"])
    assert readout_for(list(view.arms.values()))[0] == "acc_at_k"
    view = _view(tmp_path / "b", {"permuted_plain": also_full, "permuted_ln": also_full},
                 ["permuted_plain", "permuted_ln"])
    assert readout_for(list(view.arms.values()))[0] == "mean_batch_acc"
    view = _view(tmp_path / "c", {"permuted_plain": {**full, "acc": np.linspace(1, 0.9, 6)}, "permuted_ln": full},
                 ["permuted_plain", "permuted_ln"])
    assert readout_for(list(view.arms.values()))[0] == "acc"


def _run_preset(tmp_path, monkeypatch, capsys, preset: str, seed: int) -> dict:
    monkeypatch.setenv("REPDYN_STORE", str(tmp_path / "runs" / "repdyn.db"))
    summary = _run(["--preset", preset, "--seed", str(seed), "--workers", "2"], capsys)
    return {c["name"]: c for c in summary["claims"]}


@pytest.mark.slow
@pytest.mark.parametrize("seed", [11, 12, 13])
def test_default_preset_reproduces_p1_and_p2(tmp_path, monkeypatch, capsys, seed):
    claims = _run_preset(tmp_path, monkeypatch, capsys, "default", seed)
    assert claims["P1"]["ok"] is True, claims["P1"]["summary"]
    assert claims["P2"]["ok"] is True, claims["P2"]["summary"]


@pytest.mark.slow
def test_long_preset_reproduces_p3(tmp_path, monkeypatch, capsys):
    claims = _run_preset(tmp_path, monkeypatch, capsys, "long", seed=5)
    assert claims["P3"]["ok"] is True, claims["P3"]["summary"]
    assert claims["P1"]["ok"] is True and claims["P2"]["ok"] is True


@pytest.mark.parametrize(("dataset", "needle"), [("cifar10", "CIFAR-10 folder"), ("mnist", "MNIST folder")])
def test_missing_data_folder_exits_2_before_any_run(tmp_path, monkeypatch, capsys, dataset, needle):
    monkeypatch.setenv("REPDYN_STORE", str(tmp_path / "runs" / "repdyn.db"))
    argv = ["run", "plasticity", "--set", f"data.dataset={dataset}", "--set", f"data.path={tmp_path / 'none'}"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and needle in err[0] and "does not exist" in err[0]
    assert not (tmp_path / "runs" / "repdyn.db").exists()


def test_cifar10_folder_runs_end_to_end(tmp_path, monkeypatch, capsys, one_thread):
    rng = np.random.default_rng(0)
    folder = tmp_path / "cifar"
    folder.mkdir()
    for name in [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]:
        records = np.concatenate([rng.integers(0, 10, (4, 1)), rng.integers(0, 256, (4, 3072))], axis=1)
        (folder / name).write_bytes(records.astype(np.uint8).tobytes())
    monkeypatch.setenv("REPDYN_STORE", str(tmp_path / "runs" / "repdyn.db"))
    summary = _run(["--set", "data.dataset=cifar10", "--set", f"data.path={folder}", "--set", "arms=[]",
                    "--set", "labels.tasks=2", "--set", "labels.steps=5", "--set", "model.width=8",
                    "--set", "diag.k_steps=2"], capsys)
    assert summary["status"] == "finished"
    # The 5 training batches hold 20 images: task accuracy is counted over exactly those.
    correct = summary["final"]["acc"] * 20
    assert summary["final"]["task"] == 1 and correct == pytest.approx(round(correct))
    assert summary["final"]["feature_rank"] <= 8  # bounded by the width
