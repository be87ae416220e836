"""CLRS losses and scores on toy arrays: hand-derived values (dm-clrs fixtures in test_nar_oracle)."""

import math

import numpy as np
import pytest
import torch

from repdyn.models.nar import predictions
from repdyn.models.nar_losses import hint_loss, nar_loss, output_loss
from repdyn.tasks.clrs import DataPoint, evaluate, evaluate_hints
from repdyn.tasks.clrs.specs import Type

LN2, LN43 = math.log(2), math.log(4 / 3)
T = torch.tensor


def test_scalar_output_loss_is_the_mean_squared_error():
    assert output_loss(Type.SCALAR, T([1.0, 2.0]), T([0.0, 4.0])).item() == pytest.approx(2.5)


def test_mask_output_loss_ignores_masked_entries():
    loss = output_loss(Type.MASK, T([0.0, 0.0, 10.0]), T([1.0, 0.0, -1.0]))
    assert loss.item() == pytest.approx(LN2)


@pytest.mark.parametrize("type_", [Type.MASK_ONE, Type.CATEGORICAL])
def test_mask_one_and_categorical_output_losses_divide_by_the_positives(type_):
    pred = T([[0.0, math.log(3)], [5.0, -5.0], [0.0, 0.0]])
    truth = T([[0.0, 1.0], [-1.0, -1.0], [1.0, 0.0]])  # the masked row counts for nothing
    assert output_loss(type_, pred, truth).item() == pytest.approx((LN43 + LN2) / 2)


def test_pointer_output_loss_is_the_mean_cross_entropy_over_nodes():
    logits = T([[[0.0, math.log(3)], [0.0, 0.0]]])
    assert output_loss(Type.POINTER, logits, T([[1, 0]])).item() == pytest.approx((LN43 + LN2) / 2)


def test_permutation_output_loss_reads_the_log_sinkhorn_prediction():
    log_pred = torch.log(T([[[0.75, 0.25], [0.25, 0.75]]]))
    truth = T([[[0.0, 1.0], [1.0, 0.0]]])
    expected = -(math.log(0.25) + math.log(0.25)) / 2
    assert output_loss(Type.PERMUTATION_POINTER, log_pred, truth).item() == pytest.approx(expected)


def test_hint_losses_count_step_i_only_for_instances_longer_than_i_plus_one():
    lengths = T([3, 2])
    truth = T([[9.0, 9.0], [1.0, 2.0], [3.0, 4.0]])  # [T=3, B=2]; step 0 is never predicted
    preds = [T([0.0, 0.0]), T([0.0, -96.0])]  # step 1 of instance 1 is past its end
    assert hint_loss(Type.SCALAR, preds, truth, lengths).item() == pytest.approx((1 + 4 + 9) / 3)
    mask_truth = T([[0.0, 0.0], [1.0, -1.0], [0.0, 1.0]])
    loss = hint_loss(Type.MASK, [T([0.0, 7.0]), T([0.0, 7.0])], mask_truth, lengths)
    assert loss.item() == pytest.approx(LN2)  # (b0 s1, b0 s2) count; b1 s1 masked, b1 s2 done
    ptr_truth = T([[0, 0], [1, 0], [0, 1]])  # [T, B] over n = 2 nodes
    logits = torch.log(T([[[0.25, 0.75], [0.5, 0.5]], [[0.5, 0.5], [0.1, 0.9]]]))
    loss = hint_loss(Type.POINTER, list(logits), ptr_truth, lengths)
    assert loss.item() == pytest.approx((-math.log(0.75) + LN2 + LN2) / 3)


def test_categorical_hint_loss_skips_rows_without_a_positive_and_mask_one_keeps_them():
    lengths = T([2])
    truth = T([[[1.0, 0.0], [1.0, 0.0]], [[0.0, 1.0], [0.0, 0.0]]])  # [T=2, B=1, n=2, C=2]
    pred = [torch.log(T([[[0.25, 0.75], [0.5, 0.5]]]))]
    cat = hint_loss(Type.CATEGORICAL, pred, truth, lengths)
    assert cat.item() == pytest.approx(-math.log(0.75))  # second row has no positive
    one = hint_loss(Type.MASK_ONE, pred, truth, lengths)
    assert one.item() == pytest.approx(-math.log(0.75) / 2)  # dm-clrs: mask of ones


def test_nar_loss_sums_every_output_and_hint_unweighted():
    spec = {"o": ("output", "node", Type.SCALAR), "h": ("hint", "node", Type.SCALAR)}
    lengths = T([2])
    total, parts = nar_loss(spec, {"o": T([[1.0]])}, [{"h": T([[2.0]])}], {"o": T([[0.0]])},
                            {"h": T([[[0.0]], [[0.0]]])}, lengths)
    assert parts["o"].item() == 1.0 and parts["h"].item() == 4.0 and total.item() == 5.0


def test_scores_from_logits_equal_hand_derived_clrs_scores():
    spec = {"pi": ("output", "node", Type.POINTER), "m": ("output", "node", Type.MASK),
            "c": ("output", "node", Type.MASK_ONE)}
    logits = {"pi": T([[[5.0, 0.0, 0.0], [0.0, 0.0, 5.0], [0.0, 5.0, 0.0]]]),
              "m": T([[1.0, 2.0, -1.0, -3.0]]), "c": T([[0.1, 0.9, 0.0]])}
    preds = predictions(spec, logits)
    assert preds["pi"].data.tolist() == [[0, 2, 1]]
    truths = [DataPoint("pi", "node", Type.POINTER, np.array([[0.0, 2.0, 2.0]])),
              DataPoint("m", "node", Type.MASK, np.array([[1.0, 0.0, 1.0, -1.0]])),
              DataPoint("c", "node", Type.MASK_ONE, np.array([[0.0, 1.0, 0.0]]))]
    scores = evaluate(truths, preds)
    # pointer 2/3 right; mask tp=1 fp=1 fn=1 -> F1 0.5; mask_one argmax right
    assert scores["pi"] == pytest.approx(2 / 3) and scores["m"] == pytest.approx(0.5)
    assert scores["c"] == 1.0 and scores["score"] == pytest.approx((2 / 3 + 0.5 + 1) / 3)


def test_hint_scores_from_logits_weight_steps_by_live_instances():
    spec = {"h": ("hint", "node", Type.POINTER)}
    truth = DataPoint("h", "node", Type.POINTER,
                      np.array([[[0, 0]] * 2, [[1, 1], [0, 0]], [[1, 0], [0, 0]]], dtype=float))
    lengths = np.array([3, 2])
    right = T([[[0.0, 9.0], [0.0, 9.0]], [[9.0, 0.0], [9.0, 0.0]]])  # step 1: b0 right, b1 right
    half = T([[[0.0, 9.0], [0.0, 9.0]], [[0.0, 9.0], [0.0, 9.0]]])  # step 2: b0 half right
    preds = [predictions(spec, {"h": right}), predictions(spec, {"h": half})]
    scores = evaluate_hints([truth], lengths, preds)
    assert scores["h_along_time"].tolist() == [1.0, 0.5]
    assert scores["h"] == pytest.approx((1.0 * 2 + 0.5 * 1) / 3)
