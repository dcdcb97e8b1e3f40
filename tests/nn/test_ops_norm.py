"""BatchNorm (every flag, train and inference, other axes, 2-D input) and LRN."""

from __future__ import annotations

import numpy as np
import pytest

from framestream.errors import OperatorParamError, ShapeInferenceError
from framestream.nn.ops import Runtime, lookup
from tests.nn.opcheck import Case, check_case
from tests.nn.test_ops_activation import run_float32

MOVING_MEAN = np.array([0.3, -0.2, 0.1])
MOVING_VAR = np.array([0.5, 1.5, 2.0])


def bn_ref(axis=1, eps=1e-3, fix_gamma=True, train=True, use_global_stats=False, output_mean_var=False):
    def reference(data, gamma, beta, moving_mean, moving_var):
        ax = axis % data.ndim
        reduce = tuple(i for i in range(data.ndim) if i != ax)
        shape = [1] * data.ndim
        shape[ax] = -1
        if train and not use_global_stats:
            mean, var = data.mean(axis=reduce), data.var(axis=reduce)
        else:
            mean, var = moving_mean, moving_var
        g = np.ones_like(gamma) if fix_gamma else gamma
        out = (data - mean.reshape(shape)) / np.sqrt(var.reshape(shape) + eps) * g.reshape(shape)
        out = out + beta.reshape(shape)
        return [out, mean, 1 / np.sqrt(var + eps)] if output_mean_var else [out]  # var is inverse std

    return reference


def bn_case(id, data=(3, 3, 2, 2), params=None, train=True, grad_inputs=None):
    params = params or {}
    channels = data[params.get("axis", 1)]
    moving = {"moving_mean": MOVING_MEAN[:channels], "moving_var": MOVING_VAR[:channels]}
    inputs = {"data": data, "gamma": (channels,), "beta": (channels,), **moving}
    parsed = lookup("BatchNorm")(node="t", **params).p  # the reference takes typed values
    kw = {k: getattr(parsed, k) for k in ("axis", "eps", "fix_gamma", "use_global_stats", "output_mean_var")}
    return Case("BatchNorm", params, inputs, id=id, is_train=train, rtol=1e-5, atol=1e-6,
                reference=bn_ref(train=train, **kw), grad_inputs=grad_inputs)


def lrn_ref(nsize, alpha=1e-4, beta=0.75, knorm=2.0):
    def reference(data):
        channels = data.shape[1]
        low = -(nsize // 2)
        norm = np.zeros_like(data)
        for c in range(channels):
            lo, hi = max(c + low, 0), min(c + low + nsize, channels)
            norm[:, c] = (data[:, lo:hi] ** 2).sum(axis=1)
        return [data * (knorm + alpha / nsize * norm) ** -beta]

    return reference


CASES = [
    bn_case("bn-train-fixgamma"),
    bn_case("bn-train", params={"fix_gamma": False}),
    bn_case("bn-train-eps", params={"fix_gamma": "False", "eps": "1e-5"}),
    bn_case("bn-inference-fixgamma", train=False),
    bn_case("bn-inference", params={"fix_gamma": False}, train=False),
    bn_case("bn-global-stats", params={"fix_gamma": False, "use_global_stats": True}),
    bn_case("bn-global-stats-fixgamma", params={"use_global_stats": True}),
    bn_case("bn-global-stats-inference", params={"fix_gamma": False, "use_global_stats": True}, train=False),
    bn_case("bn-axis-last", data=(2, 2, 3), params={"fix_gamma": False, "axis": -1}),
    bn_case("bn-axis2", data=(2, 2, 3), params={"fix_gamma": False, "axis": 2}),
    bn_case("bn-axis-last-inference", data=(2, 2, 3), params={"fix_gamma": False, "axis": -1}, train=False),
    bn_case("bn-2d", data=(5, 3), params={"fix_gamma": False}),
    bn_case("bn-2d-inference", data=(5, 3), params={"fix_gamma": False}, train=False),
    # MXNet ignores the heads of the mean and var outputs, which depend on data in training:
    # only gamma and beta are checked by differences here (data: test_batchnorm_mean_var_heads...).
    bn_case("bn-mean-var", params={"fix_gamma": False, "output_mean_var": True},
            grad_inputs=["gamma", "beta"]),
    bn_case("bn-mean-var-inference", params={"output_mean_var": True}, train=False),
    Case("LRN", {"nsize": 3}, {"data": (2, 5, 2, 2)}, id="lrn3", reference=lrn_ref(3)),
    Case("LRN", {"nsize": 5, "alpha": 0.5, "beta": 0.6, "knorm": 1.0}, {"data": (2, 6, 2, 1)}, id="lrn5",
         reference=lrn_ref(5, alpha=0.5, beta=0.6, knorm=1.0), rtol=1e-5),
    Case("LRN", {"nsize": "3", "alpha": "0.8"}, {"data": (1, 4, 1, 2)}, id="lrn3-strong",
         reference=lrn_ref(3, alpha=0.8), rtol=1e-5),
    Case("LRN", {"nsize": 4, "alpha": 0.8}, {"data": (1, 5, 1, 2)}, id="lrn4-even",
         reference=lrn_ref(4, alpha=0.8), rtol=1e-5),
]


@pytest.mark.parametrize("case", CASES, ids=str)
def test_norm_op(case):
    check_case(case)


@pytest.mark.parametrize("case", CASES, ids=str)
def test_norm_float32(case):
    run_float32(case)


def bn_arrays(dtype=np.float64):
    rng = np.random.default_rng(5)
    data = rng.standard_normal((4, 3, 2, 2)).astype(dtype) * 2 + 1
    return [data, np.full(3, 2.0, dtype), np.zeros(3, dtype), MOVING_MEAN.astype(dtype),
            MOVING_VAR.astype(dtype)]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_batchnorm_updates_moving_stats_in_place_in_backward(dtype):
    """As MXNet 1.x's CPU kernel: forward leaves them, backward applies the momentum rule."""
    op = lookup("BatchNorm")(node="bn", momentum=0.8)
    arrays = bn_arrays(dtype)
    moving_mean, moving_var = arrays[3], arrays[4]
    data = arrays[0].astype(np.float64)
    outs, state = op.forward(np, arrays, True, Runtime(np))
    np.testing.assert_array_equal(moving_mean, MOVING_MEAN.astype(dtype))
    np.testing.assert_array_equal(moving_var, MOVING_VAR.astype(dtype))
    op.backward(np, [np.ones_like(outs[0])], arrays, outs, state, Runtime(np))
    assert arrays[3] is moving_mean and arrays[4] is moving_var and moving_mean.dtype == dtype
    batch_mean, batch_var = data.mean(axis=(0, 2, 3)), data.var(axis=(0, 2, 3))  # biased
    np.testing.assert_allclose(moving_mean, 0.8 * MOVING_MEAN + 0.2 * batch_mean, rtol=1e-5)
    np.testing.assert_allclose(moving_var, 0.8 * MOVING_VAR + 0.2 * batch_var, rtol=1e-5)


@pytest.mark.parametrize("params, train", [({}, False), ({"use_global_stats": True}, True)])
def test_batchnorm_keeps_moving_stats_without_batch_stats(params, train):
    op = lookup("BatchNorm")(node="bn", **params)
    arrays = bn_arrays()
    outs, state = op.forward(np, arrays, train, Runtime(np))
    op.backward(np, [np.ones_like(outs[0])], arrays, outs, state, Runtime(np))
    np.testing.assert_array_equal(arrays[3], MOVING_MEAN)
    np.testing.assert_array_equal(arrays[4], MOVING_VAR)


def test_batchnorm_mean_var_heads_do_not_reach_data():
    plain = lookup("BatchNorm")(node="bn", fix_gamma=False)
    with_stats = lookup("BatchNorm")(node="bn", fix_gamma=False, output_mean_var=True)
    arrays = bn_arrays()
    head = np.random.default_rng(1).standard_normal(arrays[0].shape)
    outs, state = plain.forward(np, [a.copy() for a in arrays], True, Runtime(np))
    want = plain.backward(np, [head], [a.copy() for a in arrays], outs, state, Runtime(np))
    outs, state = with_stats.forward(np, [a.copy() for a in arrays], True, Runtime(np))
    heads = [head, np.full(3, 5.0), np.full(3, -7.0)]
    got = with_stats.backward(np, heads, [a.copy() for a in arrays], outs, state, Runtime(np))
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-12)


def test_batchnorm_fix_gamma_ignores_gamma_and_zeroes_its_gradient():
    op = lookup("BatchNorm")(node="bn")
    arrays = bn_arrays()  # gamma = 2 everywhere
    for train in (True, False):
        (out,), state = op.forward(np, [a.copy() for a in arrays], train, Runtime(np))
        want = bn_ref(train=train)(*arrays)[0]
        np.testing.assert_allclose(out, want, rtol=1e-10)
        grads = op.backward(np, [np.ones_like(out)], arrays, [out], state, Runtime(np))
        np.testing.assert_array_equal(grads[1], np.zeros(3))


def test_batchnorm_declarations():
    op = lookup("BatchNorm")(node="bn", output_mean_var=True)
    assert op.arguments() == ["data", "gamma", "beta"]
    assert op.aux_states() == ["moving_mean", "moving_var"]
    assert op.outputs() == ["output", "mean", "var"]
    shapes, outs = op.infer_shape([(4, 3, 5, 5), None, None, None, None])
    assert shapes == [(4, 3, 5, 5), (3,), (3,), (3,), (3,)] and outs == [(4, 3, 5, 5), (3,), (3,)]
    assert lookup("BatchNorm")(node="bn").outputs() == ["output"]


def test_batchnorm_errors():
    op = lookup("BatchNorm")(node="bn1")
    with pytest.raises(ShapeInferenceError, match=r"BatchNorm 'bn1'.*gamma should have shape \(3,?\), got \(4,?\)"):
        op.infer_shape([(2, 3, 4, 4), (4,), None, None, None])
    with pytest.raises(ShapeInferenceError, match="BatchNorm 'bn2'.*axis 4 is out of range for data with 4 axes"):
        lookup("BatchNorm")(node="bn2", axis=4).infer_shape([(2, 3, 4, 4), None, None, None, None])
    with pytest.raises(OperatorParamError, match="BatchNorm 'bn3': eps must be non-negative"):
        lookup("BatchNorm")(node="bn3", eps=-1)
    with pytest.raises(OperatorParamError, match="fix_gamma='maybe'"):
        lookup("BatchNorm")(node="bn4", fix_gamma="maybe")


def test_lrn_errors():
    with pytest.raises(OperatorParamError, match="LRN 'norm1': required parameter 'nsize'"):
        lookup("LRN")(node="norm1")
    with pytest.raises(OperatorParamError, match="nsize must be at least 1"):
        lookup("LRN")(node="norm1", nsize=0)
    with pytest.raises(ShapeInferenceError, match=r"LRN 'norm1'.*needs 4-D data \(N, C, H, W\), got 2 axes"):
        lookup("LRN")(node="norm1", nsize=3).infer_shape([(2, 3)])
