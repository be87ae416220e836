"""The cocycles study: the exact Bellman-Ford layer against scipy, claim logic on hand-made
stores, the smoke preset end to end, interruption and resume, and the default preset (slow)."""

import json

import numpy as np
import pytest
import torch

from repdyn.bench.store import RunStore
from repdyn.bench.view import RunView, differing_series, recorded_view
from repdyn.cli import main
from repdyn.methods.nar_training import ood_test_feedback, validation_feedback
from repdyn.models.nar import NAR, NARBatch, nb_dims_of
from repdyn.nn.cocycle import AggregationInvariantLayer, CocycleLayer, MaxShifted, run_asynchronous, run_synchronous
from repdyn.studies import cocycles
from repdyn.studies.cocycles import (
    UNREACHED,
    CocyclesConfig,
    claim_invariance,
    claim_parity,
    exact_inputs,
    exact_layer,
    l3_layer,
    unroll_gap,
)
from repdyn.tasks.clrs.specs import SPECS

scipy_graph = pytest.importorskip("scipy.sparse.csgraph")


# ---------------------------------------------------------------- the exact layer


@pytest.mark.parametrize("algorithm", ["bfs", "bellman_ford"])
def test_exact_layer_computes_shortest_paths_synchronously_and_asynchronously(algorithm):
    """On CLRS-30 test graphs (n = 64) the hand-set tropical layer ends at -distance from the
    source (scipy's Dijkstra as the reference), under every schedule, with fewer messages."""
    feedback = ood_test_feedback(algorithm, 3)
    batch = NARBatch.from_feedback(feedback, SPECS[algorithm], dtype=torch.float64)
    args, truth = exact_inputs(batch, algorithm)
    adj, weights = batch.inputs["adj"].numpy(), batch.inputs["A"].numpy()
    for g in range(batch.size):
        w = np.where(adj[g] > 0, weights[g] if algorithm == "bellman_ford" else 1.0, 0.0)
        np.fill_diagonal(w, 0.0)
        source = int(batch.inputs["s"][g].argmax())
        ref = scipy_graph.dijkstra(w, indices=source)
        assert np.allclose(truth[g].numpy(), ref, rtol=0, atol=1e-9)
    expected = torch.where(torch.isinf(truth), UNREACHED, -truth)
    layer = exact_layer()
    sync = run_synchronous(layer, *args)
    assert sync.converged and sync.steps >= 3
    assert torch.allclose(sync.hidden[..., 0], expected, rtol=0, atol=1e-9)
    for seed in range(3):
        run = run_asynchronous(layer, *args, seed=seed)
        assert run.converged and torch.allclose(run.hidden, sync.hidden, rtol=0, atol=1e-9)
        assert (run.messages < sync.messages).all()


@pytest.mark.parametrize("shift", [True, False])
def test_unroll_gap_is_zero_for_l3_and_not_for_a_non_invariant_layer(shift):
    """The NAR-level check delivers every step's messages in random groups: exact for the L3
    layer, visibly different for L1 (ReLU update) in its place - with and without the shift."""
    feedback = validation_feedback("bfs", 4, length=8)
    batch = NARBatch.from_feedback(feedback, SPECS["bfs"])
    gaps = {}
    for name, layer in (("l3", CocycleLayer(8)), ("l1", AggregationInvariantLayer(8))):
        torch.manual_seed(0)
        model = NAR(SPECS["bfs"], nb_dims_of(feedback), 8, MaxShifted(layer) if shift else layer)
        gaps[name] = unroll_gap(model, batch, schedules=3, delivery_prob=0.5)
        assert l3_layer(model) is layer  # the layer is back in place afterwards
    assert gaps["l3"] <= 1e-6 and gaps["l1"] > 1e-3, gaps


# ---------------------------------------------------------------- claim logic


def _rows(gap=0.0, converged=True, schedules=2, messages=(30, 20, 15)):
    rows = []
    for name, count, runs in zip(cocycles.EXECUTORS, messages, (1, 1, schedules), strict=True):
        for s in range(runs):
            rows.append(
                {
                    "graph": 0,
                    "executor": name,
                    "schedule": s,
                    "edges": 5,
                    "messages": count,
                    "steps": 3,
                    "converged": converged,
                    "gap": gap if name == "async" else 0.0,
                    "below_ceiling": 0.5,
                }
            )
    return rows


def _view(tmp_path, arms: dict[str, dict]):
    config = CocyclesConfig(algorithms=("bfs",))
    rows = {name: [(300, k, v) for k, v in content.get("series", {}).items()] for name, content in arms.items()}
    tables = {name: content.get("tables", {}) for name, content in arms.items()}
    return recorded_view(RunStore(tmp_path / "s.db"), "cocycles", config, dict.fromkeys(arms, config), rows,
                         run_id="c-1", tables=tables)


def _cocycle_arm(unroll=0.0, error=0.0, trained=None, exact=None):
    return {
        "series": {"unroll_gap": unroll, "exact_error": error, "ood_score": 0.9},
        "tables": {"executions": trained or _rows(), "exact_executions": exact or _rows()},
    }


def test_invariance_claim_needs_every_gap_below_1e_6_and_convergence(tmp_path):
    good = claim_invariance(_view(tmp_path / "a", {"bfs-cocycle": _cocycle_arm()}))
    assert good.ok is True and good.numbers["bfs_exact_messages_async"] == 15
    assert "2 async schedules" in good.summary
    bad = {
        "unroll": _cocycle_arm(unroll=2e-6),
        "error": _cocycle_arm(error=1e-3),
        "trained": _cocycle_arm(trained=_rows(gap=1e-5)),
        "exact": _cocycle_arm(exact=_rows(converged=False)),
    }
    for name, arm in bad.items():
        assert claim_invariance(_view(tmp_path / name, {"bfs-cocycle": arm})).ok is False, name
    assert claim_invariance(_view(tmp_path / "none", {})).ok is None


def test_parity_claim_allows_ten_points(tmp_path):
    def run(ours, base, name):
        return claim_parity(
            _view(
                tmp_path / name,
                {"bfs-cocycle": {"series": {"ood_score": ours}}, "bfs-mpnn": {"series": {"ood_score": base}}},
            )
        )

    assert run(0.85, 0.95, "a").ok is True
    verdict = run(0.84, 0.95, "b")
    assert verdict.ok is False and verdict.numbers["bfs_cocycle"] == pytest.approx(84.0)
    assert claim_parity(_view(tmp_path / "c", {"bfs-cocycle": {"series": {"ood_score": 0.9}}})).ok is None


# ---------------------------------------------------------------- end to end


@pytest.fixture
def env(tmp_path, monkeypatch):
    monkeypatch.setenv("REPDYN_STORE", str(tmp_path / "runs" / "repdyn.db"))
    monkeypatch.setenv("REPDYN_CACHE", str(tmp_path / "cache"))
    return tmp_path


def test_smoke_preset_runs_end_to_end(env, capsys):
    assert main(["run", "cocycles", "--preset", "smoke", "--quiet", "--json", "--no-report"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["status"] == "finished"
    claims = {c["name"]: c for c in summary["claims"]}
    assert claims["C1"]["ok"] is True, claims["C1"]["summary"]
    assert claims["C2"]["ok"] is not None
    store = RunStore(env / "runs" / "repdyn.db")
    rows = store.table(f"{summary['run_id']}/bfs-cocycle", "exact_executions")
    assert {r["executor"] for r in rows} == set(cocycles.EXECUTORS)
    assert store.table(f"{summary['run_id']}/bfs-mpnn", "executions") == []


def test_an_interrupted_run_resumes_to_the_same_series(env, capsys, monkeypatch):
    import repdyn.bench.context as context

    argv = ["--preset", "smoke", "--quiet", "--json", "--no-report"]
    assert main(["run", "cocycles", *argv]) == 0
    whole = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    with context.stop_at_call(cocycles, "evaluate_model", 1, before=True):  # during the step-3 validation
        assert main(["run", "cocycles", *argv]) == 130  # the CLI's status for an interrupted run
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["status"] == "interrupted"
    run_id = f"cocycles-{int(whole['run_id'].split('-')[1]) + 1}"
    store = RunStore(env / "runs" / "repdyn.db")
    assert store.series(f"{run_id}/bfs-cocycle", "train_loss").steps.tolist() == [1, 2, 3]
    assert main(["resume", run_id, "--quiet", "--json", "--no-report"]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["status"] == "finished"
    for arm in ("bfs-cocycle", "bfs-mpnn"):
        keys = ("train_loss", "val_score", "ood_score")
        assert differing_series(store, f"{whole['run_id']}/{arm}", f"{run_id}/{arm}", keys) == [], arm
    assert store.table(f"{run_id}/bfs-cocycle", "exact_executions") == store.table(
        f"{whole['run_id']}/bfs-cocycle", "exact_executions"
    )


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_default_preset_reproduces_invariance_and_bfs_parity(env, capsys, seed):
    """C1 holds; C2's BFS half holds. Bellman-Ford's half holds on some seeds only at this CPU
    budget (the numbers are in docs/studies/cocycles.md), so C2 as a whole is only required to
    be judged."""
    assert main(["run", "cocycles", "--seed", str(seed), "--workers", "2", "--quiet", "--json", "--no-report"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    claims = {c["name"]: c for c in summary["claims"]}
    assert claims["C1"]["ok"] is True, claims["C1"]["summary"]
    assert claims["C2"]["ok"] is not None
    store = RunStore(env / "runs" / "repdyn.db")
    parity = claim_parity(RunView(store, store.get_run(summary["run_id"]), CocyclesConfig)).numbers
    assert parity["bfs_cocycle"] >= parity["bfs_mpnn"] - cocycles.PARITY_POINTS, parity
