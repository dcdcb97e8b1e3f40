"""Convolution and Deconvolution: shapes, a loop-based NumPy reference, finite differences."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from framestream.errors import OperatorParamError, ShapeInferenceError
from framestream.nn.ops import Runtime, lookup
from tests.nn.opcheck import Case, check_case


def _spans(kernel, stride, dilate):
    return [slice(0, d * (k - 1) + 1, d) for k, d in zip(kernel, dilate)]


def conv_ref(data, weight, bias=None, stride=None, pad=None, dilate=None, groups=1):
    """Loops over output positions (any number of spatial axes), a tensordot per window."""
    d = data.ndim - 2
    stride, pad, dilate = stride or (1,) * d, pad or (0,) * d, dilate or (1,) * d
    f, cg, *kernel = weight.shape
    x = np.pad(data, ((0, 0), (0, 0), *((q, q) for q in pad)))
    out_sizes = [(s + 2 * q - r * (k - 1) - 1) // t + 1
                 for s, q, r, k, t in zip(data.shape[2:], pad, dilate, kernel, stride)]
    out = np.zeros((data.shape[0], f, *out_sizes))
    for o in range(f):
        g = o // (f // groups)
        for pos in itertools.product(*map(range, out_sizes)):
            window = tuple(slice(p * t + sl.start, p * t + sl.stop, sl.step)
                           for p, t, sl in zip(pos, stride, _spans(kernel, stride, dilate)))
            patch = x[(slice(None), slice(g * cg, (g + 1) * cg), *window)]
            out[(slice(None), o, *pos)] = np.tensordot(patch, weight[o], axes=d + 1)
    if bias is not None:
        out += bias.reshape(1, -1, *(1,) * d)
    return [out]


def deconv_ref(data, weight, bias=None, stride=None, pad=None, dilate=None, adj=None,
               groups=1):
    """Scatter every input pixel times the kernel into the output, then crop the padding."""
    d = data.ndim - 2
    stride, pad = stride or (1,) * d, pad or (0,) * d
    dilate, adj = dilate or (1,) * d, adj or (0,) * d
    c_in, fg, *kernel = weight.shape
    cg = c_in // groups
    out_sizes = [t * (s - 1) + r * (k - 1) + 1 - 2 * q + a
                 for s, t, r, k, q, a in zip(data.shape[2:], stride, dilate, kernel, pad, adj)]
    full = np.zeros((data.shape[0], fg * groups, *(o + 2 * q for o, q in zip(out_sizes, pad))))
    for g in range(groups):
        xs, ws = data[:, g * cg:(g + 1) * cg], weight[g * cg:(g + 1) * cg]
        for pos in itertools.product(*map(range, data.shape[2:])):
            for kpos in itertools.product(*map(range, kernel)):
                target = tuple(p * t + i * r for p, t, i, r in zip(pos, stride, kpos, dilate))
                full[(slice(None), slice(g * fg, (g + 1) * fg), *target)] += (
                    xs[(slice(None), slice(None), *pos)] @ ws[(slice(None), slice(None), *kpos)])
    out = full[(slice(None), slice(None), *(slice(q, q + o) for q, o in zip(pad, out_sizes)))]
    if bias is not None:
        out = out + bias.reshape(1, -1, *(1,) * d)
    return [out]


def conv(params, data, ref_kw=None, no_bias=False, **kw):
    """A Convolution case; parameters may be MXNet strings such as "(3, 3)"."""
    parsed = lookup("Convolution")(node="t", **params).p
    f, g = parsed.num_filter, parsed.num_group
    inputs = {"data": data, "weight": (f, data[1] // g, *parsed.kernel)}
    if no_bias:
        params = {**params, "no_bias": True}
    else:
        inputs["bias"] = (f,)
    ref_kw = {"groups": g, **(ref_kw or {})}
    return Case("Convolution", params, inputs,
                reference=lambda **a: conv_ref(**a, **ref_kw), **kw)


def deconv(params, data, ref_kw=None, with_bias=False, **kw):
    f, g = params["num_filter"], params.get("num_group", 1)
    inputs = {"data": data, "weight": (data[1], f // g, *params["kernel"])}
    if with_bias:
        inputs["bias"] = (f,)
        params = {**params, "no_bias": False}
    ref_kw = {"groups": g, **(ref_kw or {})}
    return Case("Deconvolution", params, inputs,
                reference=lambda **a: deconv_ref(**a, **ref_kw), **kw)


CASES = [
    conv({"kernel": (3, 3), "num_filter": 4}, (2, 3, 5, 5), id="conv-3x3"),
    conv({"kernel": (3, 2), "num_filter": 2, "stride": (2, 1), "pad": (1, 0)}, (2, 2, 5, 4),
         {"stride": (2, 1), "pad": (1, 0)}, id="conv-stride-pad-nonsquare"),
    conv({"kernel": (2, 2), "num_filter": 2, "dilate": (2, 1), "pad": (1, 1)}, (1, 2, 5, 5),
         {"dilate": (2, 1), "pad": (1, 1)}, id="conv-dilate"),
    conv({"kernel": (3, 3), "num_filter": 4, "num_group": 2, "pad": (1, 1)}, (2, 4, 4, 4),
         {"pad": (1, 1)}, id="conv-groups"),
    conv({"kernel": (3, 3), "num_filter": 6, "num_group": 3, "stride": (2, 2)}, (1, 3, 5, 5),
         {"stride": (2, 2)}, no_bias=True, id="conv-depthwise-multiplier-nobias"),
    conv({"kernel": (1, 1), "num_filter": 3}, (2, 4, 3, 2), id="conv-1x1"),
    conv({"kernel": (2, 2, 2), "num_filter": 2, "pad": (1, 0, 0), "stride": (1, 2, 1)},
         (1, 2, 2, 3, 3), {"pad": (1, 0, 0), "stride": (1, 2, 1)}, id="conv-3d"),
    conv({"kernel": (2, 2), "num_filter": 2, "workspace": 0}, (3, 2, 3, 3),
         id="conv-workspace-0-one-sample-per-chunk"),
    conv({"kernel": "(3,)", "num_filter": "2", "stride": "(2,)", "pad": "(1,)"}, (2, 3, 7),
         {"stride": (2,), "pad": (1,)}, id="conv-1d-strings"),
    deconv({"kernel": (3, 3), "num_filter": 2}, (2, 3, 3, 3), id="deconv-3x3"),
    deconv({"kernel": (3, 3), "num_filter": 2, "stride": (2, 2), "pad": (1, 1), "adj": (1, 0)},
           (1, 2, 3, 3), {"stride": (2, 2), "pad": (1, 1), "adj": (1, 0)}, with_bias=True,
           id="deconv-stride-pad-adj-bias"),
    deconv({"kernel": (2, 3), "num_filter": 4, "num_group": 2, "dilate": (2, 1)}, (1, 4, 3, 2),
           {"dilate": (2, 1)}, id="deconv-groups-dilate-nonsquare"),
    deconv({"kernel": (4, 4), "num_filter": 2, "stride": (2, 2), "target_shape": (7, 8)},
           (1, 2, 3, 3), {"stride": (2, 2), "pad": (1, 0), "adj": (1, 0)},
           id="deconv-target-shape"),
    deconv({"kernel": (3,), "num_filter": 2, "stride": (2,), "adj": (1,)}, (2, 2, 4),
           {"stride": (2,), "adj": (1,)}, id="deconv-1d"),
    deconv({"kernel": (2, 2), "num_filter": 2, "workspace": 0}, (3, 2, 2, 2), with_bias=True,
           id="deconv-workspace-0-one-sample-per-chunk"),
]


@pytest.mark.parametrize("case", CASES, ids=str)
def test_conv_op(case):
    check_case(case)


def _run(op, arrays, head):
    outs, state = op.forward(np, arrays, True, Runtime(np, 0))
    return outs, op.backward(np, [head], arrays, outs, state, Runtime(np, 0))


@pytest.mark.parametrize("name, params, shapes", [
    ("Convolution", {"kernel": (3, 3), "num_filter": 4, "num_group": 2, "pad": (1, 1)},
     [(2, 4, 6, 6), (4, 2, 3, 3), (4,)]),
    ("Deconvolution", {"kernel": (3, 3), "num_filter": 4, "stride": (2, 2)},
     [(2, 4, 3, 3), (4, 4, 3, 3)]),
])
def test_float32_stays_float32(name, params, shapes):
    op = lookup(name)(node="t", **params)
    rng = np.random.default_rng(0)
    arrays = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    (out,), grads = _run(op, arrays, np.ones(op.infer_shape(shapes)[1][0], np.float32))
    assert out.dtype == np.float32
    assert all(g.dtype == np.float32 for g in grads)
    want = (conv_ref if name == "Convolution" else deconv_ref)(
        *[a.astype(np.float64) for a in arrays], groups=params.get("num_group", 1),
        stride=params.get("stride", (1, 1)), pad=params.get("pad", (0, 0)))[0]
    np.testing.assert_allclose(out, want, rtol=1e-4, atol=1e-4)


def test_deconvolution_is_the_adjoint_of_convolution():
    params = {"kernel": (3, 3), "num_filter": 3, "num_group": 3, "stride": (2, 2),
              "pad": (1, 1), "dilate": (1, 2), "no_bias": True}
    c = lookup("Convolution")(node="c", **params)
    d = lookup("Deconvolution")(node="d", **{**params, "adj": (1, 0)})
    rng = np.random.default_rng(3)
    x, w = rng.standard_normal((2, 3, 8, 9)), rng.standard_normal((3, 1, 3, 3))
    (y,), _ = c.forward(np, [x, w], False, None)
    u = rng.standard_normal(y.shape)
    (v,), _ = d.forward(np, [u, w], False, None)
    assert v.shape == x.shape
    np.testing.assert_allclose((y * u).sum(), (x * v).sum(), rtol=1e-10)


def test_defaults_and_arguments():
    c = lookup("Convolution")(node="c", kernel="(3, 3)", num_filter="8")
    assert c.arguments() == ["data", "weight", "bias"]
    assert (c.p.stride, c.p.dilate, c.p.pad, c.p.workspace) == ((1, 1), (1, 1), (0, 0), 1024)
    assert c.param_strings() == {"kernel": "(3, 3)", "num_filter": "8"}
    d = lookup("Deconvolution")(node="d", kernel=(4, 4), num_filter=8, target_shape="(0, 0)")
    assert d.arguments() == ["data", "weight"] and d.p.workspace == 512
    assert d.infer_shape([(1, 16, 5, 5), None])[0][1] == (16, 8, 4, 4)
    c = lookup("Convolution")(node="c", kernel=(3, 3), num_filter=8, cudnn_tune="fastest",
                              cudnn_off="True", layout="NCHW", workspace=2048)
    assert c.p.cudnn_tune == "fastest" and c.p.cudnn_off is True


def test_conv_shape_errors_name_layer_shapes_and_rule():
    c = lookup("Convolution")(node="conv1", kernel=(3, 3), num_filter=4, num_group=2)
    with pytest.raises(ShapeInferenceError, match=r"Convolution 'conv1' with inputs "
                       r"data=\(2, 5, 8, 8\).*5 channels, not divisible by num_group=2"):
        c.infer_shape([(2, 5, 8, 8), None, None])
    with pytest.raises(ShapeInferenceError, match=r"weight should have shape \(4, 2, 3, 3\), "
                                                  r"got \(4, 4, 3, 3\)"):
        c.infer_shape([(2, 4, 8, 8), (4, 4, 3, 3), None])
    big = lookup("Convolution")(node="conv2", kernel=(5, 5), num_filter=4, dilate=(2, 1))
    with pytest.raises(ShapeInferenceError, match=r"conv2.*kernel 5 \(dilated to 9\) along "
                                                  r"height is larger than the padded input 8"):
        big.infer_shape([(1, 1, 8, 8), None, None])
    with pytest.raises(ShapeInferenceError, match=r"data should be 4-D \(N, C, H, W\).*got 3-D"):
        c.infer_shape([(2, 4, 8), None, None])


def test_conv_param_errors():
    conv = lookup("Convolution")
    with pytest.raises(OperatorParamError, match="required parameter 'num_filter'"):
        conv(node="c", kernel=(3, 3))
    with pytest.raises(OperatorParamError, match=r"layout='NHWC' is not supported.*use NCHW"):
        conv(node="c", kernel=(3, 3), num_filter=2, layout="NHWC")
    with pytest.raises(OperatorParamError, match=r"kernel=\(3, 3, 3, 3\) is 4-D"):
        conv(node="c", kernel=(3, 3, 3, 3), num_filter=2)
    with pytest.raises(OperatorParamError, match=r"stride=\(2,\) has 1 entries but kernel"):
        conv(node="c", kernel=(3, 3), num_filter=2, stride=(2,))
    with pytest.raises(OperatorParamError, match="num_filter=5 is not divisible by num_group=2"):
        conv(node="c", kernel=(3, 3), num_filter=5, num_group=2)
    with pytest.raises(OperatorParamError, match="cudnn_tune='quick'"):
        conv(node="c", kernel=(3, 3), num_filter=2, cudnn_tune="quick")


def test_deconv_errors():
    deconv = lookup("Deconvolution")
    with pytest.raises(OperatorParamError, match=r"adj=\(2, 0\) must be smaller than stride"):
        deconv(node="d", kernel=(3, 3), num_filter=2, stride=(2, 2), adj=(2, 0))
    d = deconv(node="up", kernel=(3, 3), num_filter=2, stride=(2, 2), target_shape=(20, 20))
    with pytest.raises(ShapeInferenceError, match=r"Deconvolution 'up'.*data=\(1, 2, 4, 4\).*"
                                                  r"target_shape=\(20, 20\) is too big"):
        d.infer_shape([(1, 2, 4, 4), None])
    assert d.infer_shape([(1, 2, 10, 10), None])[1] == [(1, 2, 20, 20)]
    with pytest.raises(ShapeInferenceError, match="4 channels, not divisible by num_group=3"):
        deconv(node="d", kernel=(3, 3), num_filter=3, num_group=3).infer_shape(
            [(1, 4, 4, 4), None])
