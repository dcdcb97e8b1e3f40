"""Sliding windows over (N, C, *spatial) arrays, shared by Convolution, Deconvolution, Pooling.

``windows`` is im2col without the copy: a strided *view* of shape (N, C, *kernel, *out),
so a reshape of it is the classic column matrix and a reduction over its kernel axes is
pooling. ``col2im`` is its adjoint, the sum of overlapping windows back into the input,
done as one strided slice-add per kernel position rather than a loop over pixels. Any
number of spatial axes (1-D, 2-D, 3-D) works the same way. Everything is written against
``xp`` (NumPy or CuPy); sizes and positions are plain Python ints.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Dims = tuple[int, ...]


@dataclass(frozen=True)
class Window:
    """The geometry of a sliding window: kernel, stride, dilation and symmetric padding."""

    kernel: Dims
    stride: Dims
    dilate: Dims
    pad: Dims

    def span(self, axis: int) -> int:
        """Extent of the (dilated) kernel along ``axis``: dilate * (k - 1) + 1."""
        return self.dilate[axis] * (self.kernel[axis] - 1) + 1

    def out_shape(self, spatial: Dims, ceil: bool = False) -> Dims:
        """Window positions per axis: floor (or ceil) of (size + 2 pad - span) / stride, + 1."""
        out = []
        for axis, size in enumerate(spatial):
            room = size + 2 * self.pad[axis] - self.span(axis)
            steps = -(-room // self.stride[axis]) if ceil else room // self.stride[axis]
            out.append(steps + 1)
        return tuple(out)

    def extra(self, spatial: Dims, out: Dims) -> Dims:
        """Padding past ``pad`` at the far end that the last of ``out`` windows needs.

        Only ceil-mode (``full``) pooling windows can run past the padded input.
        """
        return tuple(
            max(0, (o - 1) * self.stride[a] + self.span(a) - (spatial[a] + 2 * self.pad[a]))
            for a, o in enumerate(out)
        )


def positions(win: Window) -> list[Dims]:
    """Every kernel position, in row-major order (the order MXNet scans a window in)."""
    return list(itertools.product(*(range(k) for k in win.kernel)))


def pad_spatial(xp: Any, x: Any, pad: Dims, extra: Dims | None = None, value: float = 0.0) -> Any:
    """``x`` padded by ``pad`` on both sides of each spatial axis, plus ``extra`` at the end.

    Returns ``x`` itself when there is nothing to pad, so the unpadded case costs no copy.
    Fills only the border strips (``xp.pad`` is several times slower on NumPy).
    """
    extra = extra or (0,) * len(pad)
    if not any(pad) and not any(extra):
        return x
    spatial = x.shape[2:]
    out = xp.empty((*x.shape[:2], *(s + 2 * p + e for s, p, e in zip(spatial, pad, extra))),
                   dtype=x.dtype)
    for axis, (size, p) in enumerate(zip(spatial, pad)):
        lead = (slice(None),) * (2 + axis)
        out[(*lead, slice(0, p))] = value
        out[(*lead, slice(p + size, None))] = value
    out[(slice(None), slice(None), *(slice(p, p + s) for p, s in zip(pad, spatial)))] = x
    return out


def windows(xp: Any, x: Any, win: Window, out: Dims) -> Any:
    """View of the padded ``x`` (N, C, *padded) as (N, C, *kernel, *out).

    ``view[n, c, i, j, y, z] == x[n, c, y*sh + i*dh, z*sw + j*dw]`` in 2-D; ``x`` must
    already hold every position the windows touch (pad it first).
    """
    for a, o in enumerate(out):
        if (o - 1) * win.stride[a] + win.span(a) > x.shape[2 + a]:
            raise ValueError(f"windows {win} x {out} do not fit in an array of shape {x.shape}")
    bn, bc, *steps = x.strides
    strides = (bn, bc, *(b * d for b, d in zip(steps, win.dilate)),
               *(b * s for b, s in zip(steps, win.stride)))
    return xp.lib.stride_tricks.as_strided(x, shape=(*x.shape[:2], *win.kernel, *out),
                                           strides=strides)


def at(view: Any, position: Dims) -> Any:
    """The (N, C, *out) slice of a ``windows`` view at one kernel position."""
    return view[(slice(None), slice(None), *position)]


def window_reduce(xp: Any, view: Any, ufunc: Any, win: Window) -> Any:
    """Reduce a ``windows`` view over its kernel axes with a binary ufunc (add, maximum).

    One pass per kernel position over (N, C, *out) arrays: on NumPy several times faster
    than ``view.max(axis=...)``, which walks the strided view in a poor order.
    """
    first, *rest = positions(win)
    acc = at(view, first).copy()
    for position in rest:
        ufunc(acc, at(view, position), out=acc)
    return acc


def col2im(xp: Any, part: Callable[[Dims], Any], shape: Dims, win: Window, out: Dims,
           dtype: Any) -> Any:
    """Adjoint of ``windows``: sum window contributions back into zeros of ``shape`` (padded).

    ``part(position)`` gives the (N, C, *out) values at one kernel position; each is added
    to the strided slice it was read from, so overlapping windows accumulate. ``part`` is
    called once per position, in row-major order.
    """
    acc = xp.zeros(shape, dtype=dtype)
    for position in positions(win):
        target = tuple(
            slice(i * d, i * d + (o - 1) * s + 1, s)
            for i, d, o, s in zip(position, win.dilate, out, win.stride)
        )
        acc[(slice(None), slice(None), *target)] += part(position)
    return acc


def crop(x: Any, pad: Dims, spatial: Dims) -> Any:
    """The unpadded interior of a padded (N, C, *padded) array."""
    return x[(slice(None), slice(None), *(slice(p, p + s) for p, s in zip(pad, spatial)))]
