"""NAR encoders/decoders: placement by (location, type), pointer decoding, log-Sinkhorn, postprocess."""

import math

import torch
from torch import nn

from repdyn.models.nar_codec import (
    ProbeDecoder,
    ProbeEncoder,
    encode_probes,
    log_sinkhorn,
    postprocess,
)
from repdyn.tasks.clrs.specs import Type

B, N = 2, 4


def _unit_encoder(stage, loc, t, dims=1):
    """H = 1 encoders computing exactly their input (weight 1, bias 0)."""
    enc = ProbeEncoder(stage, loc, t, 1, dims)
    for layer in (enc.first, enc.second):
        if layer is not None:
            nn.init.ones_(layer.weight)
            nn.init.zeros_(layer.bias)
    return enc


def _empty():
    return (torch.zeros(B, N, 1), torch.zeros(B, N, N, 1), torch.zeros(B, 1),
            torch.eye(N).expand(B, N, N))


def test_node_pointers_become_edge_features_and_symmetric_adjacency():
    encoders = {"pi": _unit_encoder("input", "node", Type.POINTER)}
    pi = torch.tensor([[1, 1, 3, 3], [0, 0, 0, 0]])
    node, edge, graph, adj = encode_probes(encoders, {"pi": pi}, *_empty())
    onehot = torch.nn.functional.one_hot(pi, N).float()
    assert torch.equal(edge[..., 0], onehot) and node.abs().sum() == 0 and graph.abs().sum() == 0
    expected = ((onehot + onehot.transpose(1, 2) + torch.eye(N)) > 0).float()
    assert torch.equal(adj, expected)


def test_soft_pointers_add_adjacency_only_above_one_half():
    encoders = {"pi": _unit_encoder("hint", "node", Type.POINTER)}
    soft = torch.full((B, N, N), 0.2)
    soft[:, 0, 1] = 0.35  # 0.35 + 0.2 > 0.5: an edge 0-1 both ways
    _, edge, _, adj = encode_probes(encoders, {"pi": soft}, *_empty())
    assert torch.equal(edge[..., 0], soft)
    assert adj[0, 0, 1] == 1 and adj[0, 1, 0] == 1 and adj[0, 0, 2] == 0


def test_edge_masks_enter_adjacency_and_edge_features_scalars_only_features():
    encoders = {"adj": _unit_encoder("input", "edge", Type.MASK),
                "A": _unit_encoder("input", "edge", Type.SCALAR)}
    mask = torch.zeros(B, N, N)
    mask[:, 0, 2] = 1.0  # directed edge: the adjacency is symmetrised
    weights = torch.rand(B, N, N)
    _, edge, _, adj = encode_probes(encoders, {"adj": mask, "A": weights}, *_empty())
    torch.testing.assert_close(edge[..., 0], mask + weights)
    assert adj[0, 2, 0] == 1 and adj[0, 0, 2] == 1 and adj[0, 1, 2] == 0


def test_graph_pointer_goes_to_nodes_graph_scalar_to_graph_categorical_keeps_its_axis():
    encoders = {"g": _unit_encoder("input", "graph", Type.POINTER),
                "s": _unit_encoder("input", "graph", Type.SCALAR),
                "c": _unit_encoder("input", "node", Type.CATEGORICAL, dims=3)}
    cat = torch.nn.functional.one_hot(torch.tensor([[0, 2, 1, 2], [1, 1, 1, 1]]), 3).float()
    node, _, graph, _ = encode_probes(
        encoders, {"g": torch.tensor([2, 0]), "s": torch.tensor([0.5, 1.5]), "c": cat}, *_empty())
    expected = torch.nn.functional.one_hot(torch.tensor([2, 0]), N).float() + 1.0  # c sums to 1
    torch.testing.assert_close(node[..., 0], expected)
    torch.testing.assert_close(graph[:, 0], torch.tensor([0.5, 1.5]))


def test_edge_pointers_average_over_senders_and_receivers():
    enc = _unit_encoder("input", "edge", Type.POINTER)
    nn.init.constant_(enc.second.weight, 10.0)
    ptr = torch.randint(0, N, (B, N, N), generator=torch.Generator().manual_seed(0))
    _, edge, _, _ = encode_probes({"P": enc}, {"P": ptr}, *_empty())
    onehot = torch.nn.functional.one_hot(ptr, N).float()  # [b, i, j, k]
    torch.testing.assert_close(edge[..., 0], onehot.mean(1) + 10 * onehot.mean(2))


def test_scalar_hints_use_xavier_on_scalars():
    torch.manual_seed(0)
    hint = ProbeEncoder("hint", "node", Type.SCALAR, 256)
    inp = ProbeEncoder("input", "node", Type.SCALAR, 256)
    assert hint.first.weight.abs().max() <= 2 / 16 + 1e-6  # std 1/sqrt(H), truncated at 2 std
    assert inp.first.weight.abs().max() > 0.5  # haiku's default: std 1/sqrt(fan_in = 1)


def test_pointer_decoder_argmax_recovers_the_truth_from_hand_made_features():
    hidden = 3
    dec = ProbeDecoder("node", Type.POINTER, hidden, edge_width=hidden)
    p1, p2, p3, p4 = dec.layers
    for layer in (p1, p2, p3, p4):
        nn.init.zeros_(layer.weight)
        nn.init.zeros_(layer.bias)
    nn.init.constant_(p1.bias, -10.0)  # the node term never wins the max
    p3.weight.data[:, 0] = 1.0  # p3(e)_ji copies channel 0 of e_ji
    p4.weight.data.fill_(1.0 / hidden)
    truth = torch.tensor([[2, 0, 0, 3], [1, 1, 2, 0]])
    e_t = torch.zeros(B, N, N, hidden)
    e_t[..., 0] = torch.nn.functional.one_hot(truth, N).float().transpose(1, 2)  # e[j, i]: i -> j
    logits = dec(torch.randn(B, N, 3 * hidden), e_t, torch.zeros(B, hidden))
    assert logits.shape == (B, N, N)
    assert torch.equal(logits.argmax(-1), truth)


def test_edge_and_graph_decoders_have_clrs_shapes():
    h, e, g = torch.randn(B, N, 6), torch.randn(B, N, N, 4), torch.randn(B, 2)
    shapes = {("edge", Type.SCALAR): (B, N, N), ("edge", Type.CATEGORICAL): (B, N, N, 5),
              ("edge", Type.POINTER): (B, N, N, N), ("graph", Type.MASK): (B,),
              ("graph", Type.CATEGORICAL): (B, 5), ("graph", Type.POINTER): (B, N),
              ("node", Type.MASK_ONE): (B, N), ("node", Type.CATEGORICAL): (B, N, 5)}
    for (loc, t), shape in shapes.items():
        assert ProbeDecoder(loc, t, 2, edge_width=4, nb_dims=5)(h, e, g).shape == shape


def test_log_sinkhorn_yields_a_doubly_stochastic_matrix_with_an_empty_diagonal():
    logits = torch.randn(3, 6, 6, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    p = log_sinkhorn(logits, steps=200, temperature=1.0).exp()
    torch.testing.assert_close(p.sum(-1), torch.ones(3, 6, dtype=torch.float64), atol=1e-6, rtol=0)
    torch.testing.assert_close(p.sum(-2), torch.ones(3, 6, dtype=torch.float64), atol=1e-12, rtol=0)
    assert p.diagonal(dim1=-2, dim2=-1).max() < 1e-30
    perm = torch.tensor([3, 0, 1, 5, 2, 4])
    noisy = 5 * torch.nn.functional.one_hot(perm, 6).double() + 0.1 * logits[0]
    assert torch.equal(postprocess(Type.PERMUTATION_POINTER, noisy, hard=True).argmax(-1), perm)


def test_gumbel_noise_is_seeded_and_only_on_request():
    x = torch.randn(2, 5, 5)
    a = log_sinkhorn(x, 10, generator=torch.Generator().manual_seed(0), noise=True)
    b = log_sinkhorn(x, 10, generator=torch.Generator().manual_seed(0), noise=True)
    assert torch.equal(a, b) and not torch.allclose(a, log_sinkhorn(x, 10))


def test_postprocess_hard_and_soft_per_type():
    x = torch.tensor([[0.5, -1.0, 2.0]])
    assert torch.equal(postprocess(Type.MASK, x, hard=True), torch.tensor([[1.0, 0.0, 1.0]]))
    torch.testing.assert_close(postprocess(Type.MASK, x, hard=False), torch.sigmoid(x))
    assert torch.equal(postprocess(Type.POINTER, x, hard=True), torch.tensor([2]))
    torch.testing.assert_close(postprocess(Type.POINTER, x, hard=False), torch.softmax(x, -1))
    assert torch.equal(postprocess(Type.CATEGORICAL, x, hard=True), torch.tensor([[0.0, 0.0, 1.0]]))
    scalar = x.clone().requires_grad_()
    assert not postprocess(Type.SCALAR, scalar, hard=True).requires_grad
    assert postprocess(Type.SCALAR, scalar, hard=False).requires_grad
    assert math.isclose(postprocess(Type.MASK_ONE, x, hard=False).sum().item(), 1.0, rel_tol=1e-6)
