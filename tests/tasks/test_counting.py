"""Counting and copying sequences: layout and targets."""

import pytest
import torch

from repdyn.bench.errors import UserError
from repdyn.models.transformer import Transformer, TransformerConfig
from repdyn.tasks.counting import COMMA, ONE, PLUS, QUERY, VOCAB, ZERO, counting_batch, mixed_length_batch


def test_count_ones_of_bernoulli_strings():
    batch = counting_batch("count_ones", 50, 40, p_one=0.7, generator=torch.Generator().manual_seed(0))
    assert batch.tokens.shape == (50, 41) and (batch.tokens[:, -1] == QUERY).all()
    assert torch.equal(batch.targets, (batch.tokens[:, :-1] == ONE).sum(1))
    assert 0 < batch.targets.float().mean() / 40 < 1


def test_all_ones_counts_are_the_length():
    batch = counting_batch("count_ones", 3, 17)
    assert (batch.targets == 17).all() and (batch.tokens[:, :-1] == ONE).all()


def test_sum_of_ones_interleaves_plus_signs():
    batch = counting_batch("sum_ones", 2, 4)
    assert batch.tokens[0].tolist() == [ONE, PLUS, ONE, PLUS, ONE, PLUS, ONE, QUERY]
    assert (batch.targets == 4).all()


@pytest.mark.parametrize("task, slot", [("copy_last", -2), ("copy_first", 0)])
def test_copy_targets_are_the_copied_element(task, slot):
    batch = counting_batch(task, 64, 10, generator=torch.Generator().manual_seed(1))
    assert torch.equal(batch.targets, batch.tokens[:, slot])
    assert set(batch.targets.tolist()) == {ZERO, ONE}
    others = [i for i in range(10) if i != slot % 11]
    assert (batch.tokens[:, others] == ONE).all()  # p_one = 1: the paper's 1...10 strings


def test_separators_every_k_digits_leave_counts_unchanged():
    batch = counting_batch("count_ones", 1, 8, separator_every=3)
    assert batch.tokens[0].tolist() == [ONE] * 3 + [COMMA] + [ONE] * 3 + [COMMA] + [ONE] * 2 + [QUERY]
    assert batch.targets.item() == 8


def test_same_generator_seed_same_batch():
    a = counting_batch("copy_last", 8, 12, p_one=0.5, generator=torch.Generator().manual_seed(4))
    b = counting_batch("copy_last", 8, 12, p_one=0.5, generator=torch.Generator().manual_seed(4))
    assert torch.equal(a.tokens, b.tokens) and torch.equal(a.targets, b.targets)


@pytest.mark.parametrize("kwargs", [dict(task="count"), dict(length=0), dict(p_one=1.5), dict(separator_every=0)])
def test_bad_arguments_raise_user_errors(kwargs):
    args = dict(task="count_ones", batch_size=2, length=5) | kwargs
    with pytest.raises(UserError):
        counting_batch(**args)


def test_mixed_length_batch_left_pads_and_keeps_targets():
    batch = mixed_length_batch("count_ones", [3, 7, 1], generator=torch.Generator().manual_seed(0), p_one=0.5)
    assert batch.tokens.shape == (3, 8) and (batch.tokens[:, -1] == QUERY).all()
    assert batch.mask.sum(1).tolist() == [4, 8, 2] and not batch.mask[0, :4].any() and batch.mask[0, 4:].all()
    assert torch.equal(batch.targets, ((batch.tokens == ONE) & batch.mask).sum(1))


@pytest.mark.parametrize("positional", ["none", "rope"])
def test_a_masked_model_reads_each_padded_row_as_it_reads_it_alone(positional):
    torch.manual_seed(0)
    model = Transformer(
        TransformerConfig(
            vocab_size=len(VOCAB), output_dim=2, d_model=16, num_heads=2, mlp_dim=32, positional=positional
        )
    ).eval()
    batch = mixed_length_batch("copy_last", [2, 9, 5], generator=torch.Generator().manual_seed(1), p_one=0.5)
    together = model(batch.tokens, key_padding_mask=batch.mask)[:, -1]
    for i, row in enumerate(batch.tokens):
        alone = model(row[batch.mask[i]][None])[0, -1]
        torch.testing.assert_close(together[i], alone, atol=1e-5, rtol=1e-5)
