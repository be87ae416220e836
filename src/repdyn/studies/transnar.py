"""TransNAR (Bounsi et al. 2024): a transformer that cross-attends to a frozen NAR, against the same
transformer alone, on CLRS-Text BFS in distribution and at larger (OOD) graph sizes.

Arms (same seed, same LM initialisation, same data order):
- `text`: a small character-level decoder-only transformer trained by next-token prediction on
  the answers of CLRS-Text examples (n in `train_sizes`);
- `transnar`: phase 1 trains a Triplet-GMPNN NAR with CLRS's recipe (`methods.nar_training`);
  phase 2 freezes it and trains the same transformer plus gated cross-attention layers whose keys
  and values are the NAR's node and edge embeddings on the graph of each example
  (transnar.md §1-§2, `models.transnar`).

Both arms are scored by greedy decoding at every size in `eval_sizes` with TransNAR's three
scores (shape, parse, CLRS; `tasks.clrs_text.metrics`). Facts: transnar.md §3, §6; clrs.md §9.

    repdyn run transnar
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from repdyn.bench.claims import Claim, Verdict, not_run
from repdyn.bench.config import param
from repdyn.bench.context import RunContext
from repdyn.bench.errors import ConfigError
from repdyn.bench.study import Figure, Study
from repdyn.bench.view import ArmView, RunView
from repdyn.methods.lm import warmup_cosine
from repdyn.methods.nar_training import NARTrainConfig, TrainStream, build_model, preprocess
from repdyn.models.nar import NAR, NARBatch, nb_dims_of
from repdyn.models.nar_codec import postprocess
from repdyn.models.transformer import Transformer, TransformerConfig
from repdyn.models.transnar import GraphMemory, TransNAR, TransNARConfig, freeze, nar_memory
from repdyn.tasks.clrs import Batch, Sampler, to_feedback
from repdyn.tasks.clrs_text import CharTokenizer, format_example, score_answers

ARMS = ("text", "transnar")
ALGORITHMS = ("bfs", "dfs", "bellman_ford", "dijkstra", "dag_shortest_paths", "mst_prim")
SCORES = ("shape", "parse", "clrs")
# transnar.md §6 (E6): TransNAR's OOD CLRS score beats text-only by >= 10 points; its shape score
# (at OOD sizes) is >= 0.9.
OOD_GAIN_POINTS = 10.0
OOD_SHAPE_MIN = 0.9


@dataclass(frozen=True)
class LMConfig:
    """The language model both arms share (transnar.md §6: a tiny char decoder, 2 layers, d = 64)."""

    d_model: int = param(64, min=8)
    num_layers: int = param(2, min=1)
    num_heads: int = param(4, min=1)
    mlp_dim: int = param(256, min=8)
    max_position: int = param(
        1024, min=16, help="randomised positions are drawn from [0, max_position) (transnar.md §2)"
    )
    cross_every: int = param(1, min=1, help="a gated cross-attention layer after every k-th block (transnar arm)")
    cross_heads: int = param(4, min=1)
    index_rope: bool = param(
        True, help="cross-attention rotates queries by the token's list-item index and keys by node index"
    )
    use_edges: bool = param(True, help="edge embeddings join the node embeddings as keys and values")
    index_window: int = param(
        2, min=0, help="a token reads only graph tokens within this many indices of its own (0 = all)"
    )
    end_token: bool = param(True, help="an end-of-graph token at index n marks where the node list ends")


@dataclass(frozen=True)
class TransNARStudyConfig:
    """Data, the two phases and the evaluation of the text-only vs TransNAR comparison."""

    algorithm: str = param("bfs", choices=ALGORITHMS, help="CLRS-Text graph algorithm with a node-pointer answer")
    train_sizes: tuple[int, ...] = param(
        (4, 5, 6, 7, 8), help="graph sizes n of the LM's training text (transnar.md §6)"
    )
    train_samples: int = param(
        5000, min=1, help="training examples, split evenly over train_sizes (transnar.md §6: about 5k)"
    )
    eval_sizes: tuple[int, ...] = param(
        (8, 10, 12), help="sizes scored by greedy decoding; those above max(train_sizes) are OOD"
    )
    eval_samples: int = param(64, min=1, help="test examples per eval size")
    lm: LMConfig = field(default_factory=LMConfig)
    lm_steps: int = param(1500, min=1, help="phase-2 optimizer steps (both arms)")
    batch_size: int = param(32, min=1)
    lr: float = param(1e-3, min=0.0, help="Adam (transnar.md §2: 1e-4 at 70M parameters)")
    lr_schedule: Literal["constant", "cosine"] = param(
        "cosine", choices=("constant", "cosine"), help="phase 2: constant, or linear warm-up then cosine to lr / 10"
    )
    warmup_steps: int = param(50, min=0, help="phase-2 warm-up steps of the cosine schedule")
    grad_clip: float = param(1.0, min=0.0, help="global-norm clip (0 = off)")
    nar: NARTrainConfig = field(default_factory=lambda: NARTrainConfig(hidden=32, train_steps=200))
    role: Literal["text", "transnar"] = param("transnar", help="set per arm by arms()")
    arms: tuple[str, ...] = param(ARMS, help="arms to train (subset of text, transnar)")
    threads: int = param(1, min=0, help="torch intra-op threads (0 = the bench's share)")
    checkpoint_every: int = param(250, min=0, help="checkpoint every N updates (0 = at the end and on signals)")

    def validate(self) -> None:
        unknown = sorted(set(self.arms) - set(ARMS))
        if unknown or not self.arms:
            raise ConfigError("arms", f"{unknown[0] if unknown else 'empty'!r}; accepted: {', '.join(ARMS)}")
        for name in ("train_sizes", "eval_sizes"):
            sizes = getattr(self, name)
            if not sizes or min(sizes) < 2:
                raise ConfigError(name, f"must be a non-empty list of sizes >= 2, got {sizes}")
        if self.nar.algorithm != self.algorithm:
            raise ConfigError("nar.algorithm", f"must equal algorithm ({self.algorithm}), got {self.nar.algorithm}")
        if self.lm.d_model % self.lm.num_heads or self.lm.d_model % self.lm.cross_heads:
            raise ConfigError("lm.num_heads", "d_model must be divisible by num_heads and cross_heads")


def arms(config: TransNARStudyConfig) -> dict[str, TransNARStudyConfig]:
    """One arm per entry of `arms`: `text` (LM only) and `transnar` (NAR, then LM + cross-attention)."""
    return {name: replace(config, role=name) for name in ARMS if name in config.arms}


# ---- data: one instance as text and as a graph --------------------------------------------------


@dataclass
class SizedSet:
    """Examples of one graph size: their graphs (a CLRS `Batch`) and their tokenised text."""

    graphs: Batch
    tokens: Tensor  # [N, T] BOS + question + answer + EOS, right-padded
    answer_mask: Tensor  # [N, T] True on answer tokens
    questions: list[str]
    answers: list[str]

    @property
    def size(self) -> int:
        """Number of examples."""
        return self.graphs.size


def make_set(algorithm: str, n: int, count: int, seed: int) -> SizedSet:
    """`count` instances of size n from CLRS-Text's sampler (on the fly, default settings, 3-decimal
    floats: clrs.md §9), as text and as graphs."""
    graphs = Sampler(algorithm, -1, n, seed=seed, track_max_steps=False, truncate_decimals=3).next(count)
    pairs = [format_example(algorithm, graphs.trajectory(b)) for b in range(graphs.size)]
    encoded = CharTokenizer().batch(pairs)
    return SizedSet(graphs, encoded["tokens"], encoded["answer_mask"], [q for q, _ in pairs], [a for _, a in pairs])


def graph_batch(data: SizedSet, index: np.ndarray, algorithm: str, spec: dict, device: torch.device) -> NARBatch:
    """The NAR's input for some examples: their graphs, preprocessed as the NAR was trained, on `device`."""
    feedback = preprocess(to_feedback(data.graphs.select(index)), algorithm, None)
    return NARBatch.from_feedback(feedback, spec, device)


def item_index(tokens: Tensor, tokenizer: CharTokenizer) -> Tensor:
    """Which list item each token is writing [B, T]: inside a list, the number of spaces since the
    last `[`; outside every list, -1 (the token reads nothing from the graph).

    In an answer `[0 0 2]` the `[` is 0 and each ` ` is one more, so the token that predicts item k
    carries index k - the node it must read; inside a row of `A` the token of column j carries j;
    the closing `]` still belongs to its list. Text between lists (the question's words, the
    newline after the answer) gets -1, so it cannot read "a next item" off the graph. Bounded by the
    graph size, so question tokens stay in the range seen in training. Causal (running counts).
    """
    space, opens, closes = (tokens == tokenizer.encode(c)[0] for c in " []")
    count = space.long().cumsum(1)
    at_open = torch.where(opens, count, torch.zeros_like(count)).cummax(1).values
    depth = opens.long().cumsum(1) - closes.long().cumsum(1) + closes.long()  # `]` is still inside
    return torch.where(depth > 0, count - at_open, -torch.ones_like(count))


def random_positions(batch: int, length: int, max_position: int, generator: torch.Generator) -> Tensor:
    """Randomised positional encoding (Ruoss et al. 2023; transnar.md §2): each sequence's positions
    are a sorted random subset of [0, max_position)."""
    scores = torch.rand(batch, max_position, generator=generator)
    return scores.topk(length, dim=1).indices.sort(dim=1).values


# ---- models --------------------------------------------------------------------------------------


def build_lm(cfg: TransNARStudyConfig, seed: int) -> Transformer:
    """The char-level decoder both arms start from (identical weights for the same seed)."""
    torch.manual_seed(seed)
    lm = cfg.lm
    return Transformer(
        TransformerConfig(
            vocab_size=CharTokenizer().vocab_size,
            d_model=lm.d_model,
            num_layers=lm.num_layers,
            num_heads=lm.num_heads,
            mlp_dim=lm.mlp_dim,
            positional="rope",
            causal=True,
        )
    )


def build_transnar(cfg: TransNARStudyConfig, lm: Transformer) -> TransNAR:
    """The LM plus gated cross-attention (initialised after the LM, so the LM's weights match `text`)."""
    edge_dim = cfg.nar.hidden if cfg.lm.use_edges and cfg.nar.processor == "triplet_gmpnn" else 0
    return TransNAR(
        lm,
        TransNARConfig(
            graph_dim=cfg.nar.hidden,
            edge_dim=edge_dim,
            cross_every=cfg.lm.cross_every,
            num_heads=cfg.lm.cross_heads,
            index_rope=cfg.lm.index_rope,
            index_window=cfg.lm.index_window,
            end_token=cfg.lm.end_token,
        ),
    )


class Arm:
    """One arm's model behind one call: logits of token batches (plus the NAR for `transnar`)."""

    def __init__(self, cfg: TransNARStudyConfig, seed: int, nar: NAR | None, spec: dict | None) -> None:
        self.cfg = cfg
        self.lm = build_lm(cfg, seed)
        self.model = build_transnar(cfg, self.lm) if nar is not None else self.lm
        self.nar, self.spec = nar, spec
        self.tokenizer = CharTokenizer()

    def memory(self, data: SizedSet, index: np.ndarray) -> GraphMemory | None:
        """The frozen NAR's embeddings of examples `index` of `data` (None for the text arm)."""
        if self.nar is None:
            return None
        device = next(self.nar.parameters()).device
        return nar_memory(self.nar, graph_batch(data, index, self.cfg.algorithm, self.spec, device))

    def logits(self, tokens: Tensor, positions: Tensor, memory: GraphMemory | None) -> Tensor:
        """Logits [B, T, V] of `tokens` (cross-attending to `memory` in the transnar arm)."""
        if memory is None:
            return self.model(tokens, positions)
        return self.model(tokens, memory, positions, item_index(tokens, self.tokenizer))


# ---- training --------------------------------------------------------------------------------


def train(ctx: RunContext) -> None:
    """One arm: (transnar) phase 1 trains the NAR; phase 2 trains the LM (+ cross-attention) with
    the NAR frozen; then greedy decoding scores every eval size."""
    cfg: TransNARStudyConfig = ctx.config
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    nar_steps = cfg.nar.train_steps if cfg.role == "transnar" else 0
    train_sets = [
        make_set(cfg.algorithm, n, count, seed=ctx.seed * 1000 + n)
        for n, count in zip(cfg.train_sizes, _split(cfg.train_samples, len(cfg.train_sizes)), strict=True)
    ]
    nar, stream, nar_optimizer = None, None, None
    if cfg.role == "transnar":
        stream = TrainStream(cfg.algorithm, ctx.seed, cfg.nar.batch_size)
        torch.manual_seed(ctx.seed)
        nar = build_model(cfg.nar, stream.spec, nb_dims_of(to_feedback(train_sets[0].graphs.select(np.arange(1)))))
        nar = nar.to(ctx.device)
        nar_optimizer = torch.optim.Adam(nar.parameters(), lr=cfg.nar.learning_rate)
    arm = Arm(cfg, ctx.seed, nar, stream.spec if stream else None)
    arm.model.to(ctx.device)
    trainable = [p for p in arm.model.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(trainable, lr=cfg.lr)
    generator = torch.Generator().manual_seed(ctx.seed)
    progress: dict[str, Any] = {"cpu_s": 0.0}
    state: dict[str, Any] = {"model": arm.model, "optimizer": optimizer, "generator": generator, "progress": progress}
    if nar is not None:
        state.update(nar=nar, nar_optimizer=nar_optimizer)
    start = ctx.restore(state)
    total = nar_steps + cfg.lm_steps
    ctx.begin(total=total, done=start)
    clock = time.process_time()
    if nar is not None and start < nar_steps:
        stream.skip(start)
    for step in range(start, total):
        if step < nar_steps:
            loss = _nar_step(nar, nar_optimizer, stream, cfg.nar, generator)
            ctx.log(step + 1, nar_loss=loss)
        else:
            if nar is not None and step == max(start, nar_steps):
                freeze(nar)
            for group in optimizer.param_groups:
                group["lr"] = lm_learning_rate(cfg, step - nar_steps)
            loss = _lm_step(arm, optimizer, trainable, train_sets, cfg, generator)
            ctx.log(step + 1, train_loss=loss)
        now = time.process_time()
        progress["cpu_s"] += now - clock
        clock = now
        ctx.tick(step + 1, state)
    if nar is not None:
        freeze(nar)  # also when resumed after the last update
    _evaluate(ctx, arm, cfg, total, progress)


def lm_learning_rate(cfg: TransNARStudyConfig, lm_step: int) -> float:
    """Phase 2's learning rate at its `lm_step`-th update (a function of the step, so a resumed run
    continues the same schedule)."""
    if cfg.lr_schedule == "constant":
        return cfg.lr
    return cfg.lr * warmup_cosine(lm_step, warmup_steps=cfg.warmup_steps, total_steps=cfg.lm_steps)


def _split(total: int, parts: int) -> list[int]:
    return [total // parts + (i < total % parts) for i in range(parts)]


def _nar_step(
    nar: NAR, optimizer: torch.optim.Optimizer, stream: TrainStream, cfg: NARTrainConfig, generator: torch.Generator
) -> float:
    """Phase 1: one step of CLRS's recipe on the NAR."""
    batch = NARBatch.from_feedback(next(stream), nar.spec, next(nar.parameters()).device)
    nar.train()
    loss, _ = nar.loss(nar(batch, train=True, generator=generator), batch)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if cfg.grad_clip:
        torch.nn.utils.clip_grad_norm_(nar.parameters(), cfg.grad_clip)
    optimizer.step()
    return loss.item()


def _lm_step(
    arm: Arm,
    optimizer: torch.optim.Optimizer,
    trainable: list[Tensor],
    train_sets: list[SizedSet],
    cfg: TransNARStudyConfig,
    generator: torch.Generator,
) -> float:
    """Phase 2: next-token prediction on the answer tokens of one batch of one size."""
    data = train_sets[int(torch.randint(len(train_sets), (), generator=generator))]
    index = torch.randint(data.size, (cfg.batch_size,), generator=generator).numpy()
    tokens, mask = data.tokens[index], data.answer_mask[index]
    width = int(mask.any(0).nonzero().max()) + 1
    tokens, mask = tokens[:, :width], mask[:, :width]
    positions = random_positions(len(index), width, cfg.lm.max_position, generator)
    # the batch is drawn on the CPU; the answer tokens' places are found there, not by a mask on the device
    device = next(arm.model.parameters()).device
    answer = tuple(i.to(device, non_blocking=True) for i in mask[:, 1:].nonzero(as_tuple=True))
    tokens, positions = tokens.to(device, non_blocking=True), positions.to(device, non_blocking=True)
    arm.model.train()
    logits = arm.logits(tokens, positions, arm.memory(data, index))
    loss = F.cross_entropy(logits[:, :-1][answer], tokens[:, 1:][answer])
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if cfg.grad_clip:
        torch.nn.utils.clip_grad_norm_(trainable, cfg.grad_clip)
    optimizer.step()
    return loss.item()


# ---- evaluation ------------------------------------------------------------------------------


@torch.no_grad()
def greedy_answers(arm: Arm, data: SizedSet, max_position: int, generator: torch.Generator) -> list[str]:
    """Each question's greedy continuation, up to the format's blank line, EOS or 4n + 8 tokens."""
    arm.model.eval()
    tok = arm.tokenizer
    questions = [tok.encode(q, bos=True) for q in data.questions]
    n = data.graphs.inputs["pos"].shape[1]
    budget = 4 * n + 8
    width = max(len(q) for q in questions) + budget
    tokens = torch.full((len(questions), width), tok.pad_id, dtype=torch.int64)
    for row, q in enumerate(questions):
        tokens[row, : len(q)] = torch.tensor(q)
    cursor = torch.tensor([len(q) for q in questions])
    done = torch.zeros(len(questions), dtype=torch.bool)
    positions = random_positions(len(questions), width, max_position, generator)
    rows = torch.arange(len(questions))
    memory = arm.memory(data, np.arange(data.size))
    newline = tok.encode("\n")[0]
    # the model's device (the CPU for one without parameters); the bookkeeping stays on the CPU: one read per token
    device = next((p.device for p in arm.model.parameters()), torch.device("cpu"))
    positions = positions.to(device, non_blocking=True)
    for _ in range(budget):
        seen = int(cursor.max())  # causal: the columns past every cursor change nothing
        logits = arm.logits(tokens[:, :seen].to(device, non_blocking=True), positions[:, :seen], memory)
        nxt = torch.where(done, tok.pad_id, logits[rows, cursor - 1].argmax(-1).cpu())
        tokens[rows[~done], cursor[~done]] = nxt[~done]
        ended = (nxt == tok.eos_id) | ((nxt == newline) & (tokens[rows, cursor - 1] == newline))
        cursor = torch.where(done, cursor, cursor + 1)
        done |= ended
        if bool(done.all()):
            break
    return [tok.decode(tokens[r, len(q) : cursor[r]]) for r, q in enumerate(questions)]


@torch.no_grad()
def nar_accuracy(arm: Arm, data: SizedSet) -> float:
    """The frozen NAR's own score on the graphs of `data`: the fraction of output elements equal to
    the truth (for BFS, its `pi` pointers) - what the cross-attention has to read from."""
    batch = graph_batch(data, np.arange(data.size), arm.cfg.algorithm, arm.spec, next(arm.nar.parameters()).device)
    out = arm.nar(batch).outputs
    hits = [(postprocess(arm.spec[k][2], v, hard=True) == batch.outputs[k]).float().flatten() for k, v in out.items()]
    return float(torch.cat(hits).mean())


def _evaluate(ctx: RunContext, arm: Arm, cfg: TransNARStudyConfig, step: int, progress: dict) -> None:
    generator = torch.Generator().manual_seed(10_000 + ctx.seed)
    rows = []
    values: dict[str, float] = {}
    for n in cfg.eval_sizes:
        data = make_set(cfg.algorithm, n, cfg.eval_samples, seed=100_000 + 1000 * ctx.seed + n)
        predictions = greedy_answers(arm, data, cfg.lm.max_position, generator)
        scores = score_answers(cfg.algorithm, predictions, data.answers)
        rows.append(
            {
                "size": n,
                "ood": n > max(cfg.train_sizes),
                **{k: getattr(scores, k) for k in SCORES},
                "example": predictions[0],
                "target": data.answers[0],
            }
        )
        values.update({f"{k}/{n}": getattr(scores, k) for k in SCORES})
        if arm.nar is not None:
            values[f"nar_accuracy/{n}"] = nar_accuracy(arm, data)
    if isinstance(arm.model, TransNAR):
        values.update({f"gate/{k}": v for k, v in arm.model.gates().items()})
    ctx.log(step, train_cpu_s=progress["cpu_s"], **values)
    ctx.log_table("scores", rows)


# ---- claims ----------------------------------------------------------------------------------


def _ood_sizes(arm: ArmView) -> list[int]:
    cfg = arm.config
    return [n for n in cfg.eval_sizes if n > max(cfg.train_sizes)]


def _score(arm: ArmView, kind: str, n: int) -> float:
    return arm.series(f"{kind}/{n}").last


def claim_ood_gain(run: RunView) -> Verdict:
    """TransNAR's mean OOD CLRS score is at least 10 points above the text-only model's."""
    text, hybrid = run.arm("text"), run.arm("transnar")
    if text is None or hybrid is None:
        return not_run("needs both the text and transnar arms")
    sizes = _ood_sizes(hybrid)
    if not sizes:
        return not_run("no eval size above the training sizes")
    ours = 100 * float(np.mean([_score(hybrid, "clrs", n) for n in sizes]))
    base = 100 * float(np.mean([_score(text, "clrs", n) for n in sizes]))
    gap = ours - base
    per_size = ", ".join(
        f"n={n}: {100 * _score(hybrid, 'clrs', n):.1f} vs {100 * _score(text, 'clrs', n):.1f}" for n in sizes
    )
    summary = (
        f"OOD CLRS score TransNAR {ours:.1f} vs text-only {base:.1f} (gain {gap:+.1f} points, "
        f"needs >= {OOD_GAIN_POINTS:.0f}); {per_size}"
    )
    return Verdict(
        bool(gap >= OOD_GAIN_POINTS), summary, {"transnar": ours, "text": base, "gain": gap}, figures=("scores",)
    )


def claim_ood_shape(run: RunView) -> Verdict:
    """TransNAR's shape score is at least 0.9 at every OOD size."""
    hybrid = run.arm("transnar")
    if hybrid is None:
        return not_run("needs the transnar arm")
    sizes = _ood_sizes(hybrid)
    if not sizes:
        return not_run("no eval size above the training sizes")
    shapes = {n: _score(hybrid, "shape", n) for n in sizes}
    text = run.arm("text")
    base = "" if text is None else "; text-only " + ", ".join(f"n={n}: {_score(text, 'shape', n):.2f}" for n in sizes)
    summary = (
        "TransNAR shape score "
        + ", ".join(f"n={n}: {v:.2f}" for n, v in shapes.items())
        + f" (needs >= {OOD_SHAPE_MIN} at each OOD size){base}"
    )
    return Verdict(
        bool(min(shapes.values()) >= OOD_SHAPE_MIN),
        summary,
        {f"shape/{n}": v for n, v in shapes.items()},
        figures=("scores",),
    )


def claim_id_gain(run: RunView) -> Verdict:
    """In distribution too, TransNAR's CLRS score is not below the text-only model's (directional)."""
    text, hybrid = run.arm("text"), run.arm("transnar")
    if text is None or hybrid is None:
        return not_run("needs both the text and transnar arms")
    sizes = [n for n in hybrid.config.eval_sizes if n <= max(hybrid.config.train_sizes)]
    if not sizes:
        return not_run("no eval size inside the training sizes")
    ours = 100 * float(np.mean([_score(hybrid, "clrs", n) for n in sizes]))
    base = 100 * float(np.mean([_score(text, "clrs", n) for n in sizes]))
    summary = (
        f"in-distribution (n={', '.join(map(str, sizes))}) CLRS score TransNAR {ours:.1f} vs text-only {base:.1f} "
        f"(needs TransNAR >= text-only)"
    )
    return Verdict(bool(ours >= base), summary, {"transnar": ours, "text": base}, figures=("scores",))


CLAIMS = (
    Claim("T1", "TransNAR's OOD CLRS score >= 10 points above text-only", claim_ood_gain, "transnar.md §6 (E6), §3"),
    Claim("T2", "TransNAR's OOD shape score >= 0.9", claim_ood_shape, "transnar.md §6 (E6)"),
    Claim(
        "T3", "TransNAR >= text-only in distribution", claim_id_gain, "transnar.md §1, §3 (in and out of distribution)"
    ),
)


def figures(run: RunView) -> list[Figure]:
    """The three scores per size for both arms, and the training losses."""
    done = {name: run.arm(name) for name in ARMS if run.arm(name) is not None}
    if not done:
        return []
    fig, axes = plt.subplots(1, 4, figsize=(15, 3.4))
    for ax, kind in zip(axes[:3], SCORES, strict=True):
        for offset, (name, arm) in enumerate(done.items()):
            sizes = list(arm.config.eval_sizes)
            x = np.arange(len(sizes)) + 0.4 * offset - 0.2
            ax.bar(x, [_score(arm, kind, n) for n in sizes], width=0.4, label=name)
            ax.set_xticks(
                np.arange(len(sizes)),
                [f"n={n}" + (" (OOD)" if n > max(arm.config.train_sizes) else "") for n in sizes],
                fontsize=7,
            )
        ax.set(ylim=(0, 1.05), title=f"{kind} score")
        ax.legend(fontsize=7)
    ax = axes[3]
    for name, arm in done.items():
        s = arm.series("train_loss")
        start = arm.config.nar.train_steps if arm.config.role == "transnar" else 0
        ax.plot(s.steps - start, _smooth(s.values), lw=0.8, label=f"{name} LM (phase 2)")
        if arm.has("nar_loss"):
            s = arm.series("nar_loss")
            ax.plot(s.steps, _smooth(s.values), ":", lw=0.8, label="NAR (phase 1)")
    ax.set(yscale="log", xlabel="update of the phase", title="training loss (running mean of 25)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return [
        Figure(
            "scores",
            "Shape, parse and CLRS scores per size",
            "Greedy answers scored per graph size (OOD = above the training sizes) for the text-only "
            "transformer and TransNAR; right: phase-1 NAR loss and phase-2 LM answer loss.",
            fig,
        )
    ]


def _smooth(values: np.ndarray, width: int = 25) -> np.ndarray:
    """Running mean over the last `width` values (fewer at the start)."""
    total = np.concatenate([[0.0], np.cumsum(np.asarray(values, dtype=float))])
    end = np.arange(1, len(values) + 1)
    begin = np.maximum(end - width, 0)
    return (total[end] - total[begin]) / (end - begin)


STUDY = Study(
    name="transnar",
    title="TransNAR: transformers cross-attending to a frozen NAR on CLRS-Text",
    paper="Bounsi et al. 2024, arXiv 2406.09308",
    summary="text-only transformer vs TransNAR on CLRS-Text BFS, in distribution and at larger sizes",
    config=TransNARStudyConfig,
    train=train,
    presets={
        "smoke": {
            "train_samples": 64,
            "eval_samples": 4,
            "eval_sizes": (5, 6),
            "train_sizes": (4, 5),
            "lm_steps": 6,
            "warmup_steps": 2,
            "batch_size": 4,
            "lm.d_model": 16,
            "lm.mlp_dim": 32,
            "lm.num_layers": 1,
            "nar.train_steps": 4,
            "nar.hidden": 8,
            "nar.batch_size": 4,
            "checkpoint_every": 3,
        },
        "default": {},
        # transnar.md §2-3: ~70M-parameter LM, train sizes 4-8 and 12, test 10 (interpolation), 12, 14;
        # batch 256, Adam 1e-4, about 7 epochs; the NAR with Ibarz et al.'s recipe (H = 128, 10k steps)
        "paper": {
            "train_sizes": (4, 5, 6, 7, 8, 12),
            "eval_sizes": (10, 12, 14),
            "train_samples": 100_000,
            "lm.d_model": 512,
            "lm.num_layers": 8,
            "lm.num_heads": 8,
            "lm.mlp_dim": 2048,
            "lm.max_position": 8192,
            "lm_steps": 3000,
            "batch_size": 256,
            "lr": 1e-4,
            "nar.hidden": 128,
            "nar.train_steps": 10_000,
        },
    },
    arms=arms,
    claims=CLAIMS,
    figures=figures,
    progress_keys=("train_loss", "nar_loss"),
    max_threads=1,
    wall_times={
        "smoke": "seconds",
        "default": "~5-6 min on 2 CPU cores with --workers 2, ~8 min with one (measured)",
        "paper": "~1 day on 2 CPU cores; hours on one GPU (estimate, not yet run)",
    },
)
