"""`differing_series` names exactly the series that differ between two runs."""

from __future__ import annotations

from repdyn.bench.store import RunStore
from repdyn.bench.view import differing_series


def test_names_series_that_are_missing_or_differ_in_steps_or_values(tmp_path):
    store = RunStore(tmp_path / "s.db")
    for run in ("a", "b"):
        store.create_run(run, study="s", preset="t", config={}, seed=0, versions={})
    store.log_scalars("a", [(1, "same", 1.0), (1, "value", 1.0), (1, "step", 1.0), (1, "only_a", 1.0)])
    store.log_scalars("a", [(1, "clock", 5.0)])
    store.log_scalars("b", [(1, "same", 1.0), (1, "value", 2.0), (2, "step", 1.0), (1, "clock", 9.0)])
    assert differing_series(store, "a", "b") == ["clock", "only_a", "step", "value"]
    assert differing_series(store, "a", "b", ignore_values={"clock"}) == ["only_a", "step", "value"]
    assert differing_series(store, "a", "b", names=("same", "clock"), ignore_values={"clock"}) == []
    assert differing_series(store, "b", "b") == []
