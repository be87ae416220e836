"""The neural algorithmic reasoner: encode-process-decode unrolled over a CLRS hint trajectory.

(clrs.md §6-§7; Ibarz et al. 2022.) At step t the inputs and the current hints are encoded and
summed into node, edge and graph features; the processor updates the node state; decoders read
h_t = [x, h_{t-1}, h_t] and e_t = [e, triplet edges] and predict the next hints and the outputs.
Step 0 encodes the true first hint; later steps feed the previous step's hint predictions back
soft (softmax / sigmoid / Sinkhorn, gradients flowing), replaced per instance by the truth with
probability `hint_teacher_forcing` during training. Outputs freeze once an instance's trajectory
ends. Nothing here is specific to an algorithm: encoders and decoders come from the spec.
`readout_norm` LayerNorms the two states in h_t for the decoders only (the state passed on is
untouched): for processors without a norm inside, such as the cocycle layer.

    model = NAR(spec, nb_dims, hidden=128, processor="triplet_gmpnn")
    out = model(NARBatch.from_feedback(feedback, spec), train=True)
    loss, parts = model.loss(out, batch)
    out.embeddings  # per step (node [B, n, H], edge [B, n, n, H] | None), for reusers
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from repdyn.models.nar_codec import (
    SINKHORN_STEPS_DECODE,
    ProbeDecoder,
    ProbeEncoder,
    encode_probes,
    expand_probe,
    log_sinkhorn,
    postprocess,
    uniform,
)
from repdyn.models.nar_losses import nar_loss
from repdyn.nn.gnn import TRIPLET_BUDGET_BYTES, LatentDecay, make_processor
from repdyn.tasks.clrs.feedback import DataPoint
from repdyn.tasks.clrs.specs import Stage, Type

Spec = Mapping[str, tuple[str, str, str]]


@dataclass
class NARBatch:
    """One CLRS batch as tensors: inputs/outputs [B, ...], hints [T, B, ...], lengths [B].

    Node and edge pointers are int64 indices; every other probe is float. `max_length` is the
    longest of `lengths` as known on the host (None: read from `lengths`, which waits for a GPU).
    """

    spec: dict[str, tuple[str, str, str]]
    inputs: dict[str, Tensor]
    hints: dict[str, Tensor]
    outputs: dict[str, Tensor]
    lengths: Tensor
    max_length: int | None = None

    @classmethod
    def from_feedback(cls, feedback: Any, spec: Spec, device: str | torch.device = "cpu",
                      dtype: torch.dtype = torch.float32) -> NARBatch:
        """Tensors from a CLRS `Feedback` (this package's or dm-clrs's) and its spec, copied to `device`
        without waiting for it (the samplers build batches on the CPU)."""
        def convert(points) -> dict[str, Tensor]:
            out = {}
            for dp in points:
                data = torch.as_tensor(np.asarray(dp.data)).to(device, non_blocking=True)
                integer = spec[dp.name][2] == Type.POINTER
                out[dp.name] = data.long() if integer else data.to(dtype)
            return out

        features = feedback.features
        host_lengths = np.asarray(features.lengths)
        lengths = torch.as_tensor(host_lengths).to(device, non_blocking=True).long()
        return cls(dict(spec), convert(features.inputs), convert(features.hints),
                   convert(feedback.outputs), lengths, int(host_lengths.max()))

    @property
    def size(self) -> int:
        """Number of instances B."""
        return int(self.lengths.shape[0])

    @property
    def nodes(self) -> int:
        """Number of nodes n (the `pos` input's width)."""
        return int(self.inputs["pos"].shape[1])

    def select(self, index: Tensor | slice) -> NARBatch:
        """The instances at `index` (e.g. a slice, to evaluate a large batch in pieces)."""
        return NARBatch(self.spec, {k: v[index] for k, v in self.inputs.items()},
                        {k: v[:, index] for k, v in self.hints.items()},
                        {k: v[index] for k, v in self.outputs.items()}, self.lengths[index])


@dataclass
class NAROutput:
    """Raw decoder logits: final `outputs`, `hints[i]` predicting hint i + 1, and (if asked) the
    processor's node and edge embeddings of every step."""

    outputs: dict[str, Tensor]
    hints: list[dict[str, Tensor]]
    embeddings: list[tuple[Tensor, Tensor | None]] = field(default_factory=list)


def nb_dims_of(feedback: Any) -> dict[str, int]:
    """Width of every probe's last axis (categorical sizes), as CLRS's `nb_dims`."""
    features = feedback.features
    return {dp.name: int(np.shape(dp.data)[-1]) if np.ndim(dp.data) else 1
            for dp in [*features.inputs, *features.hints, *feedback.outputs]}


class NAR(nn.Module):
    """Encode-process-decode over a hint trajectory, for one CLRS spec (clrs.md §6)."""

    def __init__(self, spec: Spec, nb_dims: Mapping[str, int], hidden: int = 128,
                 processor: str | nn.Module = "triplet_gmpnn", *, aggregation: str = "max",
                 softmax_temperature: float = 1.0, latent_decay: float = 1.0,
                 hint_teacher_forcing: float = 0.0, encode_hints: bool = True,
                 decode_hints: bool = True, use_ln: bool = True, nb_triplet_fts: int = 8,
                 nb_heads: int = 1, triplet_budget_bytes: int = TRIPLET_BUDGET_BYTES,
                 readout_norm: bool = False) -> None:
        super().__init__()
        self.spec = dict(spec)
        self.hidden = hidden
        self.hint_teacher_forcing = hint_teacher_forcing
        self.encode_hints, self.decode_hints = encode_hints, decode_hints
        self.readout_norm = readout_norm
        if isinstance(processor, str):
            processor = make_processor(processor, hidden, aggregation=aggregation,
                                       softmax_temperature=softmax_temperature, use_ln=use_ln,
                                       triplet_fts=nb_triplet_fts, nb_heads=nb_heads,
                                       triplet_budget_bytes=triplet_budget_bytes)
        self.processor = processor
        self.decay = LatentDecay(latent_decay)
        edge_width = 2 * hidden if getattr(processor, "returns_edges", False) else hidden
        encoders, decoders = {}, {}
        for name, (stage, loc, t) in self.spec.items():
            dims = nb_dims.get(name, 1)
            if stage == Stage.INPUT or (stage == Stage.HINT and encode_hints):
                encoders[name] = ProbeEncoder(stage, loc, t, hidden, dims)
            if stage == Stage.OUTPUT or (stage == Stage.HINT and decode_hints):
                decoders[name] = ProbeDecoder(loc, t, hidden, edge_width, dims)
        self.encoders = nn.ModuleDict(encoders)
        self.decoders = nn.ModuleDict(decoders)
        self._input_names = [k for k, v in self.spec.items() if v[0] == Stage.INPUT]

    # ---- one step ---------------------------------------------------------------------------

    def _encode_inputs(self, batch: NARBatch) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Input features (the same at every step, so encoded once) and the adjacency."""
        b, n, h = batch.size, batch.nodes, self.hidden
        ref = batch.inputs["pos"]
        zeros = {"dtype": ref.dtype, "device": ref.device}
        adj = torch.eye(n, **zeros).expand(b, n, n)
        inputs = {k: batch.inputs[k] for k in self._input_names if k in batch.inputs}
        return encode_probes(self.encoders, inputs, torch.zeros(b, n, h, **zeros),
                             torch.zeros(b, n, n, h, **zeros), torch.zeros(b, h, **zeros), adj)

    def step(self, encoded_inputs: tuple[Tensor, Tensor, Tensor, Tensor],
             hints: Mapping[str, Tensor], hidden: Tensor, train: bool,
             generator: torch.Generator | None = None
             ) -> tuple[Tensor, Tensor | None, dict[str, Tensor], dict[str, Tensor]]:
        """One processor step: (new hidden, edge embedding, output logits, hint logits)."""
        node_fts, edge_fts, graph_fts, adj = encoded_inputs
        if self.encode_hints and hints:
            node_fts, edge_fts, graph_fts, adj = encode_probes(
                self.encoders, hints, node_fts, edge_fts, graph_fts, adj)
        hidden = self.decay(hidden)
        nxt, nxt_edge = self.processor(node_fts, edge_fts, graph_fts, adj, hidden)
        h_t = torch.cat([node_fts, self._readout(hidden), self._readout(nxt)], dim=-1)
        e_t = edge_fts if nxt_edge is None else torch.cat([edge_fts, nxt_edge], dim=-1)
        outputs, hint_logits = {}, {}
        for name, decoder in self.decoders.items():
            logits = decoder(h_t, e_t, graph_fts)
            stage, _, t = self.spec[name]
            if t == Type.PERMUTATION_POINTER:
                logits = log_sinkhorn(logits, SINKHORN_STEPS_DECODE, generator=generator,
                                      noise=train)
            (outputs if stage == Stage.OUTPUT else hint_logits)[name] = logits
        return nxt, nxt_edge, outputs, hint_logits

    def _readout(self, state: Tensor) -> Tensor:
        """A state as the decoders see it: LayerNormed (no affine) under `readout_norm`."""
        return F.layer_norm(state, state.shape[-1:]) if self.readout_norm else state

    # ---- the unroll -------------------------------------------------------------------------

    def _fed_hints(self, batch: NARBatch, i: int, previous: dict[str, Tensor] | None,
                   train: bool, generator: torch.Generator | None) -> dict[str, Tensor]:
        """Hints encoded at step i: the truth at step 0, else the soft re-predictions (mixed
        per instance with the truth under teacher forcing during training)."""
        truth = {k: v[i] for k, v in batch.hints.items() if k in self.encoders}
        if previous is None or not self.decode_hints or (train and self.hint_teacher_forcing >= 1):
            return truth
        soft = {k: postprocess(self.spec[k][2], v, hard=False) for k, v in previous.items()}
        if not train or self.hint_teacher_forcing <= 0:
            return {k: soft[k] for k in truth}
        force = uniform((batch.size,), generator, batch.inputs["pos"]) < self.hint_teacher_forcing
        fed = {}
        for k, value in truth.items():
            value = expand_probe(value, self.spec[k][2], batch.nodes)  # indices -> one-hot
            mask = force.reshape((-1,) + (1,) * (value.dim() - 1))
            fed[k] = torch.where(mask, value.to(soft[k].dtype), soft[k])
        return fed

    def forward(self, batch: NARBatch, *, train: bool = False,
                generator: torch.Generator | None = None,
                return_embeddings: bool = False) -> NAROutput:
        """Unroll over the batch's trajectory: max(1, T - 1) steps, T its longest length
        (later steps of CLRS's padded T change neither losses nor outputs)."""
        longest = batch.max_length if batch.max_length is not None else int(batch.lengths.max())
        steps = max(1, longest - 1)
        encoded = self._encode_inputs(batch)
        hidden = torch.zeros(batch.size, batch.nodes, self.hidden, dtype=encoded[0].dtype,
                             device=encoded[0].device)
        outputs: dict[str, Tensor] = {}
        hint_preds: list[dict[str, Tensor]] = []
        embeddings: list[tuple[Tensor, Tensor | None]] = []
        previous = None
        for i in range(steps):
            hints = self._fed_hints(batch, i, previous, train, generator)
            hidden, edge, outs, previous = self.step(encoded, hints, hidden, train, generator)
            if i == 0:
                outputs = outs
            else:
                live = batch.lengths > i + 1
                outputs = {k: torch.where(live.reshape((-1,) + (1,) * (v.dim() - 1)), v,
                                          outputs[k]) for k, v in outs.items()}
            hint_preds.append(previous)
            if return_embeddings:
                embeddings.append((hidden, edge))
        return NAROutput(outputs, hint_preds, embeddings)

    def loss(self, out: NAROutput, batch: NARBatch) -> tuple[Tensor, dict[str, Tensor]]:
        """CLRS's loss: outputs plus decoded hints, unweighted (clrs.md §7)."""
        hints = out.hints if self.decode_hints else []
        return nar_loss(self.spec, out.outputs, hints, batch.outputs, batch.hints, batch.lengths)


def predictions(spec: Spec, logits: Mapping[str, Tensor]) -> dict[str, DataPoint]:
    """Hard predictions as CLRS `DataPoint`s (numpy), ready for `tasks.clrs.evaluate`."""
    out = {}
    for name, value in logits.items():
        _, loc, t = spec[name]
        out[name] = DataPoint(name, loc, t, postprocess(t, value, hard=True).cpu().numpy())
    return out

