"""All probes on one 1024x512 feature matrix against a single `torch.linalg.svdvals` of it.

Goal (issue 2): at most 2x, by sharing one uncentred SVD between the singular-value metrics and
one covariance eigendecomposition for Deep Grokking's rank.
"""

from __future__ import annotations

import argparse

import torch

from repdyn.bench.timing import best_time
from repdyn.probes import (
    active_fraction,
    dead_fraction,
    dormant_fraction,
    feature_norm,
    linearised_fraction,
    rank_metrics,
)

GOAL = 2.0



def all_probes(features: torch.Tensor) -> dict[str, float]:
    """Every feature-matrix probe of probes.md §2-4 on one matrix."""
    out = {k: float(v) for k, v in rank_metrics(features).items()}
    post = features.clamp_min(0)
    out.update(
        dormant=dormant_fraction(post, 0.025), dead=dead_fraction(post), active=active_fraction(post),
        linearised=linearised_fraction(features), norm=feature_norm(features),
    )
    return out


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="repdyn bench probes")
    parser.add_argument("--n", type=int, default=1024)
    parser.add_argument("--d", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    features = torch.randn(args.n, args.d, generator=torch.Generator().manual_seed(0))
    svd = best_time(lambda: torch.linalg.svdvals(features), args.repeats)
    probes = best_time(lambda: all_probes(features), args.repeats)
    ratio = probes / svd
    verdict = "ok" if ratio <= GOAL else "above goal"
    print(f"all probes ({args.n}x{args.d}, {args.threads} thread): {ratio:.2f}x one svdvals (goal <= {GOAL:g}x, "
          f"{verdict}) [probes {probes * 1e3:.1f} ms, svdvals {svd * 1e3:.1f} ms]")
    return 0
