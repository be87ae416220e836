"""Text for language modelling: tokenizers, corpora that need no download, splits, samplers.

Default corpora ship with every Python (griffin.md §8): the standard library's own source
(`*.py` under `sysconfig.get_paths()["stdlib"]`, site-packages excluded) as the in-distribution
text, and the pydoc topics (`pydoc_data.topics.topics`, English prose about Python) as a shifted
distribution. Each file or topic is one document; a token stream carries `segment_pos`, the
position inside its document, so models can reset state at document starts.
"""

from __future__ import annotations

import hashlib
import sysconfig
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import torch
from torch import Tensor

from repdyn.bench.errors import DataError, UserError

__all__ = [
    "BatchSampler",
    "ByteTokenizer",
    "Document",
    "LMBatch",
    "SentencePieceTokenizer",
    "TokenStream",
    "Tokenizer",
    "encode_documents",
    "eval_batches",
    "load_corpus",
    "load_tokenizer",
    "pydoc_documents",
    "split_documents",
    "stdlib_documents",
    "text_documents",
]


class Tokenizer(Protocol):
    """What the LM code needs from a tokenizer."""

    vocab_size: int

    def encode(self, text: str) -> list[int]: ...

    def decode(self, ids: Sequence[int]) -> str: ...

    def count_bytes(self, ids: Sequence[int]) -> int:
        """UTF-8 bytes the ids stand for (the denominator of bits per byte)."""
        ...


class ByteTokenizer:
    """UTF-8 bytes as tokens 0..255: no vocabulary file, no download."""

    vocab_size = 256

    def encode(self, text: str) -> list[int]:
        return list(text.encode("utf-8"))

    def decode(self, ids: Sequence[int]) -> str:
        return bytes(int(i) for i in ids).decode("utf-8", errors="replace")

    def count_bytes(self, ids: Sequence[int]) -> int:
        return len(ids)


class SentencePieceTokenizer:
    """A SentencePiece model from a user-given `.model` file (optional package `sentencepiece`)."""

    def __init__(self, model_file: str | Path) -> None:
        try:
            import sentencepiece
        except ImportError as exc:
            raise UserError(
                "the SentencePiece tokenizer needs the optional package 'sentencepiece' "
                "(pip install sentencepiece); the default byte tokenizer needs nothing"
            ) from exc
        path = Path(model_file)
        if not path.is_file():
            raise DataError(f"{path}: no such SentencePiece model file")
        try:
            self._sp = sentencepiece.SentencePieceProcessor(model_file=str(path))
        except (RuntimeError, OSError) as exc:
            raise DataError(f"{path}: not a SentencePiece model ({exc})") from exc
        self.vocab_size = int(self._sp.get_piece_size())

    def encode(self, text: str) -> list[int]:
        return list(self._sp.encode(text))

    def decode(self, ids: Sequence[int]) -> str:
        return self._sp.decode([int(i) for i in ids])

    def count_bytes(self, ids: Sequence[int]) -> int:
        return len(self.decode(ids).encode("utf-8"))


def load_tokenizer(spec: str | Path | None = None) -> ByteTokenizer | SentencePieceTokenizer:
    """None or "bytes": the byte tokenizer; otherwise the path of a SentencePiece `.model` file."""
    if spec is None or str(spec) == "bytes":
        return ByteTokenizer()
    return SentencePieceTokenizer(spec)


@dataclass(frozen=True)
class Document:
    """One document of a corpus: a stable name (used to split) and its text."""

    name: str
    text: str


def stdlib_documents() -> list[Document]:
    """The Python standard library's `*.py` files (site/dist-packages excluded), sorted by path."""
    root = Path(sysconfig.get_paths()["stdlib"])
    files = sorted(
        p for p in root.rglob("*.py") if not {"site-packages", "dist-packages"} & set(p.parts)
    )
    return [
        Document(str(p.relative_to(root)), p.read_text(encoding="utf-8", errors="replace"))
        for p in files
    ]


def pydoc_documents() -> list[Document]:
    """The pydoc help topics that ship with Python: English prose, a shift from source code."""
    from pydoc_data.topics import topics

    return [Document(name, topics[name]) for name in sorted(topics)]


def text_documents(path: str | Path) -> list[Document]:
    """A user's UTF-8 text file (one document) or folder (every file below it, sorted)."""
    root = Path(path)
    if not root.exists():
        raise DataError(f"{root}: no such file or folder")
    files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
    documents = []
    for file in files:
        try:
            text = file.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise DataError(f"{file}: not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
        if text:
            documents.append(
                Document(str(file.relative_to(root)) if file != root else file.name, text)
            )
    if not documents:
        raise DataError(f"{root}: holds no non-empty text file")
    return documents


def load_corpus(source: str | Path | None = None) -> list[Document]:
    """Documents of "stdlib" (default), "pydoc", or a user file/folder path."""
    if source is None or str(source) == "stdlib":
        return stdlib_documents()
    if str(source) == "pydoc":
        return pydoc_documents()
    return text_documents(source)


def split_documents(
    documents: Sequence[Document], val_fraction: float = 0.05, seed: int = 0
) -> tuple[list[Document], list[Document]]:
    """Deterministic train/validation split by a hash of (seed, document name).

    A single document is split by text instead: its last `val_fraction` becomes validation.
    """
    if not 0.0 < val_fraction < 1.0:
        raise UserError(f"val_fraction must lie in (0, 1); got {val_fraction}")
    if not documents:
        raise DataError("cannot split an empty corpus")
    if len(documents) == 1:
        doc = documents[0]
        cut = max(1, min(len(doc.text) - 1, round(len(doc.text) * (1.0 - val_fraction))))
        return [Document(doc.name, doc.text[:cut])], [Document(doc.name + "#val", doc.text[cut:])]

    def score(doc: Document) -> float:
        digest = hashlib.sha256(f"{seed}:{doc.name}".encode()).digest()
        return int.from_bytes(digest[:8], "big") / 2**64

    scores = [score(doc) for doc in documents]
    val = [doc for doc, s in zip(documents, scores, strict=True) if s < val_fraction]
    if not val:  # keep at least one validation document
        val = [documents[min(range(len(documents)), key=scores.__getitem__)]]
    val_names = {doc.name for doc in val}
    return [doc for doc in documents if doc.name not in val_names], val


@dataclass(frozen=True)
class TokenStream:
    """Documents' tokens end to end [N] with each token's position inside its document [N]."""

    tokens: Tensor
    segment_pos: Tensor

    def __len__(self) -> int:
        return self.tokens.numel()


def encode_documents(
    documents: Sequence[Document], tokenizer: Tokenizer, max_tokens: int | None = None
) -> TokenStream:
    """Tokenize and concatenate documents (up to `max_tokens`); positions restart at 0 in each."""
    pieces, positions, total = [], [], 0
    for doc in documents:
        if not doc.text:
            continue
        if isinstance(tokenizer, ByteTokenizer):  # fast path: no Python list of ints
            ids = torch.frombuffer(bytearray(doc.text.encode("utf-8")), dtype=torch.uint8).long()
        else:
            ids = torch.tensor(tokenizer.encode(doc.text), dtype=torch.long)
        if max_tokens is not None:
            ids = ids[: max_tokens - total]
        if not len(ids):
            continue
        pieces.append(ids)
        positions.append(torch.arange(len(ids)))
        total += len(ids)
        if max_tokens is not None and total >= max_tokens:
            break
    if not pieces:
        raise DataError("the corpus has no tokens")
    return TokenStream(torch.cat(pieces), torch.cat(positions))


@dataclass(frozen=True)
class LMBatch:
    """Next-token batch [B, T]: inputs, targets (inputs shifted by one), the inputs' segment_pos."""

    inputs: Tensor
    targets: Tensor
    segment_pos: Tensor

    def to(self, device: torch.device) -> LMBatch:
        """The batch on `device`, copied without waiting for the device (batches are built on the CPU)."""
        return LMBatch(*(t.to(device, non_blocking=True) for t in (self.inputs, self.targets, self.segment_pos)))


def _windows(stream: TokenStream, starts: Tensor, length: int) -> LMBatch:
    index = starts[:, None] + torch.arange(length + 1)
    tokens, pos = stream.tokens[index], stream.segment_pos[index]
    return LMBatch(tokens[:, :-1], tokens[:, 1:], pos[:, :-1])


class BatchSampler:
    """Random windows of `seq_len` (+1 target) tokens of a stream, from a seeded torch.Generator."""

    def __init__(self, stream: TokenStream, batch_size: int, seq_len: int, seed: int = 0) -> None:
        if len(stream) < seq_len + 1:
            raise DataError(
                f"the token stream ({len(stream)} tokens) is shorter than "
                f"seq_len + 1 = {seq_len + 1}"
            )
        self.stream, self.batch_size, self.seq_len = stream, batch_size, seq_len
        self.generator = torch.Generator().manual_seed(seed)

    def sample(self) -> LMBatch:
        starts = torch.randint(
            0, len(self.stream) - self.seq_len, (self.batch_size,), generator=self.generator
        )
        return _windows(self.stream, starts, self.seq_len)

    def __iter__(self) -> Iterator[LMBatch]:
        while True:
            yield self.sample()

    def state_dict(self) -> dict[str, Tensor]:
        """The generator state, to resume the exact batch sequence."""
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, Tensor]) -> None:
        self.generator.set_state(state["generator"])


def eval_batches(
    stream: TokenStream, seq_len: int, batch_size: int, max_windows: int | None = None
) -> Iterator[LMBatch]:
    """Consecutive non-overlapping windows of `seq_len` predictions, from the stream's start."""
    count = (len(stream) - 1) // seq_len
    if max_windows is not None:
        count = min(count, max_windows)
    if count == 0:
        raise DataError(
            f"the token stream ({len(stream)} tokens) is shorter than seq_len + 1 = {seq_len + 1}"
        )
    starts = torch.arange(count) * seq_len
    for lo in range(0, count, batch_size):
        yield _windows(stream, starts[lo : lo + batch_size], seq_len)
