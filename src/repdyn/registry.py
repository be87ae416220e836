"""Find studies: every module in `repdyn.studies` that defines `STUDY`."""

from __future__ import annotations

import importlib
import pkgutil

from repdyn import studies
from repdyn.bench.errors import UserError
from repdyn.bench.study import Study


def names() -> list[str]:
    """Names of all study modules, sorted."""
    return sorted(m.name for m in pkgutil.iter_modules(studies.__path__) if not m.name.startswith("_"))


def get(name: str) -> Study:
    """The study called `name` (UserError listing the known ones otherwise)."""
    if name not in names():
        raise UserError(f"unknown study {name!r}; known: {', '.join(names())}")
    module = importlib.import_module(f"repdyn.studies.{name}")
    study = getattr(module, "STUDY", None)
    if not isinstance(study, Study):
        raise UserError(f"repdyn.studies.{name} defines no STUDY")
    return study


def all_studies() -> list[Study]:
    """Every registered study, by name."""
    return [get(n) for n in names()]
