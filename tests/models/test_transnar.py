"""TransNAR: closed gates give the text-only LM exactly; the graph reaches the tokens only through
the gates; causality; the NAR memory is each instance's last processor state and takes no gradient."""

import numpy as np
import pytest
import torch

from repdyn.bench.errors import ConfigError
from repdyn.models.nar import NAR, NARBatch, nb_dims_of
from repdyn.models.transformer import Transformer, TransformerConfig
from repdyn.models.transnar import GraphMemory, TransNAR, TransNARConfig, freeze, nar_memory
from repdyn.nn.rope import apply_rope
from repdyn.tasks.clrs import SPECS, Sampler, to_feedback

VOCAB, D, H = 13, 16, 8


def lm(positional: str = "rope", layers: int = 2) -> Transformer:
    torch.manual_seed(0)
    return Transformer(
        TransformerConfig(
            vocab_size=VOCAB, d_model=D, num_layers=layers, num_heads=4, mlp_dim=32, positional=positional
        )
    )


def memory(batch: int = 2, n: int = 5, edges: bool = True, seed: int = 1) -> GraphMemory:
    g = torch.Generator().manual_seed(seed)
    return GraphMemory(
        torch.randn(batch, n, H, generator=g), torch.randn(batch, n, n, H, generator=g) if edges else None
    )


def open_gates(model: TransNAR) -> TransNAR:
    with torch.no_grad():
        for layer in model.cross:
            layer.attn_gate.fill_(0.7)
            layer.mlp_gate.fill_(-0.4)
    return model


ALIGNMENTS = {  # the ways a token can find its node: none, index RoPE, RoPE + window + end-of-graph token
    "plain": {},
    "rope": {"index_rope": True},
    "window": {"index_rope": True, "index_window": 1, "end_token": True},
}


@pytest.mark.parametrize("alignment", ALIGNMENTS)
@pytest.mark.parametrize("cross_every", [1, 2])
@torch.no_grad()
def test_closed_gates_give_exactly_the_text_only_transformer(alignment, cross_every):
    text = lm()
    config = TransNARConfig(graph_dim=H, edge_dim=H, cross_every=cross_every, **ALIGNMENTS[alignment])
    model = TransNAR(lm(), config)
    tokens = torch.randint(0, VOCAB, (2, 11))
    index = torch.randint(0, 5, (2, 11))
    assert model.gates() == {k: 0.0 for k in model.gates()} and len(model.cross) == 2 // cross_every
    out, ref = model.run(tokens, memory(), query_index=index), text.run(tokens)
    assert torch.equal(out.logits, ref.logits)
    assert all(torch.equal(a, b) for a, b in zip(out.hidden_states, ref.hidden_states, strict=True))
    open_gates(model)
    assert (model(tokens, memory(), query_index=index) - ref.logits).abs().amax() > 1e-3


@pytest.mark.parametrize("alignment", ALIGNMENTS)
@torch.no_grad()
def test_open_gates_let_the_graph_change_the_logits_and_padded_nodes_do_not(alignment):
    model = open_gates(TransNAR(lm(), TransNARConfig(graph_dim=H, edge_dim=H, **ALIGNMENTS[alignment])))
    tokens = torch.randint(0, VOCAB, (2, 7))
    index = torch.tensor([[-1, 0, 0, 1, 2, 4, 5], [0, 1, 1, 2, 3, 3, -1]])
    a = model(tokens, memory(seed=1), query_index=index)
    assert (a - model(tokens, memory(seed=2), query_index=index)).abs().amax() > 1e-3
    # a graph of 5 nodes padded to 7: whatever the padding holds, the logits are the 5-node ones
    small = memory(n=5)
    nodes = torch.randn(2, 7, H)
    nodes[:, :5] = small.nodes
    edges = torch.randn(2, 7, 7, H)
    edges[:, :5, :5] = small.edges
    mask = torch.arange(7)[None].expand(2, 7) < 5
    torch.testing.assert_close(
        model(tokens, GraphMemory(nodes, edges, mask), query_index=index),
        model(tokens, small, query_index=index),
        rtol=1e-5,
        atol=1e-6,
    )


@pytest.mark.parametrize("alignment", ALIGNMENTS)
@torch.no_grad()
def test_a_later_token_never_changes_earlier_logits(alignment):
    model = open_gates(TransNAR(lm(), TransNARConfig(graph_dim=H, edge_dim=H, **ALIGNMENTS[alignment])))
    tokens = torch.randint(0, VOCAB, (2, 12))
    index = torch.arange(12).expand(2, 12) // 3
    changed, changed_index = tokens.clone(), index.clone()
    changed[:, 8:] = (changed[:, 8:] + 1) % VOCAB
    changed_index[:, 8:] += 2  # a causal index (a running count) also changes only from there on
    a = model(tokens, memory(), query_index=index)
    b = model(changed, memory(), query_index=changed_index)
    assert torch.equal(a[:, :8], b[:, :8])
    assert (a[:, 8:] - b[:, 8:]).abs().amax() > 1e-4


@pytest.mark.parametrize("alignment", ["rope", "window"])
@torch.no_grad()
def test_index_rope_scores_depend_on_token_minus_node_index_only(alignment):
    """With index RoPE (and a window), shifting every token index and every node index by the same
    amount leaves the attention (hence the logits) unchanged: the alignment is relative, so it
    extrapolates."""
    model = open_gates(TransNAR(lm(layers=1), TransNARConfig(graph_dim=H, **ALIGNMENTS[alignment])))
    layer = model.cross[0]
    x = torch.randn(2, 6, D)
    graph, mask, node_index = model.graph_tokens(memory(edges=False))
    index = torch.randint(0, 6, (2, 6))
    a = layer(x, graph, mask, index, node_index)
    torch.testing.assert_close(layer(x, graph, mask, index + 7, node_index + 7), a, rtol=1e-4, atol=1e-5)
    assert (layer(x, graph, mask, index + 1, node_index) - a).abs().amax() > 1e-4


def reference_cross_attention(layer, x, graph, graph_mask, query_index, graph_index, window):
    """The windowed cross-attention one token and one head at a time, from its definition."""
    q = layer.query(layer.norm(x)).unflatten(-1, (layer.num_heads, -1))
    k = layer.key(graph).unflatten(-1, (layer.num_heads, -1))
    v = layer.value(graph).unflatten(-1, (layer.num_heads, -1))
    q = apply_rope(q, query_index, base=layer.rope_base)
    k = apply_rope(k, graph_index, base=layer.rope_base)
    mixed = torch.zeros_like(q)
    for b in range(x.shape[0]):
        for t in range(x.shape[1]):
            seen = [
                m
                for m in range(graph.shape[1])
                if graph_mask[b, m] and query_index[b, t] >= 0 and abs(graph_index[b, m] - query_index[b, t]) <= window
            ]
            for h in range(layer.num_heads):
                if seen:
                    scores = torch.stack([q[b, t, h] @ k[b, m, h] for m in seen]) / q.shape[-1] ** 0.5
                    mixed[b, t, h] = (torch.softmax(scores, 0)[:, None] * v[b, seen, h]).sum(0)
    y = x + torch.tanh(layer.attn_gate) * layer.out(mixed.flatten(-2))
    return y + torch.tanh(layer.mlp_gate) * layer.mlp(layer.mlp_norm(y))


@torch.no_grad()
def test_windowed_cross_attention_with_an_end_token_equals_a_per_token_loop():
    config = TransNARConfig(graph_dim=H, edge_dim=H, index_rope=True, index_window=1, end_token=True)
    model = open_gates(TransNAR(lm(layers=1), config))
    layer = model.cross[0]
    nodes, edges = torch.randn(2, 5, H), torch.randn(2, 5, 5, H)
    mask = torch.tensor([[True] * 5, [True] * 3 + [False] * 2])  # the second graph has 3 real nodes
    graph, graph_mask, graph_index = model.graph_tokens(GraphMemory(nodes, edges, mask))
    assert graph.shape[1] == 5 + 1 + 25 and graph_index[:, 5].tolist() == [5, 3]  # end token: index n
    x = torch.randn(2, 8, D)
    index = torch.tensor([[-1, 0, 1, 2, 3, 4, 5, 6], [0, 1, 2, 3, -1, 4, 7, 2]])  # 7 sees nothing in graph 2
    out = layer(x, graph, graph_mask, index, graph_index)
    ref = reference_cross_attention(layer, x, graph, graph_mask, index, graph_index, window=1)
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-6)
    plain = x + torch.tanh(layer.attn_gate) * layer.out.bias  # no graph token read: only the output bias
    plain = plain + torch.tanh(layer.mlp_gate) * layer.mlp(layer.mlp_norm(plain))
    for b, t in ((0, 0), (1, 4), (1, 6)):
        torch.testing.assert_close(out[b, t], plain[b, t], rtol=1e-5, atol=1e-6)


def test_bad_configs_are_one_line_errors():
    with pytest.raises(ConfigError, match="graph_dim"):
        TransNARConfig(graph_dim=0)
    with pytest.raises(ConfigError, match="index_window"):
        TransNARConfig(graph_dim=4, index_window=-1)
    with pytest.raises(ConfigError, match="causal"):
        TransNAR(
            Transformer(TransformerConfig(vocab_size=5, d_model=8, num_heads=2, causal=False)),
            TransNARConfig(graph_dim=4),
        )


def bfs_nar_and_batch() -> tuple[NAR, NARBatch]:
    graphs = Sampler("bfs", -1, 6, seed=3, track_max_steps=False).next(5)
    feedback = to_feedback(graphs)
    torch.manual_seed(0)
    nar = NAR(SPECS["bfs"], nb_dims_of(feedback), hidden=H, processor="triplet_gmpnn")
    return nar, NARBatch.from_feedback(feedback, SPECS["bfs"])


def test_nar_memory_is_each_instances_state_at_its_output_step():
    nar, batch = bfs_nar_and_batch()
    assert len(set(batch.lengths.tolist())) > 1  # instances of different trajectory lengths
    freeze(nar)
    mem = nar_memory(nar, batch)
    assert mem.nodes.shape == (5, 6, H) and mem.edges.shape == (5, 6, 6, H)
    for b in range(batch.size):  # the NAR alone on instance b, unrolled to its own length
        alone = nar(batch.select(slice(b, b + 1)), return_embeddings=True)
        node, edge = alone.embeddings[-1]
        torch.testing.assert_close(mem.nodes[b], node[0], rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(mem.edges[b], edge[0], rtol=1e-5, atol=1e-6)


def test_a_frozen_nar_gets_no_gradient_and_is_not_changed_by_training_the_lm():
    nar, batch = bfs_nar_and_batch()
    freeze(nar)
    before = {k: v.clone() for k, v in nar.state_dict().items()}
    model = open_gates(TransNAR(lm(), TransNARConfig(graph_dim=H, edge_dim=H)))
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    tokens = torch.randint(0, VOCAB, (batch.size, 9))
    for _ in range(3):
        loss = model(tokens, nar_memory(nar, batch)).logsumexp(-1).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert all(p.grad is None and not p.requires_grad for p in nar.parameters())
    assert all(torch.equal(before[k], v) for k, v in nar.state_dict().items())
    assert model.cross[0].attn_gate.grad is not None and model.node_proj.weight.grad.abs().sum() > 0
    assert not nar.training


def test_missing_edges_are_an_error_when_the_model_uses_them():
    model = TransNAR(lm(), TransNARConfig(graph_dim=H, edge_dim=H))
    with pytest.raises(ValueError, match="edge"):
        model(torch.zeros(1, 3, dtype=torch.long), memory(batch=1, edges=False))
    np.testing.assert_equal(len(model.graph_tokens(memory(batch=1, n=3))[0][0]), 3 + 9)
