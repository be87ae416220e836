"""One seed drives Python's, NumPy's and PyTorch's generators; their states can be captured and restored."""

from __future__ import annotations

import os
import random
from typing import Any

import numpy as np
import torch


def seed_everything(seed: int) -> None:
    """Seed the global Python, NumPy and PyTorch (CPU and CUDA) generators from one integer."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def capture_rng_state() -> dict[str, Any]:
    """The global generators' states: JSON-ready values plus torch byte tensors."""
    version, internal, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state: dict[str, Any] = {
        "python": [version, list(internal), gauss],
        "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss), float(cached)],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    """Inverse of `capture_rng_state`."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(list(state["cuda"]))


def configure_determinism(device: str) -> None:
    """On CUDA, ask PyTorch for deterministic kernels where it offers them, and for IEEE fp32.

    Deterministic: cuBLAS's fixed workspace (`CUBLAS_WORKSPACE_CONFIG`, unless the user set it),
    cuDNN's deterministic algorithms without autotuning, and `use_deterministic_algorithms` with
    `warn_only` (an op without a deterministic CUDA kernel, e.g. some scatter reductions, warns
    instead of failing the run). IEEE fp32: no TF32 in matmuls or convolutions, so an fp32 result
    (and a claim about fp32 against bf16) means the same on a GPU as on a CPU. Called by `run_arm`
    before the arm's first CUDA call, as cuBLAS reads its workspace setting when it starts. On
    CPU, kernels are deterministic for a fixed thread count already and nothing is changed.
    """
    if device.startswith("cuda"):
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False
        torch.backends.cuda.matmul.fp32_precision = "ieee"
        torch.backends.cudnn.conv.fp32_precision = "ieee"
        torch.use_deterministic_algorithms(True, warn_only=True)
