"""ppo_collapse study: claim logic on hand-made series, the smoke preset end to end, the default preset (slow)."""

import json

import pytest

from repdyn.bench import config as cfg
from repdyn.bench.store import RunStore
from repdyn.bench.view import RunView, recorded_view
from repdyn.cli import main
from repdyn.studies.ppo_collapse import (
    CollapseConfig,
    arms,
    claim_ppo1,
    claim_ppo2,
    claim_ppo3,
    toy_series,
)


def _view(tmp_path, curves: dict[str, dict[str, list[float]]], config: CollapseConfig | None = None) -> RunView:
    """A stored run whose arms logged `curves` (values at steps 1, 2, ...)."""
    config = config or CollapseConfig()
    rows = {arm: [(i, name, v) for name, values in c.items() for i, v in enumerate(values, start=1)]
            for arm, c in curves.items()}
    return recorded_view(RunStore(tmp_path / "s.db"), "ppo_collapse", config, arms(config), rows, run_id="c-1")


def _ppo_arm(prenorm_end: float, best_return: float = 500.0) -> dict[str, list[float]]:
    # 20 points: the claims average the last 10% (2 points); the early values must not count.
    return {"actor/prenorm": [2.5] * 18 + [prenorm_end - 0.1, prenorm_end + 0.1],
            "episodic_return_mean": [20.0] * 10 + [best_return] + [300.0] * 9, "global_step": list(range(20))}


def test_ppo1_compares_end_norms_and_requires_both_to_solve_cartpole(tmp_path):
    view = _view(tmp_path / "a", {"baseline_e16": _ppo_arm(4.0), "pfo_e16": _ppo_arm(2.8)})
    verdict = claim_ppo1(view)
    assert verdict.ok is True
    assert verdict.numbers["ratio"] == pytest.approx(0.7)
    assert "PFO 2.80 vs baseline 4.00 -> 0.70x" in verdict.summary
    assert verdict.numbers["best_return_pfo"] == 500 and verdict.numbers["final_return_pfo"] == 300
    assert claim_ppo1(_view(tmp_path / "b", {"baseline_e16": _ppo_arm(4.0), "pfo_e16": _ppo_arm(3.2)})).ok is False
    unsolved = _view(tmp_path / "c", {"baseline_e16": _ppo_arm(4.0, 440.0), "pfo_e16": _ppo_arm(2.8)})
    assert claim_ppo1(unsolved).ok is False
    assert claim_ppo1(_view(tmp_path / "d", {"baseline_e16": _ppo_arm(4.0)})).ok is None


def test_ppo1_return_threshold_only_on_cartpole(tmp_path):
    config = cfg.override(CollapseConfig(), {"ppo.env_id": "Acrobot-v1"})
    view = _view(tmp_path, {"baseline_e16": _ppo_arm(4.0, -90.0), "pfo_e16": _ppo_arm(2.8, -95.0)}, config)
    verdict = claim_ppo1(view)
    assert verdict.ok is True and "no threshold off CartPole" in verdict.summary


def test_ppo2_needs_1_3x_more_growth_at_more_epochs(tmp_path):
    view = _view(tmp_path / "a", {"baseline_e16": _ppo_arm(4.0), "baseline_e4": _ppo_arm(3.0)})
    verdict = claim_ppo2(view)
    assert verdict.ok is True and verdict.numbers["growth"] == pytest.approx(4 / 3)
    view = _view(tmp_path / "b", {"baseline_e16": _ppo_arm(3.8), "baseline_e4": _ppo_arm(3.0)})
    assert claim_ppo2(view).ok is False
    one_epoch_setting = cfg.override(CollapseConfig(), {"epochs": (8,)})
    assert claim_ppo2(_view(tmp_path / "c", {"baseline_e8": _ppo_arm(3.0)}, one_epoch_setting)).ok is None


def test_ppo3_judges_the_toy_ratios(tmp_path):
    def toy(y3: float, y0: float, ym1: float) -> dict[str, list[float]]:
        return {toy_series(3.0, "y"): [1.0, y3], toy_series(0.0, "y"): [1.0, y0], toy_series(-1.0, "y"): [1.0, ym1],
                toy_series(3.0, "x"): [1.0, 1.1]}

    assert claim_ppo3(_view(tmp_path / "a", {"toy": toy(1.25, 1.0, 1.012)})).ok is True
    assert claim_ppo3(_view(tmp_path / "b", {"toy": toy(1.09, 1.0, 1.0)})).ok is False  # clipping held
    assert claim_ppo3(_view(tmp_path / "c", {"toy": toy(1.25, 1.0, 1.03)})).ok is False
    only_alpha_3 = cfg.override(CollapseConfig(), {"toy.alphas": (3.0,)})
    assert claim_ppo3(_view(tmp_path / "d", {"toy": {toy_series(3.0, "y"): [1.3]}}, only_alpha_3)).ok is None


def test_arms_put_the_longest_first_and_switch_pfo_off_for_baselines():
    out = arms(CollapseConfig())
    assert list(out) == ["baseline_e16", "pfo_e16", "baseline_e4", "pfo_e4", "toy"]
    assert out["baseline_e16"].ppo.pfo.coef == 0 and out["pfo_e16"].ppo.pfo.coef == 1.0
    assert out["pfo_e4"].ppo.update_epochs == 4 and out["pfo_e4"].ppo.learning_rate == 1e-3


def test_smoke_preset_end_to_end(tmp_path, monkeypatch, capsys):
    path = tmp_path / "runs" / "repdyn.db"
    monkeypatch.setenv("REPDYN_STORE", str(path))
    assert main(["run", "ppo_collapse", "--preset", "smoke", "--seed", "2", "--quiet", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    claims = {c["name"]: c for c in summary["claims"]}
    assert claims["PPO3"]["ok"] is True  # the toy does not depend on the preset
    store = RunStore(path)
    run = summary["run_id"]
    # PPO2's numbers are the stored series' end means, recomputed here.
    low, high = (store.series(f"{run}/baseline_e{e}", "actor/prenorm").values for e in (1, 2))
    numbers = store.claims(run)[1]["numbers"]
    assert numbers["growth"] == pytest.approx(high[-1] / low[-1])  # 4 updates: the last 10% is the last one
    assert summary["final"]["toy/toy/ratio_y/alpha_3"] == pytest.approx(1.2534, abs=1e-4)
    for arm in ("baseline_e2", "pfo_e2", "baseline_e1", "pfo_e1"):
        assert f"{arm}/sps" in summary["final"] and f"{arm}/capacity/policy" in summary["final"]
    assert summary["final"]["pfo_e2/losses/pfo_distance"] > 0 == summary["final"]["baseline_e2/losses/pfo_distance"]
    html = (path.parent / run / "report.html").read_text()
    assert html.count("data:image/png;base64,") == 2 and "PPO3" in html


def _run_default(tmp_path, monkeypatch, capsys, seed: int) -> dict:
    monkeypatch.setenv("REPDYN_STORE", str(tmp_path / "runs" / "repdyn.db"))
    assert main(["run", "ppo_collapse", "--seed", str(seed), "--workers", "2", "--quiet", "--json",
                 "--no-report"]) == 0
    return {c["name"]: c for c in json.loads(capsys.readouterr().out.strip().splitlines()[-1])["claims"]}


@pytest.mark.slow
@pytest.mark.parametrize("seed", [11, 12])
def test_default_preset_reproduces_ppo1_to_ppo3(tmp_path, monkeypatch, capsys, seed):
    claims = _run_default(tmp_path, monkeypatch, capsys, seed)
    for name in ("PPO1", "PPO2", "PPO3"):
        assert claims[name]["ok"] is True, claims[name]["summary"]
