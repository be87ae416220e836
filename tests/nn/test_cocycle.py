"""Asynchrony-invariant message passing: semiring maps, the three invariance levels, executors."""

from __future__ import annotations

import itertools

import pytest
import torch

from repdyn.bench.errors import ConfigError
from repdyn.nn import cocycle
from repdyn.nn.cocycle import (
    AggregationInvariantLayer,
    CappedLayer,
    CocycleLayer,
    LogSemiringLinear,
    TropicalLinear,
    UpdateInvariantLayer,
    log_semiring,
    masked_max,
    max_plus,
    run_asynchronous,
    run_synchronous,
    step_with_random_delivery,
)

DT = torch.float64
SCHEDULES = range(10)


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# ---------------------------------------------------------------- semiring-linear maps


def test_tropical_linear_equals_a_double_loop():
    layer = TropicalLinear(5, 3).to(DT)
    x = torch.randn(4, 5, generator=_gen(0), dtype=DT)
    y = layer(x)
    for r, j in itertools.product(range(4), range(3)):
        assert y[r, j] == max(x[r, i] + layer.weight[j, i] for i in range(5))


def test_log_semiring_linear_equals_a_double_loop_and_tends_to_tropical():
    x = torch.randn(2, 3, 6, generator=_gen(1), dtype=DT)
    weight = torch.randn(4, 6, generator=_gen(2), dtype=DT)
    tau = 0.7
    y = log_semiring(x, weight, tau)
    for a, b, j in itertools.product(range(2), range(3), range(4)):
        ref = tau * torch.log(sum(torch.exp((weight[j, i] + x[a, b, i]) / tau) for i in range(6)))
        assert torch.allclose(y[a, b, j], ref, rtol=1e-12, atol=1e-12)
    tropical = max_plus(x, weight)
    gaps = []
    for t in (1.0, 0.1, 0.01, 0.001):
        gap = log_semiring(x, weight, t) - tropical
        assert (gap >= -1e-12).all() and (gap <= t * torch.log(torch.tensor(6.0)) + 1e-12).all()
        gaps.append(gap.max().item())
    assert gaps == sorted(gaps, reverse=True) and gaps[-1] < 2e-3


def test_semiring_maps_have_exact_gradients():
    x = torch.randn(3, 5, generator=_gen(3), dtype=DT, requires_grad=True)
    weight = torch.randn(4, 5, generator=_gen(4), dtype=DT, requires_grad=True)
    assert torch.autograd.gradcheck(max_plus, (x, weight))
    assert torch.autograd.gradcheck(lambda a, w: log_semiring(a, w, 0.3), (x, weight))


@pytest.mark.parametrize("tau", [1.0, 0.3, 1e-3])
def test_log_semiring_matrix_product_equals_the_chunked_logsumexp(tau):
    """The matrix-product form (and, at tau = 1e-3, its underflow fallback) gives the chunked
    logsumexp's values and gradients, including on rows that are all -inf."""
    x = torch.randn(9, 7, generator=_gen(7), dtype=DT) * 4
    x[2] = float("-inf")
    weight = torch.randn(5, 7, generator=_gen(8), dtype=DT)
    upstream = torch.randn(9, 5, generator=_gen(9), dtype=DT)

    def run(fn):
        a, w = x.clone().requires_grad_(), weight.clone().requires_grad_()
        y = fn(a, w, tau)
        (torch.where(torch.isfinite(y), y * upstream, 0.0)).sum().backward()
        return y, a.grad, w.grad

    assert (cocycle._log_semiring_by_matmul(x, weight, tau) is None) == (tau < 0.01)  # the path under test
    fast, chunked = run(log_semiring), run(cocycle._LogSemiring.apply)
    assert torch.isneginf(fast[0][2]).all()
    for p, q in zip(fast, chunked, strict=True):
        assert torch.allclose(torch.nan_to_num(p), torch.nan_to_num(q), rtol=1e-10, atol=1e-10)


def test_chunked_maps_equal_one_chunk(monkeypatch):
    """Values and gradients do not depend on how the input axis is chunked."""
    x = torch.randn(6, 11, generator=_gen(5), dtype=DT)
    weight = torch.randn(7, 11, generator=_gen(6), dtype=DT)

    def run(fn):
        a, w = x.clone().requires_grad_(), weight.clone().requires_grad_()
        y = fn(a, w)
        (y * torch.arange(y.numel(), dtype=DT).view_as(y)).sum().backward()
        return y, a.grad, w.grad

    for fn in (max_plus, lambda a, w: cocycle._LogSemiring.apply(a, w, 0.5)):
        whole = run(fn)
        monkeypatch.setattr(cocycle, "_CHUNK_ELEMENTS", 6 * 7 * 3)  # chunks of 3 inputs
        pieces = run(fn)
        monkeypatch.undo()
        for p, q in zip(whole, pieces, strict=True):
            assert torch.allclose(p, q, rtol=1e-12, atol=1e-12)


# ---------------------------------------------------------------- layers


def _graph(seed: int, batch: int = 4, n: int = 16, p: float = 0.1):
    """Source-strength node features (coords 0-1 in [-2, 2], 2-3 in [-0.1, 0.1]), small edge
    and graph features, a sparse random directed graph, zero initial states."""
    gen = _gen(seed)

    def uniform(*shape):
        return torch.rand(*shape, generator=gen, dtype=DT) * 2 - 1

    x = uniform(batch, n, 4)
    x[..., :2] *= 2
    x[..., 2:] *= 0.1
    adj = (torch.rand(batch, n, n, generator=gen) < p).to(DT)
    return x, 0.1 * uniform(batch, n, n, 4), 0.1 * uniform(batch, 4), adj, torch.zeros(batch, n, 4, dtype=DT)


def _bounded_cocycle_layer(seed: int, semiring: str = "tropical", tau: float = 1.0):
    """An L3 layer whose fixed point is finite and reached in a few steps.

    The receiver's terms and the edge / graph terms are <= 0 for features in [-0.1, 0.1], and
    every hop through a sender's state loses >= 0.02; the senders' coordinates 0-1 inject values
    up to ~2 that then spread over several hops (random weights below those caps).
    """
    layer = CocycleLayer(4, semiring=semiring, tau=tau).to(DT)
    gen = _gen(seed)
    m1, m2, m_e, m_g = layer.maps

    def fill(w, top, spread=0.2):
        w.copy_(spread * torch.randn(w.shape, generator=gen, dtype=DT))
        w.sub_(w.max() - top)

    with torch.no_grad():
        fill(m1.weight, -30.0)
        fill(m1.weight[:, 2:4], -0.2, 0.02)
        fill(m2.weight, -30.0)
        fill(m2.weight[:, 0:2], 0.0)
        fill(m2.weight[:, 4:], -0.02)
        fill(m_e.weight, -0.1, 0.02)
        fill(m_g.weight, -0.1, 0.02)
    return layer


def _random_layer(level: int, seed: int, **kwargs):
    torch.manual_seed(seed)
    return cocycle.LEVELS[level](4, **kwargs).to(DT)


@pytest.mark.parametrize(
    "layer",
    [
        AggregationInvariantLayer(4),
        AggregationInvariantLayer(4, aggregation="sum"),
        UpdateInvariantLayer(4),
        CocycleLayer(4),
        CocycleLayer(4, semiring="log", tau=0.5),
    ],
    ids=["L1max", "L1sum", "L2", "L3tropical", "L3log"],
)
def test_processor_interface_and_permutation_equivariance(layer):
    layer = layer.to(DT)
    x, e, g, adj, _ = _graph(7, batch=2, n=6, p=0.5)
    h = torch.rand(2, 6, 4, generator=_gen(8), dtype=DT)
    out, edges = layer(x, e, g, adj, h)
    assert out.shape == h.shape and edges is None and layer.returns_edges is False
    perm = torch.randperm(6, generator=_gen(9))
    out_p, _ = layer(x[:, perm], e[:, perm][:, :, perm], g, adj[:, perm][:, :, perm], h[:, perm])
    assert torch.allclose(out_p, out[:, perm], rtol=1e-12, atol=1e-12)
    out.sum().backward()
    for name, p in layer.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name


def test_update_is_a_monoid_action_for_l2_and_l3_only():
    """phi(phi(h, a), b) == phi(h, a (+) b) with (+) = max (cocycles.md §2, level 2)."""
    gen = _gen(10)
    x, h, a, b = (torch.randn(3, 5, 4, generator=gen, dtype=DT) for _ in range(4))
    for layer in (UpdateInvariantLayer(4), CocycleLayer(4), CocycleLayer(4, semiring="log")):
        layer = layer.to(DT)
        twice = layer.update(x, layer.update(x, h, a), b)
        assert torch.equal(twice, layer.update(x, h, torch.maximum(a, b)))
    l1 = AggregationInvariantLayer(4).to(DT)
    twice = l1.update(x, l1.update(x, h, a), b)
    assert not torch.allclose(twice, l1.update(x, h, torch.maximum(a, b)), atol=1e-3)


def test_cocycle_identity_of_the_message():
    """A sender moving from s to m.s = max(m, s) emits delta(m, s) with psi(m.s) = psi(s) (+)
    delta(m, s) and delta(m1 (+) m2, s) = delta(m2, s) (+) delta(m1, m2.s) (cocycles.md §2).

    Tropical messages are max-homomorphisms: delta(m, s) = psi(m) works, exactly. Log-semiring
    messages are only monotone: delta(m, s) = psi(m.s) works, psi(m) does not.
    """
    gen = _gen(11)
    x, e, g, _, _ = _graph(12, batch=2, n=5)
    receiver = torch.randn(2, 5, 4, generator=gen, dtype=DT)
    s, m1, m2 = (torch.randn(2, 5, 4, generator=gen, dtype=DT) for _ in range(3))
    act = torch.maximum

    tropical = _random_layer(3, 13)

    def psi(state, layer=tropical):
        return layer.messages(x, e, g, state, receiver)

    def delta(m, state):
        return psi(m)

    assert torch.equal(psi(act(m1, s)), torch.maximum(psi(s), delta(m1, s)))
    assert torch.equal(delta(act(m1, m2), s), torch.maximum(delta(m2, s), delta(m1, act(m2, s))))

    log = _random_layer(3, 14, semiring="log", tau=0.5)

    def delta_log(m, state):
        return psi(act(m, state), log)

    assert torch.equal(psi(act(m1, s), log), torch.maximum(psi(s, log), delta_log(m1, s)))
    assert torch.equal(delta_log(act(m1, m2), s), torch.maximum(delta_log(m2, s), delta_log(m1, act(m2, s))))
    assert not torch.allclose(psi(act(m1, s), log), torch.maximum(psi(s, log), psi(m1, log)))


# ---------------------------------------------------------------- executors


@pytest.mark.parametrize("level", [2, 3])
def test_random_delivery_within_a_step_is_exact_for_update_invariant_layers(level):
    x, e, g, adj, _ = _graph(15)
    h = torch.rand(x.shape[:2] + (4,), generator=_gen(16), dtype=DT)
    layer = _random_layer(level, 17)
    sync, _ = layer(x, e, g, adj, h)
    for seed in SCHEDULES:
        assert torch.equal(step_with_random_delivery(layer, x, e, g, adj, h, seed), sync)


@pytest.mark.parametrize("aggregation", ["max", "sum"])
def test_random_delivery_within_a_step_changes_l1(aggregation):
    """L1 is invariant only to how messages are grouped inside one aggregation."""
    x, e, g, adj, _ = _graph(15)
    h = torch.rand(x.shape[:2] + (4,), generator=_gen(16), dtype=DT)
    layer = _random_layer(1, 17, aggregation=aggregation)
    sync, _ = layer(x, e, g, adj, h)
    msgs = layer.messages(x, e, g, h, h)
    edges = adj.bool()
    halves = edges & (torch.rand(adj.shape, generator=_gen(18)) < 0.5)
    if aggregation == "max":  # partial maxima (-inf when empty), combined, then L1's 0-fill
        combined = torch.maximum(masked_max(msgs, halves), masked_max(msgs, edges & ~halves))
        combined = torch.where(edges.any(dim=1)[..., None], combined, 0.0)
    else:
        combined = layer.aggregate(msgs, halves) + layer.aggregate(msgs, edges & ~halves)
    assert torch.allclose(layer.update(x, h, combined), sync, rtol=1e-12, atol=1e-12)
    gaps = [(step_with_random_delivery(layer, x, e, g, adj, h, seed) - sync).abs().max() for seed in SCHEDULES]
    assert max(gaps) > 1e-2


@pytest.mark.parametrize("semiring,tau", [("tropical", 1.0), ("log", 0.01)])
def test_asynchronous_execution_ends_where_synchronous_does_for_l3(semiring, tau):
    """cocycles.md §5 E7: 10 random schedules, final states equal to <= 1e-6."""
    layer = _bounded_cocycle_layer(19, semiring, tau)
    x, e, g, adj, h0 = _graph(20)
    sync = run_synchronous(layer, x, e, g, adj, h0)
    one_step, _ = layer(x, e, g, adj, h0)
    assert sync.converged and sync.steps >= 4  # a real multi-hop propagation ...
    assert (one_step != sync.hidden).any() and (sync.hidden != h0).float().mean() > 0.5
    for seed in SCHEDULES:
        run = run_asynchronous(layer, x, e, g, adj, h0, seed=seed)
        assert run.converged
        assert torch.allclose(run.hidden, sync.hidden, rtol=0, atol=1e-6)
        assert (run.messages < sync.messages).all()  # ... reached with fewer messages


def test_asynchronous_execution_of_a_capped_log_semiring_layer_ends_where_synchronous_does():
    """At tau = 1 (the study's setting) the log-semiring message is monotone but not a
    max-homomorphism; monotone is enough for the fixed point, so asynchrony still ends where
    synchronous execution does (capped, as the study runs it: uncapped it diverges)."""
    layer = CappedLayer(_bounded_cocycle_layer(19, "log", 1.0), 2.0)
    x, e, g, adj, h0 = _graph(20)
    sync = run_synchronous(layer, x, e, g, adj, h0)
    assert sync.converged and (sync.hidden < 2.0).any()  # not everything saturated at the cap
    for seed in SCHEDULES:
        run = run_asynchronous(layer, x, e, g, adj, h0, seed=seed)
        assert run.converged
        assert torch.allclose(run.hidden, sync.hidden, rtol=0, atol=1e-6)


def test_asynchronous_execution_changes_l2_with_linear_messages():
    """L2's messages are not monotone in the states: asynchrony changes its fixed point."""
    layer = _random_layer(2, 21)
    x, e, g, adj, h0 = _graph(20)
    sync = run_synchronous(layer, x, e, g, adj, h0)
    assert sync.converged
    gaps = []
    for seed in SCHEDULES:
        run = run_asynchronous(layer, x, e, g, adj, h0, seed=seed)
        assert run.converged
        gaps.append((run.hidden - sync.hidden).abs().max().item())
    assert max(gaps) > 1e-2


def _hand_layer(hidden: int, sender, receiver, edge, graph=0.0) -> CocycleLayer:
    """A tropical L3 layer over 1-d node / edge / graph features with weights given by hand
    (rows: output coordinate; node-map columns: feature, then state coordinates)."""
    layer = CocycleLayer(hidden, node_size=1, edge_size=1, graph_size=1).to(DT)
    m1, m2, m_e, m_g = layer.maps
    with torch.no_grad():
        m1.weight.copy_(torch.tensor(receiver, dtype=DT))
        m2.weight.copy_(torch.tensor(sender, dtype=DT))
        m_e.weight.copy_(torch.tensor(edge, dtype=DT).view(hidden, 1))
        m_g.weight.fill_(graph)
    return layer


def _zeros(n: int, hidden: int):
    return (torch.zeros(1, n, 1, dtype=DT), torch.zeros(1, n, n, 1, dtype=DT), torch.zeros(1, 1, dtype=DT))


def test_receiver_state_is_an_argument_of_the_message():
    """u -> v and w -> v; v's coordinate 1 gets h_u0 + h_v0 - 1 (a bilinear term) and w raises
    v's coordinate 0. By hand: sync gives v = (2.5, 3 + 2.5 - 1 = 4.5) in 2 steps (+1 to see
    the fixed point); every asynchronous order ends there too, because v recombines the sender
    states it stored with its own new state."""
    far = -100.0
    layer = _hand_layer(
        2, sender=[[far, 0.0, far], [far, 0.0, far]], receiver=[[0.0, far, far], [far, 0.0, far]], edge=[-0.5, -1.0]
    )
    x, e, g = _zeros(3, 2)
    adj = torch.zeros(1, 3, 3, dtype=DT)
    adj[0, 0, 2] = adj[0, 1, 2] = 1
    h0 = torch.tensor([[[2.0, 0.0], [3.0, 0.0], [0.0, 0.0]]], dtype=DT)
    expected = torch.tensor([[[2.0, 0.0], [3.0, 0.0], [2.5, 4.5]]], dtype=DT)
    sync = run_synchronous(layer, x, e, g, adj, h0)
    assert torch.equal(sync.hidden, expected) and sync.steps == 3
    for seed in SCHEDULES:
        assert torch.equal(run_asynchronous(layer, x, e, g, adj, h0, seed=seed).hidden, expected)


def test_message_counts_on_a_chain_equal_a_hand_count():
    """Chain 0 -> 1 -> ... -> 5, message h_u - 1, node 0 starts at 10: node k ends at 10 - k.

    Sync: node k changes at step k, step 6 changes nothing: 6 steps x 5 edges = 30 messages.
    Async: every node with an out-edge sends once at the start (5), and nodes 1..4 once more
    after their single change (4): 9 messages, whatever the schedule.
    """
    n, far = 6, -100.0
    layer = _hand_layer(1, sender=[[far, -1.0]], receiver=[[0.0, far]], edge=[0.0])
    x, e, g = _zeros(n, 1)
    adj = torch.zeros(1, n, n, dtype=DT)
    adj[0, torch.arange(n - 1), torch.arange(1, n)] = 1
    h0 = torch.zeros(1, n, 1, dtype=DT)
    h0[0, 0, 0] = 10
    expected = (10.0 - torch.arange(n, dtype=DT)).view(1, n, 1)
    expected[0, 1:] = torch.maximum(expected[0, 1:], torch.zeros(1, dtype=DT))
    sync = run_synchronous(layer, x, e, g, adj, h0)
    assert torch.equal(sync.hidden, expected)
    assert sync.steps == 6 and sync.messages.item() == 30 and torch.equal(sync.sent, 6 * adj.long())
    for seed in SCHEDULES:
        run = run_asynchronous(layer, x, e, g, adj, h0, seed=seed)
        assert torch.equal(run.hidden, expected)
        assert run.messages.item() == 9
        assert torch.equal(run.sent[0, torch.arange(n - 1), torch.arange(1, n)], torch.tensor([1, 2, 2, 2, 2]))
        assert 5 <= run.delivered.sum().item() <= 9


def test_masked_edges_never_deliver():
    layer = _bounded_cocycle_layer(22)
    x, e, g, adj, h0 = _graph(23, p=0.3)
    loud = torch.where(adj.bool()[..., None], e, torch.full_like(e, 1e3))  # huge off-graph
    sync = run_synchronous(layer, x, e, g, adj, h0)
    assert torch.equal(run_synchronous(layer, x, loud, g, adj, h0).hidden, sync.hidden)
    assert (sync.sent[adj == 0] == 0).all()
    for seed in range(3):
        run = run_asynchronous(layer, x, loud, g, adj, h0, seed=seed)
        assert torch.allclose(run.hidden, sync.hidden, rtol=0, atol=1e-12)
        assert (run.sent[adj == 0] == 0).all() and (run.delivered[adj == 0] == 0).all()
    assert torch.equal(step_with_random_delivery(layer, x, loud, g, adj, h0, 0), layer(x, e, g, adj, h0)[0])


def test_bad_arguments_are_config_errors():
    with pytest.raises(ConfigError, match="semiring"):
        CocycleLayer(4, semiring="boolean")
    with pytest.raises(ConfigError, match="aggregation"):
        AggregationInvariantLayer(4, aggregation="mean")
    with pytest.raises(ConfigError, match="tau"):
        LogSemiringLinear(3, 3, tau=0.0)
    layer = CocycleLayer(4)
    x, e, g, adj, h0 = _graph(1, batch=1, n=3)
    with pytest.raises(ConfigError, match="delivery_prob"):
        run_asynchronous(layer.to(DT), x, e, g, adj, h0, seed=0, delivery_prob=0.0)


# ---------------------------------------------------------------- sending only on change


@pytest.mark.parametrize("level", [2, 3])
def test_sending_only_on_change_keeps_the_fixed_point_with_fewer_messages(level):
    """With h' = max(h, agg) a message from an unchanged sender to an unchanged receiver is
    already absorbed, so skipping it changes no state at any step."""
    layer = _bounded_cocycle_layer(24) if level == 3 else _random_layer(2, 25)
    x, e, g, adj, h0 = _graph(26)
    plain = run_synchronous(layer, x, e, g, adj, h0)
    lazy = run_synchronous(layer, x, e, g, adj, h0, send_only_when_changed=True)
    assert plain.converged and lazy.converged and plain.steps >= 3
    assert torch.equal(lazy.hidden, plain.hidden) and lazy.steps == plain.steps
    assert (lazy.messages < plain.messages).all()
    # the first step sends on every edge, later ones only from nodes that changed before them
    assert (lazy.sent >= adj.long()).all() and (lazy.sent <= plain.sent).all()


def test_sending_only_on_change_changes_l1():
    """L1's update is not idempotent: re-applying it with the same messages moves the state."""
    layer = _random_layer(1, 27)
    x, e, g, adj, _ = _graph(26)
    h0 = torch.rand(x.shape[:2] + (4,), generator=_gen(28), dtype=DT)
    plain = run_synchronous(layer, x, e, g, adj, h0, max_steps=5)
    lazy = run_synchronous(layer, x, e, g, adj, h0, max_steps=5, send_only_when_changed=True)
    assert (lazy.hidden - plain.hidden).abs().max() > 1e-2


def test_chain_message_counts_when_sending_only_on_change():
    """The hand-counted chain of `test_message_counts_on_a_chain_equal_a_hand_count`: step 1
    sends on all 5 edges, steps 2-5 from node k - 1 only (the one that changed at step k - 1),
    step 6 from node 5, which has no out-edge: 9 messages, as asynchronously."""
    n, far = 6, -100.0
    layer = _hand_layer(1, sender=[[far, -1.0]], receiver=[[0.0, far]], edge=[0.0])
    x, e, g = _zeros(n, 1)
    adj = torch.zeros(1, n, n, dtype=DT)
    adj[0, torch.arange(n - 1), torch.arange(1, n)] = 1
    h0 = torch.zeros(1, n, 1, dtype=DT)
    h0[0, 0, 0] = 10
    lazy = run_synchronous(layer, x, e, g, adj, h0, send_only_when_changed=True)
    assert torch.equal(lazy.hidden, run_synchronous(layer, x, e, g, adj, h0).hidden)
    assert lazy.messages.item() == 9 and lazy.steps == 6


class _SumAggregationLayer(CocycleLayer):
    """L3's messages and update with sum aggregation: level 1 holds, level 2 does not
    (max(max(h, a), b) != max(h, a + b))."""

    def aggregate(self, msgs, mask):
        total = (msgs * mask[..., None]).sum(dim=1)
        return torch.where(mask.any(dim=1)[..., None], total, float("-inf"))


def test_sum_aggregation_differs_under_asynchrony():
    """The counterexample: the same weights with sum aggregation end elsewhere asynchronously
    (a partial sum of messages, some negative, exceeds the full one)."""
    invariant = _bounded_cocycle_layer(19)
    layer = _SumAggregationLayer(4).to(DT)
    layer.load_state_dict(invariant.state_dict())
    x, e, g, adj, h0 = _graph(20)
    sync = run_synchronous(CappedLayer(layer, 5.0), x, e, g, adj, h0)
    assert sync.converged
    gaps = [
        (run_asynchronous(CappedLayer(layer, 5.0), x, e, g, adj, h0, seed=s).hidden - sync.hidden).abs().max().item()
        for s in SCHEDULES
    ]
    assert max(gaps) > 1e-2


# ---------------------------------------------------------------- capped layer


def _growing_layer(seed: int) -> CocycleLayer:
    """A random L3 layer with positive-gain loops: its uncapped fixed point is at +inf."""
    layer = _random_layer(3, seed)
    with torch.no_grad():
        for m in layer.maps:
            m.weight.add_(0.5)
    return layer


def test_capping_gives_a_finite_fixed_point_that_asynchrony_keeps():
    layer = _growing_layer(29)
    x, e, g, adj, h0 = _graph(30)
    assert not run_synchronous(layer, x, e, g, adj, h0, max_steps=50).converged
    capped = CappedLayer(layer, 3.0)
    assert list(capped.parameters()) == list(layer.parameters())
    sync = run_synchronous(capped, x, e, g, adj, h0)
    assert sync.converged and sync.hidden.max() == 3.0 and (sync.hidden < 3.0).any()
    for seed in SCHEDULES:
        run = run_asynchronous(capped, x, e, g, adj, h0, seed=seed)
        assert run.converged and torch.equal(run.hidden, sync.hidden)


def test_capped_update_is_a_monoid_action_and_capped_messages_a_cocycle():
    """min(., c) distributes over max, so both algebraic conditions of cocycles.md §2 survive."""
    gen = _gen(31)
    layer = CappedLayer(_random_layer(3, 32), 0.5)
    x, e, g, _, _ = _graph(33, batch=2, n=5)
    h, a, b = (torch.randn(2, 5, 4, generator=gen, dtype=DT) for _ in range(3))
    assert torch.equal(layer.update(x, layer.update(x, h, a), b), layer.update(x, h, torch.maximum(a, b)))
    receiver = torch.randn(2, 5, 4, generator=gen, dtype=DT)

    def psi(state):  # the capped message, as the update sees it
        return layer.messages(x, e, g, state, receiver).clamp_max(0.5)

    assert torch.equal(psi(torch.maximum(a, b)), torch.maximum(psi(a), psi(b)))


def test_max_shifted_processor_subtracts_each_graphs_largest_state():
    layer = _random_layer(3, 34)
    shifted = cocycle.MaxShifted(layer)
    x, e, g, adj, _ = _graph(35, batch=3, n=6, p=0.5)
    h = torch.randn(3, 6, 4, generator=_gen(36), dtype=DT)
    out, edges = shifted(x, e, g, adj, h)
    step, _ = layer(x, e, g, adj, h)
    assert edges is None and shifted.returns_edges is False
    assert torch.equal(out, step - step.amax(dim=(1, 2), keepdim=True))
    assert torch.equal(out.amax(dim=(1, 2)), torch.zeros(3, dtype=DT))
    weights = torch.randn(out.shape, generator=_gen(37), dtype=DT)
    (grad_shifted,) = torch.autograd.grad((shifted(x, e, g, adj, h)[0] * weights).sum(), layer.maps[0].weight)
    (grad_plain,) = torch.autograd.grad((layer(x, e, g, adj, h)[0] * weights).sum(), layer.maps[0].weight)
    assert torch.equal(grad_shifted, grad_plain)  # the shift is a constant for gradients
