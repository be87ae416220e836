"""Live cross-check of CLRS-Text against dm-clrs 2.0.3's own generator, on unseen seeds.

Runs only where dm-clrs (plus attrs and absl-py) is installed; its formatter is imported
without jax/tensorflow by `tests/fixtures/clrs_text/clrs_text_oracle.py` (clrs.md §10).
"""

from __future__ import annotations

import importlib.util
import sys
import warnings
from pathlib import Path

import pytest

from repdyn.tasks.clrs import CLRS_30_ALGS
from repdyn.tasks.clrs_text import clrs_text_generator

if importlib.util.find_spec("clrs") is None:
    pytest.skip("dm-clrs is not installed", allow_module_level=True)
pytest.importorskip("attr")
pytest.importorskip("absl")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fixtures" / "clrs_text"))
oracle = pytest.importorskip("clrs_text_oracle").load()


def _official(algos_and_lengths, num_samples, use_hints, seed, num_decimals):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return [(e["algo_name"], e["length"], e["question"], e["answer"]) for e in
                oracle.huggingface_generators.clrs_generator(
                    algos_and_lengths, num_samples, use_hints, seed, num_decimals)]


@pytest.mark.parametrize("use_hints", [False, True])
@pytest.mark.parametrize("name", CLRS_30_ALGS)
def test_live_generator_equals_dm_clrs(name, use_hints):
    seed = 500 + 7 * CLRS_30_ALGS.index(name) + int(use_hints)
    for decimals in (3, None):
        ref = _official({name: [4, 8, 13]}, 6, use_hints, seed, decimals)
        ours = [(e.algorithm, e.length, e.question, e.answer) for e in
                clrs_text_generator({name: [4, 8, 13]}, 6, use_hints, seed, decimals)]
        assert ours == ref
