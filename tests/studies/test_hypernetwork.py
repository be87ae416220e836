"""Hypernetwork study: the rule verifier, generator checks, latent-code features, claim logic,
the smoke preset end to end and the default preset (slow)."""

import json

import pytest
import torch

from repdyn.bench import config as cfg
from repdyn.bench.store import RunStore
from repdyn.bench.view import RunView
from repdyn.cli import main
from repdyn.models.transformer import Transformer, TransformerConfig
from repdyn.studies.hypernetwork import (
    HypernetworkConfig,
    arms,
    claim_h1,
    claim_h2,
    claim_h3,
    generator_checks,
    latent_features,
    rule_holds,
    verified_fraction,
)
from repdyn.tasks.sraven import SRaven, SRavenConfig


@pytest.mark.parametrize(
    "rule, good, bad",
    [
        ("constant", [[3, 3, 3], [5, 5, 5]], [[3, 3, 4]]),
        ("progression+2", [[1, 3, 5], [7, 1, 3]], [[1, 3, 6]]),
        ("progression-1", [[2, 1, 0], [0, 7, 6]], [[2, 1, 1]]),
        ("addition", [[3, 4, 7], [6, 5, 3]], [[3, 4, 6]]),
        ("subtraction", [[3, 4, 7], [6, 5, 1]], [[3, 4, 1]]),
        ("distribute_three", [[1, 4, 6], [6, 1, 4], [4, 6, 1]], [[1, 4, 6], [6, 1, 5], [4, 6, 1]]),
    ],
)
def test_rule_verifier_on_hand_made_rows(rule, good, bad):
    assert rule_holds(rule, good, 8) and not rule_holds(rule, bad, 8)


def test_generated_instances_pass_and_corrupted_ones_fail():
    config = SRavenConfig()
    batch = SRaven(config).sample(64, "ood", torch.Generator().manual_seed(0))
    assert verified_fraction(batch, config) == 1.0
    batch.targets[:, 0] = (batch.targets[:, 0] + 3) % 8
    assert verified_fraction(batch, config) == 0.0


def test_generator_checks_give_the_paper_counts():
    checks = generator_checks(0)
    assert checks["gen/sraven_latents"] == 330 and checks["gen/sraven_ood"] == 82
    assert checks["gen/sraven_overlap"] == 0 and checks["gen/sraven_verified"] == 1.0
    assert (checks["gen/logic_train"], checks["gen/logic_test"], checks["gen/logic_ood"]) == (33, 33, 6)
    assert checks["gen/logic_boolean_agreement"] == 1.0


def test_latent_features_are_the_query_slots_codes_with_their_shown_rule():
    torch.manual_seed(0)
    task = SRaven(SRavenConfig(num_features=2))
    model = Transformer(TransformerConfig(input_dim=8, output_dim=8, d_model=16, num_heads=4, causal=False,
                                          attention="hyla"))
    batch = task.sample(5, "train", torch.Generator().manual_seed(1))
    x, y = latent_features(model, task, batch)
    assert x.shape == (10, 4 * 18) and y.shape == (10,)
    code = model.run(batch.inputs, return_latents=True).latents[-1]
    b, slot = 3, 1  # row 7 = instance 3, second blank slot
    torch.testing.assert_close(torch.from_numpy(x[2 * b + slot]), code[b, :, 16 + slot, :].flatten())
    feature = batch.perms[b, 2, slot]
    assert y[2 * b + slot] == batch.latents[b, feature]


def _view(tmp_path, finals: dict[str, dict[str, float]], config: HypernetworkConfig) -> RunView:
    store = RunStore(tmp_path / "s.db")
    store.create_run("h-1", study="hypernetwork", preset="t", config=cfg.to_dict(config), seed=0, versions={})
    for arm, arm_config in arms(config).items():
        if arm not in finals:
            continue
        run = f"h-1/{arm}"
        store.create_run(run, parent="h-1", arm=arm, study="hypernetwork", preset="t",
                         config=cfg.to_dict(arm_config), seed=0, versions={})
        store.log_scalars(run, [(100, name, value) for name, value in finals[arm].items()])
        store.set_status(run, "finished")
    return RunView(store, store.get_run("h-1"), HypernetworkConfig)


def test_h2_compares_mean_test_r2_of_hyla_and_linear(tmp_path):
    config = HypernetworkConfig(repeats=2)
    finals = {"hyla_0": {"test/metric": 0.45}, "hyla_1": {"test/metric": 0.41},
              "linear_0": {"test/metric": 0.30}, "linear_1": {"test/metric": 0.36}}
    verdict = claim_h2(_view(tmp_path / "a", finals, config))
    assert verdict.ok is True and verdict.numbers["gap"] == pytest.approx(0.10)
    close = {**finals, "linear_1": {"test/metric": 0.50}}
    assert claim_h2(_view(tmp_path / "b", close, config)).ok is False
    assert claim_h2(_view(tmp_path / "c", {"hyla_0": {"test/metric": 0.4}}, config)).ok is None


def test_h2_uses_ood_accuracy_and_h1_the_probe_on_sraven(tmp_path):
    config = cfg.override(HypernetworkConfig(repeats=1), {"task.name": "sraven"})
    finals = {"hyla_0": {"ood/metric": 0.6, "test/metric": 0.9, "latent_probe/ood": 0.85},
              "linear_0": {"ood/metric": 0.4, "test/metric": 0.9, "latent_probe/ood": 0.5}}
    view = _view(tmp_path / "a", finals, config)
    assert claim_h2(view).ok is True and claim_h2(view).numbers["gap"] == pytest.approx(0.2)
    assert claim_h1(view).ok is True and claim_h1(view).numbers == {"hyla": 0.85, "linear": 0.5}
    weak = {**finals, "hyla_0": {**finals["hyla_0"], "latent_probe/ood": 0.6}}
    assert claim_h1(_view(tmp_path / "b", weak, config)).ok is False
    assert claim_h1(_view(tmp_path / "c", finals, HypernetworkConfig(repeats=1))).ok is None  # fuzzy logic


def test_h3_reads_the_logged_generator_checks(tmp_path):
    config = HypernetworkConfig(repeats=1, kinds=("hyla",))
    good = generator_checks(0)
    assert claim_h3(_view(tmp_path / "a", {"hyla_0": good}, config)).ok is True
    assert claim_h3(_view(tmp_path / "b", {"hyla_0": {**good, "gen/sraven_ood": 83}}, config)).ok is False


def test_smoke_preset_end_to_end(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("REPDYN_STORE", str(tmp_path / "runs" / "repdyn.db"))
    # two workers: each arm in its own process with one thread (tiny models, no thread contention)
    argv = ["run", "hypernetwork", "--preset", "smoke", "--workers", "2", "--quiet", "--json", "--no-report"]
    assert main(argv) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["status"] == "finished"
    claims = {c["name"]: c for c in summary["claims"]}
    assert claims["H3"]["ok"] is True and claims["H1"]["ok"] is None
    assert set(summary["final"]) >= {"hyla_0/test/metric", "linear_0/ood/metric"}


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0])
def test_default_preset_reproduces_h2_and_h3(tmp_path, monkeypatch, capsys, seed):
    monkeypatch.setenv("REPDYN_STORE", str(tmp_path / "runs" / "repdyn.db"))
    assert main(["run", "hypernetwork", "--seed", str(seed), "--workers", "2", "--quiet", "--json",
                 "--no-report"]) == 0
    claims = {c["name"]: c for c in json.loads(capsys.readouterr().out.strip().splitlines()[-1])["claims"]}
    for name in ("H2", "H3"):
        assert claims[name]["ok"] is True, claims[name]["summary"]
