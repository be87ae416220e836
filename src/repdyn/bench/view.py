"""Read-only views of a finished (or running) study run, built from the store alone.

Claims and figures take a `RunView`; nothing reads in-memory training state, so any past run
can be re-judged and re-plotted.
"""

from __future__ import annotations

from collections.abc import Collection
from functools import cached_property
from typing import Any

from repdyn.bench import config as cfg
from repdyn.bench.store import RunRecord, RunStore, Series


class ArmView:
    """One arm (child run) of a study run: its config and logged series and tables."""

    def __init__(self, store: RunStore, record: RunRecord, config_cls: type) -> None:
        self.store = store
        self.record = record
        self.name = record.arm or "main"
        self.config = cfg.from_dict(config_cls, record.config)

    @cached_property
    def _series(self) -> dict[str, Series]:
        return self.store.all_series(self.record.id)

    def series(self, name: str) -> Series:
        """A logged series (empty if the arm never logged it)."""
        if name in self._series:
            return self._series[name]
        return self.store.series(self.record.id, name)

    def has(self, name: str) -> bool:
        """Whether the arm logged a series of this name."""
        return name in self._series

    def names(self, prefix: str = "") -> list[str]:
        """Names of the arm's series, optionally only those starting with `prefix`."""
        return sorted(n for n in self._series if n.startswith(prefix))

    def table(self, name: str) -> list[dict[str, Any]]:
        """A table the arm logged."""
        return self.store.table(self.record.id, name)

    def final(self) -> dict[str, float]:
        """Last value of every series."""
        return {name: s.last for name, s in self._series.items()}


class RunView:
    """A study run and its arms, as recorded in the store."""

    def __init__(self, store: RunStore, record: RunRecord, config_cls: type) -> None:
        if record.parent is not None:
            record = store.get_run(record.parent)
        self.store = store
        self.record = record
        self.config = cfg.from_dict(config_cls, record.config)
        self.arms = {a.arm or a.id: ArmView(store, a, config_cls) for a in store.children(record.id)}

    def arm(self, name: str) -> ArmView | None:
        """The named arm if this run trained it and it finished, else None."""
        view = self.arms.get(name)
        return view if view is not None and view.record.status == "finished" else None

    def table(self, name: str) -> list[dict[str, Any]]:
        """A table logged on the study run itself."""
        return self.store.table(self.record.id, name)


def recorded_view(
    store: RunStore,
    study: str,
    config: Any,
    arm_configs: dict[str, Any],
    rows: dict[str, list[tuple[int, str, float]]],
    run_id: str | None = None,
    tables: dict[str, dict[str, list[dict[str, Any]]]] | None = None,
) -> RunView:
    """A finished study run recorded from hand-made `(step, name, value)` rows (and tables) per arm.

    For judging claims and drawing figures on known curves without training; arms absent from
    `rows` are not recorded, as if the preset had not trained them.
    """
    run_id = run_id or f"{study}-1"
    store.create_run(run_id, study=study, preset="test", config=cfg.to_dict(config), seed=0, versions={})
    for arm, arm_config in arm_configs.items():
        if arm not in rows:
            continue
        child = f"{run_id}/{arm}"
        store.create_run(child, parent=run_id, arm=arm, study=study, preset="test",
                         config=cfg.to_dict(arm_config), seed=0, versions={})
        store.log_scalars(child, rows[arm])
        for name, table in (tables or {}).get(arm, {}).items():
            store.log_table(child, name, table)
        store.set_status(child, "finished")
    return RunView(store, store.get_run(run_id), type(config))


def differing_series(
    store: RunStore, run_a: str, run_b: str, names: Collection[str] | None = None, ignore_values: Collection[str] = ()
) -> list[str]:
    """Names of series that differ between two runs: missing from either, or with other steps or values.

    For checking that a resumed or repeated run reproduced another exactly. `names` limits the check
    (default: every series of either run); `ignore_values` must exist in both but may differ (wall clock).
    """
    a, b = store.all_series(run_a), store.all_series(run_b)
    checked = set(names) if names is not None else a.keys() | b.keys()

    def differs(name: str) -> bool:
        if name not in a or name not in b:
            return True
        if name in ignore_values:
            return False
        return a[name].steps.tolist() != b[name].steps.tolist() or a[name].values.tolist() != b[name].values.tolist()

    return sorted(name for name in checked if differs(name))
