"""The assembled transformer: causality, exposed states, latent codes, precision, config errors."""

import pytest
import torch

from repdyn.bench.errors import ConfigError
from repdyn.models.transformer import Transformer, TransformerConfig
from repdyn.nn.attention import ATTENTION_KINDS
from repdyn.nn.positional import sinusoidal_embedding

POSITIONALS = ["none", "rope", "alibi", "sinusoidal", "t5"]



def small(**changes) -> TransformerConfig:
    base = dict(vocab_size=11, d_model=16, num_layers=2, num_heads=4, mlp_dim=32)
    base.update(changes)
    return TransformerConfig(**base)


def model(**changes) -> Transformer:
    torch.manual_seed(0)
    return Transformer(small(**changes))


@pytest.mark.parametrize("positional", POSITIONALS)
@torch.no_grad()
def test_decoder_logits_do_not_depend_on_future_tokens(positional):
    net = model(positional=positional, attention="hyla")
    tokens = torch.randint(0, 11, (2, 9))
    changed = tokens.clone()
    changed[:, 6:] = (changed[:, 6:] + 1) % 11
    a, b = net(tokens), net(changed)
    assert a.shape == (2, 9, 11)
    torch.testing.assert_close(a[:, :6], b[:, :6], rtol=0, atol=0)
    assert (a[:, 6:] - b[:, 6:]).abs().amax() > 1e-4


@torch.no_grad()
def test_encoder_sees_the_whole_sequence():
    net = model(causal=False)
    tokens = torch.randint(0, 11, (1, 6))
    changed = tokens.clone()
    changed[0, 5] = (changed[0, 5] + 1) % 11
    assert (net(tokens)[0, 0] - net(changed)[0, 0]).abs().amax() > 1e-4


@pytest.mark.parametrize("positional", POSITIONALS)
@torch.no_grad()
def test_hidden_states_final_and_logits_are_consistent(positional):
    net = model(positional=positional)
    tokens = torch.randint(0, 11, (2, 7))
    out = net.run(tokens)
    assert len(out.hidden_states) == 3
    expected_input = net.embed(tokens)
    if positional == "sinusoidal":
        expected_input = expected_input + sinusoidal_embedding(torch.arange(7)[None], 16)
    torch.testing.assert_close(out.hidden_states[0], expected_input.expand(2, 7, 16))
    torch.testing.assert_close(out.final, net.norm_f(out.hidden_states[-1]))
    torch.testing.assert_close(out.logits, net.head(out.final))
    torch.testing.assert_close(net.run_embeddings(net.embed(tokens)).logits, out.logits)


@pytest.mark.parametrize("kind", sorted(ATTENTION_KINDS))
@torch.no_grad()
def test_latent_codes_are_each_blocks_attention_scores(kind):
    net = model(attention=kind, positional="t5")
    out = net.run(torch.randint(0, 11, (2, 5)), return_latents=True)
    assert len(out.latents) == 2
    pairs = zip(out.hidden_states[:-1], out.hidden_states[1:], strict=True)
    for block, (h_in, h_out), latent in zip(net.blocks, pairs, out.latents, strict=True):
        assert latent.shape == (2, 4, 5, 5)
        positions = torch.arange(5).expand(2, 5)
        mixed, recomputed = block.attn(block.norm1(h_in), positions, return_latents=True)
        torch.testing.assert_close(latent, recomputed)
        after_attn = h_in + mixed
        torch.testing.assert_close(h_out, after_attn + block.mlp(block.norm2(after_attn)))


@pytest.mark.parametrize("dtype, atol", [("bfloat16", 0.15), ("float16", 0.02)])
@torch.no_grad()
def test_low_precision_forward_runs_in_that_dtype_and_tracks_fp32(dtype, atol):
    reference = model(positional="rope")
    low = Transformer(small(positional="rope", dtype=dtype))
    low.load_state_dict(reference.state_dict())
    tokens = torch.randint(0, 11, (2, 8))
    out = low.run(tokens)
    assert out.logits.dtype == getattr(torch, dtype) and out.final.dtype == getattr(torch, dtype)
    torch.testing.assert_close(out.logits.float(), reference(tokens), rtol=0, atol=atol)


@torch.no_grad()
def test_continuous_inputs_use_a_linear_embedding():
    torch.manual_seed(0)
    net = Transformer(TransformerConfig(input_dim=5, output_dim=3, d_model=8, num_heads=2, causal=False))
    x = torch.randn(4, 6, 5)
    assert net(x).shape == (4, 6, 3)
    torch.testing.assert_close(net.embed(x), x @ net.embedding.weight.T + net.embedding.bias)


def test_a_decoder_learns_to_copy_the_previous_token():
    """Behaviour, not just shapes: 80 Adam steps take next-token loss on a copy task near zero."""
    torch.manual_seed(0)
    net = Transformer(small(positional="rope", num_layers=1))
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    for _ in range(80):
        tokens = torch.randint(0, 11, (16, 8))
        logits = net(tokens)[:, 1:]  # position t predicts token t - 1 (needs attention)
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, 11), tokens[:, :-1].reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.1


@pytest.mark.parametrize(
    "changes, key",
    [
        (dict(attention="performer"), "attention"),
        (dict(positional="learned"), "positional"),
        (dict(input_dim=3), "vocab_size"),
        (dict(num_heads=3), "qk_dim"),
        (dict(window=0), "window"),
        (dict(dtype="float8"), "dtype"),
        (dict(norm="batch"), "norm"),
        (dict(num_layers=0), "num_layers"),
    ],
)
def test_bad_config_names_the_key(changes, key):
    with pytest.raises(ConfigError) as info:
        small(**changes)
    assert info.value.key == key


def test_continuous_inputs_need_an_output_dim():
    with pytest.raises(ConfigError, match="output_dim"):
        TransformerConfig(input_dim=4)


def test_replace_validates_and_changes_one_field():
    config = small()
    assert config.replace(window=4).window == 4 and config.window is None
    with pytest.raises(ConfigError):
        config.replace(attention="nope")
