"""Hypernetwork study: the rule verifier, generator checks, latent-code features, claim logic,
the smoke preset end to end and the default preset (slow)."""

import json

import numpy as np
import pytest
import torch
from sklearn.decomposition import PCA

from repdyn.bench import config as cfg
from repdyn.bench.store import RunStore
from repdyn.bench.view import RunView, recorded_view
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
    pca_projection,
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


def test_latent_features_are_the_blank_slots_codes_towards_the_same_feature_in_their_row():
    torch.manual_seed(0)
    task = SRaven(SRavenConfig(num_features=2, permute_features=False))
    model = Transformer(
        TransformerConfig(
            input_dim=8, output_dim=8, d_model=16, num_heads=4, num_layers=2, causal=False, attention="hyla"
        )
    )
    batch = task.sample(5, "train", torch.Generator().manual_seed(1))
    x, y = latent_features(model, task, batch)
    assert x.shape == (10, 2 * 4 * 2) and y.shape == (10,)
    codes = model.run(batch.inputs, return_latents=True).latents  # per layer [B, H, T, T]
    for b, slot in [(0, 0), (3, 1)]:
        query = 8 * 2 + slot  # panel 8 (the blank one), feature `slot`
        keys = [6 * 2 + slot, 7 * 2 + slot]  # panels 6 and 7: the same feature earlier in the last row
        expected = torch.stack([codes[layer][b, h, query, key] for layer in range(2) for h in range(4) for key in keys])
        torch.testing.assert_close(torch.from_numpy(x[2 * b + slot]), expected)
        assert y[2 * b + slot] == batch.latents[b, slot]
    with pytest.raises(ValueError, match="unpermuted"):
        latent_features(model, task, task.sample(5, "train", torch.Generator().manual_seed(1), permute=True))


def test_pca_projection_matches_sklearn_up_to_sign():
    rng = np.random.default_rng(0)
    fit = rng.normal(size=(200, 6)) * np.array([5.0, 3.0, 1.0, 0.5, 0.2, 0.1])
    points, labels = rng.normal(size=(30, 6)), rng.integers(0, 8, size=30)
    rows = pca_projection(fit, points, labels, limit=20)
    ours = np.array([[r["pc1"], r["pc2"]] for r in rows])
    reference = PCA(n_components=2).fit(fit).transform(points[:20])
    np.testing.assert_allclose(np.abs(ours), np.abs(reference), atol=1e-8)
    assert [r["rule"] for r in rows] == labels[:20].tolist()


def test_default_arms_add_unpermuted_sraven_mini_probe_arms():
    names = arms(HypernetworkConfig(repeats=2))
    assert sorted(names) == ["hyla_0", "hyla_1", "linear_0", "linear_1", "sraven_hyla_0", "sraven_hyla_1"]
    probe = names["sraven_hyla_1"]
    assert (probe.task.name, probe.task.num_features, probe.task.permute_features) == ("sraven", 2, False)
    assert probe.train.steps == probe.probe_steps and probe.repeat == 1 and probe.model.attention == "hyla"
    assert names["hyla_0"].task.name == "fuzzy_logic"
    assert all(not n.startswith("sraven_") for n in arms(cfg.override(HypernetworkConfig(), {"task.name": "sraven"})))


def _view(tmp_path, finals: dict[str, dict[str, float]], config: HypernetworkConfig) -> RunView:
    rows = {arm: [(100, name, value) for name, value in values.items()] for arm, values in finals.items()}
    return recorded_view(RunStore(tmp_path / "s.db"), "hypernetwork", config, arms(config), rows, run_id="h-1")


def test_h2_compares_mean_test_r2_of_hyla_and_linear(tmp_path):
    config = HypernetworkConfig(repeats=2)
    finals = {
        "hyla_0": {"test/metric": 0.45},
        "hyla_1": {"test/metric": 0.41},
        "linear_0": {"test/metric": 0.30},
        "linear_1": {"test/metric": 0.36},
    }
    verdict = claim_h2(_view(tmp_path / "a", finals, config))
    assert verdict.ok is True and verdict.numbers["gap"] == pytest.approx(0.10)
    close = {**finals, "linear_1": {"test/metric": 0.50}}
    assert claim_h2(_view(tmp_path / "b", close, config)).ok is False
    assert claim_h2(_view(tmp_path / "c", {"hyla_0": {"test/metric": 0.4}}, config)).ok is None


def test_h2_uses_ood_accuracy_on_sraven(tmp_path):
    config = cfg.override(HypernetworkConfig(repeats=1), {"task.name": "sraven"})
    finals = {"hyla_0": {"ood/metric": 0.6, "test/metric": 0.9}, "linear_0": {"ood/metric": 0.4, "test/metric": 0.9}}
    verdict = claim_h2(_view(tmp_path / "a", finals, config))
    assert verdict.ok is True and verdict.numbers["gap"] == pytest.approx(0.2)


def test_h1_needs_the_trained_probe_above_its_floor_and_its_untrained_control(tmp_path):
    config = HypernetworkConfig(repeats=2)
    fuzzy = {"test/metric": 0.4}
    finals = {
        "hyla_0": fuzzy,
        "sraven_hyla_0": {"latent_probe/ood": 0.36, "latent_probe_init/ood": 0.10},
        "sraven_hyla_1": {"latent_probe/ood": 0.34, "latent_probe_init/ood": 0.12},
    }
    verdict = claim_h1(_view(tmp_path / "a", finals, config))
    assert verdict.ok is True
    assert verdict.numbers["hyla"] == pytest.approx(0.35) and verdict.numbers["gain"] == pytest.approx(0.24)
    low = {
        "sraven_hyla_0": {"latent_probe/ood": 0.36, "latent_probe_init/ood": 0.02},
        "sraven_hyla_1": {"latent_probe/ood": 0.12, "latent_probe_init/ood": 0.02},
    }
    assert claim_h1(_view(tmp_path / "b", low, config)).ok is False  # mean 0.24 < 0.25 despite a 0.22 gain
    no_gain = {k: {**v, "latent_probe_init/ood": 0.30} for k, v in finals.items() if k.startswith("sraven")}
    assert claim_h1(_view(tmp_path / "c", no_gain, config)).ok is False  # code was as good before training
    assert claim_h1(_view(tmp_path / "d", {"hyla_0": fuzzy}, config)).ok is None
    sraven = cfg.override(HypernetworkConfig(repeats=1), {"task.name": "sraven"})  # the sraven preset's own arms
    own = {"hyla_0": {"latent_probe/ood": 0.5, "latent_probe_init/ood": 0.1}}
    assert claim_h1(_view(tmp_path / "e", own, sraven)).ok is True


def test_h3_reads_the_logged_generator_checks(tmp_path):
    config = HypernetworkConfig(repeats=1, kinds=("hyla",))
    good = generator_checks(0)
    assert claim_h3(_view(tmp_path / "a", {"hyla_0": good}, config)).ok is True
    assert claim_h3(_view(tmp_path / "b", {"hyla_0": {**good, "gen/sraven_ood": 83}}, config)).ok is False


def test_smoke_preset_end_to_end(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("REPDYN_STORE", str(tmp_path / "runs" / "repdyn.db"))
    argv = ["run", "hypernetwork", "--preset", "smoke", "--quiet", "--json", "--no-report"]  # one thread per arm
    assert main(argv) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["status"] == "finished"
    claims = {c["name"]: c for c in summary["claims"]}
    assert claims["H3"]["ok"] is True and claims["H1"]["ok"] is not None, claims["H1"]["summary"]
    assert set(summary["final"]) >= {
        "hyla_0/test/metric",
        "linear_0/ood/metric",
        "sraven_hyla_0/latent_probe/ood",
        "sraven_hyla_0/latent_probe_init/ood",
    }


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_default_preset_reproduces_h1_h2_and_h3(tmp_path, monkeypatch, capsys, seed):
    monkeypatch.setenv("REPDYN_STORE", str(tmp_path / "runs" / "repdyn.db"))
    assert main(["run", "hypernetwork", "--seed", str(seed), "--workers", "2", "--quiet", "--json", "--no-report"]) == 0
    claims = {c["name"]: c for c in json.loads(capsys.readouterr().out.strip().splitlines()[-1])["claims"]}
    # H1 was calibrated on seeds 0-2 (docs/studies/hypernetwork.md); H2 has been measured on seed 0 only.
    for name in ("H1", "H2", "H3") if seed == 0 else ("H1", "H3"):
        assert claims[name]["ok"] is True, claims[name]["summary"]
