"""LM pieces: schedule values, sampling filters, determinism, bits per byte, training learns."""

import math

import pytest
import torch
from torch import nn

from repdyn.bench.errors import UserError
from repdyn.methods.lm import (
    bits_per_byte,
    generate,
    lm_loss,
    make_optimizer,
    make_scheduler,
    sample_next,
    train_step,
    warmup_cosine,
)
from repdyn.models.griffin import Griffin, griffin_config
from repdyn.tasks.text import BatchSampler, ByteTokenizer, Document, encode_documents


def test_warmup_cosine_values():
    kw = {"warmup_steps": 10, "total_steps": 110, "min_ratio": 0.1}
    assert warmup_cosine(0, **kw) == pytest.approx(0.1)
    assert warmup_cosine(4, **kw) == pytest.approx(0.5)
    assert warmup_cosine(10, **kw) == pytest.approx(1.0)
    assert warmup_cosine(60, **kw) == pytest.approx(0.1 + 0.9 * 0.5)  # half way: cos(pi/2) = 0
    assert warmup_cosine(110, **kw) == pytest.approx(0.1)
    assert warmup_cosine(500, **kw) == pytest.approx(0.1)
    model = nn.Linear(2, 2)
    opt = make_optimizer(model, lr=2.0)
    sched = make_scheduler(opt, **kw)
    lrs = []
    for _ in range(61):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs[0] == pytest.approx(0.2) and lrs[60] == pytest.approx(2.0 * 0.55)
    assert opt.param_groups[0]["weight_decay"] == 0.1 and opt.param_groups[1]["weight_decay"] == 0.0


def test_top_k_and_top_p_keep_only_the_allowed_tokens():
    logits = torch.log(torch.tensor([0.05, 0.4, 0.1, 0.3, 0.15]))
    gen = torch.Generator().manual_seed(0)
    top2 = {sample_next(logits, top_k=2, generator=gen) for _ in range(300)}
    assert top2 == {1, 3}
    # nucleus 0.8: 0.4 + 0.3 = 0.7 < 0.8, so 0.15 joins; 0.1 and 0.05 never appear
    nucleus = {sample_next(logits, top_p=0.8, generator=gen) for _ in range(400)}
    assert nucleus == {1, 3, 4}
    assert {sample_next(logits, top_p=0.3, generator=gen) for _ in range(50)} == {1}
    assert sample_next(logits, temperature=0) == 1
    draws = torch.tensor([sample_next(logits, generator=gen) for _ in range(4000)])
    freq = torch.bincount(draws, minlength=5) / 4000
    torch.testing.assert_close(freq, logits.exp(), atol=0.03, rtol=0)


def _tiny_model(seed=0):
    torch.manual_seed(seed)
    return Griffin(griffin_config("griffin-tiny"))


def test_generate_is_deterministic_per_seed_and_streams_utf8():
    model, tok = _tiny_model(), ByteTokenizer()
    first = list(generate(model, tok, "def ", 40, temperature=1.0, seed=5))
    assert first == list(generate(model, tok, "def ", 40, temperature=1.0, seed=5))
    assert "".join(first) != "".join(generate(model, tok, "def ", 40, temperature=1.0, seed=6))
    # the pieces are the decoded continuation, never a split character
    ids = []
    logits, cache = model(torch.tensor([tok.encode("def ")]))
    gen = torch.Generator().manual_seed(5)
    for _ in range(40):
        ids.append(sample_next(logits[0, -1], generator=gen))
        logits, cache = model(torch.tensor([[ids[-1]]]), cache=cache)
    assert "".join(first) == tok.decode(ids)
    with pytest.raises(UserError, match="top_p"):
        next(generate(model, tok, "x", 3, top_p=0.0))
    with pytest.raises(UserError, match="prompt"):
        next(generate(model, tok, "", 3))


class _Uniform(nn.Module):
    """Zero logits: every byte has probability 1/256, so bits per byte is exactly 8."""

    def __init__(self):
        super().__init__()
        self.dummy = nn.Parameter(torch.zeros(1))

    def forward(self, tokens, segment_pos=None, cache=None, return_cache=True):
        return torch.zeros(*tokens.shape, 256), None


def test_bits_per_byte_of_a_uniform_model_is_eight():
    stream = encode_documents([Document("a", "some text " * 30)], ByteTokenizer())
    assert bits_per_byte(_Uniform(), stream, ByteTokenizer(), eval_len=16) == pytest.approx(8.0)


def test_tiny_model_loss_decreases_in_30_steps():
    text = "".join(f"def function_{i % 7}(x):\n    return x * {i % 7}\n\n" for i in range(300))
    stream = encode_documents([Document("a", text)], ByteTokenizer())
    sampler = BatchSampler(stream, batch_size=8, seq_len=32, seed=0)
    model = _tiny_model(1)
    optimizer = make_optimizer(model, lr=1e-2)
    scheduler = make_scheduler(optimizer, warmup_steps=5, total_steps=30)
    eval_batch = sampler.sample()
    with torch.no_grad():
        before = lm_loss(model, eval_batch).item()
    losses = [train_step(model, optimizer, scheduler, sampler.sample()) for _ in range(30)]
    with torch.no_grad():
        after = lm_loss(model, eval_batch).item()
    assert before == pytest.approx(math.log(256), abs=0.5)
    assert after < before - 1.5 and sum(losses[-5:]) < sum(losses[:5])
    bpb = bits_per_byte(model, stream, ByteTokenizer(), eval_len=32, max_windows=8)
    assert bpb < 8.0 - 2.0


def test_bf16_autocast_step_is_close_to_fp32_and_keeps_fp32_weights():
    stream = encode_documents([Document("a", "abcabcabd" * 40)], ByteTokenizer())
    batch = BatchSampler(stream, batch_size=4, seq_len=16, seed=0).sample()
    losses, models = [], []
    for bf16 in (False, True):
        model = _tiny_model(2)
        optimizer = make_optimizer(model, lr=1e-3)
        in_mode = lambda on=bf16: torch.autocast("cpu", dtype=torch.bfloat16, enabled=on)  # noqa: E731
        losses.append(train_step(model, optimizer, None, batch, autocast=in_mode))
        models.append((model, optimizer))
    assert losses[1].dtype == torch.float32 and losses[1] != losses[0], "the bf16 step computed in bf16"
    assert math.isfinite(losses[1]) and losses[1].item() == pytest.approx(losses[0].item(), rel=0.02)
    model, optimizer = models[1]
    assert {p.dtype for p in model.parameters()} == {torch.float32}
    assert {p.grad.dtype for p in model.parameters() if p.grad is not None} == {torch.float32}
    assert {v.dtype for s in optimizer.state.values() for k, v in s.items() if k != "step"} == {torch.float32}
