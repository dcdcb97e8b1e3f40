"""SoftmaxOutput, the regression outputs, MakeLoss and BlockGrad: backward vs the implied loss."""

from __future__ import annotations

import numpy as np
import pytest

from framestream.errors import OperatorParamError, ShapeInferenceError
from framestream.nn.ops import Runtime, lookup
from tests.nn.opcheck import Case, check_case, make_inputs
from tests.nn.test_ops_activation import np_sigmoid, np_softmax, run_float32

LABELS = np.array([0.0, 3.0, 1.0, 4.0])
LABELS_IGNORED = np.array([2.0, -1.0, 4.0, -1.0])


def softmax_view(data, multi_output=False, preserve_shape=False):
    """data as (rows, K, S) with the class axis in the middle, like the op."""
    if multi_output:
        return data.reshape(data.shape[0], data.shape[1], -1)
    if preserve_shape:
        return data.reshape(-1, data.shape[-1], 1)
    return data.reshape(data.shape[0], -1, 1)


def softmax_ref(multi_output=False, preserve_shape=False):
    def reference(data, label):
        return [np_softmax(softmax_view(data, multi_output, preserve_shape), 1).reshape(data.shape)]

    return reference


def ce_loss(grad_scale=1.0, normalization="null", use_ignore=False, ignore_label=-1.0,
            multi_output=False, preserve_shape=False, smooth_alpha=0.0):
    """The cross-entropy whose gradient SoftmaxOutput's backward is (MXNet 1.x's scaling rules)."""

    def loss(data, label):
        view = softmax_view(data, multi_output, preserve_shape)
        rows, classes, spatial = view.shape
        top = view.max(axis=1, keepdims=True)
        lse = (top + np.log(np.exp(view - top).sum(axis=1, keepdims=True)))[:, 0]
        every = label.reshape(-1).astype(int)
        # Without multi_output MXNet uses the first `rows` labels (all of them for (N, K) data).
        lab = every.reshape(rows, 1, spatial) if multi_output else every[:rows].reshape(rows, 1, 1)
        counted = lab if multi_output else every
        target = (np.arange(classes).reshape(1, -1, 1) == lab).astype(float)
        if smooth_alpha:
            target = target * (1 - smooth_alpha) + (1 - target) * smooth_alpha / (classes - 1)
        # lse - <target, z>: -sum(target * log p) for a proper target, and still the loss whose
        # gradient is softmax - target when a label matches no class (MXNet's behaviour then).
        per_position = lse - (target * view).sum(axis=1)
        if use_ignore:
            per_position = per_position * (lab[:, 0] != int(ignore_label))
        if normalization == "valid":
            divisor = max(int((counted != int(ignore_label)).sum()), 1)
        else:
            divisor = (rows if multi_output else every.size) if normalization == "batch" else 1
            divisor *= spatial if multi_output else 1
        return float(per_position.sum()) * grad_scale / divisor

    return loss


def sm_case(id, params, data=(4, 5), label=LABELS, **loss_kw):
    flags = {k: params[k] for k in ("multi_output", "preserve_shape") if k in params}
    return Case("SoftmaxOutput", params, {"data": data, "label": label}, id=id, grad_inputs=["data"],
                reference=softmax_ref(**flags), loss=ce_loss(**params, **loss_kw), rtol=1e-5)


def regression_loss(kind, grad_scale=1.0):
    def loss(data, label):
        label = label.reshape(data.shape)
        num_output = data.size // data.shape[0]
        if kind == "linear":
            value = 0.5 * ((data - label) ** 2).sum()
        elif kind == "mae":
            value = np.abs(data - label).sum()
        else:
            p = np_sigmoid(data)
            value = -(label * np.log(p) + (1 - label) * np.log(1 - p)).sum()
        return float(value) * grad_scale / num_output

    return loss


def makeloss_loss(grad_scale=1.0, normalization="null", valid_thresh=0.0):
    def loss(data):
        if normalization == "batch":
            divisor = data.shape[0]
        elif normalization == "valid":
            divisor = max(int((data > valid_thresh).sum()), 1)
        else:
            divisor = 1
        return float(data.sum()) * grad_scale / divisor

    return loss


RNG = np.random.default_rng(11)
PROB_LABEL = np_softmax(RNG.standard_normal((3, 4)), 1)
MULTI_LABEL = np.array([[0.0, 2.0, 1.0, 1.0], [2.0, 0.0, -1.0, 1.0]])

CASES = [
    sm_case("sm-null", {}),
    sm_case("sm-batch", {"normalization": "batch"}),
    sm_case("sm-valid", {"normalization": "valid"}, label=LABELS_IGNORED),
    sm_case("sm-valid-use-ignore", {"normalization": "valid", "use_ignore": True}, label=LABELS_IGNORED),
    sm_case("sm-use-ignore-label2", {"use_ignore": True, "ignore_label": 2}, label=LABELS_IGNORED),
    sm_case("sm-grad-scale", {"grad_scale": 0.5, "normalization": "batch"}),
    sm_case("sm-smooth", {"smooth_alpha": 0.1}),
    # MXNet's rule for 3-D data without multi_output: label (N, C), softmax over (N, C*L), the
    # first N labels used, all N*C counted for normalisation (tests/nn/data so_3d_label_2d).
    sm_case("sm-flatten-rest-batch", {"normalization": "batch"}, data=(2, 3, 2),
            label=np.array([[4.0, 1.0, 0.0], [2.0, 3.0, 5.0]])),
    sm_case("sm-flatten-rest-valid", {"normalization": "valid", "use_ignore": True}, data=(2, 3, 2),
            label=np.array([[4.0, -1.0, -1.0], [2.0, 3.0, 5.0]])),
    sm_case("sm-multi", {"multi_output": True}, data=(2, 3, 2, 2), label=MULTI_LABEL),
    sm_case("sm-multi-batch-lshape2", {"multi_output": True, "normalization": "batch"}, data=(2, 3, 2, 2),
            label=MULTI_LABEL.reshape(2, 2, 2)),
    sm_case("sm-multi-valid-ignore", {"multi_output": True, "normalization": "valid", "use_ignore": True},
            data=(2, 3, 2, 2), label=MULTI_LABEL.reshape(2, 1, 2, 2)),
    sm_case("sm-preserve", {"preserve_shape": True, "normalization": "batch"}, data=(2, 3, 4),
            label=np.array([[0.0, 3.0, 1.0], [2.0, 2.0, 0.0]])),
    Case("SoftmaxOutput", {"grad_scale": 2.0}, {"data": (3, 4), "label": PROB_LABEL}, id="sm-prob-label",
         grad_inputs=["data"], reference=softmax_ref(),
         loss=lambda data, label: -2.0 * float((label * np.log(np_softmax(data, 1))).sum())),
    Case("Softmax", {"normalization": "batch"}, {"data": (4, 5), "label": LABELS}, id="softmax-alias",
         grad_inputs=["data"], reference=softmax_ref(), loss=ce_loss(normalization="batch")),
    Case("LinearRegressionOutput", {}, {"data": (4, 3), "label": (4, 3)}, id="linear",
         reference=lambda data, label: [data], loss=regression_loss("linear"), grad_inputs=["data"]),
    Case("LinearRegressionOutput", {"grad_scale": 2.0}, {"data": (4, 1), "label": (4,)}, id="linear-1d-label",
         reference=lambda data, label: [data], loss=regression_loss("linear", 2.0), grad_inputs=["data"]),
    Case("LogisticRegressionOutput", {"grad_scale": "0.5"},
         {"data": (4, 3), "label": RNG.uniform(size=(4, 3))}, id="logistic",
         reference=lambda data, label: [np_sigmoid(data)], loss=regression_loss("logistic", 0.5),
         grad_inputs=["data"]),
    Case("MAERegressionOutput", {"grad_scale": 3.0}, {"data": (4, 2, 2), "label": (4, 4)}, id="mae",
         reference=lambda data, label: [data], loss=regression_loss("mae", 3.0), grad_inputs=["data"]),
    Case("MakeLoss", {}, {"data": (3, 4)}, id="makeloss", reference=lambda data: [data], loss=makeloss_loss()),
    Case("MakeLoss", {"grad_scale": 2.0, "normalization": "batch"}, {"data": (3, 4)}, id="makeloss-batch",
         reference=lambda data: [data], loss=makeloss_loss(2.0, "batch")),
    Case("MakeLoss", {"normalization": "valid", "valid_thresh": 0.2}, {"data": (3, 4)}, id="makeloss-valid",
         reference=lambda data: [data], loss=makeloss_loss(normalization="valid", valid_thresh=0.2)),
    Case("BlockGrad", {}, {"data": (3, 4)}, id="blockgrad", reference=lambda data: [data], grad_inputs=[]),
    Case("stop_gradient", {}, {"data": (3, 4)}, id="stop_gradient", reference=lambda data: [data],
         grad_inputs=[]),
]


@pytest.mark.parametrize("case", CASES, ids=str)
def test_loss_op(case):
    check_case(case)


@pytest.mark.parametrize("case", CASES, ids=str)
def test_loss_float32(case):
    run_float32(case)


@pytest.mark.parametrize("case", [c for c in CASES if c.op not in ("BlockGrad", "stop_gradient")], ids=str)
def test_loss_layers_ignore_head_gradient_and_zero_label_gradient(case):
    op = lookup(case.op)(node="t", **case.params)
    assert op.is_loss
    arrays = make_inputs(case)
    outs, state = op.forward(np, arrays, True, Runtime(np))
    ones = op.backward(np, [np.ones_like(outs[0])], arrays, outs, state, Runtime(np))
    noise = op.backward(np, [np.full_like(outs[0], 7.0)], arrays, outs, state, Runtime(np))
    np.testing.assert_array_equal(ones[0], noise[0])
    for grad in ones[1:]:
        np.testing.assert_array_equal(grad, 0)


def test_blockgrad_zero_gradient():
    op = lookup("BlockGrad")(node="bg")
    assert not op.is_loss
    x = np.arange(6.0).reshape(2, 3)
    (out,), state = op.forward(np, [x], True, Runtime(np))
    np.testing.assert_array_equal(out, x)
    (dx,) = op.backward(np, [np.ones_like(x)], [x], [out], state, Runtime(np))
    np.testing.assert_array_equal(dx, np.zeros_like(x))


def test_softmax_output_out_grad_multiplies_head_gradient():
    op = lookup("SoftmaxOutput")(node="sm", out_grad=True, normalization="batch")
    data, label = np.random.default_rng(2).standard_normal((4, 5)), LABELS
    (out,), state = op.forward(np, [data, label], True, Runtime(np))
    head = np.random.default_rng(3).standard_normal(out.shape)
    grad = op.backward(np, [head], [data, label], [out], state, Runtime(np))[0]
    onehot = np.eye(5)[LABELS.astype(int)]
    np.testing.assert_allclose(grad, (out - onehot) / 4 * head, rtol=1e-12)


def test_softmax_output_label_shapes():
    op = lookup("SoftmaxOutput")(node="sm")
    assert op.infer_shape([(4, 10), None]) == ([(4, 10), (4,)], [(4, 10)])
    assert op.infer_shape([(4, 10), (4, 10)])[0][1] == (4, 10)  # probability targets
    multi = lookup("SoftmaxOutput")(node="sm", multi_output=True)
    assert multi.infer_shape([(2, 3, 4, 5), None])[0][1] == (2, 20)
    for label in [(2, 4, 5), (2, 1, 4, 5)]:
        assert multi.infer_shape([(2, 3, 4, 5), label])[0][1] == label
    preserve = lookup("SoftmaxOutput")(node="sm", preserve_shape=True)
    assert preserve.infer_shape([(2, 3, 4), None])[0][1] == (2, 3)
    assert op.infer_shape([(2, 3, 4, 5), None])[0][1] == (2, 3, 4)  # MXNet: data.shape[:-1]
    with pytest.raises(ShapeInferenceError, match=r"label should have shape \(2, 3, 2\)"):
        op.infer_shape([(2, 3, 2, 2), (2,)])  # MXNet refuses this too


def test_softmax_output_label_shape_error_names_layer():
    op = lookup("SoftmaxOutput")(node="softmax1")
    with pytest.raises(ShapeInferenceError,
                       match=r"SoftmaxOutput 'softmax1' with inputs data=\(4, 10\), label=\(5,?\): "
                             r"label should have shape \(4,\)"):
        op.infer_shape([(4, 10), (5,)])
    with pytest.raises(ShapeInferenceError, match="at least 2 axes"):
        op.infer_shape([(4,), None])
    with pytest.raises(OperatorParamError, match="normalization='mean'"):
        lookup("SoftmaxOutput")(node="softmax1", normalization="mean")


def test_regression_label_shapes():
    op = lookup("LinearRegressionOutput")(node="lro")
    assert op.infer_shape([(4, 1), None])[0][1] == (4,)
    assert op.infer_shape([(4, 3), None])[0][1] == (4, 3)
    assert op.infer_shape([(4, 3), (4, 3, 1)])[0][1] == (4, 3, 1)
    with pytest.raises(ShapeInferenceError, match=r"LinearRegressionOutput 'lro'.*label should have shape \(4, 3\)"):
        op.infer_shape([(4, 3), (3, 4)])
