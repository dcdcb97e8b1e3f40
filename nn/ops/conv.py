"""Convolution and Deconvolution over (N, C, *spatial): 1-D (NCW), 2-D (NCHW), 3-D (NCDHW).

Both reduce to one batched matrix product over im2col columns laid out as
(G, Cg*prod(kernel), N*prod(out)): a group is a batch entry (depthwise is simply G == C)
and the ungrouped case is a single GEMM. Deconvolution is Convolution's data gradient, and
its own gradients are Convolution's forward and weight gradient with the roles of data and
output swapped, so the three kernels below serve both operators.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from framestream.nn.ops import _cpu_kernels as kernels
from framestream.nn.ops._base import (
    Operator,
    P,
    Shape,
    parse_bool,
    parse_enum,
    parse_int,
    parse_optional,
    parse_shape,
    register,
    size_of,
)
from framestream.nn.ops._im2col import Window, col2im, crop, pad_spatial, windows

# ---------------------------------------------------------------- the three kernels


def _channels_first(a: Any) -> Any:
    """Swap the batch and channel axes: (N, C, ...) <-> (C, N, ...), as a view."""
    return a.swapaxes(0, 1)


def group_rows(xp: Any, y: Any, groups: int) -> Any:
    """(N, F, *out) -> (G, F/G, N*prod(out)): the layout the GEMMs below take outputs in."""
    return xp.ascontiguousarray(_channels_first(y)).reshape(groups, y.shape[1] // groups, -1)


def _columns(xp: Any, x: Any, win: Window, groups: int) -> tuple[Any, Shape]:
    """im2col: the (G, Cg*prod(kernel), N*prod(out)) column matrix of ``x``, and ``out``."""
    d = len(win.kernel)
    out = win.out_shape(x.shape[2:])
    view = windows(xp, pad_spatial(xp, x, win.pad), win, out)  # (N, C, *kernel, *out)
    # One explicit contiguous copy, channels and kernel first: NumPy's reshape of the
    # strided view is several times slower.
    order = (1, *range(2, 2 + d), 0, *range(2 + d, 2 + 2 * d))
    cols = xp.ascontiguousarray(view.transpose(order))
    return cols.reshape(groups, -1, x.shape[0] * size_of(out)), out


def conv_nd(xp: Any, x: Any, w: Any, win: Window, groups: int) -> Any:
    """y[n, f] = sum over the channels c of f's group of corr(x[n, c], w[f, c]); (N, F, *out)."""
    n, f = x.shape[0], w.shape[0]
    cols, out = _columns(xp, x, win, groups)
    y = xp.matmul(w.reshape(groups, f // groups, -1), cols)  # (G, F/G, N*prod(out))
    return xp.ascontiguousarray(_channels_first(y.reshape(f, n, *out)))


def conv_nd_grad_data(xp: Any, dy_rows: Any, w: Any, win: Window, groups: int,
                      x_shape: Shape) -> Any:
    """Gradient of ``conv_nd`` wrt x given ``group_rows(dy)``: GEMM to columns, then col2im."""
    n, c, *spatial = x_shape
    out = win.out_shape(tuple(spatial))
    w_rows = w.reshape(groups, w.shape[0] // groups, -1)
    dcols = xp.matmul(w_rows.transpose(0, 2, 1), dy_rows)  # (G, Cg*prod(kernel), N*prod(out))
    dcols = dcols.reshape(c, *win.kernel, n, *out)
    padded = (n, c, *(s + 2 * p for s, p in zip(spatial, win.pad)))
    dx = col2im(xp, lambda pos: _channels_first(dcols[(slice(None), *pos)]), padded, win, out,
                dy_rows.dtype)
    return xp.ascontiguousarray(crop(dx, win.pad, tuple(spatial)))


def conv_nd_grad_weight(xp: Any, x: Any, dy_rows: Any, win: Window, groups: int,
                        w_shape: Shape) -> Any:
    """Gradient of ``conv_nd`` wrt w: dy rows times the transposed columns, per group."""
    cols, _ = _columns(xp, x, win, groups)
    return xp.matmul(dy_rows, cols.transpose(0, 2, 1)).reshape(w_shape)


# ---------------------------------------------------------------- the compiled 2-D path


def _fast(xp: Any, x: Any, w: Any, win: Window, batches: list[slice]) -> bool:
    """2-D, NumPy, one batch chunk, float32/64: compiled im2col/col2im and fused transposes."""
    return len(win.kernel) == 2 and len(batches) == 1 and kernels.usable(xp, x, w)


def _product(a: Any, b: Any) -> Any:
    """Per-group matrix products (G, m, k) @ (G, k, n); one group goes to the pool-split GEMM."""
    if a.shape[0] == 1:
        return kernels.matmul(a[0], b[0])[None]
    return np.matmul(a, b)


# Columns up to this size are kept from forward for the weight gradient; bigger ones (a
# large early layer) are rebuilt in backward rather than held through the whole pass.
KEEP_COLUMNS_BYTES = 64 << 20


def fast_columns(x: Any, win: Window) -> Any:
    """The compiled im2col of ``x``: (C*prod(kernel), N*prod(out))."""
    out = win.out_shape(x.shape[2:])
    return kernels.im2col(pad_spatial(np, x, win.pad), win.kernel, win.stride, win.dilate, out)


def fast_conv(x: Any, w: Any, bias: Any, win: Window, groups: int) -> tuple[Any, Any]:
    """``conv_nd`` plus bias on the compiled path; also returns the columns for backward."""
    n, f = x.shape[0], w.shape[0]
    out = win.out_shape(x.shape[2:])
    cols = fast_columns(x, win)
    rows = _product(w.reshape(groups, f // groups, -1), cols.reshape(groups, -1, cols.shape[1]))
    return kernels.rows_to_nchw(rows.reshape(f, -1), n, out, bias), cols


def fast_conv_grads(dy: Any, w: Any, cols: Any, win: Window, groups: int, x_shape: Shape,
                    want_data: bool) -> tuple[Any, Any, Any]:
    """(dx or None, dw, dbias) of ``fast_conv`` from the columns it kept."""
    f, c = w.shape[0], x_shape[1]
    dy_rows, dbias = kernels.nchw_to_rows(dy)
    dy_rows = dy_rows.reshape(groups, f // groups, -1)
    cols = cols.reshape(groups, -1, cols.shape[1])
    dw = _product(dy_rows, cols.transpose(0, 2, 1)).reshape(w.shape)
    if not want_data:
        return None, dw, dbias
    dcols = _product(w.reshape(groups, f // groups, -1).transpose(0, 2, 1), dy_rows)
    spatial = x_shape[2:]
    padded = (*x_shape[:2], *(s + 2 * p for s, p in zip(spatial, win.pad)))
    out = win.out_shape(tuple(spatial))
    dx = kernels.col2im(dcols.reshape(c * size_of(win.kernel), -1), padded, win.kernel,
                        win.stride, win.dilate, out)
    return np.ascontiguousarray(crop(dx, win.pad, tuple(spatial))), dw, dbias


# ---------------------------------------------------------------- shared parameter rules

_LAYOUTS = ("NCW", "NCHW", "NCDHW", "NHWC", "NDHWC")
_NATIVE_LAYOUT = {1: "NCW", 2: "NCHW", 3: "NCDHW"}
_AXES = {1: ("width",), 2: ("height", "width"), 3: ("depth", "height", "width")}
_DATA_LAYOUT = {1: "(N, C, W)", 2: "(N, C, H, W)", 3: "(N, C, D, H, W)"}


def _window_params(workspace: int) -> tuple[P, ...]:
    return (
        P("kernel", parse_shape),
        P("stride", parse_shape, ()),
        P("dilate", parse_shape, ()),
        P("pad", parse_shape, ()),
        P("num_filter", parse_int),
        P("num_group", parse_int, 1),
        P("workspace", parse_int, workspace),
    )


_CUDNN_PARAMS = (
    P("cudnn_tune", parse_optional(parse_enum("off", "limited_workspace", "fastest")), None),
    P("cudnn_off", parse_bool, False),
    P("layout", parse_optional(parse_enum(*_LAYOUTS)), None),
)


class _ConvBase(Operator):
    """What Convolution and Deconvolution share: kernel-rank parameters, checks, bias, batching."""

    uses_cpu_pool = True

    def check_params(self) -> None:
        p = self.p
        rank = len(p.kernel)
        if rank not in (1, 2, 3):
            raise self.param_error(
                f"kernel={p.kernel} is {rank}-D; only 1-D (NCW), 2-D (NCHW) and 3-D (NCDHW) "
                "kernels are supported")
        if min(p.kernel) < 1:
            raise self.param_error(f"kernel={p.kernel} must be positive")
        p.stride = self._per_axis("stride", 1, 1)
        p.dilate = self._per_axis("dilate", 1, 1)
        p.pad = self._per_axis("pad", 0, 0)
        if not 1 <= p.num_filter <= 100000:
            raise self.param_error(f"num_filter={p.num_filter} must be in 1..100000")
        if p.num_group < 1:
            raise self.param_error(f"num_group={p.num_group} must be at least 1")
        if p.num_filter % p.num_group:
            raise self.param_error(
                f"num_filter={p.num_filter} is not divisible by num_group={p.num_group}")
        if p.workspace < 0:
            raise self.param_error(f"workspace={p.workspace} must not be negative")
        if p.layout is not None and p.layout != _NATIVE_LAYOUT[rank]:
            raise self.param_error(
                f"layout={p.layout!r} is not supported for a {rank}-D kernel; "
                f"use {_NATIVE_LAYOUT[rank]} (or leave layout unset)")

    def _per_axis(self, name: str, default: int, minimum: int) -> tuple[int, ...]:
        """An empty tuple means ``default`` on every kernel axis, as in MXNet 1.x."""
        value, rank = getattr(self.p, name), len(self.p.kernel)
        if value == ():
            return (default,) * rank
        if len(value) != rank:
            raise self.param_error(
                f"{name}={value} has {len(value)} entries but kernel={self.p.kernel} has {rank}")
        if min(value) < minimum:
            raise self.param_error(f"{name}={value} entries must be at least {minimum}")
        return value

    def arguments(self) -> list[str]:
        return ["data", "weight"] if self.p.no_bias else ["data", "weight", "bias"]

    def _window(self, pad: tuple[int, ...]) -> Window:
        return Window(self.p.kernel, self.p.stride, self.p.dilate, tuple(pad))

    def _check_data(self, shapes: list[Shape | None]) -> tuple[int, int, tuple[int, ...]]:
        """(N, C, spatial) of the data, after checking its rank and channel grouping."""
        data, rank = shapes[0], len(self.p.kernel)
        if len(data) != rank + 2:
            raise self.shape_error(
                shapes, f"data should be {rank + 2}-D {_DATA_LAYOUT[rank]} for the {rank}-D "
                f"kernel {self.p.kernel}, got {len(data)}-D")
        n, c, *spatial = data
        if c % self.p.num_group:
            raise self.shape_error(
                shapes, f"data has {c} channels, not divisible by num_group={self.p.num_group}")
        return n, c, tuple(spatial)

    def _bias_view(self, bias: Any) -> Any:
        return bias.reshape(1, -1, *(1,) * len(self.p.kernel))

    def _bias_grad(self, dy: Any) -> Any:
        return dy.sum(axis=(0, *range(2, dy.ndim)))

    def _batch_slices(self, n: int, sample_cols: int, itemsize: int) -> list[slice]:
        """Batch chunks whose column matrix fits in ``workspace`` MB, as MXNet sizes them.

        ``sample_cols`` is one sample's column-matrix size in elements; a chunk holds at least
        one sample. Usually there is a single chunk; big early layers (VGG's 224x224 convs on a
        large batch) would otherwise build a column matrix of several GB.
        """
        per_chunk = max(1, (self.p.workspace << 20) // max(sample_cols * itemsize, 1))
        return [slice(s, min(s + per_chunk, n)) for s in range(0, n, per_chunk)]


def _concat(xp: Any, parts: list[Any]) -> Any:
    return parts[0] if len(parts) == 1 else xp.concatenate(parts)


# ---------------------------------------------------------------- Convolution


@register
class Convolution(_ConvBase):
    """Grouped, dilated, strided cross-correlation plus bias, as MXNet's (1-D to 3-D)."""

    op_name = "Convolution"
    params = (*_window_params(1024), P("no_bias", parse_bool, False), *_CUDNN_PARAMS)

    def infer_shape(self, in_shapes):
        shapes = list(in_shapes)
        if shapes[0] is None:
            return shapes, [None]
        p = self.p
        n, c, spatial = self._check_data(shapes)
        self.assign(shapes, 1, (p.num_filter, c // p.num_group, *p.kernel))
        if not p.no_bias:
            self.assign(shapes, 2, (p.num_filter,))
        out = []
        for axis, size in enumerate(spatial):
            span, padded = p.dilate[axis] * (p.kernel[axis] - 1) + 1, size + 2 * p.pad[axis]
            if span > padded:
                raise self.shape_error(
                    shapes, f"kernel {p.kernel[axis]} (dilated to {span}) along "
                    f"{_AXES[len(spatial)][axis]} is larger than the padded input "
                    f"{size} + 2*{p.pad[axis]} = {padded}")
            out.append((padded - span) // p.stride[axis] + 1)
        return shapes, [(n, p.num_filter, *out)]

    def _plan(self, x: Any) -> tuple[Window, list[slice]]:
        win = self._window(self.p.pad)
        sample_cols = x.shape[1] * size_of(win.kernel) * size_of(win.out_shape(x.shape[2:]))
        return win, self._batch_slices(x.shape[0], sample_cols, x.itemsize)

    def forward(self, xp, inputs, is_train, rt):
        x, w, g = inputs[0], inputs[1], self.p.num_group
        win, batches = self._plan(x)
        if _fast(xp, x, w, win, batches):
            y, cols = fast_conv(x, w, None if self.p.no_bias else inputs[2], win, g)
            return [y], cols if is_train and cols.nbytes <= KEEP_COLUMNS_BYTES else None
        y = _concat(xp, [conv_nd(xp, x[b], w, win, g) for b in batches])
        if not self.p.no_bias:
            y += self._bias_view(inputs[2])
        return [y], None

    def backward(self, xp, out_grads, inputs, outputs, state, rt):
        x, w, g, dy = inputs[0], inputs[1], self.p.num_group, out_grads[0]
        win, batches = self._plan(x)
        if _fast(xp, dy, w, win, batches):
            cols = state if state is not None else fast_columns(x, win)
            dx, dw, dbias = fast_conv_grads(dy, w, cols, win, g, x.shape, rt.wants(0))
            return [dx, dw] if self.p.no_bias else [dx, dw, dbias]
        dxs, dw = [], 0
        for b in batches:
            dy_rows = group_rows(xp, dy[b], g)
            if not rt.wants(0):
                dw = dw + conv_nd_grad_weight(xp, x[b], dy_rows, win, g, w.shape)
                continue
            dxs.append(conv_nd_grad_data(xp, dy_rows, w, win, g, x[b].shape))
            dw = dw + conv_nd_grad_weight(xp, x[b], dy_rows, win, g, w.shape)
        grads = [_concat(xp, dxs) if dxs else None, dw]
        if not self.p.no_bias:
            grads.append(self._bias_grad(dy))
        return grads


# ---------------------------------------------------------------- Deconvolution


@register
class Deconvolution(_ConvBase):
    """Transposed convolution: the data gradient of a Convolution with the same parameters.

    Weight is (C_in, num_filter/num_group, kh, kw); output size per axis is
    stride*(H-1) + dilate*(k-1) + 1 - 2*pad + adj, or ``target_shape`` when given, in which
    case pad and adj are derived from it as MXNet does (pad and adj parameters ignored).
    """

    op_name = "Deconvolution"
    params = (
        *_window_params(512)[:4],
        P("adj", parse_shape, ()),
        P("target_shape", parse_shape, ()),
        *_window_params(512)[4:],
        P("no_bias", parse_bool, True),
        *_CUDNN_PARAMS,
    )

    def check_params(self) -> None:
        super().check_params()
        p = self.p
        p.adj = self._per_axis("adj", 0, 0)
        if any(p.target_shape):  # MXNet then derives pad and adj and ignores the parameters
            if len(p.target_shape) != len(p.kernel) or min(p.target_shape) < 1:
                raise self.param_error(
                    f"target_shape={p.target_shape} needs one positive size per kernel axis "
                    f"({len(p.kernel)})")
            return
        p.target_shape = ()
        for axis, (a, s) in enumerate(zip(p.adj, p.stride)):
            if a >= s:
                raise self.param_error(
                    f"adj={p.adj} must be smaller than stride={p.stride} on every axis "
                    f"(axis {axis})")

    def _pad_adj(self, shapes: list[Shape | None], spatial: tuple[int, ...]
                 ) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """(pad, adj) per axis: the parameters, or what makes the output ``target_shape``."""
        p = self.p
        if not p.target_shape:
            return p.pad, p.adj
        pads, adjs = [], []
        for axis, (size, target) in enumerate(zip(spatial, p.target_shape)):
            full = p.stride[axis] * (size - 1) + p.dilate[axis] * (p.kernel[axis] - 1) + 1
            if full < target:
                raise self.shape_error(
                    shapes, f"target_shape={p.target_shape} is too big: along "
                    f"{_AXES[len(spatial)][axis]} this input gives at most {full}")
            excess = full - target
            if excess % 2 and p.stride[axis] == 1:
                raise self.shape_error(
                    shapes, f"target_shape={p.target_shape} needs adj=1 along "
                    f"{_AXES[len(spatial)][axis]}, but adj must be smaller than stride=1")
            pads.append((excess + 1) // 2)
            adjs.append(excess % 2)
        return tuple(pads), tuple(adjs)

    def _out_spatial(self, shapes, spatial, pad, adj) -> tuple[int, ...]:
        p, out = self.p, []
        for axis, size in enumerate(spatial):
            span = p.dilate[axis] * (p.kernel[axis] - 1) + 1
            size_out = p.stride[axis] * (size - 1) + span - 2 * pad[axis] + adj[axis]
            if size_out < 1:
                raise self.shape_error(
                    shapes, f"output {_AXES[len(spatial)][axis]} would be {size_out}: "
                    f"pad={p.pad} is too large for this input and kernel {p.kernel}")
            out.append(size_out)
        return tuple(out)

    def infer_shape(self, in_shapes):
        shapes = list(in_shapes)
        if shapes[0] is None:
            return shapes, [None]
        p = self.p
        n, c, spatial = self._check_data(shapes)
        self.assign(shapes, 1, (c, p.num_filter // p.num_group, *p.kernel))
        if not p.no_bias:
            self.assign(shapes, 2, (p.num_filter,))
        pad, adj = self._pad_adj(shapes, spatial)
        return shapes, [(n, p.num_filter, *self._out_spatial(shapes, spatial, pad, adj))]

    def _plan(self, inputs: list[Any]) -> tuple[Window, tuple[int, ...], list[slice]]:
        """The equivalent convolution's window, this op's output (F, *out), and batches."""
        shapes = [tuple(a.shape) for a in inputs]
        x, spatial = inputs[0], tuple(inputs[0].shape[2:])
        pad, adj = self._pad_adj(shapes, spatial)
        out = (self.p.num_filter, *self._out_spatial(shapes, spatial, pad, adj))
        sample_cols = self.p.num_filter * size_of(self.p.kernel) * size_of(spatial)
        return self._window(pad), out, self._batch_slices(x.shape[0], sample_cols, x.itemsize)

    def forward(self, xp, inputs, is_train, rt):
        win, out, batches = self._plan(inputs)
        x, w, g = inputs[0], inputs[1], self.p.num_group
        y = _concat(xp, [conv_nd_grad_data(xp, group_rows(xp, x[b], g), w, win, g,
                                           (b.stop - b.start, *out)) for b in batches])
        if not self.p.no_bias:
            y += self._bias_view(inputs[2])
        return [y], None

    def backward(self, xp, out_grads, inputs, outputs, state, rt):
        win, _, batches = self._plan(inputs)
        x, w, g, dy = inputs[0], inputs[1], self.p.num_group, out_grads[0]
        dxs, dw = [], 0
        for b in batches:
            dxs.append(conv_nd(xp, dy[b], w, win, g))
            dw = dw + conv_nd_grad_weight(xp, dy[b], group_rows(xp, x[b], g), win, g, w.shape)
        grads = [_concat(xp, dxs), dw]
        if not self.p.no_bias:
            grads.append(self._bias_grad(dy))
        return grads
