"""Device resolution (`auto` never picks CUDA for a CPU-only study, and asking for it is refused) and
the deterministic settings a CUDA run starts with."""

from __future__ import annotations

import dataclasses
import os

import pytest
import torch

from repdyn import registry
from repdyn.bench import runner
from repdyn.bench.errors import UserError
from repdyn.bench.progress import make_progress
from repdyn.bench.runner import resolve_device
from repdyn.bench.seeding import configure_determinism
from repdyn.bench.store import RunStore


def test_auto_is_cpu_for_a_cpu_only_study_even_with_a_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("auto", cuda_ok=False) == "cpu"
    assert resolve_device("auto", cuda_ok=True) == "cuda:0"
    assert resolve_device("cuda", cuda_ok=True) == "cuda:0"
    with pytest.raises(UserError, match="runs on CPU only"):
        resolve_device("cuda:1", cuda_ok=False)
    assert resolve_device("cuda:1", cuda_ok=True) == "cuda:1"


def test_cuda_without_a_gpu_is_a_usage_error(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == "cpu"
    with pytest.raises(UserError, match="no CUDA device"):
        resolve_device("cuda")


@pytest.fixture
def restored_backend_flags():
    """Put back the global flags and environment `configure_determinism` changes."""
    saved = (torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled(),
             torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark,
             torch.backends.cuda.matmul.fp32_precision, torch.backends.cudnn.conv.fp32_precision,
             os.environ.get("CUBLAS_WORKSPACE_CONFIG"))
    yield
    torch.use_deterministic_algorithms(saved[0], warn_only=saved[1])
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = saved[2], saved[3]
    torch.backends.cuda.matmul.fp32_precision, torch.backends.cudnn.conv.fp32_precision = saved[4], saved[5]
    if saved[6] is None:
        os.environ.pop("CUBLAS_WORKSPACE_CONFIG", None)
    else:
        os.environ["CUBLAS_WORKSPACE_CONFIG"] = saved[6]


def test_a_cuda_run_asks_for_deterministic_kernels_and_ieee_fp32(restored_backend_flags, monkeypatch):
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    configure_determinism("cuda:0")
    assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"
    assert torch.are_deterministic_algorithms_enabled() and torch.is_deterministic_algorithms_warn_only_enabled()
    assert torch.backends.cudnn.deterministic and not torch.backends.cudnn.benchmark
    assert torch.backends.cuda.matmul.fp32_precision == "ieee" == torch.backends.cudnn.conv.fp32_precision


def test_a_users_cublas_setting_is_kept_and_a_cpu_run_changes_nothing(restored_backend_flags, monkeypatch):
    monkeypatch.setenv("CUBLAS_WORKSPACE_CONFIG", ":16:8")
    configure_determinism("cuda")
    assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":16:8"
    torch.use_deterministic_algorithms(False)
    torch.backends.cudnn.deterministic = False
    configure_determinism("cpu")
    assert not torch.are_deterministic_algorithms_enabled() and not torch.backends.cudnn.deterministic


def test_every_arm_configures_determinism_for_its_device_before_training(tmp_path, monkeypatch):
    seen = []
    monkeypatch.setattr(runner, "configure_determinism", seen.append)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    store = RunStore(tmp_path / "runs.db")
    study = registry.get("grokking")
    run = runner.create_study_run(store, study, "smoke", study.config(), 0, device=resolve_device("cuda"))
    recording = dataclasses.replace(study, train=lambda ctx: seen.append(ctx.device))
    monkeypatch.setattr(registry, "get", lambda name: recording)
    for arm_id in run.arm_ids:
        runner.run_arm(store, arm_id, make_progress(True))
    assert seen == ["cuda:0", torch.device("cuda:0")] * len(run.arm_ids)
