"""What a study is: a config class, presets, arms, a training function, claims and figures.

A study run trains one or more *arms* (variants the claims compare, e.g. depth 4 and depth 12),
each recorded as a child run with its own series and checkpoints; the claims then read all arms.
Each module in `repdyn.studies` defines one `STUDY = Study(...)`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from repdyn.bench.claims import Claim

if TYPE_CHECKING:
    from matplotlib.figure import Figure as MplFigure

    from repdyn.bench.context import RunContext
    from repdyn.bench.view import RunView


@dataclass(frozen=True)
class Figure:
    """A report figure: file stem, title, one-line caption saying what it shows, and the figure."""

    name: str
    title: str
    caption: str
    figure: MplFigure


def single_arm(config: Any) -> dict[str, Any]:
    """Default arms: the config itself, as arm `main`."""
    return {"main": config}


@dataclass(frozen=True)
class Study:
    """A reproducible study: everything the CLI needs to run, judge and report it."""

    name: str
    title: str
    paper: str
    summary: str
    config: type
    train: Callable[[RunContext], None]
    presets: Mapping[str, Mapping[str, Any]] = field(default_factory=lambda: {"default": {}})
    arms: Callable[[Any], dict[str, Any]] = single_arm
    claims: Sequence[Claim] = ()
    figures: Callable[[RunView], list[Figure]] | None = None
    progress_keys: Sequence[str] = ()
    check: Callable[[Any], None] | None = None
    """Validates user-given inputs (data paths, files) before any run is created; raises UserError."""
    max_threads: int | None = None
    """Upper bound on torch threads per arm: tiny models run faster on one thread than on two."""
    load_lm: Callable[..., tuple[Any, Any]] | None = None
    """`load_lm(store, run_id, arm) -> (model, tokenizer)` for studies whose arms are language models."""
    cuda: bool = True
    """Whether the training moves models and batches to `ctx.device`; CPU-only studies refuse `--device cuda`."""
    wall_times: Mapping[str, str] = field(default_factory=dict)
    """Expected wall time per preset and the hardware it holds for, e.g. `{"default": "1 min, 2 CPU
    cores (measured)", "paper": "3 h, one A100-class GPU (estimate)"}`; shown by `repdyn list`."""

    def preset_names(self) -> list[str]:
        """Presets this study offers, `smoke` and `default` first."""
        order = {"smoke": 0, "default": 1, "paper": 3}
        return sorted(self.presets, key=lambda p: (order.get(p, 2), p))
