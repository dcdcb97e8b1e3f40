"""Layout ops that move, copy or reduce values without learned parameters.

Flatten, Reshape, Concat, SliceChannel, transpose, expand_dims, slice_axis, Pad, Cast,
identity, clip, sum and mean. Each block keeps MXNet's shape rule next to its forward and
backward. Gradients are always fresh arrays (never the head gradient itself), so an executor
may accumulate into what it gets back. (Thirteen small ops in one family module is why this
runs a little past 500 lines; splitting them would scatter shared helpers such as ``_axis``.)
"""

from __future__ import annotations

from itertools import accumulate
from typing import Any, ClassVar

import numpy as np

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
    size_of,
)


def _axis(op: Operator, in_shapes: list, axis: int, ndim: int, what: str = "axis") -> int:
    """A possibly negative axis as an index in ``range(ndim)``, or a shape error naming it."""
    if not -ndim <= axis < ndim:
        raise op.shape_error(in_shapes, f"{what}={axis} is out of range for {ndim} axes")
    return axis % ndim


class _OneInput(Operator):
    """One input whose output shape follows from its shape alone (``out_shape``)."""

    def out_shape(self, in_shapes: list, data: Shape) -> Shape:
        raise NotImplementedError

    def infer_shape(self, in_shapes):
        data = in_shapes[0]
        return list(in_shapes), [None if data is None else self.out_shape(in_shapes, tuple(data))]


class _Relabel(_OneInput):
    """Same values, new shape: forward is a reshape (a view), backward reshapes back."""

    def forward(self, xp, inputs, is_train, rt):
        data = inputs[0]
        return [data.reshape(self.out_shape([data.shape], data.shape))], None

    def backward(self, xp, out_grads, inputs, outputs, state, rt):
        return [out_grads[0].reshape(inputs[0].shape).copy()]


# ---------------------------------------------------------------- Flatten


@register
class Flatten(_Relabel):
    """(N, d1, d2, ...) -> (N, d1*d2*...), row-major: the bridge from conv maps to dense layers."""

    op_name = "Flatten"
    aliases = ("flatten",)

    def out_shape(self, in_shapes, data):
        if len(data) < 1:
            raise self.shape_error(in_shapes, "data needs at least one axis")
        return (data[0], size_of(data[1:]))


# ---------------------------------------------------------------- Reshape


def _reshape_tokens(codes: Shape) -> list[tuple[int, ...]]:
    """Group MXNet's codes so that ``-4, d1, d2`` is one unit (needed to run them reversed)."""
    tokens, i = [], 0
    while i < len(codes):
        code = codes[i]
        if code == -4:
            if i + 2 >= len(codes):
                raise ValueError("-4 must be followed by the two sizes to split into")
            tokens.append(codes[i:i + 3])
            i += 3
            continue
        if code < -4:
            raise ValueError(f"unknown code {code}; codes are 0, -1, -2, -3 and -4")
        tokens.append((code,))
        i += 1
    return tokens


def reshape_codes(codes: Shape, dshape: Shape, reverse: bool = False) -> Shape:
    """The output of MXNet's Reshape ``shape`` codes applied to ``dshape``.

    0 copies an input axis, -1 is inferred, -2 copies all remaining axes, -3 merges two axes,
    -4 splits one axis into the two following values (one may be -1). ``reverse`` matches
    the codes against the axes from the right.

    >>> reshape_codes((0, -4, 2, -1, -2), (3, 8, 5))
    (3, 2, 4, 5)
    """
    tokens = _reshape_tokens(codes)
    src = list(dshape)
    if reverse:
        tokens.reverse()
        src.reverse()
    out: list[int] = []
    infer_at, i = None, 0
    for token in tokens:
        code = token[0]
        if code in (0, -3, -4) and i + (code == -3) >= len(src):
            raise ValueError(f"code {code} needs an input axis beyond the {len(src)} there are")
        if code == 0:
            out.append(src[i])
            i += 1
        elif code == -1:
            if infer_at is not None:
                raise ValueError("only one dimension can be -1")
            infer_at = len(out)
            out.append(1)
            i += 1
        elif code == -2:
            out.extend(src[i:])
            i = len(src)
        elif code == -3:
            out.append(src[i] * src[i + 1])
            i += 2
        elif code == -4:
            whole, (d1, d2) = src[i], token[1:]
            i += 1
            if d1 == -1 and d2 == -1:
                raise ValueError("-4 cannot split into two -1 sizes")
            if d1 == -1:
                d1 = whole // d2 if d2 else -1
            elif d2 == -1:
                d2 = whole // d1 if d1 else -1
            if d1 * d2 != whole:
                raise ValueError(f"-4 cannot split an axis of size {whole} into {d1} x {d2}")
            out.extend((d2, d1) if reverse else (d1, d2))
        else:
            out.append(code)
            i += 1
    if infer_at is not None:
        rest = size_of(out)
        if rest == 0 or size_of(dshape) % rest:
            raise ValueError(f"cannot infer the -1 dimension: {size_of(dshape)} elements "
                             f"do not divide by the other dimensions' {rest}")
        out[infer_at] = size_of(dshape) // rest
    if reverse:
        out.reverse()
    return tuple(out)


@register
class Reshape(_Relabel):
    """A new shape for the same row-major values, written with MXNet's special codes."""

    op_name = "Reshape"
    aliases = ("reshape",)
    params = (P("shape", parse_shape, ()), P("reverse", parse_bool, False),
              P("target_shape", parse_shape, ()), P("keep_highest", parse_bool, False))

    def check_params(self) -> None:
        if not self.p.shape and not self.p.target_shape:
            raise self.param_error("needs shape (or the deprecated target_shape)")
        if self.p.shape:
            try:
                _reshape_tokens(self.p.shape)
            except ValueError as exc:
                raise self.param_error(f"shape={self.p.shape}: {exc}") from None

    def _legacy(self, dshape: Shape) -> Shape:
        """Deprecated ``target_shape``: one 0 is inferred; keep_highest keeps axis 0."""
        out = list(self.p.target_shape)
        if self.p.keep_highest:
            out[0] = dshape[0]
        zeros = [i for i in range(int(self.p.keep_highest), len(out)) if out[i] == 0]
        if len(zeros) > 1:
            raise ValueError("target_shape can infer only one dimension (one 0)")
        if zeros:
            out[zeros[0]] = 1
            out[zeros[0]] = size_of(dshape) // max(size_of(out), 1)
        return tuple(out)

    def out_shape(self, in_shapes, data):
        try:
            if self.p.shape:
                out = reshape_codes(self.p.shape, tuple(data), self.p.reverse)
            else:
                out = self._legacy(tuple(data))
        except ValueError as exc:
            codes = self.p.shape or self.p.target_shape
            raise self.shape_error(in_shapes, f"shape={codes}: {exc}") from None
        if size_of(out) != size_of(data):
            raise self.shape_error(in_shapes, f"target shape {out} has {size_of(out)} elements "
                                              f"but data has {size_of(data)}")
        return out


# ---------------------------------------------------------------- Concat


@register
class Concat(Operator):
    """Join ``num_args`` inputs along ``dim``; every other axis must agree."""

    op_name = "Concat"
    aliases = ("concat",)
    variadic = True
    params = (P("num_args", parse_int), P("dim", parse_int, 1))

    def check_params(self) -> None:
        if self.p.num_args < 1:
            raise self.param_error(f"num_args must be at least 1, got {self.p.num_args}")

    def infer_shape(self, in_shapes):
        known = [s for s in in_shapes if s is not None]
        if not known:
            return list(in_shapes), [None]
        first = tuple(known[0])
        axis = _axis(self, in_shapes, self.p.dim, len(first), "dim")
        if any(len(s) != len(first) or s[:axis] + s[axis + 1:] != first[:axis] + first[axis + 1:]
               for s in map(tuple, known)):
            raise self.shape_error(in_shapes, f"inputs must have equal shapes except on axis {axis}")
        if len(known) < len(in_shapes):
            return list(in_shapes), [None]
        return list(in_shapes), [first[:axis] + (sum(s[axis] for s in known),) + first[axis + 1:]]

    def forward(self, xp, inputs, is_train, rt):
        axis = self.p.dim % inputs[0].ndim
        return [xp.concatenate(inputs, axis=axis)], None

    def backward(self, xp, out_grads, inputs, outputs, state, rt):
        axis = self.p.dim % inputs[0].ndim
        cuts = list(accumulate(a.shape[axis] for a in inputs[:-1]))
        return [part.copy() for part in xp.split(out_grads[0], cuts, axis=axis)]


# ---------------------------------------------------------------- SliceChannel


@register
class SliceChannel(Operator):
    """Split ``axis`` into ``num_outputs`` equal parts, one output each (``output0``, ...)."""

    op_name = "SliceChannel"
    aliases = ("split",)
    params = (P("num_outputs", parse_int), P("axis", parse_int, 1),
              P("squeeze_axis", parse_bool, False))

    def check_params(self) -> None:
        if self.p.num_outputs < 1:
            raise self.param_error(f"num_outputs must be at least 1, got {self.p.num_outputs}")

    def outputs(self) -> list[str]:
        return [f"output{i}" for i in range(self.p.num_outputs)]

    def infer_shape(self, in_shapes):
        data, k = in_shapes[0], self.p.num_outputs
        if data is None:
            return list(in_shapes), [None] * k
        axis = _axis(self, in_shapes, self.p.axis, len(data))
        if data[axis] % k:
            raise self.shape_error(in_shapes, f"axis {axis} of size {data[axis]} does not split "
                                              f"into {k} equal parts")
        if self.p.squeeze_axis and data[axis] != k:
            raise self.shape_error(in_shapes, f"squeeze_axis needs axis {axis} of size "
                                              f"num_outputs={k}, got {data[axis]}")
        part = () if self.p.squeeze_axis else (data[axis] // k,)
        return list(in_shapes), [tuple(data[:axis]) + part + tuple(data[axis + 1:])] * k

    def forward(self, xp, inputs, is_train, rt):
        data = inputs[0]
        axis = self.p.axis % data.ndim
        parts = xp.split(data, self.p.num_outputs, axis=axis)
        if self.p.squeeze_axis:
            parts = [xp.squeeze(part, axis=axis) for part in parts]
        return [part.copy() for part in parts], None

    def backward(self, xp, out_grads, inputs, outputs, state, rt):
        axis = self.p.axis % inputs[0].ndim
        grads = [xp.expand_dims(g, axis) for g in out_grads] if self.p.squeeze_axis else out_grads
        return [xp.concatenate(grads, axis=axis)]


# ---------------------------------------------------------------- transpose, expand_dims


@register
class Transpose(_OneInput):
    """Permute axes; the default ``axes=()`` reverses them."""

    op_name = "transpose"
    params = (P("axes", parse_shape, ()),)

    def _perm(self, in_shapes: list, ndim: int) -> tuple[int, ...]:
        if not self.p.axes:
            return tuple(range(ndim - 1, -1, -1))
        perm = tuple(_axis(self, in_shapes, a, ndim, "axes entry") for a in self.p.axes)
        if sorted(perm) != list(range(ndim)):
            raise self.shape_error(in_shapes, f"axes={self.p.axes} is not a permutation of "
                                              f"{ndim} axes")
        return perm

    def out_shape(self, in_shapes, data):
        return tuple(data[a] for a in self._perm(in_shapes, len(data)))

    def forward(self, xp, inputs, is_train, rt):
        data = inputs[0]
        return [xp.transpose(data, self._perm([data.shape], data.ndim))], None

    def backward(self, xp, out_grads, inputs, outputs, state, rt):
        perm = self._perm([inputs[0].shape], inputs[0].ndim)
        return [xp.ascontiguousarray(xp.transpose(out_grads[0], np.argsort(perm).tolist()))]


@register
class ExpandDims(_Relabel):
    """Insert a size-1 axis at ``axis`` (from -ndim-1 to ndim)."""

    op_name = "expand_dims"
    params = (P("axis", parse_int),)

    def out_shape(self, in_shapes, data):
        out = list(data)
        out.insert(_axis(self, in_shapes, self.p.axis, len(data) + 1), 1)
        return tuple(out)


# ---------------------------------------------------------------- slice_axis


@register
class SliceAxis(_OneInput):
    """Keep ``[begin, end)`` of one axis; negative bounds count from the end, None is the end."""

    op_name = "slice_axis"
    params = (P("axis", parse_int), P("begin", parse_int), P("end", parse_optional(parse_int)))

    def _bounds(self, in_shapes: list, shape: Shape) -> tuple[int, int, int]:
        axis = _axis(self, in_shapes, self.p.axis, len(shape))
        size = shape[axis]
        begin = self.p.begin + size if self.p.begin < 0 else self.p.begin
        end = size if self.p.end is None else self.p.end + size if self.p.end < 0 else self.p.end
        if not 0 <= begin < end <= size:
            raise self.shape_error(in_shapes, f"begin={self.p.begin}, end={self.p.end} is not a "
                                              f"non-empty range of axis {axis} (size {size})")
        return axis, begin, end

    def out_shape(self, in_shapes, data):
        axis, begin, end = self._bounds(in_shapes, data)
        return data[:axis] + (end - begin,) + data[axis + 1:]

    def forward(self, xp, inputs, is_train, rt):
        data = inputs[0]
        axis, begin, end = self._bounds([data.shape], data.shape)
        index = (slice(None),) * axis + (slice(begin, end),)
        return [data[index].copy()], None

    def backward(self, xp, out_grads, inputs, outputs, state, rt):
        data = inputs[0]
        axis, begin, end = self._bounds([data.shape], data.shape)
        grad = xp.zeros(data.shape, dtype=out_grads[0].dtype)
        grad[(slice(None),) * axis + (slice(begin, end),)] = out_grads[0]
        return [grad]


# ---------------------------------------------------------------- Pad


@register
class Pad(_OneInput):
    """Pad the spatial axes of a 4-D or 5-D input (constant, edge or reflect, as numpy.pad)."""

    op_name = "Pad"
    aliases = ("pad",)
    params = (P("mode", parse_enum("constant", "edge", "reflect"), "constant"),
              P("pad_width", parse_shape), P("constant_value", parse_float, 0.0))

    def check_params(self) -> None:
        width = self.p.pad_width
        if len(width) not in (8, 10) or any(width[:4]) or min(width) < 0:
            raise self.param_error(f"pad_width must hold 8 or 10 non-negative values, the first "
                                   f"four (N and C) 0, got {width}")

    def _pairs(self) -> list[tuple[int, int]]:
        w = self.p.pad_width
        return [(w[2 * i], w[2 * i + 1]) for i in range(len(w) // 2)]

    def out_shape(self, in_shapes, data):
        pairs = self._pairs()
        if len(data) != len(pairs):
            raise self.shape_error(in_shapes, f"pad_width has {len(self.p.pad_width)} values, "
                                              f"data needs 2 x {len(data)}")
        if self.p.mode == "reflect" and any(max(p) >= d for p, d in zip(pairs, data)):
            raise self.shape_error(in_shapes, f"reflect padding {self.p.pad_width} must be "
                                              f"smaller than each padded axis")
        return tuple(d + a + b for d, (a, b) in zip(data, pairs))

    def forward(self, xp, inputs, is_train, rt):
        data = inputs[0]
        if self.p.mode == "constant":
            value = data.dtype.type(self.p.constant_value)
            return [xp.pad(data, self._pairs(), mode="constant", constant_values=value)], None
        return [xp.pad(data, self._pairs(), mode=self.p.mode)], None

    def backward(self, xp, out_grads, inputs, outputs, state, rt):
        grad = out_grads[0]
        for axis, (before, after) in enumerate(self._pairs()):
            if before or after:
                grad = self._fold(grad, axis, before, after, inputs[0].shape[axis])
        return [grad.copy()]

    def _fold(self, grad: Any, axis: int, before: int, after: int, size: int) -> Any:
        """Sum the padded border of one axis back onto the values it copied."""

        def at(start: int, stop: int, step: int = 1) -> tuple:
            return (slice(None),) * axis + (slice(start, stop, step),)

        inner = grad[at(before, before + size)].copy()
        head, tail = grad[at(0, before)], grad[at(before + size, None)]
        if self.p.mode == "edge":
            inner[at(0, 1)] += head.sum(axis=axis, keepdims=True)
            inner[at(size - 1, size)] += tail.sum(axis=axis, keepdims=True)
        elif self.p.mode == "reflect":
            inner[at(1, before + 1)] += head[at(None, None, -1)]
            inner[at(size - 1 - after, size - 1)] += tail[at(None, None, -1)]
        return inner


# ---------------------------------------------------------------- Cast, identity, clip


@register
class Cast(Operator):
    """Convert to ``dtype``; the gradient passes through ``dtype`` (as MXNet's head gradient
    buffer does, e.g. rounding to float16) and is cast back to the input's dtype."""

    op_name = "Cast"
    aliases = ("cast",)
    params = (P("dtype", parse_enum("float16", "float32", "float64", "uint8", "int32", "int8",
                                    "int64")),)

    def infer_type(self, in_types):
        return list(in_types), [np.dtype(self.p.dtype)]

    def forward(self, xp, inputs, is_train, rt):
        return [inputs[0].astype(self.p.dtype)], None

    def backward(self, xp, out_grads, inputs, outputs, state, rt):
        return [out_grads[0].astype(self.p.dtype).astype(inputs[0].dtype)]


@register
class Identity(Operator):
    """A copy of the input (MXNet 1.x registers ``_copy``, with ``identity`` as its alias)."""

    op_name = "_copy"
    aliases = ("identity",)

    def forward(self, xp, inputs, is_train, rt):
        return [inputs[0].copy()], None

    def backward(self, xp, out_grads, inputs, outputs, state, rt):
        return [out_grads[0].copy()]


@register
class Clip(Operator):
    """Limit values to [a_min, a_max]; the gradient flows where a_min <= x <= a_max (MXNet)."""

    op_name = "clip"
    params = (P("a_min", parse_float), P("a_max", parse_float))

    def forward(self, xp, inputs, is_train, rt):
        cast = inputs[0].dtype.type
        return [xp.clip(inputs[0], cast(self.p.a_min), cast(self.p.a_max))], None

    def backward(self, xp, out_grads, inputs, outputs, state, rt):
        data, cast = inputs[0], inputs[0].dtype.type
        return [out_grads[0] * ((data >= cast(self.p.a_min)) & (data <= cast(self.p.a_max)))]


# ---------------------------------------------------------------- sum, mean


class _Reduce(_OneInput):
    """Shared rule of sum and mean: ``axis`` (None or () = all), ``keepdims``, ``exclude``.

    Reducing every axis without keepdims gives shape (1,), as MXNet 1.x outside numpy mode.
    """

    params = (P("axis", parse_optional(parse_shape), None), P("keepdims", parse_bool, False),
              P("exclude", parse_bool, False))
    average: ClassVar[bool]

    def _axes(self, in_shapes: list, ndim: int) -> tuple[int, ...]:
        if not self.p.axis:
            return tuple(range(ndim))
        axes = [_axis(self, in_shapes, a, ndim) for a in self.p.axis]
        if len(set(axes)) != len(axes):
            raise self.shape_error(in_shapes, f"axis={self.p.axis} names an axis twice")
        if self.p.exclude:
            return tuple(a for a in range(ndim) if a not in axes)
        return tuple(sorted(axes))

    def out_shape(self, in_shapes, data):
        axes = self._axes(in_shapes, len(data))
        if self.p.keepdims:
            return tuple(1 if i in axes else d for i, d in enumerate(data))
        return tuple(d for i, d in enumerate(data) if i not in axes) or (1,)

    def forward(self, xp, inputs, is_train, rt):
        data = inputs[0]
        reduce = data.mean if self.average else data.sum
        out = reduce(axis=self._axes([data.shape], data.ndim), keepdims=True)
        return [out.reshape(self.out_shape([data.shape], data.shape))], None

    def backward(self, xp, out_grads, inputs, outputs, state, rt):
        data = inputs[0]
        axes = self._axes([data.shape], data.ndim)
        kept = tuple(1 if i in axes else d for i, d in enumerate(data.shape))
        grad = xp.broadcast_to(out_grads[0].reshape(kept), data.shape)
        count = size_of([data.shape[a] for a in axes])
        return [grad / data.dtype.type(count) if self.average else grad.copy()]


@register
class Sum(_Reduce):
    """Sum over axes (``sum_axis`` is the old name)."""

    op_name = "sum"
    aliases = ("sum_axis",)
    average = False


@register
class Mean(_Reduce):
    """Mean over axes."""

    op_name = "mean"
    average = True
