"""Element-wise arithmetic: equal-shape, broadcasting, scalar and unary ops, plus ElementWiseSum.

MXNet has dozens of these and they differ only in a formula and its derivative, so each
family is one class and each op one row of a table: (name, aliases, forward, gradient).
The table builds a subclass per op with ``type(...)`` and registers it like any other op.
Scalars are converted to the input's dtype first, so float32 stays float32. Gradients are
always fresh arrays (never the head gradient itself), so an executor may accumulate into them.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, ClassVar

from framestream.nn.ops._base import (
    Operator,
    P,
    Shape,
    parse_bool,
    parse_float,
    parse_int,
    register,
)

Fn = Callable[..., Any]


def _fresh(grad: Any, *taken: Any) -> Any:
    """``grad`` itself unless it is an array already handed out (then a copy)."""
    return grad.copy() if any(grad is t for t in taken) else grad


def _make(base: type[Operator], name: str, aliases: tuple[str, ...], fn: Fn, grad: Fn,
          doc: str) -> type[Operator]:
    """Build and register one table row as a subclass of ``base``."""
    cls = type(f"Op{name}", (base,), {
        "op_name": name, "aliases": aliases, "fn": staticmethod(fn), "grad": staticmethod(grad),
        "__doc__": doc, "__module__": __name__,
    })
    return register(cls)


# ---------------------------------------------------------------- ElementWiseSum


@register
class ElementWiseSum(Operator):
    """Sum of ``num_args`` inputs of one shape (how MXNet adds up shared gradients)."""

    op_name = "add_n"  # MXNet 1.x's name; the dato era's ElementWiseSum is its alias
    aliases = ("ElementWiseSum",)
    variadic = True
    params = (P("num_args", parse_int),)

    def check_params(self) -> None:
        if self.p.num_args < 1:
            raise self.param_error(f"num_args must be at least 1, got {self.p.num_args}")

    def infer_shape(self, in_shapes):
        shapes = list(in_shapes)
        known = next((s for s in shapes if s is not None), None)
        if known is None:
            return shapes, [None]
        for i in range(len(shapes)):
            self.assign(shapes, i, known)
        return shapes, [tuple(known)]

    def forward(self, xp, inputs, is_train, rt):
        out = inputs[0].copy()
        for a in inputs[1:]:
            out += a
        return [out], None

    def backward(self, xp, out_grads, inputs, outputs, state, rt):
        return [out_grads[0].copy() for _ in inputs]


# ---------------------------------------------------------------- two-input ops


class _Binary(Operator):
    """lhs (op) rhs with equal shapes; knowing one input's shape fills in the other."""

    fn: ClassVar[Fn]  # (xp, lhs, rhs) -> out
    grad: ClassVar[Fn]  # (xp, g, lhs, rhs, out) -> (d lhs, d rhs), at the output's shape

    def arguments(self) -> list[str]:
        return ["lhs", "rhs"]

    def infer_shape(self, in_shapes):
        shapes = list(in_shapes)
        known = next((s for s in shapes if s is not None), None)
        if known is None:
            return shapes, [None]
        for i in range(2):
            self.assign(shapes, i, known)
        return shapes, [tuple(known)]

    def forward(self, xp, inputs, is_train, rt):
        return [self.fn(xp, inputs[0], inputs[1])], None

    def backward(self, xp, out_grads, inputs, outputs, state, rt):
        g = out_grads[0]
        dl, dr = self.grad(xp, g, inputs[0], inputs[1], outputs[0])
        dl = self._fit(dl, inputs[0].shape)
        dr = self._fit(dr, inputs[1].shape)
        return [_fresh(dl, g), _fresh(dr, g, dl)]

    def _fit(self, grad: Any, shape: Shape) -> Any:
        return grad


def broadcast_shape(lhs: Shape, rhs: Shape) -> Shape | None:
    """NumPy's (and MXNet's) broadcast of two shapes aligned on the right; None if they clash.

    >>> broadcast_shape((2, 1, 4), (3, 1))
    (2, 3, 4)
    """
    n = max(len(lhs), len(rhs))
    lhs, rhs = (1,) * (n - len(lhs)) + tuple(lhs), (1,) * (n - len(rhs)) + tuple(rhs)
    out = []
    for a, b in zip(lhs, rhs):
        if a != b and 1 not in (a, b):
            return None
        out.append(b if a == 1 else a)
    return tuple(out)


class _Broadcast(_Binary):
    """lhs (op) rhs with NumPy broadcasting; each gradient is summed back to its input's shape."""

    def infer_shape(self, in_shapes):
        lhs, rhs = in_shapes
        if lhs is None or rhs is None:
            return list(in_shapes), [None]
        out = broadcast_shape(lhs, rhs)
        if out is None:
            raise self.shape_error(in_shapes, "shapes do not broadcast: each axis (aligned on the "
                                              "right) must be equal or 1 in one of them")
        return list(in_shapes), [out]

    def _fit(self, grad: Any, shape: Shape) -> Any:
        shape = tuple(shape)
        if tuple(grad.shape) == shape:
            return grad
        lead = grad.ndim - len(shape)
        axes = tuple(range(lead)) + tuple(lead + i for i, d in enumerate(shape)
                                          if d == 1 and grad.shape[lead + i] != 1)
        return grad.sum(axis=axes, keepdims=True).reshape(shape)


# Shared formulas of the equal-shape and broadcasting families: (forward, gradient).
_ARITH: dict[str, tuple[Fn, Fn]] = {
    "add": (lambda xp, a, b: a + b, lambda xp, g, a, b, o: (g, g)),
    "sub": (lambda xp, a, b: a - b, lambda xp, g, a, b, o: (g, -g)),
    "mul": (lambda xp, a, b: a * b, lambda xp, g, a, b, o: (g * b, g * a)),
    "div": (lambda xp, a, b: a / b, lambda xp, g, a, b, o: (g / b, -g * o / b)),
    "power": (lambda xp, a, b: xp.power(a, b),
              lambda xp, g, a, b, o: (g * b * xp.power(a, b - 1), g * o * xp.log(a))),
    # MXNet hands ties to lhs (>= / <=), as its _backward_maximum / _backward_minimum do.
    "maximum": (lambda xp, a, b: xp.maximum(a, b),
                lambda xp, g, a, b, o: (g * (a >= b), g * (a < b))),
    "minimum": (lambda xp, a, b: xp.minimum(a, b),
                lambda xp, g, a, b, o: (g * (a <= b), g * (a > b))),
}

_BINARY_OPS = [
    (_Binary, "elemwise_add", ("_add", "_plus", "_Plus"), "add"),
    (_Binary, "elemwise_sub", ("_sub", "_minus", "_Minus"), "sub"),
    (_Binary, "elemwise_mul", ("_mul", "_Mul"), "mul"),
    (_Binary, "elemwise_div", ("_div", "_Div"), "div"),
    (_Binary, "_power", ("_Power",), "power"),
    (_Binary, "_maximum", ("_Maximum",), "maximum"),
    (_Binary, "_minimum", ("_Minimum",), "minimum"),
    (_Broadcast, "broadcast_add", ("broadcast_plus",), "add"),
    (_Broadcast, "broadcast_sub", ("broadcast_minus",), "sub"),
    (_Broadcast, "broadcast_mul", (), "mul"),
    (_Broadcast, "broadcast_div", (), "div"),
    (_Broadcast, "broadcast_power", (), "power"),
    (_Broadcast, "broadcast_maximum", (), "maximum"),
    (_Broadcast, "broadcast_minimum", (), "minimum"),
]

for _base, _name, _aliases, _kind in _BINARY_OPS:
    _how = "with broadcasting" if _base is _Broadcast else "of equal shapes"
    _make(_base, _name, _aliases, *_ARITH[_kind], f"Element-wise {_kind} {_how}.")


# ---------------------------------------------------------------- array-and-scalar ops


class _Scalar(Operator):
    """data (op) scalar; the scalar is cast to data's dtype so float32 is not promoted.

    ``is_int`` (MXNet 1.9's hint that the Python scalar was an int) is accepted and ignored.
    """

    params = (P("scalar", parse_float, 1.0), P("is_int", parse_bool, True))
    fn: ClassVar[Fn]  # (xp, x, s) -> out
    grad: ClassVar[Fn]  # (xp, g, x, s, out) -> d data

    def forward(self, xp, inputs, is_train, rt):
        x = inputs[0]
        return [self.fn(xp, x, x.dtype.type(self.p.scalar))], None

    def backward(self, xp, out_grads, inputs, outputs, state, rt):
        x, g = inputs[0], out_grads[0]
        return [_fresh(self.grad(xp, g, x, x.dtype.type(self.p.scalar), outputs[0]), g)]


def _log_of(s: Any) -> float:
    return math.log(s) if s > 0 else math.nan


_SCALAR_OPS = [
    ("_plus_scalar", ("_PlusScalar",), lambda xp, x, s: x + s, lambda xp, g, x, s, o: g),
    ("_minus_scalar", ("_MinusScalar",), lambda xp, x, s: x - s, lambda xp, g, x, s, o: g),
    ("_rminus_scalar", ("_RMinusScalar",), lambda xp, x, s: s - x, lambda xp, g, x, s, o: -g),
    ("_mul_scalar", ("_MulScalar",), lambda xp, x, s: x * s, lambda xp, g, x, s, o: g * s),
    ("_div_scalar", ("_DivScalar",), lambda xp, x, s: x / s, lambda xp, g, x, s, o: g / s),
    ("_rdiv_scalar", ("_RDivScalar",), lambda xp, x, s: s / x,
     lambda xp, g, x, s, o: -g * o / x),
    ("_power_scalar", ("_PowerScalar",), lambda xp, x, s: xp.power(x, s),
     lambda xp, g, x, s, o: g * s * xp.power(x, s - 1)),
    ("_rpower_scalar", ("_RPowerScalar",), lambda xp, x, s: xp.power(s, x),
     lambda xp, g, x, s, o: g * o * _log_of(s)),
    ("_maximum_scalar", ("_MaximumScalar",), lambda xp, x, s: xp.maximum(x, s),
     lambda xp, g, x, s, o: g * (x >= s)),
    ("_minimum_scalar", ("_MinimumScalar",), lambda xp, x, s: xp.minimum(x, s),
     lambda xp, g, x, s, o: g * (x <= s)),
]

for _name, _aliases, _fn, _grad in _SCALAR_OPS:
    _make(_Scalar, _name, _aliases, _fn, _grad, f"{_name}: an array and the scalar parameter.")


# ---------------------------------------------------------------- one-input ops


class _Unary(Operator):
    """f(data) element-wise."""

    fn: ClassVar[Fn]  # (xp, x) -> out
    grad: ClassVar[Fn]  # (xp, g, x, out) -> d data

    def forward(self, xp, inputs, is_train, rt):
        return [self.fn(xp, inputs[0])], None

    def backward(self, xp, out_grads, inputs, outputs, state, rt):
        g = out_grads[0]
        return [_fresh(self.grad(xp, g, inputs[0], outputs[0]), g)]


_UNARY_OPS = [
    ("negative", lambda xp, x: -x, lambda xp, g, x, o: -g),
    ("abs", lambda xp, x: xp.abs(x), lambda xp, g, x, o: g * xp.sign(x)),
    ("exp", lambda xp, x: xp.exp(x), lambda xp, g, x, o: g * o),
    ("log", lambda xp, x: xp.log(x), lambda xp, g, x, o: g / x),
    ("sqrt", lambda xp, x: xp.sqrt(x), lambda xp, g, x, o: g / (o + o)),
    ("square", lambda xp, x: xp.square(x), lambda xp, g, x, o: g * (x + x)),
]

for _name, _fn, _grad in _UNARY_OPS:
    _make(_Unary, _name, (), _fn, _grad, f"Element-wise {_name}.")

del _base, _name, _aliases, _kind, _how, _fn, _grad
