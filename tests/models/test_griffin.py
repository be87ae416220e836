"""Griffin: cached decoding equals the full forward, resets isolate documents, caches round-trip."""

import dataclasses

import pytest
import torch

from repdyn.bench.errors import CheckpointError, ConfigError
from repdyn.models.griffin import (
    Griffin,
    GriffinCache,
    block_pattern,
    embedding_scale,
    griffin_config,
)

WINDOW = 6



def _model(pattern="griffin", seed=0, **overrides):
    torch.manual_seed(seed)
    config = griffin_config("griffin-tiny", pattern=pattern, attention_window=WINDOW, **overrides)
    model = Griffin(config).eval()
    with torch.no_grad():  # move every parameter off its neutral initial value
        for p in model.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return model


def _inputs(batch=2, length=3 * WINDOW, seed=1):
    gen = torch.Generator().manual_seed(seed)
    tokens = torch.randint(0, 256, (batch, length), generator=gen)
    pos = torch.arange(length).repeat(batch, 1)
    pos[0, 5:] = torch.arange(length - 5)  # a reset inside the prefill
    pos[1, 11:] = torch.arange(length - 11)  # a reset inside the decoded stretch
    return tokens, pos


@pytest.mark.parametrize("pattern", ["griffin", "hawk", "transformer"])
def test_prefill_then_token_by_token_decode_equals_full_forward(pattern):
    model = _model(pattern)
    tokens, pos = _inputs()
    with torch.no_grad():
        full, _ = model(tokens, pos)
        logits, cache = model(tokens[:, :4], pos[:, :4])
        steps = [logits]
        for t in range(4, tokens.shape[1]):  # the ring buffer wraps twice
            logits, cache = model(tokens[:, t : t + 1], pos[:, t : t + 1], cache)
            steps.append(logits)
    assert (torch.cat(steps, 1) - full).abs().max() < 1e-5


def test_multi_token_continuation_and_default_positions():
    model = _model()
    tokens, _ = _inputs(length=40)
    with torch.no_grad():
        full, _ = model(tokens)  # positions 0..T-1
        cache, pieces = None, []
        for lo, hi in [(0, 3), (3, 17), (17, 18), (18, 40)]:  # chunks longer than the window too
            logits, cache = model(tokens[:, lo:hi], cache=cache)
            pieces.append(logits)
    assert (torch.cat(pieces, 1) - full).abs().max() < 1e-5
    assert cache.next_segment_pos.tolist() == [40, 40]


def test_global_attention_decoding_and_cache_growth():
    model = Griffin(_model().config.with_global_attention()).eval()
    tokens, pos = _inputs(length=20)
    with torch.no_grad():
        full, _ = model(tokens, pos)
        logits, cache = model(tokens[:, :10], pos[:, :10])
        small = cache.nbytes
        steps = [logits]
        for t in range(10, 20):
            logits, cache = model(tokens[:, t : t + 1], pos[:, t : t + 1], cache)
            steps.append(logits)
    assert (torch.cat(steps, 1) - full).abs().max() < 1e-5
    attention_bytes = lambda c: sum(
        b.keys.nbytes + b.values.nbytes for b in c.blocks if hasattr(b, "keys")
    )
    assert cache.nbytes > small
    assert attention_bytes(cache) == 2 * attention_bytes(
        model(tokens[:, :10], pos[:, :10])[1]
    )  # linear in T


def test_local_cache_bytes_stop_growing_at_the_window():
    model = _model()
    tokens, _ = _inputs(length=40)
    with torch.no_grad():
        sizes = [model(tokens[:, :t])[1].nbytes for t in (WINDOW, WINDOW + 1, 40)]
    assert sizes[0] == sizes[1] == sizes[2]


def test_tokens_before_a_reset_do_not_affect_later_outputs():
    model = _model()
    tokens, pos = _inputs(length=16)
    pos[0] = torch.cat([torch.arange(9), torch.arange(7)])  # row 0: document starts at t = 9
    changed = tokens.clone()
    changed[0, :9] = (changed[0, :9] + 1) % 256
    with torch.no_grad():
        before, _ = model(tokens, pos)
        after, _ = model(changed, pos)
    assert torch.equal(before[0, 9:], after[0, 9:])
    assert not torch.allclose(before[0, :9], after[0, :9])
    assert torch.equal(before[1], after[1])


def test_cache_save_load_and_clone_continue_exactly(tmp_path):
    model = _model()
    tokens, pos = _inputs(length=20)
    with torch.no_grad():
        _, cache = model(tokens[:, :12], pos[:, :12])
        cache.save(tmp_path / "cache.safetensors")
        loaded = GriffinCache.load(tmp_path / "cache.safetensors")
        copy = cache.clone()
        want, want_cache = model(tokens[:, 12:], pos[:, 12:], cache)
        got, _ = model(tokens[:, 12:], pos[:, 12:], loaded)
        again, _ = model(tokens[:, 12:], pos[:, 12:], copy)
        # continuing did not change the cache it started from
        also, _ = model(tokens[:, 12:], pos[:, 12:], cache)
    assert torch.equal(got, want) and torch.equal(again, want) and torch.equal(also, want)
    assert loaded.nbytes == cache.nbytes == want_cache.nbytes
    (tmp_path / "bad.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(CheckpointError, match="bad.safetensors"):
        GriffinCache.load(tmp_path / "bad.safetensors")


def test_index_batch_selects_and_repeats_rows():
    model = _model()
    tokens, pos = _inputs(length=15)
    with torch.no_grad():
        _, cache = model(tokens[:, :10], pos[:, :10])
        want, _ = model(tokens[:, 10:], pos[:, 10:], cache)
        rows = torch.tensor([1, 1, 0])
        got, _ = model(tokens[rows, 10:], pos[rows, 10:], cache.index_batch(rows))
    torch.testing.assert_close(got, want[rows])


def test_official_key_table_names_and_shapes():
    """griffin.md §4 (tiny config of §5): 51 tensors with the official names and shapes."""
    config = griffin_config(
        "griffin-tiny", vocab_size=128, width=64, num_heads=4, mlp_width=192, lru_width=64
    )
    shapes = {k: tuple(v.shape) for k, v in Griffin(config).state_dict().items()}
    assert len(shapes) == 51
    want = {
        "embedder.input_embedding": (128, 64),
        "final_norm.scale": (64,),
        "blocks.0.temporal_pre_norm.scale": (64,),
        "blocks.2.channel_pre_norm.scale": (64,),
        "blocks.0.recurrent_block.linear_x.weight": (64, 64),
        "blocks.1.recurrent_block.linear_y.bias": (64,),
        "blocks.0.recurrent_block.linear_out.weight": (64, 64),
        "blocks.0.recurrent_block.conv_1d.w": (4, 64),
        "blocks.0.recurrent_block.conv_1d.b": (64,),
        "blocks.1.recurrent_block.rg_lru.a_param": (64,),
        "blocks.1.recurrent_block.rg_lru.input_gate.w": (4, 16, 16),
        "blocks.1.recurrent_block.rg_lru.a_gate.b": (4, 16),
        "blocks.2.attention_block.proj_q.weight": (64, 64),
        "blocks.2.attention_block.proj_k.weight": (16, 64),
        "blocks.2.attention_block.proj_v.weight": (16, 64),
        "blocks.2.attention_block.proj_final.weight": (64, 64),
        "blocks.2.attention_block.proj_final.bias": (64,),
        "blocks.0.mlp_block.ffw_up.w": (2, 64, 192),
        "blocks.0.mlp_block.ffw_up.b": (2, 1, 1, 192),
        "blocks.0.mlp_block.ffw_down.weight": (64, 192),
        "blocks.0.mlp_block.ffw_down.bias": (64,),
    }
    assert {k: shapes[k] for k in want} == want
    assert not any(
        k.startswith("blocks.2.attention_block.proj_") and k.endswith("bias") and "final" not in k
        for k in shapes
    )


def test_presets_follow_the_fact_sheet():
    """griffin.md §1.1/§1.7: 2B = 18 R + 8 A, 9B = 26 R + 12 A, the 7B widths; scale 50.5."""
    two_b, nine_b = griffin_config("recurrentgemma-2b"), griffin_config("recurrentgemma-9b")
    assert (two_b.block_types.count("recurrent"), two_b.block_types.count("attention")) == (18, 8)
    assert (nine_b.block_types.count("recurrent"), nine_b.block_types.count("attention")) == (
        26,
        12,
    )
    assert griffin_config("hawk-7b").block_types == ("recurrent",) * 32
    assert (
        griffin_config("griffin-7b").lru == 5632
        and griffin_config("griffin-7b").attention_window == 1024
    )
    assert embedding_scale(2560) == 50.5
    with torch.device("meta"):
        model = Griffin(two_b)
    assert model.blocks[2].attention_block.proj_k.weight.shape == (256, 2560)
    assert model.blocks[0].mlp_block.ffw_up.w.shape == (2, 2560, 7680)
    assert block_pattern("griffin", 4) == ("recurrent", "recurrent", "attention", "recurrent")


def test_soft_cap_and_embedding_scale_apply():
    model = _model()
    tokens, _ = _inputs()
    uncapped = Griffin(dataclasses.replace(model.config, logits_soft_cap=0.0)).eval()
    uncapped.load_state_dict(model.state_dict())
    with torch.no_grad():
        x = model.embedder.encode(tokens)
        torch.testing.assert_close(x, model.embedder.input_embedding[tokens] * embedding_scale(32))
        raw, _ = uncapped(tokens)
        logits, _ = model(tokens)
    torch.testing.assert_close(logits, 30.0 * torch.tanh(raw / 30.0))  # griffin.md §1.6


def test_gradient_checkpointing_gives_the_same_gradients():
    tokens, pos = _inputs()
    grads = []
    for flag in (False, True):
        model = _model()
        model.gradient_checkpointing = flag
        model.train()
        logits, _ = model(tokens, pos, return_cache=False)
        logits.square().mean().backward()
        grads.append(torch.cat([p.grad.flatten() for p in model.parameters()]))
    torch.testing.assert_close(grads[0], grads[1])


def test_bad_configs_name_the_key():
    with pytest.raises(ConfigError, match="num_heads"):
        griffin_config("griffin-tiny", num_heads=3)
    with pytest.raises(ConfigError, match="attention_window"):
        griffin_config("griffin-tiny", attention_window=0)
    with pytest.raises(ConfigError, match="pattern"):
        griffin_config("griffin-tiny", pattern="mamba")
    with pytest.raises(ConfigError, match="preset"):
        griffin_config("griffin-huge")
    config = griffin_config("griffin-tiny")
    assert dataclasses.replace(config, block_types=["attention"]).block_types == ("attention",)


def test_initialisation_follows_the_official_code():
    """griffin.md §1.4: a^2 ~ U[0.81, 0.998], gates N(0, 1/block), conv N(0, 0.01/4), etc."""
    torch.manual_seed(0)
    config = griffin_config(
        "griffin-tiny", width=256, num_heads=4, lru_width=384, mlp_width=768, vocab_size=512
    )
    model = Griffin(config)
    params = dict(model.named_parameters())
    a_squared = torch.exp(
        -2 * torch.nn.functional.softplus(params["blocks.0.recurrent_block.rg_lru.a_param"])
    )
    assert 0.81 <= a_squared.min() and a_squared.max() <= 0.998
    assert abs(a_squared.mean().item() - (0.81 + 0.998) / 2) < 0.02  # uniform
    final = 2.0 / 3
    want_std = {
        "embedder.input_embedding": (1 / 256) ** 0.5,
        "blocks.0.recurrent_block.linear_x.weight": (1 / 256) ** 0.5,
        "blocks.0.recurrent_block.linear_out.weight": (final / 384) ** 0.5,
        "blocks.0.recurrent_block.conv_1d.w": (0.01 / 4) ** 0.5,
        "blocks.0.recurrent_block.rg_lru.a_gate.w": (1 / 96) ** 0.5,
        "blocks.2.attention_block.proj_k.weight": (1 / 256) ** 0.5,
        "blocks.2.attention_block.proj_final.weight": (final / 256) ** 0.5,
        "blocks.1.mlp_block.ffw_up.w": (1 / 256) ** 0.5,
        "blocks.1.mlp_block.ffw_down.weight": (final / 768) ** 0.5,
    }
    for key, std in want_std.items():
        assert params[key].std().item() == pytest.approx(std, rel=0.1), key
    zeros = [
        "final_norm.scale",
        "blocks.0.recurrent_block.conv_1d.b",
        "blocks.0.recurrent_block.rg_lru.a_gate.b",
        "blocks.1.mlp_block.ffw_up.b",
        "blocks.2.attention_block.proj_final.bias",
    ]
    assert all(params[key].abs().max() == 0 for key in zeros)
