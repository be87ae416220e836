"""GNN processors: equivariance, adjacency masking, aggregators, triplets vs a loop, gate, decay."""

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from repdyn.bench.errors import ConfigError
from repdyn.nn.gnn import (
    AGGREGATIONS,
    BIG_NUMBER,
    PROCESSORS,
    Gate,
    LatentDecay,
    TripletMessages,
    aggregate,
    make_processor,
    triplet_chunk,
    triplet_max,
)

B, N, H = 2, 5, 8


def _graph(seed: int = 0, batch: int = B, n: int = N, hidden: int = H):
    g = torch.Generator().manual_seed(seed)
    node = torch.randn(batch, n, hidden, generator=g, dtype=torch.float64)
    edge = torch.randn(batch, n, n, hidden, generator=g, dtype=torch.float64)
    graph = torch.randn(batch, hidden, generator=g, dtype=torch.float64)
    hidden_state = torch.randn(batch, n, hidden, generator=g, dtype=torch.float64)
    adj = (torch.rand(batch, n, n, generator=g) < 0.5).double()
    adj = ((adj + adj.transpose(1, 2) + torch.eye(n)) > 0).double()
    adj[0, 1, 3] = 0.0  # one directed non-edge, to catch a transposed mask
    return node, edge, graph, adj, hidden_state


def _processor(kind: str, **kwargs):
    torch.manual_seed(0)
    return make_processor(kind, H, **kwargs).double()


@pytest.mark.parametrize("kind", PROCESSORS)
def test_every_processor_is_permutation_equivariant(kind):
    proc = _processor(kind, nb_heads=2)
    node, edge, graph, adj, hidden = _graph()
    perm = torch.tensor([3, 0, 4, 1, 2])
    out, edge_out = proc(node, edge, graph, adj, hidden)
    p_out, p_edge = proc(node[:, perm], edge[:, perm][:, :, perm], graph, adj[:, perm][:, :, perm],
                         hidden[:, perm])
    torch.testing.assert_close(p_out, out[:, perm], atol=1e-10, rtol=0)
    assert (edge_out is None) == (not kind.startswith("triplet_"))
    if edge_out is not None:
        assert edge_out.shape == (B, N, N, H)
        torch.testing.assert_close(p_edge, edge_out[:, perm][:, :, perm], atol=1e-10, rtol=0)


@pytest.mark.parametrize("kind", AGGREGATIONS)
def test_aggregators_ignore_non_edges_and_match_a_loop(kind):
    g = torch.Generator().manual_seed(1)
    msgs = torch.randn(B, N, N, H, generator=g, dtype=torch.float64)
    _, _, _, adj, _ = _graph()
    out = aggregate(msgs, adj, kind)
    noisy = torch.where(adj.unsqueeze(-1) > 0, msgs, 1e3 * torch.randn_like(msgs))
    torch.testing.assert_close(aggregate(noisy, adj, kind), out, atol=0, rtol=0)
    torch.testing.assert_close(aggregate(msgs, None, kind), aggregate(msgs, torch.ones_like(adj), kind))
    for b in range(B):
        for y in range(N):
            senders = msgs[b, adj[b, :, y] > 0, y]  # [k, H]
            expected = {"max": senders.max(0).values, "sum": senders.sum(0),
                        "mean": senders.mean(0),
                        "softmax": (torch.softmax(senders, 0) * senders).sum(0)}[kind]
            torch.testing.assert_close(out[b, y], expected)


def test_max_aggregation_fills_non_edges_with_big_negative():
    msgs = -5.0 * torch.ones(1, 2, 2, 1)
    adj = torch.tensor([[[1.0, 0.0], [0.0, 0.0]]])  # receiver 1 has no sender
    out = aggregate(msgs, adj, "max")
    assert out[0, 0, 0] == -5.0 and out[0, 1, 0] == -BIG_NUMBER


def test_softmax_aggregation_tends_to_max_as_temperature_vanishes():
    g = torch.Generator().manual_seed(2)
    msgs = torch.randn(B, N, N, H, generator=g, dtype=torch.float64)
    _, _, _, adj, _ = _graph()
    gaps = [(aggregate(msgs, adj, "softmax", t) - aggregate(msgs, adj, "max")).abs().max().item()
            for t in (1.0, 0.1, 1e-2, 1e-6)]
    assert gaps[0] > gaps[1] > gaps[2] > gaps[3] and gaps[3] < 1e-9
    assert gaps[0] > 0.01  # at temperature 1 it is a genuinely different aggregator


@pytest.mark.parametrize("kind", ["deepsets", "pgn", "gpgn", "triplet_pgn", "triplet_gpgn", "gat"])
def test_graph_processors_never_read_non_edges(kind):
    proc = _processor(kind)
    node, edge, graph, adj, hidden = _graph(3)
    allowed = torch.eye(N, dtype=torch.float64).expand_as(adj) if kind == "deepsets" else adj
    out, _ = proc(node, edge, graph, adj, hidden)
    noisy_edge = torch.where(allowed.unsqueeze(-1) > 0, edge, 50 * torch.randn_like(edge))
    out2, _ = proc(node, noisy_edge, graph, adj, hidden)
    torch.testing.assert_close(out2, out, atol=1e-12, rtol=0)


def test_mpnn_is_fully_connected():
    proc = _processor("mpnn", aggregation="sum")  # every message counts, none can lose a max
    node, edge, graph, adj, hidden = _graph(4)
    out, _ = proc(node, edge, graph, adj, hidden)
    torch.testing.assert_close(proc(node, edge, graph, torch.ones_like(adj), hidden)[0], out)
    noisy_edge = edge.clone()
    noisy_edge[0, 1, 3] += 10.0  # a non-edge of adj still matters
    assert not torch.allclose(proc(node, noisy_edge, graph, adj, hidden)[0], out)


def _triplets_loop(mod: TripletMessages, z, edge, graph):
    """Brute force: every (i, j, k) term summed, then the max over i, then o3 and ReLU."""
    batch, n, _ = z.shape
    out = torch.empty(batch, n, n, mod.o3.out_features, dtype=z.dtype)
    for b in range(batch):
        for j in range(n):
            for k in range(n):
                terms = torch.stack([
                    mod.t1(z[b, i]) + mod.t2(z[b, j]) + mod.t3(z[b, k]) + mod.te1(edge[b, i, j])
                    + mod.te2(edge[b, i, k]) + mod.te3(edge[b, j, k]) + mod.tg(graph[b])
                    for i in range(n)])
                out[b, j, k] = torch.relu(mod.o3(terms.max(0).values))
    return out


def test_vectorised_and_chunked_triplets_equal_a_loop():
    torch.manual_seed(0)
    mod = TripletMessages(H).double()
    node, edge, graph, _, hidden = _graph(5)
    z = torch.cat([node, hidden], -1)
    whole = mod(z, edge, graph)
    mod.budget_bytes = B * N * N * 8 * 8  # one k-slice at a time
    assert triplet_chunk(B, N, 8, 8, mod.budget_bytes) == 1
    chunked = mod(z, edge, graph)
    torch.testing.assert_close(chunked, whole, atol=0, rtol=0)
    torch.testing.assert_close(whole, _triplets_loop(mod, z, edge, graph), atol=1e-12, rtol=0)


def test_triplet_max_gradient_equals_autograd_of_the_dense_max():
    g = torch.Generator().manual_seed(6)
    a = torch.randn(B, N, 3, generator=g, dtype=torch.float64, requires_grad=True)
    e1 = torch.randn(B, N, N, 3, generator=g, dtype=torch.float64, requires_grad=True)
    e2 = torch.randn(B, N, N, 3, generator=g, dtype=torch.float64, requires_grad=True)
    weight = torch.randn(B, N, N, 3, generator=g, dtype=torch.float64)
    dense = (a[:, :, None, None] + e1[:, :, :, None] + e2[:, :, None, :]).amax(1)
    expected = torch.autograd.grad((dense * weight).sum(), (a, e1, e2))
    for budget in (1, 10**9):  # chunked and whole
        out = triplet_max(a, e1, e2, budget)
        torch.testing.assert_close(out, dense, atol=0, rtol=0)
        got = torch.autograd.grad((out * weight).sum(), (a, e1, e2))
        for x, y in zip(got, expected, strict=True):
            torch.testing.assert_close(x, y)
    small = (a[:1, :3, :2].detach().requires_grad_(), e1[:1, :3, :3, :2].detach().requires_grad_(),
             e2[:1, :3, :3, :2].detach().requires_grad_())
    assert torch.autograd.gradcheck(lambda x, y, w: triplet_max(x, y, w, 1), small)


def test_gate_starts_almost_closed():
    torch.manual_seed(0)
    gate = Gate(H)
    assert torch.all(gate.l3.bias == -3.0)
    closed = gate(torch.zeros(1, N, 2 * H), torch.zeros(1, N, H))
    torch.testing.assert_close(closed, torch.full_like(closed, 1 / (1 + math.exp(3))))
    assert abs(closed[0, 0, 0].item() - 0.0474) < 1e-4


def test_gated_processor_mixes_new_and_old_state_by_the_gate():
    proc = _processor("gpgn")
    node, edge, graph, adj, hidden = _graph(7)
    seen = {}
    proc.gate.register_forward_hook(lambda m, i, o: seen.update(gate=o))
    out, _ = proc(node, edge, graph, adj, hidden)
    proc.gate = None
    ungated, _ = proc(node, edge, graph, adj, hidden)
    g = seen["gate"]
    torch.testing.assert_close(out, g * ungated + (1 - g) * hidden)


def test_latent_decay_multiplies_by_exactly_lambda():
    hidden = torch.randn(B, N, H)
    assert torch.equal(LatentDecay(0.9)(hidden), hidden * 0.9)
    assert LatentDecay(1.0)(hidden) is hidden
    with pytest.raises(ConfigError, match="latent_decay"):
        LatentDecay(1.5)


def test_unknown_processor_and_aggregation_are_config_errors():
    with pytest.raises(ConfigError, match="processor"):
        make_processor("transformer", H)
    with pytest.raises(ConfigError, match="aggregation"):
        make_processor("pgn", H, aggregation="median")


# ---- the same weights give dm-clrs's numbers (fixture written by dm-clrs 2.0.3 itself) ----------

FIXTURE = Path(__file__).parents[1] / "fixtures" / "nar" / "clrs_model.npz"


def _load_linear(layer, params, module):
    with torch.no_grad():
        layer.weight.copy_(torch.from_numpy(params[f"{module}/w"]).T)
        layer.bias.copy_(torch.from_numpy(params[f"{module}/b"]))


def _haiku_params(data, kind):
    prefix = f"processor/{kind}/param/"
    return {k[len(prefix):].split("/", 1)[1]: data[k] for k in data.files if k.startswith(prefix)}


def _load_message_passing(proc, params):
    names = ["linear"] + [f"linear_{i}" for i in range(1, 17)]
    layers = [proc.m1, proc.m2, proc.me, proc.mg, proc.o1, proc.o2]
    if proc.triplets is not None:
        t = proc.triplets
        layers += [t.t1, t.t2, t.t3, t.te1, t.te2, t.te3, t.tg, t.o3]
    if proc.gate is not None:
        layers += [proc.gate.l1, proc.gate.l2, proc.gate.l3]
    for layer, name in zip(layers, names, strict=False):
        _load_linear(layer, params, name)
    _load_linear(proc.mlp[0], params, "mlp/~/linear_0")
    _load_linear(proc.mlp[2], params, "mlp/~/linear_1")
    with torch.no_grad():
        proc.norm.weight.copy_(torch.from_numpy(params["layer_norm/scale"]))
        proc.norm.bias.copy_(torch.from_numpy(params["layer_norm/offset"]))


@pytest.mark.parametrize("kind", ["deepsets", "mpnn", "pgn", "triplet_gmpnn", "triplet_gpgn"])
def test_message_passing_equals_dm_clrs_with_the_same_weights(kind):
    data = np.load(FIXTURE)
    args = [torch.from_numpy(data[f"processor/{k}"]) for k in ("node", "edge", "graph", "adj", "hidden")]
    proc = make_processor(kind, H)
    _load_message_passing(proc, _haiku_params(data, kind))
    out, edge_out = proc(*args)
    torch.testing.assert_close(out, torch.from_numpy(data[f"processor/{kind}/hidden_out"]),
                               atol=1e-5, rtol=1e-5)
    if kind.startswith("triplet_"):
        torch.testing.assert_close(edge_out, torch.from_numpy(data[f"processor/{kind}/edge_out"]),
                                   atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("kind", ["gat", "gat_full"])
def test_gat_equals_dm_clrs_with_the_same_weights(kind):
    """dm-clrs's GAT reads edge_fts[receiver, sender]; ours [sender, receiver] like every processor."""
    data = np.load(FIXTURE)
    node, edge, graph, adj, hidden = (torch.from_numpy(data[f"processor/{k}"])
                                      for k in ("node", "edge", "graph", "adj", "hidden"))
    proc = make_processor(kind, H, nb_heads=2)
    params = _haiku_params(data, kind)
    for layer, name in zip([proc.values, proc.skip, proc.a_recv, proc.a_send, proc.a_edge,
                            proc.a_graph], ["linear"] + [f"linear_{i}" for i in range(1, 6)],
                           strict=True):
        _load_linear(layer, params, name)
    with torch.no_grad():
        proc.norm.weight.copy_(torch.from_numpy(params["layer_norm/scale"]))
        proc.norm.bias.copy_(torch.from_numpy(params["layer_norm/offset"]))
    out, _ = proc(node, edge.transpose(1, 2), graph, adj.transpose(1, 2), hidden)
    torch.testing.assert_close(out, torch.from_numpy(data[f"processor/{kind}/hidden_out"]),
                               atol=1e-5, rtol=1e-5)
