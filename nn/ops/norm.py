"""Normalisation layers: BatchNorm and cross-channel LRN.

BatchNorm follows MXNet 1.x's CPU kernel (checked against 1.9.1's numbers in
tests/nn/data/mxnet_ops.*): ``fix_gamma`` ignores gamma in training *and* inference (the
dato-era CPU path applied it at inference); the moving statistics are updated in
**backward**, in place on the aux arrays, with the biased batch variance (so a training
forward alone leaves them unchanged, as in MXNet); with ``output_mean_var`` the ``var``
output is the inverse standard deviation 1/sqrt(var + eps), as MXNet's kernel stores it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from framestream.nn.ops import _cpu_kernels as kernels
from framestream.nn.ops._base import (
    Operator,
    P,
    Runtime,
    parse_bool,
    parse_float,
    parse_int,
    parse_optional,
    register,
)


@register
class BatchNorm(Operator):
    """y = gamma * (x - mean) / sqrt(var + eps) + beta, per channel along ``axis``.

    Training uses the batch mean and biased variance over every axis but ``axis``;
    inference and ``use_global_stats`` use ``moving_mean`` / ``moving_var``.
    """

    uses_cpu_pool = True

    op_name = "BatchNorm"
    params = (
        P("eps", parse_float, 1e-3),
        P("momentum", parse_float, 0.9),
        P("fix_gamma", parse_bool, True),
        P("use_global_stats", parse_bool, False),
        P("output_mean_var", parse_bool, False),
        P("axis", parse_int, 1),
        P("cudnn_off", parse_bool, False),
        # Quantisation calibration ranges (1.x); accepted so 1.x JSON loads, not used.
        P("min_calib_range", parse_optional(parse_float), None),
        P("max_calib_range", parse_optional(parse_float), None),
    )

    def check_params(self) -> None:
        if self.p.eps < 0:
            raise self.param_error(f"eps must be non-negative, got {self.p.eps}")

    def arguments(self) -> list[str]:
        return ["data", "gamma", "beta"]

    def aux_states(self) -> list[str]:
        return ["moving_mean", "moving_var"]

    def outputs(self) -> list[str]:
        return ["output", "mean", "var"] if self.p.output_mean_var else ["output"]

    def infer_shape(self, in_shapes):
        shapes = list(in_shapes)
        data = shapes[0]
        if data is None:
            return shapes, [None] * len(self.outputs())
        ndim = len(data)
        if not -ndim <= self.p.axis < ndim:
            raise self.shape_error(shapes, f"axis {self.p.axis} is out of range for data with {ndim} axes")
        channels = (data[self.p.axis % ndim],)
        for index in range(1, 5):
            self.assign(shapes, index, channels)
        return shapes, [data, channels, channels][: len(self.outputs())]

    def _layout(self, x: Any) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """The axes reduced over, and the shape that broadcasts a (C,) vector against x."""
        axis = self.p.axis % x.ndim
        reduce = tuple(i for i in range(x.ndim) if i != axis)
        bshape = tuple(x.shape[axis] if i == axis else 1 for i in range(x.ndim))
        return reduce, bshape

    def input_attrs(self, slot: str) -> dict[str, str]:
        """MXNet marks the moving statistics' initial values on the variables it makes."""
        return {"moving_mean": {"__init__": '["zero", {}]'},
                "moving_var": {"__init__": '["one", {}]'}}.get(slot, {})

    def _compiled(self, xp: Any, x: Any) -> bool:
        return self.p.axis % x.ndim == 1 and x.ndim >= 2 and kernels.usable(xp, x)

    def forward(self, xp, inputs, is_train, rt: Runtime):
        x, gamma, beta, moving_mean, moving_var = inputs
        reduce, bshape = self._layout(x)
        batch_stats = is_train and not self.p.use_global_stats
        if self._compiled(xp, x):
            # x-hat is recomputed in backward from x, mean and invstd rather than stored.
            if batch_stats:
                mean, var = kernels.bn_stats(x)
            else:
                mean, var = moving_mean.astype(x.dtype), moving_var.astype(x.dtype)
            invstd = 1 / np.sqrt(var + self.p.eps)
            scale = invstd if self.p.fix_gamma else invstd * gamma
            out = kernels.bn_apply(x, mean, scale, beta)
            outs = [out, mean, invstd] if self.p.output_mean_var else [out]
            return outs, (None, invstd, mean, var, batch_stats)
        if batch_stats:
            mean = x.mean(axis=reduce)
            centred = x - mean.reshape(bshape)
            var = (centred * centred).mean(axis=reduce)
        else:
            mean, var = moving_mean.astype(x.dtype), moving_var.astype(x.dtype)
            centred = x - mean.reshape(bshape)
        invstd = 1 / xp.sqrt(var + self.p.eps)
        xhat = centred * invstd.reshape(bshape)
        out = xhat if self.p.fix_gamma else xhat * gamma.reshape(bshape)
        out = out + beta.reshape(bshape)
        outs = [out, mean, invstd] if self.p.output_mean_var else [out]
        return outs, (xhat, invstd, mean, var, batch_stats)

    def _update_moving(self, moving_mean: Any, moving_var: Any, mean: Any, var: Any) -> None:
        """MXNet 1.x folds the batch statistics into the moving ones in backward, in place."""
        m = self.p.momentum
        moving_mean[...] = moving_mean * m + mean * (1 - m)
        moving_var[...] = moving_var * m + var * (1 - m)

    def backward(self, xp, out_grads, inputs, outputs, state, rt):
        """Gradients from the ``output`` head only (MXNet ignores those of mean and var)."""
        x, gamma, moving_mean, moving_var = inputs[0], inputs[1], inputs[-2], inputs[-1]
        xhat, invstd, mean, var, batch_stats = state
        reduce, bshape = self._layout(x)
        dy = out_grads[0]
        if xhat is None:  # the compiled forward
            scale = invstd if self.p.fix_gamma else invstd * gamma
            dx, dgamma, dbeta = kernels.bn_grad(x, dy, mean, invstd, scale, batch_stats)
            if batch_stats:
                self._update_moving(moving_mean, moving_var, mean, var)
            return [dx, xp.zeros_like(gamma) if self.p.fix_gamma else dgamma, dbeta]
        dbeta = dy.sum(axis=reduce)
        dgamma = (dy * xhat).sum(axis=reduce)
        scale = invstd if self.p.fix_gamma else invstd * gamma
        if batch_stats:
            count = x.size // x.shape[self.p.axis % x.ndim]
            dx = (dy - dbeta.reshape(bshape) / count - xhat * (dgamma.reshape(bshape) / count))
            dx = dx * scale.reshape(bshape)
            self._update_moving(moving_mean, moving_var, mean, var)
        else:
            dx = dy * scale.reshape(bshape)
        if self.p.fix_gamma:
            dgamma = xp.zeros_like(gamma)
        return [dx, dgamma, dbeta]


def _channel_window_sum(xp: Any, v: Any, low: int, high: int) -> Any:
    """out[:, c] = sum of v[:, c + low : c + high + 1] along axis 1, clipped at the edges."""
    channels = v.shape[1]
    out = xp.zeros_like(v)
    for offset in range(low, high + 1):
        if abs(offset) >= channels:
            continue
        if offset >= 0:
            out[:, : channels - offset] += v[:, offset:]
        else:
            out[:, -offset:] += v[:, : channels + offset]
    return out


@register
class LRN(Operator):
    """Local response normalisation across channels (AlexNet).

    out = x * (knorm + alpha / nsize * sum of x^2 over the nsize-channel window)^-beta,
    the window for channel c being [c - nsize//2, c - nsize//2 + nsize) as in mshadow's
    ``chpool`` (centred for odd nsize).
    """

    op_name = "LRN"
    params = (
        P("alpha", parse_float, 1e-4),
        P("beta", parse_float, 0.75),
        P("knorm", parse_float, 2.0),
        P("nsize", parse_int),
    )

    def check_params(self) -> None:
        if self.p.nsize < 1:
            raise self.param_error(f"nsize must be at least 1, got {self.p.nsize}")

    def infer_shape(self, in_shapes):
        shapes = list(in_shapes)
        if shapes[0] is not None and len(shapes[0]) != 4:
            raise self.shape_error(shapes, f"LRN needs 4-D data (N, C, H, W), got {len(shapes[0])} axes")
        return shapes, [shapes[0]]

    def _window(self) -> tuple[int, int]:
        low = -(self.p.nsize // 2)
        return low, low + self.p.nsize - 1

    def forward(self, xp, inputs, is_train, rt: Runtime):
        x = inputs[0]
        low, high = self._window()
        norm = _channel_window_sum(xp, x * x, low, high) * (self.p.alpha / self.p.nsize) + self.p.knorm
        return [x * norm ** -self.p.beta], norm

    def backward(self, xp, out_grads, inputs, outputs, state, rt):
        dy, x, norm = out_grads[0], inputs[0], state
        low, high = self._window()
        scaled = norm ** -self.p.beta
        # d out_c / d x_j reaches every channel c whose window holds j: the mirrored window.
        through_norm = _channel_window_sum(xp, dy * x * scaled / norm, -high, -low)
        factor = -2 * self.p.beta * self.p.alpha / self.p.nsize
        return [dy * scaled + x * through_norm * factor]
