"""State Soup (Pióro et al. 2024): recurrent states stored, retrieved by similarity and linearly mixed.

For a model whose cache is a fixed-size recurrent state (Griffin with the Hawk pattern, Mamba):

    state_a = capture_state(model, prompt_a)           # the cache after a prompt
    store = StateStore(); store.add("a", state_a, task=3); store.save("states.safetensors")
    name, similarity = store.nearest(capture_state(model, query))[0]
    soup = mix_states([state_a, state_b], "mean")      # or "sum", [w_a, w_b], or [K, layers] weights
    nll = continuation_nll(model, soup, continuation)  # or methods.lm.generate(..., cache=soup)

Mixing is exact for one linear-recurrent layer with fixed inputs (the composition identity,
state_soup.md §2) and an approximation across layers. A local-attention KV cache is not a
fixed-size state: every function here refuses it with a `UserError`.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import torch
from torch import Tensor, nn

from repdyn.bench.errors import CheckpointError, UserError
from repdyn.models.griffin import GriffinCache
from repdyn.models.mamba import MambaCache, MambaLayerCache
from repdyn.nn.local_attention import AttentionCache
from repdyn.nn.recurrent_block import RecurrentCache

__all__ = [
    "StateStore",
    "capture_state",
    "check_fixed_size",
    "continuation_nll",
    "layer_vectors",
    "mix_states",
    "similarities",
]

State = GriffinCache | MambaCache
STATE_KINDS: dict[str, tuple[type, type]] = {  # kind -> (cache class, block class)
    "griffin": (GriffinCache, RecurrentCache),
    "mamba": (MambaCache, MambaLayerCache),
}
RECURRENT_FIELDS = ("rg_lru_state", "ssm_state")  # the recurrence proper; the other field holds conv inputs
Parts = Literal["recurrent", "all"]
STORE_FORMAT = "repdyn-state-store"


def _kind(state: Any) -> str:
    for kind, (cache_cls, _) in STATE_KINDS.items():
        if isinstance(state, cache_cls):
            return kind
    raise UserError(f"expected a GriffinCache or MambaCache as a state; got {type(state).__name__}")


def check_fixed_size(state: State) -> None:
    """Refuse caches that are not fixed-size recurrent states (local-attention KV caches)."""
    kind = _kind(state)
    block_cls = STATE_KINDS[kind][1]
    for i, block in enumerate(state.blocks):
        if isinstance(block, AttentionCache):
            raise UserError(
                f"layer {i} holds a local-attention KV cache, which is not a fixed-size state and cannot be "
                "stored or mixed; use an all-recurrent model (Griffin pattern 'hawk', or Mamba)"
            )
        if not isinstance(block, block_cls):
            raise UserError(f"layer {i} of a {kind} state is a {type(block).__name__}, not a {block_cls.__name__}")


def _block_tensors(block: Any) -> dict[str, Tensor]:
    return {f.name: getattr(block, f.name) for f in dataclasses.fields(block)}


def _rebuild(template: State, blocks: list[dict[str, Tensor]], next_segment_pos: Tensor) -> State:
    kind = _kind(template)
    cache_cls, block_cls = STATE_KINDS[kind]
    return cache_cls(tuple(block_cls(**tensors) for tensors in blocks), next_segment_pos)


@torch.no_grad()
def capture_state(model: nn.Module, tokens: Tensor, segment_pos: Tensor | None = None) -> State:
    """The state after processing `tokens` [B, T] from an empty state (refuses KV caches)."""
    _, cache = model(tokens, segment_pos)
    check_fixed_size(cache)
    return cache


def layer_vectors(state: State, parts: Parts = "all") -> list[Tensor]:
    """Each layer's state flattened to [B, n] (fp32): with `parts="all"` the recurrent state and the
    conv inputs, with `parts="recurrent"` the recurrent state (RG-LRU or SSM) alone."""
    check_fixed_size(state)
    if parts not in ("recurrent", "all"):
        raise UserError(f"parts {parts!r}: expected 'recurrent' or 'all'")
    return [
        torch.cat(
            [
                t.reshape(t.shape[0], -1).float()
                for name, t in _block_tensors(block).items()
                if parts == "all" or name in RECURRENT_FIELDS
            ],
            dim=1,
        )
        for block in state.blocks
    ]


def _check_compatible(states: Sequence[State]) -> None:
    if not states:
        raise UserError("mix_states needs at least one state")
    for state in states:
        check_fixed_size(state)
    kinds = {_kind(s) for s in states}
    if len(kinds) > 1:
        raise UserError(f"cannot mix states of different models ({', '.join(sorted(kinds))})")
    first = [{k: tuple(v.shape) for k, v in _block_tensors(b).items()} for b in states[0].blocks]
    for i, state in enumerate(states[1:], start=1):
        shapes = [{k: tuple(v.shape) for k, v in _block_tensors(b).items()} for b in state.blocks]
        if shapes != first:
            raise UserError(f"state {i} has layers shaped {shapes}, state 0 {first}: states must come from one model")


def _mixing_weights(weights: Any, num_states: int, num_layers: int) -> Tensor:
    """[K, layers] float64 weights from "mean", "sum", [K] or [K, layers]."""
    if isinstance(weights, str):
        if weights not in ("mean", "sum"):
            raise UserError(f"weights {weights!r}: expected 'mean', 'sum', [K] numbers or [K, layers] numbers")
        value = 1.0 / num_states if weights == "mean" else 1.0
        return torch.full((num_states, num_layers), value, dtype=torch.float64)
    w = torch.as_tensor(weights, dtype=torch.float64)
    if w.ndim == 1:
        w = w[:, None].expand(-1, num_layers)
    if w.shape != (num_states, num_layers):
        raise UserError(
            f"weights of shape {tuple(w.shape)}: expected [{num_states}] or [{num_states}, {num_layers}] "
            "(one per state, or one per state and layer)"
        )
    if not bool(torch.isfinite(w).all()):
        raise UserError("mixing weights must be finite")
    return w


Weights = Literal["mean", "sum"] | Sequence[float] | Sequence[Sequence[float]] | Tensor


def mix_states(states: Sequence[State], weights: Weights = "mean") -> State:
    """The soup sum_k w_k state_k, layer by layer (state_soup.md §2: mean w = 1/K, sum w = 1).

    `weights` is "mean", "sum", one weight per state, or a [K, layers] table of per-layer weights.
    Every tensor of a layer (recurrent state and conv inputs) mixes with the same weight. Positions
    (`next_segment_pos`) come from the state of largest total weight, so one-hot weights give that
    state back bit for bit.
    """
    _check_compatible(states)
    num_layers = len(states[0].blocks)
    w = _mixing_weights(weights, len(states), num_layers)
    blocks = []
    for layer in range(num_layers):
        mixed: dict[str, Tensor] = {}
        for k, state in enumerate(states):
            for name, tensor in _block_tensors(state.blocks[layer]).items():
                term = tensor * w[k, layer].to(tensor.dtype)
                mixed[name] = term if name not in mixed else mixed[name] + term
        blocks.append(mixed)
    heaviest = int(w.sum(dim=1).argmax())
    return _rebuild(states[0], blocks, states[heaviest].next_segment_pos.clone())


def similarities(query: State, states: Sequence[State], parts: Parts = "recurrent") -> Tensor:
    """Cosine similarity [B, K] of the query's rows to K stored single-row states, averaged over layers.

    By default only the recurrent state counts: the conv inputs hold the last K-1 tokens, say little
    about a prompt as a whole, and in a trained Hawk outweigh the recurrent state several times
    over, so including them (`parts="all"`) makes retrieval follow the last few tokens.
    """
    query_layers = layer_vectors(query, parts)
    stored = [layer_vectors(s, parts) for s in states]
    total = torch.zeros(query_layers[0].shape[0], len(states), device=query_layers[0].device)
    for layer, q in enumerate(query_layers):
        keys = torch.cat([s[layer] for s in stored], dim=0)  # [K, n]
        if keys.shape[1] != q.shape[1]:
            raise UserError("the query state comes from another model than the stored states")
        total += nn.functional.normalize(q, dim=1) @ nn.functional.normalize(keys, dim=1).T
    return total / len(query_layers)


@torch.no_grad()
def continuation_nll(model: nn.Module, state: State | None, tokens: Tensor) -> Tensor:
    """NLL (nats) [B, T-1] of tokens[:, 1:] after `state` (None = empty) and tokens[:, :-1].

    The first token is fed, not scored: a stored or mixed state carries no next-token logits.
    """
    if tokens.shape[1] < 2:
        raise UserError(f"a continuation needs at least 2 tokens; got {tokens.shape[1]}")
    if state is not None:
        check_fixed_size(state)
        if state.next_segment_pos.shape[0] != tokens.shape[0]:
            state = state.index_batch(torch.zeros(tokens.shape[0], dtype=torch.long))
    logits, _ = model(tokens[:, :-1], cache=state, return_cache=False)
    return nn.functional.cross_entropy(logits.float().transpose(1, 2), tokens[:, 1:], reduction="none")


class StateStore:
    """Named single-row states with JSON metadata; nearest-state retrieval; one safetensors file on disk."""

    def __init__(self) -> None:
        self._states: dict[str, State] = {}
        self._meta: dict[str, dict[str, Any]] = {}

    def __len__(self) -> int:
        return len(self._states)

    def __contains__(self, name: object) -> bool:
        return name in self._states

    @property
    def names(self) -> list[str]:
        """Stored names, in insertion order."""
        return list(self._states)

    def add(self, name: str, state: State, **metadata: Any) -> None:
        """Store a one-row state under `name` (replacing an older one) with JSON-serialisable metadata."""
        check_fixed_size(state)
        if state.next_segment_pos.shape[0] != 1:
            raise UserError(f"store one state per name: {name!r} has {state.next_segment_pos.shape[0]} rows")
        if self._states:
            _check_compatible([next(iter(self._states.values())), state])
        try:
            json.dumps(metadata)
        except TypeError as exc:
            raise UserError(f"metadata of {name!r} is not JSON-serialisable ({exc})") from exc
        self._states[name] = state
        self._meta[name] = dict(metadata)

    def get(self, name: str) -> State:
        """The state stored under `name`."""
        if name not in self._states:
            raise UserError(f"no state named {name!r}; stored: {', '.join(self._states) or 'none'}")
        return self._states[name]

    def metadata(self, name: str) -> dict[str, Any]:
        """The metadata stored with `name`."""
        self.get(name)
        return dict(self._meta[name])

    def similarities(self, query: State, parts: Parts = "recurrent") -> Tensor:
        """Cosine similarity [B, len(store)] of each query row to every stored state (store order)."""
        if not self._states:
            raise UserError("the state store is empty")
        return similarities(query, list(self._states.values()), parts)

    def nearest(self, query: State, k: int = 1, parts: Parts = "recurrent") -> list[tuple[str, float]]:
        """The k stored states most similar to a one-row query: [(name, cosine)], best first."""
        if query.next_segment_pos.shape[0] != 1:
            raise UserError("nearest takes a one-row query; use similarities() for a batch")
        sims = self.similarities(query, parts)[0]
        top = torch.topk(sims, min(k, len(sims)))
        return [(self.names[i], float(v)) for v, i in zip(top.values, top.indices.tolist(), strict=True)]

    def save(self, path: str | Path) -> None:
        """Write every state and its metadata into one safetensors file."""
        from safetensors.torch import save_file

        tensors: dict[str, Tensor] = {}
        entries = []
        for i, (name, state) in enumerate(self._states.items()):
            tensors[f"{i}.next_segment_pos"] = state.next_segment_pos.contiguous()
            for j, block in enumerate(state.blocks):
                for field, tensor in _block_tensors(block).items():
                    tensors[f"{i}.blocks.{j}.{field}"] = tensor.contiguous()
            entry = {"name": name, "kind": _kind(state), "num_layers": len(state.blocks), "meta": self._meta[name]}
            entries.append(entry)
        header = {"format": STORE_FORMAT, "version": 1, "states": entries}
        save_file(tensors, str(path), metadata={"repdyn": json.dumps(header)})

    @classmethod
    def load(cls, path: str | Path) -> StateStore:
        """Read a file written by `save`."""
        from safetensors import SafetensorError, safe_open

        try:
            with safe_open(str(path), framework="pt") as handle:
                header = json.loads((handle.metadata() or {}).get("repdyn", "null"))
                tensors = {key: handle.get_tensor(key) for key in handle.keys()}  # noqa: SIM118
        except (OSError, ValueError, SafetensorError) as exc:
            raise CheckpointError(f"{path}: not a readable state store ({exc})") from exc
        if not isinstance(header, dict) or header.get("format") != STORE_FORMAT:
            raise CheckpointError(f"{path}: safetensors file without {STORE_FORMAT} metadata")
        store = cls()
        try:
            for i, entry in enumerate(header["states"]):
                cache_cls, block_cls = STATE_KINDS[entry["kind"]]
                fields = [f.name for f in dataclasses.fields(block_cls)]
                blocks = tuple(
                    block_cls(**{f: tensors[f"{i}.blocks.{j}.{f}"] for f in fields}) for j in range(entry["num_layers"])
                )
                store.add(entry["name"], cache_cls(blocks, tensors[f"{i}.next_segment_pos"]), **entry["meta"])
        except KeyError as exc:
            raise CheckpointError(f"{path}: state store is missing {exc.args[0]!r}") from exc
        return store
