"""A character-level tokenizer for CLRS-Text with a fixed vocabulary.

CLRS-Text is written in a handful of symbols (digits, `.-[](),:|`, space, newline, the
algorithm and probe names), so one token per character keeps sequences readable and makes
every number's digits visible to the model. The vocabulary is fixed - pad, BOS, EOS, newline
and the 95 printable ASCII characters - so ids never depend on the data seen.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from repdyn.bench.errors import UserError

PAD, BOS, EOS = 0, 1, 2
_SPECIALS = ("<pad>", "<bos>", "<eos>")
_CHARS = "\n" + "".join(chr(c) for c in range(32, 127))


class CharTokenizer:
    """Characters <-> ids over a fixed vocabulary; pad = 0, BOS = 1, EOS = 2."""

    pad_id, bos_id, eos_id = PAD, BOS, EOS
    vocab: tuple[str, ...] = _SPECIALS + tuple(_CHARS)

    def __init__(self) -> None:
        self._ids = {c: i for i, c in enumerate(self.vocab) if i >= len(_SPECIALS)}

    @property
    def vocab_size(self) -> int:
        """Number of ids (specials included)."""
        return len(self.vocab)

    def encode(self, text: str, bos: bool = False, eos: bool = False) -> list[int]:
        """Ids of `text`, optionally framed by BOS / EOS."""
        try:
            ids = [self._ids[c] for c in text]
        except KeyError as e:
            raise UserError(f"character {e.args[0]!r} is not in the CLRS-Text vocabulary "
                            "(newline and printable ASCII)") from None
        return ([BOS] if bos else []) + ids + ([EOS] if eos else [])

    def decode(self, ids: Sequence[int] | torch.Tensor) -> str:
        """Text of `ids`: stops at the first EOS, skips pad and BOS."""
        out = []
        for i in (ids.tolist() if isinstance(ids, torch.Tensor) else ids):
            if i == EOS:
                break
            if i >= len(_SPECIALS):
                out.append(self.vocab[i])
        return "".join(out)

    def encode_example(self, question: str, answer: str) -> tuple[list[int], list[bool]]:
        """BOS + question + answer + EOS, and which positions are answer tokens (EOS included).

        The mask marks the tokens a model must predict: train next-token prediction on
        `ids[1:]` where `mask[1:]` holds.
        """
        head = self.encode(question, bos=True)
        tail = self.encode(answer, eos=True)
        return head + tail, [False] * len(head) + [True] * len(tail)

    def batch(self, pairs: Sequence[tuple[str, str]]) -> dict[str, torch.Tensor]:
        """Right-padded `tokens` [B, T] (int64) and `answer_mask` [B, T] (bool) for (q, a) pairs."""
        encoded = [self.encode_example(q, a) for q, a in pairs]
        width = max(len(ids) for ids, _ in encoded)
        tokens = torch.full((len(encoded), width), PAD, dtype=torch.int64)
        mask = torch.zeros((len(encoded), width), dtype=torch.bool)
        for row, (ids, answer) in enumerate(encoded):
            tokens[row, :len(ids)] = torch.tensor(ids)
            mask[row, :len(ids)] = torch.tensor(answer)
        return {"tokens": tokens, "answer_mask": mask}
