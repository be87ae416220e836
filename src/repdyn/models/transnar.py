"""TransNAR (Bounsi et al. 2024): a decoder-only transformer whose tokens cross-attend to a frozen NAR.

transnar.md §1: the language model's blocks are interleaved with gated cross-attention layers
(Flamingo style: ``x + tanh(alpha) * xattn(norm(x), graph)``, then ``x + tanh(beta) * mlp(norm(x))``)
whose queries come from the tokens and whose keys and values are the node and edge embeddings of a
neural algorithmic reasoner run on the graph form of the same instance. Both gates start at 0
(closed), so at initialisation the model computes exactly its text-only transformer. The graph
never attends to the text: the memory depends on the graph alone, so causality is the LM's own.

Optionally the cross-attention rotates queries and keys (RoPE) by *indices*: each token's
``query_index`` (e.g. which list item it is writing) and each graph token's node index, so a
token can find "its" node by relative index - an alignment that extrapolates to larger graphs.
Two additions keep that alignment exact at unseen sizes: ``index_window`` R lets a token read only
graph tokens within R of its index (RoPE at relative offsets never seen in training aliases), and
``end_token`` appends one learned graph token at index n (one past the last node), so the token
writing the last item sees the end of the graph at offset +1 whatever n is. A token whose index is
negative (outside every list) reads nothing from the graph.

    lm = Transformer(TransformerConfig(vocab_size=99, d_model=64, positional="rope"))
    model = TransNAR(lm, TransNARConfig(graph_dim=32, edge_dim=64))
    logits = model(tokens, GraphMemory(nodes, edges))  # or nar_memory(frozen_nar, nar_batch)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from repdyn.bench.errors import ConfigError
from repdyn.models.nar import NAR, NARBatch
from repdyn.models.transformer import NORM_EPS, Transformer, TransformerOutput
from repdyn.nn.rope import apply_rope

NODE, EDGE, END = 0, 1, 2  # graph token kinds (a learned type embedding tells them apart)


@dataclass(frozen=True)
class TransNARConfig:
    """The cross-attention side of TransNAR; the language model keeps its own `TransformerConfig`.

    ``cross_every`` k puts one gated cross-attention layer after every k-th transformer block.
    ``graph_dim`` / ``edge_dim`` are the widths of the NAR's node and edge embeddings (``edge_dim``
    0: nodes only). ``index_rope`` rotates queries and keys by token and node indices;
    ``index_window`` R > 0 hides graph tokens more than R indices from a token's own (needs
    ``query_index``); ``end_token`` adds an end-of-graph token at index n.
    """

    graph_dim: int
    edge_dim: int = 0
    cross_every: int = 1
    num_heads: int = 4
    mlp_ratio: int = 2
    index_rope: bool = False
    rope_base: float = 10_000.0
    index_window: int = 0
    end_token: bool = False

    def __post_init__(self) -> None:
        for name in ("graph_dim", "cross_every", "num_heads", "mlp_ratio"):
            if getattr(self, name) < 1:
                raise ConfigError(name, f"must be >= 1, got {getattr(self, name)}")
        for name in ("edge_dim", "index_window"):
            if getattr(self, name) < 0:
                raise ConfigError(name, f"must be >= 0, got {getattr(self, name)}")


@dataclass
class GraphMemory:
    """What the tokens attend to: node embeddings [B, n, Hn], edge embeddings [B, n, n, He] (or
    None), and which nodes exist [B, n] (bool; graphs of different sizes padded to n)."""

    nodes: Tensor
    edges: Tensor | None = None
    node_mask: Tensor | None = None

    @property
    def num_nodes(self) -> int:
        """Padded node count n."""
        return int(self.nodes.shape[1])


class GatedCrossAttention(nn.Module):
    """Tokens attend to graph tokens; the result and a dense layer enter the stream through tanh gates
    initialised at 0 (transnar.md §1: "the cross-attention gate is initially closed")."""

    def __init__(self, d_model: int, graph_width: int, config: TransNARConfig) -> None:
        super().__init__()
        num_heads, mlp_ratio = config.num_heads, config.mlp_ratio
        if d_model % num_heads:
            raise ConfigError("num_heads", f"d_model {d_model} not divisible by {num_heads}")
        self.num_heads = num_heads
        self.index_rope = config.index_rope
        self.index_window = config.index_window
        self.rope_base = config.rope_base
        self.norm = nn.LayerNorm(d_model, eps=NORM_EPS)
        self.query = nn.Linear(d_model, d_model)
        self.key = nn.Linear(graph_width, d_model)
        self.value = nn.Linear(graph_width, d_model)
        self.out = nn.Linear(d_model, d_model)
        self.attn_gate = nn.Parameter(torch.zeros(()))
        self.mlp_norm = nn.LayerNorm(d_model, eps=NORM_EPS)
        self.mlp = nn.Sequential(
            nn.Linear(d_model, mlp_ratio * d_model),
            nn.GELU(approximate="tanh"),
            nn.Linear(mlp_ratio * d_model, d_model),
        )
        self.mlp_gate = nn.Parameter(torch.zeros(()))

    def forward(
        self, x: Tensor, graph: Tensor, graph_mask: Tensor, query_index: Tensor | None, graph_index: Tensor
    ) -> Tensor:
        """x [B, T, d] attends to graph [B, M, w] (graph_mask [B, M] True = real token)."""
        if query_index is None and (self.index_rope or self.index_window):
            raise ValueError("index_rope and index_window need query_index [B, T]")
        q = self.query(self.norm(x)).unflatten(-1, (self.num_heads, -1))  # [B, T, H, dh]
        k = self.key(graph).unflatten(-1, (self.num_heads, -1))  # [B, M, H, dh]
        v = self.value(graph).unflatten(-1, (self.num_heads, -1))
        if self.index_rope:
            q = apply_rope(q, query_index, base=self.rope_base)
            k = apply_rope(k, graph_index, base=self.rope_base)
        visible = self.visible(graph_mask, query_index, graph_index)  # [B, T, M]
        scores = torch.einsum("bqhd,bkhd->bhqk", q / math.sqrt(q.shape[-1]), k)
        scores = scores.masked_fill(~visible[:, None], torch.finfo(scores.dtype).min)
        # a token that sees no graph token gets nothing (not a uniform average over hidden ones)
        weights = torch.softmax(scores, dim=-1) * visible.any(-1)[:, None, :, None]
        mixed = torch.einsum("bhqk,bkhd->bqhd", weights, v)
        x = x + torch.tanh(self.attn_gate) * self.out(mixed.flatten(-2))
        return x + torch.tanh(self.mlp_gate) * self.mlp(self.mlp_norm(x))

    def visible(self, graph_mask: Tensor, query_index: Tensor | None, graph_index: Tensor) -> Tensor:
        """Which graph tokens each token may read [B, T, M]: real ones, none for a negative query
        index, and with a window only those at most ``index_window`` indices away."""
        if query_index is None:
            return graph_mask[:, None, :]
        visible = graph_mask[:, None, :] & (query_index >= 0)[:, :, None]
        if self.index_window:
            offset = (graph_index[:, None, :] - query_index[:, :, None]).abs()
            visible = visible & (offset <= self.index_window)
        return visible


class TransNAR(nn.Module):
    """A `Transformer` LM interleaved with `GatedCrossAttention` layers over a `GraphMemory`.

    The LM's own modules (embedding, blocks, final norm, head) are used as they are, so a
    text-only `Transformer` with the same weights is this model with its gates closed.
    """

    def __init__(self, lm: Transformer, config: TransNARConfig) -> None:
        super().__init__()
        if not lm.config.causal or lm.config.vocab_size is None:
            raise ConfigError("lm", "TransNAR needs a causal token-level transformer")
        self.lm = lm
        self.config = config
        d = lm.config.d_model
        width = d  # graph tokens are projected to the LM's width, then keyed per layer
        self.node_proj = nn.Linear(config.graph_dim, width)
        self.edge_proj = nn.Linear(config.edge_dim, width) if config.edge_dim else None
        self.kind = nn.Embedding(3 if config.end_token else 2, width)  # kind END is the end token itself
        self.after = [i for i in range(lm.config.num_layers) if (i + 1) % config.cross_every == 0]
        self.cross = nn.ModuleList(GatedCrossAttention(d, width, config) for _ in self.after)

    def graph_tokens(self, memory: GraphMemory) -> tuple[Tensor, Tensor, Tensor]:
        """Graph tokens [B, M, d] (n nodes, the end token if used, then n*n edges if used), their
        mask [B, M] and their indices [B, M] (node i -> i; the end token -> the number of real nodes;
        edge (i, j) -> i: the row a pointer of node i is read from)."""
        nodes = memory.nodes.to(self.lm.dtype)
        b, n, _ = nodes.shape
        mask = (
            memory.node_mask
            if memory.node_mask is not None
            else torch.ones(b, n, dtype=torch.bool, device=nodes.device)
        )
        index = torch.arange(n, device=nodes.device).expand(b, n)
        tokens = [self.node_proj(nodes) + self.kind.weight[NODE]]
        masks, indices = [mask], [index]
        if self.config.end_token:
            tokens.append(self.kind.weight[END].expand(b, 1, -1))
            masks.append(torch.ones(b, 1, dtype=torch.bool, device=nodes.device))
            indices.append(mask.sum(1, keepdim=True))
        if self.edge_proj is not None:
            if memory.edges is None:
                raise ValueError("this TransNAR was built with edge_dim > 0 and needs edge embeddings")
            edges = self.edge_proj(memory.edges.to(self.lm.dtype)).flatten(1, 2)
            tokens.append(edges + self.kind.weight[EDGE])
            masks.append((mask[:, :, None] & mask[:, None, :]).flatten(1))
            indices.append(index[:, :, None].expand(b, n, n).flatten(1))
        return torch.cat(tokens, 1), torch.cat(masks, 1), torch.cat(indices, 1)

    def forward(
        self, tokens: Tensor, memory: GraphMemory, positions: Tensor | None = None, query_index: Tensor | None = None
    ) -> Tensor:
        """Logits [B, T, vocab] for every position."""
        return self.run(tokens, memory, positions, query_index).logits

    def run(
        self, tokens: Tensor, memory: GraphMemory, positions: Tensor | None = None, query_index: Tensor | None = None
    ) -> TransformerOutput:
        """The LM's forward pass with the gated cross-attention layers in between its blocks."""
        lm = self.lm
        batch, length = tokens.shape
        if positions is None:
            positions = torch.arange(length, device=tokens.device).expand(batch, length)
        graph, graph_mask, graph_index = self.graph_tokens(memory)
        x = lm.embed(tokens).to(lm.dtype)
        hidden_states = [x]
        cross = iter(self.cross)
        for i, block in enumerate(lm.blocks):
            x, _ = block(x, positions, None, False)
            if i in self.after:
                x = next(cross)(x, graph, graph_mask, query_index, graph_index)
            hidden_states.append(x)
        final = lm.norm_f(x)
        return TransformerOutput(logits=lm.head(final), hidden_states=tuple(hidden_states), final=final)

    def gates(self) -> dict[str, float]:
        """tanh of every gate (0 = closed), by layer: `attn/<i>` and `mlp/<i>`."""
        out = {}
        for i, layer in zip(self.after, self.cross, strict=True):
            out[f"attn/{i}"] = float(torch.tanh(layer.attn_gate.detach()))
            out[f"mlp/{i}"] = float(torch.tanh(layer.mlp_gate.detach()))
        return out


def freeze(module: nn.Module) -> nn.Module:
    """Phase 2 of TransNAR's training (transnar.md §2): no gradients and eval mode, for good."""
    module.requires_grad_(False)
    return module.eval()


@torch.no_grad()
def nar_memory(nar: NAR, batch: NARBatch) -> GraphMemory:
    """Run a (frozen) NAR on a batch of graphs; keep each instance's node (and edge) embeddings
    at its last processor step - the state its outputs are decoded from."""
    out = nar(batch, return_embeddings=True)
    last = (batch.lengths - 2).clamp(min=0, max=len(out.embeddings) - 1)  # step of each output
    rows = torch.arange(batch.size, device=last.device)
    nodes = torch.stack([h for h, _ in out.embeddings])[last, rows]
    edges = None
    if out.embeddings[0][1] is not None:
        edges = torch.stack([e for _, e in out.embeddings])[last, rows]
    return GraphMemory(nodes, edges)
