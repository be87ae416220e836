"""Griffin study: claim logic on hand-made series, the smoke preset, reproductions (slow)."""

import json

import pytest

from repdyn.bench import config as cfg
from repdyn.bench.errors import ConfigError, UserError
from repdyn.bench.store import RunStore
from repdyn.bench.view import recorded_view
from repdyn.cli import main
from repdyn.methods.lm import generate
from repdyn.studies.griffin import (
    STUDY,
    GriffinStudyConfig,
    arms,
    claim_a,
    claim_b1,
    claim_b2,
    claim_b3,
    load_lm,
)

CONTEXTS = (256, 1024, 4096, 8192)


def _view(tmp_path, curves, config=None):
    config = config or GriffinStudyConfig()
    rows = {arm: [(s, name, v) for name, pts in c.items() for s, v in pts] for arm, c in curves.items()}
    return recorded_view(RunStore(tmp_path / "s.db"), "griffin", config, arms(config), rows)


def _decode(griffin_ms, global_ms, griffin_bytes=(1000.0,) * 4):
    return {
        "decode": {
            "griffin_latency_ms": list(zip(CONTEXTS, griffin_ms, strict=True)),
            "global_latency_ms": list(zip(CONTEXTS, global_ms, strict=True)),
            "griffin_cache_bytes": list(zip(CONTEXTS, griffin_bytes, strict=True)),
            "global_cache_bytes": [(n, 64.0 * n + 16) for n in CONTEXTS],
        }
    }


def test_claim_a_needs_flat_griffin_and_growing_global_attention(tmp_path):
    verdict = claim_a(_view(tmp_path / "a", _decode((2.0, 2.1, 2.0, 2.2), (2.0, 2.5, 4.0, 6.0))))
    assert verdict.ok is True
    assert verdict.numbers["griffin_latency_ratio"] == pytest.approx(1.1)
    assert verdict.numbers["global_latency_ratio"] == pytest.approx(3.0)
    assert "1.10x" in verdict.summary and "constant" in verdict.summary
    # Griffin slowing down by 30% fails; so does a cache that grows; so does a flat global model
    assert claim_a(_view(tmp_path / "b", _decode((2.0, 2.2, 2.4, 2.6), (2.0, 3, 4, 6)))).ok is False
    growing = _decode((2.0,) * 4, (2.0, 3, 4, 6), griffin_bytes=(1000.0, 1000.0, 1000.0, 1064.0))
    assert claim_a(_view(tmp_path / "c", growing)).ok is False
    assert claim_a(_view(tmp_path / "d", _decode((2.0,) * 4, (2.0, 2.5, 3.0, 3.5)))).ok is False
    assert claim_a(_view(tmp_path / "e", {})).ok is None


def _lm(val, long=None):
    return {
        "val_bpb": [(100, val + 0.5), (400, val)],
        "val_bpb_long": [(400, long if long is not None else val)],
    }


def test_claims_b_compare_final_bits_per_byte(tmp_path):
    view = _view(
        tmp_path / "a",
        {"griffin": _lm(2.31, 2.30), "hawk": _lm(2.39), "transformer": _lm(2.30, 2.9)},
    )
    b1, b2, b3 = claim_b1(view), claim_b2(view), claim_b3(view)
    assert (b1.ok, b2.ok, b3.ok) == (True, True, True)
    assert b1.numbers["gap"] == pytest.approx(0.01) and b2.numbers["gap"] == pytest.approx(0.09)
    assert "2.300 -> 2.900" in b3.summary  # the transformer's extrapolation is reported beside
    view = _view(
        tmp_path / "b", {"griffin": _lm(2.33, 2.36), "hawk": _lm(2.41), "transformer": _lm(2.30)}
    )
    assert (claim_b1(view).ok, claim_b2(view).ok, claim_b3(view).ok) == (False, False, False)
    view = _view(tmp_path / "c", {"griffin": _lm(2.3)})
    assert claim_b1(view).ok is None and claim_b3(view).ok is True


def test_arms_and_config_checks():
    config = GriffinStudyConfig()
    made = arms(config)
    assert list(made) == ["decode", "griffin", "hawk", "transformer"]
    assert made["hawk"].model.pattern == "hawk" and made["decode"].role == "decode"
    assert list(arms(cfg.override(config, {"lm_arms": "[griffin]", "decode_arm": "false"}))) == [
        "griffin"
    ]
    with pytest.raises(ConfigError, match="lm_arms"):
        cfg.override(config, {"lm_arms": "[mamba]"})
    with pytest.raises(ConfigError, match="model.num_heads"):
        cfg.override(config, {"model.num_heads": "3"})


def test_smoke_preset_runs_end_to_end(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("REPDYN_STORE", str(tmp_path / "runs" / "repdyn.db"))
    assert main(["run", "griffin", "--preset", "smoke", "--quiet", "--json", "--no-report"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["status"] == "finished"
    final = summary["final"]
    # a byte model starts near 8 bits/byte; a few steps already move it
    assert 4.0 < final["griffin/val_bpb"] < 8.0
    # the griffin cache is the same at both contexts (window 8 < 16); the global one grows 4x
    assert final["decode/griffin_cache_bytes"] > 0
    assert {c["name"] for c in summary["claims"]} == {"A", "B1", "B2", "B3"}
    # the trained LM loads back for sampling (what `repdyn generate RUN` uses)
    store = RunStore(tmp_path / "runs" / "repdyn.db")
    model, tokenizer = load_lm(store, summary["run_id"])
    text = "".join(generate(model, tokenizer, "def ", 12, seed=3))
    assert text == "".join(generate(model, tokenizer, "def ", 12, seed=3)) and text
    hawk, _ = load_lm(store, summary["run_id"] + "/hawk")
    assert hawk.config.block_types == ("recurrent",) * 3
    with pytest.raises(UserError, match="not a griffin LM arm"):
        load_lm(store, summary["run_id"] + "/decode")
    # the CLI streams the same sample
    capsys.readouterr()
    assert main(["generate", summary["run_id"], "--prompt", "def ", "--max-new-tokens", "12", "--seed", "3"]) == 0
    assert capsys.readouterr().out == "def " + text + "\n"
    assert main(["generate", summary["run_id"], "--arm", "decode", "--prompt", "x"]) == 2


def _run(tmp_path, monkeypatch, capsys, seed, preset="default", extra=()):
    monkeypatch.setenv("REPDYN_STORE", str(tmp_path / "runs" / "repdyn.db"))
    argv = [
        "run",
        "griffin",
        "--preset",
        preset,
        "--seed",
        str(seed),
        "--workers",
        "2",
        "--quiet",
        "--json",
        "--no-report",
        *extra,
    ]
    assert main(argv) == 0
    return {
        c["name"]: c for c in json.loads(capsys.readouterr().out.strip().splitlines()[-1])["claims"]
    }


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2])
def test_default_preset_reproduces_claim_a(tmp_path, monkeypatch, capsys, seed):
    claims = _run(tmp_path, monkeypatch, capsys, seed, extra=("--set", "lm_arms=[]"))
    assert claims["A"]["ok"] is True, claims["A"]["summary"]


@pytest.mark.slow
def test_long_preset_reproduces_claims_b(tmp_path, monkeypatch, capsys):
    claims = _run(
        tmp_path, monkeypatch, capsys, 0, preset="long", extra=("--set", "decode_arm=false")
    )
    for name in ("B1", "B2", "B3"):
        assert claims[name]["ok"] is True, claims[name]["summary"]


def test_study_is_registered():
    assert STUDY.name == "griffin" and STUDY.preset_names()[:2] == ["smoke", "default"]
