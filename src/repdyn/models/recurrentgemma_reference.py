"""Optional access to the official `recurrentgemma` PyTorch package, for cross-checks only.

The package's top-level `__init__` imports its JAX half, so a plain `import recurrentgemma.torch`
fails without flax. griffin.md §5: register a bare package object whose search path is the
installed package folder, which skips that `__init__`, then import the torch subpackage.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types


def import_official_torch() -> types.ModuleType | None:
    """Return `recurrentgemma.torch` (with `.common` attached), or None when not installed."""
    spec = importlib.util.find_spec("recurrentgemma")
    if spec is None or spec.submodule_search_locations is None:
        return None
    if "recurrentgemma" not in sys.modules:
        package = types.ModuleType("recurrentgemma")
        package.__path__ = list(spec.submodule_search_locations)
        package.__spec__ = spec
        sys.modules["recurrentgemma"] = package
    try:
        official = importlib.import_module("recurrentgemma.torch")
        official.common = importlib.import_module("recurrentgemma.common")
    except ImportError:
        return None
    return official
