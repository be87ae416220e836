"""The nar_latent study: arms, claim logic on hand-made stored series, the smoke preset end to end,
and the default/long presets' reproductions (slow)."""

import json

import pytest

from repdyn.bench import config as cfg
from repdyn.bench.store import RunStore
from repdyn.bench.view import recorded_view
from repdyn.cli import main
from repdyn.studies.nar_latent import (
    NarLatentConfig,
    arms,
    claim_e1,
    claim_e2,
    claim_e4,
    claim_e5,
    table_rows,
)


def _view(tmp_path, config: NarLatentConfig, curves: dict[str, dict[str, list[tuple[int, float]]]]):
    rows = {arm: [(s, k, v) for k, pts in c.items() for s, v in pts] for arm, c in curves.items()}
    return recorded_view(RunStore(tmp_path / "s.db"), "nar_latent", config, arms(config), rows, run_id="nl-1")


def test_arms_set_algorithm_variant_processor_and_seed_per_experiment():
    config = cfg.override(NarLatentConfig(), {"experiments": ("e1", "e2", "e4", "e5", "table"),
                                              "e4_seeds": 2, "table_algorithms": ("dijkstra",)})
    out = arms(config)
    assert out["e1"].algorithm == "bfs" and out["e1"].train_steps == 300
    assert out["e2"].algorithm == "bellman_ford" and out["e2"].train_steps == 1500
    both = out["e4_both_s1"]
    assert (both.aggregation, both.latent_decay, both.seed_offset) == ("softmax", 0.9, 2)
    assert out["e4_decay_s0"].aggregation == "max" and out["e4_decay_s0"].latent_decay == 0.9
    assert out["e5_ungated_s2"].processor == "triplet_mpnn" and out["e5_gated_s0"].processor == "triplet_gmpnn"
    assert out["table_dijkstra_baseline"].algorithm == "dijkstra"
    assert len(out) == 2 + 4 * 2 + 2 * 3 + 1


def _ood_series(ood, val, best=250):
    return {"ood/pi": [(300, ood)], "ood_score": [(300, ood)], "best_val_score": [(300, val)],
            "best_step": [(300, best)], "train_cpu_s": [(300, 60.0)], "val_score": [(0, 0.1), (300, val)]}


def test_e1_and_e2_need_both_ood_and_id_thresholds(tmp_path):
    config = NarLatentConfig()
    view = _view(tmp_path / "a", config, {"e1": _ood_series(0.96, 0.99), "e2": _ood_series(0.86, 0.92)})
    e1, e2 = claim_e1(view), claim_e2(view)
    assert e1.ok is True and e1.numbers["ood"] == 0.96 and "step 250" in e1.summary
    assert e2.ok is False and "ID (n=16) 0.920 (needs >= 0.93)" in e2.summary
    view = _view(tmp_path / "b", config, {"e1": _ood_series(0.94, 0.99)})
    assert claim_e1(view).ok is False and claim_e2(view).ok is None
    rows = table_rows(view)
    assert rows == [{"arm": "e1", "algorithm": "bfs", "variant": "baseline", "steps": 300,
                     "ours": pytest.approx(94.0), "ibarz": 99.73}]


def _e4(c1, c4, res=0.9, ood=0.8):
    return {"scale_id/1": [(1000, c1)], "scale_id/4": [(1000, c4)], "scale_ood/1": [(1000, ood)],
            "resolution/0.01": [(1000, res)]}


def test_e4_reproduces_the_failure_mode_and_reports_deltas_without_judging_them(tmp_path):
    config = cfg.override(NarLatentConfig(), {"experiments": ("e4",)})
    curves = {f"e4_baseline_s{k}": _e4(0.95, c4) for k, c4 in enumerate((0.6, 0.7, 0.8))}
    curves.update({f"e4_softmax_s{k}": _e4(0.9, 0.5, res=0.8) for k in range(3)})
    verdict = claim_e4(_view(tmp_path / "a", config, curves))
    assert verdict.ok is True and verdict.numbers["baseline_drop"] == pytest.approx(0.25)
    assert verdict.numbers["softmax_delta_id_c4"] == pytest.approx(0.5 - 0.7)
    assert "softmax -0.200 / +0.000 / -0.100" in verdict.summary
    small = {k: _e4(0.95, 0.8) for k in curves if "baseline" in k}
    assert claim_e4(_view(tmp_path / "b", config, small)).ok is False  # drop 0.15 < 0.2
    two_seeds = {k: v for k, v in curves.items() if not k.endswith("s2")}
    assert claim_e4(_view(tmp_path / "c", config, two_seeds)).ok is False  # < 3 seeds
    assert claim_e4(_view(tmp_path / "d", config, {})).ok is None


def _e5(reached_at, steps=300, gate=None):
    curve = {"test/pi": [(s, 0.99 if reached_at and s >= reached_at else 0.9)
                         for s in range(25, steps + 1, 25)]}
    if gate is not None:
        curve["gate_mean"] = [(0, gate), (50, 0.3)]
    return curve


def test_e5_needs_a_closed_gate_at_init_and_no_slower_gated_training(tmp_path):
    config = cfg.override(NarLatentConfig(), {"experiments": ("e5",)})
    curves = {"e5_gated_s0": _e5(100, gate=0.05), "e5_gated_s1": _e5(150, gate=0.05),
              "e5_gated_s2": _e5(50, gate=0.05), "e5_ungated_s0": _e5(150),
              "e5_ungated_s1": _e5(None), "e5_ungated_s2": _e5(100)}
    verdict = claim_e5(_view(tmp_path / "a", config, curves))
    assert verdict.ok is True and verdict.numbers["gated_steps"] == 100
    assert verdict.numbers["ungated_steps"] == pytest.approx((150 + 325 + 100) / 3)  # never: 300 + 25
    slow = {**curves, "e5_gated_s2": _e5(None, gate=0.05)}
    assert claim_e5(_view(tmp_path / "b", config, slow)).ok is False  # a gated seed never reaches
    open_gate = {k: (_e5(100, gate=0.2) if "_gated_" in k else v) for k, v in curves.items()}
    assert claim_e5(_view(tmp_path / "c", config, open_gate)).ok is False


@pytest.fixture
def env(tmp_path, monkeypatch):
    monkeypatch.setenv("REPDYN_STORE", str(tmp_path / "runs" / "repdyn.db"))
    monkeypatch.setenv("REPDYN_CACHE", str(tmp_path / "cache"))
    return tmp_path


def _claims(capsys) -> dict:
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["status"] == "finished"
    return {c["name"]: c for c in summary["claims"]} | {"final": summary["final"]}


def test_smoke_preset_trains_every_experiment_and_judges_it(env, capsys):
    assert main(["run", "nar_latent", "--preset", "smoke", "--quiet", "--json", "--no-report"]) == 0
    claims = _claims(capsys)
    final = claims["final"]
    assert {"e4_both_s0/scale_id/4", "e4_softmax_s0/resolution/0.001", "e4_decay_s0/scale_ood/0.5",
            "e5_gated_s0/test/pi", "e1/ood/pi"} <= set(final)
    assert claims["E2"]["ok"] is None  # the smoke preset trains no e2 arm
    assert claims["E4"]["ok"] is False and "over >= 3 seeds" in claims["E4"]["summary"]
    assert "mean gate at init 0.0" in claims["E5"]["summary"]


@pytest.mark.slow
@pytest.mark.parametrize("seed", [21, 22, 23])
def test_default_preset_reproduces_e1_and_e2(env, capsys, seed):
    assert main(["run", "nar_latent", "--seed", str(seed), "--workers", "2", "--quiet", "--json",
                 "--no-report"]) == 0
    claims = _claims(capsys)
    assert claims["E1"]["ok"] is True, claims["E1"]["summary"]
    assert claims["E2"]["ok"] is True, claims["E2"]["summary"]


@pytest.mark.slow
def test_long_preset_reproduces_the_out_of_range_failure_mode(env, capsys):
    assert main(["run", "nar_latent", "--preset", "long", "--seed", "31", "--workers", "2",
                 "--set", "experiments=[e4]", "--quiet", "--json", "--no-report"]) == 0
    claims = _claims(capsys)
    assert claims["E4"]["ok"] is True, claims["E4"]["summary"]
