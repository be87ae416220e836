"""Dynamic evaluation: lr 0 is static evaluation bit for bit, no leakage, exact resets, the parameter
subsets, the update rules against hand computations, and the FLOP accounting."""

import dataclasses

import pytest
import torch

from repdyn.bench.errors import ConfigError, UserError
from repdyn.methods.dynamic_eval import (
    DynamicEvalConfig,
    RMSDecay,
    dynamic_evaluate,
    flops_per_token,
    mean_squared_gradients,
    segments,
    select_parameters,
    static_evaluate,
)
from repdyn.models.griffin import Griffin, griffin_config
from repdyn.models.mamba import Mamba, MambaConfig
from repdyn.tasks.text import ByteTokenizer, Document, LMBatch, encode_documents

TOKENIZER = ByteTokenizer()


def _model(pattern="griffin", seed=0):
    torch.manual_seed(seed)
    if pattern == "mamba":
        return Mamba(MambaConfig(vocab_size=256, width=16, num_layers=2, state_size=4))
    return Griffin(dataclasses.replace(griffin_config("griffin-tiny", pattern=pattern), attention_window=8))


def _stream(*texts):
    return encode_documents([Document(f"d{i}", t) for i, t in enumerate(texts)], TOKENIZER)


TEXTS = ("def add(a, b):\n    return a + b\n" * 3, "The quick brown fox jumps over the lazy dog. " * 2)


def _params(model):
    return {name: p.detach().clone() for name, p in model.named_parameters()}


def test_segments_predict_every_token_but_document_starts_exactly_once():
    stream = _stream("abcdefghij", "x", "klmnopq")
    parts = segments(stream, segment_len=4, context_len=3)
    predicted = [i + 1 for s in parts for i in range(s.start + s.context, s.stop)]
    assert predicted == [1, 2, 3, 4, 5, 6, 7, 8, 9, 12, 13, 14, 15, 16, 17]
    assert [(s.start, s.stop, s.context, s.first) for s in parts[:3]] == [(0, 4, 0, True), (1, 8, 3, False),
                                                                          (5, 9, 3, False)]
    assert parts[3] == segments(stream, 4, 3)[3] and parts[3].start == 11 and parts[3].first


@pytest.mark.parametrize("pattern,optimizer", [("griffin", "sgd"), ("griffin", "adam"), ("hawk", "rms"),
                                               ("mamba", "adam")])
def test_learning_rate_zero_equals_static_evaluation_bit_for_bit(pattern, optimizer):
    model = _model(pattern)
    stream = _stream(*TEXTS)
    ms = {name: torch.rand_like(p) for name, p in model.named_parameters()}
    static = static_evaluate(model, stream, TOKENIZER, segment_len=16, context_len=8)
    config = DynamicEvalConfig(segment_len=16, context_len=8, optimizer=optimizer, lr=0.0, decay=0.5, grad_clip=1.0)
    dynamic = dynamic_evaluate(model, stream, TOKENIZER, config, ms=ms)
    assert dynamic.segment_nll == static.segment_nll
    assert dynamic.nll_nats == static.nll_nats and dynamic.num_bytes == static.num_bytes == len(stream) - 2
    assert dynamic.updates == len(static.segment_nll)


def test_no_leakage_changing_a_later_segment_leaves_earlier_scores_unchanged():
    model = _model("griffin")
    text = TEXTS[0]
    changed = text[:48] + "".join(chr(ord(c) ^ 1) for c in text[48:])  # segment 3 onward (16 per segment)
    config = DynamicEvalConfig(segment_len=16, context_len=8, optimizer="sgd", lr=0.5)
    first = dynamic_evaluate(model, _stream(text), TOKENIZER, config).segment_nll
    second = dynamic_evaluate(model, _stream(changed), TOKENIZER, config).segment_nll
    # targets of segment i are tokens 16 i + 1 .. 16 i + 16: segment 2 holds target 48, the first change
    assert first[:2] == second[:2]
    assert first[2] != second[2] and first[3:] != second[3:]


def test_document_reset_restores_the_initial_weights_exactly():
    model = _model("hawk")
    before = _params(model)
    config = DynamicEvalConfig(segment_len=8, optimizer="adam", lr=0.01, reset="document")
    both = dynamic_evaluate(model, _stream(*TEXTS), TOKENIZER, config)
    alone = dynamic_evaluate(model, _stream(TEXTS[1]), TOKENIZER, config)
    assert both.segment_nll[-len(alone.segment_nll):] == alone.segment_nll
    never = dynamic_evaluate(model, _stream(*TEXTS), TOKENIZER, dataclasses.replace(config, reset="never"))
    assert never.segment_nll[-len(alone.segment_nll):] != alone.segment_nll
    assert all(torch.equal(p, before[name]) for name, p in model.named_parameters())  # restored at the end


@pytest.mark.parametrize("subset", ["last_blocks", "norms_biases", "all"])
def test_only_the_configured_parameter_subset_changes(subset):
    model = _model("griffin")
    before = _params(model)
    config = DynamicEvalConfig(segment_len=16, optimizer="sgd", lr=0.1, subset=subset, last_blocks=1)
    dynamic_evaluate(model, _stream(TEXTS[0]), TOKENIZER, config, keep_adapted=True)
    changed = {name for name, p in model.named_parameters() if not torch.equal(p, before[name])}
    if subset == "last_blocks":
        assert changed and all(name.startswith("blocks.2.") for name in changed)
    elif subset == "norms_biases":
        assert changed and all(name.endswith((".scale", ".b", ".bias")) for name in changed)
        assert "blocks.0.temporal_pre_norm.scale" in changed and "blocks.1.recurrent_block.linear_x.bias" in changed
    else:
        assert changed == set(before)
    assert all(p.requires_grad for p in model.parameters())


def test_one_sgd_step_is_the_segment_gradient_times_the_learning_rate():
    model = _model("hawk")
    stream = _stream("hello world, hello soup")
    before = _params(model)
    logits, _ = model(stream.tokens[None, :-1], stream.segment_pos[None, :-1], return_cache=False)
    loss = torch.nn.functional.cross_entropy(logits[0], stream.tokens[1:])
    grads = dict(zip(before, torch.autograd.grad(loss, list(model.parameters())), strict=True))
    dynamic_evaluate(model, stream, TOKENIZER, DynamicEvalConfig(segment_len=64, lr=0.3), keep_adapted=True)
    for name, p in model.named_parameters():
        torch.testing.assert_close(p.detach(), before[name] - 0.3 * grads[name], rtol=0, atol=1e-6)


def test_rms_decay_rule_against_a_hand_computation():
    theta = torch.nn.Parameter(torch.tensor([1.0, -2.0, 0.5]))
    ms = torch.tensor([4.0, 0.25, 1.0])
    opt = RMSDecay([theta], [ms], lr=0.1, decay=0.2, eps=1e-3)
    theta.grad = torch.tensor([1.0, 1.0, -2.0])
    opt.step()
    first = torch.tensor([1.0 - 0.1 / 2.001, -2.0 - 0.1 / 0.501, 0.5 + 0.2 / 1.001])
    torch.testing.assert_close(theta.detach(), first)
    theta.grad = torch.zeros(3)
    opt.step()  # only the pull towards theta0, 0.2 * sqrt(MS) * (theta - theta0)
    shift = first - torch.tensor([1.0, -2.0, 0.5])
    torch.testing.assert_close(theta.detach(), first - 0.2 * ms.sqrt() * shift)


def test_mean_squared_gradients_average_per_batch_squares():
    model = _model("mamba")
    stream = _stream(TEXTS[0])
    batches = [LMBatch(stream.tokens[None, i:i + 10], stream.tokens[None, i + 1:i + 11], stream.segment_pos[None, i:i + 10])
               for i in (0, 20)]
    ms = mean_squared_gradients(model, batches)
    squares = []
    for b in batches:
        logits, _ = model(b.inputs, b.segment_pos, return_cache=False)
        loss = torch.nn.functional.cross_entropy(logits[0], b.targets[0])
        squares.append([g.square() for g in torch.autograd.grad(loss, list(model.parameters()))])
    for (name, _), s0, s1 in zip(model.named_parameters(), *squares, strict=True):
        torch.testing.assert_close(ms[name], (s0 + s1) / 2)
    with pytest.raises(UserError, match="needs mean squared gradients"):
        dynamic_evaluate(model, stream, TOKENIZER, DynamicEvalConfig(optimizer="rms", lr=0.1))


def test_flop_accounting_is_about_three_times_static():
    n = 1_000_000
    static = flops_per_token(n, segment_len=64)
    dynamic = flops_per_token(n, segment_len=64, dynamic=True, num_trained=n, optimizer="sgd")
    assert static == 2e6 and dynamic == 2e6 + 4e6 + 2 * n / 64  # forward, backward, one SGD step per 64 tokens
    with_context = flops_per_token(n, segment_len=16, context_len=48)
    assert with_context == 4 * static  # 64 tokens processed per 16 scored
    model = _model("griffin")
    result = dynamic_evaluate(model, _stream(TEXTS[0]), TOKENIZER,
                              DynamicEvalConfig(segment_len=16, subset="last_blocks", lr=0.1))
    total = sum(p.numel() for p in model.parameters())
    last = sum(p.numel() for p in model.blocks[2].parameters())
    lower = sum(p.numel() for p in model.blocks[:2].parameters())
    assert result.flops_per_token == 2 * total + 2 * (total - lower) + 2 * last + 2 * last / 16
    assert result.cpu_seconds > 0


def test_bad_settings_are_refused():
    with pytest.raises(ConfigError, match="optimizer"):
        DynamicEvalConfig(optimizer="lbfgs")
    with pytest.raises(ConfigError, match="last_blocks"):
        select_parameters(_model("hawk"), "last_blocks", last_blocks=9)
