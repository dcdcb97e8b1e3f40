"""Element-wise ops (equal-shape, broadcast, scalar, unary, ElementWiseSum): forward and gradients."""

from __future__ import annotations

import numpy as np
import pytest

from framestream.errors import ShapeInferenceError
from framestream.nn.ops import Runtime, lookup
from framestream.nn.ops.elemwise import broadcast_shape
from tests.nn.opcheck import Case, check_case

RNG = np.random.default_rng(7)


def positive(*shape):
    return RNG.uniform(0.5, 2.0, shape)


BINARY = {  # kind -> (NumPy reference, equal-shape name, broadcast name)
    "add": (np.add, "elemwise_add", "broadcast_add"),
    "sub": (np.subtract, "elemwise_sub", "broadcast_sub"),
    "mul": (np.multiply, "elemwise_mul", "broadcast_mul"),
    "div": (np.divide, "elemwise_div", "broadcast_div"),
    "power": (np.power, "_power", "broadcast_power"),
    "maximum": (np.maximum, "_maximum", "broadcast_maximum"),
    "minimum": (np.minimum, "_minimum", "broadcast_minimum"),
}


def binary_ref(fn):
    return lambda lhs, rhs: [fn(lhs, rhs)]


def operands(kind, lshape, rshape):
    """Positive operands where the formula needs them (power's log, division)."""
    if kind in ("power", "div"):
        return positive(*lshape), positive(*rshape)
    return lshape, rshape


BROADCAST_SHAPES = [((2, 3, 1), (3, 4)), ((4,), (2, 1, 4)), ((2, 1), (1, 3)), ((2, 3), (2, 3))]

BINARY_CASES = [
    Case(name, {}, dict(zip(("lhs", "rhs"), operands(kind, (2, 3), (2, 3)))), id=name,
         reference=binary_ref(fn))
    for kind, (fn, name, _) in BINARY.items()
] + [
    Case(name, {}, dict(zip(("lhs", "rhs"), operands(kind, ls, rs))), id=f"{name}{ls}{rs}",
         reference=binary_ref(fn))
    for kind, (fn, _, name) in BINARY.items() for ls, rs in BROADCAST_SHAPES
]

SCALAR = [  # (name, scalar, NumPy reference, needs positive data)
    ("_plus_scalar", 1.5, lambda x, s: x + s, False),
    ("_minus_scalar", 1.5, lambda x, s: x - s, False),
    ("_rminus_scalar", 1.5, lambda x, s: s - x, False),
    ("_mul_scalar", -2.5, lambda x, s: x * s, False),
    ("_div_scalar", 4.0, lambda x, s: x / s, False),
    ("_rdiv_scalar", 3.0, lambda x, s: s / x, True),
    ("_power_scalar", 2.5, lambda x, s: x ** s, True),
    ("_rpower_scalar", 1.7, lambda x, s: s ** x, False),
    ("_maximum_scalar", 0.1, np.maximum, False),
    ("_minimum_scalar", -0.1, np.minimum, False),
]

SCALAR_CASES = [
    Case(name, {"scalar": str(s)}, {"data": positive(3, 4) if pos else (3, 4)}, id=name,
         reference=lambda data, fn=fn, s=s: [fn(data, s)])
    for name, s, fn, pos in SCALAR
]

UNARY = [  # (name, NumPy reference, needs positive data)
    ("negative", np.negative, False), ("abs", np.abs, False), ("exp", np.exp, False),
    ("log", np.log, True), ("sqrt", np.sqrt, True), ("square", np.square, False),
]

UNARY_CASES = [
    Case(name, {}, {"data": positive(2, 5) if pos else (2, 5)}, id=name,
         reference=lambda data, fn=fn: [fn(data)])
    for name, fn, pos in UNARY
]

SUM_CASES = [
    Case("ElementWiseSum", {"num_args": 3}, {"arg0": (2, 3), "arg1": (2, 3), "arg2": (2, 3)},
         id="elementwisesum", reference=lambda arg0, arg1, arg2: [arg0 + arg1 + arg2]),
    Case("add_n", {"num_args": "1"}, {"arg0": (4,)}, id="add_n-1", reference=lambda arg0: [arg0]),
]

CASES = BINARY_CASES + SCALAR_CASES + UNARY_CASES + SUM_CASES


@pytest.mark.parametrize("case", CASES, ids=str)
def test_elemwise_op(case):
    check_case(case)


@pytest.mark.parametrize("case", CASES, ids=str)
def test_float32_stays_float32(case):
    op = lookup(case.op)(node="t", **case.params)
    arrays = [np.asarray(v if not isinstance(v, tuple) else np.full(v, 0.75), dtype=np.float32)
              for v in (case.inputs[n] for n in op.inputs())]
    rt = Runtime(np)
    outs, state = op.forward(np, [a.copy() for a in arrays], True, rt)
    grads = op.backward(np, [np.ones_like(o) for o in outs], arrays, outs, state, rt)
    assert [o.dtype for o in outs] == [np.float32]
    assert all(g.dtype == np.float32 for g in grads), [g.dtype for g in grads]


def test_gradients_are_fresh_arrays():
    """An executor may add into returned gradients: none may be the head or each other."""
    for name, arrays in [("elemwise_add", [np.ones(3), np.ones(3)]),
                         ("broadcast_sub", [np.ones(3), np.ones(3)]),
                         ("ElementWiseSum", [np.ones(3), np.ones(3)]),
                         ("_plus_scalar", [np.ones(3)])]:
        params = {"num_args": 2} if name == "ElementWiseSum" else {}
        op = lookup(name)(node="t", **params)
        rt = Runtime(np)
        outs, state = op.forward(np, arrays, True, rt)
        head = np.ones(3)
        grads = op.backward(np, [head], arrays, outs, state, rt)
        ids = [id(g) for g in grads]
        assert id(head) not in ids and len(set(ids)) == len(ids), name


def test_maximum_ties_go_to_lhs():
    for name, scalar_name in [("_maximum", "_maximum_scalar"), ("broadcast_minimum", "_minimum_scalar")]:
        x = np.array([1.0, 2.0])
        op = lookup(name)(node="t")
        outs, _ = op.forward(np, [x, x.copy()], True, Runtime(np))
        dl, dr = op.backward(np, [np.ones(2)], [x, x.copy()], outs, None, Runtime(np))
        np.testing.assert_array_equal(dl, [1, 1])
        np.testing.assert_array_equal(dr, [0, 0])
        sop = lookup(scalar_name)(node="t", scalar=2.0)
        outs, _ = sop.forward(np, [x], True, Runtime(np))
        (dx,) = sop.backward(np, [np.ones(2)], [x], outs, None, Runtime(np))
        assert dx[1] == 1


def test_equal_shape_ops_fill_in_the_other_input():
    op = lookup("elemwise_mul")(node="m")
    assert op.infer_shape([None, (2, 3)]) == ([(2, 3), (2, 3)], [(2, 3)])
    assert op.infer_shape([None, None]) == ([None, None], [None])
    op = lookup("ElementWiseSum")(node="s", num_args=3)
    assert op.infer_shape([None, (4,), None]) == ([(4,), (4,), (4,)], [(4,)])
    assert lookup("broadcast_add")(node="b").infer_shape([None, (2, 3)]) == ([None, (2, 3)], [None])


def test_elemwise_add_shape_mismatch():
    op = lookup("elemwise_add")(node="add1")
    with pytest.raises(ShapeInferenceError,
                       match=r"elemwise_add 'add1' with inputs lhs=\(2, 3\), rhs=\(3, 2\): "
                             r"rhs should have shape \(2, 3\), got \(3, 2\)"):
        op.infer_shape([(2, 3), (3, 2)])


def test_broadcast_mismatch():
    op = lookup("broadcast_mul")(node="bm")
    with pytest.raises(ShapeInferenceError,
                       match=r"broadcast_mul 'bm' with inputs lhs=\(2, 3\), rhs=\(4, 3\): "
                             r"shapes do not broadcast"):
        op.infer_shape([(2, 3), (4, 3)])


@pytest.mark.parametrize("lhs, rhs, out", [((2, 1, 4), (3, 1), (2, 3, 4)), ((), (3,), (3,)),
                                           ((5, 1), (1, 0), (5, 0)), ((2,), (3,), None)])
def test_broadcast_shape(lhs, rhs, out):
    assert broadcast_shape(lhs, rhs) == out


def test_aliases():
    pairs = [("_Plus", "elemwise_add"), ("_plus", "elemwise_add"), ("_add", "elemwise_add"),
             ("_Minus", "elemwise_sub"), ("_sub", "elemwise_sub"), ("_Mul", "elemwise_mul"),
             ("_Div", "elemwise_div"), ("_Power", "_power"), ("_Maximum", "_maximum"),
             ("_Minimum", "_minimum"), ("broadcast_plus", "broadcast_add"),
             ("broadcast_minus", "broadcast_sub"), ("ElementWiseSum", "add_n"),
             ("_PlusScalar", "_plus_scalar"), ("_RMinusScalar", "_rminus_scalar"),
             ("_RDivScalar", "_rdiv_scalar"), ("_RPowerScalar", "_rpower_scalar"),
             ("_MaximumScalar", "_maximum_scalar"), ("_MinimumScalar", "_minimum_scalar")]
    for alias, name in pairs:
        assert lookup(alias) is lookup(name) is not None, alias
    assert lookup("_plus").op_name == "elemwise_add"
    assert lookup("_mul")(node="m").arguments() == ["lhs", "rhs"]
    assert lookup("_mul_scalar")(node="m", scalar="2").arguments() == ["data"]
