"""Dense algebra: FullyConnected, Embedding, dot, batch_dot, _linalg_gemm2."""

from __future__ import annotations

from typing import Any

import numpy as np

from framestream.nn.ops import _cpu_kernels as kernels
from framestream.nn.ops._base import (
    Operator,
    P,
    Runtime,
    Shape,
    parse_bool,
    parse_enum,
    parse_float,
    parse_int,
    parse_optional,
    parse_str,
    register,
    size_of,
)


@register
class FullyConnected(Operator):
    """out = flatten(data) @ weight.T + bias; with ``flatten=False`` over the last axis only."""

    op_name = "FullyConnected"
    params = (P("num_hidden", parse_int), P("no_bias", parse_bool, False), P("flatten", parse_bool, True))

    def check_params(self) -> None:
        if self.p.num_hidden < 1:
            raise self.param_error(f"num_hidden must be at least 1, got {self.p.num_hidden}")

    def arguments(self) -> list[str]:
        return ["data", "weight"] if self.p.no_bias else ["data", "weight", "bias"]

    def infer_shape(self, in_shapes):
        shapes = list(in_shapes)
        data = shapes[0]
        if data is None:
            return shapes, [None]
        if len(data) < 1:
            raise self.shape_error(shapes, "data needs at least one axis")
        if self.p.flatten:
            lead, width = data[:1], size_of(data[1:])
        else:
            lead, width = data[:-1], data[-1]
        self.assign(shapes, 1, (self.p.num_hidden, width))
        if not self.p.no_bias:
            self.assign(shapes, 2, (self.p.num_hidden,))
        return shapes, [(*lead, self.p.num_hidden)]

    def _as_2d(self, data: Any) -> Any:
        if self.p.flatten:
            return data.reshape(data.shape[0], -1)
        return data.reshape(-1, data.shape[-1])

    def forward(self, xp, inputs, is_train, rt: Runtime):
        data, weight = inputs[0], inputs[1]
        out = _matmul(xp, self._as_2d(data), weight.T)
        if not self.p.no_bias:
            out += inputs[2]
        lead = data.shape[:1] if self.p.flatten else data.shape[:-1]
        return [out.reshape(*lead, self.p.num_hidden)], None

    def backward(self, xp, out_grads, inputs, outputs, state, rt):
        data, weight = inputs[0], inputs[1]
        dy = out_grads[0].reshape(-1, self.p.num_hidden)
        x2 = self._as_2d(data)
        dx = _matmul(xp, dy, weight).reshape(data.shape) if rt.wants(0) else None
        grads = [dx, _matmul(xp, dy.T, x2)]
        if not self.p.no_bias:
            grads.append(dy.sum(axis=0))
        return grads


def _matmul(xp: Any, a: Any, b: Any) -> Any:
    """a @ b; on NumPy float32/64 the product big enough to split runs over the kernel pool."""
    return kernels.matmul(a, b) if kernels.usable(xp, a, b) else a @ b


# ---------------------------------------------------------------- Embedding


@register
class Embedding(Operator):
    """Row lookup: out[..., :] = weight[data[...]], with float-coded indices clipped into range.

    The indices get a zero gradient (they are not differentiable); rows used several times
    sum their gradients.
    """

    op_name = "Embedding"
    params = (P("input_dim", parse_int), P("output_dim", parse_int),
              P("dtype", parse_enum("float16", "float32", "float64", "uint8", "int32", "int8",
                                    "int64"), "float32"),
              P("sparse_grad", parse_bool, False))

    def check_params(self) -> None:
        for name in ("input_dim", "output_dim"):
            if getattr(self.p, name) < 1:
                raise self.param_error(f"{name} must be at least 1, got {getattr(self.p, name)}")

    def arguments(self) -> list[str]:
        return ["data", "weight"]

    def infer_shape(self, in_shapes):
        shapes = list(in_shapes)
        self.assign(shapes, 1, (self.p.input_dim, self.p.output_dim))
        data = shapes[0]
        return shapes, [None if data is None else (*data, self.p.output_dim)]

    def infer_type(self, in_types):
        dtype = np.dtype(self.p.dtype)
        data = dtype if in_types[0] is None else in_types[0]
        return [data, dtype], [dtype]

    def _rows(self, xp: Any, data: Any) -> Any:
        # MXNet truncates the float index and clips it into [0, input_dim).
        return xp.clip(data.astype(xp.int64), 0, self.p.input_dim - 1)

    def forward(self, xp, inputs, is_train, rt):
        data, weight = inputs
        return [weight[self._rows(xp, data)]], None

    def backward(self, xp, out_grads, inputs, outputs, state, rt):
        data, weight = inputs
        dweight = xp.zeros_like(weight)
        xp.add.at(dweight, self._rows(xp, data).reshape(-1),
                  out_grads[0].reshape(-1, self.p.output_dim))
        return [xp.zeros_like(data), dweight]


# ---------------------------------------------------------------- dot, batch_dot, _linalg_gemm2


def _swap(xp: Any, a: Any) -> Any:
    return xp.swapaxes(a, -1, -2)


def matmul_grads(xp: Any, a: Any, b: Any, ta: bool, tb: bool, g: Any) -> tuple[Any, Any]:
    """Gradients of a and b for ``out = op(a) @ op(b)`` (batched over leading axes) given g."""
    op_a = _swap(xp, a) if ta else a
    op_b = _swap(xp, b) if tb else b
    da = xp.matmul(g, _swap(xp, op_b))
    db = xp.matmul(_swap(xp, op_a), g)
    return (_swap(xp, da) if ta else da), (_swap(xp, db) if tb else db)


@register
class Dot(Operator):
    """MXNet's dot: the last axis of lhs times the first axis of rhs (transposes flip which).

    Each side is viewed as a matrix: lhs as (prod(shape[:-1]), shape[-1]) or, transposed,
    (shape[0], prod(shape[1:])); rhs likewise. Two vectors give shape (1,).
    """

    op_name = "dot"
    params = (P("transpose_a", parse_bool, False), P("transpose_b", parse_bool, False),
              P("forward_stype", parse_optional(parse_str), None))

    def arguments(self) -> list[str]:
        return ["lhs", "rhs"]

    def _views(self, lshape: Shape, rshape: Shape) -> tuple[Shape, Shape, Shape]:
        """(lhs matrix shape, rhs matrix shape, output shape) before transposes."""
        ta, tb = self.p.transpose_a, self.p.transpose_b
        lmat = (lshape[0], size_of(lshape[1:])) if ta else (size_of(lshape[:-1]), lshape[-1])
        rmat = (size_of(rshape[:-1]), rshape[-1]) if tb else (rshape[0], size_of(rshape[1:]))
        out = ()
        if len(lshape) > 1:
            out += lshape[1:] if ta else lshape[:-1]
        if len(rshape) > 1:
            out += rshape[:-1] if tb else rshape[1:]
        return lmat, rmat, out or (1,)

    def infer_shape(self, in_shapes):
        lhs, rhs = in_shapes
        if lhs is None or rhs is None:
            return list(in_shapes), [None]
        if not lhs or not rhs:
            raise self.shape_error(in_shapes, "lhs and rhs need at least one axis")
        lmat, rmat, out = self._views(tuple(lhs), tuple(rhs))
        inner_l = lmat[0] if self.p.transpose_a else lmat[1]
        inner_r = rmat[1] if self.p.transpose_b else rmat[0]
        if inner_l != inner_r:
            raise self.shape_error(in_shapes, f"contracted sizes differ: {inner_l} (lhs) and "
                                              f"{inner_r} (rhs)")
        return list(in_shapes), [out]

    def forward(self, xp, inputs, is_train, rt):
        lhs, rhs = inputs
        lmat, rmat, out = self._views(lhs.shape, rhs.shape)
        a, b = lhs.reshape(lmat), rhs.reshape(rmat)
        a = a.T if self.p.transpose_a else a
        b = b.T if self.p.transpose_b else b
        return [(a @ b).reshape(out)], None

    def backward(self, xp, out_grads, inputs, outputs, state, rt):
        lhs, rhs = inputs
        lmat, rmat, _ = self._views(lhs.shape, rhs.shape)
        rows = lmat[1] if self.p.transpose_a else lmat[0]
        g = out_grads[0].reshape(rows, -1)
        da, db = matmul_grads(xp, lhs.reshape(lmat), rhs.reshape(rmat),
                              self.p.transpose_a, self.p.transpose_b, g)
        return [da.reshape(lhs.shape), db.reshape(rhs.shape)]


@register
class BatchDot(Operator):
    """Matrix products over a batch: (B, M, K) x (B, K, N) -> (B, M, N), transposes optional.

    Any number (>= 1) of equal leading batch axes is accepted.
    """

    op_name = "batch_dot"
    params = (P("transpose_a", parse_bool, False), P("transpose_b", parse_bool, False),
              P("forward_stype", parse_optional(parse_str), None))

    def arguments(self) -> list[str]:
        return ["lhs", "rhs"]

    def infer_shape(self, in_shapes):
        lhs, rhs = in_shapes
        if lhs is None or rhs is None:
            return list(in_shapes), [None]
        if len(lhs) < 3 or len(lhs) != len(rhs) or lhs[:-2] != rhs[:-2]:
            raise self.shape_error(in_shapes, "lhs and rhs need the same number (>= 3) of axes "
                                              "and equal batch axes")
        m, k = (lhs[-1], lhs[-2]) if self.p.transpose_a else lhs[-2:]
        k2, n = (rhs[-1], rhs[-2]) if self.p.transpose_b else rhs[-2:]
        if k != k2:
            raise self.shape_error(in_shapes, f"contracted sizes differ: {k} (lhs) and {k2} (rhs)")
        return list(in_shapes), [(*lhs[:-2], m, n)]

    def forward(self, xp, inputs, is_train, rt):
        a, b = inputs
        a = _swap(xp, a) if self.p.transpose_a else a
        b = _swap(xp, b) if self.p.transpose_b else b
        return [xp.matmul(a, b)], None

    def backward(self, xp, out_grads, inputs, outputs, state, rt):
        da, db = matmul_grads(xp, inputs[0], inputs[1], self.p.transpose_a, self.p.transpose_b,
                              out_grads[0])
        return [da, db]


@register
class LinalgGemm2(Operator):
    """out = alpha * op(A) @ op(B) over a batch; rows sit on ``axis``, columns on the last axis."""

    op_name = "_linalg_gemm2"
    aliases = ("linalg_gemm2",)
    params = (P("transpose_a", parse_bool, False), P("transpose_b", parse_bool, False),
              P("alpha", parse_float, 1.0), P("axis", parse_int, -2))

    def arguments(self) -> list[str]:
        return ["A", "B"]

    def _row_axis(self, in_shapes: list, ndim: int) -> int:
        if ndim < 2 or not -ndim <= self.p.axis < ndim or self.p.axis % ndim == ndim - 1:
            raise self.shape_error(in_shapes, f"axis={self.p.axis} must name a row axis other "
                                              f"than the last of {ndim} axes")
        return self.p.axis % ndim

    def _standard(self, in_shapes: list, shape: Shape) -> Shape:
        """The shape with the row axis moved to -2 (MXNet: swapaxes, gemm, swapaxes)."""
        axis, out = self._row_axis(in_shapes, len(shape)), list(shape)
        out[axis], out[-2] = out[-2], out[axis]
        return tuple(out)

    def infer_shape(self, in_shapes):
        a, b = in_shapes
        if a is None or b is None:
            return list(in_shapes), [None]
        if len(a) != len(b):
            raise self.shape_error(in_shapes, "A and B need the same number of axes")
        a, b = self._standard(in_shapes, a), self._standard(in_shapes, b)
        m, k = (a[-1], a[-2]) if self.p.transpose_a else a[-2:]
        k2, n = (b[-1], b[-2]) if self.p.transpose_b else b[-2:]
        if a[:-2] != b[:-2] or k != k2:
            raise self.shape_error(in_shapes, f"batch axes must match and contracted sizes agree, "
                                              f"got {k} (A) and {k2} (B)")
        return list(in_shapes), [self._standard(in_shapes, (*a[:-2], m, n))]

    def _to_rows(self, xp: Any, x: Any) -> Any:
        return xp.swapaxes(x, self._row_axis([x.shape], x.ndim), -2)

    def forward(self, xp, inputs, is_train, rt):
        a, b = (self._to_rows(xp, x) for x in inputs)
        a = _swap(xp, a) if self.p.transpose_a else a
        b = _swap(xp, b) if self.p.transpose_b else b
        out = xp.matmul(a, b) * inputs[0].dtype.type(self.p.alpha)
        return [xp.ascontiguousarray(self._to_rows(xp, out))], None

    def backward(self, xp, out_grads, inputs, outputs, state, rt):
        g = self._to_rows(xp, out_grads[0]) * inputs[0].dtype.type(self.p.alpha)
        a, b = (self._to_rows(xp, x) for x in inputs)
        da, db = matmul_grads(xp, a, b, self.p.transpose_a, self.p.transpose_b, g)
        return [xp.ascontiguousarray(self._to_rows(xp, d)) for d in (da, db)]
