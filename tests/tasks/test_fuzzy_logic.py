"""Fuzzy-logic task: Zadeh semantics, the paper's split counts, sequence layout and R^2."""

from itertools import product

import pytest
import torch

from repdyn.bench.errors import UserError
from repdyn.tasks.fuzzy_logic import FuzzyLogic, FuzzyLogicConfig, evaluate_formula, r_squared


def boolean_dnf(literals: list[list[int]], x: tuple[int, ...]) -> int:
    return int(any(all(xi == lit for xi, lit in zip(x, term, strict=True)) for term in literals))


def test_binary_inputs_give_the_boolean_formula():
    torch.manual_seed(0)
    for _ in range(20):
        latents = torch.randint(0, 2, (3, 4))
        for x in product([0, 1], repeat=4):
            got = evaluate_formula(latents, torch.tensor(x, dtype=torch.float32))
            assert got.item() == boolean_dnf(latents.tolist(), x)


def test_zadeh_semantics_on_a_hand_example():
    latents = torch.tensor([[1, 0], [0, 0]])  # (x1 AND NOT x2) OR (NOT x1 AND NOT x2)
    x = torch.tensor([0.7, 0.2])
    assert evaluate_formula(latents, x).item() == pytest.approx(max(min(0.7, 0.8), min(0.3, 0.8)))


def test_split_counts_of_logic_4var_2term():
    task = FuzzyLogic()  # hypernetwork.md §4: 16 conjunctions, 4 held out, 33 / 33 / 6
    assert len(task.conjunctions) == 16 and task.num_ood_conjunctions == 4
    sizes = {k: len(v) for k, v in task.terms.items()}
    assert sizes == {"train": 33, "test": 33, "ood": 6}
    train, test = (set(map(tuple, task.terms[k].tolist())) for k in ("train", "test"))
    assert not train & test
    assert all(i < 12 for pair in train | test for i in pair)
    assert all(i >= 12 for pair in task.terms["ood"].tolist() for i in pair)


@pytest.mark.parametrize("split", ["train", "test", "ood"])
def test_sequences_hold_x_y_pairs_with_the_last_y_hidden(split):
    task = FuzzyLogic()
    batch = task.sample(64, split, torch.Generator().manual_seed(1))
    assert batch.inputs.shape == (64, 16, 5)
    x, y = batch.inputs[..., :4], batch.inputs[..., 4]
    expected = evaluate_formula(batch.latents[:, None], x)
    torch.testing.assert_close(y[:, :-1], expected[:, :-1])
    assert (y[:, -1] == 0).all()
    torch.testing.assert_close(batch.targets, expected[:, -1])
    torch.testing.assert_close(batch.base_mse, expected.var(dim=1, unbiased=False))
    allowed = {tuple(map(tuple, task.conjunctions[t].tolist())) for t in task.terms[split]}
    assert all(tuple(map(tuple, lat)) in allowed for lat in batch.latents.tolist())


def test_r_squared_is_one_for_perfect_and_zero_for_mean_on_average():
    batch = FuzzyLogic().sample(8, "train", torch.Generator().manual_seed(2))
    assert r_squared(batch.targets, batch).item() == pytest.approx(1.0)
    worse = batch.targets + batch.base_mse.sqrt()  # one standard deviation off everywhere
    assert r_squared(worse, batch).item() == pytest.approx(0.0, abs=1e-5)


def test_deterministic_given_the_generator():
    task = FuzzyLogic(FuzzyLogicConfig(num_variables=3))
    a = task.sample(4, "ood", torch.Generator().manual_seed(9))
    b = task.sample(4, "ood", torch.Generator().manual_seed(9))
    assert torch.equal(a.inputs, b.inputs)


def test_unknown_split_is_a_user_error():
    with pytest.raises(UserError, match="accepted"):
        FuzzyLogic().sample(1, "valid", torch.Generator())
