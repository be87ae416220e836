"""Scan forward+backward: repdyn's blocked scan beside recurrentgemma's `rnn_scan` loop.

Prints, per shape, the speed-up over the official PyTorch scan (or over a plain autograd
addcmul loop when recurrentgemma is not installed) and the distance to the memory floor:
the bytes a fwd+bwd must move at least (fwd reads a, x and writes h; bwd reads dh, a, h and
writes dx, da: 8 fp32 passes) divided by the copy bandwidth measured in this process.

    python benchmarks/scan.py [--threads N] [--ref-length T]

recurrentgemma's loop writes each step into a preallocated output, so its backward grows
faster than linearly in T: a shortened, linearly scaled reference understates it.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from repdyn.bench.timing import best_time
from repdyn.models.recurrentgemma_reference import import_official_torch
from repdyn.nn.scan import linear_scan

SHAPES = [((8, 512, 256), 20.0), ((1, 4096, 1024), 100.0)]  # (B, T, D), speed-up goal (issue 5)
FLOOR_GOAL = 10.0
FP32_PASSES = 8



def copy_bandwidth() -> float:
    """Bytes per second of a 256 MiB tensor copy (read + write)."""
    src = torch.ones(64 * 2**20)
    dst = torch.empty_like(src)
    seconds = best_time(lambda: dst.copy_(src), repeats=5)
    return 2 * src.numel() * 4 / seconds


def fwd_bwd(scan: Callable, batch: int, length: int, width: int) -> Callable[[], None]:
    """A closure running scan forward and backward on fixed random inputs."""
    gen = torch.Generator().manual_seed(0)
    a = (0.5 + 0.5 * torch.rand(batch, length, width, generator=gen)).requires_grad_()
    x = torch.randn(batch, length, width, generator=gen).requires_grad_()
    grad = torch.randn(batch, length, width, generator=gen)
    reset = torch.zeros(batch, length, dtype=torch.bool)

    def run() -> None:
        a.grad = x.grad = None
        h = scan(a, x, reset)
        h.backward(grad)

    return run


def ours(a: torch.Tensor, x: torch.Tensor, reset: torch.Tensor) -> torch.Tensor:
    return linear_scan(a, x, reset=reset)[0]


def addcmul_loop(a: torch.Tensor, x: torch.Tensor, reset: torch.Tensor) -> torch.Tensor:
    """The plain-PyTorch baseline: a time loop of addcmul steps under autograd."""
    a = a.masked_fill(reset[..., None], 0.0)
    h = torch.zeros_like(x[:, 0])
    states = []
    for t in range(x.shape[1]):
        h = torch.addcmul(x[:, t], a[:, t], h)
        states.append(h)
    return torch.stack(states, dim=1)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument(
        "--ref-length",
        type=int,
        default=None,
        help="time the slow reference at most at this T and scale linearly (a lower bound: its "
        "backward grows faster than T); default: full length (~25 s at T=4096)",
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    official = import_official_torch()
    if official is not None:
        ref_name = "recurrentgemma rnn_scan"

        def reference(a: torch.Tensor, x: torch.Tensor, reset: torch.Tensor) -> torch.Tensor:
            return official.layers.rnn_scan(x, a, reset, None)[0]
    else:
        ref_name = "addcmul autograd loop (reference not installed)"
        reference = addcmul_loop
    bandwidth = copy_bandwidth()
    print(f"copy bandwidth {bandwidth / 1e9:.1f} GB/s, {args.threads} thread(s)")
    for (batch, length, width), goal in SHAPES:
        ours_s = best_time(fwd_bwd(ours, batch, length, width), repeats=5)
        ref_length = length if args.ref_length is None else min(length, args.ref_length)
        ref_s = best_time(fwd_bwd(reference, batch, ref_length, width), repeats=1)
        ref_s *= length / ref_length
        scaled = (
            f", ref timed at T={ref_length} and scaled x{length / ref_length:g}"
            if ref_length < length
            else ""
        )
        shape = f"(B={batch},T={length},D={width})"
        print(
            f"scan fwd+bwd {shape}: {ref_s / ours_s:.1f}x vs {ref_name} (goal >= {goal:g}x)"
            f" [ours {ours_s * 1e3:.1f} ms, ref {ref_s * 1e3:.0f} ms{scaled}]"
        )
        floor_s = FP32_PASSES * 4 * batch * length * width / bandwidth
        print(
            f"scan fwd+bwd {shape}: {ours_s / floor_s:.1f}x the memory floor "
            f"(goal <= {FLOOR_GOAL:g}x)"
            f" [ours {ours_s * 1e3:.1f} ms, floor {floor_s * 1e3:.1f} ms]"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
