"""The bf16 switch: `--autocast bf16` sets a study's `autocast` field, `RunContext.autocast()` reads
it; a bf16 run trains close to fp32 with fp32 weights; a study without the field refuses it."""

from __future__ import annotations

import json

import pytest
import torch

from repdyn.bench.errors import UserError
from repdyn.bench.precision import autocast, check_autocast, supports_autocast
from repdyn.bench.store import RunStore
from repdyn.cli import main
from repdyn.studies.griffin import GriffinStudyConfig, load_lm
from repdyn.studies.grokking import GrokkingConfig


def test_bf16_mode_turns_cpu_autocast_on_and_off_leaves_it_off():
    x, w = torch.randn(4, 8), torch.randn(8, 3)
    with autocast(torch.device("cpu"), "bf16"):
        assert (x @ w).dtype == torch.bfloat16
    with autocast(torch.device("cpu"), "off"):
        assert (x @ w).dtype == torch.float32


def test_only_studies_with_the_field_accept_bf16():
    assert supports_autocast(GriffinStudyConfig) and not supports_autocast(GrokkingConfig)
    check_autocast("griffin", GriffinStudyConfig, "bf16")
    check_autocast("grokking", GrokkingConfig, "off")
    with pytest.raises(UserError, match="--autocast bf16: grokking has no bf16 option"):
        check_autocast("grokking", GrokkingConfig, "bf16")
    with pytest.raises(UserError, match="--autocast 'fp16': expected one of off, bf16"):
        check_autocast("griffin", GriffinStudyConfig, "fp16")


def _griffin(tmp_path, monkeypatch, capsys, *extra: str) -> dict:
    monkeypatch.setenv("REPDYN_STORE", str(tmp_path / "runs" / "repdyn.db"))
    argv = ["run", "griffin", "--preset", "smoke", "--set", "lm_arms=griffin", "--set", "decode_arm=false",
            "--quiet", "--json", "--no-report", *extra]
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_a_bf16_griffin_run_trains_close_to_fp32_and_keeps_fp32_weights(tmp_path, monkeypatch, capsys):
    fp32 = _griffin(tmp_path, monkeypatch, capsys)
    bf16 = _griffin(tmp_path, monkeypatch, capsys, "--autocast", "bf16")
    store = RunStore(tmp_path / "runs" / "repdyn.db")
    assert store.get_run(bf16["run_id"] + "/griffin").config["autocast"] == "bf16"
    assert store.get_run(fp32["run_id"] + "/griffin").config["autocast"] == "off"
    for name in ("train_bpb", "val_bpb", "val_bpb_long"):
        assert bf16["final"][name] != fp32["final"][name], f"{name}: the bf16 run computed in fp32"
        assert bf16["final"][name] == pytest.approx(fp32["final"][name], rel=0.02), name
    model, _ = load_lm(store, bf16["run_id"])  # its last checkpoint
    assert {p.dtype for p in model.parameters()} == {torch.float32}
