"""FakeGPU, the pretend GPU of the device tests: its arithmetic is the CPU's, it refuses what CUDA
refuses (CPU tensors in a device op, a generator on the other device, numpy of a device tensor),
allows what CUDA allows (CPU scalars, CPU indices), and records every time the host would wait."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from repdyn.bench.checkpoint import load_checkpoint, save_checkpoint
from repdyn.bench.fakegpu import FakeGPU, FakeGPUTensor, Sync


def _train(device: torch.device | str, steps: int = 3) -> tuple[list[float], nn.Module]:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.LayerNorm(8), nn.Linear(8, 3)).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    x = torch.randn(16, 4, generator=torch.Generator().manual_seed(1)).to(device)
    y = torch.arange(16, device=device) % 3
    losses = []
    for _ in range(steps):
        loss = nn.functional.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses, model


def test_training_on_the_pretend_gpu_gives_the_cpus_numbers_on_device_tensors():
    cpu_losses, _ = _train("cpu")
    with FakeGPU() as gpu:
        losses, model = _train(gpu.device)
        params = list(model.parameters())
        assert all(isinstance(p, nn.Parameter) and p.device == gpu.device for p in params)
        assert all(p.grad.device == gpu.device for p in params)
        clone = copy.deepcopy(model)
        assert type(clone[0].weight) is FakeGPUTensor and torch.equal(clone[0].weight.cpu(), params[0].cpu())
    assert losses == cpu_losses
    assert gpu.matmuls["device"] > 0 and gpu.matmuls["cpu"] == 0


def test_a_cpu_batch_for_a_device_model_fails_as_on_cuda_but_cpu_scalars_and_indices_pass():
    with FakeGPU() as gpu:
        model = nn.Linear(4, 2).to(gpu.device)
        with pytest.raises(RuntimeError, match="expected all tensors to be on the same device.*shape \\(5, 4\\)"):
            model(torch.randn(5, 4))
        x = torch.ones(5, 4, device=gpu.device)
        assert (x * torch.tensor(2.0)).device == gpu.device  # a CPU scalar
        picked = x[torch.tensor([0, 3])]  # CPU indices are copied to the device, as CUDA does
        assert picked.device == gpu.device and picked.shape == (2, 4)
        with pytest.raises(RuntimeError, match="same device"):
            torch.ones(5, 4) + x


def test_random_ops_need_a_generator_on_their_own_device():
    with FakeGPU() as gpu:
        on_cpu, on_device = torch.Generator().manual_seed(0), torch.Generator(device=gpu.device).manual_seed(0)
        assert on_device.device == gpu.device and isinstance(on_device, torch.Generator)
        assert isinstance(on_cpu, torch.Generator)
        assert torch.randint(5, (3,), generator=on_device, device=gpu.device).device == gpu.device
        with pytest.raises(RuntimeError, match="expected a 'fakegpu' device type for generator but found 'cpu'"):
            torch.randn(3, device=gpu.device, generator=on_cpu)
        with pytest.raises(RuntimeError, match="expected a 'cpu' device type for generator but found 'fakegpu'"):
            torch.randperm(4, generator=on_device)
        with pytest.raises(RuntimeError, match="generator"):
            torch.empty(3, device=gpu.device).uniform_(generator=on_cpu)
    assert torch.Generator is type(on_cpu)  # restored


def test_every_wait_for_the_device_is_recorded_and_non_blocking_uploads_are_not_waits():
    with FakeGPU() as gpu:
        x = torch.arange(6.0).to(gpu.device, non_blocking=True)
        assert gpu.uploads == 1 and gpu.sync_log == []
        x.sum().item()
        x.cpu()
        x.tolist()
        x[x > 2]
        torch.ones(2).to(gpu.device)
        host = torch.empty(6)
        assert host.copy_(x) is host and type(host) is torch.Tensor and host[5] == 5  # an in-place copy back
        with pytest.raises(TypeError, match="use Tensor.cpu"):
            x.numpy()
    kinds = [s.kind for s in gpu.sync_log]
    assert kinds == ["read", "read", "read", "wait", "wait", "read"]
    assert gpu.sync_log[0] == Sync("read", "aten._local_scalar_dense.default")
    assert "boolean mask" in gpu.sync_log[3].op and "blocking upload" in gpu.sync_log[4].op


def test_a_checkpoint_of_a_device_model_and_optimizer_round_trips(tmp_path):
    with FakeGPU() as gpu:
        _, model = _train(gpu.device)
        optimizer = torch.optim.AdamW(model.parameters())
        model(torch.ones(1, 4, device=gpu.device)).sum().backward()
        optimizer.step()
        path = save_checkpoint(tmp_path, 1, {"model": model, "optimizer": optimizer})
        _, fresh = _train(gpu.device, steps=0)
        fresh_optimizer = torch.optim.AdamW(fresh.parameters())
        load_checkpoint(path, {"model": fresh, "optimizer": fresh_optimizer})
        assert all(torch.equal(a.cpu(), b.cpu()) for a, b in zip(model.parameters(), fresh.parameters(), strict=True))
        moments = [s["exp_avg"] for s in fresh_optimizer.state.values()]
        assert moments and all(m.device == gpu.device for m in moments)


def test_a_device_tensor_used_after_the_block_raises():
    with FakeGPU() as gpu:
        leaked = torch.ones(3, device=gpu.device)
    with pytest.raises(RuntimeError, match="used after its FakeGPU\\(\\) block ended"):
        leaked + 1
