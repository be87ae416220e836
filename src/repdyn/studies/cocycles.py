"""Asynchronous algorithmic alignment with cocycles (Dudzik et al. 2023): invariance, accuracy, messages.

For each algorithm (BFS, Bellman-Ford) two NARs are trained with the same recipe and budget
(clrs.md §2.3: mixed sizes n <= 16, Adam, best-validation weights): one whose processor is the
asynchrony-invariant L3 `CocycleLayer` (log-semiring messages, max aggregation, max update) and a
max-MPNN baseline (CLRS's `mpnn`). Each is tested out of distribution on the CLRS-30 test split
(n = 64). The L3 NAR shifts each graph's states to a maximum of 0 between steps (`shift`,
`nn.cocycle.MaxShifted`): max-update states only grow, and at n = 64 the decoders would read
states far outside their training range. Its decoders read the states LayerNormed
(`readout_norm`), as the max-MPNN's decoders read its LayerNormed output. On the first
`exec_samples` OOD graphs, synchronous and asynchronous execution are then compared (claim C1):

- the trained L3 layer inside the whole NAR unroll, every processor step's messages delivered
  in random groups (the follow-up's partitioned-execution check, cocycles.md §3);
- the trained L3 layer run to its fixed point from the step-0 features, with messages capped at
  the largest state it outputs in the NAR's own unroll (`nn.cocycle.CappedLayer`; uncapped, its
  states roughly double every step and overflow);
- an exact Bellman-Ford layer (an L3 tropical layer with hand-set weights, m_uv = h_u - w_uv)
  run to its fixed point, which must also equal the true shortest distances;

each synchronously (every edge every step), synchronously sending only from nodes that changed,
and asynchronously (random subsets of in-flight messages per micro-step, nodes sending only when
their state changed) under `schedules` schedules; the messages each sends are recorded.

    repdyn run cocycles

Facts: cocycles.md §2-§5, clrs.md §2.3, §6.4.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import torch
from torch import Tensor

from repdyn.bench.checkpoint import list_checkpoints, load_checkpoint, save_checkpoint
from repdyn.bench.claims import Claim, Verdict, not_run
from repdyn.bench.config import param
from repdyn.bench.context import RunContext
from repdyn.bench.study import Figure, Study
from repdyn.bench.view import RunView
from repdyn.methods.nar_training import TrainStream, evaluate_model, ood_test_feedback, validation_feedback
from repdyn.models.nar import NAR, NARBatch, nb_dims_of
from repdyn.nn.cocycle import (
    CappedLayer,
    CocycleLayer,
    MaxShifted,
    run_asynchronous,
    run_synchronous,
    step_with_random_delivery,
)

ALGORITHMS = ("bfs", "bellman_ford")  # cocycles.md §5: the E7 checks' tasks
PROCESSORS = ("cocycle", "mpnn")  # the L3 layer and the max-MPNN baseline (clrs.md §6.4)
INVARIANCE_TOL = 1e-6  # cocycles.md §5 E7: final states equal to <= 1e-6
PARITY_POINTS = 10.0  # cocycles.md §5 E7: OOD accuracy within 10 points of the max-MPNN
EXECUTORS = ("sync", "sync_on_change", "async")


@dataclass(frozen=True)
class CocyclesConfig:
    """L3 cocycle NAR vs max-MPNN NAR per algorithm, then sync vs async execution of the L3 layer."""

    algorithms: tuple[str, ...] = param(ALGORITHMS, choices=ALGORITHMS, help="algorithms to train on")
    hidden: int = param(32, min=1, help="width H of both NARs (128 in CLRS; 32 fits a CPU budget)")
    train_steps: int = param(400, min=1, help="optimizer steps, the same for both processors")
    batch_size: int = param(32, min=1)
    learning_rate: float = param(1e-3, min=0.0)
    grad_clip: float = param(1.0, min=0.0, help="global-norm clip (0 = off)")
    shift: bool = param(True, help="subtract each graph's largest state between NAR steps (nn.cocycle.MaxShifted)")
    readout_norm: bool = param(
        True, help="LayerNorm the L3 states the decoders read (models.nar; the state passed on is untouched)"
    )
    semiring: str = param(
        "log", choices=("tropical", "log"), help="the L3 layer's semiring (log: dense gradients, a matrix product)"
    )
    tau: float = param(1.0, min=1e-6, help="log-semiring temperature")
    eval_every: int = param(50, min=1, help="validate (n = 16) every N steps; the best weights are tested")
    val_samples: int = param(32, min=1, help="validation graphs at n = 16")
    test_samples: int = param(32, min=0, help="first N graphs of the CLRS-30 test split (n = 64; 0 = all)")
    exec_samples: int = param(8, min=1, help="OOD graphs the L3 layer is executed on")
    schedules: int = param(10, min=1, help="random asynchronous schedules per check (cocycles.md §5: 10)")
    delivery_prob: float = param(0.5, min=1e-3, max=1.0, help="chance an in-flight message is delivered per micro-step")
    ceiling: float = param(
        0.0, min=0.0, help="message cap when running to the fixed point (0 = the largest state of the NAR's own unroll)"
    )
    max_steps: int = param(500, min=1, help="cap on synchronous steps to the fixed point")
    checkpoint_every: int = param(100, min=0, help="checkpoint every N steps (0 = only at the end and on signals)")
    algorithm: str = param("bfs", choices=ALGORITHMS, help="set per arm by the study")
    processor: str = param("cocycle", choices=PROCESSORS, help="set per arm by the study")


def arms(config: CocyclesConfig) -> dict[str, CocyclesConfig]:
    """<algorithm>-<processor> for every algorithm and both processors."""
    return {f"{a}-{p}": replace(config, algorithm=a, processor=p) for a in config.algorithms for p in PROCESSORS}


def build_model(cfg: CocyclesConfig, spec: dict, nb_dims: dict[str, int]) -> NAR:
    """The arm's NAR: the L3 cocycle processor (no LayerNorm inside: it would break invariance;
    `readout_norm` puts it on the decoders' side, where CLRS's MPNN has its own) or CLRS's
    max-MPNN."""
    if cfg.processor == "cocycle":
        layer = CocycleLayer(cfg.hidden, cfg.semiring, cfg.tau)
        processor = MaxShifted(layer) if cfg.shift else layer
        return NAR(spec, nb_dims, cfg.hidden, processor, readout_norm=cfg.readout_norm)
    return NAR(spec, nb_dims, cfg.hidden, "mpnn", aggregation="max")


def l3_layer(model: NAR) -> CocycleLayer:
    """The cocycle NAR's L3 layer (inside `MaxShifted` when shifted)."""
    return getattr(model.processor, "layer", model.processor)


def train(ctx: RunContext) -> None:
    """Train one NAR, keep the best-validation weights, test them OOD; for the cocycle arm also
    execute its processor synchronously and asynchronously on OOD graphs."""
    cfg: CocyclesConfig = ctx.config
    torch.set_num_threads(1)
    stream = TrainStream(cfg.algorithm, ctx.seed, cfg.batch_size)
    val = validation_feedback(cfg.algorithm, cfg.val_samples)
    test = ood_test_feedback(cfg.algorithm, cfg.test_samples)
    torch.manual_seed(ctx.seed)
    model = build_model(cfg, stream.spec, nb_dims_of(val)).to(ctx.device)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.learning_rate)
    progress: dict[str, Any] = {"best_val": -1.0, "best_step": -1, "cpu_s": 0.0}
    state = {"model": model, "optimizer": optimizer, "progress": progress}
    best_dir = ctx.dir / "best"
    start = ctx.restore(state)
    stream.skip(start)
    ctx.begin(total=cfg.train_steps, done=start)
    clock = time.process_time()
    for step in range(start, cfg.train_steps):
        batch = NARBatch.from_feedback(next(stream), stream.spec, ctx.device)
        model.train()
        loss, _ = model.loss(model(batch, train=True), batch)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.grad_clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        optimizer.step()
        done = step + 1
        ctx.log(done, train_loss=loss.item())
        if done % cfg.eval_every == 0 or done == cfg.train_steps:
            score = evaluate_model(model, val)["score"]
            ctx.log(done, val_score=score)
            if score > progress["best_val"]:
                progress["best_val"], progress["best_step"] = score, done
                save_checkpoint(best_dir, done, {"model": model}, keep=1)
        now = time.process_time()
        progress["cpu_s"] += now - clock
        clock = now
        ctx.tick(done, state)
    load_checkpoint(list_checkpoints(best_dir)[-1], {"model": model}, restore_rng=False)
    ctx.log(
        cfg.train_steps,
        ood_score=evaluate_model(model, test)["score"],
        best_step=progress["best_step"],
        best_val_score=progress["best_val"],
        train_cpu_s=progress["cpu_s"],
        parameters=sum(p.numel() for p in model.parameters()),
    )
    if cfg.processor == "cocycle":
        batch = NARBatch.from_feedback(test, stream.spec, ctx.device).select(slice(0, cfg.exec_samples))
        ctx.log(cfg.train_steps, unroll_gap=unroll_gap(model, batch, cfg.schedules, cfg.delivery_prob))
        ctx.log_table("executions", fixed_point_executions(model, batch, cfg))
        rows, error = exact_executions(batch, cfg.algorithm, cfg)
        ctx.log_table("exact_executions", rows)
        ctx.log(cfg.train_steps, exact_error=error)
        ctx.flush()


@torch.no_grad()
def unroll_gap(model: NAR, batch: NARBatch, schedules: int, delivery_prob: float) -> float:
    """Largest |difference| of the final node states and output logits between the NAR's
    synchronous unroll and unrolls whose every processor step delivers its messages in random
    groups (`step_with_random_delivery`), over `schedules` schedules."""
    model.eval()
    holder, slot = (model.processor, "layer") if isinstance(model.processor, MaxShifted) else (model, "processor")
    layer = l3_layer(model)

    def final(out) -> Tensor:
        return torch.cat([out.embeddings[-1][0].flatten()] + [v.flatten() for v in out.outputs.values()])

    reference = final(model(batch, return_embeddings=True))
    gap = 0.0
    try:
        for schedule in range(schedules):
            setattr(holder, slot, _RandomDelivery(layer, schedule, delivery_prob))
            gap = max(gap, (final(model(batch, return_embeddings=True)) - reference).abs().max().item())
    finally:
        setattr(holder, slot, layer)
    return gap


class _RandomDelivery(torch.nn.Module):
    """A processor step whose messages arrive in random groups; each call draws a new schedule."""

    returns_edges = False

    def __init__(self, layer: CocycleLayer, seed: int, delivery_prob: float) -> None:
        super().__init__()
        self.layer, self.seed, self.delivery_prob, self.calls = layer, seed, delivery_prob, 0

    def forward(self, node_fts, edge_fts, graph_fts, adj, hidden):
        self.calls += 1
        seed = 1_000_003 * self.seed + self.calls
        return step_with_random_delivery(
            self.layer, node_fts, edge_fts, graph_fts, adj, hidden, seed, self.delivery_prob
        ), None


@torch.no_grad()
def step0_inputs(model: NAR, batch: NARBatch) -> tuple[Tensor, ...]:
    """The processor's arguments at the first step of the unroll (inputs and the first hint
    encoded), captured with a forward pre-hook."""
    captured: list[tuple[Tensor, ...]] = []
    handle = model.processor.register_forward_pre_hook(lambda module, args: captured.append(args))
    try:
        model.eval()
        model(batch)
    finally:
        handle.remove()
    return captured[0]


def fixed_point_executions(model: NAR, batch: NARBatch, cfg: CocyclesConfig) -> list[dict[str, Any]]:
    """Run the trained, capped L3 layer from the step-0 features to its fixed point (see
    `compare_executions`)."""
    node_fts, edge_fts, graph_fts, adj, hidden = step0_inputs(model, batch)
    ceiling = cfg.ceiling or unroll_ceiling(model, batch)
    layer = CappedLayer(l3_layer(model), ceiling)
    rows = compare_executions(layer, (node_fts, edge_fts, graph_fts, adj, hidden), cfg)
    return [r | {"ceiling": ceiling} for r in rows]


def compare_executions(
    layer: CappedLayer | CocycleLayer, args: tuple[Tensor, ...], cfg: CocyclesConfig
) -> list[dict[str, Any]]:
    """Run a layer to its fixed point synchronously, synchronously sending only on change, and
    asynchronously under `cfg.schedules` schedules. One row per graph and execution: messages,
    steps, convergence, the largest state gap to synchronous, and the share of state
    coordinates below `layer.ceiling` (1 without a cap) at the synchronous fixed point."""
    sync = run_synchronous(layer, *args, max_steps=cfg.max_steps)
    runs = {
        "sync": [sync],
        "sync_on_change": [run_synchronous(layer, *args, max_steps=cfg.max_steps, send_only_when_changed=True)],
        "async": [
            run_asynchronous(layer, *args, seed=s, delivery_prob=cfg.delivery_prob) for s in range(cfg.schedules)
        ],
    }
    edges = (args[3] > 0).sum(dim=(1, 2))
    ceiling = getattr(layer, "ceiling", float("inf"))
    below = (sync.hidden < ceiling).flatten(1).float().mean(dim=1)
    rows = []
    for name, executions in runs.items():
        for schedule, ex in enumerate(executions):
            gaps = (ex.hidden - sync.hidden).abs().flatten(1).amax(dim=1)
            for g in range(len(edges)):
                rows.append(
                    {
                        "graph": g,
                        "executor": name,
                        "schedule": schedule,
                        "edges": int(edges[g]),
                        "messages": int(ex.messages[g]),
                        "steps": ex.steps,
                        "converged": ex.converged and sync.converged,
                        "gap": float(gaps[g]),
                        "below_ceiling": float(below[g]),
                    }
                )
    return rows


UNREACHED = -1e4  # the exact layer's initial state away from the source (below any path length)


def exact_layer() -> CocycleLayer:
    """A tropical L3 layer with hand-set weights that *is* Bellman-Ford: H = 1, node feature 0,
    edge feature -w_uv, so m_uv = h_u - w_uv and h_v' = max(h_v, max_u m_uv) = -(shortest
    distance) from h0 = 0 at the source, UNREACHED elsewhere (cocycles.md §2: a semiring-linear
    message)."""
    far = -1e9  # a weight that never wins a max
    layer = CocycleLayer(1, node_size=1, edge_size=1, graph_size=1).double()
    m1, m2, m_e, m_g = layer.maps
    with torch.no_grad():
        m1.weight.copy_(torch.tensor([[0.0, far]]))  # receiver term max(x_v, far + h_v) = 0
        m2.weight.copy_(torch.tensor([[far, 0.0]]))  # sender term h_u
        m_e.weight.zero_()
        m_g.weight.zero_()
    return layer


def exact_inputs(batch: NARBatch, algorithm: str) -> tuple[tuple[Tensor, ...], Tensor]:
    """The exact layer's arguments on CLRS graphs (BFS: unit weights) and, by Floyd-Warshall,
    the true shortest distances from the source (inf when unreachable)."""
    adj = batch.inputs["adj"].double()
    weights = batch.inputs["A"].double() if algorithm == "bellman_ford" else torch.ones_like(adj)
    weights = torch.where(adj > 0, weights, torch.full_like(adj, float("inf")))
    b, n = adj.shape[:2]
    source = batch.inputs["s"].double()
    dist = weights.clone()
    dist.diagonal(dim1=1, dim2=2).zero_()
    for k in range(n):
        dist = torch.minimum(dist, dist[:, :, k : k + 1] + dist[:, k : k + 1, :])
    truth = (source[:, :, None] * torch.nan_to_num(dist, posinf=0.0)).sum(dim=1)
    truth = torch.where(torch.isinf(dist).logical_and(source[:, :, None] > 0).any(dim=1), float("inf"), truth)
    hidden = torch.where(source > 0, 0.0, UNREACHED)[..., None]
    zeros = adj.new_zeros
    args = (zeros(b, n, 1), -torch.where(adj > 0, weights, 0.0)[..., None], zeros(b, 1), adj, hidden)
    return args, truth


def exact_executions(batch: NARBatch, algorithm: str, cfg: CocyclesConfig) -> tuple[list[dict[str, Any]], float]:
    """`compare_executions` for the exact layer, and the largest |error| of its synchronous
    fixed point against the true distances (unreached nodes must stay at UNREACHED)."""
    args, truth = exact_inputs(batch, algorithm)
    layer = exact_layer().to(truth.device)
    rows = compare_executions(layer, args, cfg)
    final = run_synchronous(layer, *args, max_steps=cfg.max_steps).hidden[..., 0]
    expected = torch.where(torch.isinf(truth), UNREACHED, -truth)
    return rows, float((final - expected).abs().max())


@torch.no_grad()
def unroll_ceiling(model: NAR, batch: NARBatch) -> float:
    """The largest state the L3 layer outputs in the NAR's synchronous unroll on the batch (before
    any shift): the range of states the trained layer is used in."""
    outputs: list[float] = []
    handle = l3_layer(model).register_forward_hook(lambda module, args, out: outputs.append(float(out[0].max())))
    try:
        model.eval()
        model(batch)
    finally:
        handle.remove()
    return max(outputs)


# ---- claims -----------------------------------------------------------------------------------


def _cocycle_arms(run: RunView) -> dict[str, Any]:
    return {a: run.arm(f"{a}-cocycle") for a in run.config.algorithms}


def _execution_summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Largest gap, convergence, schedules, sync steps, share below the cap, messages per executor."""
    sync = [r for r in rows if r["executor"] == "sync"]
    return {
        "gap": max(r["gap"] for r in rows),
        "converged": all(r["converged"] for r in rows),
        "schedules": 1 + max(r["schedule"] for r in rows if r["executor"] == "async"),
        "graphs": len(sync),
        "steps": sync[0]["steps"],
        "below": float(np.mean([r["below_ceiling"] for r in sync])),
        "messages": {ex: float(np.mean([r["messages"] for r in rows if r["executor"] == ex])) for ex in EXECUTORS},
    }


def claim_invariance(run: RunView) -> Verdict:
    """Sync and async final states agree to 1e-6 (cocycles.md §5 E7), for the trained L3 layer
    (inside the NAR unroll, and run to its capped fixed point) and for the exact Bellman-Ford
    layer, which must also end at the true distances."""
    arms_ = _cocycle_arms(run)
    if any(arm is None or not arm.has("exact_error") for arm in arms_.values()):
        return not_run("a cocycle arm did not finish")
    parts, numbers, ok = [], {}, True
    for algorithm, arm in arms_.items():
        trained, exact = (_execution_summary(arm.table(t)) for t in ("executions", "exact_executions"))
        unroll, error = arm.series("unroll_gap").last, arm.series("exact_error").last
        ok &= trained["converged"] and exact["converged"]
        ok &= max(trained["gap"], exact["gap"], unroll, error) <= INVARIANCE_TOL
        numbers |= {
            f"{algorithm}_unroll_gap": unroll,
            f"{algorithm}_trained_gap": trained["gap"],
            f"{algorithm}_exact_gap": exact["gap"],
            f"{algorithm}_exact_error": error,
            f"{algorithm}_trained_below_cap": trained["below"],
        }
        numbers |= {f"{algorithm}_exact_messages_{k}": v for k, v in exact["messages"].items()}
        parts.append(
            f"{algorithm} ({exact['graphs']} OOD graphs, {exact['schedules']} async schedules): NAR unroll "
            f"gap {unroll:.1e}; trained layer to its fixed point gap {trained['gap']:.1e} "
            f"({'all' if trained['converged'] else 'NOT all'} converged, sync {trained['steps']} steps, "
            f"{100 * trained['below']:.0f}% of coordinates below the cap); exact Bellman-Ford layer gap "
            f"{exact['gap']:.1e}, error vs true distances {error:.1e} "
            f"({'all' if exact['converged'] else 'NOT all'} converged, sync {exact['steps']} steps)"
        )
    return Verdict(bool(ok), "; ".join(parts) + f" (all need <= {INVARIANCE_TOL:g})", numbers, figures=("messages",))


def claim_parity(run: RunView) -> Verdict:
    """The cocycle NAR's OOD score is within 10 points of the max-MPNN's (cocycles.md §5 E7).

    At the default CPU budget (400 steps, H = 32) this holds for BFS; for Bellman-Ford it holds
    on some seeds only (2 of seeds 0-4, the L3 NAR 12 points short on average,
    docs/studies/cocycles.md); the fact sheet's budget is the `paper` preset, not run here."""
    parts, numbers, ok = [], {}, True
    for algorithm in run.config.algorithms:
        arms_ = {p: run.arm(f"{algorithm}-{p}") for p in PROCESSORS}
        if any(arm is None or not arm.has("ood_score") for arm in arms_.values()):
            return not_run(f"an arm of {algorithm} did not finish")
        ours, base = (100 * arms_[p].series("ood_score").last for p in PROCESSORS)
        ok &= ours >= base - PARITY_POINTS
        numbers |= {f"{algorithm}_cocycle": ours, f"{algorithm}_mpnn": base}
        parts.append(f"{algorithm}: cocycle {ours:.1f} vs max-MPNN {base:.1f}")
    cfg = run.config
    summary = (
        f"OOD (n=64) micro-F1 after {cfg.train_steps} steps at H={cfg.hidden}: "
        + "; ".join(parts)
        + f" (needs cocycle >= max-MPNN - {PARITY_POINTS:g})"
    )
    return Verdict(bool(ok), summary, numbers, figures=("scores",))


def message_counts(run: RunView, table: str) -> dict[str, dict[str, float]]:
    """Mean messages per graph for each algorithm and executor, from a stored executions table."""
    return {
        algorithm: _execution_summary(arm.table(table))["messages"]
        for algorithm, arm in _cocycle_arms(run).items()
        if arm is not None and arm.has("exact_error")
    }


CLAIMS = (
    Claim(
        "C1",
        "Synchronous and asynchronous execution reach the same final states",
        claim_invariance,
        "cocycles.md §2-§3, §5 E7",
    ),
    Claim(
        "C2",
        "OOD accuracy within 10 points of the max-MPNN at equal budget (Bellman-Ford: some seeds at the CPU default)",
        claim_parity,
        "cocycles.md §5 E7",
    ),
)


# ---- figures ----------------------------------------------------------------------------------


def figures(run: RunView) -> list[Figure]:
    """Validation curves of all arms; messages per graph by executor."""
    out = []
    fig, axes = plt.subplots(
        1, len(run.config.algorithms), figsize=(5 * len(run.config.algorithms), 3.4), squeeze=False
    )
    for ax, algorithm in zip(axes[0], run.config.algorithms, strict=True):
        for i, p in enumerate(PROCESSORS):
            arm = run.arm(f"{algorithm}-{p}")
            if arm is None or not arm.has("val_score"):
                continue
            s = arm.series("val_score")
            ax.plot(s.steps, s.values, "-", color=f"C{i}", label=f"{p} val (n=16)")
            if arm.has("ood_score"):
                ax.scatter(
                    [s.steps[-1]],
                    [arm.series("ood_score").last],
                    marker="*",
                    s=80,
                    color=f"C{i}",
                    label=f"{p} OOD (n=64)",
                    zorder=3,
                )
        ax.set(title=algorithm, xlabel="step", ylabel="micro-F1", ylim=(0, 1.02))
        ax.legend(fontsize=7)
    fig.tight_layout()
    out.append(
        Figure(
            "scores",
            "Validation and OOD scores",
            "Validation micro-F1 over training for the "
            "cocycle (L3) and max-MPNN NARs; stars: OOD score of the best-validation weights.",
            fig,
        )
    )
    tables = {"exact_executions": "exact Bellman-Ford layer", "executions": "trained L3 layer, capped"}
    counts = {t: message_counts(run, t) for t in tables}
    if counts["executions"]:
        fig, axes = plt.subplots(1, 2, figsize=(10, 3.4))
        width = 0.8 / len(EXECUTORS)
        for ax, (table, title) in zip(axes, tables.items(), strict=True):
            x = np.arange(len(counts[table]))
            for i, ex in enumerate(EXECUTORS):
                ax.bar(x + (i - 1) * width, [c[ex] for c in counts[table].values()], width, label=ex.replace("_", " "))
            ax.set_xticks(x, list(counts[table]))
            ax.set(ylabel="messages per graph", title=title)
            ax.legend(fontsize=7)
        fig.tight_layout()
        out.append(
            Figure(
                "messages",
                "Messages sent",
                "Mean messages per OOD graph (n=64) until the fixed "
                "point: every edge every step (sync), synchronous sending only on change, and "
                "asynchronous (mean over schedules); left the exact Bellman-Ford layer, right the "
                "trained L3 layer with messages capped at its own state range.",
                fig,
            )
        )
    return out


STUDY = Study(
    name="cocycles",
    title="Asynchrony-invariant message passing (cocycles)",
    paper="Dudzik, von Glehn, Pascanu, Velickovic 2023, arXiv 2306.15632",
    summary="L3 cocycle NAR vs max-MPNN on BFS and Bellman-Ford; sync vs async execution and messages",
    config=CocyclesConfig,
    train=train,
    arms=arms,
    presets={
        "smoke": {
            "algorithms": ("bfs",),
            "hidden": 8,
            "train_steps": 6,
            "eval_every": 3,
            "val_samples": 4,
            "test_samples": 2,
            "exec_samples": 2,
            "schedules": 2,
            "checkpoint_every": 3,
        },
        "default": {},
        "paper": {
            "hidden": 128,
            "train_steps": 10_000,
            "eval_every": 50,
            "val_samples": 64,
            "test_samples": 0,
            "checkpoint_every": 1000,
        },
    },
    claims=CLAIMS,
    figures=figures,
    progress_keys=("train_loss", "val_score"),
    max_threads=1,
    wall_times={
        "smoke": "seconds",
        "default": "~1.5 min on 2 CPU cores with --workers 2 (measured: 70-86 s wall, 125-136 CPU-s)",
        "paper": "~3 h on 2 CPU cores; under an hour on one GPU (estimate, not yet run)",
    },
)
