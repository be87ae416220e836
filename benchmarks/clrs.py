"""CLRS data generation: trajectories per second, repdyn vs dm-clrs's samplers.

    python benchmarks/clrs.py [--algorithms bfs,dfs] [--sizes 16:1000,64:32] [--repeats 3]

For each algorithm and (n, N) it times `repdyn.tasks.clrs.sample(name, N, n, seed=0)` against
dm-clrs's `build_sampler(name, N', length=n, seed=0)` (same data, bit for bit; N' = min(N, 64)
instances, as the reference's cost is linear in N) and prints the ratio of trajectories per
second (CPU time, best of `--repeats`). Without dm-clrs it compares against this package's own
per-instance loop (`execute` on one instance at a time). Defaults: the CLRS30 train split size
(N = 1000 at n = 16) and test split size (N = 32 at n = 64) for the 12 graph algorithms.
"""

from __future__ import annotations

import argparse
import functools
import sys
import time
import warnings
from pathlib import Path

import torch

from repdyn.tasks.clrs import run_batch, sample
from repdyn.tasks.clrs.samplers import Sampler
from repdyn.tasks.clrs.specs import FAMILIES

GOAL = 20.0  # issue 6: at least 20x for the graph algorithms at n = 16 and n = 64
_ORACLE = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "clrs"


def _load_reference():
    """dm-clrs's numpy data path via the test oracle, or None when dm-clrs is absent."""
    sys.path.insert(0, str(_ORACLE))
    try:
        import clrs_oracle

        return clrs_oracle.load()
    except ImportError:
        return None


def _best(fn, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.process_time()
        fn()
        best = min(best, time.process_time() - start)
    return max(best, 1e-9)


def _own_loop(name: str, num: int, n: int) -> None:
    """This package's unbatched path: draw one instance, run it alone, repeat."""
    sampler = Sampler(name, 1, n, seed=0)
    for _ in range(num):
        args = sampler._generator(sampler._draws, n)
        run_batch(name, *[[a] if not hasattr(a, "shape") else a[None] for a in args])


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--algorithms", default=",".join(FAMILIES["graphs"]))
    parser.add_argument("--sizes", default="16:1000,64:32", help="n:N pairs")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    warnings.filterwarnings("ignore")
    ref = _load_reference()
    sizes = [tuple(int(x) for x in pair.split(":")) for pair in args.sizes.split(",")]
    for n, num in sizes:
        for name in args.algorithms.split(","):
            ours = _best(functools.partial(sample, name, num, n, seed=0), args.repeats) / num
            ref_num = min(num, 64)
            if ref is not None:
                build = functools.partial(ref.samplers.build_sampler, name, ref_num, length=n,
                                          seed=0)
                label = "dm-clrs build_sampler"
            else:
                build = functools.partial(_own_loop, name, ref_num, n)
                label = "reference not installed; own per-instance loop"
            theirs = _best(build, args.repeats) / ref_num
            ratio = theirs / ours
            print(f"clrs {name} (n={n}, N={num}): {ratio:.1f}x vs {label} (goal >= {GOAL:.0f}x) "
                  f"[ours {1 / ours:,.0f} traj/s, reference {1 / theirs:,.0f} traj/s]",
                  flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
