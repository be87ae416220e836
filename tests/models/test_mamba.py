"""Mamba: logits and cached decoding against Hugging Face's MambaForCausalLM (stored fixture and live),
chunked continuation and document resets against one full forward, cache files, config errors."""

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from repdyn.bench.errors import CheckpointError, ConfigError
from repdyn.models.mamba import Mamba, MambaCache, MambaConfig

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "mamba"


@pytest.fixture(scope="module")
def hf_tiny():
    return Mamba.from_hf(FIXTURES / "hf_tiny"), load_file(str(FIXTURES / "hf_io.safetensors"))


def _decode(model, tokens, prefill):
    """Logits of a prefill and then one token at a time from the cache, and the final cache."""
    logits, cache = model(tokens[:, :prefill])
    steps = [logits]
    for t in range(prefill, tokens.shape[1]):
        logits, cache = model(tokens[:, t : t + 1], cache=cache)
        steps.append(logits)
    return torch.cat(steps, 1), cache


def test_hf_fixture_full_forward_matches_hf_logits(hf_tiny):
    model, io = hf_tiny
    assert model.config.inner == 128 and model.config.state_size == 16 and model.config.rank == 4
    with torch.no_grad():
        logits, _ = model(io["full_tokens"])
    assert (logits - io["full_logits"]).abs().max() < 1e-5


def test_hf_fixture_cached_decode_matches_hf_logits_and_states(hf_tiny):
    model, io = hf_tiny
    with torch.no_grad():
        logits, cache = _decode(model, io["decode_tokens"], prefill=8)
    assert (logits - io["decode_logits"]).abs().max() < 1e-5
    for i, block in enumerate(cache.blocks):
        # HF keeps K conv inputs [B, E, K]; the oldest is never used again, we keep the last K-1.
        hf_conv = io[f"decode_conv_state.{i}"]
        torch.testing.assert_close(block.conv_state, hf_conv[..., 1:].transpose(1, 2), rtol=0, atol=1e-6)
        torch.testing.assert_close(block.ssm_state, io[f"decode_ssm_state.{i}"], rtol=0, atol=1e-5)


def _tiny(seed=0, **overrides):
    torch.manual_seed(seed)
    config = MambaConfig(**{"vocab_size": 40, "width": 32, "num_layers": 2, "state_size": 8, **overrides})
    model = Mamba(config).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return model


def test_chunked_continuation_equals_one_forward():
    model = _tiny()
    tokens = torch.randint(0, 40, (3, 50))
    with torch.no_grad():
        full, full_cache = model(tokens)
        parts, cache = [], None
        for lo, hi in ((0, 17), (17, 18), (18, 49), (49, 50)):
            logits, cache = model(tokens[:, lo:hi], cache=cache)
            parts.append(logits)
    torch.testing.assert_close(torch.cat(parts, 1), full, rtol=0, atol=1e-5)
    for a, b in zip(cache.blocks, full_cache.blocks, strict=True):
        torch.testing.assert_close(a.ssm_state, b.ssm_state, rtol=0, atol=1e-5)
        torch.testing.assert_close(a.conv_state, b.conv_state, rtol=0, atol=1e-6)
    assert cache.next_segment_pos.tolist() == [50, 50, 50]


def test_document_reset_equals_a_fresh_start():
    """segment_pos 0 mid-row resets the scan and masks the convolution: the second document's logits
    equal those of the document alone, in a full forward and when it starts inside a continuation."""
    model = _tiny(seed=1)
    first, second = torch.randint(0, 40, (1, 13)), torch.randint(0, 40, (1, 20))
    tokens = torch.cat([first, second], 1)
    pos = torch.cat([torch.arange(13), torch.arange(20)])[None]
    with torch.no_grad():
        alone, _ = model(second)
        packed, _ = model(tokens, pos)
        _, cache = model(tokens[:, :10])
        continued, _ = model(tokens[:, 10:], pos[:, 10:], cache=cache)
    torch.testing.assert_close(packed[:, 13:], alone, rtol=0, atol=1e-5)
    torch.testing.assert_close(continued[:, 3:], alone, rtol=0, atol=1e-5)


def test_cache_save_load_round_trip_continues_bit_exactly(tmp_path):
    model = _tiny(seed=2)
    tokens = torch.randint(0, 40, (2, 30))
    with torch.no_grad():
        _, cache = model(tokens[:, :20])
        cache.save(tmp_path / "state.safetensors")
        loaded = MambaCache.load(tmp_path / "state.safetensors")
        want, _ = model(tokens[:, 20:], cache=cache)
        got, _ = model(tokens[:, 20:], cache=loaded)
    assert torch.equal(got, want)
    assert loaded.nbytes == cache.nbytes == 2 * (2 * 3 * 64 + 2 * 64 * 8) * 4 + 2 * 8
    row = loaded.index_batch(torch.tensor([1, 1]))
    assert torch.equal(row.blocks[0].ssm_state[0], cache.blocks[0].ssm_state[1])
    save_file({"x": torch.zeros(1)}, str(tmp_path / "other.safetensors"))
    with pytest.raises(CheckpointError, match="without Mamba cache metadata"):
        MambaCache.load(tmp_path / "other.safetensors")


def test_training_gradients_reach_every_parameter():
    model = _tiny(seed=3).train()
    tokens = torch.randint(0, 40, (2, 24))
    logits, _ = model(tokens[:, :-1], return_cache=False)
    torch.nn.functional.cross_entropy(logits.flatten(0, 1), tokens[:, 1:].flatten()).backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_bad_configs_and_folders_are_refused(tmp_path, hf_tiny):
    with pytest.raises(ConfigError, match="state_size"):
        MambaConfig(vocab_size=10, width=8, num_layers=1, state_size=0)
    with pytest.raises(CheckpointError, match="not a folder"):
        Mamba.from_hf(tmp_path / "missing")
    folder = tmp_path / "hf"
    folder.mkdir()
    (folder / "config.json").write_text((FIXTURES / "hf_tiny" / "config.json").read_text())
    with pytest.raises(CheckpointError, match="holds none of"):
        Mamba.from_hf(folder)
    state = load_file(str(FIXTURES / "hf_tiny" / "model.safetensors"))
    del state["backbone.layers.1.mixer.A_log"]
    save_file(state, str(folder / "model.safetensors"))
    with pytest.raises(CheckpointError, match="missing key 'backbone.layers.1.mixer.A_log'"):
        Mamba.from_hf(folder)


def test_original_mamba_ssm_folder_with_a_torch_weights_file(tmp_path, hf_tiny):
    """The state-spaces layout: d_model/n_layer/ssm_cfg config, `embedding` key, pytorch_model.bin."""
    model, io = hf_tiny
    folder = tmp_path / "mamba_ssm"
    folder.mkdir()
    state = load_file(str(FIXTURES / "hf_tiny" / "model.safetensors"))
    state["backbone.embedding.weight"] = state.pop("backbone.embeddings.weight")
    state["lm_head.weight"] = state["backbone.embedding.weight"].clone()
    torch.save(state, folder / "pytorch_model.bin")
    (folder / "config.json").write_text(
        '{"d_model": 64, "n_layer": 2, "vocab_size": 64, "ssm_cfg": {"bias": true}, "rms_norm": true}'
    )
    loaded = Mamba.from_hf(folder)
    with torch.no_grad():
        logits, _ = loaded(io["full_tokens"])
    assert (logits - io["full_logits"]).abs().max() < 1e-5


@pytest.mark.parametrize("tied", [True, False])
def test_live_random_hf_model_matches(tmp_path, tied):
    transformers = pytest.importorskip("transformers")
    config = transformers.MambaConfig(
        vocab_size=48, hidden_size=40, state_size=8, num_hidden_layers=3, expand=2, conv_kernel=3,
        time_step_rank=5, use_mambapy=False, use_associative_scan=False, tie_word_embeddings=tied,
    )
    torch.manual_seed(11)
    hf = transformers.MambaForCausalLM(config).eval()
    with torch.no_grad():
        for p in hf.parameters():
            p.add_(0.1 * torch.randn_like(p))
    hf.save_pretrained(tmp_path / "hf")
    ours = Mamba.from_hf(tmp_path / "hf")
    assert ours.config.conv_width == 3 and ours.config.rank == 5 and (ours.lm_head is None) == tied
    tokens = torch.randint(0, 48, (2, 19))
    with torch.no_grad():
        want = hf(tokens, use_cache=False).logits
        got, _ = ours(tokens)
        out = hf(tokens[:, :5], use_cache=True)
        cache, hf_steps = out.cache, [out.logits]
        for t in range(5, 19):
            out = hf(tokens[:, t : t + 1], cache=cache, use_cache=True)
            cache = out.cache
            hf_steps.append(out.logits)
        ours_steps, _ = _decode(ours, tokens, prefill=5)
    assert (got - want).abs().max() < 1e-5
    assert (ours_steps - torch.cat(hf_steps, 1)).abs().max() < 1e-5
