"""Evaluation equals dm-clrs's `evaluate` / `evaluate_hints`, on fixtures and by hand."""

from __future__ import annotations

import numpy as np
import pytest

from repdyn.tasks.clrs import DataPoint, evaluate, evaluate_hints

from .conftest import group, read_npz


def _points():
    data = read_npz("evaluation")
    names = [k.split("/")[1] for k in data if k.startswith("truth/")]
    meta = {k: (str(data[f"loc/{k}"]), str(data[f"type/{k}"])) for k in names}
    return data, names, meta


def test_evaluate_matches_dm_clrs():
    data, names, meta = _points()
    outputs = [DataPoint(k, *meta[k], data[f"truth/{k}"]) for k in names]
    preds = {k: DataPoint(k, *meta[k], data[f"pred/{k}"]) for k in names}
    result = evaluate(outputs, preds)
    for k in names:
        np.testing.assert_allclose(result[k], data[f"result/{k}"], rtol=0, atol=1e-12)
    np.testing.assert_allclose(result["score"], data["result/score"], rtol=0, atol=1e-12)


def test_evaluate_hints_matches_dm_clrs():
    data, names, meta = _points()
    hints = [DataPoint(k, *meta[k], data[f"hint_truth/{k}"]) for k in names]
    steps = len({k.split("/")[1] for k in data if k.startswith("hint_pred/")})
    preds = [{k: DataPoint(k, *meta[k], data[f"hint_pred/{i}/{k}"]) for k in names}
             for i in range(steps)]
    result = evaluate_hints(hints, data["hint_lengths"], preds)
    expected = group(data, "hint_result")
    assert sorted(result) == sorted(expected)
    for k, v in expected.items():
        np.testing.assert_allclose(result[k], v, rtol=0, atol=1e-12)


def test_permutation_pointer_is_fused_like_dm_clrs():
    data = group(read_npz("evaluation"), "perm")
    outputs = [DataPoint("pred", "node", "permutation_pointer", data["truth"]),
               DataPoint("pred_mask", "node", "mask_one", data["mask"])]
    preds = {"pred": DataPoint("pred", "node", "permutation_pointer", data["pred"]),
             "pred_mask": DataPoint("pred_mask", "node", "mask_one", data["pred_mask"])}
    np.testing.assert_allclose(evaluate(outputs, preds)["pred"], data["result"], atol=1e-12)


def test_hand_derived_values():
    truth = DataPoint("m", "node", "mask", np.array([[1.0, 0.0, 1.0, -1.0]]))
    pred = DataPoint("m", "node", "mask", np.array([[0.9, 0.8, 0.1, 0.9]]))
    # tp = 1 (index 0), fp = 1 (index 1), fn = 1 (index 2); index 3 is masked -> F1 = 0.5
    ptr = DataPoint("p", "node", "pointer", np.array([[0, 1, 2, 3]]))
    ptr_pred = DataPoint("p", "node", "pointer", np.array([[0, 1, 0, 3]]))
    out = evaluate([truth, ptr], {"m": pred, "p": ptr_pred})
    assert out["m"] == pytest.approx(0.5)
    assert out["p"] == pytest.approx(0.75)
    assert out["score"] == pytest.approx(0.625)
    # no positives anywhere and none predicted: precision = recall = 1 -> F1 = 1
    empty = DataPoint("m", "node", "mask", np.zeros((1, 3)))
    assert evaluate([empty], {"m": DataPoint("m", "node", "mask", np.zeros((1, 3)))})["m"] == 1
    # hints: step 1 of two instances, only the first still running at step 2
    h = DataPoint("p", "node", "pointer", np.array([[[0, 0]] * 2, [[1, 1], [0, 1]],
                                                   [[1, 0], [0, 0]]]))
    hp = [{"p": DataPoint("p", "node", "pointer", np.array([[1, 1], [0, 0]]))},
          {"p": DataPoint("p", "node", "pointer", np.array([[1, 1], [0, 0]]))}]
    res = evaluate_hints([h], np.array([3, 2]), hp)
    # step 1: (1 + 0.5) / 2 = 0.75 over 2 live; step 2: instance 0 only, 0.5 -> (1.5 + 0.5) / 3
    np.testing.assert_allclose(res["p_along_time"], [0.75, 0.5])
    assert res["p"] == pytest.approx((0.75 * 2 + 0.5 * 1) / 3)


def test_mismatched_prediction_is_refused():
    truth = DataPoint("p", "node", "pointer", np.zeros((1, 3)))
    with pytest.raises(ValueError, match="does not match"):
        evaluate([truth], {"p": DataPoint("p", "edge", "pointer", np.zeros((1, 3)))})
