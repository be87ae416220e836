"""Loaders against fixtures from the official code (make_fixtures.py), live checks, bad files."""

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from repdyn.bench.errors import CheckpointError
from repdyn.models.griffin import Griffin, griffin_config
from repdyn.models.recurrentgemma_reference import import_official_torch

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "griffin"



@pytest.fixture(scope="module")
def official_model():
    return Griffin.from_recurrentgemma(FIXTURES / "official_tiny.pt", attention_window=8)


def test_official_checkpoint_full_forward_matches_official_logits(official_model):
    io = load_file(FIXTURES / "official_io.safetensors")
    config = official_model.config
    assert (config.width, config.num_heads, config.lru, config.mlp_width) == (64, 4, 64, 192)
    assert config.block_types == ("recurrent", "recurrent", "attention")
    with torch.no_grad():
        logits, _ = official_model(io["full_tokens"], io["full_segment_pos"])
    assert (logits - io["full_logits"]).abs().max() < 1e-5


def test_official_checkpoint_cached_decode_matches_official_decode(official_model):
    io = load_file(FIXTURES / "official_io.safetensors")
    tokens, pos = io["decode_tokens"], io["decode_segment_pos"]
    with torch.no_grad():
        logits, cache = official_model(tokens[:, :8], pos[:, :8])
        steps = [logits]
        for t in range(8, tokens.shape[1]):
            logits, cache = official_model(tokens[:, t : t + 1], pos[:, t : t + 1], cache)
            steps.append(logits)
    assert (torch.cat(steps, 1) - io["decode_logits"]).abs().max() < 1e-5


def test_hf_folder_matches_hf_logits():
    model = Griffin.from_hf(FIXTURES / "hf_tiny")
    io = load_file(FIXTURES / "hf_io.safetensors")
    assert model.config.attention_window == 7  # HF counts the query in its window of 8
    with torch.no_grad():
        logits, _ = model(io["tokens"])
    assert (logits - io["logits"]).abs().max() < 1e-5


def test_save_pretrained_round_trip(official_model, tmp_path):
    official_model.save_pretrained(tmp_path / "run")
    loaded = Griffin.from_pretrained(tmp_path / "run")
    assert loaded.config == official_model.config
    tokens = torch.randint(0, 128, (1, 12))
    with torch.no_grad():
        assert torch.equal(loaded(tokens)[0], official_model(tokens)[0])


def _official_state():
    return torch.load(FIXTURES / "official_tiny.pt", weights_only=True)


@pytest.mark.parametrize(
    "edit,match",
    [
        (
            lambda s: s.pop("blocks.1.recurrent_block.rg_lru.a_param"),
            "blocks.1.recurrent_block.rg_lru.a_param",
        ),
        (lambda s: s.update({"blocks.0.extra": torch.zeros(1)}), "blocks.0.extra"),
        (lambda s: s.update({"final_norm.scale": torch.zeros(3)}), "final_norm.scale"),
        (
            lambda s: s.update(
                {"blocks.1.recurrent_block.rg_lru.a_gate.w": torch.zeros(2, 32, 32)}
            ),
            "heads",
        ),
    ],
)
def test_mismatched_official_checkpoints_name_the_key(tmp_path, edit, match):
    state = _official_state()
    edit(state)
    torch.save(state, tmp_path / "bad.pt")
    with pytest.raises(CheckpointError, match=match) as info:
        Griffin.from_recurrentgemma(tmp_path / "bad.pt")
    assert "\n" not in str(info.value) and "bad.pt" in str(info.value)


def test_unreadable_files_are_refused(tmp_path):
    (tmp_path / "junk.pt").write_bytes(b"\x00junk")
    with pytest.raises(CheckpointError, match="junk.pt"):
        Griffin.from_recurrentgemma(tmp_path / "junk.pt")
    with pytest.raises(CheckpointError, match="no such file"):
        Griffin.from_recurrentgemma(tmp_path / "missing.pt")
    with pytest.raises(CheckpointError, match="not a folder"):
        Griffin.from_hf(tmp_path / "junk.pt")


def test_mismatched_hf_folders_name_the_key_or_file(tmp_path):
    folder = tmp_path / "hf"
    shutil.copytree(FIXTURES / "hf_tiny", folder)
    state = load_file(folder / "model.safetensors")
    state.pop("model.layers.2.temporal_block.k_proj.weight")
    save_file(state, folder / "model.safetensors")
    with pytest.raises(CheckpointError, match="model.layers.2.temporal_block.k_proj.weight"):
        Griffin.from_hf(folder)
    config = json.loads((folder / "config.json").read_text())
    config["num_key_value_heads"] = 2
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="num_key_value_heads"):
        Griffin.from_hf(folder)
    (folder / "config.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="config.json"):
        Griffin.from_hf(folder)


# Live cross-checks: random official models, when the official package is installed.


def _official_griffin(rg, kinds, window, seed):
    common = rg.common
    types = {
        "recurrent": common.TemporalBlockType.RECURRENT,
        "attention": common.TemporalBlockType.ATTENTION,
    }
    config = common.GriffinConfig(
        vocab_size=96,
        width=48,
        mlp_expanded_width=144,
        num_heads=3,
        block_types=tuple(types[k] for k in kinds),
        embeddings_scale_by_sqrt_dim=True,
        attention_window_size=window,
        logits_soft_cap=30.0,
        lru_width=48,
    )
    torch.manual_seed(seed)
    model = rg.Griffin(config, gradient_checkpointing=False).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return model


@pytest.mark.parametrize(
    "kinds", [("recurrent", "attention", "recurrent", "recurrent"), ("attention", "attention")]
)
def test_live_random_official_models_match(tmp_path, kinds):
    rg = import_official_torch()
    if rg is None:
        pytest.skip("recurrentgemma is not installed")
    official = _official_griffin(rg, kinds, window=5, seed=len(kinds))
    torch.save(official.state_dict(), tmp_path / "official.pt")
    ours = Griffin.from_recurrentgemma(tmp_path / "official.pt", attention_window=5)
    assert ours.config.block_types == kinds and ours.config.num_heads == 3
    tokens = torch.randint(0, 96, (2, 20))
    pos = torch.arange(20).repeat(2, 1)
    pos[1, 2:] = torch.arange(18)  # a document start inside the prefill, >= 3 tokens before its end
    with torch.no_grad():
        want, _ = official(tokens, pos)
        got, _ = ours(tokens, pos)
        logits, cache = official(tokens[:, :6], pos[:, :6])
        steps = [logits]
        for t in range(6, 20):
            logits, cache = official(tokens[:, t : t + 1], pos[:, t : t + 1], cache)
            steps.append(logits)
    assert (got - want).abs().max() < 1e-5
    # the official decode masks nothing at a document start; none after the prefill: it agrees
    assert (got - torch.cat(steps, 1)).abs().max() < 1e-5


def test_live_official_preset_shapes_match_ours():
    rg = import_official_torch()
    if rg is None:
        pytest.skip("recurrentgemma is not installed")
    common = rg.common
    config = common.GriffinConfig.from_preset(common.Preset.RECURRENT_GEMMA_2B_V1)
    with torch.device("meta"):
        official = rg.Griffin(config, gradient_checkpointing=False)
        ours = Griffin(griffin_config("recurrentgemma-2b"))
    want = {k: tuple(v.shape) for k, v in official.state_dict().items()}
    assert {k: tuple(v.shape) for k, v in ours.state_dict().items()} == want


def test_live_random_hf_model_matches(tmp_path):
    transformers = pytest.importorskip("transformers")
    config = transformers.RecurrentGemmaConfig(
        num_hidden_layers=4,
        vocab_size=80,
        hidden_size=24,
        intermediate_size=96,
        num_attention_heads=2,
        lru_width=36,
        attention_window_size=5,
        logits_soft_cap=20.0,
        num_key_value_heads=1,
        block_types=("recurrent", "attention"),
        pad_token_id=0,
        bos_token_id=2,
        eos_token_id=1,
    )
    torch.manual_seed(7)
    hf = transformers.RecurrentGemmaForCausalLM(config).eval()
    with torch.no_grad():
        for p in hf.parameters():
            p.add_(0.1 * torch.randn_like(p))
    hf.save_pretrained(tmp_path / "hf")
    ours = Griffin.from_hf(tmp_path / "hf")
    assert ours.config.block_types == ("recurrent", "attention") * 2 and ours.config.lru == 36
    tokens = torch.randint(0, 80, (2, 17))
    with torch.no_grad():
        want = hf(tokens, use_cache=False).logits
        got, _ = ours(tokens)
    assert (got - want).abs().max() < 1e-5
