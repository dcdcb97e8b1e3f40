"""Metrics against hand-computed values, MXNet's per-batch averaging, create(), errors."""

from __future__ import annotations

import doctest
import math

import numpy as np
import pytest

from framestream import mx
from framestream.errors import ShapeInferenceError
from framestream.nn import metric as metric_module

PROBS = np.array([[0.1, 0.7, 0.2], [0.6, 0.3, 0.1], [0.2, 0.3, 0.5], [0.35, 0.4, 0.25]])
CLASSES = np.array([1, 0, 1, 2])  # argmax hits rows 0 and 1


def nd(x):
    return mx.nd.array(np.asarray(x, dtype=np.float32))


def test_doctests():
    assert doctest.testmod(metric_module).failed == 0


@pytest.mark.parametrize(("metric", "labels", "preds", "expected"), [
    ("acc", [CLASSES], [PROBS], 0.5),
    ("acc", [CLASSES.reshape(4, 1)], [PROBS], 0.5),
    ("acc", [CLASSES], [np.array([1, 0, 0, 2])], 0.75),  # already class ids
    (mx.metric.TopKAccuracy(top_k=2), [CLASSES], [PROBS], 0.75),
    (mx.metric.TopKAccuracy(top_k=5), [CLASSES], [PROBS], 1.0),
    ("ce", [CLASSES], [PROBS], -np.mean(np.log([0.7, 0.6, 0.3, 0.25]))),
    ("mae", [np.array([1.0, 2.0])], [np.array([[1.5], [1.0]])], 0.75),
    ("mse", [np.array([1.0, 2.0])], [np.array([[1.5], [1.0]])], 0.625),
    ("rmse", [np.array([1.0, 2.0])], [np.array([[1.5], [1.0]])], math.sqrt(0.625)),
    ("mse", [np.ones((2, 3))], [np.zeros((2, 3))], 1.0),
], ids=["acc", "acc-column-label", "acc-ids", "top2", "top5", "ce", "mae", "mse", "rmse",
        "mse-2d"])
def test_metric_values(metric, labels, preds, expected):
    m = mx.metric.create(metric)
    m.update([nd(x) for x in labels], [nd(x) for x in preds])
    name, value = m.get()
    assert value == pytest.approx(expected, rel=1e-6)
    assert m.get_name_value() == [(name, value)]


def test_accuracy_counts_samples_regression_averages_batches():
    acc, rmse = mx.metric.Accuracy(), mx.metric.RMSE()
    acc.update([nd([0, 1, 1])], [nd([[1, 0], [0, 1], [0, 1]])])  # 3/3
    acc.update([nd([0])], [nd([[0, 1]])])  # 0/1
    assert acc.get() == ("accuracy", 0.75)
    rmse.update([nd([0, 0, 0, 0])], [nd([1, 1, 1, 1])])  # batch rmse 1
    rmse.update([nd([0])], [nd([3])])  # batch rmse 3
    assert rmse.get()[1] == pytest.approx(2.0)  # (1 + 3) / 2 batches, as MXNet


def test_f1_per_batch_average_and_binary_only():
    f1 = mx.metric.F1()
    preds = [[0.2, 0.8], [0.9, 0.1], [0.3, 0.7], [0.6, 0.4]]  # predicted 1, 0, 1, 0
    f1.update([nd([1, 0, 0, 1])], [nd(preds)])  # tp 1, fp 1, fn 1 -> 0.5
    f1.update([nd([1, 1])], [nd(preds[:2])])  # tp 1, fn 1 -> p 1, r .5 -> 2/3
    assert f1.get()[1] == pytest.approx((0.5 + 2 / 3) / 2)
    with pytest.raises(ValueError, match="binary"):
        f1.update([nd([0, 1, 2])], [nd(PROBS[:3])])


def test_reset_get_nan_and_multi_valued():
    m = mx.metric.MAE()
    assert math.isnan(m.get()[1])
    m.update([nd([1])], [nd([2])])
    m.reset()
    assert math.isnan(m.get()[1])
    multi = mx.metric.EvalMetric("loss", num=2)
    multi.sum_metric, multi.num_inst = [3.0, 1.0], [2, 0]
    names, values = multi.get()
    assert names == ["loss_0", "loss_1"] and values[0] == 1.5 and math.isnan(values[1])


def test_custom_metric_and_np_wrapper():
    def total_error(label, pred):
        return float(np.abs(label - pred).sum()), label.size

    m = mx.metric.CustomMetric(total_error)
    m.update([nd([1.0, 0.0])], [nd([[0.2, 0.5], [0.7, 0.25]])])  # two columns: column 1 kept
    assert m.name == "total_error" and m.get()[1] == pytest.approx((0.5 + 0.25) / 2)
    lam = mx.metric.np(lambda label, pred: 1.0)
    assert lam.name == "custom(<lambda>)"
    named = mx.metric.np(lambda label, pred: 0.25, name="quarter")
    named.update([nd([1])], [nd([1])])
    assert named.get() == ("quarter", 0.25)


def test_user_guide_binary_acc_with_logistic_output():
    """The GraphLab guide's ``mx.metric.np(binary_acc)`` on an (N, 1) regression output."""

    def binary_acc(label, pred):
        return int(label[0]) == int(pred[0] >= 0.5)

    def row_acc(label, pred):
        return float(np.mean(label == (pred >= 0.5)))

    guide, rows = mx.metric.np(binary_acc), mx.metric.create(row_acc)
    for label, prob in [(1, 0.9), (0, 0.7), (1, 0.6), (0, 0.1)]:  # batch_size=1 as in the guide
        guide.update([nd([label])], [nd([[prob]])])
    rows.update([nd([[1], [0], [1], [0]])], [nd([[0.9], [0.7], [0.6], [0.1]])])
    assert guide.get() == ("binary_acc", 0.75)
    assert rows.get()[1] == 0.75  # compared row by row, not broadcast to (4, 4)


def test_composite_and_create():
    comp = mx.metric.create(["acc", mx.metric.TopKAccuracy(top_k=2)])
    assert isinstance(comp, mx.metric.CompositeEvalMetric)
    comp.add("ce")
    comp.update([nd(CLASSES)], [nd(PROBS)])
    names, values = comp.get()
    assert names == ["accuracy", "top_k_accuracy_2", "cross-entropy"]
    assert values[:2] == [0.5, 0.75]
    assert comp.get_metric(1).top_k == 2
    with pytest.raises(IndexError, match="out of range"):
        comp.get_metric(3)
    comp.reset()
    assert all(math.isnan(v) for v in comp.get()[1])
    assert mx.metric.create("Top_K_Accuracy", top_k=3).name == "top_k_accuracy_3"
    same = mx.metric.MSE()
    assert mx.metric.create(same) is same
    with pytest.raises(ValueError, match="one of acc, accuracy"):
        mx.metric.create("auc")


def test_mismatches_name_both_shapes():
    with pytest.raises(ShapeInferenceError, match="number of labels 2 does not match .* 1"):
        mx.metric.Accuracy().update([nd([1]), nd([1])], [nd([[0, 1]])])
    with pytest.raises(ShapeInferenceError, match=r"\(3,\).*\(2,\)"):
        mx.metric.Accuracy().update([nd([1, 0, 1])], [nd([[0, 1], [1, 0]])])
    with pytest.raises(ShapeInferenceError, match=r"\(4, 1\).*\(4, 3\)"):
        mx.metric.MSE().update([nd(CLASSES)], [nd(PROBS)])
    with pytest.raises(ShapeInferenceError, match=r"\(3,\).*\(4, 3\)"):
        mx.metric.CrossEntropy().update([nd([0, 1, 2])], [nd(PROBS)])
    with pytest.raises(ValueError, match=r"class ids in \[0, 3\).*got 0 to 3"):
        mx.metric.CrossEntropy().update([nd([0, 1, 2, 3])], [nd(PROBS)])
    with pytest.raises(ValueError, match="top_k"):
        mx.metric.TopKAccuracy(top_k=0)


def test_accepts_plain_numpy_and_single_arrays():
    m = mx.metric.Accuracy()
    m.update(CLASSES, PROBS)
    assert m.get()[1] == 0.5
