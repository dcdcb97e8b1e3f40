"""Layout ops (Flatten, Reshape, Concat, SliceChannel, ...): shapes, forward, finite differences."""

from __future__ import annotations

import numpy as np
import pytest

from framestream.errors import OperatorParamError, ShapeInferenceError
from framestream.nn.ops import Runtime, lookup
from framestream.nn.ops.shape import reshape_codes
from tests.nn.opcheck import Case, check_case


def reshaped(shape):
    return lambda data: [data.reshape(shape)]


def pad_ref(mode, width, value=0.0):
    pairs = [(width[2 * i], width[2 * i + 1]) for i in range(len(width) // 2)]
    if mode == "constant":
        return lambda data: [np.pad(data, pairs, mode="constant", constant_values=value)]
    return lambda data: [np.pad(data, pairs, mode=mode)]


def reduce_ref(fn, axes, keepdims, out_shape):
    return lambda data: [fn(data, axis=axes, keepdims=keepdims).reshape(out_shape)]


RESHAPES = [  # (shape codes, reverse, input shape, expected output shape)
    ((4, 0, 2), False, (2, 3, 4), (4, 3, 2)),
    ((6, 1, -1), False, (2, 3, 4), (6, 1, 4)),
    ((-1,), False, (2, 3, 4), (24,)),
    ((2, -2), False, (2, 3, 4), (2, 3, 4)),
    ((-2, 1, 1), False, (2, 3, 4), (2, 3, 4, 1, 1)),
    ((-3, 4), False, (2, 3, 4), (6, 4)),
    ((0, -3), False, (2, 3, 4), (2, 12)),
    ((-4, 1, 2, -2), False, (2, 3, 4), (1, 2, 3, 4)),
    ((2, -4, -1, 3, -2), False, (2, 3, 4), (2, 1, 3, 4)),
    ((-1, 0), False, (10, 5, 4), (40, 5)),
    ((-1, 0), True, (10, 5, 4), (50, 4)),
    ((-2, -4, 2, -1, 0), True, (3, 8, 5), (3, 2, 4, 5)),
]

CASES = [
    Case("Flatten", {}, {"data": (2, 3, 2)}, id="flatten", reference=reshaped((2, 6))),
    Case("flatten", {}, {"data": (3,)}, id="flatten-1d", reference=reshaped((3, 1))),
    *[Case("Reshape", {"shape": str(codes), "reverse": str(rev)}, {"data": ishape},
           id=f"reshape{codes}{'-rev' if rev else ''}", reference=reshaped(oshape))
      for codes, rev, ishape, oshape in RESHAPES],
    Case("Reshape", {"target_shape": (0, 4)}, {"data": (2, 3, 4)}, id="reshape-target",
         reference=reshaped((6, 4))),
    Case("Reshape", {"target_shape": "(9, 0, 2)", "keep_highest": "True"}, {"data": (2, 3, 4)},
         id="reshape-keep-highest", reference=reshaped((2, 6, 2))),
    Case("Concat", {"num_args": 3}, {"arg0": (2, 1, 3), "arg1": (2, 2, 3), "arg2": (2, 3, 3)},
         id="concat-dim1", reference=lambda arg0, arg1, arg2: [np.concatenate([arg0, arg1, arg2], 1)]),
    Case("concat", {"num_args": "2", "dim": "-1"}, {"arg0": (2, 3), "arg1": (2, 1)},
         id="concat-dim-neg", reference=lambda arg0, arg1: [np.concatenate([arg0, arg1], -1)]),
    Case("SliceChannel", {"num_outputs": 3}, {"data": (2, 6, 2)}, id="slicechannel",
         reference=lambda data: np.split(data, 3, axis=1)),
    Case("split", {"num_outputs": 2, "axis": -1, "squeeze_axis": "True"}, {"data": (3, 2)},
         id="split-squeeze", reference=lambda data: [data[:, 0], data[:, 1]]),
    Case("transpose", {}, {"data": (2, 3, 4)}, id="transpose-reverse",
         reference=lambda data: [data.transpose()]),
    Case("transpose", {"axes": "(1, 0, 2)"}, {"data": (2, 3, 4)}, id="transpose-axes",
         reference=lambda data: [data.transpose(1, 0, 2)]),
    Case("expand_dims", {"axis": 1}, {"data": (2, 3)}, id="expand-dims",
         reference=lambda data: [data[:, None]]),
    Case("expand_dims", {"axis": -1}, {"data": (2, 3)}, id="expand-dims-neg",
         reference=lambda data: [data[..., None]]),
    Case("slice_axis", {"axis": 1, "begin": 1, "end": 3}, {"data": (2, 4, 2)}, id="slice-axis",
         reference=lambda data: [data[:, 1:3]]),
    Case("slice_axis", {"axis": -1, "begin": -3, "end": "None"}, {"data": (2, 4)},
         id="slice-axis-neg-none", reference=lambda data: [data[:, -3:]]),
    Case("slice_axis", {"axis": 0, "begin": 0, "end": -1}, {"data": (3, 2)}, id="slice-axis-neg-end",
         reference=lambda data: [data[:-1]]),
    Case("Pad", {"mode": "constant", "pad_width": (0, 0, 0, 0, 1, 2, 2, 1), "constant_value": 1.5},
         {"data": (1, 2, 3, 4)}, id="pad-constant",
         reference=pad_ref("constant", (0, 0, 0, 0, 1, 2, 2, 1), 1.5)),
    Case("pad", {"mode": "edge", "pad_width": "(0, 0, 0, 0, 2, 1, 0, 3)"}, {"data": (1, 2, 3, 4)},
         id="pad-edge", reference=pad_ref("edge", (0, 0, 0, 0, 2, 1, 0, 3))),
    Case("Pad", {"mode": "reflect", "pad_width": (0, 0, 0, 0, 2, 1, 3, 2)}, {"data": (1, 2, 3, 4)},
         id="pad-reflect", reference=pad_ref("reflect", (0, 0, 0, 0, 2, 1, 3, 2))),
    Case("Pad", {"mode": "reflect", "pad_width": (0, 0, 0, 0, 1, 0, 0, 2, 1, 1)},
         {"data": (1, 1, 2, 3, 2)}, id="pad-reflect-5d",
         reference=pad_ref("reflect", (0, 0, 0, 0, 1, 0, 0, 2, 1, 1))),
    Case("Cast", {"dtype": "float64"}, {"data": (2, 3)}, id="cast-float64",
         reference=lambda data: [data]),
    Case("identity", {}, {"data": (2, 3)}, id="identity", reference=lambda data: [data]),
    Case("_copy", {}, {"data": (3,)}, id="copy", reference=lambda data: [data]),
    Case("clip", {"a_min": -0.5, "a_max": "0.7"}, {"data": (4, 5)}, id="clip",
         reference=lambda data: [np.clip(data, -0.5, 0.7)]),
    Case("sum", {}, {"data": (2, 3)}, id="sum-all", reference=reduce_ref(np.sum, None, False, (1,))),
    Case("sum", {"axis": 1}, {"data": (2, 3, 4)}, id="sum-axis",
         reference=reduce_ref(np.sum, 1, False, (2, 4))),
    Case("sum_axis", {"axis": "(0, 2)", "keepdims": "True"}, {"data": (2, 3, 4)},
         id="sum-keepdims", reference=reduce_ref(np.sum, (0, 2), True, (1, 3, 1))),
    Case("sum", {"axis": -1, "exclude": True}, {"data": (2, 3, 4)}, id="sum-exclude",
         reference=reduce_ref(np.sum, (0, 1), False, (4,))),
    Case("sum", {"axis": "()", "keepdims": True}, {"data": (2, 3)}, id="sum-empty-axis-keepdims",
         reference=reduce_ref(np.sum, None, True, (1, 1))),
    Case("mean", {}, {"data": (2, 3)}, id="mean-all", reference=reduce_ref(np.mean, None, False, (1,))),
    Case("mean", {"axis": (1,), "keepdims": True}, {"data": (2, 3, 4)}, id="mean-keepdims",
         reference=reduce_ref(np.mean, 1, True, (2, 1, 4))),
    Case("mean", {"axis": (0, 2), "exclude": "True", "keepdims": True}, {"data": (2, 3, 4)},
         id="mean-exclude-keepdims", reference=reduce_ref(np.mean, 1, True, (2, 1, 4))),
]


@pytest.mark.parametrize("case", CASES, ids=str)
def test_shape_op(case):
    check_case(case)


@pytest.mark.parametrize("codes, reverse, ishape, oshape", RESHAPES)
def test_reshape_codes(codes, reverse, ishape, oshape):
    assert reshape_codes(codes, ishape, reverse) == oshape


def _run(op_name, params, *arrays, head=None):
    op = lookup(op_name)(node="t", **params)
    rt = Runtime(np)
    outs, state = op.forward(np, list(arrays), True, rt)
    heads = [np.ones_like(o) if head is None else head for o in outs]
    return op, outs, op.backward(np, heads, list(arrays), outs, state, rt)


@pytest.mark.parametrize("case", [c for c in CASES if c.op not in ("Cast",)], ids=str)
def test_float32_stays_float32(case):
    arrays = [np.ones(s, dtype=np.float32) * 0.25 for s in case.inputs.values()]
    _, outs, grads = _run(case.op, case.params, *arrays)
    assert all(o.dtype == np.float32 for o in outs)
    assert all(g.dtype == np.float32 for g in grads)


@pytest.mark.parametrize("dtype", ["float32", "float16", "int32", "uint8", "int64"])
def test_cast_forward_and_gradient_back(dtype):
    data = np.array([[1.7, -0.2], [3.0, 250.9]])
    op, (out,), (grad,) = _run("cast", {"dtype": dtype}, data, head=np.ones((2, 2), dtype=dtype))
    assert out.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(out, data.astype(dtype))
    assert grad.dtype == np.float64
    assert op.infer_type([np.dtype("float64")]) == ([np.dtype("float64")], [np.dtype(dtype)])


def test_clip_gradient_includes_the_bounds():
    data = np.array([-2.0, -1.0, 0.0, 1.0, 2.0])
    _, _, (grad,) = _run("clip", {"a_min": -1, "a_max": 1}, data)
    np.testing.assert_array_equal(grad, [0, 1, 1, 1, 0])


def test_concat_mismatch_names_layer_and_shapes():
    op = lookup("Concat")(node="cat1", num_args=2, dim=1)
    with pytest.raises(ShapeInferenceError,
                       match=r"Concat 'cat1' with inputs arg0=\(2, 3, 4\), arg1=\(2, 5, 5\): "
                             r"inputs must have equal shapes except on axis 1"):
        op.infer_shape([(2, 3, 4), (2, 5, 5)])
    assert op.infer_shape([(2, 3, 4), None])[1] == [None]


def test_reshape_size_mismatch_says_both_sizes():
    op = lookup("Reshape")(node="r1", shape=(4, 2))
    with pytest.raises(ShapeInferenceError,
                       match=r"Reshape 'r1' with inputs data=\(2, 3\): .*8 elements but data has 6"):
        op.infer_shape([(2, 3)])


@pytest.mark.parametrize("params, ishape, match", [
    ({"shape": (-1, -1)}, (2, 3), "only one dimension can be -1"),
    ({"shape": (-4, 4, -1)}, (6,), r"cannot split an axis of size 6 into 4 x 1"),
    ({"shape": (0, 0, 0)}, (2, 3), "needs an input axis beyond the 2"),
    ({"shape": (-1, 4)}, (2, 3), r"6 elements do not divide"),
])
def test_reshape_bad_codes(params, ishape, match):
    with pytest.raises(ShapeInferenceError, match=match):
        lookup("Reshape")(node="r", **params).infer_shape([ishape])


@pytest.mark.parametrize("op_name, params, ishape, match", [
    ("SliceChannel", {"num_outputs": 4}, (2, 6), r"size 6 does not split into 4"),
    ("SliceChannel", {"num_outputs": 2, "squeeze_axis": True}, (2, 4), "squeeze_axis needs"),
    ("slice_axis", {"axis": 1, "begin": 3, "end": 2}, (2, 4), "not a non-empty range"),
    ("slice_axis", {"axis": 2, "begin": 0, "end": 1}, (2, 4), "axis=2 is out of range"),
    ("transpose", {"axes": (0, 0)}, (2, 4), "not a permutation"),
    ("expand_dims", {"axis": 3}, (2, 4), "out of range"),
    ("Pad", {"mode": "reflect", "pad_width": (0, 0, 0, 0, 3, 0, 0, 0)}, (1, 1, 3, 3),
     "smaller than each padded axis"),
    ("Pad", {"pad_width": (0, 0, 0, 0, 1, 1, 1, 1)}, (1, 1, 3), r"data needs 2 x 3"),
    ("sum", {"axis": (1, -1)}, (2, 4), "names an axis twice"),
])
def test_shape_errors(op_name, params, ishape, match):
    with pytest.raises(ShapeInferenceError, match=match):
        lookup(op_name)(node="x", **params).infer_shape([ishape])


@pytest.mark.parametrize("op_name, params, match", [
    ("Reshape", {}, "needs shape"),
    ("Reshape", {"shape": (2, -4, 3)}, "must be followed by the two sizes"),
    ("Pad", {"pad_width": (1, 0, 0, 0, 1, 1, 1, 1)}, "first four"),
    ("Cast", {"dtype": "complex64"}, "expected one of"),
    ("SliceChannel", {}, "required parameter 'num_outputs'"),
    ("Concat", {"num_args": 0}, "at least 1"),
])
def test_bad_params(op_name, params, match):
    with pytest.raises(OperatorParamError, match=match):
        lookup(op_name)(node="x", **params)


def test_slicechannel_outputs_and_aliases():
    op = lookup("split")(node="sl", num_outputs=3)
    assert op.outputs() == ["output0", "output1", "output2"]
    for alias, name in [("flatten", "Flatten"), ("reshape", "Reshape"), ("concat", "Concat"),
                        ("split", "SliceChannel"), ("pad", "Pad"), ("cast", "Cast"),
                        ("identity", "_copy"), ("sum_axis", "sum")]:
        assert lookup(alias) is lookup(name)


def test_cast_gradient_passes_through_the_output_dtype():
    """MXNet keeps the head gradient in the output's dtype, so float16 rounds it."""
    data, head = np.zeros(2), np.array([1 / 3, 1000.7])
    _, _, (grad,) = _run("Cast", {"dtype": "float16"}, data, head=head)
    np.testing.assert_array_equal(grad, head.astype(np.float16).astype(np.float64))
