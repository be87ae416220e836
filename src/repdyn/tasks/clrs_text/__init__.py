"""CLRS-Text (Markeeva et al. 2024): CLRS-30 instances as text, exact to dm-clrs 2.0.3.

Public API::

    format_example(algorithm, sample, use_hints=False) -> (question, answer)
        # = clrs_utils.format_clrs_example on a repdyn.tasks.clrs Trajectory / 1-instance Batch
    clrs_text_generator(algos_and_lengths, num_samples=None, use_hints=False, seed=0,
                        num_decimals=3) -> Iterator[ClrsTextExample]
        # = huggingface_generators.clrs_generator, example for example
    clrs_text_dataset(algorithm, lengths, num_samples, seed=0, use_hints=False) -> list
    paper_split(algorithm, "train" | "val", use_hints=False, ...) -> Iterator[ClrsTextExample]
        # = generate_clrs_text.py with TRAIN_/VAL_LENGTHS, _SAMPLES, _SEEDS
    CharTokenizer().encode / decode / encode_example / batch     # fixed 99-id vocabulary
    parse_answer(algorithm, text, use_hints=False) -> dict[str, np.ndarray] | None
    score_answers(algorithm, predictions, targets, use_hints=False) -> Scores(shape, parse, clrs)

See `format.py` for the format itself, `metrics.py` for TransNAR's three scores.
"""

from repdyn.tasks.clrs_text.datasets import (
                                             NUM_DECIMALS,
                                             TRAIN_LENGTHS,
                                             TRAIN_SAMPLES,
                                             TRAIN_SEEDS,
                                             VAL_LENGTHS,
                                             VAL_SAMPLES,
                                             VAL_SEEDS,
                                             ClrsTextExample,
                                             clrs_text_dataset,
                                             clrs_text_generator,
                                             paper_split,
)
from repdyn.tasks.clrs_text.format import answer_names, format_example, trace_fields
from repdyn.tasks.clrs_text.metrics import Scores, parse_answer, score_answer, score_answers
from repdyn.tasks.clrs_text.tokenizer import CharTokenizer

__all__ = [
                                             "NUM_DECIMALS",
                                             "TRAIN_LENGTHS",
                                             "TRAIN_SAMPLES",
                                             "TRAIN_SEEDS",
                                             "VAL_LENGTHS",
                                             "VAL_SAMPLES",
                                             "VAL_SEEDS",
                                             "CharTokenizer",
                                             "ClrsTextExample",
                                             "Scores",
                                             "answer_names",
                                             "clrs_text_dataset",
                                             "clrs_text_generator",
                                             "format_example",
                                             "paper_split",
                                             "parse_answer",
                                             "score_answer",
                                             "score_answers",
                                             "trace_fields",
]
