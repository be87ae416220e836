"""Encoders and decoders of the NAR, chosen by a probe's (location, type) only (clrs.md §6.1, §6.3).

No per-algorithm code: a probe named in a CLRS spec gets a `ProbeEncoder` (inputs and hints)
and/or a `ProbeDecoder` (outputs and hints) from its (stage, location, type). `encode_probes`
adds encodings into node [B, n, H], edge [B, n, n, H] and graph [B, H] features and ORs
pointers and edge masks into the adjacency; `postprocess` turns decoder logits into hard
predictions (evaluation) or soft ones (hints fed back, gradients flowing); `log_sinkhorn`
decodes permutation pointers.

Pointers are node indices (int64) or, once fed back soft, probability rows over nodes (float):
the dtype tells which, as CLRS's SOFT_POINTER type does.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from repdyn.nn.gnn import linear
from repdyn.tasks.clrs.specs import Location, Stage, Type

SINKHORN_TEMPERATURE = 0.1  # clrs.md §6.3
SINKHORN_STEPS_DECODE = 10  # clrs.md §6.3: the decoder's log-Sinkhorn (the paper says 60)
SINKHORN_STEPS_HINT = 25  # dm-clrs nets.py: soft re-prediction of permutation hints
SINKHORN_STEPS_EVAL = 50  # dm-clrs baselines.py: hard postprocessing of outputs
_POINTERS = (Type.POINTER, Type.PERMUTATION_POINTER)


def uniform(shape: tuple[int, ...], generator: torch.Generator | None, like: Tensor) -> Tensor:
    """U[0, 1) draws of `shape` with `like`'s dtype and device, from `generator` wherever it lives
    (a run seeded with one CPU generator draws the same numbers on the CPU and on a GPU)."""
    home = like.device if generator is None else generator.device
    return torch.rand(shape, generator=generator, dtype=like.dtype, device=home).to(like.device, non_blocking=True)


def log_sinkhorn(x: Tensor, steps: int, temperature: float = SINKHORN_TEMPERATURE,
                 zero_diagonal: bool = True, generator: torch.Generator | None = None,
                 noise: bool = False) -> Tensor:
    """Log of a doubly-stochastic matrix from logits [..., n, n] (clrs.md §6.3).

    Optional standard Gumbel noise (training), division by the temperature, the diagonal pushed
    to -1e6, then `steps` alternating row and column log-normalisations.
    """
    if noise:
        u = uniform(x.shape, generator, x)
        x = x - torch.log(-torch.log(u + 1e-12) + 1e-12)
    x = x / temperature
    if zero_diagonal:
        x = x - 1e6 * torch.eye(x.shape[-1], dtype=x.dtype, device=x.device)
    for _ in range(steps):
        x = torch.log_softmax(x, dim=-1)
        x = torch.log_softmax(x, dim=-2)
    return x


def expand_probe(data: Tensor, type_: str, nodes: int) -> Tensor:
    """A probe as features: pointer indices become one-hot rows over nodes; the rest float."""
    if type_ == Type.POINTER and not data.is_floating_point():
        return F.one_hot(data, nodes).float()
    return data.float()


class ProbeEncoder(nn.Module):
    """Linear encoder of one input/hint probe (clrs.md §6.1); edge pointers get a second one.

    Scalar hints use CLRS's `xavier_on_scalars`: weights with std 1/sqrt(H).
    """

    def __init__(self, stage: str, location: str, type_: str, hidden: int, nb_dims: int = 1) -> None:
        super().__init__()
        self.location, self.type_ = location, type_
        std = 1.0 / math.sqrt(hidden) if stage == Stage.HINT and type_ == Type.SCALAR else None
        self.first = linear(nb_dims if type_ == Type.CATEGORICAL else 1, hidden, std=std)
        self.second = (linear(1, hidden, std=std)
                       if location == Location.EDGE and type_ == Type.POINTER else None)

    def forward(self, x: Tensor) -> Tensor:
        """Encoding of expanded data x (categoricals keep their last axis)."""
        return self.first(x if self.type_ == Type.CATEGORICAL else x.unsqueeze(-1))


def encode_probes(encoders: Mapping[str, ProbeEncoder], probes: Mapping[str, Tensor],
                  node_fts: Tensor, edge_fts: Tensor, graph_fts: Tensor,
                  adj: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Add every probe's encoding where its (location, type) puts it (dm-clrs `accum_*`).

    Node pointers: edge features, and (x + x^T) > 0.5 into adj. Edge masks: edge features and
    (x + x^T) > 0 into adj. Edge pointers: mean over senders of one encoder plus mean over
    receivers of the other. Graph pointers: node features. Everything else: its own location.
    """
    nodes = node_fts.shape[1]
    for name, data in probes.items():
        enc = encoders[name]
        loc, t = enc.location, enc.type_
        x = expand_probe(data, t, nodes)
        if loc == Location.NODE and t in _POINTERS:
            adj = torch.maximum(adj, ((x + x.transpose(1, 2)) > 0.5).to(adj.dtype))
            edge_fts = edge_fts + enc(x)
        elif loc == Location.EDGE:
            if t == Type.MASK:
                adj = torch.maximum(adj, ((x + x.transpose(1, 2)) > 0.0).to(adj.dtype))
            if t == Type.POINTER:  # a Linear commutes with the mean: average x first
                edge_fts = edge_fts + enc(x.mean(1)) + enc.second(x.mean(2).unsqueeze(-1))
            else:
                edge_fts = edge_fts + enc(x)
        elif loc == Location.NODE or (loc == Location.GRAPH and t == Type.POINTER):
            node_fts = node_fts + enc(x)
        else:
            graph_fts = graph_fts + enc(x)
    return node_fts, edge_fts, graph_fts, adj


class ProbeDecoder(nn.Module):
    """Decoder of one output/hint probe from h_t [B, n, 3H], e_t [B, n, n, E], g [B, H]
    (clrs.md §6.3); returns logits: [B, n(, C)] nodes, [B, n, n(, C)] edges, [B(, C)] graph,
    and pointer logits over nodes on the last axis."""

    def __init__(self, location: str, type_: str, hidden: int, edge_width: int,
                 nb_dims: int = 1) -> None:
        super().__init__()
        self.location, self.type_ = location, type_
        out = nb_dims if type_ == Type.CATEGORICAL else 1
        h3 = 3 * hidden
        if location == Location.NODE and type_ in _POINTERS:
            self.layers = nn.ModuleList([linear(h3, hidden), linear(h3, hidden),
                                         linear(edge_width, hidden), linear(hidden, 1)])
        elif location == Location.NODE:
            self.layers = nn.ModuleList([linear(h3, out)])
        elif location == Location.EDGE and type_ == Type.POINTER:
            self.layers = nn.ModuleList([linear(h3, hidden), linear(h3, hidden),
                                         linear(edge_width, hidden), linear(h3, hidden),
                                         linear(hidden, 1)])
        elif location == Location.EDGE:
            self.layers = nn.ModuleList([linear(h3, out), linear(h3, out), linear(edge_width, out)])
        elif type_ == Type.POINTER:
            self.layers = nn.ModuleList([linear(h3, 1), linear(hidden, 1), linear(h3, 1)])
        else:
            self.layers = nn.ModuleList([linear(h3, out), linear(hidden, out)])

    def forward(self, h_t: Tensor, e_t: Tensor, graph_fts: Tensor) -> Tensor:
        layers, t = self.layers, self.type_
        squeeze = t in (Type.SCALAR, Type.MASK, Type.MASK_ONE)
        if self.location == Location.NODE:
            if t not in _POINTERS:
                pred = layers[0](h_t)
                return pred.squeeze(-1) if squeeze else pred
            p1, p2, p3 = layers[0](h_t), layers[1](h_t), layers[2](e_t)
            # logits[b, i, j] = L4(max(p1_i, p2_j + p3_ji)): node i points to node j
            p_m = torch.maximum(p1[:, :, None], (p2[:, :, None] + p3).transpose(1, 2))
            return layers[3](p_m).squeeze(-1)
        if self.location == Location.EDGE:
            pred = layers[0](h_t)[:, :, None] + layers[1](h_t)[:, None, :] + layers[2](e_t)
            if t == Type.POINTER:  # logits[b, i, j, k] = L5(max(pred_ij, L4(h_k)))
                p_m = torch.maximum(pred[:, :, :, None], layers[3](h_t)[:, None, None])
                return layers[4](p_m).squeeze(-1)
            return pred.squeeze(-1) if squeeze else pred
        pred = layers[0](h_t.amax(dim=1)) + layers[1](graph_fts)
        if t == Type.POINTER:  # logits over nodes j: pred + L3(h_j)
            return pred + layers[2](h_t).squeeze(-1)
        return pred.squeeze(-1) if squeeze else pred


def postprocess(type_: str, logits: Tensor, hard: bool) -> Tensor:
    """Decoder logits -> a prediction (dm-clrs `decoders.postprocess`).

    hard (evaluation): scalars as they are, masks thresholded at 0, mask_one/categorical one-hot
    of the argmax, pointers as argmax indices, permutation pointers one-hot of the argmax of a
    50-step log-Sinkhorn. soft (hints fed back): sigmoid, softmax, probability rows over nodes,
    and a 25-step Sinkhorn matrix; gradients flow.
    """
    if type_ == Type.SCALAR:
        return logits.detach() if hard else logits
    if type_ == Type.MASK:
        return (logits > 0).float() if hard else torch.sigmoid(logits)
    if type_ in (Type.MASK_ONE, Type.CATEGORICAL):
        if hard:
            return F.one_hot(logits.argmax(-1), logits.shape[-1]).float()
        return torch.softmax(logits, dim=-1)
    if type_ == Type.POINTER:
        return logits.argmax(-1) if hard else torch.softmax(logits, dim=-1)
    if type_ == Type.PERMUTATION_POINTER:
        steps = SINKHORN_STEPS_EVAL if hard else SINKHORN_STEPS_HINT
        probs = log_sinkhorn(logits, steps).exp()
        return F.one_hot(probs.argmax(-1), probs.shape[-1]).float() if hard else probs
    raise ValueError(f"cannot postprocess probes of type {type_!r}")
