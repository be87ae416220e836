"""Last-token representational collapse and over-squashing probes (oversquashing.md §2, §5).

* ``collapse_distance``: distance between the final representations of the last token of a
  sequence ``v`` and of ``v*`` = ``v`` with its last token repeated (Theorem 4.2). It shrinks with
  length when positional information decays, and becomes exactly 0 in low precision.
* ``sensitivity_profile``: ``||d y_n / d x_i||`` for every input position ``i``, the gradient of the
  last token's final representation with respect to each input embedding (Theorem 5.1).

Both work on anything that maps embeddings to final hidden states: repdyn's ``Transformer`` and
``Griffin``, a Hugging Face causal LM (``load_hf_causal_lm``), any ``nn.Module`` or function on
embeddings, or an object implementing ``HiddenStateModel`` (how another model plugs in).
"""

import copy
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol, runtime_checkable

import torch
from torch import Tensor, nn

from repdyn.bench.errors import DataError, UserError


@runtime_checkable
class HiddenStateModel(Protocol):
    """What the probes need from a sequence model."""

    def embed(self, tokens: Tensor) -> Tensor:
        """Token ids ``[B, T]`` -> input embeddings ``[B, T, D]`` (no position information)."""
        ...

    def hidden_states(self, embeddings: Tensor) -> Tensor:
        """Input embeddings ``[B, T, D]`` -> final representations ``[B, T, D']``."""
        ...

    def to_dtype(self, dtype: torch.dtype) -> "HiddenStateModel":
        """The same model computing in ``dtype`` (a copy; the original is left as it was)."""
        ...


@dataclass(frozen=True)
class ModuleProbe:
    """A ``HiddenStateModel`` over an ``nn.Module`` and two functions of (module, input).

    The functions receive the module explicitly so that ``to_dtype`` can hand them a cast copy.
    """

    module: nn.Module
    hidden_fn: Callable[[nn.Module, Tensor], Tensor]
    embed_fn: Callable[[nn.Module, Tensor], Tensor] | None = None

    @property
    def dtype(self) -> torch.dtype:
        """The dtype of the module's first floating-point parameter (float32 if it has none)."""
        floats = (p.dtype for p in self.module.parameters() if p.is_floating_point())
        return next(floats, torch.float32)

    def embed(self, tokens: Tensor) -> Tensor:
        """Token embeddings via ``embed_fn``; models without one take embeddings only."""
        if self.embed_fn is None:
            raise UserError("this model maps embeddings to hidden states: pass embeddings")
        return self.embed_fn(self.module, tokens)

    def hidden_states(self, embeddings: Tensor) -> Tensor:
        """Final representations, computed in the module's dtype."""
        return self.hidden_fn(self.module, embeddings.to(self.dtype))

    def to_dtype(self, dtype: torch.dtype) -> "ModuleProbe":
        """A probe over a copy of the module cast to ``dtype``."""
        if dtype == self.dtype:
            return self
        return replace(self, module=copy.deepcopy(self.module).to(dtype))


@dataclass(frozen=True)
class FunctionProbe:
    """A ``HiddenStateModel`` over a plain function of embeddings.

    ``to_dtype`` only casts the inputs: the function must compute in its input's dtype.
    """

    fn: Callable[[Tensor], Tensor]
    dtype: torch.dtype = torch.float32

    def embed(self, tokens: Tensor) -> Tensor:
        """Plain functions take embeddings only."""
        raise UserError("this model maps embeddings to hidden states: pass embeddings, not tokens")

    def hidden_states(self, embeddings: Tensor) -> Tensor:
        """``fn`` on the embeddings cast to this probe's dtype."""
        return self.fn(embeddings.to(self.dtype))

    def to_dtype(self, dtype: torch.dtype) -> "FunctionProbe":
        """The same function fed ``dtype`` inputs."""
        return replace(self, dtype=dtype)


def _is_hf_causal_lm(model: object) -> bool:
    return isinstance(model, nn.Module) and hasattr(model, "get_input_embeddings") and hasattr(
        model, "config"
    )


def _is_griffin(model: object) -> bool:
    return isinstance(model, nn.Module) and all(
        hasattr(model, name) for name in ("embedder", "blocks", "final_norm")
    )


def _griffin_hidden_states(model: nn.Module, embeddings: Tensor) -> Tensor:
    """Griffin's residual blocks and final RMSNorm on embeddings: its forward pass without the
    embedder and the tied logits (one document, positions ``0..T-1``, no cache)."""
    batch, length, _ = embeddings.shape
    positions = torch.arange(length, device=embeddings.device).expand(batch, length)
    x = embeddings
    for block in model.blocks:
        x, _ = block(x, positions, None, False)
    return model.final_norm(x)


def as_probe_model(model: object) -> HiddenStateModel:
    """Wrap ``model`` for the probes.

    Accepts a ``HiddenStateModel``; repdyn's ``Transformer`` (final normed representation) and
    ``Griffin`` (output of the final RMSNorm, the representation its tied head reads); a Hugging
    Face causal LM (last entry of ``hidden_states``); any other ``nn.Module`` or callable mapping
    embeddings ``[B, T, D]`` to hidden states ``[B, T, D']``.
    """
    if isinstance(model, HiddenStateModel):
        return model
    if isinstance(model, nn.Module) and hasattr(model, "run_embeddings"):  # repdyn's Transformer
        return ModuleProbe(
            model,
            hidden_fn=lambda m, e: m.run_embeddings(e).final,
            embed_fn=lambda m, t: m.embed(t),
        )
    if _is_griffin(model):  # repdyn's Griffin (and its Hawk / MQA-transformer patterns)
        return ModuleProbe(
            model,
            hidden_fn=_griffin_hidden_states,
            embed_fn=lambda m, t: m.embedder.encode(t),
        )
    if _is_hf_causal_lm(model):
        return ModuleProbe(
            model,
            hidden_fn=lambda m, e: m(inputs_embeds=e, output_hidden_states=True).hidden_states[-1],
            embed_fn=lambda m, t: m.get_input_embeddings()(t),
        )
    if isinstance(model, nn.Module):
        return ModuleProbe(model, hidden_fn=lambda m, e: m(e))
    if callable(model):
        return FunctionProbe(model)
    raise UserError(f"cannot probe a {type(model).__name__}: pass a model or a callable")


def load_hf_causal_lm(path: str | Path, dtype: torch.dtype = torch.float32) -> nn.Module:
    """Load a Hugging Face causal LM from a local folder (no download), in eval mode.

    Needs the optional package ``transformers``.
    """
    try:
        from transformers import AutoModelForCausalLM
    except ImportError as err:
        raise UserError(
            "probing a Hugging Face model needs the optional package `transformers` "
            "(pip install transformers)"
        ) from err
    folder = Path(path)
    if not (folder / "config.json").is_file():
        raise DataError(f"{folder}: not a Hugging Face model folder (no config.json)")
    model = AutoModelForCausalLM.from_pretrained(str(folder), local_files_only=True)
    return model.to(dtype).eval()


def repeat_last(sequence: Tensor) -> Tensor:
    """``v -> v*``: tokens ``[B, T]`` or embeddings ``[B, T, D]`` with the last step repeated."""
    return torch.cat([sequence, sequence[:, -1:]], dim=1)


def _inputs_to_embeddings(model: HiddenStateModel, sequence: Tensor) -> Tensor:
    """Token ids go through the model's embedding; floating tensors are embeddings already."""
    return sequence if sequence.is_floating_point() else model.embed(sequence)


@torch.no_grad()
def _last_token(probe: HiddenStateModel, sequence: Tensor) -> Tensor:
    return probe.hidden_states(_inputs_to_embeddings(probe, sequence))[:, -1]


def last_token_representation(
    model: object, sequence: Tensor, *, dtype: torch.dtype = torch.float32
) -> Tensor:
    """Final representation ``[B, D']`` of the last token, computed in ``dtype``."""
    return _last_token(as_probe_model(model).to_dtype(dtype), sequence)


def last_token_distance(
    model: object,
    first: Tensor,
    second: Tensor,
    *,
    dtype: torch.dtype = torch.float32,
    ord: float = 1.0,
) -> Tensor:
    """``||y_last(first) - y_last(second)||_ord`` per sequence ``[B]``, forward in ``dtype``.

    The difference is taken in float32 after the forward, so it is 0 exactly when the two
    ``dtype`` representations are identical. The model is cast (as a copy) once per call.
    """
    probe = as_probe_model(model).to_dtype(dtype)
    a, b = _last_token(probe, first).float(), _last_token(probe, second).float()
    return torch.linalg.vector_norm(a - b, ord=ord, dim=-1)


def collapse_distance(
    model: object, sequence: Tensor, *, dtype: torch.dtype = torch.float32, ord: float = 1.0
) -> Tensor:
    """Theorem 4.2's distance between ``v`` and ``v`` with its last token repeated, ``[B]``.

    ``ord`` 1 is the L1 distance of the calibration table (oversquashing.md §5); ``inf`` is the
    paper's max-norm.
    """
    return last_token_distance(model, sequence, repeat_last(sequence), dtype=dtype, ord=ord)


@dataclass(frozen=True)
class CollapsePoint:
    """One cell of a collapse sweep: the batch-mean distance for a model, length and dtype."""

    model: str
    length: int
    dtype: str
    distance: float


def collapse_sweep(
    models: Mapping[str, object],
    make_sequence: Callable[[int], Tensor],
    lengths: Sequence[int],
    dtypes: Sequence[torch.dtype] = (torch.float32, torch.bfloat16),
    *,
    ord: float = 1.0,
) -> list[CollapsePoint]:
    """``collapse_distance`` over named models (positional encodings, windows, ...), lengths and
    precisions; ``make_sequence(n)`` gives the batch for length ``n`` (tokens or embeddings)."""
    sequences = {length: make_sequence(length) for length in lengths}
    points = []
    for name, model in models.items():
        for dtype in dtypes:
            probe = as_probe_model(model).to_dtype(dtype)  # one cast copy per model and dtype
            for length, sequence in sequences.items():
                distance = collapse_distance(probe, sequence, ord=ord, dtype=dtype).mean().item()
                label = str(dtype).removeprefix("torch.")
                points.append(CollapsePoint(name, length, label, distance))
    return points


def sensitivity_profile(
    model: object,
    sequence: Tensor,
    *,
    dtype: torch.dtype = torch.float32,
    position: int = -1,
) -> Tensor:
    """``||d y_position / d x_i||_F`` for every input position ``i``, shape ``[B, T]``.

    ``y`` is the final representation at ``position`` (default: the last token) and ``x_i`` the
    input embedding at ``i``. The full Jacobian norm takes one backward pass per output channel.
    """
    probe = as_probe_model(model).to_dtype(dtype)
    embeddings = _inputs_to_embeddings(probe, sequence).detach().to(dtype).requires_grad_(True)
    with torch.enable_grad():
        target = probe.hidden_states(embeddings)[:, position]  # [B, D']
        squared = torch.zeros(embeddings.shape[:2], dtype=torch.float32, device=embeddings.device)
        width = target.shape[-1]
        for channel in range(width):
            (grad,) = torch.autograd.grad(
                target[:, channel].sum(), embeddings, retain_graph=channel < width - 1
            )
            squared += grad.float().square().sum(dim=-1)
    return squared.sqrt()
