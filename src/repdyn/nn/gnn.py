"""GNN processors of the CLRS benchmark: DeepSets, MPNN, PGN, GAT and Triplet-GMPNN (clrs.md §6.4).

Every processor is a module with one signature, shared by the NAR and its reusers (TransNAR,
the cocycle study), and a `returns_edges` flag (whether edge_out is a tensor):

    hidden, edge_out = processor(node_fts, edge_fts, graph_fts, adj, hidden)
    # node_fts [B, n, H], edge_fts [B, n, n, H], graph_fts [B, H], adj [B, n, n] (0/1),
    # hidden [B, n, H]  ->  hidden [B, n, H], edge_out [B, n, n, H] (triplets) or None

Convention: edge tensors are indexed [b, sender, receiver]; node y aggregates the messages of
every sender x with adj[b, x, y] = 1. Dense batched tensors throughout (the CLRS MPNN is fully
connected by design, clrs.md §12).

Also here: the masked aggregators (max, sum, mean and the softmax aggregator of nar_latent.md
§2), triplet messages whose n^3 max is computed in k-chunks under a memory budget with an
O(B n^2) backward, the update gate (bias -3) and latent decay.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from repdyn.bench.errors import ConfigError

BIG_NUMBER = 1e6  # clrs.md §6.4: non-edges are filled with -1e6 before the max
GATE_BIAS = -3.0  # clrs.md §6.4: the gate's last bias starts at -3, sigma(-3) ~ 0.047
NB_TRIPLET_FTS = 8  # clrs.md §6.4: nb_triplet_fts = 8
TRIPLET_BUDGET_BYTES = 64 * 2**20  # default memory for one chunk of the B x n^3 x 8 triplet max

Aggregation = Literal["max", "sum", "mean", "softmax"]
AGGREGATIONS = ("max", "sum", "mean", "softmax")
PROCESSORS = ("deepsets", "mpnn", "pgn", "gat", "gat_full", "gmpnn", "gpgn", "triplet_mpnn",
              "triplet_pgn", "triplet_gmpnn", "triplet_gpgn")


def linear(fan_in: int, fan_out: int, *, std: float | None = None, bias: float = 0.0) -> nn.Linear:
    """A Linear layer initialised like haiku's: weights from N(0, std^2) truncated at 2 std,
    std = 1/sqrt(fan_in) unless given, bias constant (0 unless given)."""
    layer = nn.Linear(fan_in, fan_out)
    s = 1.0 / math.sqrt(fan_in) if std is None else std
    nn.init.trunc_normal_(layer.weight, std=s, a=-2 * s, b=2 * s)
    nn.init.constant_(layer.bias, bias)
    return layer


# ---- aggregation ------------------------------------------------------------------------------

def aggregate(msgs: Tensor, adj: Tensor | None, kind: Aggregation = "max",
              temperature: float = 1.0) -> Tensor:
    """Reduce messages [B, senders, receivers, H] over the senders allowed by adj [B, n, n]
    (None: every sender, as in the fully connected MPNN).

    max: masked max, non-edges at -1e6 (clrs.md §6.4); sum; mean over in-neighbours; softmax:
    sum_x softmax_x(m_xy / T) * m_xy per channel, non-edges at -1e6 (nar_latent.md §2), which
    tends to the max as T -> 0. Non-edges never influence the result.
    """
    if kind not in AGGREGATIONS:
        raise ConfigError("aggregation", f"unknown aggregation {kind!r}; accepted: {', '.join(AGGREGATIONS)}")
    if adj is None:
        if kind == "max":
            return msgs.amax(dim=1)
        if kind == "sum":
            return msgs.sum(dim=1)
        if kind == "mean":
            return msgs.mean(dim=1)
        return (torch.softmax(msgs / temperature, dim=1) * msgs).sum(dim=1)
    mask = adj.unsqueeze(-1) > 0
    if kind == "max":
        return torch.where(mask, msgs, msgs.new_tensor(-BIG_NUMBER)).amax(dim=1)
    if kind == "sum":
        return (msgs * mask).sum(dim=1)
    if kind == "mean":
        return (msgs * mask).sum(dim=1) / mask.sum(dim=1).clamp_min(1)
    logits = torch.where(mask, msgs / temperature, msgs.new_tensor(-BIG_NUMBER))
    return (torch.softmax(logits, dim=1) * msgs * mask).sum(dim=1)


# ---- triplets ---------------------------------------------------------------------------------

def triplet_chunk(batch: int, nodes: int, channels: int, element_size: int,
                  budget_bytes: int) -> int:
    """How many k-slices of the [B, i, j, k, c] triplet tensor fit in `budget_bytes` (>= 1)."""
    per_k = batch * nodes * nodes * channels * element_size
    return max(1, min(nodes, budget_bytes // max(per_k, 1)))


class _TripletMax(torch.autograd.Function):
    """out[b, j, k] = max_i (a[b, i] + e1[b, i, j] + e2[b, i, k]), computed in k-chunks.

    Only the argmax (int16, B n^2 c) is kept for backward, so training memory is O(B n^2 c)
    instead of the O(B n^3 c) autograd would hold; the gradient is scattered back to the
    winning i of every (j, k, c).
    """

    @staticmethod
    def forward(ctx, a: Tensor, e1: Tensor, e2: Tensor, chunk: int) -> Tensor:
        n = a.shape[1]
        base = a[:, :, None, None, :] + e1[:, :, :, None, :]  # [B, i, j, 1, c]
        values, winners = [], []
        for start in range(0, n, chunk):
            block = base + e2[:, :, None, start:start + chunk, :]  # [B, i, j, kc, c]
            v, w = block.max(dim=1)
            values.append(v)
            winners.append(w.to(torch.int16 if n < 2**15 else torch.int64))
        ctx.save_for_backward(torch.cat(winners, dim=2))
        ctx.n = n
        return torch.cat(values, dim=2)

    @staticmethod
    def backward(ctx, grad: Tensor):
        (winner,) = ctx.saved_tensors
        n = ctx.n
        batch, c = grad.shape[0], grad.shape[-1]
        i = winner.long()  # [B, j, k, c]
        ids = torch.arange(n, device=grad.device)
        src = grad.reshape(batch, n * n, c)
        index_ij = (i * n + ids[None, :, None, None]).reshape(batch, n * n, c)
        index_ik = (i * n + ids[None, None, :, None]).reshape(batch, n * n, c)
        grad_e1 = grad.new_zeros(batch, n * n, c).scatter_add_(1, index_ij, src)
        grad_e2 = grad.new_zeros(batch, n * n, c).scatter_add_(1, index_ik, src)
        grad_e1 = grad_e1.view(batch, n, n, c)
        return grad_e1.sum(dim=2), grad_e1, grad_e2.view(batch, n, n, c), None


def triplet_max(a: Tensor, e1: Tensor, e2: Tensor, budget_bytes: int = TRIPLET_BUDGET_BYTES) -> Tensor:
    """max over i of a[b, i] + e1[b, i, j] + e2[b, i, k] -> [B, j, k, c], within a memory budget."""
    batch, n, c = a.shape
    chunk = triplet_chunk(batch, n, c, a.element_size(), budget_bytes)
    return _TripletMax.apply(a, e1, e2, chunk)


class TripletMessages(nn.Module):
    """Triplet edge messages (Dudzik & Velickovic 2022; clrs.md §6.4).

    t[b,i,j,k] = t1(z_i) + t2(z_j) + t3(z_k) + te1(e_ij) + te2(e_ik) + te3(e_jk) + tg(g) with 8
    features; returns ReLU(o3(max_i t)) [B, n, n, H]. The terms without i are added after the
    max, and the max over i runs in k-chunks of at most `budget_bytes`.
    """

    def __init__(self, hidden: int, fts: int = NB_TRIPLET_FTS,
                 budget_bytes: int = TRIPLET_BUDGET_BYTES) -> None:
        super().__init__()
        self.budget_bytes = budget_bytes
        self.t1, self.t2, self.t3 = (linear(2 * hidden, fts) for _ in range(3))
        self.te1, self.te2, self.te3 = (linear(hidden, fts) for _ in range(3))
        self.tg = linear(hidden, fts)
        self.o3 = linear(fts, hidden)

    def forward(self, z: Tensor, edge_fts: Tensor, graph_fts: Tensor) -> Tensor:
        best = triplet_max(self.t1(z), self.te1(edge_fts), self.te2(edge_fts), self.budget_bytes)
        rest = (self.t2(z)[:, :, None] + self.t3(z)[:, None, :] + self.te3(edge_fts)
                + self.tg(graph_fts)[:, None, None])
        return F.relu(self.o3(best + rest))


# ---- gating and decay -------------------------------------------------------------------------

class Gate(nn.Module):
    """Update gate sigma(L3(ReLU(L1(z) + L2(agg)))), L3's bias starting at -3 (clrs.md §6.4).

    A module of its own so hooks (e.g. `FeatureRecorder(names="processor.gate")`) can read it.
    """

    def __init__(self, hidden: int) -> None:
        super().__init__()
        self.l1 = linear(2 * hidden, hidden)
        self.l2 = linear(hidden, hidden)
        self.l3 = linear(hidden, hidden, bias=GATE_BIAS)

    def forward(self, z: Tensor, agg: Tensor) -> Tensor:
        return torch.sigmoid(self.l3(F.relu(self.l1(z) + self.l2(agg))))


class LatentDecay(nn.Module):
    """hidden <- lam * hidden before each processor call (nar_latent.md §2: lam = 0.9)."""

    def __init__(self, lam: float = 1.0) -> None:
        super().__init__()
        if not 0.0 < lam <= 1.0:
            raise ConfigError("latent_decay", f"must be in (0, 1], got {lam}")
        self.lam = lam

    def forward(self, hidden: Tensor) -> Tensor:
        return hidden if self.lam == 1.0 else hidden * self.lam

    def extra_repr(self) -> str:
        return f"lam={self.lam}"


# ---- processors -------------------------------------------------------------------------------

def _adjacency(adj: Tensor, mode: str) -> Tensor | None:
    if mode == "full":
        return None
    if mode == "identity":
        return torch.eye(adj.shape[-1], dtype=adj.dtype, device=adj.device).expand_as(adj)
    return adj


class MessagePassing(nn.Module):
    """The PGN family (clrs.md §6.4): PGN on the graph, MPNN fully connected, DeepSets on the
    identity; optional triplet edge messages and update gate (Triplet-GMPNN = full + both).

    z = [x || h]; m_xy = MLP(ReLU(m1(z_y) + m2(z_x) + me(e_xy) + mg(g))); a_y = agg_x m_xy;
    h' = LN(ReLU(o1(z) + o2(a))); gated: h' <- g h' + (1 - g) h.
    """

    def __init__(self, hidden: int, *, adjacency: Literal["graph", "full", "identity"] = "graph",
                 aggregation: Aggregation = "max", softmax_temperature: float = 1.0,
                 use_ln: bool = True, triplets: bool = False, triplet_fts: int = NB_TRIPLET_FTS,
                 gated: bool = False, triplet_budget_bytes: int = TRIPLET_BUDGET_BYTES) -> None:
        super().__init__()
        if aggregation not in AGGREGATIONS:
            raise ConfigError("aggregation", f"unknown aggregation {aggregation!r}; accepted: "
                              f"{', '.join(AGGREGATIONS)}")
        self.adjacency = adjacency
        self.aggregation = aggregation
        self.softmax_temperature = softmax_temperature
        self.m1, self.m2 = linear(2 * hidden, hidden), linear(2 * hidden, hidden)
        self.me, self.mg = linear(hidden, hidden), linear(hidden, hidden)
        self.mlp = nn.Sequential(linear(hidden, hidden), nn.ReLU(), linear(hidden, hidden))
        self.o1, self.o2 = linear(2 * hidden, hidden), linear(hidden, hidden)
        self.norm = nn.LayerNorm(hidden) if use_ln else nn.Identity()
        self.triplets = TripletMessages(hidden, triplet_fts, triplet_budget_bytes) if triplets else None
        self.gate = Gate(hidden) if gated else None
        self.returns_edges = triplets

    def forward(self, node_fts: Tensor, edge_fts: Tensor, graph_fts: Tensor, adj: Tensor,
                hidden: Tensor) -> tuple[Tensor, Tensor | None]:
        z = torch.cat([node_fts, hidden], dim=-1)
        msgs = (self.m1(z)[:, None, :] + self.m2(z)[:, :, None] + self.me(edge_fts)
                + self.mg(graph_fts)[:, None, None])
        msgs = self.mlp(F.relu(msgs))
        agg = aggregate(msgs, _adjacency(adj, self.adjacency), self.aggregation,
                        self.softmax_temperature)
        out = self.norm(F.relu(self.o1(z) + self.o2(agg)))
        if self.gate is not None:
            g = self.gate(z, agg)
            out = out * g + hidden * (1 - g)
        edge_out = self.triplets(z, edge_fts, graph_fts) if self.triplets is not None else None
        return out, edge_out


class GAT(nn.Module):
    """Graph attention (Velickovic et al. 2018) as CLRS builds it: per-head logits from both
    endpoints, the edge and the graph, LeakyReLU, softmax over the allowed senders, a residual
    skip, ReLU and LayerNorm. `full=True` attends over all nodes (gat_full)."""

    def __init__(self, hidden: int, *, heads: int = 1, full: bool = False,
                 use_ln: bool = True) -> None:
        super().__init__()
        if hidden % heads:
            raise ConfigError("nb_heads", f"{heads} heads do not divide the width {hidden}")
        self.heads, self.full = heads, full
        self.values, self.skip = linear(2 * hidden, hidden), linear(2 * hidden, hidden)
        self.a_send, self.a_recv = linear(2 * hidden, heads), linear(2 * hidden, heads)
        self.a_edge, self.a_graph = linear(hidden, heads), linear(hidden, heads)
        self.norm = nn.LayerNorm(hidden) if use_ln else nn.Identity()
        self.returns_edges = False

    def forward(self, node_fts: Tensor, edge_fts: Tensor, graph_fts: Tensor, adj: Tensor,
                hidden: Tensor) -> tuple[Tensor, None]:
        batch, n, width = node_fts.shape
        z = torch.cat([node_fts, hidden], dim=-1)
        logits = (self.a_send(z)[:, :, None] + self.a_recv(z)[:, None, :] + self.a_edge(edge_fts)
                  + self.a_graph(graph_fts)[:, None, None])  # [B, sender, receiver, heads]
        allowed = (torch.ones_like(adj) if self.full else adj).unsqueeze(-1) > 0
        logits = F.leaky_relu(logits) + (~allowed) * -1e9  # CLRS: (adj - 1) * 1e9
        coefs = torch.softmax(logits, dim=1)
        values = self.values(z).view(batch, n, self.heads, width // self.heads)
        out = torch.einsum("bxyh,bxhf->byhf", coefs, values).reshape(batch, n, width)
        return self.norm(F.relu(out + self.skip(z))), None


def make_processor(kind: str, hidden: int, *, aggregation: Aggregation = "max",
                   softmax_temperature: float = 1.0, use_ln: bool = True,
                   triplet_fts: int = NB_TRIPLET_FTS, nb_heads: int = 1,
                   triplet_budget_bytes: int = TRIPLET_BUDGET_BYTES) -> nn.Module:
    """A processor by CLRS's name (`get_processor_factory`, clrs.md §6.4); see `PROCESSORS`."""
    if kind in ("gat", "gat_full"):
        return GAT(hidden, heads=nb_heads, full=kind == "gat_full", use_ln=use_ln)
    base = kind.removeprefix("triplet_")
    adjacency = {"deepsets": "identity", "mpnn": "full", "gmpnn": "full", "pgn": "graph",
                 "gpgn": "graph"}.get(base)
    if kind not in PROCESSORS or adjacency is None:
        raise ConfigError("processor", f"unknown processor {kind!r}; accepted: {', '.join(PROCESSORS)}")
    return MessagePassing(hidden, adjacency=adjacency, aggregation=aggregation,
                          softmax_temperature=softmax_temperature, use_ln=use_ln,
                          triplets=kind.startswith("triplet_"), triplet_fts=triplet_fts,
                          gated=base.startswith("g"), triplet_budget_bytes=triplet_budget_bytes)
