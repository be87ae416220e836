"""Grokking study: claim logic on hand-made series, the MNIST path end to end, and the reproductions (slow)."""

import json

import pytest

from repdyn.bench import config as cfg
from repdyn.bench.store import RunStore
from repdyn.bench.view import recorded_view
from repdyn.cli import main
from repdyn.studies.grokking import GrokkingConfig, arms, claim_g1, claim_g2, claim_g3


def _store_with_arms(tmp_path, curves: dict[str, dict[str, list[tuple[int, float]]]], config: GrokkingConfig):
    rows = {arm: [(s, name, v) for name, pts in c.items() for s, v in pts] for arm, c in curves.items()}
    return recorded_view(RunStore(tmp_path / "s.db"), "grokking", config, arms(config), rows)


def test_g1_passes_and_fails_on_hand_made_curves(tmp_path):
    grok = {"train_acc": [(0, 0.1), (1000, 0.5), (4000, 1.0), (20000, 1.0)],
            "test_acc": [(0, 0.1), (4000, 0.2), (9000, 0.5), (10000, 0.86), (20000, 0.9)]}
    view = _store_with_arms(tmp_path / "a", {"main": grok}, GrokkingConfig())
    verdict = claim_g1(view)
    assert verdict.ok is True
    assert verdict.numbers == {"fit_step": 4000, "test_at_fit": 0.2, "generalization_step": 10000, "delay": 2.5}
    assert "step 4k" in verdict.summary and "delay 2.5x" in verdict.summary
    no_delay = {**grok, "test_acc": [(0, 0.1), (4000, 0.86), (20000, 0.9)]}
    verdict = claim_g1(_store_with_arms(tmp_path / "b", {"main": no_delay}, GrokkingConfig()))
    assert verdict.ok is False and verdict.numbers["delay"] == 1.0
    assert claim_g1(_store_with_arms(tmp_path / "c", {}, GrokkingConfig())).ok is None


def test_g3_requires_generalizing_within_twice_the_fit_step(tmp_path):
    fast = {"train_acc": [(0, 0.1), (100, 1.0)], "test_acc": [(0, 0.1), (150, 0.81)]}
    slow = {"train_acc": [(0, 0.1), (100, 1.0)], "test_acc": [(0, 0.1), (250, 0.81)]}
    assert claim_g3(_store_with_arms(tmp_path / "a", {"control": fast}, GrokkingConfig())).ok is True
    assert claim_g3(_store_with_arms(tmp_path / "b", {"control": slow}, GrokkingConfig())).ok is False


def test_g2_checks_fit_ratio_surge_and_rank_drop(tmp_path):
    config = cfg.override(GrokkingConfig(), {"deep_depth": 12, "deep_steps": 40000})
    main_arm = {"train_acc": [(0, 0.1), (4000, 1.0), (20000, 1.0)], "test_acc": [(0, 0.1), (20000, 0.9)]}
    deep_ranks = {f"numerical_rank_cov/{i}": [(0, 100.0), (12000, 100.0), (40000, 30.0)] for i in range(12)}
    deep = {"train_acc": [(0, 0.1), (12000, 1.0), (40000, 1.0)],
            "test_acc": [(0, 0.1), (12000, 0.58), (16000, 0.60), (20000, 0.59), (30000, 0.7), (40000, 0.79)],
            **deep_ranks}
    verdict = claim_g2(_store_with_arms(tmp_path / "a", {"main": main_arm, "deep": deep}, config))
    assert verdict.ok is True
    assert verdict.numbers["fit_ratio"] == 3.0
    assert verdict.numbers["plateau_acc"] == 0.60
    assert verdict.numbers["rank_drop"] == pytest.approx(0.7)
    flat_rank = {**deep, **{k: [(0, 100.0), (40000, 90.0)] for k in deep_ranks}}
    verdict = claim_g2(_store_with_arms(tmp_path / "b", {"main": main_arm, "deep": flat_rank}, config))
    assert verdict.ok is False and verdict.numbers["rank_drop"] == pytest.approx(0.1)


def test_mnist_folder_runs_end_to_end(tmp_path, tiny_mnist, monkeypatch, capsys):
    folder, _ = tiny_mnist(n_train=40, n_test=30)
    monkeypatch.setenv("REPDYN_STORE", str(tmp_path / "runs" / "repdyn.db"))
    argv = ["run", "grokking", "--preset", "smoke", "--set", "data.dataset=mnist", "--set", f"data.path={folder}",
            "--set", "data.train_size=40", "--set", "train.steps=50", "--set", "control=false",
            "--set", "model.width=16", "--quiet", "--json", "--no-report"]
    assert main(argv) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["status"] == "finished"
    # 784 input pixels: the first layer's covariance rank is bounded by the 30 test images.
    assert summary["final"]["numerical_rank_cov/0"] <= 29  # one arm: unprefixed keys


def _run_default(tmp_path, monkeypatch, capsys, seed: int, preset: str = "default") -> dict:
    monkeypatch.setenv("REPDYN_STORE", str(tmp_path / "runs" / "repdyn.db"))
    assert main(["run", "grokking", "--preset", preset, "--seed", str(seed), "--workers", "2", "--quiet",
                 "--json", "--no-report"]) == 0
    return {c["name"]: c for c in json.loads(capsys.readouterr().out.strip().splitlines()[-1])["claims"]}


@pytest.mark.slow
@pytest.mark.parametrize("seed", [11, 12, 13])
def test_default_preset_reproduces_g1_and_g3(tmp_path, monkeypatch, capsys, seed):
    claims = _run_default(tmp_path, monkeypatch, capsys, seed)
    assert claims["G1"]["ok"] is True, claims["G1"]["summary"]
    assert claims["G3"]["ok"] is True, claims["G3"]["summary"]


@pytest.mark.slow
def test_long_preset_reproduces_g2(tmp_path, monkeypatch, capsys):
    claims = _run_default(tmp_path, monkeypatch, capsys, seed=5, preset="long")
    assert claims["G2"]["ok"] is True, claims["G2"]["summary"]
