"""State Soup: the composition identity, exact export/reload, exact one-hot mixing, retrieval, refusals."""

import dataclasses

import pytest
import torch

from repdyn.bench.errors import CheckpointError, UserError
from repdyn.methods.lm import generate
from repdyn.methods.state_soup import (
    StateStore,
    capture_state,
    continuation_nll,
    layer_vectors,
    mix_states,
    similarities,
)
from repdyn.models.griffin import Griffin, griffin_config
from repdyn.models.mamba import Mamba, MambaCache, MambaConfig, MambaLayerCache
from repdyn.nn.scan import linear_scan
from repdyn.tasks.text import ByteTokenizer


def _perturbed(model, seed):
    torch.manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return model.eval()


def _hawk(layers=2, vocab=64, seed=0):
    torch.manual_seed(seed)
    config = dataclasses.replace(griffin_config("griffin-tiny", pattern="hawk"), vocab_size=vocab,
                                 block_types=("recurrent",) * layers)
    return _perturbed(Griffin(config), seed)


def _mamba(layers=2, vocab=64, seed=0):
    torch.manual_seed(seed)
    return _perturbed(Mamba(MambaConfig(vocab_size=vocab, width=16, num_layers=layers, state_size=4)), seed)


MODELS = {"hawk": _hawk, "mamba": _mamba}


def test_composition_identity_of_the_scan():
    """h(s1||s2) = A(s2) * h(s1) + h0(s2), A(s2) the product of s2's decays, h0(s2) its state from zero."""
    gen = torch.Generator().manual_seed(0)
    a = torch.rand(3, 70, 9, generator=gen) ** 0.1
    x = torch.randn(3, 70, 9, generator=gen)
    _, whole = linear_scan(a, x)
    _, first = linear_scan(a[:, :30], x[:, :30])
    _, second_from_zero = linear_scan(a[:, 30:], x[:, 30:])
    composed = a[:, 30:].prod(dim=1) * first + second_from_zero
    assert (whole - composed).abs().max() < 1e-6


def test_composition_identity_holds_for_a_one_layer_hawk_state():
    """The RG-LRU state in the model's cache after s1||s2 composes from the state after s1, given the
    layer's inputs (a_t, b_t) on s2: exact for one linear-recurrent layer (state_soup.md §2)."""
    model = _hawk(layers=1)
    tokens = torch.randint(0, 64, (2, 40))
    block = model.blocks[0].recurrent_block
    with torch.no_grad():
        _, cache_whole = model(tokens)
        _, cache_first = model(tokens[:, :25])
        x = model.blocks[0].temporal_pre_norm(model.embedder.encode(tokens))
        reset = torch.zeros(tokens.shape, dtype=torch.bool)
        reset[:, 0] = True
        u, _ = block.conv_1d(block.linear_x(x), reset)
        a, b = block.rg_lru.coefficients(u, reset)
        _, second_from_zero = linear_scan(a[:, 25:], b[:, 25:])
    composed = a[:, 25:].prod(dim=1) * cache_first.blocks[0].rg_lru_state + second_from_zero
    assert (cache_whole.blocks[0].rg_lru_state - composed).abs().max() < 1e-6


@pytest.mark.parametrize("kind", ["hawk", "mamba"])
def test_exported_and_reloaded_state_continues_like_uninterrupted_processing(tmp_path, kind):
    model = MODELS[kind](layers=2)
    tokens = torch.randint(0, 64, (1, 48))
    store = StateStore()
    store.add("prompt", capture_state(model, tokens[:, :20]), text="twenty tokens", task=3)
    store.save(tmp_path / "states.safetensors")
    loaded = StateStore.load(tmp_path / "states.safetensors")
    assert loaded.names == ["prompt"] and loaded.metadata("prompt") == {"text": "twenty tokens", "task": 3}
    with torch.no_grad():
        uninterrupted, _ = model(tokens)
        continued, _ = model(tokens[:, 20:], cache=loaded.get("prompt"))
    assert (continued - uninterrupted[:, 20:]).abs().max() < 1e-5
    nll = continuation_nll(model, loaded.get("prompt"), tokens[:, 20:])
    want = torch.nn.functional.cross_entropy(uninterrupted[0, 20:-1], tokens[0, 21:], reduction="none")
    assert (nll[0] - want).abs().max() < 1e-5


@pytest.mark.parametrize("kind", ["hawk", "mamba"])
def test_one_hot_mixing_is_exact_and_mixing_is_linear(kind):
    model = MODELS[kind](layers=3)
    tokens = torch.randint(0, 64, (3, 30))
    a, b, c = (capture_state(model, tokens[i : i + 1, : 20 + 3 * i]) for i in range(3))

    def same(x, y):
        return all(torch.equal(u, v) for u, v in zip(layer_vectors(x), layer_vectors(y), strict=True)) and torch.equal(
            x.next_segment_pos, y.next_segment_pos)

    assert same(mix_states([a, b], [1.0, 0.0]), a)
    assert same(mix_states([a, b, c], [0.0, 0.0, 1.0]), c)
    per_layer = mix_states([a, b, c], [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])  # layer l <- state l
    for layer, source in enumerate((a, b, c)):
        assert torch.equal(layer_vectors(per_layer)[layer], layer_vectors(source)[layer])
    assert same(mix_states([a, a], "mean"), a)
    for mixed, want in ((mix_states([a, b], "sum"), 1.0), (mix_states([a, b], [0.25, 0.75]), None)):
        for layer, (va, vb) in enumerate(zip(layer_vectors(a), layer_vectors(b), strict=True)):
            expected = va + vb if want else 0.25 * va + 0.75 * vb
            torch.testing.assert_close(layer_vectors(mixed)[layer], expected, rtol=0, atol=1e-6)
    with pytest.raises(UserError, match=r"expected \[2\] or \[2, 3\]"):
        mix_states([a, b], [1.0, 0.0, 0.0])


def test_local_attention_kv_caches_are_refused():
    torch.manual_seed(0)
    model = Griffin(dataclasses.replace(griffin_config("griffin-tiny"), vocab_size=64)).eval()
    tokens = torch.randint(0, 64, (1, 12))
    with pytest.raises(UserError, match="local-attention KV cache.*hawk"):
        capture_state(model, tokens)
    _, cache = model(tokens)
    with pytest.raises(UserError, match="not a fixed-size state"):
        mix_states([cache, cache], "mean")
    with pytest.raises(UserError, match="not a fixed-size state"):
        StateStore().add("kv", cache)
    with pytest.raises(UserError, match="different models"):
        mix_states([capture_state(_hawk(), tokens), capture_state(_mamba(), tokens)])


def _hand_state(*layers, conv=(0.0, 0.0)):
    """A one-row Mamba state, one layer per vector: SSM state = the vector, one conv input = `conv`."""
    blocks = tuple(MambaLayerCache(torch.tensor(conv).view(1, 1, 2), torch.tensor(v).view(1, 2, 1)) for v in layers)
    return MambaCache(blocks, torch.tensor([5]))


def test_retrieval_uses_the_mean_over_layers_of_per_layer_cosine(tmp_path):
    store = StateStore()
    store.add("x", _hand_state([1.0, 0.0], [0.0, 1.0]), task=0)
    store.add("y", _hand_state([0.0, 1.0], [0.0, 3.0]), task=1)
    store.add("z", _hand_state([1.0, 1.0], [1.0, 0.0]), task=2)
    query = _hand_state([2.0, 0.0], [0.0, 5.0], conv=(0.0, 9.0))
    # recurrent state only, per-layer cosines: x (1, 1) -> 1; y (0, 1) -> 0.5; z (1/sqrt 2, 0) -> 0.354
    torch.testing.assert_close(store.similarities(query), torch.tensor([[1.0, 0.5, 0.5**0.5 / 2]]))
    assert [name for name, _ in store.nearest(query, k=2)] == ["x", "y"]
    # with the conv inputs [0, 9] (stored ones are zero) the query vectors are [0, 9, 2, 0] and [0, 9, 0, 5]
    with_conv = torch.tensor([[2 / 85**0.5 / 1 + 5 / 106**0.5, 5 / 106**0.5, 2 / 85**0.5 / 2**0.5]]) / 2
    torch.testing.assert_close(store.similarities(query, parts="all"), with_conv)
    store.save(tmp_path / "s.safetensors")
    again = StateStore.load(tmp_path / "s.safetensors")
    assert again.nearest(query)[0][0] == "x" and again.metadata("z") == {"task": 2}
    with pytest.raises(UserError, match="one state per name"):
        store.add("two rows", mix_states([query]).index_batch(torch.tensor([0, 0])))
    (tmp_path / "bad.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(CheckpointError, match="not a readable state store"):
        StateStore.load(tmp_path / "bad.safetensors")


def test_a_query_prompt_retrieves_the_state_of_its_own_prompt():
    model = _mamba(layers=2)
    prompts = torch.randint(0, 64, (6, 24))
    store = StateStore()
    for i in range(6):
        store.add(f"p{i}", capture_state(model, prompts[i : i + 1]))
    sims = similarities(capture_state(model, prompts), [store.get(n) for n in store.names])
    assert sims.argmax(dim=1).tolist() == list(range(6))
    torch.testing.assert_close(sims.diagonal(), torch.ones(6))


def test_generation_from_a_stored_state_equals_generation_from_the_whole_prompt():
    model = _hawk(layers=2, vocab=256, seed=4)
    tokenizer = ByteTokenizer()
    state = capture_state(model, torch.tensor([tokenizer.encode("def soup(")]))
    from_state = "".join(generate(model, tokenizer, "state", 24, temperature=0, cache=state))
    whole = "".join(generate(model, tokenizer, "def soup(state", 24, temperature=0))
    assert from_state == whole and len(from_state) > 0
