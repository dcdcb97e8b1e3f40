"""Loss layers and gradient plumbing: SoftmaxOutput, the regression outputs, MakeLoss, BlockGrad.

A loss layer's forward is the prediction (softmax, identity, sigmoid); its backward
ignores the head gradient and returns the gradient of the implied loss, as MXNet's do.
Labels arrive as floats and are truncated to class indices like MXNet's ``static_cast``.
"""

from __future__ import annotations

from typing import Any, ClassVar

from framestream.nn.ops._base import (
    Operator,
    P,
    Runtime,
    parse_bool,
    parse_enum,
    parse_float,
    register,
    size_of,
)
from framestream.nn.ops.activation import sigmoid, stable_softmax


def _valid_count(labels: Any, ignore_label: float) -> int:
    """How many labels differ from ``ignore_label`` (at least 1, to divide by)."""
    valid = int((labels != int(ignore_label)).sum())
    return max(valid, 1)


@register
class SoftmaxOutput(Operator):
    """Softmax forward; backward (softmax - onehot(label)) * grad_scale / valid_cnt.

    The class axis is the flattened rest of each sample by default, axis 1 with
    ``multi_output`` (label (N, spatial)), the last axis with ``preserve_shape``. A label
    of the data's own shape is a probability target: gradient (softmax - label) * grad_scale.
    """

    op_name = "SoftmaxOutput"
    aliases = ("Softmax",)
    is_loss = True
    params = (
        P("grad_scale", parse_float, 1.0),
        P("ignore_label", parse_float, -1.0),
        P("multi_output", parse_bool, False),
        P("use_ignore", parse_bool, False),
        P("preserve_shape", parse_bool, False),
        P("normalization", parse_enum("null", "batch", "valid"), "null"),
        P("out_grad", parse_bool, False),
        P("smooth_alpha", parse_float, 0.0),
    )

    def arguments(self) -> list[str]:
        return ["data", "label"]

    def _label_shapes(self, data: tuple[int, ...]) -> list[tuple[int, ...]]:
        """Accepted label shapes, the one inferred by default first (MXNet's rule).

        Without ``multi_output`` it is data.shape[:-1], also when the softmax runs over
        the flattened rest: (N,) for the usual (N, K) data.
        """
        if self.p.multi_output:
            spatial = data[2:]
            return [(data[0], size_of(spatial)), (data[0], *spatial), (data[0], 1, *spatial)]
        return [data[:-1]]

    def infer_shape(self, in_shapes):
        shapes = list(in_shapes)
        data, label = shapes
        if data is None:
            return shapes, [None]
        if len(data) < 2:
            raise self.shape_error(shapes, "data needs a batch axis and a class axis (at least 2 axes)")
        allowed = self._label_shapes(tuple(data))
        if label is None:
            shapes[1] = allowed[0]
        elif tuple(label) != tuple(data) and tuple(label) not in allowed:
            wanted = " or ".join(str(s) for s in allowed)
            raise self.shape_error(shapes, f"label should have shape {wanted} (or the data's "
                                           f"shape, for probability targets), got {tuple(label)}")
        return shapes, [data]

    def _classes_view(self, x: Any) -> Any:
        """x as (rows, K) or (N, K, spatial): the classes always on axis 1."""
        if self.p.multi_output:
            return x.reshape(x.shape[0], x.shape[1], -1)
        if self.p.preserve_shape:
            return x.reshape(-1, x.shape[-1])
        return x.reshape(x.shape[0], -1)

    def forward(self, xp, inputs, is_train, rt: Runtime):
        x = inputs[0]
        return [stable_softmax(xp, self._classes_view(x), 1).reshape(x.shape)], None

    def backward(self, xp, out_grads, inputs, outputs, state, rt):
        y, label = outputs[0], inputs[1]
        if label.shape == y.shape:  # probability targets: no normalisation (as MXNet)
            grad = (y - label) * self.p.grad_scale
        else:
            grad = self._class_gradient(xp, y, label)
        if self.p.out_grad:
            grad = grad * out_grads[0]
        return [grad, xp.zeros_like(label)]

    def _class_gradient(self, xp: Any, y: Any, label: Any) -> Any:
        probs = self._classes_view(y)
        classes = probs.shape[1]
        if self.p.multi_output:  # labels (N, 1, S) against probs (N, K, S)
            labels = label.reshape(probs.shape[0], 1, -1).astype(xp.int64)
            ids = xp.arange(classes).reshape(1, classes, 1)
        else:  # labels (rows, 1) against probs (rows, K)
            # With data of more than 2 axes and no preserve_shape the label holds more values
            # than rows; MXNet uses the first `rows` of them and counts all for normalisation.
            every = label.reshape(-1).astype(xp.int64)
            labels = every[: probs.shape[0]].reshape(-1, 1)
            ids = xp.arange(classes).reshape(1, classes)
        onehot = (labels == ids).astype(y.dtype)
        alpha = self.p.smooth_alpha
        if alpha > 0 and classes > 1:  # label smoothing: 1 - alpha on gold, the rest spread
            onehot = onehot * (1 - alpha) + (1 - onehot) * (alpha / (classes - 1))
        grad = probs - onehot
        if self.p.use_ignore:
            grad = grad * (labels != int(self.p.ignore_label)).astype(y.dtype)
        norm = self.p.normalization
        counted = labels if self.p.multi_output else every
        if norm == "valid":
            divisor = _valid_count(counted, self.p.ignore_label)
        elif norm == "batch":
            divisor = counted.shape[0]
        else:
            divisor = 1
        if self.p.multi_output and norm != "valid":
            divisor *= probs.shape[2]
        return (grad * (self.p.grad_scale / divisor)).reshape(y.shape)


class _RegressionOutput(Operator):
    """Forward ``value(x)``; backward grad_scale / num_output * ``residual(out - label)``."""

    is_loss: ClassVar[bool] = True
    params = (P("grad_scale", parse_float, 1.0),)

    def arguments(self) -> list[str]:
        return ["data", "label"]

    def infer_shape(self, in_shapes):
        shapes = list(in_shapes)
        data, label = shapes
        if data is None:
            return shapes, [None]
        if label is None:
            # A (N, 1) prediction takes a plain (N,) label, as in MXNet.
            shapes[1] = (data[0],) if len(data) == 2 and data[1] == 1 else tuple(data)
        elif not label or label[0] != data[0] or size_of(label) != size_of(data):
            raise self.shape_error(shapes, f"label should have shape {tuple(data)} (any shape with "
                                           f"{data[0]} rows and {size_of(data)} values), got {tuple(label)}")
        return shapes, [data]

    def value(self, xp: Any, x: Any) -> Any:
        return x.copy()

    def residual(self, xp: Any, diff: Any) -> Any:
        return diff

    def forward(self, xp, inputs, is_train, rt: Runtime):
        return [self.value(xp, inputs[0])], None

    def backward(self, xp, out_grads, inputs, outputs, state, rt):
        out, label = outputs[0], inputs[1]
        num_output = label.size // label.shape[0]
        grad = self.residual(xp, out - label.reshape(out.shape)) * (self.p.grad_scale / num_output)
        return [grad, xp.zeros_like(label)]


@register
class LinearRegressionOutput(_RegressionOutput):
    """Identity forward; gradient of 1/2 (out - label)^2."""

    op_name = "LinearRegressionOutput"


@register
class LogisticRegressionOutput(_RegressionOutput):
    """Sigmoid forward; gradient (sigmoid - label) of the logistic (cross-entropy) loss."""

    op_name = "LogisticRegressionOutput"

    def value(self, xp: Any, x: Any) -> Any:
        return sigmoid(xp, x)


@register
class MAERegressionOutput(_RegressionOutput):
    """Identity forward; gradient sign(out - label) of |out - label|."""

    op_name = "MAERegressionOutput"

    def residual(self, xp: Any, diff: Any) -> Any:
        return xp.sign(diff)


@register
class MakeLoss(Operator):
    """Treat any symbol as a loss: identity forward, gradient grad_scale (normalised) in backward.

    ``batch`` divides by N; ``valid`` by the number of elements above ``valid_thresh``.
    """

    op_name = "MakeLoss"
    is_loss = True
    params = (
        P("grad_scale", parse_float, 1.0),
        P("valid_thresh", parse_float, 0.0),
        P("normalization", parse_enum("null", "batch", "valid"), "null"),
    )

    def forward(self, xp, inputs, is_train, rt: Runtime):
        return [inputs[0].copy()], None

    def backward(self, xp, out_grads, inputs, outputs, state, rt):
        x = inputs[0]
        if self.p.normalization == "batch":
            scale = self.p.grad_scale / x.shape[0]
        elif self.p.normalization == "valid":
            scale = self.p.grad_scale / max(int((x > self.p.valid_thresh).sum()), 1)
        else:
            scale = self.p.grad_scale
        return [xp.full_like(x, scale)]


@register
class BlockGrad(Operator):
    """Identity forward, zero gradient: stops backpropagation through this branch."""

    op_name = "BlockGrad"
    aliases = ("stop_gradient",)

    def forward(self, xp, inputs, is_train, rt: Runtime):
        return [inputs[0].copy()], None

    def backward(self, xp, out_grads, inputs, outputs, state, rt):
        return [xp.zeros_like(inputs[0])]
