"""CLRS-Text strings equal dm-clrs 2.0.3's, from stored fixtures (tests/fixtures/clrs_text)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from repdyn.bench.errors import UserError
from repdyn.tasks.clrs import CLRS_30_ALGS, Sampler
from repdyn.tasks.clrs_text import (
    TRAIN_LENGTHS,
    TRAIN_SAMPLES,
    TRAIN_SEEDS,
    VAL_LENGTHS,
    VAL_SAMPLES,
    VAL_SEEDS,
    CharTokenizer,
    clrs_text_dataset,
    clrs_text_generator,
    format_example,
    paper_split,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "clrs_text" / "clrs_text.json"
CASES = json.loads(FIXTURES.read_text())["cases"]


def _case_id(case: dict) -> str:
    if case["kind"] == "paper_split":
        return f"paper_split-{case['algorithm']}-{case['split']}-hints{case['use_hints']}"
    names = "+".join(case["algos_and_lengths"])
    return f"{names}-seed{case['seed']}-hints{case['use_hints']}-dec{case['num_decimals']}"


def _ours(case: dict) -> list[list]:
    if case["kind"] == "paper_split":
        examples = paper_split(case["algorithm"], case["split"], case["use_hints"],
                               num_samples=case["num_samples"], seeds=case["seeds"],
                               lengths=case["lengths"], num_decimals=case["num_decimals"])
    else:
        examples = clrs_text_generator(case["algos_and_lengths"], case["num_samples"],
                                       case["use_hints"], case["seed"], case["num_decimals"])
    return [[e.algorithm, e.length, e.question, e.answer] for e in examples]


def test_fixtures_cover_every_algorithm_with_and_without_traces():
    covered = {(name, case["use_hints"]) for case in CASES if case["kind"] == "generator"
               for name in case["algos_and_lengths"]}
    assert covered == {(name, h) for name in CLRS_30_ALGS for h in (False, True)}


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_strings_equal_dm_clrs(case):
    ref = case["examples"]
    ours = _ours(case)
    assert len(ours) == len(ref)
    for i, (mine, theirs) in enumerate(zip(ours, ref, strict=True)):
        assert mine == theirs, f"example {i} differs:\nours   {mine!r}\ndm-clrs {theirs!r}"


def test_examples_from_the_fact_sheet():
    """clrs.md §9 quotes these strings from `clrs_generator` with seed 0."""
    bfs = clrs_text_dataset("bfs", [5], 1, seed=0)[0]
    assert bfs.text == ("bfs:\ns: 0, A: [[1 1 1 0 0], [1 0 1 0 0], [1 1 1 1 0], [0 0 1 1 1], "
                        "[0 0 0 1 0]]\npi:\n[0 0 0 2 3]\n\n")
    traced = clrs_text_dataset("bfs", [5], 1, seed=0, use_hints=True)[0]
    assert traced.question.endswith(", initial_trace: [0 1 2 3 4]\ntrace | pi:\n")
    assert traced.answer == "[0 0 0 3 4], [0 0 0 2 4] | [0 0 0 2 3]\n\n"
    sort = clrs_text_dataset("insertion_sort", [5], 1, seed=0, use_hints=True)[0]
    assert sort.text == (
        "insertion_sort:\nkey: [0.548 0.715 0.602 0.544 0.423], initial_trace: "
        "[0.548 0.715 0.602 0.544 0.423]\ntrace | pred:\n[0.548 0.715 0.602 0.544 0.423], "
        "[0.548 0.602 0.715 0.544 0.423], [0.544 0.548 0.602 0.715 0.423] | "
        "[0.423 0.544 0.548 0.602 0.715]\n\n")


def test_format_accepts_a_one_instance_batch_and_rejects_others():
    batch = Sampler("dfs", -1, 6, seed=4, track_max_steps=False).next(3)
    one = batch.select(np.array([1]))
    assert format_example("dfs", one, True) == format_example("dfs", batch.trajectory(1), True)
    with pytest.raises(UserError, match="one instance"):
        format_example("dfs", batch)
    with pytest.raises(UserError, match="given for"):
        format_example("bfs", one)
    with pytest.raises(UserError, match="unknown CLRS algorithm"):
        format_example("bogosort", one)


def test_paper_settings_equal_generate_clrs_text():
    """The split settings equal generate_clrs_text.py's defaults (stored from its source)."""
    ref = json.loads(FIXTURES.read_text())["settings"]
    assert {k: list(v) for k, v in TRAIN_LENGTHS.items()} == \
        ref["_DEFAULT_TRAIN_ALGOS_AND_LENGTHS"]
    assert {k: list(v) for k, v in VAL_LENGTHS.items()} == ref["_DEFAULT_VAL_ALGOS_AND_LENGTHS"]
    assert (TRAIN_SAMPLES, list(TRAIN_SEEDS)) == (ref["_DEFAULT_TRAIN_NUMBER_OF_SAMPLES"],
                                                  ref["_DEFAULT_TRAIN_SEEDS"])
    assert (VAL_SAMPLES, list(VAL_SEEDS)) == (ref["_DEFAULT_VAL_NUMBER_OF_SAMPLES"],
                                              ref["_DEFAULT_VAL_SEEDS"])
    assert set(TRAIN_LENGTHS) == set(CLRS_30_ALGS)


def test_generator_is_deterministic_and_counts():
    a = list(clrs_text_generator({"bfs": [4, 5], "minimum": [6]}, 7, seed=9))
    b = list(clrs_text_generator({"bfs": [4, 5], "minimum": [6]}, 7, seed=9))
    assert a == b and len(a) == 7
    assert {(e.algorithm, e.length) for e in a} <= {("bfs", 4), ("bfs", 5), ("minimum", 6)}
    infinite = clrs_text_generator({"bfs": [4]}, None, seed=9)
    assert [next(infinite) for _ in range(300)][:7] == list(clrs_text_generator({"bfs": [4]}, 7,
                                                                                seed=9))
    with pytest.raises(UserError):
        list(clrs_text_generator({}, 3))
    with pytest.raises(UserError):
        list(paper_split("bfs", "test"))


def test_tokenizer_round_trip_and_answer_mask():
    tok = CharTokenizer()
    assert tok.vocab_size == 3 + 1 + 95 and len(set(tok.vocab)) == tok.vocab_size
    examples = clrs_text_dataset("floyd_warshall", [4, 5], 3, seed=1, use_hints=True)
    for e in examples:
        ids = tok.encode(e.text, bos=True, eos=True)
        assert ids[0] == tok.bos_id and ids[-1] == tok.eos_id
        assert tok.pad_id not in ids
        assert tok.decode(ids) == e.text
    batch = tok.batch([(e.question, e.answer) for e in examples])
    tokens, mask = batch["tokens"], batch["answer_mask"]
    for row, e in enumerate(examples):
        n = len(e.text) + 2
        assert tok.decode(tokens[row]) == e.text
        assert tokens[row, n:].eq(tok.pad_id).all() and tokens[row, n - 1] == tok.eos_id
        assert tok.decode(tokens[row][mask[row]]) == e.answer  # the answer and its EOS
        assert mask[row].sum() == len(e.answer) + 1
    with pytest.raises(UserError, match="vocabulary"):
        tok.encode("é")
