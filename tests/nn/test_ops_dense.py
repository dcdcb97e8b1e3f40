"""FullyConnected, Embedding, dot, batch_dot, _linalg_gemm2: forward, shapes, finite differences."""

from __future__ import annotations

import numpy as np
import pytest

from framestream.errors import OperatorParamError, ShapeInferenceError
from framestream.nn.ops import Runtime, lookup
from tests.nn.opcheck import Case, check_case


def fc_ref(data, weight, bias=None, flatten=True):
    x = data.reshape(data.shape[0], -1) if flatten else data
    out = x @ weight.T
    return [out if bias is None else out + bias]


CASES = [
    Case("FullyConnected", {"num_hidden": 4}, {"data": (3, 5), "weight": (4, 5), "bias": (4,)},
         id="fc", reference=fc_ref),
    Case("FullyConnected", {"num_hidden": 3, "no_bias": True}, {"data": (2, 2, 3), "weight": (3, 6)},
         id="fc-nobias-flatten", reference=lambda data, weight: fc_ref(data, weight)),
    Case("FullyConnected", {"num_hidden": "3", "flatten": "False"},
         {"data": (2, 2, 4), "weight": (3, 4), "bias": (3,)}, id="fc-noflatten",
         reference=lambda data, weight, bias: fc_ref(data, weight, bias, flatten=False)),
]


def embed_ref(data, weight):
    rows = np.clip(np.trunc(data).astype(int), 0, weight.shape[0] - 1)
    return [weight[rows]]


def swap(a):
    return np.swapaxes(a, -1, -2)


def gemm2_ref(ta, tb, alpha, axis=-2):
    def ref(A, B):
        a, b = np.swapaxes(A, axis, -2), np.swapaxes(B, axis, -2)
        out = alpha * np.matmul(swap(a) if ta else a, swap(b) if tb else b)
        return [np.swapaxes(out, axis, -2)]
    return ref


# Indices sit mid-way between integers so that finite differences do not cross into a new row
# (the gradient of data is zero); 2.5 repeats, 7.5 and -1.5 are clipped into [0, 3].
EMBED_DATA = np.array([[0.5, 2.5, 2.5], [3.5, 2.5, 1.5]])

CASES += [
    Case("Embedding", {"input_dim": 4, "output_dim": 3}, {"data": EMBED_DATA, "weight": (4, 3)},
         id="embedding-repeated", reference=embed_ref),
    Case("Embedding", {"input_dim": "4", "output_dim": "2", "dtype": "float64"},
         {"data": np.array([7.5, -1.5, 1.5, 3.0]), "weight": (4, 2)}, id="embedding-clipped",
         reference=embed_ref, grad_inputs=["weight"]),
    Case("dot", {}, {"lhs": (3, 4), "rhs": (4, 2)}, id="dot", reference=lambda lhs, rhs: [lhs @ rhs]),
    Case("dot", {"transpose_a": True}, {"lhs": (4, 3), "rhs": (4, 2)}, id="dot-ta",
         reference=lambda lhs, rhs: [lhs.T @ rhs]),
    Case("dot", {"transpose_b": "True"}, {"lhs": (3, 4), "rhs": (2, 4)}, id="dot-tb",
         reference=lambda lhs, rhs: [lhs @ rhs.T]),
    Case("dot", {"transpose_a": True, "transpose_b": True}, {"lhs": (4, 3), "rhs": (2, 4)},
         id="dot-ta-tb", reference=lambda lhs, rhs: [lhs.T @ rhs.T]),
    Case("dot", {}, {"lhs": (2, 3, 4), "rhs": (4, 2, 2)}, id="dot-nd",
         reference=lambda lhs, rhs: [np.tensordot(lhs, rhs, axes=([-1], [0]))]),
    Case("dot", {"transpose_a": True}, {"lhs": (4, 2, 3), "rhs": (4, 5)}, id="dot-nd-ta",
         reference=lambda lhs, rhs: [np.tensordot(lhs, rhs, axes=([0], [0]))]),
    Case("dot", {"transpose_b": True}, {"lhs": (3, 4), "rhs": (5, 2, 4)}, id="dot-nd-tb",
         reference=lambda lhs, rhs: [np.tensordot(lhs, rhs, axes=([-1], [-1]))]),
    Case("dot", {}, {"lhs": (4,), "rhs": (4,)}, id="dot-vectors",
         reference=lambda lhs, rhs: [np.dot(lhs, rhs).reshape(1)]),
    Case("dot", {}, {"lhs": (4,), "rhs": (4, 3)}, id="dot-vec-mat",
         reference=lambda lhs, rhs: [lhs @ rhs]),
    Case("dot", {}, {"lhs": (2, 4), "rhs": (4,)}, id="dot-mat-vec",
         reference=lambda lhs, rhs: [lhs @ rhs]),
    *[Case("batch_dot", {"transpose_a": ta, "transpose_b": tb},
           {"lhs": (2, 4, 3) if ta else (2, 3, 4), "rhs": (2, 5, 4) if tb else (2, 4, 5)},
           id=f"batch_dot-{ta:d}{tb:d}",
           reference=lambda lhs, rhs, ta=ta, tb=tb: [(swap(lhs) if ta else lhs)
                                                     @ (swap(rhs) if tb else rhs)])
      for ta in (False, True) for tb in (False, True)],
    *[Case("_linalg_gemm2", {"transpose_a": ta, "transpose_b": tb, "alpha": 0.5},
           {"A": (2, 4, 3) if ta else (2, 3, 4), "B": (2, 5, 4) if tb else (2, 4, 5)},
           id=f"gemm2-{ta:d}{tb:d}", reference=gemm2_ref(ta, tb, 0.5))
      for ta in (False, True) for tb in (False, True)],
    Case("linalg_gemm2", {}, {"A": (3, 4), "B": (4, 2)}, id="gemm2-2d",
         reference=gemm2_ref(False, False, 1.0)),
    Case("_linalg_gemm2", {"axis": 0, "alpha": "2.0"}, {"A": (3, 2, 4), "B": (4, 2, 5)},
         id="gemm2-axis0", reference=gemm2_ref(False, False, 2.0, axis=0)),
    Case("_linalg_gemm2", {"axis": -3, "transpose_b": True}, {"A": (2, 3, 2, 4), "B": (2, 5, 2, 4)},
         id="gemm2-axis-neg3-tb", reference=gemm2_ref(False, True, 1.0, axis=-3)),
]


@pytest.mark.parametrize("case", CASES, ids=str)
def test_dense_op(case):
    check_case(case)


def test_fc_shape_contradiction_names_layer_and_shapes():
    op = lookup("FullyConnected")(node="fc1", num_hidden=4)
    with pytest.raises(ShapeInferenceError, match=r"FullyConnected 'fc1'.*data=\(3, 5\).*weight should have shape \(4, 5\), got \(4, 6\)"):
        op.infer_shape([(3, 5), (4, 6), None])


def test_fc_bad_params():
    with pytest.raises(OperatorParamError, match="required parameter 'num_hidden'"):
        lookup("FullyConnected")(node="fc1")
    with pytest.raises(OperatorParamError, match="unknown parameter 'num_hiden'"):
        lookup("FullyConnected")(node="fc1", num_hidden=2, num_hiden=3)
    with pytest.raises(OperatorParamError, match="num_hidden='x'"):
        lookup("FullyConnected")(node="fc1", num_hidden="x")


def test_embedding_weight_gradient_sums_repeated_rows():
    op = lookup("Embedding")(node="e", input_dim=3, output_dim=2)
    data, weight = np.array([2.0, 0.0, 2.0, 2.0]), np.zeros((3, 2))
    rt = Runtime(np)
    outs, state = op.forward(np, [data, weight], True, rt)
    ddata, dweight = op.backward(np, [np.ones((4, 2))], [data, weight], outs, state, rt)
    np.testing.assert_array_equal(dweight, [[1, 1], [0, 0], [3, 3]])
    np.testing.assert_array_equal(ddata, np.zeros(4))


def test_embedding_shapes_and_types():
    op = lookup("Embedding")(node="embed", input_dim=10, output_dim=4)
    assert op.arguments() == ["data", "weight"]
    assert op.infer_shape([(2, 5), None]) == ([(2, 5), (10, 4)], [(2, 5, 4)])
    assert op.infer_shape([None, None]) == ([None, (10, 4)], [None])
    f32, f64 = np.dtype("float32"), np.dtype("float64")
    assert op.infer_type([None, None]) == ([f32, f32], [f32])
    assert op.infer_type([f64, None]) == ([f64, f32], [f32])
    with pytest.raises(ShapeInferenceError, match=r"weight should have shape \(10, 4\), got \(10, 5\)"):
        op.infer_shape([(2, 5), (10, 5)])


@pytest.mark.parametrize("name, params, shapes, match", [
    ("dot", {}, [(3, 4), (5, 2)], r"contracted sizes differ: 4 \(lhs\) and 5 \(rhs\)"),
    ("dot", {"transpose_a": True}, [(3, 4), (4, 2)], r"contracted sizes differ: 3"),
    ("batch_dot", {}, [(2, 3, 4), (3, 4, 5)], "equal batch axes"),
    ("batch_dot", {"transpose_b": True}, [(2, 3, 4), (2, 4, 5)], r"differ: 4 \(lhs\) and 5"),
    ("_linalg_gemm2", {}, [(2, 3, 4), (2, 5, 5)], r"got 4 \(A\) and 5 \(B\)"),
    ("_linalg_gemm2", {"axis": -1}, [(3, 4), (4, 5)], "must name a row axis"),
])
def test_matmul_shape_errors(name, params, shapes, match):
    with pytest.raises(ShapeInferenceError, match=match):
        lookup(name)(node="mm", **params).infer_shape(shapes)


@pytest.mark.parametrize("case", [c for c in CASES if c.op != "FullyConnected"], ids=str)
def test_float32_stays_float32(case):
    op = lookup(case.op)(node="t", **case.params)
    arrays = [np.asarray(v if not isinstance(v, tuple) else np.full(v, 0.5), dtype=np.float32)
              for v in (case.inputs[n] for n in op.inputs())]
    rt = Runtime(np)
    outs, state = op.forward(np, [a.copy() for a in arrays], True, rt)
    grads = op.backward(np, [np.ones_like(o) for o in outs], arrays, outs, state, rt)
    assert [o.dtype for o in outs] == [np.float32]
    assert all(g.dtype == np.float32 for g in grads)
