"""Asynchrony-invariant message passing (Dudzik et al. 2023, cocycles.md).

Semiring-linear maps, message-passing layers at the three invariance levels of cocycles.md §2,
and two executors that run a layer to its fixed point: all messages every step, or random
subsets of in-flight messages per micro-step with nodes that send only when their state changed.

- `TropicalLinear`: y_j = max_i (W_ji + x_i), the max-plus semiring's linear map;
  `LogSemiringLinear`: y_j = tau * logsumexp_i ((W_ji + x_i) / tau), which tends to it as
  tau -> 0. The tropical map is computed in input chunks by a custom autograd function, so
  memory stays O(rows x out x chunk) instead of O(rows x out x in); the log-semiring map is a
  matrix product of exponentials (chunked only where that would underflow).
- Layers (`MessagePassingLayer`s with the NAR processor signature `forward(node_fts,
  edge_fts, graph_fts, adj, hidden) -> (hidden, None)`, edges indexed [b, sender, receiver],
  z = [node_fts || hidden]; `messages`, `aggregate` and `update` are exposed for the executors):
  L1 `AggregationInvariantLayer`: CLRS's MPNN step - MLP messages, max (or sum) aggregation,
  h' = ReLU(o1(z) + o2(agg)); only the grouping of messages inside one aggregation is free.
  L2 `UpdateInvariantLayer`: linear messages, max aggregation, h' = max(h, agg), a monoid
  action, so the messages of one step may arrive in any order and batching. Across steps it is
  not invariant, and that is intrinsic, not an executor artefact: a receiver keeps the max of
  every message it ever got, so its final state depends on which intermediate sender (and
  receiver) states a schedule happens to visit; only when the message is monotone in the
  states (level 3: a tropical map even has m(max(s, s')) = max(m(s), m(s')), the cocycle
  condition; a log-semiring map is monotone only) is every visited state's message dominated by
  the last one, so that the fixed point does not depend on the schedule.
  A linear m with a negative weight is not even monotone, so a transient state can leave a
  message that the synchronous run never produces.
  L3 `CocycleLayer`: the same with semiring-linear messages m_uv = m1(z_v) + m2(z_u) +
  m_e(e_uv) + m_g(g); monotone and (tropical) max-homomorphic in the states, so senders may
  also change state between sends: the final state does not depend on the schedule.
- `CappedLayer`: an L2/L3 layer with messages capped at a ceiling, so that a trained layer
  has a finite fixed point to run to; `MaxShifted`: a processor that shifts each graph's
  states to a maximum of 0 between steps (a NAR-level normalisation outside the layer).
- `run_synchronous` (optionally sending only from nodes that changed) / `run_asynchronous`
  execute a layer until nothing changes and count messages; `step_with_random_delivery`
  delivers one step's messages in random groups.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from repdyn.bench.errors import ConfigError

_CHUNK_ELEMENTS = 1 << 22  # rows x out x chunk floats materialised at once by the maps


def _chunk(rows: int, out: int, width: int) -> int:
    return max(1, min(width, _CHUNK_ELEMENTS // max(1, rows * out)))


class _MaxPlus(torch.autograd.Function):
    """y[r, j] = max_i (x[r, i] + w[j, i]); the gradient goes to the first maximising i."""

    @staticmethod
    def forward(ctx, x: Tensor, weight: Tensor) -> Tensor:
        rows, width = x.shape
        out = weight.shape[0]
        best = x.new_full((rows, out), float("-inf"))
        arg = torch.zeros((rows, out), dtype=torch.int64, device=x.device)
        step = _chunk(rows, out, width)
        for start in range(0, width, step):
            scores = x[:, None, start : start + step] + weight[None, :, start : start + step]
            value, index = scores.max(dim=-1)
            better = value > best
            best = torch.where(better, value, best)
            arg = torch.where(better, index + start, arg)
        ctx.save_for_backward(arg)
        ctx.shapes = (width, out)
        return best

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, Tensor]:
        (arg,) = ctx.saved_tensors
        width, out = ctx.shapes
        grad_x = grad.new_zeros((grad.shape[0], width)).scatter_add_(1, arg, grad)
        flat = (torch.arange(out, device=grad.device) * width + arg).reshape(-1)
        grad_w = grad.new_zeros(out * width).index_add_(0, flat, grad.reshape(-1))
        return grad_x, grad_w.view(out, width)


class _LogSemiring(torch.autograd.Function):
    """y[r, j] = tau * logsumexp_i ((x[r, i] + w[j, i]) / tau), chunked over i both ways."""

    @staticmethod
    def forward(ctx, x: Tensor, weight: Tensor, tau: float) -> Tensor:
        rows, width = x.shape
        out = weight.shape[0]
        acc = x.new_full((rows, out), float("-inf"))
        step = _chunk(rows, out, width)
        for start in range(0, width, step):
            scores = (x[:, None, start : start + step] + weight[None, :, start : start + step]) / tau
            acc = torch.logaddexp(acc, torch.logsumexp(scores, dim=-1))
        y = acc * tau
        ctx.save_for_backward(x, weight, y)
        ctx.tau = tau
        return y

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, Tensor, None]:
        x, weight, y = ctx.saved_tensors
        rows, width = x.shape
        finite = torch.isfinite(y)
        grad = torch.where(finite, grad, torch.zeros_like(grad))
        y = torch.where(finite, y, torch.zeros_like(y))
        grad_x, grad_w = torch.zeros_like(x), torch.zeros_like(weight)
        step = _chunk(rows, weight.shape[0], width)
        for start in range(0, width, step):
            stop = start + step
            share = torch.exp(
                (x[:, None, start:stop] + weight[None, :, start:stop] - y[:, :, None]) / ctx.tau
            )  # softmax weights, [rows, out, c]
            weighted = share * grad[:, :, None]
            grad_x[:, start:stop] = weighted.sum(dim=1)
            grad_w[:, start:stop] = weighted.sum(dim=0)
        return grad_x, grad_w, None


def max_plus(x: Tensor, weight: Tensor) -> Tensor:
    """Tropical matrix-vector product over the last axis: [..., in] x [out, in] -> [..., out]."""
    lead = x.shape[:-1]
    y = _MaxPlus.apply(x.reshape(-1, x.shape[-1]), weight)
    return y.reshape(*lead, weight.shape[0])


def log_semiring(x: Tensor, weight: Tensor, tau: float) -> Tensor:
    """Log-semiring product at temperature tau: [..., in] x [out, in] -> [..., out].

    On the CPU it is a matrix product, tau * log(exp(x / tau - a) @ exp(W / tau - b)^T) + tau (a + b)
    with a, b the row maxima, unless that would underflow (a best term below ~1e-19 of both maxima,
    e.g. at small tau). Telling which needs a host read, free on the CPU but a wait on an accelerator,
    so there (and where it would underflow) the chunked logsumexp `_LogSemiring` computes it.
    """
    lead = x.shape[:-1]
    rows = x.reshape(-1, x.shape[-1])
    y = _log_semiring_by_matmul(rows, weight, tau) if rows.device.type == "cpu" else None
    if y is None:
        y = _LogSemiring.apply(rows, weight, tau)
    return y.reshape(*lead, weight.shape[0])


def _log_semiring_by_matmul(rows: Tensor, weight: Tensor, tau: float) -> Tensor | None:
    """`log_semiring` of [rows, in] x [out, in] as one matrix product; None where that underflows."""
    xs, ws = rows / tau, weight / tau
    a = xs.detach().amax(dim=-1, keepdim=True)
    b = ws.detach().amax(dim=-1, keepdim=True)
    finite = torch.isfinite(a)
    a = torch.where(finite, a, torch.zeros_like(a))
    total = torch.exp(xs - a) @ torch.exp(ws - b).T
    if (total[finite.expand_as(total)] < torch.finfo(total.dtype).tiny ** 0.5).any():
        return None
    # an all -inf row gives -inf, with zero gradients instead of log(0)'s
    total = torch.where(finite, total, torch.ones_like(total))
    return torch.where(finite, tau * (torch.log(total) + a + b.T), float("-inf"))


class TropicalLinear(nn.Module):
    """Max-plus linear map y_j = max_i (W_ji + x_i) (cocycles.md §4).

    A bias would add nothing: W_ji + b_j is another W. It commutes with max
    (f(max(x, x')) = max(f(x), f(x'))), which makes messages built from it cocycles.
    """

    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        # small random offsets, so that different outputs pick different inputs
        self.weight = nn.Parameter(torch.randn(out_features, in_features) / math.sqrt(in_features))

    def forward(self, x: Tensor) -> Tensor:
        return max_plus(x, self.weight)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}"


class LogSemiringLinear(nn.Module):
    """Log-semiring linear map y_j = tau * logsumexp_i ((W_ji + x_i) / tau) (cocycles.md §2).

    A smooth, monotone relative of `TropicalLinear`, within tau * log(in_features) above it.
    """

    def __init__(self, in_features: int, out_features: int, tau: float = 1.0) -> None:
        super().__init__()
        if not tau > 0:
            raise ConfigError("tau", f"must be > 0, got {tau}")
        self.in_features, self.out_features, self.tau = in_features, out_features, tau
        # offset by -tau log(in): a zero input maps to about zero, as in the tropical map
        self.weight = nn.Parameter(
            torch.randn(out_features, in_features) / math.sqrt(in_features) - tau * math.log(in_features)
        )

    def forward(self, x: Tensor) -> Tensor:
        return log_semiring(x, self.weight, self.tau)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, tau={self.tau}"


def masked_max(msgs: Tensor, mask: Tensor) -> Tensor:
    """Max over senders (axis 1) of msgs [B, n, n, H] where mask [B, n, n] holds; -inf if none."""
    return msgs.masked_fill(~mask[..., None], float("-inf")).amax(dim=1)


class MessagePassingLayer(nn.Module):
    """One message-passing step, split into messages -> aggregate -> update for the executors."""

    returns_edges = False  # the NAR processor flag: no edge embeddings are returned

    def __init__(self, hidden_size: int, node_size: int | None, edge_size: int | None, graph_size: int | None) -> None:
        super().__init__()
        self.hidden_size = hidden_size
        self.node_size = node_size or hidden_size
        self.edge_size = edge_size or hidden_size
        self.graph_size = graph_size or hidden_size

    def forward(
        self, node_fts: Tensor, edge_fts: Tensor, graph_fts: Tensor, adj: Tensor, hidden: Tensor
    ) -> tuple[Tensor, None]:
        """One synchronous step: every edge with adj[b, u, v] > 0 delivers m_uv to v."""
        msgs = self.messages(node_fts, edge_fts, graph_fts, hidden, hidden)
        return self.update(node_fts, hidden, self.aggregate(msgs, adj > 0)), None

    def messages(
        self, node_fts: Tensor, edge_fts: Tensor, graph_fts: Tensor, sender_hidden: Tensor, receiver_hidden: Tensor
    ) -> Tensor:
        """m[b, u, v] for every pair, [B, n, n, H]; the sender's hidden is [B, n, H] or, one
        (possibly outdated) copy per edge, [B, n, n, H]."""
        raise NotImplementedError

    def aggregate(self, msgs: Tensor, mask: Tensor) -> Tensor:
        """Combine the messages of the senders u with mask[b, u, v] into [B, n, H]."""
        return masked_max(msgs, mask)

    def update(self, node_fts: Tensor, hidden: Tensor, agg: Tensor) -> Tensor:
        """New hidden state from the old one and the aggregate."""
        raise NotImplementedError

    def _multilinear(
        self, node_fts: Tensor, edge_fts: Tensor, graph_fts: Tensor, sender_hidden: Tensor, receiver_hidden: Tensor
    ) -> Tensor:
        """m1(z_v) + m2(z_u) + m_e(e_uv) + m_g(g) with (m1, m2, m_e, m_g) = `self.maps`
        (clrs.md §6.4's message layout)."""
        m1, m2, m_e, m_g = self.maps
        receiver = m1(torch.cat([node_fts, receiver_hidden], dim=-1))
        if sender_hidden.dim() == 4:  # per-edge copies of the sender's state
            x = node_fts[:, :, None].expand(-1, -1, sender_hidden.shape[2], -1)
            sender = m2(torch.cat([x, sender_hidden], dim=-1))
        else:
            sender = m2(torch.cat([node_fts, sender_hidden], dim=-1))[:, :, None]
        return receiver[:, None] + sender + m_e(edge_fts) + m_g(graph_fts)[:, None, None]


class AggregationInvariantLayer(MessagePassingLayer):
    """L1: CLRS's MPNN step without LayerNorm (clrs.md §6.4); aggregation max or sum.

    msgs = MLP(ReLU(m1(z_v) + m2(z_u) + m_e(e_uv) + m_g(g))), h' = ReLU(o1(z) + o2(agg)).
    A node without incoming edges aggregates to 0.
    """

    def __init__(
        self,
        hidden_size: int,
        aggregation: Literal["max", "sum"] = "max",
        node_size: int | None = None,
        edge_size: int | None = None,
        graph_size: int | None = None,
    ) -> None:
        super().__init__(hidden_size, node_size, edge_size, graph_size)
        if aggregation not in ("max", "sum"):
            raise ConfigError("aggregation", f"must be 'max' or 'sum', got {aggregation!r}")
        self.aggregation = aggregation
        h, z = hidden_size, self.node_size + hidden_size
        self.maps = nn.ModuleList(
            [nn.Linear(z, h), nn.Linear(z, h), nn.Linear(self.edge_size, h), nn.Linear(self.graph_size, h)]
        )
        self.mlp = nn.Sequential(nn.ReLU(), nn.Linear(h, h), nn.ReLU(), nn.Linear(h, h))
        self.o1, self.o2 = nn.Linear(z, h), nn.Linear(h, h)

    def messages(self, node_fts, edge_fts, graph_fts, sender_hidden, receiver_hidden):
        return self.mlp(self._multilinear(node_fts, edge_fts, graph_fts, sender_hidden, receiver_hidden))

    def aggregate(self, msgs: Tensor, mask: Tensor) -> Tensor:
        if self.aggregation == "sum":
            return (msgs * mask[..., None]).sum(dim=1)
        agg = masked_max(msgs, mask)
        return torch.where(mask.any(dim=1)[..., None], agg, torch.zeros_like(agg))

    def update(self, node_fts: Tensor, hidden: Tensor, agg: Tensor) -> Tensor:
        return F.relu(self.o1(torch.cat([node_fts, hidden], dim=-1)) + self.o2(agg))


class _MaxUpdateLayer(MessagePassingLayer):
    """Messages m1(z_v) + m2(z_u) + m_e(e_uv) + m_g(g) from `self.maps`, max aggregation, and
    the update h' = max(h, agg) - a monoid action: phi(phi(h, a), b) = phi(h, max(a, b))."""

    def messages(self, node_fts, edge_fts, graph_fts, sender_hidden, receiver_hidden):
        return self._multilinear(node_fts, edge_fts, graph_fts, sender_hidden, receiver_hidden)

    def update(self, node_fts: Tensor, hidden: Tensor, agg: Tensor) -> Tensor:
        return torch.maximum(hidden, agg)


class UpdateInvariantLayer(_MaxUpdateLayer):
    """L2: ordinary linear maps m1, m2, m_e, m_g; max aggregation; h' = max(h, agg).

    The messages of one step may arrive in any order and grouping; a sender that changes state
    between sends does change the result (linear messages are not monotone).
    """

    def __init__(
        self,
        hidden_size: int,
        node_size: int | None = None,
        edge_size: int | None = None,
        graph_size: int | None = None,
    ) -> None:
        super().__init__(hidden_size, node_size, edge_size, graph_size)
        h, z = hidden_size, self.node_size + hidden_size
        self.maps = nn.ModuleList(
            [nn.Linear(z, h), nn.Linear(z, h), nn.Linear(self.edge_size, h), nn.Linear(self.graph_size, h)]
        )


class CocycleLayer(_MaxUpdateLayer):
    """L3: semiring-linear maps (tropical, or log-semiring at temperature tau); max
    aggregation; h' = max(h, agg).

    m_uv = m1(z_v) + m2(z_u) + m_e(e_uv) + m_g(g), + being the semiring's product: multilinear,
    and monotone in both states, so a sender may move from s to max(s, m) between sends and the
    receiver still ends where synchronous execution does (cocycles.md §2-§3).
    """

    def __init__(
        self,
        hidden_size: int,
        semiring: Literal["tropical", "log"] = "tropical",
        tau: float = 1.0,
        node_size: int | None = None,
        edge_size: int | None = None,
        graph_size: int | None = None,
    ) -> None:
        super().__init__(hidden_size, node_size, edge_size, graph_size)
        if semiring not in ("tropical", "log"):
            raise ConfigError("semiring", f"must be 'tropical' or 'log', got {semiring!r}")
        self.semiring = semiring

        def linear(fan_in: int) -> nn.Module:
            if semiring == "tropical":
                return TropicalLinear(fan_in, hidden_size)
            return LogSemiringLinear(fan_in, hidden_size, tau)

        z = self.node_size + hidden_size
        self.maps = nn.ModuleList([linear(z), linear(z), linear(self.edge_size), linear(self.graph_size)])


LEVELS = {1: AggregationInvariantLayer, 2: UpdateInvariantLayer, 3: CocycleLayer}


class CappedLayer(MessagePassingLayer):
    """A max-update layer whose messages are capped: h' = max(h, min(agg, ceiling)).

    Running a trained L3 layer to its fixed point can diverge (a state feeding a positive-gain
    cycle grows without bound, since messages add the sender's and receiver's states). Capping
    keeps the invariance: min(., c) distributes over max, so the capped message is still
    monotone, a max-homomorphism when the message is, and the update is still a monoid action;
    states then stay below max(h0, c) and a fixed point exists. Shares the wrapped layer's
    parameters.
    """

    def __init__(self, layer: _MaxUpdateLayer, ceiling: float) -> None:
        super().__init__(layer.hidden_size, layer.node_size, layer.edge_size, layer.graph_size)
        self.layer, self.ceiling = layer, ceiling

    def messages(self, node_fts, edge_fts, graph_fts, sender_hidden, receiver_hidden):
        return self.layer.messages(node_fts, edge_fts, graph_fts, sender_hidden, receiver_hidden)

    def aggregate(self, msgs: Tensor, mask: Tensor) -> Tensor:
        return self.layer.aggregate(msgs, mask)

    def update(self, node_fts: Tensor, hidden: Tensor, agg: Tensor) -> Tensor:
        return torch.maximum(hidden, agg.clamp_max(self.ceiling))


class MaxShifted(nn.Module):
    """A processor that runs `layer` for one step and then subtracts each graph's largest state.

    Max-update states only grow (by a few units per step for a trained tropical layer), so at
    larger sizes, with more steps, the decoders would read states far outside the training
    range. The shift is one scalar per graph between steps, outside the layer, so the layer's
    step (and its invariance) is untouched; it is treated as a constant for gradients.
    """

    returns_edges = False

    def __init__(self, layer: MessagePassingLayer) -> None:
        super().__init__()
        self.layer = layer

    def forward(
        self, node_fts: Tensor, edge_fts: Tensor, graph_fts: Tensor, adj: Tensor, hidden: Tensor
    ) -> tuple[Tensor, None]:
        new, _ = self.layer(node_fts, edge_fts, graph_fts, adj, hidden)
        return new - new.detach().amax(dim=(1, 2), keepdim=True), None


@dataclasses.dataclass
class Execution:
    """A run to a fixed point: final states, steps taken, and messages per edge."""

    hidden: Tensor  # [B, n, H] final states
    sent: Tensor  # [B, n, n] messages sent on each edge (sender, receiver)
    delivered: Tensor  # [B, n, n] delivered (async: a newer send replaces an undelivered one)
    steps: int  # synchronous: layer steps; asynchronous: micro-steps
    converged: bool  # a finite fixed point (sync) or quiescence (async) within the cap

    @property
    def messages(self) -> Tensor:
        """Messages sent per graph, [B]."""
        return self.sent.sum(dim=(1, 2))


@torch.no_grad()
def run_synchronous(
    layer: MessagePassingLayer,
    node_fts: Tensor,
    edge_fts: Tensor,
    graph_fts: Tensor,
    adj: Tensor,
    hidden: Tensor,
    max_steps: int = 1000,
    send_only_when_changed: bool = False,
) -> Execution:
    """Apply the layer step by step until the states stop changing.

    Plain: every edge sends every step; a graph's count stops at the step that first leaves it
    unchanged (that step included). `send_only_when_changed`: after the first step only nodes
    whose state changed in the previous step send, and a node whose own state changed
    recombines the sender states it stored (a local event, not a message). With an idempotent
    update h' = max(h, agg) (L2, L3) a skipped message m(h_u, h_v) equals one already absorbed
    into h_v, so the final state is unchanged; L1's update is not idempotent, so it changes.
    """
    mask = adj > 0
    sent = torch.zeros(mask.shape, dtype=torch.int64, device=adj.device)
    done = torch.zeros(mask.shape[0], dtype=torch.bool, device=adj.device)
    changed = torch.ones(mask.shape[:2], dtype=torch.bool, device=adj.device)
    steps = 0
    while steps < max_steps and not bool(done.all()):
        if send_only_when_changed:
            senders = mask & changed[:, :, None]
            group = senders | (mask & changed[:, None, :])
            msgs = layer.messages(node_fts, edge_fts, graph_fts, hidden, hidden)
            new = layer.update(node_fts, hidden, layer.aggregate(msgs, group))
            new = torch.where(group.any(dim=1)[..., None], new, hidden)
        else:
            senders = mask & ~done[:, None, None]
            new, _ = layer(node_fts, edge_fts, graph_fts, adj, hidden)
        sent += senders
        steps += 1
        changed = (new != hidden).any(dim=-1)
        done |= ~changed.any(dim=1)
        hidden = new
    return Execution(hidden, sent, sent.clone(), steps, bool(done.all()) and _finite(hidden))


@torch.no_grad()
def run_asynchronous(
    layer: MessagePassingLayer,
    node_fts: Tensor,
    edge_fts: Tensor,
    graph_fts: Tensor,
    adj: Tensor,
    hidden: Tensor,
    seed: int,
    delivery_prob: float = 0.5,
    max_micro_steps: int = 100_000,
) -> Execution:
    """Run the layer asynchronously until no message is in flight and no node is stale.

    - A node sends its current state along all its out-edges at the start and whenever its state
      changed since its last send; an edge holds one message in flight (a newer send replaces
      an undelivered older one).
    - Each micro-step delivers a random subset of the in-flight messages (each with
      probability `delivery_prob`, at least one event overall): v stores the sender state it
      received, and applies `update` once to the aggregate of this micro-step's messages.
    - The receiver is an argument of the message too: when v's state changes, v recombines its
      stored sender states with its new state (a local event, scheduled like a delivery).

    A layer whose update is not idempotent (L1) may never fall quiet: `converged` is then False.
    """
    if not 0 < delivery_prob <= 1:
        raise ConfigError("delivery_prob", f"must be in (0, 1], got {delivery_prob}")
    gen = torch.Generator(device=adj.device).manual_seed(seed)
    mask = adj > 0
    shape = mask.shape
    sent = torch.zeros(shape, dtype=torch.int64, device=adj.device)
    delivered = torch.zeros_like(sent)
    in_flight = hidden[:, :, None].expand(-1, -1, shape[2], -1).clone()
    received = torch.zeros_like(in_flight)
    pending = torch.zeros(shape, dtype=torch.bool, device=adj.device)
    has_received = torch.zeros_like(pending)
    unsent = torch.ones(shape[:2], dtype=torch.bool, device=adj.device)
    stale = torch.zeros_like(unsent)
    steps = 0
    while steps < max_micro_steps:
        sending = mask & unsent[:, :, None]
        in_flight = torch.where(sending[..., None], hidden[:, :, None], in_flight)
        pending |= sending
        sent += sending
        unsent[:] = False
        if not (pending.any() or stale.any()):
            return Execution(hidden, sent, delivered, steps, _finite(hidden))
        deliver = pending & (torch.rand(shape, generator=gen, device=adj.device) < delivery_prob)
        refresh = stale & (torch.rand(shape[:2], generator=gen, device=adj.device) < delivery_prob)
        if not (deliver.any() or refresh.any()):
            deliver, refresh = _one_event(pending, stale, gen)
        received = torch.where(deliver[..., None], in_flight, received)
        has_received |= deliver
        pending &= ~deliver
        delivered += deliver
        group = deliver | (refresh[:, None, :] & has_received)
        msgs = layer.messages(node_fts, edge_fts, graph_fts, received, hidden)
        new = layer.update(node_fts, hidden, layer.aggregate(msgs, group))
        new = torch.where(group.any(dim=1)[..., None], new, hidden)
        changed = (new != hidden).any(dim=-1)
        stale = (stale & ~refresh) | (changed & has_received.any(dim=1))
        unsent |= changed
        hidden = new
        steps += 1
    return Execution(hidden, sent, delivered, steps, False)


def _finite(hidden: Tensor) -> bool:
    """A state that overflowed to inf "stops changing" too; that is divergence, not a fixed point."""
    return bool(torch.isfinite(hidden).all())


def _one_event(pending: Tensor, stale: Tensor, gen: torch.Generator) -> tuple[Tensor, Tensor]:
    """One in-flight message or stale node, uniformly at random."""
    events = torch.cat([pending.flatten(), stale.flatten()])
    choice = torch.multinomial(events.float(), 1, generator=gen)
    pick = torch.zeros_like(events).index_fill_(0, choice, True)
    return pick[: pending.numel()].view_as(pending), pick[pending.numel() :].view_as(stale)


@torch.no_grad()
def step_with_random_delivery(
    layer: MessagePassingLayer,
    node_fts: Tensor,
    edge_fts: Tensor,
    graph_fts: Tensor,
    adj: Tensor,
    hidden: Tensor,
    seed: int,
    delivery_prob: float = 0.5,
) -> Tensor:
    """One layer step whose messages (all computed from `hidden`) arrive in random groups.

    Each micro-step delivers a random subset of the remaining messages and every receiver
    applies `update` to its group's aggregate; nodes without incoming edges update once with an
    empty group. An update-invariant layer (L2, L3) gives exactly its synchronous step.
    """
    gen = torch.Generator(device=adj.device).manual_seed(seed)
    mask = adj > 0
    msgs = layer.messages(node_fts, edge_fts, graph_fts, hidden, hidden)
    isolated = ~mask.any(dim=1)
    state = torch.where(isolated[..., None], layer.update(node_fts, hidden, layer.aggregate(msgs, mask)), hidden)
    left = mask.clone()
    while left.any():
        group = left & (torch.rand(mask.shape, generator=gen, device=adj.device) < delivery_prob)
        if not group.any():
            group, _ = _one_event(left, torch.zeros(0, dtype=torch.bool, device=adj.device), gen)
        new = layer.update(node_fts, state, layer.aggregate(msgs, group))
        state = torch.where(group.any(dim=1)[..., None], new, state)
        left &= ~group
    return state
