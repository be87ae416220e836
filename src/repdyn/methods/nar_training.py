"""Ibarz et al.'s CLRS training recipe for one NAR (clrs.md §2.3, §7): train, select, test OOD.

On-the-fly batches of mixed sizes n in {4, 7, 11, 13, 16} with random edge probability and
random `pos` (`tasks.clrs.recipe`), Adam 1e-3 with global-norm clipping at 1, soft hint
re-prediction; validation (n = 16) every `eval_every` steps keeps the best-validation weights
(a checkpoint under the arm's folder), which are finally tested on the CLRS-30 test split
(n = 64, out of distribution). Scores are CLRS's (`tasks.clrs.evaluate`): the mean over outputs
(`score`, the papers' micro-F1), each output, and each hint.

`train_nar(ctx, cfg, seed)` runs one arm inside a study; the pieces (`TrainStream`,
`validation_feedback`, `ood_test_feedback`, `evaluate_model`, `build_model`) are reusable.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from repdyn.bench.checkpoint import list_checkpoints, load_checkpoint, save_checkpoint
from repdyn.bench.config import param
from repdyn.bench.context import RunContext
from repdyn.models.nar import NAR, NARBatch, nb_dims_of, predictions
from repdyn.nn.gnn import AGGREGATIONS, PROCESSORS
from repdyn.tasks.clrs import Batch, evaluate, evaluate_hints, load_split
from repdyn.tasks.clrs import feedback as fb
from repdyn.tasks.clrs.recipe import PRED_AS_INPUT_ALGOS, recipe_kwargs, train_iterator
from repdyn.tasks.clrs.samplers import Sampler
from repdyn.tasks.clrs.specs import CLRS_30_ALGS, FAMILIES, Stage
from repdyn.tasks.clrs.splits import CLRS30

VAL_SEED = CLRS30["val"]["seed"]  # clrs.md §2.1: the validation split's seed
VAL_LENGTH = 16  # clrs.md §2.3: validation at the largest training size


@dataclass(frozen=True)
class NARTrainConfig:
    """One NAR trained with CLRS's recipe (clrs.md §2.3, §7; run.py defaults unless noted)."""

    algorithm: str = param("bfs", choices=CLRS_30_ALGS, help="CLRS-30 algorithm")
    processor: str = param("triplet_gmpnn", choices=PROCESSORS, help="processor network")
    hidden: int = param(64, min=1, help="width H (128 in the paper; 64 fits a CPU budget)")
    train_steps: int = param(500, min=1, help="optimizer steps (10,000 in the paper)")
    batch_size: int = param(32, min=1)
    learning_rate: float = param(1e-3, min=0.0)
    grad_clip: float = param(1.0, min=0.0, help="global-norm clip (0 = off)")
    aggregation: str = param("max", choices=AGGREGATIONS, help="message aggregation (nar_latent: softmax)")
    latent_decay: float = param(1.0, min=1e-6, max=1.0, help="hidden <- lambda * hidden each step (nar_latent: 0.9)")
    hint_teacher_forcing: float = param(0.0, min=0.0, max=1.0, help="probability of feeding true hints (0 in Ibarz et al.)")
    encode_hints: bool = True
    decode_hints: bool = True
    use_ln: bool = True
    nb_triplet_fts: int = param(8, min=1)
    nb_heads: int = param(1, min=1, help="attention heads (GAT)")
    eval_every: int = param(50, min=1, help="validate every N steps")
    val_samples: int = param(64, min=1, help="validation graphs at n = 16 (run.py: 32 x 2)")
    test_every: int = param(0, min=0, help="also test at n = 64 every N steps (0 = only the best-validation weights at the end)")
    test_samples: int = param(0, min=0, help="first N graphs of the CLRS-30 test split (0 = all)")
    eval_batch_size: int = param(32, min=1, help="graphs per forward pass when evaluating")
    triplet_budget_mb: int = param(64, min=1, help="memory for one chunk of the B x n^3 x 8 triplet max")
    threads: int = param(1, min=0, help="intra-op threads (0 = the bench's share per worker); the ops are small, and on a busy CPU more threads cost many times more CPU")
    checkpoint_every: int = param(250, min=0, help="checkpoint every N steps (0 = only at the end and on signals)")


def build_model(cfg: NARTrainConfig, spec: dict, nb_dims: dict[str, int]) -> NAR:
    """The NAR a config describes."""
    return NAR(spec, nb_dims, cfg.hidden, cfg.processor, aggregation=cfg.aggregation,
               latent_decay=cfg.latent_decay, hint_teacher_forcing=cfg.hint_teacher_forcing,
               encode_hints=cfg.encode_hints, decode_hints=cfg.decode_hints, use_ln=cfg.use_ln,
               nb_triplet_fts=cfg.nb_triplet_fts, nb_heads=cfg.nb_heads,
               triplet_budget_bytes=cfg.triplet_budget_mb * 2**20)


def _quiet(fn, *args, **kwargs):
    """Call fn without the samplers' 'ignoring sampler kwargs' warnings (expected in the recipe)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return fn(*args, **kwargs)


class TrainStream:
    """The recipe's training batches for one seed; `skip(k)` replays k batches (exact resume)."""

    def __init__(self, algorithm: str, seed: int, batch_size: int) -> None:
        self._rng = np.random.RandomState(seed)
        self._it, self.spec = _quiet(train_iterator, algorithm, self._rng, batch_size)

    def __iter__(self) -> Iterator:
        return self

    def __next__(self):
        return _quiet(next, self._it)

    def skip(self, count: int) -> None:
        """Draw and drop `count` batches, leaving every generator as after `count` steps."""
        for _ in range(count):
            next(self)


def preprocess(feedback: Any, algorithm: str, rng: np.random.RandomState | None) -> Any:
    """The recipe's preprocessing of a whole dataset: random `pos` (when rng is given), `pred_h`
    as input, permutation pointers (clrs.md §2.4)."""
    if rng is not None:
        feedback = fb.randomize_pos(feedback, rng)
    if algorithm in PRED_AS_INPUT_ALGOS:
        feedback = fb.pred_as_input(feedback)
    return fb.permutations(feedback)


def recipe_dataset(algorithm: str, num_samples: int, length: int, seed: int) -> Batch:
    """A fixed dataset from the recipe's input distribution (random p), before preprocessing."""
    return _quiet(Sampler, algorithm, num_samples, length, seed=seed,
                  **recipe_kwargs(algorithm)).next()


def validation_feedback(algorithm: str, num_samples: int = 64, length: int = VAL_LENGTH,
                        seed: int = VAL_SEED) -> Any:
    """A fixed validation set: the recipe's distribution at n = 16 (random p and pos)."""
    batch = recipe_dataset(algorithm, num_samples, length, seed)
    return preprocess(fb.to_feedback(batch), algorithm, np.random.RandomState(seed))


def ood_test_feedback(algorithm: str, num_samples: int = 0) -> Any:
    """The CLRS-30 test split (n = 64, default sampler settings, no random pos), optionally
    its first `num_samples` graphs."""
    batch = load_split(algorithm, "test")
    if num_samples:
        batch = batch.select(np.arange(min(num_samples, batch.size)))
    return preprocess(fb.to_feedback(batch), algorithm, None)


@torch.no_grad()
def evaluate_model(model: NAR, feedback: Any, batch_size: int = 32) -> dict[str, float]:
    """CLRS scores of a dataset: `score` and each output, and `hint/<name>` per hint."""
    model.eval()
    full = NARBatch.from_feedback(feedback, model.spec, next(model.parameters()).device)
    outputs: dict[str, list[np.ndarray]] = {}
    hints: list[dict[str, list[np.ndarray]]] = []
    for start in range(0, full.size, batch_size):
        part = full.select(slice(start, start + batch_size))
        out = model(part)
        for name, dp in predictions(model.spec, out.outputs).items():
            outputs.setdefault(name, []).append(dp.data)
        for i, step in enumerate(out.hints):
            if i == len(hints):
                hints.append({})
            for name, dp in predictions(model.spec, step).items():
                hints[i].setdefault(name, []).append((start, dp.data))
    size = full.size
    preds = {k: fb.DataPoint(k, model.spec[k][1], model.spec[k][2], np.concatenate(v))
             for k, v in outputs.items()}
    scores = {k: float(v) for k, v in evaluate(feedback.outputs, preds).items()}
    truths = [h for h in feedback.features.hints if model.spec[h.name][0] == Stage.HINT]
    if model.decode_hints and truths and hints:
        steps = []
        for step in hints:  # pad each step to the whole set; rows past a length are not read
            merged = {}
            for name, parts in step.items():
                data = np.zeros((size,) + parts[0][1].shape[1:], parts[0][1].dtype)
                for start, values in parts:
                    data[start:start + len(values)] = values
                merged[name] = fb.DataPoint(name, model.spec[name][1], model.spec[name][2], data)
            steps.append(merged)
        lengths = np.asarray(feedback.features.lengths)
        for k, v in evaluate_hints(truths, lengths, steps).items():
            if not k.endswith("_along_time"):
                scores[f"hint/{k}"] = float(v)
    return scores


@dataclass
class TrainedNAR:
    """What `train_nar` leaves: the model holding its best-validation weights, their step and
    validation score, and their OOD scores."""

    model: NAR
    best_step: int
    best_val: float
    scores: dict[str, float]


def _log_scores(ctx: RunContext, step: int, prefix: str, scores: dict[str, float]) -> None:
    values = {}
    for k, v in scores.items():
        if k == "score":
            values[f"{prefix}_score"] = v
        elif k.startswith("hint/"):
            values[f"{prefix}_hint/{k[5:]}"] = v
        else:
            values[f"{prefix}/{k}"] = v
    ctx.log(step, **values)


def train_nar(ctx: RunContext, cfg: NARTrainConfig, seed: int) -> TrainedNAR:
    """Train one NAR arm: log losses, validation and test scores; keep and test the
    best-validation weights. Resumable: the data stream is replayed to the checkpoint's step."""
    algorithm = cfg.algorithm
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    stream = TrainStream(algorithm, seed, cfg.batch_size)
    spec = stream.spec
    val = validation_feedback(algorithm, cfg.val_samples)
    test = ood_test_feedback(algorithm, cfg.test_samples)
    torch.manual_seed(seed)
    model = build_model(cfg, spec, nb_dims_of(val)).to(ctx.device)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.learning_rate)
    generator = torch.Generator(device=ctx.device).manual_seed(seed)  # Sinkhorn noise, teacher forcing
    progress: dict[str, Any] = {"best_val": -1.0, "best_step": -1, "cpu_s": 0.0}
    state = {"model": model, "optimizer": optimizer, "generator": generator, "progress": progress}
    best_dir = ctx.dir / "best"
    start = ctx.restore(state)
    stream.skip(start)
    ctx.begin(total=cfg.train_steps, done=start)
    clock = time.process_time()
    if start == 0:
        _validate(ctx, cfg, model, val, 0, progress, best_dir)
    for step in range(start, cfg.train_steps):
        batch = NARBatch.from_feedback(next(stream), spec, ctx.device)
        model.train()
        loss, parts = model.loss(model(batch, train=True, generator=generator), batch)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.grad_clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        optimizer.step()
        done = step + 1
        ctx.log(done, train_loss=loss.item(), **{f"loss/{k}": v.item() for k, v in parts.items()})
        if done % cfg.eval_every == 0 or done == cfg.train_steps:
            _validate(ctx, cfg, model, val, done, progress, best_dir)
        if cfg.test_every and done % cfg.test_every == 0:
            _log_scores(ctx, done, "test", evaluate_model(model, test, cfg.eval_batch_size))
        now = time.process_time()
        progress["cpu_s"] += now - clock
        clock = now
        ctx.tick(done, state)
    best = list_checkpoints(best_dir)
    if best:
        load_checkpoint(best[-1], {"model": model}, restore_rng=False)
    scores = evaluate_model(model, test, cfg.eval_batch_size)
    _log_scores(ctx, cfg.train_steps, "ood", scores)
    ctx.log(cfg.train_steps, best_step=progress["best_step"], best_val_score=progress["best_val"],
            train_cpu_s=progress["cpu_s"])
    return TrainedNAR(model, int(progress["best_step"]), float(progress["best_val"]), scores)


def _validate(ctx: RunContext, cfg: NARTrainConfig, model: NAR, val: Any, step: int,
              progress: dict[str, Any], best_dir) -> None:
    """Validate (and log the mean update gate, if any); on a strictly better score (as run.py)
    save the weights as the best ones."""
    gate = getattr(model.processor, "gate", None)
    gates: list[float] = []
    handle = gate.register_forward_hook(lambda m, a, out: gates.append(out.mean().item())) if gate else None
    scores = evaluate_model(model, val, cfg.eval_batch_size)
    if handle is not None:
        handle.remove()
        ctx.log(step, gate_mean=float(np.mean(gates)))
    _log_scores(ctx, step, "val", scores)
    if scores["score"] > progress["best_val"]:
        progress["best_val"], progress["best_step"] = scores["score"], step
        save_checkpoint(best_dir, step, {"model": model}, meta={"val_score": scores["score"]},
                        keep=1)


# ---- published reference scores -----------------------------------------------------------------

# clrs.md §8: Ibarz et al. 2022 Table 2, Triplet-GMPNN OOD (n = 64) micro-F1 %, mean of 10 seeds,
# 10k steps, H = 128 (marked "unverified" in the fact sheet; it reproduces Table 1's family means).
IBARZ_TABLE2 = {
    "bfs": 99.73, "bellman_ford": 97.39, "dijkstra": 96.05, "dag_shortest_paths": 98.19,
    "mst_prim": 86.39, "mst_kruskal": 89.80, "topological_sort": 87.27,
    "articulation_points": 88.32, "bridges": 93.99, "strongly_connected_components": 43.43,
    "floyd_warshall": 48.52, "insertion_sort": 78.14, "bubble_sort": 67.68, "heapsort": 31.04,
    "quicksort": 64.64, "minimum": 97.78, "binary_search": 77.58, "quickselect": 0.47,
    "dfs": 47.79, "naive_string_matcher": 78.67, "find_maximum_subarray_kadane": 76.36,
    "activity_selector": 95.18, "task_scheduling": 87.25, "matrix_chain_order": 91.68,
    "lcs_length": 80.51, "optimal_bst": 73.77, "segments_intersect": 97.64, "graham_scan": 93.62,
    "jarvis_march": 91.01, "kmp_matcher": 19.51,
}
IBARZ_FAMILY_MEAN = 74.14  # clrs.md §8: Table 1 "overall", the mean of the 8 family means
IBARZ_PLAIN_MEAN = 75.98  # clrs.md §8: the plain mean over the 30 algorithms


def family_mean(scores: dict[str, float]) -> float:
    """Mean of the family means (Ibarz et al. Table 1's average) over the families present."""
    means = [np.mean([scores[a] for a in members if a in scores])
             for members in FAMILIES.values() if any(a in scores for a in members)]
    return float(np.mean(means))
