"""Tokenizers, corpora, deterministic splits and batch samplers."""

import sys

import pytest
import torch

from repdyn.bench.errors import DataError, UserError
from repdyn.tasks.text import (
    BatchSampler,
    ByteTokenizer,
    Document,
    SentencePieceTokenizer,
    encode_documents,
    eval_batches,
    load_corpus,
    load_tokenizer,
    pydoc_documents,
    split_documents,
    stdlib_documents,
)

TEXT = "def f(x):\n    return x  # naïve — ünïcode ✓\n"


def test_byte_tokenizer_round_trip():
    tok = load_tokenizer()
    ids = tok.encode(TEXT)
    assert isinstance(tok, ByteTokenizer) and max(ids) < 256
    assert tok.decode(ids) == TEXT
    assert tok.count_bytes(ids) == len(TEXT.encode("utf-8")) > len(TEXT)


def test_sentencepiece_round_trip(tmp_path):
    spm = pytest.importorskip("sentencepiece")
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(
        "\n".join(f"line {i}: the quick brown fox jumps over the lazy dog" for i in range(200))
    )
    spm.SentencePieceTrainer.train(
        input=str(corpus), model_prefix=str(tmp_path / "sp"), vocab_size=60, minloglevel=2
    )
    tok = load_tokenizer(tmp_path / "sp.model")
    text = "the lazy fox jumps over the quick dog"
    assert tok.vocab_size == 60 and tok.decode(tok.encode(text)) == text
    assert tok.count_bytes(tok.encode(text)) == len(text)


def test_sentencepiece_missing_package_is_named(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "sentencepiece", None)
    with pytest.raises(UserError, match="'sentencepiece'"):
        SentencePieceTokenizer(tmp_path / "x.model")


def test_default_corpora_ship_with_python():
    stdlib = stdlib_documents()
    names = {d.name for d in stdlib}
    assert "os.py" in names and not any("site-packages" in n for n in names)
    assert len(stdlib) > 500 and [d.name for d in stdlib] == sorted(d.name for d in stdlib)
    topics = pydoc_documents()
    assert len(topics) > 20 and all(d.text for d in topics)
    assert load_corpus("pydoc") == topics


def test_user_files_and_folders(tmp_path):
    (tmp_path / "b.txt").write_text("second")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "a.txt").write_text("first")
    assert [d.name for d in load_corpus(tmp_path)] == ["b.txt", "sub/a.txt"]
    assert load_corpus(tmp_path / "b.txt") == [Document("b.txt", "second")]
    (tmp_path / "bin.dat").write_bytes(b"\xff\xfe\x00")
    with pytest.raises(DataError, match="bin.dat"):
        load_corpus(tmp_path)
    with pytest.raises(DataError, match="no such"):
        load_corpus(tmp_path / "missing")


def test_split_is_deterministic_disjoint_and_seeded():
    docs = [Document(f"doc{i}.py", f"text {i}") for i in range(200)]
    train, val = split_documents(docs, 0.1, seed=3)
    assert (train, val) == split_documents(docs, 0.1, seed=3)
    assert {d.name for d in train} | {d.name for d in val} == {d.name for d in docs}
    assert not {d.name for d in train} & {d.name for d in val}
    assert 5 <= len(val) <= 40
    assert split_documents(docs, 0.1, seed=4)[1] != val
    # one document splits by text
    (head,), (tail,) = split_documents([Document("one", "abcdefghij")], 0.2)
    assert head.text + tail.text == "abcdefghij" and tail.text == "ij"


def test_stream_positions_and_sampler_windows():
    docs = [Document("a", "hello"), Document("b", "wor"), Document("c", "ld!!")]
    stream = encode_documents(docs, ByteTokenizer())
    assert stream.tokens.tolist() == list(b"helloworld!!")
    assert stream.segment_pos.tolist() == [0, 1, 2, 3, 4, 0, 1, 2, 0, 1, 2, 3]
    sampler = BatchSampler(stream, batch_size=16, seq_len=5, seed=7)
    batch = sampler.sample()
    assert batch.inputs.shape == batch.targets.shape == batch.segment_pos.shape == (16, 5)
    for row_in, row_out, row_pos in zip(batch.inputs, batch.targets, batch.segment_pos, strict=True):
        start = bytes(row_in.tolist())
        at = b"helloworld!!".find(start)
        assert row_out.tolist() == list(b"helloworld!!"[at + 1 : at + 6])
        assert row_pos.tolist() == stream.segment_pos[at : at + 5].tolist()
    again = BatchSampler(stream, batch_size=16, seq_len=5, seed=7)
    assert torch.equal(again.sample().inputs, batch.inputs)
    state = sampler.state_dict()
    nxt = sampler.sample()
    again.load_state_dict(state)
    assert torch.equal(again.sample().inputs, nxt.inputs)
    with pytest.raises(DataError, match="shorter"):
        BatchSampler(stream, batch_size=1, seq_len=12)


def test_eval_batches_cover_the_stream_in_order():
    stream = encode_documents([Document("a", "abcdefghijk")], ByteTokenizer())
    batches = list(eval_batches(stream, seq_len=3, batch_size=2))
    inputs = torch.cat([b.inputs for b in batches])
    assert [bytes(r.tolist()) for r in inputs] == [b"abc", b"def", b"ghi"]
    assert bytes(batches[-1].targets[-1].tolist()) == b"hij"
