"""Checkpoints: exact round trip of model, optimizer and RNG state; corrupt files are refused."""

import json
import random

import numpy as np
import pytest
import torch
from torch import nn

from repdyn.bench.checkpoint import list_checkpoints, load_checkpoint, read_checkpoint, save_checkpoint
from repdyn.bench.errors import CheckpointError


def _setup(seed: int = 0):
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
    return model, opt, sched


def _train(model, opt, sched, steps: int, gen: torch.Generator) -> list[float]:
    losses = []
    for _ in range(steps):
        x = torch.randn(16, 4, generator=gen)
        noise = torch.randn(16, 3) + float(np.random.rand()) + random.random()
        loss = (model(x) - noise).square().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        losses.append(loss.item())
    return losses


def test_resume_continues_bit_exactly(tmp_path):
    model, opt, sched = _setup()
    gen = torch.Generator().manual_seed(1)
    extra = {"best": 0.0}
    _train(model, opt, sched, 5, gen)
    extra["best"] = 1.25
    state = {"model": model, "optimizer": opt, "scheduler": sched, "gen": gen, "extra": extra}
    save_checkpoint(tmp_path, 5, state, meta={"note": "x"})
    expected = _train(model, opt, sched, 5, gen)

    model2, opt2, sched2 = _setup(seed=99)  # different init: everything must come from the file
    gen2, extra2 = torch.Generator(), {}
    torch.manual_seed(12345)
    step, meta = load_checkpoint(list_checkpoints(tmp_path)[-1], {"model": model2, "optimizer": opt2,
                                                                  "scheduler": sched2, "gen": gen2, "extra": extra2})
    assert (step, meta, extra2) == (5, {"note": "x"}, {"best": 1.25})
    assert _train(model2, opt2, sched2, 5, gen2) == expected
    for a, b in zip(model.parameters(), model2.parameters(), strict=True):
        assert torch.equal(a, b)


def test_tied_weights_and_numpy_generator(tmp_path):
    emb = nn.Embedding(5, 3)
    head = nn.Linear(3, 5, bias=False)
    head.weight = emb.weight
    module = nn.ModuleDict({"emb": emb, "head": head})
    rng = np.random.default_rng(7)
    rng.random(3)
    save_checkpoint(tmp_path, 1, {"m": module, "rng": rng})
    _, tensors = read_checkpoint(list_checkpoints(tmp_path)[-1])
    assert len([k for k in tensors if k.startswith("m.")]) == 1  # shared storage saved once
    expected = rng.random(4)
    module2 = nn.ModuleDict({"emb": nn.Embedding(5, 3), "head": nn.Linear(3, 5, bias=False)})
    rng2 = np.random.default_rng(0)
    load_checkpoint(list_checkpoints(tmp_path)[-1], {"m": module2, "rng": rng2})
    assert np.array_equal(rng2.random(4), expected)
    assert torch.equal(module2["head"].weight, emb.weight)


def test_keeps_only_the_newest(tmp_path):
    model, *_ = _setup()
    for step in (10, 20, 30, 40):
        save_checkpoint(tmp_path, step, {"model": model}, keep=2)
    assert [p.name for p in list_checkpoints(tmp_path)] == ["step-0000000030.json", "step-0000000040.json"]
    assert len(list(tmp_path.glob("*.safetensors"))) == 2


@pytest.mark.parametrize("damage", ["truncate_tensors", "flip_byte", "delete_tensors", "truncate_sidecar"])
def test_corrupt_checkpoints_are_refused(tmp_path, damage):
    model, opt, _ = _setup()
    sidecar = save_checkpoint(tmp_path, 3, {"model": model, "optimizer": opt})
    tensors = sidecar.with_suffix(".safetensors")
    if damage == "truncate_tensors":
        tensors.write_bytes(tensors.read_bytes()[:-17])
    elif damage == "flip_byte":
        data = bytearray(tensors.read_bytes())
        data[len(data) // 2] ^= 0xFF
        tensors.write_bytes(bytes(data))
    elif damage == "delete_tensors":
        tensors.unlink()
    else:
        sidecar.write_text(sidecar.read_text()[:40])
    before = [p.detach().clone() for p in model.parameters()]
    with pytest.raises(CheckpointError, match=str(tmp_path)):
        load_checkpoint(sidecar, {"model": model, "optimizer": opt})
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))


def test_mismatched_model_is_a_clear_error(tmp_path):
    sidecar = save_checkpoint(tmp_path, 1, {"model": nn.Linear(4, 2)})
    with pytest.raises(CheckpointError, match="cannot restore 'model'"):
        load_checkpoint(sidecar, {"model": nn.Linear(5, 2)})
    with pytest.raises(CheckpointError, match="no state for optimizer"):
        load_checkpoint(sidecar, {"optimizer": torch.optim.SGD(nn.Linear(4, 2).parameters(), lr=1)})


def test_no_pickle_in_files(tmp_path):
    model, opt, _ = _setup()
    sidecar = save_checkpoint(tmp_path, 2, {"model": model, "optimizer": opt})
    json.loads(sidecar.read_text())  # plain JSON
    header_len = int.from_bytes(sidecar.with_suffix(".safetensors").read_bytes()[:8], "little")
    header = json.loads(sidecar.with_suffix(".safetensors").read_bytes()[8: 8 + header_len])
    assert all("dtype" in v for k, v in header.items() if k != "__metadata__")
