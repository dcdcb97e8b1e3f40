"""Pooling (max / avg / sum / lp over 1-D to 3-D windows) and ROIPooling, as MXNet 1.x.

Pooling reduces a strided window view (see ``_im2col``), one pass per kernel position;
its backward is col2im, one strided slice-add per kernel position. Windows are clipped at
the padded edge, as MXNet 1.9.1's pool.h: ``avg`` divides by the clipped window size
(padding counted unless ``count_include_pad=False``), which is the full kernel area except
where a ``full``-convention window runs past the padded input. Max pooling pads with the
dtype's lowest value, so padding never wins and a window of padding alone gives that
value, as in MXNet. ROIPooling loops over ROIs (few) and takes each bin's max by two
separable gathers.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from framestream.errors import NNError
from framestream.nn.ops import _cpu_kernels as kernels
from framestream.nn.ops._base import (
    Operator,
    P,
    Shape,
    parse_bool,
    parse_enum,
    parse_float,
    parse_int,
    parse_optional,
    parse_shape,
    register,
)
from framestream.nn.ops._im2col import (
    Window,
    at,
    col2im,
    crop,
    pad_spatial,
    window_reduce,
    windows,
)

_AXES = {1: ("width",), 2: ("height", "width"), 3: ("depth", "height", "width")}
_DATA_LAYOUT = {1: "(N, C, W)", 2: "(N, C, H, W)", 3: "(N, C, D, H, W)"}
_NATIVE_LAYOUT = {"NCW": 1, "NCHW": 2, "NCDHW": 3}


def _lp_power(xp: Any, x: Any, p: int) -> Any:
    """x**p as MXNet's a_pow_p (no absolute value: odd p keeps the sign)."""
    return x if p == 1 else x * x if p == 2 else x * x * x if p == 3 else xp.power(x, p)


def _lp_root(xp: Any, s: Any, p: int) -> Any:
    return s if p == 1 else xp.sqrt(s) if p == 2 else xp.cbrt(s) if p == 3 else xp.power(s, 1 / p)


def _lp_grad(xp: Any, dy: Any, x: Any, y: Any, p: int) -> Any:
    """dy * (x / y)**(p - 1), and 0 where the output is 0 (MXNet's lp_grad)."""
    if p == 1:
        return dy + xp.zeros_like(x)  # broadcast to x's shape
    zero = y == 0
    ratio = x / xp.where(zero, xp.ones((), dtype=y.dtype), y)
    return xp.where(zero, xp.zeros((), dtype=dy.dtype), dy * _lp_power(xp, ratio, p - 1))


@register
class Pooling(Operator):
    """Max, average, sum or Lp over sliding windows, or over the whole map (``global_pool``).

    Output size per axis: valid = floor((H + 2p - k) / s) + 1, full = ceil(...) + 1,
    same (1-D only, no pad) = ceil(H / s); global = 1.
    """

    uses_cpu_pool = True

    op_name = "Pooling"
    params = (
        P("kernel", parse_shape, ()),
        P("pool_type", parse_enum("max", "avg", "sum", "lp"), "max"),
        P("global_pool", parse_bool, False),
        P("cudnn_off", parse_bool, False),
        P("pooling_convention", parse_enum("valid", "full", "same"), "valid"),
        P("stride", parse_shape, ()),
        P("pad", parse_shape, ()),
        P("p_value", parse_optional(parse_int), None),
        P("count_include_pad", parse_optional(parse_bool), None),
        P("layout", parse_optional(parse_enum("NCW", "NCHW", "NCDHW", "NWC", "NHWC", "NDHWC")),
          None),
    )

    def check_params(self) -> None:
        p = self.p
        if p.pool_type == "lp" and (p.p_value is None or p.p_value < 1):
            raise self.param_error(f"pool_type='lp' needs p_value >= 1, got {p.p_value}")
        if not p.kernel and not p.global_pool:
            raise self.param_error("kernel is required unless global_pool=True")
        if p.kernel and len(p.kernel) not in (1, 2, 3):
            raise self.param_error(
                f"kernel={p.kernel} is {len(p.kernel)}-D; pooling is 1-D, 2-D or 3-D")
        if p.kernel and min(p.kernel) < 1:
            raise self.param_error(f"kernel={p.kernel} must be positive")
        for name, minimum in (("stride", 1), ("pad", 0)):
            value = getattr(p, name)
            if value and p.kernel and len(value) != len(p.kernel):
                raise self.param_error(
                    f"{name}={value} has {len(value)} entries but kernel={p.kernel} has "
                    f"{len(p.kernel)}")
            if value and min(value) < minimum:
                raise self.param_error(f"{name}={value} entries must be at least {minimum}")
        if p.pooling_convention == "same" and any(p.pad):
            raise self.param_error("pooling_convention='same' does not take a pad")
        if p.layout is not None and p.layout not in _NATIVE_LAYOUT:
            raise self.param_error(
                f"layout={p.layout!r} is not supported; use NCW, NCHW or NCDHW (channels first)")

    # -- geometry -------------------------------------------------------------------------

    def _rank(self, shapes: list[Shape | None]) -> int:
        data, p = shapes[0], self.p
        rank = len(data) - 2 if p.global_pool else len(p.kernel)  # global ignores the kernel
        if p.global_pool and rank not in (1, 2, 3):
            raise self.shape_error(
                shapes, f"data should be 3-D to 5-D (N, C, ...) for global pooling, "
                f"got {len(data)}-D")
        if len(data) != rank + 2:
            raise self.shape_error(
                shapes, f"data should be {rank + 2}-D {_DATA_LAYOUT[rank]} for the {rank}-D "
                f"kernel {p.kernel}, got {len(data)}-D")
        if _NATIVE_LAYOUT.get(p.layout, rank) != rank:
            raise self.shape_error(shapes, f"layout={p.layout!r} does not fit {rank}-D pooling")
        if p.pooling_convention == "same" and rank != 1 and not p.global_pool:
            raise self.shape_error(
                shapes, "pooling_convention='same' supports 1-D (N, C, W) data only")
        return rank

    def _geometry(self, shapes: list[Shape | None]) -> tuple[Window, tuple[int, ...]]:
        """The window and the output's spatial sizes, after checking them against the data."""
        p, rank = self.p, self._rank(shapes)
        spatial = tuple(shapes[0][2:])
        if p.global_pool:
            win = Window(spatial, (1,) * rank, (1,) * rank, (0,) * rank)
        else:
            win = Window(p.kernel, p.stride or (1,) * rank, (1,) * rank, p.pad or (0,) * rank)
        for axis, size in enumerate(spatial):
            if win.kernel[axis] > size + 2 * win.pad[axis]:
                raise self.shape_error(
                    shapes, f"kernel {win.kernel[axis]} along {_AXES[rank][axis]} exceeds the "
                    f"input {size} padded to {size + 2 * win.pad[axis]}")
        if p.pooling_convention == "same" and not p.global_pool:
            return win, tuple(-(-(size + 2 * q) // s)
                              for size, q, s in zip(spatial, win.pad, win.stride))
        return win, win.out_shape(spatial, ceil=p.pooling_convention == "full")

    def infer_shape(self, in_shapes):
        shapes = list(in_shapes)
        if shapes[0] is None:
            return shapes, [None]
        _, out = self._geometry(shapes)
        return shapes, [(*shapes[0][:2], *out)]

    # -- computation ------------------------------------------------------------------------

    def _divisor(self, xp: Any, win: Window, spatial: Shape, out: Shape, dtype: Any) -> Any:
        """What ``avg`` divides each window sum by: the window clipped at the padded edge, or
        (``count_include_pad=False``) at the real input; at least 1."""
        exclude = self.p.count_include_pad is False
        counts = []
        for axis, size in enumerate(spatial):
            start = np.arange(out[axis]) * win.stride[axis]
            padded = size + 2 * win.pad[axis]
            lo, hi = (win.pad[axis], win.pad[axis] + size) if exclude else (0, padded)
            count = np.minimum(start + win.kernel[axis], hi) - np.maximum(start, lo)
            counts.append(np.maximum(count, 1))
        if all(c.min() == c.max() for c in counts):  # the usual case: one number
            return int(np.prod([c[0] for c in counts]))
        grid = np.ones(out, dtype=np.int64)
        for axis, count in enumerate(counts):
            grid = grid * count.reshape([-1 if a == axis else 1 for a in range(len(out))])
        return xp.asarray(grid, dtype=dtype)

    def _view(self, xp: Any, x: Any, win: Window, out: Shape) -> Any:
        """Windows over the padded data; max pads with the lowest value so padding never wins."""
        fill = float(xp.finfo(x.dtype).min) if self.p.pool_type == "max" else 0.0
        padded = pad_spatial(xp, x, win.pad, win.extra(x.shape[2:], out), fill)
        return windows(xp, padded, win, out)

    def forward(self, xp, inputs, is_train, rt):
        x, p = inputs[0], self.p
        win, out = self._geometry([tuple(x.shape)])
        if p.global_pool:  # one reduction over the spatial axes, not H*W window steps
            return [self._global_forward(xp, x)], None
        if p.pool_type == "lp":
            view = self._view(xp, _lp_power(xp, x, p.p_value), win, out)
            return [_lp_root(xp, window_reduce(xp, view, xp.add, win), p.p_value)], None
        if p.pool_type == "max" and len(out) == 2 and kernels.usable(xp, x):
            # Compiled: the max and its winner in one pass; backward scatters by the winner.
            fill = float(np.finfo(x.dtype).min)
            padded = pad_spatial(xp, x, win.pad, None, fill)
            y, winner = kernels.max_pool(padded, win.kernel, win.stride, out)
            return [y], (winner, padded.shape)
        view = self._view(xp, x, win, out)
        y = window_reduce(xp, view, xp.maximum if p.pool_type == "max" else xp.add, win)
        if p.pool_type == "avg":
            y = y / self._divisor(xp, win, x.shape[2:], out, x.dtype)
        return [y], None

    def backward(self, xp, out_grads, inputs, outputs, state, rt):
        x, y, dy = inputs[0], outputs[0], out_grads[0]
        if self.p.global_pool:
            return [self._global_backward(xp, x, y, dy)]
        win, out = self._geometry([tuple(x.shape)])
        kind = self.p.pool_type
        if state is not None:  # the compiled max path kept each output's winner
            winner, padded_shape = state
            dx = kernels.max_unpool(dy, winner, padded_shape)
            return [dx if padded_shape == x.shape else np.ascontiguousarray(crop(dx, win.pad, x.shape[2:]))]
        if kind in ("max", "lp"):
            view = self._view(xp, x, win, out)
        if kind == "max":
            # Route each output's gradient to the first input in its window (row-major) that
            # equals the output, as MXNet's unpool_max; ``taken`` marks outputs already routed.
            zero, taken = xp.zeros((), dtype=dy.dtype), xp.zeros(y.shape, dtype=bool)

            def part(position: tuple[int, ...]) -> Any:
                equal = at(view, position) == y
                hit = xp.greater(equal, taken)  # equal and not yet taken
                taken[...] |= equal
                return xp.where(hit, dy, zero)
        elif kind == "lp":
            def part(position: tuple[int, ...]) -> Any:
                return _lp_grad(xp, dy, at(view, position), y, self.p.p_value)
        else:
            g = dy / self._divisor(xp, win, x.shape[2:], out, dy.dtype) if kind == "avg" else dy

            def part(position: tuple[int, ...]) -> Any:
                return g
        extra = win.extra(x.shape[2:], out)
        padded = (*x.shape[:2], *(s + 2 * q + e for s, q, e in zip(x.shape[2:], win.pad, extra)))
        dx = crop(col2im(xp, part, padded, win, out, dy.dtype), win.pad, x.shape[2:])
        return [xp.ascontiguousarray(dx)]

    def _global_forward(self, xp: Any, x: Any) -> Any:
        axes, kind, p = tuple(range(2, x.ndim)), self.p.pool_type, self.p.p_value
        if kind == "lp":
            return _lp_root(xp, _lp_power(xp, x, p).sum(axis=axes, keepdims=True), p)
        return {"max": x.max, "sum": x.sum, "avg": x.mean}[kind](axis=axes, keepdims=True)

    def _global_backward(self, xp: Any, x: Any, y: Any, dy: Any) -> Any:
        kind = self.p.pool_type
        if kind == "lp":
            return xp.ascontiguousarray(_lp_grad(xp, dy, x, y, self.p.p_value))
        if kind != "max":
            area = x[0, 0].size if kind == "avg" else 1
            return xp.broadcast_to(dy / area, x.shape).copy()
        flat = x.reshape(*x.shape[:2], -1)
        hit = flat == y.reshape(*y.shape[:2], 1)
        first = hit & (xp.cumsum(hit, axis=-1) == 1)
        zero = xp.zeros((), dtype=dy.dtype)
        return xp.where(first, dy.reshape(*dy.shape[:2], 1), zero).reshape(x.shape)


# ---------------------------------------------------------------- ROIPooling


def _c_round(v: Any) -> Any:
    """C's round(): halves away from zero (NumPy's round goes to even)."""
    a = np.abs(v)
    r = np.floor(a)
    return np.sign(v) * (r + (a - r >= 0.5))


@register
class ROIPooling(Operator):
    """Max-pool each region of interest to a fixed (ph, pw) grid, as Fast R-CNN / MXNet.

    ``rois`` rows are [batch_index, x1, y1, x2, y2] in image coordinates; they are scaled
    by ``spatial_scale`` and rounded. Bin (i, j) covers rows floor(i*bh) .. ceil((i+1)*bh)
    of the ROI (clipped to the map); an empty bin gives 0. MXNet's second output ``maxidx``
    (the flat h*W+w winner, -1 for empty) is kept in the state for backward only.
    """

    op_name = "ROIPooling"
    params = (P("pooled_size", parse_shape), P("spatial_scale", parse_float))

    def check_params(self) -> None:
        p = self.p
        if len(p.pooled_size) != 2 or min(p.pooled_size) < 1:
            raise self.param_error(f"pooled_size={p.pooled_size} must be two positive sizes (h, w)")
        if not 0 < p.spatial_scale <= 1:
            raise self.param_error(f"spatial_scale={p.spatial_scale} must be in (0, 1]")

    def arguments(self) -> list[str]:
        return ["data", "rois"]

    def infer_shape(self, in_shapes):
        shapes = list(in_shapes)
        data, rois = shapes
        if data is not None and len(data) != 4:
            raise self.shape_error(shapes, f"data should be 4-D (N, C, H, W), got {len(data)}-D")
        if rois is not None and (len(rois) != 2 or rois[1] != 5):
            raise self.shape_error(
                shapes, "rois should be (R, 5) rows of [batch_index, x1, y1, x2, y2]")
        if data is None or rois is None:
            return shapes, [None]
        return shapes, [(rois[0], data[1], *self.p.pooled_size)]

    def _bins(self, rois: Any, dtype: Any, hw: tuple[int, int]) -> tuple[Any, list[Any]]:
        """Batch indices and per-axis bin [start, end) arrays, shape (R, bins), on the host.

        The arithmetic runs in the data's dtype, as MXNet's kernel does, so float32 bin
        edges round exactly as there (3 * float32(7/3) is not 7 in float64).
        """
        dt = np.dtype(dtype).type
        r = np.asarray(rois.tolist(), dtype=dt).reshape(-1, 5)
        batch = r[:, 0].astype(np.int64)
        scale = dt(np.float32(self.p.spatial_scale))  # MXNet keeps spatial_scale as a C float
        corners = _c_round(r[:, 1:] * scale).astype(np.int64)
        edges = []
        for axis, (lo, hi) in enumerate(((1, 3), (0, 2))):  # rows from y, columns from x
            bins = self.p.pooled_size[axis]
            length = np.maximum(corners[:, hi] - corners[:, lo] + 1, 1)
            size = length.astype(dt) / dt(bins)
            steps = np.arange(bins + 1, dtype=dt)
            start = np.floor(steps[None, :-1] * size[:, None]).astype(np.int64)
            end = np.ceil(steps[None, 1:] * size[:, None]).astype(np.int64)
            offset = corners[:, lo, None]
            edges.append((np.clip(start + offset, 0, hw[axis]), np.clip(end + offset, 0, hw[axis])))
        return batch, edges

    @staticmethod
    def _gather_max(xp: Any, values: Any, start: Any, end: Any, axis: int,
                    with_arg: bool) -> tuple[Any, Any]:
        """Max (and first argmax, relative to ``start``) over [start, end) bins along ``axis``.

        Gathers (bins, widest bin) positions; a bin narrower than the widest repeats its
        first position instead, which changes neither the max nor the first argmax. The bin
        axis replaces ``axis``. (Bins may overlap by a pixel, so no ``reduceat``.)
        """
        widest = max(int((end - start).max()), 1)
        pos = start[:, None] + np.arange(widest)[None, :]
        pos = np.minimum(np.where(pos < end[:, None], pos, start[:, None]), values.shape[axis] - 1)
        g = xp.take(values, xp.asarray(pos), axis=axis)  # axis -> (bins, widest)
        return g.max(axis=axis + 1), (g.argmax(axis=axis + 1) if with_arg else None)

    def _pool_roi(self, xp: Any, plane: Any, rows: tuple[Any, Any], cols: tuple[Any, Any],
                  with_arg: bool) -> tuple[Any, Any]:
        """One ROI of ``plane`` (C, H, W): (C, ph, pw) maxima and flat h*W+w winners (or None).

        Columns first (max within each column bin, per row), then rows: max is separable, and
        the first row holding the maximum, then its first column, is the row-major first max.
        """
        (hs, he), (ws, we) = rows, cols
        top, bottom = int(hs.min()), int(he.max())
        region = plane[:, top:bottom, :]  # (C, rows, W)
        col_max, col_arg = self._gather_max(xp, region, ws, we, 2, with_arg)
        best, row_arg = self._gather_max(xp, col_max, hs - top, he - top, 1, with_arg)
        if not with_arg:
            return best, None
        # Row of each winner within the region; clipped so empty bins (masked later) index safely.
        row = row_arg + xp.asarray(np.minimum(hs - top, bottom - top - 1))[None, :, None]
        col = xp.take_along_axis(col_arg, row, axis=1) + xp.asarray(ws)[None, None, :]
        return best, (row + top) * plane.shape[2] + col

    def forward(self, xp, inputs, is_train, rt):
        data, rois = inputs
        n, c, h, w = data.shape
        ph, pw = self.p.pooled_size
        batch, ((hs, he), (ws, we)) = self._bins(rois, data.dtype, (h, w))
        if batch.size and (batch.min() < 0 or batch.max() >= n):
            raise NNError(f"ROIPooling '{self.node}': rois hold batch indices "
                          f"{sorted(set(batch.tolist()))}, but data has batch size {n}")
        out = xp.zeros((len(batch), c, ph, pw), dtype=data.dtype)
        maxidx = xp.full((len(batch), c, ph, pw), -1, dtype=xp.int64) if is_train else None
        zero = xp.zeros((), dtype=data.dtype)
        for r, b in enumerate(batch.tolist()):
            empty = (he[r] <= hs[r])[:, None] | (we[r] <= ws[r])[None, :]
            if empty.all():
                continue
            best, idx = self._pool_roi(xp, data[b], (hs[r], he[r]), (ws[r], we[r]), is_train)
            keep = xp.asarray(~empty)[None]
            out[r] = xp.where(keep, best, zero)
            if is_train:
                maxidx[r] = xp.where(keep, idx, -1)
        return [out], ((xp.asarray(batch), maxidx) if is_train else None)

    def backward(self, xp, out_grads, inputs, outputs, state, rt):
        data, rois = inputs
        n, c, h, w = data.shape
        if state is None:  # forward ran for inference: find the winners again
            _, state = self.forward(xp, inputs, True, rt)
        batch, maxidx = state
        dy = out_grads[0]
        # Flat index of each winner in data; empty bins (-1) send nothing (weight 0 at 0).
        base = (batch[:, None] * c + xp.arange(c)[None, :]) * (h * w)
        flat = base[:, :, None, None] + maxidx
        has = maxidx >= 0
        weights = xp.where(has, dy, xp.zeros((), dtype=dy.dtype)).reshape(-1)
        flat = xp.where(has, flat, 0).reshape(-1)
        dx = xp.bincount(flat, weights=weights, minlength=data.size)
        return [dx.astype(data.dtype, copy=False).reshape(data.shape), xp.zeros_like(rois)]
