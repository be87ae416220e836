"""Mamba forward speed beside Hugging Face transformers' pure-PyTorch Mamba path, at one tiny config.

Both models get the same weights (transformers' `MambaForCausalLM` with `use_mambapy=False`, the
sequential "slow" path that runs without CUDA kernels, saved and loaded with `Mamba.from_hf`).
Forward tokens/s over a [B, T] batch of random tokens, best of a few timings, one thread by default.
Without transformers, ours is compared with the same model running `selective_scan_reference`, the
scan as a plain loop over time (what the HF slow path computes).

    python benchmarks/mamba.py [--threads N] [--batch B] [--length T] [--repeats N]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from repdyn.models.mamba import Mamba, MambaConfig  # noqa: E402
from repdyn.nn.selective_scan import selective_scan, selective_scan_reference  # noqa: E402

# state_soup.md §5: the cross-check model (hidden 64, state 16, 2 layers, expand 2, conv 4)
TINY = {"vocab_size": 256, "width": 64, "num_layers": 2, "state_size": 16, "expand": 2, "conv_width": 4}


def best_time(fn: Callable[[], object], repeats: int) -> float:
    """Smallest wall time of `repeats` calls after a warm-up call, in seconds."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def hf_reference(folder: Path):
    """A random transformers MambaForCausalLM at the tiny config, saved to `folder`; None without transformers."""
    try:
        import transformers
    except ImportError:
        return None
    config = transformers.MambaConfig(
        vocab_size=TINY["vocab_size"],
        hidden_size=TINY["width"],
        state_size=TINY["state_size"],
        num_hidden_layers=TINY["num_layers"],
        expand=TINY["expand"],
        conv_kernel=TINY["conv_width"],
        use_mambapy=False,
        use_associative_scan=False,
    )
    torch.manual_seed(0)
    model = transformers.MambaForCausalLM(config).eval()
    model.save_pretrained(folder)
    return model


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--length", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=3, help="timings per model (the best is kept)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    tokens = torch.randint(0, TINY["vocab_size"], (args.batch, args.length), generator=torch.Generator().manual_seed(1))
    sizes = f"width {TINY['width']}, {TINY['num_layers']} layers, N {TINY['state_size']}"
    shape = f"B={args.batch}, T={args.length}, {sizes}"
    with tempfile.TemporaryDirectory() as tmp, torch.no_grad():
        reference = hf_reference(Path(tmp))
        if reference is not None:
            ours = Mamba.from_hf(tmp).eval()
            assert (ours(tokens[:, :64])[0] - reference(tokens[:, :64], use_cache=False).logits).abs().max() < 1e-4
            ref_s = best_time(lambda: reference(tokens, use_cache=False), args.repeats)
            ref_name = "transformers MambaForCausalLM (pure-PyTorch path)"
        else:
            torch.manual_seed(0)
            ours = Mamba(MambaConfig(**TINY)).eval()
            from repdyn.models import mamba as mamba_module

            def loop_forward() -> None:
                mamba_module.selective_scan = selective_scan_reference
                try:
                    ours(tokens, return_cache=False)
                finally:
                    mamba_module.selective_scan = selective_scan

            ref_s = best_time(loop_forward, args.repeats)
            ref_name = "a plain-PyTorch time loop (reference not installed)"
        ours_s = best_time(lambda: ours(tokens, return_cache=False), args.repeats)
    n = args.batch * args.length
    print(
        f"mamba forward tokens/s ({shape}, {args.threads} thread(s)): {ref_s / ours_s:.1f}x vs {ref_name} "
        f"[ours {n / ours_s:.0f} tok/s ({ours_s * 1e3:.0f} ms), ref {n / ref_s:.0f} tok/s ({ref_s * 1e3:.0f} ms)]"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
