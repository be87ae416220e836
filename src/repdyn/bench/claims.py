"""Claims as checks: a paper's claim as a function of a finished run, returning a Verdict.

A claim reads only the run store (through a `RunView`), so any past run can be re-judged.
Its thresholds are module constants next to the study, each citing where in the paper (or
fact sheet) it comes from. `ok=None` means the run did not include what the claim needs
(for example an arm that only a longer preset trains).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from repdyn.bench.view import RunView


@dataclass(frozen=True)
class Verdict:
    """Outcome of one claim on one run: pass/fail/not-run, a one-line summary, the numbers behind it."""

    ok: bool | None
    summary: str
    numbers: dict[str, float] = field(default_factory=dict)
    figures: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        """REPRODUCED, NOT REPRODUCED or NOT RUN."""
        return {True: "REPRODUCED", False: "NOT REPRODUCED", None: "NOT RUN"}[self.ok]


@dataclass(frozen=True)
class Claim:
    """A named, machine-checkable statement of a paper's result."""

    name: str
    title: str
    check: Callable[[RunView], Verdict]
    source: str = ""

    def __call__(self, run: RunView) -> Verdict:
        return self.check(run)


def not_run(reason: str) -> Verdict:
    """Verdict for a claim whose inputs this run did not produce."""
    return Verdict(ok=None, summary=reason)


def fmt_step(step: int | None) -> str:
    """Compact step count: 950, 4.1k, 1.2M; 'never' for None."""
    if step is None:
        return "never"
    if step >= 1_000_000:
        return f"{step / 1e6:.3g}M"
    if step >= 1000:
        return f"{step / 1e3:.3g}k"
    return str(step)
