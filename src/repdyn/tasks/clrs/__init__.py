"""CLRS-30 in numpy, exact to dm-clrs 2.0.3: specs, algorithms with hint traces, samplers,
splits, the Feedback layout and evaluation - without jax, tensorflow or attrs.

Public API::

    execute(name, *args) -> Trajectory        # one run on CLRS's arguments, e.g.
                                              # execute("bfs", A, s); execute("binary_search", x, A)
    sample(name, num_samples, length, seed=None, **kwargs) -> Batch
                                              # = build_sampler(...)'s dataset, bit for bit
    Sampler(name, num_samples, length, seed=..., **kwargs).next(batch_size) -> Batch
    load_split(name, "train" | "val" | "test") -> Batch      # CLRS30 splits, cached on disk
    to_feedback(batch) -> Feedback / from_feedback(name, feedback) -> Batch
    evaluate(outputs, predictions) / evaluate_hints(hints, lengths, hint_preds)
    SPECS[name][probe] = (stage, location, type)

Data layout (see `probes.py`): a `Trajectory` holds dicts probe name -> array with CLRS's
probe contents (hints stacked [T, ...]); a `Batch` holds inputs/outputs [B, ...], hints
[T_max, B, ...] float64 zero-padded past `lengths[b]` - the arrays of CLRS's
`Feedback(features=Features(inputs, hints, lengths), outputs)`. Pointers are node indices,
categoricals and mask_one are one-hot, masks are 0/1 with -1 = masked. `Batch.to_torch()` gives
tensors for models. The training recipe (mixed sizes, random p, random `pos`, `pred_h` as
input, permutation pointers) is in `recipe.py`.

All 30 CLRS-30 algorithms are implemented, plus `find_maximum_subarray` and
`bipartite_matching` (in dm-clrs, outside CLRS-30): every spec in `SPECS`.
"""

from repdyn.tasks.clrs.algorithms import ALGORITHMS, execute, run_batch
from repdyn.tasks.clrs.evaluation import evaluate, evaluate_hints
from repdyn.tasks.clrs.feedback import DataPoint, Features, Feedback, from_feedback, to_feedback
from repdyn.tasks.clrs.probes import Batch, Trajectory
from repdyn.tasks.clrs.samplers import Sampler, sample
from repdyn.tasks.clrs.specs import CLRS_30_ALGS, SPECS, Location, OutputClass, Stage, Type
from repdyn.tasks.clrs.splits import CLRS30, load_split

__all__ = [
    "ALGORITHMS", "Batch", "CLRS30", "CLRS_30_ALGS", "DataPoint", "Features", "Feedback",
    "Location", "OutputClass", "SPECS", "Sampler", "Stage", "Trajectory", "Type", "evaluate",
    "evaluate_hints", "execute", "from_feedback", "load_split", "run_batch", "sample",
    "to_feedback",
]
