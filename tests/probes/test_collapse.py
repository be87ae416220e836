"""Collapse and sensitivity probes: theory-predicted values, finite differences, adapters."""

import sys

import pytest
import torch
from torch import nn

from repdyn.bench.errors import DataError, UserError
from repdyn.models.griffin import Griffin, griffin_config
from repdyn.models.transformer import Transformer, TransformerConfig
from repdyn.nn.attention import MultiHeadAttention
from repdyn.probes.collapse import (
    FunctionProbe,
    HiddenStateModel,
    as_probe_model,
    collapse_distance,
    collapse_sweep,
    last_token_distance,
    load_hf_causal_lm,
    repeat_last,
    sensitivity_profile,
)


def one_layer(seed: int, **changes) -> Transformer:
    """oversquashing.md §5 setting: one random attention layer, d 64, one head, residual + norm."""
    torch.manual_seed(seed)
    config = dict(vocab_size=4, d_model=64, num_layers=1, num_heads=1, mlp_dim=64, positional="none")
    return Transformer(TransformerConfig(**(config | changes)))


def prefix_then_ones(seed: int, n: int) -> torch.Tensor:
    """8 random tokens, then n ones: the counting prompt ``1...1`` behind a random prefix."""
    prefix = torch.randint(0, 4, (1, 8), generator=torch.Generator().manual_seed(seed))
    return torch.cat([prefix, torch.ones(1, n, dtype=torch.long)], dim=1)


def test_bf16_collapses_exactly_where_fp32_still_separates():
    """Theorem 4.2 with NoPE: v = prefix 1^n and v* = prefix 1^(n+1) (last token repeated) differ
    at the last token by O(prefix mass / n^2) of the value spread. At n = 1024 that is far below
    bf16's relative spacing 2^-8, so the representations are identical, yet far above fp32's 2^-23.
    A rare rounding-boundary crossing can still leave one ulp, hence the fact sheet's criterion
    (oversquashing.md §6): exactly 0 in at least 4 of 5 seeds, fp32 apart in all."""
    bf16, fp32 = [], []
    for seed in range(5):
        model, seq = one_layer(seed), prefix_then_ones(seed, 1024)
        bf16.append(collapse_distance(model, seq, dtype=torch.bfloat16).item())
        fp32.append(collapse_distance(model, seq).item())
    assert sum(d == 0.0 for d in bf16) >= 4, bf16
    assert min(fp32) > 1e-6, fp32
    # and the fp32 distance shrinks like 1/n^2 (a quarter per doubling)
    shorter = collapse_distance(one_layer(1), prefix_then_ones(1, 512)).item()
    assert 3.0 < shorter / fp32[1] < 5.0


def test_sliding_window_keeps_the_distance_at_any_length():
    """oversquashing.md §3/§5: with window 32, prefix 1^n 0 vs prefix 1^n 0 0 sees the same
    window content for every n > 32, so the distance stays put while full attention's decays."""

    def pair_distance(model, n):
        return collapse_distance(model, torch.cat([prefix_then_ones(0, n), torch.zeros(1, 1).long()], 1))

    windowed, full = one_layer(0, window=32), one_layer(0)
    near, far = pair_distance(windowed, 64).item(), pair_distance(windowed, 512).item()
    assert near == pytest.approx(far, rel=1e-5) and far > 0.1
    assert pair_distance(full, 512).item() < 0.5 * pair_distance(full, 64).item()


def test_repeated_token_inside_the_window_is_indistinguishable():
    """A windowed model cannot count past its window: 1^n and 1^(n+1) give exactly the same state."""
    model = one_layer(0, window=16)
    assert collapse_distance(model, prefix_then_ones(0, 40)).item() == 0.0


def test_distance_norms_and_pairs():
    model = one_layer(3)
    seq = prefix_then_ones(3, 20)
    pair = repeat_last(seq)
    assert torch.equal(pair[:, :-1], seq) and pair[0, -1] == seq[0, -1]
    l1 = collapse_distance(model, seq)
    linf = collapse_distance(model, seq, ord=float("inf"))
    direct = (model.run(seq).final[:, -1] - model.run(pair).final[:, -1]).abs()
    torch.testing.assert_close(l1, direct.sum(-1))
    torch.testing.assert_close(linf, direct.amax(-1))
    torch.testing.assert_close(last_token_distance(model, seq, pair), l1)


def test_sweep_reports_each_model_length_and_dtype():
    models = {"nope": one_layer(0), "rope": one_layer(0, positional="rope")}
    points = collapse_sweep(models, lambda n: prefix_then_ones(0, n), [16, 64])
    assert len(points) == 8
    cell = next(p for p in points if (p.model, p.length, p.dtype) == ("rope", 64, "bfloat16"))
    expected = collapse_distance(models["rope"], prefix_then_ones(0, 64), dtype=torch.bfloat16)
    assert cell.distance == pytest.approx(expected.item())


def finite_difference_profile(fn, embeddings: torch.Tensor, h: float = 1e-6) -> torch.Tensor:
    """||d y_last / d x_i||_F by central differences, one input coordinate at a time."""
    _, length, width = embeddings.shape
    squared = torch.zeros(length, dtype=torch.float64)
    for i in range(length):
        for c in range(width):
            plus, minus = embeddings.clone(), embeddings.clone()
            plus[0, i, c] += h
            minus[0, i, c] -= h
            column = (fn(plus)[0, -1] - fn(minus)[0, -1]) / (2 * h)
            squared[i] += column.square().sum()
    return squared.sqrt()


@pytest.mark.parametrize("positional", ["none", "alibi"])
def test_sensitivity_profile_matches_finite_differences(positional):
    torch.manual_seed(0)
    model = Transformer(
        TransformerConfig(vocab_size=5, d_model=8, num_layers=2, num_heads=2, mlp_dim=16, positional=positional)
    )
    tokens = torch.randint(0, 5, (1, 6))
    profile = sensitivity_profile(model, tokens, dtype=torch.float64)
    assert profile.shape == (1, 6)
    double = model.double()
    embeddings = double.embed(tokens).detach()
    with torch.no_grad():
        expected = finite_difference_profile(lambda e: double.run_embeddings(e).final, embeddings)
    torch.testing.assert_close(profile[0].double(), expected, rtol=1e-4, atol=1e-6)


def test_sensitivity_of_a_causal_mean_is_uniform_by_hand():
    """y_n = mean_i x_i  =>  d y_n / d x_i = I / T, Frobenius norm sqrt(D) / T at every i."""
    mean = FunctionProbe(lambda e: e.cumsum(1) / torch.arange(1, e.shape[1] + 1)[:, None])
    profile = sensitivity_profile(mean, torch.randn(2, 5, 4))
    torch.testing.assert_close(profile, torch.full((2, 5), 4**0.5 / 5))


class CumulativeMeanModel:
    """A stand-in for another architecture (e.g. Griffin) implementing the protocol itself."""

    def __init__(self, dtype: torch.dtype = torch.float32) -> None:
        self.dtype = dtype
        self.table = torch.randn(3, 4, generator=torch.Generator().manual_seed(0))

    def embed(self, tokens):
        return self.table.to(self.dtype)[tokens]

    def hidden_states(self, embeddings):
        return embeddings.cumsum(1) / torch.arange(1, embeddings.shape[1] + 1)[:, None]

    def to_dtype(self, dtype):
        return CumulativeMeanModel(dtype)


def test_protocol_models_and_plain_modules_plug_in():
    custom = CumulativeMeanModel()
    assert isinstance(custom, HiddenStateModel) and as_probe_model(custom) is custom
    tokens = torch.tensor([[0, 1, 2]])
    table = custom.table
    expected = ((table[0] + table[1]) / 12 - table[2] / 6).abs().sum()  # mean of 3 - mean of 4
    assert collapse_distance(custom, tokens).item() == pytest.approx(expected.item(), rel=1e-5)

    class AttentionLayer(nn.Module):  # embeddings -> LayerNorm(x + attention(x))
        def __init__(self):
            super().__init__()
            self.attn = MultiHeadAttention(8, 1)
            self.norm = nn.LayerNorm(8)

        def forward(self, x):
            return self.norm(x + self.attn(x)[0])

    torch.manual_seed(0)
    layer = AttentionLayer()
    embeddings = torch.randn(2, 10, 8)
    with torch.no_grad():
        direct = (layer(embeddings)[:, -1] - layer(repeat_last(embeddings))[:, -1]).abs().sum(-1)
    torch.testing.assert_close(collapse_distance(layer, embeddings), direct)
    assert layer.attn.query.weight.dtype == torch.float32  # bf16 probing works on a copy
    assert collapse_distance(layer, embeddings, dtype=torch.bfloat16).shape == (2,)
    assert layer.attn.query.weight.dtype == torch.float32
    with pytest.raises(UserError, match="embeddings"):
        collapse_distance(layer, torch.zeros(1, 3, dtype=torch.long))


def test_hf_loader_names_the_missing_package(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "transformers", None)  # import now fails as if not installed
    with pytest.raises(UserError, match="transformers"):
        load_hf_causal_lm(tmp_path)


def test_hf_causal_lm_from_a_local_folder(tmp_path):
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    config = transformers.LlamaConfig(
        vocab_size=16,
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=64,
    )
    transformers.LlamaForCausalLM(config).save_pretrained(tmp_path)
    with pytest.raises(DataError):
        load_hf_causal_lm(tmp_path / "missing")
    model = load_hf_causal_lm(tmp_path)
    tokens = torch.randint(0, 16, (2, 12))
    with torch.no_grad():
        ours = model(tokens, output_hidden_states=True).hidden_states[-1][:, -1]
        repeated = model(repeat_last(tokens), output_hidden_states=True).hidden_states[-1][:, -1]
    torch.testing.assert_close(collapse_distance(model, tokens), (ours - repeated).abs().sum(-1))
    profile = sensitivity_profile(model, tokens[:1, :6])
    embeddings = model.get_input_embeddings()(tokens[:1, :6]).detach().double()
    double = model.double()
    with torch.no_grad():
        expected = finite_difference_profile(  # Llama's RMSNorm computes in fp32: a wider step
            lambda e: double(inputs_embeds=e, output_hidden_states=True).hidden_states[-1],
            embeddings,
            h=1e-3,
        )
    torch.testing.assert_close(profile[0].double(), expected, rtol=1e-3, atol=1e-5)


def tiny_griffin(seed: int, pattern: str = "griffin", *, global_attention: bool = False) -> Griffin:
    """griffin-tiny (width 32, window 8, R R A): local attention plus RG-LRU recurrence."""
    torch.manual_seed(seed)
    config = griffin_config("griffin-tiny", pattern=pattern)
    return Griffin(config.with_global_attention() if global_attention else config).eval()


def prefix_ones_zero(seed: int, n: int) -> torch.Tensor:
    """The copy pair's v: 8 random tokens, n ones, then a zero (v* repeats the zero)."""
    return torch.cat([prefix_then_ones(seed, n), torch.zeros(1, 1, dtype=torch.long)], dim=1)


def test_griffin_probe_reproduces_griffins_forward_pass():
    """The adapter's final representation, put through Griffin's tied head and soft-cap, gives the
    logits of Griffin's own forward pass exactly."""
    model = tiny_griffin(0)
    probe = as_probe_model(model)
    tokens = torch.randint(0, 256, (2, 20), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        hidden = probe.hidden_states(probe.embed(tokens))
        cap = model.config.logits_soft_cap
        logits = torch.tanh(model.embedder.decode(hidden) / cap) * cap
        expected, _ = model(tokens)
    torch.testing.assert_close(logits, expected, rtol=0, atol=0)
    assert probe.to_dtype(torch.bfloat16).module.final_norm.scale.dtype == torch.bfloat16
    assert model.final_norm.scale.dtype == torch.float32  # cast on a copy


@pytest.mark.parametrize("seed", [0, 3])
def test_griffin_keeps_the_copy_pair_apart_where_global_attention_collapses(seed):
    """oversquashing.md §7: Griffin's local attention (and its recurrence, which forgets the far
    past) sees the same recent tokens at every n, so the copy-pair distance stays put, in fp32 and
    bf16; the same model with global attention ("transformer" pattern) loses it like 1/n."""
    griffin = tiny_griffin(seed)
    near = collapse_distance(griffin, prefix_ones_zero(seed, 64)).item()
    far = collapse_distance(griffin, prefix_ones_zero(seed, 1024)).item()
    far_bf16 = collapse_distance(griffin, prefix_ones_zero(seed, 1024), dtype=torch.bfloat16).item()
    assert far > 1.0 and far == pytest.approx(near, rel=0.1)
    assert far_bf16 == pytest.approx(far, rel=0.1)
    global_mqa = tiny_griffin(seed, "transformer", global_attention=True)
    decay = collapse_distance(global_mqa, prefix_ones_zero(seed, 64)) / collapse_distance(
        global_mqa, prefix_ones_zero(seed, 1024)
    )
    assert decay.item() > 4.0


def test_griffin_cannot_count_past_its_memory_and_bf16_makes_it_exact():
    """1^n vs 1^(n+1): the window holds only ones and the RG-LRU state forgets the prefix
    geometrically, so the distance falls to fp32 rounding level by n = 2048 and is exactly 0 in
    bf16 (the paper's counting failure, oversquashing.md §2 Corollary 6.2)."""
    for seed in range(3):
        model = tiny_griffin(seed)
        short = collapse_distance(model, prefix_then_ones(seed, 64)).item()
        long = collapse_distance(model, prefix_then_ones(seed, 2048)).item()
        assert short > 1e-3 and 0.0 < long < 1e-4, (short, long)
        assert collapse_distance(model, prefix_then_ones(seed, 2048), dtype=torch.bfloat16).item() == 0.0
