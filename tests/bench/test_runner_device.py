"""Device resolution: `auto` never picks CUDA for a CPU-only study, and asking for it is refused."""

from __future__ import annotations

import pytest
import torch

from repdyn.bench.errors import UserError
from repdyn.bench.runner import resolve_device


def test_auto_is_cpu_for_a_cpu_only_study_even_with_a_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("auto", cuda_ok=False) == "cpu"
    assert resolve_device("auto", cuda_ok=True) == "cuda"
    with pytest.raises(UserError, match="runs on CPU only"):
        resolve_device("cuda:1", cuda_ok=False)
    assert resolve_device("cuda:1", cuda_ok=True) == "cuda:1"


def test_cuda_without_a_gpu_is_a_usage_error(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == "cpu"
    with pytest.raises(UserError, match="no CUDA device"):
        resolve_device("cuda")
