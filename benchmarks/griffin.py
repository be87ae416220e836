"""Griffin decoding and training speed beside the official recurrentgemma PyTorch model.

Both models get the same weights (a `griffin-small`-sized config: width 128, 3 blocks R R A,
window 64, byte vocabulary). Decoding: a 64-token prompt, then greedy tokens one at a time,
ours through its cache and the official `Sampler`. Training: forward + backward + AdamW on
16 x 256 and 4 x 1024 tokens, ours (blocked scan) and the official model (Python-loop scan).

    python benchmarks/griffin.py [--threads N] [--tokens N] [--steps N]
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from repdyn.bench.timing import best_time
from repdyn.methods.lm import lm_loss, make_optimizer
from repdyn.models.griffin import Griffin, griffin_config
from repdyn.models.recurrentgemma_reference import import_official_torch
from repdyn.tasks.text import LMBatch

PRESET = "griffin-small"
PROMPT_LEN = 64
TRAIN_SHAPES = ((16, 256), (4, 1024))  # (batch, length): the study's shape, and a longer one


class _ByteVocab:
    """The slice of a SentencePiece processor the official Sampler uses, for a byte vocabulary."""

    def EncodeAsIds(self, text: str) -> list[int]:
        return list(text.encode("utf-8"))

    def DecodeIds(self, ids: list[int]) -> str:
        return bytes(ids).decode("utf-8", errors="replace")

    def bos_id(self) -> int:
        return 10

    def eos_id(self) -> int:
        return 0

    def pad_id(self) -> int:
        return 0



def official_model(official, config):
    common = official.common
    kinds = {
        "recurrent": common.TemporalBlockType.RECURRENT,
        "attention": common.TemporalBlockType.ATTENTION,
    }
    official_config = common.GriffinConfig(
        vocab_size=config.vocab_size,
        width=config.width,
        mlp_expanded_width=config.mlp_width,
        num_heads=config.num_heads,
        block_types=tuple(kinds[k] for k in config.block_types),
        embeddings_scale_by_sqrt_dim=config.embeddings_scale_by_sqrt_dim,
        attention_window_size=config.attention_window,
        logits_soft_cap=config.logits_soft_cap,
        lru_width=config.lru_width,
    )
    return official.Griffin(official_config, gradient_checkpointing=False)


def our_decode(model: Griffin, prompt: torch.Tensor, new_tokens: int) -> Callable[[], None]:
    @torch.no_grad()
    def run() -> None:
        logits, cache = model(prompt)
        for _ in range(new_tokens):
            token = logits[:, -1].argmax(-1, keepdim=True)
            logits, cache = model(token, cache=cache)

    return run


def train_closure(model: torch.nn.Module, batch: LMBatch, loss_fn: Callable) -> Callable[[], None]:
    optimizer = make_optimizer(model, lr=1e-3)

    def run() -> None:
        optimizer.zero_grad(set_to_none=True)
        loss_fn(model, batch).backward()
        optimizer.step()

    return run


def official_loss(model: torch.nn.Module, batch: LMBatch) -> torch.Tensor:
    logits, _ = model(batch.inputs, batch.segment_pos, return_cache=False)
    return torch.nn.functional.cross_entropy(logits.flatten(0, 1), batch.targets.flatten())


def compare_training(ours: Griffin, reference, batch_size: int, seq_len: int, steps: int) -> None:
    """Print training tokens/s of ours (and of the official model, when given) at one shape."""
    gen = torch.Generator().manual_seed(1)
    tokens = torch.randint(0, ours.config.vocab_size, (batch_size, seq_len + 1), generator=gen)
    batch = LMBatch(tokens[:, :-1], tokens[:, 1:], torch.arange(seq_len).repeat(batch_size, 1))
    ours.train()
    ours_s = best_time(train_closure(ours, batch, lm_loss), repeats=steps)
    rate = batch_size * seq_len / ours_s
    name = f"griffin train tokens/s (B={batch_size}, T={seq_len})"
    mine = f"ours {rate:.0f} tok/s ({ours_s * 1e3:.0f} ms/step)"
    if reference is None:
        print(f"{name}: reference not installed [{mine}]")
        return
    reference.train()
    ref_s = best_time(train_closure(reference, batch, official_loss), repeats=1)
    print(
        f"{name}: {ref_s / ours_s:.1f}x vs recurrentgemma model "
        f"[{mine}, ref {batch_size * seq_len / ref_s:.0f} tok/s]"
    )


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--tokens", type=int, default=256, help="decoded tokens per timing")
    parser.add_argument("--steps", type=int, default=3, help="timed training steps (best of)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    config = griffin_config(PRESET)
    ours = Griffin(config).eval()
    official = import_official_torch()
    reference = None
    if official is not None:
        reference = official_model(official, config).eval()
        reference.load_state_dict(ours.state_dict())
    prompt = torch.randint(0, config.vocab_size, (1, PROMPT_LEN))
    pattern = "".join(kind[0].upper() for kind in config.block_types)
    print(
        f"{PRESET}: width {config.width}, blocks {pattern}, window {config.attention_window}, "
        f"{sum(p.numel() for p in ours.parameters()) / 1e6:.2f}M params, "
        f"{args.threads} thread(s)"
    )

    decode = f"griffin decode tokens/s (batch 1, prompt {PROMPT_LEN})"
    ours_s = best_time(our_decode(ours, prompt, args.tokens), repeats=3)
    ours_rate = args.tokens / ours_s
    if reference is not None:
        sampler = official.Sampler(reference, _ByteVocab(), greedy_sampling=True)
        text = _ByteVocab().DecodeIds(prompt[0, 1:].tolist())
        ref_s = best_time(
            lambda: sampler([text], args.tokens, end_sampling_at_eos_token=False), repeats=3
        )
        print(
            f"{decode}: {ref_s / ours_s:.1f}x vs recurrentgemma "
            f"Sampler [ours {ours_rate:.0f} tok/s, ref {args.tokens / ref_s:.0f} tok/s]"
        )
    else:
        print(f"{decode}: reference not installed [ours {ours_rate:.0f} tok/s]")

    for batch_size, seq_len in TRAIN_SHAPES:
        compare_training(ours, reference, batch_size, seq_len, args.steps)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
