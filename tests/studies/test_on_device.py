"""Every study that runs on CUDA keeps its tensors on `ctx.device` and does not wait on the device
every training step: each trains a tiny config end to end on `FakeGPU` (a pretend GPU whose
tensors refuse to mix with CPU tensors, as CUDA's do) while the cost of every update is recorded.

An update is the work up to one `ctx.tick`. An arm's steady state is its updates that log the same
values as the update before them (a training loop logging every step or every N steps): each must
multiply matrices on the device and never wait on it, and at most one in four may multiply matrices
on the CPU or read more device values than it logs (a task switch building data, a measurement kept
for a later log); a per-step `.item()` shows in all of them. Negative controls: a batch left on the CPU fails the
run, and a per-step `.item()` is caught.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest
import torch

from repdyn import registry
from repdyn.bench import config as cfg
from repdyn.bench.context import RunContext
from repdyn.bench.fakegpu import FakeGPU, Sync
from repdyn.bench.progress import make_progress
from repdyn.bench.runner import create_study_run, run_arm
from repdyn.bench.store import RunStore
from repdyn.studies import grokking
from repdyn.tasks.text import LMBatch

# Smaller than the smoke presets where those take long under the pretend GPU (every op goes through Python).
TINY: dict[str, dict[str, Any]] = {
    "grokking": {"train.steps": 30, "train.batch_size": 16, "log_points": 4, "rank_points": 2, "control": False},
    "plasticity": {"arms": ("labels_plain", "offset_c100"), "labels.steps": 12, "labels.tasks": 2,
                   "offset.pretrain_steps": 12, "offset.steps": 12, "diag.k_steps": 4, "diag.probe_size": 32},
    "ppo": {"total_timesteps": 1024},
    "transnar": {"train_samples": 16, "eval_samples": 2, "eval_sizes": (5,), "nar.train_steps": 5},
    "oversquashing": {"positionals": ("rope",), "window": 4, "lengths": (8, 16), "draws": 1, "sensitivity_length": 4,
                      "trained.count_steps": 10, "trained.copy_steps": 10, "trained.count_lengths": (4,),
                      "trained.copy_lengths": (8,), "trained.eval_size": 8},
    "hypernetwork": {"kinds": ("linear",), "train.steps": 8, "train.eval_every": 4, "train.eval_size": 16,
                     "probe_steps": 12, "probe_size": 32},
    "dynamic_eval": {"data.eval_bytes": 64, "adapt.contexts": (32,), "train.log_every": 3},
    "state_soup": {"train.log_every": 3},
    "griffin": {"decode.repeats": 1, "lm_arms": ("griffin", "transformer")},
    "ppo_collapse": {"epochs": [1]},
    "nar_latent": {"experiments": ("e1", "e5"), "e1_steps": 6, "e5_steps": 6, "eval_every": 6, "e5_test_every": 6},
}


@dataclass
class Update:
    """What one update (the work up to a `ctx.tick`) cost, and which values it logged."""

    arm: str
    done: int = 0
    syncs: list[Sync] = field(default_factory=list)
    matmuls: Counter[str] = field(default_factory=Counter)
    logged: set[str] = field(default_factory=set)


@dataclass
class DeviceRun:
    """A study's tiny run on the pretend GPU: every update's costs and the arms' outcomes."""

    gpu: FakeGPU
    updates: list[Update]
    outcomes: dict[str, Any]

    def steady(self) -> list[Update]:
        """The training loops' steady state: updates that log the same values as the arm's update before
        them (a loop logging every step or every N steps repeats; setup, evaluations, task switches and
        phase changes do not)."""
        out = []
        for arm in dict.fromkeys(u.arm for u in self.updates):
            mine = [u for u in self.updates if u.arm == arm]
            out += [u for before, u in zip(mine, mine[1:], strict=False) if u.logged == before.logged]
        return out


def run_on_fake_gpu(name: str, tmp_path, overrides: Mapping[str, Any] | None = None) -> DeviceRun:
    """Run study `name` (smoke preset, then `TINY`, then `overrides`) on FakeGPU, in this process."""
    study = registry.get(name)
    config = cfg.override(study.config(), study.presets["smoke"], check=False)
    config = cfg.override(config, {**TINY.get(name, {}), **(overrides or {})})
    store = RunStore(tmp_path / "runs.db")
    gpu = FakeGPU()
    run = create_study_run(store, study, "smoke", config, 0, device=str(gpu.device))
    updates: list[Update] = []
    current = Update("")
    marks: list[Any] = [0, Counter()]

    def start(arm: str) -> None:
        nonlocal current
        current = Update(arm)
        marks[:] = len(gpu.sync_log), Counter(gpu.matmuls)

    original_tick, original_log, original_begin = RunContext.tick, RunContext.log, RunContext.begin

    def begin(self, total, done=0):
        start(self.arm)
        return original_begin(self, total, done)

    def log(self, step, **values):
        current.logged.update(values)
        return original_log(self, step, **values)

    def tick(self, done, state):
        current.done, current.syncs = done, gpu.sync_log[marks[0]:]
        current.matmuls = gpu.matmuls - marks[1]
        updates.append(current)
        try:
            return original_tick(self, done, state)  # a checkpoint's copies count in no update
        finally:
            start(self.arm)

    outcomes = {}
    with pytest.MonkeyPatch.context() as mp, gpu:
        mp.setattr(RunContext, "tick", tick)
        mp.setattr(RunContext, "log", log)
        mp.setattr(RunContext, "begin", begin)
        for arm_id in run.arm_ids:
            outcomes[arm_id] = run_arm(store, arm_id, make_progress(True))
    return DeviceRun(gpu, updates, outcomes)


CUDA_STUDIES = [name for name in registry.names() if registry.get(name).cuda]
# PPO steps Gymnasium environments on the CPU: every environment step sends observations to the
# device and reads the policy's output back, so its updates may wait on the device.
CPU_ENVIRONMENTS = {"ppo", "ppo_collapse"}


def problems(run: DeviceRun, study: str) -> list[str]:
    """What keeps a run from being GPU-ready: failed arms, and steady updates that multiply no matrix
    on the device, often multiply on the CPU, wait on the device, or often read more than they log."""
    failed = [f"{arm} failed: {o.error}" for arm, o in run.outcomes.items() if o.status != "finished"]
    steady = run.steady()
    if failed or not steady:
        return failed or ["no steady-state update: the config is too small"]
    out = []
    off_device = [(u.arm, u.done) for u in steady if not u.matmuls["device"]]
    if off_device:
        out.append(f"{len(off_device)} of {len(steady)} steady updates multiply no matrix on the device: "
                   f"{off_device[:3]}")
    on_cpu = [(u.arm, u.done) for u in steady if u.matmuls["cpu"]]
    if len(on_cpu) > len(steady) / 4:
        out.append(f"{len(on_cpu)} of {len(steady)} steady updates multiply matrices on the CPU: {on_cpu[:3]}")
    if study in CPU_ENVIRONMENTS:
        return out
    waits = [(u.arm, u.done, [s.op for s in u.syncs if s.kind == "wait"]) for u in steady]
    waits = [w for w in waits if w[2]]
    if waits:
        out.append(f"{len(waits)} of {len(steady)} steady updates wait on the device: {waits[:2]}")
    reads = [(u.arm, u.done, [s.op for s in u.syncs], sorted(u.logged)) for u in steady
             if sum(s.kind == "read" for s in u.syncs) > len(u.logged)]
    if len(reads) > len(steady) / 4:
        out.append(f"{len(reads)} of {len(steady)} steady updates read more than they log: {reads[:2]}")
    return out


# Paths the tiny configs above do not take: id -> (study, overrides).
VARIANTS = {
    "dynamic_eval-rms": ("dynamic_eval", {"adapt.optimizer": "rms", "adapt.ms_batches": 1}),
    "nar-random-draws": ("nar", {"algorithm": "insertion_sort", "hint_teacher_forcing": 0.5,  # Sinkhorn noise
                                 "train_steps": 5, "eval_every": 5, "val_samples": 2, "test_samples": 1,
                                 "batch_size": 2}),
}


@pytest.mark.parametrize(("name", "overrides"), [(name, {}) for name in CUDA_STUDIES] + list(VARIANTS.values()),
                         ids=[*CUDA_STUDIES, *VARIANTS])
def test_study_keeps_its_tensors_on_the_device_and_does_not_wait_on_it_every_step(name, overrides, tmp_path):
    assert problems(run_on_fake_gpu(name, tmp_path, overrides), name) == []


def test_negative_control_a_batch_left_on_the_cpu_fails_the_run(tmp_path, monkeypatch):
    monkeypatch.setattr(LMBatch, "to", lambda batch, device: batch)  # the sampler's batch is never moved
    found = problems(run_on_fake_gpu("state_soup", tmp_path), "state_soup")
    assert len(found) == 1 and "failed: RuntimeError: aten.embedding.default: expected all tensors to be on the " \
        "same device, but found at least two devices, fakegpu:0 and cpu" in found[0]


class _LossPrintingF:
    """torch.nn.functional, but mse_loss reads its value, like a loop that prints its loss every step."""

    def __getattr__(self, name: str) -> Any:
        return getattr(torch.nn.functional, name)

    def mse_loss(self, *args: Any, **kwargs: Any) -> torch.Tensor:
        loss = torch.nn.functional.mse_loss(*args, **kwargs)
        loss.item()
        return loss


def test_negative_control_an_item_every_step_is_caught(tmp_path, monkeypatch):
    monkeypatch.setattr(grokking, "F", _LossPrintingF())
    found = problems(run_on_fake_gpu("grokking", tmp_path), "grokking")
    assert len(found) == 1 and re.match(r"(\d+) of \1 steady updates read more than they log", found[0])
