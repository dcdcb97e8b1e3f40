"""Activation, LeakyReLU, relu/sigmoid/tanh, softmax, log_softmax, SoftmaxActivation, Dropout."""

from __future__ import annotations

import math

import numpy as np
import pytest

from framestream.errors import OperatorParamError, ShapeInferenceError
from framestream.nn.ops import Runtime, lookup
from tests.nn.opcheck import Case, check_case, make_inputs


def np_sigmoid(x):
    return 1 / (1 + np.exp(-x))


def np_softmax(x, axis):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


np_erf = np.vectorize(math.erf)

ACTIVATIONS = {
    "relu": lambda x: np.maximum(x, 0),
    "sigmoid": np_sigmoid,
    "tanh": np.tanh,
    "softrelu": lambda x: np.log1p(np.exp(x)),
    "softsign": lambda x: x / (1 + np.abs(x)),
    "log_sigmoid": lambda x: np.log(np_sigmoid(x)),
    "mish": lambda x: x * np.tanh(np.log1p(np.exp(x))),
}

SELU_ALPHA, SELU_LAMBDA = 1.6732632423543772848170429916717, 1.0507009873554804934193349852946


def prelu_ref(data, gamma):
    g = gamma.reshape((-1,) + (1,) * (data.ndim - 2))
    return [np.where(data > 0, data, g * data)]


def uniform(shape, seed=0):
    """The draws the op gets from the harness's Runtime (reseeded with the case seed)."""
    return Runtime(np, seed=seed).uniform(shape, np.float64)


def rrelu_train_ref(data):
    slopes = 0.125 + (0.334 - 0.125) * uniform(data.shape)
    return [np.where(data > 0, data, data * slopes), slopes]


def dropout_ref(data, p, mask_shape=None):
    keep = uniform(mask_shape or data.shape) < 1 - p
    return [data * keep / (1 - p)]


CASES = [
    *[Case("Activation", {"act_type": t}, {"data": (3, 4)}, id=f"act-{t}",
           reference=lambda data, f=f: [f(data)]) for t, f in ACTIVATIONS.items()],
    *[Case(t, {}, {"data": (2, 3, 2)}, id=f"unary-{t}",
           reference=lambda data, f=ACTIVATIONS[t]: [f(data)]) for t in ("relu", "sigmoid", "tanh")],
    Case("Activation", {"act_type": "softrelu"}, {"data": np.array([[-800.0, -3.0, 0.5, 800.0]])},
         id="act-softrelu-extremes", reference=lambda data: [np.array([[0.0, np.log1p(np.exp(-3.0)),
                                                                      np.log1p(np.exp(0.5)), 800.0]])]),
    Case("LeakyReLU", {}, {"data": (3, 4)}, id="leaky-default",
         reference=lambda data: [np.where(data > 0, data, 0.25 * data)]),
    Case("LeakyReLU", {"act_type": "leaky", "slope": "0.1"}, {"data": (2, 3, 2)}, id="leaky-0.1",
         reference=lambda data: [np.where(data > 0, data, 0.1 * data)]),
    Case("LeakyReLU", {"act_type": "elu", "slope": 0.7}, {"data": (3, 4)}, id="elu",
         reference=lambda data: [np.where(data > 0, data, 0.7 * np.expm1(data))]),
    Case("LeakyReLU", {"act_type": "selu"}, {"data": (3, 4)}, id="selu",
         reference=lambda data: [SELU_LAMBDA * np.where(data > 0, data, SELU_ALPHA * np.expm1(data))]),
    Case("LeakyReLU", {"act_type": "gelu"}, {"data": np.linspace(-6, 6, 14).reshape(2, 7)}, id="gelu",
         reference=lambda data: [0.5 * data * (1 + np_erf(data / np.sqrt(2)))]),
    Case("LeakyReLU", {"act_type": "prelu"}, {"data": (2, 3, 2, 2), "gamma": (3,)}, id="prelu-4d",
         reference=prelu_ref),
    Case("LeakyReLU", {"act_type": "prelu"}, {"data": (4, 3), "gamma": (3,)}, id="prelu-2d",
         reference=prelu_ref),
    Case("LeakyReLU", {"act_type": "prelu"}, {"data": (2, 3, 2), "gamma": (1,)}, id="prelu-shared",
         reference=prelu_ref),
    Case("LeakyReLU", {"act_type": "rrelu"}, {"data": (3, 4)}, id="rrelu-train", reference=rrelu_train_ref),
    Case("LeakyReLU", {"act_type": "rrelu", "lower_bound": 0.1, "upper_bound": 0.3}, {"data": (3, 4)},
         id="rrelu-inference", is_train=False,
         reference=lambda data: [np.where(data > 0, data, 0.2 * data), np.zeros_like(data)]),
    Case("softmax", {}, {"data": (3, 4)}, id="softmax", reference=lambda data: [np_softmax(data, -1)]),
    Case("softmax", {"axis": 1, "temperature": 2.0}, {"data": (2, 3, 2)}, id="softmax-axis1-t2",
         reference=lambda data: [np_softmax(data / 2, 1)]),
    Case("softmax", {}, {"data": np.array([[1000.0, 0.0, -1000.0]])}, id="softmax-stable",
         grad_inputs=[], reference=lambda data: [np.array([[1.0, 0.0, 0.0]])]),
    Case("log_softmax", {}, {"data": (3, 4)}, id="log_softmax",
         reference=lambda data: [np.log(np_softmax(data, -1))]),
    Case("log_softmax", {"axis": "0", "temperature": "0.5"}, {"data": (3, 2, 2)}, id="log_softmax-axis0",
         reference=lambda data: [np.log(np_softmax(data / 0.5, 0))]),
    Case("SoftmaxActivation", {}, {"data": (3, 4)}, id="softmaxact-instance",
         reference=lambda data: [np_softmax(data, 1)]),
    Case("SoftmaxActivation", {"mode": "instance"}, {"data": (2, 3, 2)}, id="softmaxact-instance-3d",
         reference=lambda data: [np_softmax(data, -1)]),  # MXNet's FlatTo2D: the last axis
    Case("SoftmaxActivation", {"mode": "channel"}, {"data": (2, 3, 2)}, id="softmaxact-channel",
         reference=lambda data: [np_softmax(data, 1)]),
    Case("Dropout", {}, {"data": (4, 5)}, id="dropout-train", reference=lambda data: dropout_ref(data, 0.5)),
    Case("Dropout", {"p": 0.3, "axes": "(1,)"}, {"data": (3, 4, 2)}, id="dropout-axes",
         reference=lambda data: dropout_ref(data, 0.3, (3, 1, 2))),
    Case("Dropout", {"p": 0.3}, {"data": (3, 4)}, id="dropout-inference", is_train=False,
         reference=lambda data: [data]),
    Case("Dropout", {"p": 0.4, "mode": "always"}, {"data": (3, 4)}, id="dropout-always", is_train=False,
         reference=lambda data: dropout_ref(data, 0.4)),
    Case("Dropout", {"p": 0}, {"data": (3, 4)}, id="dropout-p0", reference=lambda data: [data]),
    Case("Dropout", {"p": 1}, {"data": (3, 4)}, id="dropout-p1", reference=lambda data: [0 * data]),
]


@pytest.mark.parametrize("case", CASES, ids=str)
def test_activation_op(case):
    check_case(case)


def run_float32(case: Case) -> None:
    """Forward and backward in float32 must stay float32 (no float64 temporaries leak out)."""
    op = lookup(case.op)(node="t", **case.params)
    arrays = [a.astype(np.float32) for a in make_inputs(case)]
    outs, state = op.forward(np, arrays, case.is_train, Runtime(np, seed=0))
    assert [o.dtype for o in outs] == [np.float32] * len(outs), f"{case}: forward dtypes"
    grads = op.backward(np, [np.ones_like(o) for o in outs], arrays, outs, state, Runtime(np, seed=0))
    assert all(g is None or g.dtype == np.float32 for g in grads), f"{case}: gradient dtypes"


@pytest.mark.parametrize("case", CASES, ids=str)
def test_activation_float32(case):
    run_float32(case)


def test_dropout_statistics_and_mask_reuse():
    op = lookup("Dropout")(node="drop", p=0.25)
    x = np.ones((200, 100), dtype=np.float32)
    (out,), mask = op.forward(np, [x], True, Runtime(np, seed=3))
    kept = out != 0
    assert abs(kept.mean() - 0.75) < 0.02
    np.testing.assert_allclose(out[kept], 1 / 0.75, rtol=1e-6)
    (dx,) = op.backward(np, [np.full_like(x, 2.0)], [x], [out], mask, Runtime(np, seed=99))
    np.testing.assert_array_equal(dx, 2 * out)  # same mask as forward, whatever the RNG does later
    assert op.outputs() == ["output"]


def test_gelu_matches_math_erf_in_float32_and_tails():
    x = np.array([-40.0, -8.5, -3.0, -1.0, -0.2, 0.0, 0.2, 1.0, 3.0, 8.5, 40.0])
    op = lookup("LeakyReLU")(node="g", act_type="gelu")
    (out,), _ = op.forward(np, [x], False, Runtime(np))
    np.testing.assert_allclose(out, 0.5 * x * (1 + np_erf(x / np.sqrt(2))), rtol=1e-14, atol=1e-300)
    (out32,), _ = op.forward(np, [x.astype(np.float32)], False, Runtime(np))
    assert out32.dtype == np.float32
    np.testing.assert_allclose(out32, out, rtol=1e-6, atol=1e-7)


def test_activation_bad_params():
    with pytest.raises(OperatorParamError, match="required parameter 'act_type'"):
        lookup("Activation")(node="act1")
    with pytest.raises(OperatorParamError, match=r"Activation 'act1': parameter act_type='swish'"):
        lookup("Activation")(node="act1", act_type="swish")
    with pytest.raises(OperatorParamError, match="LeakyReLU 'lr': rrelu needs lower_bound <= upper_bound"):
        lookup("LeakyReLU")(node="lr", act_type="rrelu", lower_bound=0.5, upper_bound=0.2)
    with pytest.raises(OperatorParamError, match=r"Dropout 'drop': p must be in \[0, 1\], got 1.5"):
        lookup("Dropout")(node="drop", p=1.5)
    with pytest.raises(OperatorParamError, match="use_length=True is not supported"):
        lookup("softmax")(node="sm", use_length=True)


def test_prelu_gamma_shape_mismatch_names_layer():
    op = lookup("LeakyReLU")(node="prelu1", act_type="prelu")
    assert op.arguments() == ["data", "gamma"]
    shapes, outs = op.infer_shape([(2, 3, 4), None])
    assert shapes[1] == (3,) and outs == [(2, 3, 4)]
    with pytest.raises(ShapeInferenceError,
                       match=r"LeakyReLU 'prelu1' with inputs data=\(2, 3, 4\), gamma=\(4,?\): "
                             r"gamma should have shape \(3,?\), got \(4,?\)"):
        op.infer_shape([(2, 3, 4), (4,)])
    with pytest.raises(ShapeInferenceError, match="prelu needs data with a channel axis"):
        op.infer_shape([(5,), None])


def test_rrelu_lists_mask_output():
    op = lookup("LeakyReLU")(node="r", act_type="rrelu")
    assert op.outputs() == ["output", "mask"]
    assert op.infer_shape([(2, 3)]) == ([(2, 3)], [(2, 3), (2, 3)])
    assert lookup("LeakyReLU")(node="r").outputs() == ["output"]


def test_softmax_activation_channel_needs_3_axes():
    with pytest.raises(ShapeInferenceError, match=r"SoftmaxActivation 'sa'.*at least 3 axes"):
        lookup("SoftmaxActivation")(node="sa", mode="channel").infer_shape([(2, 3)])


def test_axis_out_of_range():
    with pytest.raises(ShapeInferenceError, match=r"softmax 'sm'.*axis 2 is out of range for data with 2 axes"):
        lookup("softmax")(node="sm", axis=2).infer_shape([(3, 4)])
    with pytest.raises(ShapeInferenceError, match=r"Dropout 'd'.*axis 3 is out of range"):
        lookup("Dropout")(node="d", axes=(3,)).infer_shape([(3, 4)])
