"""Activations, softmax and dropout.

Activation, LeakyReLU, the unary ``relu`` / ``sigmoid`` / ``tanh``, ``softmax``,
``log_softmax``, SoftmaxActivation and Dropout. Every elementwise function is a pair
(value, derivative) in one table, so Activation and the standalone unary ops share it.
Bodies use only ``xp`` so one implementation serves NumPy and CuPy; Python scalars mix
with arrays without promoting float32 (NEP 50), and ``where`` always picks between
arrays, never between Python numbers, so float32 stays float32.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from framestream.nn.ops import _cpu_kernels as kernels
from framestream.nn.ops._base import (
    Operator,
    P,
    Runtime,
    parse_bool,
    parse_enum,
    parse_float,
    parse_int,
    parse_optional,
    parse_shape,
    register,
)

# ---------------------------------------------------------------- shared numerics


def sigmoid(xp: Any, x: Any) -> Any:
    """1 / (1 + e^-x) without overflow: exp only ever sees -|x|."""
    e = xp.exp(-xp.abs(x))
    return xp.where(x >= 0, 1 / (1 + e), e / (1 + e))


def softplus(xp: Any, x: Any) -> Any:
    """log(1 + e^x) = max(x, 0) + log1p(e^-|x|), finite for any x."""
    return xp.maximum(x, 0) + xp.log1p(xp.exp(-xp.abs(x)))


def stable_softmax(xp: Any, x: Any, axis: int) -> Any:
    """Softmax along ``axis`` after subtracting the maximum, so exp never overflows."""
    e = xp.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def stable_log_softmax(xp: Any, x: Any, axis: int) -> Any:
    shifted = x - x.max(axis=axis, keepdims=True)
    return shifted - xp.log(xp.exp(shifted).sum(axis=axis, keepdims=True))


def softmax_backward(xp: Any, dy: Any, y: Any, axis: int) -> Any:
    """Gradient of softmax given its output: y * (dy - sum(dy * y))."""
    return y * (dy - (dy * y).sum(axis=axis, keepdims=True))


# Cephes erf/erfc rational approximations (public domain, S. Moshier): NumPy has no erf,
# and GELU in MXNet 1.x is the exact erf form. Accurate to about 1e-16 in float64.
_ERF_T = (9.60497373987051638749e0, 9.00260197203842689217e1, 2.23200534594684319226e3,
          7.00332514112805075473e3, 5.55923013010394962768e4)
_ERF_U = (1.0, 3.35617141647503099647e1, 5.21357949780152679795e2, 4.59432382970980127987e3,
          2.26290000613890934246e4, 4.92673942608635921086e4)
_ERFC_P = (2.46196981473530512524e-10, 5.64189564831068821977e-1, 7.46321056442269912687e0,
           4.86371970985681366614e1, 1.96520832956077098242e2, 5.26445194995477358631e2,
           9.34528527171957607540e2, 1.02755188689515710272e3, 5.57535335369399327526e2)
_ERFC_Q = (1.0, 1.32281951154744992508e1, 8.67072140885989742329e1, 3.54937778887819891062e2,
           9.75708501743205489753e2, 1.82390916687909736289e3, 2.24633760818710981792e3,
           1.65666309194161350182e3, 5.57535340817727675546e2)
_ERFC_R = (5.64189583547755073984e-1, 1.27536670759978104416e0, 5.01905042251180477414e0,
           6.16021097993053585195e0, 7.40974269950448939160e0, 2.97886665372100240670e0)
_ERFC_S = (1.0, 2.26052863220117276590e0, 9.39603524938001434673e0, 1.20489539808096656605e1,
           1.70814450747565897222e1, 9.60896809063285878198e0, 3.36907645100081516050e0)


def _poly(x: Any, coefficients: tuple[float, ...]) -> Any:
    result = x * 0 + coefficients[0]
    for c in coefficients[1:]:
        result = result * x + c
    return result


def erf(xp: Any, x: Any) -> Any:
    """The error function, elementwise, in the dtype of ``x``."""
    a = xp.abs(x)
    z = xp.minimum(x * x, 1)  # the small branch only matters where |x| <= 1
    small = x * _poly(z, _ERF_T) / _poly(z, _ERF_U)
    a = xp.clip(a, 1, 10)  # erfc(10) underflows to 0 in float64
    ratio = xp.where(a < 8, _poly(a, _ERFC_P) / _poly(a, _ERFC_Q), _poly(a, _ERFC_R) / _poly(a, _ERFC_S))
    large = xp.sign(x) * (1 - xp.exp(-a * a) * ratio)
    return xp.where(xp.abs(x) <= 1, small, large)


# ---------------------------------------------------------------- elementwise activations


@dataclass(frozen=True)
class _Elementwise:
    """An activation as its value and its derivative (given input x and output y)."""

    value: Callable[[Any, Any], Any]
    grad: Callable[[Any, Any, Any], Any]


def _mish(xp: Any, x: Any) -> Any:
    return x * xp.tanh(softplus(xp, x))


def _mish_grad(xp: Any, x: Any, y: Any) -> Any:
    t = xp.tanh(softplus(xp, x))
    return t + x * (1 - t * t) * sigmoid(xp, x)


_ACTIVATIONS: dict[str, _Elementwise] = {
    "relu": _Elementwise(lambda xp, x: xp.maximum(x, 0), lambda xp, x, y: (x > 0).astype(x.dtype)),
    "sigmoid": _Elementwise(sigmoid, lambda xp, x, y: y * (1 - y)),
    "tanh": _Elementwise(lambda xp, x: xp.tanh(x), lambda xp, x, y: 1 - y * y),
    "softrelu": _Elementwise(softplus, lambda xp, x, y: sigmoid(xp, x)),
    "softsign": _Elementwise(lambda xp, x: x / (1 + xp.abs(x)), lambda xp, x, y: 1 / (1 + xp.abs(x)) ** 2),
    "log_sigmoid": _Elementwise(lambda xp, x: -softplus(xp, -x), lambda xp, x, y: sigmoid(xp, -x)),
    "mish": _Elementwise(_mish, _mish_grad),
}


def activation_grad(xp: Any, act: str, dy: Any, x: Any, y: Any) -> Any:
    """dy times the activation's derivative; one compiled pass for relu, sigmoid and tanh."""
    if act in kernels.ACTIVATION_GRADS and kernels.usable(xp, dy, y):
        return kernels.activation_grad(act, dy, y)
    return dy * _ACTIVATIONS[act].grad(xp, x, y)


@register
class Activation(Operator):
    """An elementwise nonlinearity chosen by ``act_type``."""

    op_name = "Activation"
    params = (P("act_type", parse_enum(*_ACTIVATIONS)),)

    def forward(self, xp, inputs, is_train, rt: Runtime):
        return [_ACTIVATIONS[self.p.act_type].value(xp, inputs[0])], None

    def backward(self, xp, out_grads, inputs, outputs, state, rt):
        return [activation_grad(xp, self.p.act_type, out_grads[0], inputs[0], outputs[0])]


class _UnaryActivation(Operator):
    """MXNet 1.x's plain unary ops (``mx.sym.relu``...): Activation with a fixed type."""

    act: ClassVar[str] = ""

    def forward(self, xp, inputs, is_train, rt: Runtime):
        return [_ACTIVATIONS[self.act].value(xp, inputs[0])], None

    def backward(self, xp, out_grads, inputs, outputs, state, rt):
        return [activation_grad(xp, self.act, out_grads[0], inputs[0], outputs[0])]


@register
class Relu(_UnaryActivation):
    op_name = "relu"
    act = "relu"


@register
class Sigmoid(_UnaryActivation):
    op_name = "sigmoid"
    act = "sigmoid"


@register
class Tanh(_UnaryActivation):
    op_name = "tanh"
    act = "tanh"


# ---------------------------------------------------------------- LeakyReLU family

_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_LAMBDA = 1.0507009873554804934193349852946


@register
class LeakyReLU(Operator):
    """Leaky, parametric (per-channel ``gamma``), randomised, exponential and Gaussian ReLUs."""

    op_name = "LeakyReLU"
    params = (
        P("act_type", parse_enum("leaky", "prelu", "rrelu", "elu", "selu", "gelu"), "leaky"),
        P("slope", parse_float, 0.25),
        P("lower_bound", parse_float, 0.125),
        P("upper_bound", parse_float, 0.334),
    )

    def check_params(self) -> None:
        if self.p.act_type == "rrelu" and self.p.lower_bound > self.p.upper_bound:
            raise self.param_error(f"rrelu needs lower_bound <= upper_bound, got "
                                   f"{self.p.lower_bound} > {self.p.upper_bound}")

    def arguments(self) -> list[str]:
        return ["data", "gamma"] if self.p.act_type == "prelu" else ["data"]

    def outputs(self) -> list[str]:
        # MXNet 1.9.1 lists rrelu's random slopes as a second output, 'mask'.
        return ["output", "mask"] if self.p.act_type == "rrelu" else ["output"]

    def infer_shape(self, in_shapes):
        shapes = list(in_shapes)
        data = shapes[0]
        if data is None or self.p.act_type != "prelu":
            return shapes, [data] * len(self.outputs())
        if len(data) < 2:
            raise self.shape_error(shapes, "prelu needs data with a channel axis (at least 2 axes)")
        gamma = shapes[1]
        # MXNet 1.x also accepts a single shared slope of shape (1,).
        if gamma is None or tuple(gamma) != (1,):
            self.assign(shapes, 1, (data[1],))
        return shapes, [data]

    def _gamma(self, gamma: Any, ndim: int) -> Any:
        return gamma.reshape((-1,) + (1,) * (ndim - 2))

    def forward(self, xp, inputs, is_train, rt: Runtime):
        x = inputs[0]
        kind = self.p.act_type
        state = None
        if kind == "leaky":
            out = xp.where(x > 0, x, x * self.p.slope)
        elif kind == "prelu":
            out = xp.where(x > 0, x, x * self._gamma(inputs[1], x.ndim))
        elif kind == "rrelu":
            if is_train:  # one random slope per element, kept for backward
                low, high = self.p.lower_bound, self.p.upper_bound
                state = rt.uniform(x.shape, x.dtype) * (high - low) + low
                mask = state
            else:  # the mean slope; MXNet's mask output is zeros then
                state = (self.p.lower_bound + self.p.upper_bound) / 2
                mask = xp.zeros_like(x)
            return [xp.where(x > 0, x, x * state), mask], state
        elif kind == "elu":
            out = xp.where(x > 0, x, xp.expm1(xp.minimum(x, 0)) * self.p.slope)
        elif kind == "selu":
            neg = xp.expm1(xp.minimum(x, 0)) * _SELU_ALPHA
            out = xp.where(x > 0, x, neg) * _SELU_LAMBDA
        else:  # gelu, MXNet 1.x's exact erf form
            out = x * (1 + erf(xp, x * (1 / math.sqrt(2)))) * 0.5
        return [out], state

    def backward(self, xp, out_grads, inputs, outputs, state, rt):
        dy, x, y = out_grads[0], inputs[0], outputs[0]
        kind = self.p.act_type
        if kind == "leaky":
            return [xp.where(x > 0, dy, dy * self.p.slope)]
        if kind == "prelu":
            gamma = inputs[1]
            dx = xp.where(x > 0, dy, dy * self._gamma(gamma, x.ndim))
            contrib = xp.where(x > 0, 0 * x, x) * dy
            axes = tuple(i for i in range(x.ndim) if i != 1) if gamma.size > 1 else None
            return [dx, contrib.sum(axis=axes).reshape(gamma.shape)]
        if kind == "rrelu":
            return [xp.where(x > 0, dy, dy * state)]
        if kind == "elu":
            return [xp.where(x > 0, dy, dy * (y + self.p.slope))]
        if kind == "selu":  # the true derivative; 1.9.1 gives lambda * (y + alpha) for x <= 0
            return [xp.where(x > 0, dy * _SELU_LAMBDA, dy * (y + _SELU_LAMBDA * _SELU_ALPHA))]
        cdf = (1 + erf(xp, x * (1 / math.sqrt(2)))) * 0.5
        pdf = xp.exp(x * x * -0.5) * (1 / math.sqrt(2 * math.pi))
        return [dy * (cdf + x * pdf)]


# ---------------------------------------------------------------- softmax family


def _check_axis(op: Operator, shapes: list, ndim: int, axis: int) -> int:
    if not -ndim <= axis < ndim:
        raise op.shape_error(shapes, f"axis {axis} is out of range for data with {ndim} axes")
    return axis % ndim


class _SoftmaxBase(Operator):
    params = (
        P("axis", parse_int, -1),
        P("temperature", parse_optional(parse_float), None),
        P("use_length", parse_bool, False),
    )
    log: ClassVar[bool] = False

    def check_params(self) -> None:
        if self.p.use_length:
            raise self.param_error("use_length=True is not supported")
        if self.p.temperature is not None and self.p.temperature == 0:
            raise self.param_error("temperature must not be 0")

    def infer_shape(self, in_shapes):
        shapes = list(in_shapes)
        if shapes[0] is not None:
            _check_axis(self, shapes, len(shapes[0]), self.p.axis)
        return shapes, [shapes[0]]

    def forward(self, xp, inputs, is_train, rt: Runtime):
        x = inputs[0]
        if self.p.temperature is not None and self.p.temperature != 1:
            x = x * (1 / self.p.temperature)
        fn = stable_log_softmax if self.log else stable_softmax
        out = fn(xp, x, self.p.axis)
        return [out], None

    def backward(self, xp, out_grads, inputs, outputs, state, rt):
        axis = self.p.axis
        dy, y = out_grads[0], outputs[0]
        if self.log:
            dx = dy - xp.exp(y) * dy.sum(axis=axis, keepdims=True)
        else:
            dx = softmax_backward(xp, dy, y, axis)
        if self.p.temperature is not None and self.p.temperature != 1:
            dx = dx * (1 / self.p.temperature)
        return [dx]


@register
class SoftmaxOp(_SoftmaxBase):
    """softmax(x / temperature) along ``axis`` (the 1.x ``mx.sym.softmax``, not a loss)."""

    op_name = "softmax"


@register
class LogSoftmaxOp(_SoftmaxBase):
    """log(softmax(x / temperature)) along ``axis``, computed without forming softmax."""

    op_name = "log_softmax"
    log = True


@register
class SoftmaxActivation(Operator):
    """Softmax over the last axis (``instance``) or over axis 1 (``channel``).

    ``instance`` is MXNet's ``FlatTo2D`` view (rows = all leading axes), so for data of
    more than 2 axes it normalises the last axis, not the whole sample, as 1.9.1 does.
    Backward is the true gradient of that forward (1.9.1's instance backward reduces over
    axis 1 instead, which only agrees for 2-D data).
    """

    op_name = "SoftmaxActivation"
    params = (P("mode", parse_enum("instance", "channel"), "instance"),)

    def infer_shape(self, in_shapes):
        shapes = list(in_shapes)
        if shapes[0] is not None and self.p.mode == "channel" and len(shapes[0]) < 3:
            raise self.shape_error(shapes, "mode='channel' needs data of at least 3 axes (N, C, ...)")
        return shapes, [shapes[0]]

    def _view(self, x: Any) -> Any:
        return x if self.p.mode == "channel" else x.reshape(-1, x.shape[-1])

    def forward(self, xp, inputs, is_train, rt: Runtime):
        x = inputs[0]
        return [stable_softmax(xp, self._view(x), 1).reshape(x.shape)], None

    def backward(self, xp, out_grads, inputs, outputs, state, rt):
        y = outputs[0]
        dx = softmax_backward(xp, self._view(out_grads[0]), self._view(y), 1)
        return [dx.reshape(y.shape)]


# ---------------------------------------------------------------- Dropout


@register
class Dropout(Operator):
    """Inverted dropout: keep each value with probability 1 - p and scale it by 1 / (1 - p).

    Active in training, or always with ``mode='always'``; otherwise the identity. ``axes``
    share one mask value along those axes (variational dropout). The mask is the state.
    """

    op_name = "Dropout"
    params = (
        P("p", parse_float, 0.5),
        P("mode", parse_enum("training", "always"), "training"),
        P("axes", parse_shape, ()),
        P("cudnn_off", parse_optional(parse_bool), False),
    )

    def check_params(self) -> None:
        if not 0 <= self.p.p <= 1:
            raise self.param_error(f"p must be in [0, 1], got {self.p.p}")

    def infer_shape(self, in_shapes):
        shapes = list(in_shapes)
        data = shapes[0]
        if data is not None:
            for axis in self.p.axes:
                _check_axis(self, shapes, len(data), axis)
        return shapes, [data]

    def forward(self, xp, inputs, is_train, rt: Runtime):
        x = inputs[0]
        if not (is_train or self.p.mode == "always") or self.p.p == 0:
            return [x.copy()], None
        shared = {a % x.ndim for a in self.p.axes}
        mask_shape = tuple(1 if i in shared else d for i, d in enumerate(x.shape))
        keep = 1 - self.p.p
        if keep == 0:
            mask = xp.zeros(mask_shape, dtype=x.dtype)
        else:
            mask = (rt.uniform(mask_shape, x.dtype) < keep).astype(x.dtype) * (1 / keep)
        return [x * mask], mask

    def backward(self, xp, out_grads, inputs, outputs, state, rt):
        dy = out_grads[0]
        return [dy.copy() if state is None else dy * state]
