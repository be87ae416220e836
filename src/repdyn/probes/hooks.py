"""Collect features from any `nn.Module` with forward hooks, then remove the hooks.

    with FeatureRecorder(model, types=nn.Linear) as rec:
        model(probe_batch)
    ranks = {name: rank_metrics(f) for name, f in rec.features.items()}

Modules are chosen by qualified name (exact or glob, e.g. `"layers.*"`) and/or by type.
`capture="output"` records what a module returns (a Linear's output is a pre-activation, a
ReLU's output a post-activation); `capture="input"` records its first positional input.
Features are detached, flattened to `[n, features]` unless `flatten=False`, and concatenated
across forward calls, so a probe set can be fed in several batches.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Sequence
from typing import Any

import torch
from torch import Tensor, nn


class FeatureRecorder:
    """Forward hooks that record inputs or outputs of selected modules; a context manager."""

    def __init__(
        self,
        model: nn.Module,
        names: str | Sequence[str] = (),
        types: type[nn.Module] | tuple[type[nn.Module], ...] = (),
        *,
        capture: str = "output",
        flatten: bool = True,
        to_cpu: bool = True,
    ) -> None:
        if capture not in ("output", "input"):
            raise ValueError(f"capture must be 'output' or 'input', got {capture!r}")
        self.model = model
        self.capture = capture
        self.flatten = flatten
        self.to_cpu = to_cpu
        patterns = [names] if isinstance(names, str) else list(names)
        types = types if isinstance(types, tuple) else (types,)
        self.modules = select_modules(model, patterns, types)
        if not self.modules:
            raise ValueError(f"no module of {type(model).__name__} matches names={patterns} types={types}")
        self._chunks: dict[str, list[Tensor]] = {name: [] for name in self.modules}
        self._handles: list[Any] = []

    def __enter__(self) -> FeatureRecorder:
        self.attach()
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove()

    def attach(self) -> None:
        """Register one forward hook per selected module."""
        for name, module in self.modules.items():
            self._handles.append(module.register_forward_hook(self._hook(name)))

    def remove(self) -> None:
        """Remove every hook this recorder registered; recorded features are kept."""
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    def clear(self) -> None:
        """Forget recorded features (hooks stay attached)."""
        for chunks in self._chunks.values():
            chunks.clear()

    @property
    def features(self) -> dict[str, Tensor]:
        """Recorded features per module name, concatenated over forward calls (in selection order)."""
        return {name: torch.cat(chunks) for name, chunks in self._chunks.items() if chunks}

    def _hook(self, name: str):
        def record(module: nn.Module, inputs: tuple[Tensor, ...], output: Tensor) -> None:
            value = output if self.capture == "output" else inputs[0]
            if isinstance(value, (tuple, list)):
                value = value[0]
            value = value.detach()
            if self.flatten:
                value = value.reshape(value.shape[0], -1)
            self._chunks[name].append(value.cpu() if self.to_cpu else value)

        return record


def select_modules(
    model: nn.Module, patterns: Iterable[str], types: tuple[type[nn.Module], ...]
) -> dict[str, nn.Module]:
    """Modules of `model` whose name matches a glob pattern or whose type is in `types`."""
    patterns = list(patterns)
    chosen = {}
    for name, module in model.named_modules():
        if not name:
            continue
        by_name = any(fnmatch.fnmatchcase(name, p) for p in patterns)
        by_type = bool(types) and isinstance(module, types)
        if by_name or by_type:
            chosen[name] = module
    return chosen
