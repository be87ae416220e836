"""The transnar study: data helpers against hand-derived values, claim logic on hand-made series,
greedy decoding against one-at-a-time decoding, the smoke preset end to end, resume, and the
default preset's reproduction (slow)."""

import json

import numpy as np
import pytest
import torch

from repdyn.bench import config as cfg
from repdyn.bench.store import RunStore
from repdyn.bench.view import differing_series, recorded_view
from repdyn.cli import main
from repdyn.methods.nar_training import TrainStream, build_model
from repdyn.models.nar import nb_dims_of
from repdyn.models.transnar import freeze
from repdyn.studies import transnar as study
from repdyn.tasks.clrs import to_feedback
from repdyn.tasks.clrs_text import CharTokenizer


def test_item_index_counts_list_items_inside_lists_only():
    tok = CharTokenizer()
    text = "bfs:\ns: 0, A: [[1 0], [0 1]]\npi:\n[0 10 2]\n\n"
    index = study.item_index(torch.tensor([tok.encode(text)]), tok)[0].tolist()
    answer = text.rindex("[")
    # `[`, `0`, ` `, `1`, `0`, ` `, `2`, `]` then the two newlines, outside every list
    assert index[answer:] == [0, 0, 1, 1, 1, 2, 2, 2, -1, -1]
    row = text.index("[[")
    assert index[:row] == [-1] * row  # `bfs:`, `s: 0, A: ` are outside every list
    # `[[1 0], [0 1]]`: each row counts its own columns; `, ` between the rows stays in the outer list
    assert index[row : row + 14] == [0, 0, 0, 1, 1, 1, 1, 2, 0, 0, 1, 1, 1, 1]
    assert index[row + 14 : answer] == [-1] * len("\npi:\n")


def test_the_phase_two_learning_rate_warms_up_then_decays_to_a_tenth():
    config = cfg.override(study.TransNARStudyConfig(), {"lm_steps": 100, "warmup_steps": 10, "lr": 1e-3})
    rates = [study.lm_learning_rate(config, step) for step in range(100)]
    np.testing.assert_allclose(rates[:10], [1e-4 * (k + 1) for k in range(10)])
    assert all(a >= b for a, b in zip(rates[9:], rates[10:], strict=False))  # then never rises
    np.testing.assert_allclose(rates[55], 1e-3 * (0.1 + 0.9 * 0.5 * (1 + np.cos(np.pi * 45 / 90))))
    np.testing.assert_allclose(study.lm_learning_rate(config, 100), 1e-4)
    constant = cfg.override(study.TransNARStudyConfig(), {"lr_schedule": "constant", "lr": 1e-3})
    assert {study.lm_learning_rate(constant, step) for step in (0, 500, 999)} == {1e-3}


def test_random_positions_are_sorted_distinct_and_in_range():
    g = torch.Generator().manual_seed(0)
    pos = study.random_positions(3, 50, 64, g)
    assert pos.shape == (3, 50) and int(pos.max()) < 64 and int(pos.min()) >= 0
    assert bool((pos[:, 1:] > pos[:, :-1]).all())


def test_a_sized_set_holds_the_same_instances_as_text_and_as_graphs():
    data = study.make_set("bfs", 5, 3, seed=7)
    tok = CharTokenizer()
    for b in range(3):
        source = int(np.flatnonzero(data.graphs.inputs["s"][b])[0])
        assert data.questions[b].startswith(f"bfs:\ns: {source}, A: [[")
        pi = " ".join(str(int(v)) for v in data.graphs.outputs["pi"][b])
        assert data.answers[b] == f"[{pi}]\n\n"
        ids = tok.encode(data.questions[b] + data.answers[b], bos=True, eos=True)
        assert data.tokens[b, : len(ids)].tolist() == ids
        assert int(data.answer_mask[b].sum()) == len(data.answers[b]) + 1


class _Echo:
    """A stand-in arm whose logits are a fixed function of (prefix length, last token)."""

    tokenizer = CharTokenizer()

    def __init__(self):
        self.model = torch.nn.Identity()

    def memory(self, data, index):
        return None

    def logits(self, tokens, positions, memory):
        t = self.tokenizer
        digits = [t.encode(c)[0] for c in "0123"] + [t.encode(" ")[0], t.encode("\n")[0]]
        length = torch.arange(tokens.shape[1]).expand_as(tokens)
        choice = torch.tensor(digits)[(length + tokens) % len(digits)]
        return torch.nn.functional.one_hot(choice, t.vocab_size).float()


def test_batched_greedy_decoding_equals_decoding_each_question_alone():
    data = study.make_set("bfs", 6, 4, seed=2)  # questions of different lengths (s may differ)
    arm, g = _Echo(), torch.Generator()
    together = study.greedy_answers(arm, data, 2048, g.manual_seed(0))
    for b in range(4):
        alone = study.SizedSet(
            data.graphs.select(np.array([b])),
            data.tokens[b : b + 1],
            data.answer_mask[b : b + 1],
            data.questions[b : b + 1],
            data.answers[b : b + 1],
        )
        assert study.greedy_answers(arm, alone, 2048, g.manual_seed(0)) == [together[b]]
    assert all(len(a) <= 4 * 6 + 8 for a in together) and any("\n\n" in a for a in together)


def test_phase_two_steps_train_the_lm_and_cross_attention_but_leave_the_frozen_nar_bit_identical():
    config = cfg.override(study.TransNARStudyConfig(), study.STUDY.presets["smoke"])
    sets = [study.make_set("bfs", n, 8, seed=n) for n in config.train_sizes]
    stream = TrainStream("bfs", 0, 4)
    nar = build_model(config.nar, stream.spec, nb_dims_of(to_feedback(sets[0].graphs)))
    freeze(nar)
    before = {k: v.clone() for k, v in nar.state_dict().items()}
    arm = study.Arm(config, 0, nar, stream.spec)
    lm_before = {k: v.clone() for k, v in arm.lm.state_dict().items()}
    trainable = [p for p in arm.model.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(trainable, lr=1e-2)
    for _ in range(2):
        study._lm_step(arm, optimizer, trainable, sets, config, torch.Generator().manual_seed(0))
    assert all(p.grad is None for p in nar.parameters()) and not nar.training
    assert all(torch.equal(before[k], v) for k, v in nar.state_dict().items())
    assert any(not torch.equal(lm_before[k], v) for k, v in arm.lm.state_dict().items())
    assert all(abs(v) > 0 for v in arm.model.gates().values())  # the gates opened


def _view(tmp_path, scores: dict[str, dict[str, float]]):
    config = study.TransNARStudyConfig()
    rows = {arm: [(100, k, v) for k, v in values.items()] for arm, values in scores.items()}
    return recorded_view(RunStore(tmp_path / "s.db"), "transnar", config, study.arms(config), rows)


def _scores(clrs: dict[int, float], shape: dict[int, float]) -> dict[str, float]:
    return {**{f"clrs/{n}": v for n, v in clrs.items()}, **{f"shape/{n}": v for n, v in shape.items()}}


def test_claims_read_the_ood_sizes_only(tmp_path):
    text = _scores({8: 0.9, 10: 0.5, 12: 0.3}, {8: 1.0, 10: 0.6, 12: 0.2})
    good = _scores({8: 0.2, 10: 0.6, 12: 0.45}, {8: 1.0, 10: 0.95, 12: 0.9})  # ID worse: not judged
    verdict = study.claim_ood_gain(_view(tmp_path / "a", {"text": text, "transnar": good}))
    assert verdict.ok is True and verdict.numbers["gain"] == pytest.approx(12.5)
    assert study.claim_ood_shape(_view(tmp_path / "b", {"text": text, "transnar": good})).ok is True
    short = _scores({8: 1.0, 10: 0.55, 12: 0.4}, {8: 1.0, 10: 0.95, 12: 0.89})
    assert study.claim_ood_gain(_view(tmp_path / "c", {"text": text, "transnar": short})).ok is False
    assert study.claim_ood_shape(_view(tmp_path / "d", {"transnar": short})).ok is False
    assert study.claim_ood_gain(_view(tmp_path / "e", {"transnar": good})).ok is None
    assert study.claim_id_gain(_view(tmp_path / "f", {"text": text, "transnar": good})).ok is False  # 20 < 90
    assert study.claim_id_gain(_view(tmp_path / "g", {"text": text, "transnar": short})).ok is True


def test_bad_settings_are_config_errors():
    from repdyn.bench.errors import ConfigError

    with pytest.raises(ConfigError, match="arms"):
        study.TransNARStudyConfig(arms=("text", "nar")).validate()
    with pytest.raises(ConfigError, match="nar.algorithm"):
        study.TransNARStudyConfig(algorithm="dfs").validate()


@pytest.fixture
def env(tmp_path, monkeypatch):
    monkeypatch.setenv("REPDYN_STORE", str(tmp_path / "runs" / "repdyn.db"))
    monkeypatch.setenv("REPDYN_CACHE", str(tmp_path / "cache"))
    return tmp_path


SMOKE = ["--preset", "smoke", "--quiet", "--json", "--no-report"]


def test_smoke_preset_runs_both_arms_and_scores_every_size(env, capsys):
    assert main(["run", "transnar", *SMOKE]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["status"] == "finished"
    final = summary["final"]
    for arm in ("text", "transnar"):
        for n in (5, 6):
            assert {f"{arm}/{k}/{n}" for k in ("shape", "parse", "clrs")} <= set(final)
            assert final[f"{arm}/clrs/{n}"] <= final[f"{arm}/shape/{n}"] <= final[f"{arm}/parse/{n}"]
    assert "transnar/nar_loss" in final and "text/nar_loss" not in final
    assert [c["name"] for c in summary["claims"]] == ["T1", "T2", "T3"]
    store = RunStore(env / "runs" / "repdyn.db")
    rows = store.table(f"{summary['run_id']}/transnar", "scores")
    assert [r["size"] for r in rows] == [5, 6] and [r["ood"] for r in rows] == [False, True]


def test_an_interrupted_run_resumes_to_the_same_series(env, capsys, monkeypatch):
    import repdyn.bench.context as context

    argv = [*SMOKE, "--set", "arms=transnar"]
    assert main(["run", "transnar", *argv]) == 0
    whole = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    with context.stop_at_call(study, "_lm_step", 2):  # a signal arrives in phase 2, after its second step
        assert main(["run", "transnar", *argv]) == 130
    run_id = f"transnar-{int(whole['run_id'].split('-')[1]) + 1}"
    assert main(["resume", run_id, "--quiet", "--json", "--no-report"]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["status"] == "finished"
    store = RunStore(env / "runs" / "repdyn.db")
    keys = ("nar_loss", "train_loss", "clrs/5", "shape/6")
    assert differing_series(store, f"{whole['run_id']}/transnar", f"{run_id}/transnar", keys) == []


def _default_claims(seed: int, capsys) -> dict:
    assert main(["run", "transnar", "--seed", str(seed), "--workers", "2", "--quiet", "--json", "--no-report"]) == 0
    return {c["name"]: c for c in json.loads(capsys.readouterr().out.strip().splitlines()[-1])["claims"]}


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_default_preset_reproduces_every_claim(env, capsys, seed):
    claims = _default_claims(seed, capsys)
    for name in ("T1", "T2", "T3"):
        assert claims[name]["ok"] is True, claims[name]["summary"]
