"""``mx.nd``: a thin NDArray over a NumPy or CuPy array, and MXNet's binary files.

It exists so MXNet-style user code (``arr.asnumpy()``, ``mx.nd.zeros(shape, ctx)``,
``mx.nd.save``) runs unchanged; the maths lives in the executor and the operators.
Every registered operator is also callable imperatively: ``mx.nd.FullyConnected(...)``.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from framestream.nn import _ndarray_file
from framestream.nn.context import Context, context_of, cpu, current_context, to_device, to_numpy


class NDArray:
    """An array on a device. ``NDArray(data)`` wraps a numpy/cupy array without copying."""

    __array_priority__ = 1000.0

    def __init__(self, data: Any, ctx: Context | None = None):
        self._data = data
        self._ctx = ctx or context_of(data)

    # -- what it is ---------------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self._data.shape)

    @property
    def dtype(self) -> type:
        return np.dtype(self._data.dtype).type

    @property
    def size(self) -> int:
        return int(self._data.size)

    @property
    def ndim(self) -> int:
        return int(self._data.ndim)

    @property
    def context(self) -> Context:
        return self._ctx

    ctx = context

    @property
    def data(self) -> Any:
        """The underlying numpy or cupy array (no copy)."""
        return self._data

    @property
    def T(self) -> NDArray:
        return NDArray(self._data.T.copy(), self._ctx)

    # -- moving and converting ------------------------------------------------------------
    def asnumpy(self) -> np.ndarray:
        return np.array(to_numpy(self._data), copy=True)

    def asscalar(self) -> Any:
        if self.size != 1:
            raise ValueError(f"asscalar needs an array of one element, this one has shape {self.shape}")
        return self.asnumpy().reshape(-1)[0]

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        out = to_numpy(self._data)
        return out if dtype is None else out.astype(dtype)

    def astype(self, dtype: Any, copy: bool = True) -> NDArray:
        return NDArray(self._data.astype(dtype, copy=copy), self._ctx)

    def as_in_context(self, ctx: Context) -> NDArray:
        return self if ctx == self._ctx else NDArray(to_device(self._data, ctx), ctx)

    def copyto(self, other: NDArray | Context) -> NDArray:
        """Copy into ``other`` (an NDArray of the same shape) or onto a context."""
        if isinstance(other, Context):
            return NDArray(to_device(self._data, other).copy(), other)
        if other.shape != self.shape:
            raise ValueError(f"copyto: shapes differ, {self.shape} into {other.shape}")
        other._data[...] = to_device(self._data, other._ctx)
        return other

    def copy(self) -> NDArray:
        return NDArray(self._data.copy(), self._ctx)

    def reshape(self, *shape: Any) -> NDArray:
        shape = shape[0] if len(shape) == 1 and isinstance(shape[0], tuple | list) else shape
        return NDArray(self._data.reshape(shape), self._ctx)

    def wait_to_read(self) -> None:
        """Computation is synchronous here; kept for MXNet code."""

    # -- indexing and arithmetic -------------------------------------------------------------
    def __getitem__(self, key: Any) -> NDArray:
        return NDArray(self._data[_raw(key)], self._ctx)

    def __setitem__(self, key: Any, value: Any) -> None:
        self._data[_raw(key)] = _on(value, self._ctx)

    def __len__(self) -> int:
        return self.shape[0]

    def _binary(self, other: Any, fn: Any) -> NDArray:
        return NDArray(fn(self._data, _on(other, self._ctx)), self._ctx)

    def __add__(self, o): return self._binary(o, lambda a, b: a + b)  # noqa: E704
    def __radd__(self, o): return self._binary(o, lambda a, b: b + a)  # noqa: E704
    def __sub__(self, o): return self._binary(o, lambda a, b: a - b)  # noqa: E704
    def __rsub__(self, o): return self._binary(o, lambda a, b: b - a)  # noqa: E704
    def __mul__(self, o): return self._binary(o, lambda a, b: a * b)  # noqa: E704
    def __rmul__(self, o): return self._binary(o, lambda a, b: b * a)  # noqa: E704
    def __truediv__(self, o): return self._binary(o, lambda a, b: a / b)  # noqa: E704
    def __rtruediv__(self, o): return self._binary(o, lambda a, b: b / a)  # noqa: E704
    def __pow__(self, o): return self._binary(o, lambda a, b: a**b)  # noqa: E704
    def __neg__(self): return NDArray(-self._data, self._ctx)  # noqa: E704
    def __eq__(self, o): return self._binary(o, lambda a, b: (a == b).astype(a.dtype))  # noqa: E704
    def __gt__(self, o): return self._binary(o, lambda a, b: (a > b).astype(a.dtype))  # noqa: E704
    def __lt__(self, o): return self._binary(o, lambda a, b: (a < b).astype(a.dtype))  # noqa: E704

    __hash__ = object.__hash__

    def __iadd__(self, o):
        self._data += _on(o, self._ctx)
        return self

    def __isub__(self, o):
        self._data -= _on(o, self._ctx)
        return self

    def __imul__(self, o):
        self._data *= _on(o, self._ctx)
        return self

    def __itruediv__(self, o):
        self._data /= _on(o, self._ctx)
        return self

    def __repr__(self) -> str:
        shape = "x".join(str(d) for d in self.shape)
        return f"\n{self.asnumpy()}\n<NDArray {shape} @{self._ctx}>"


def _on(value: Any, ctx: Context) -> Any:
    if isinstance(value, NDArray):
        return value._data if value._ctx == ctx else to_device(value._data, ctx)
    if isinstance(value, int | float | np.generic):
        return value
    return to_device(value, ctx)


def _raw(key: Any) -> Any:
    if isinstance(key, NDArray):
        return key._data
    if isinstance(key, tuple):
        return tuple(_raw(k) for k in key)
    return key


# -- constructors -----------------------------------------------------------------------


def array(source: Any, ctx: Context | None = None, dtype: Any = None) -> NDArray:
    """A new NDArray holding a copy of ``source``; float32 unless ``source`` says otherwise."""
    ctx = ctx or current_context()
    if isinstance(source, NDArray):
        source = source._data
    if dtype is None:
        dtype = getattr(source, "dtype", None)
        if dtype is None:
            dtype = np.float32
    with ctx.device():
        return NDArray(ctx.xp.array(to_device(source, ctx), dtype=dtype, copy=True), ctx)


def _filled(fill: str, shape: Any, ctx: Context | None, dtype: Any) -> NDArray:
    ctx = ctx or current_context()
    shape = (shape,) if isinstance(shape, int) else tuple(shape)
    with ctx.device():
        return NDArray(getattr(ctx.xp, fill)(shape, dtype=dtype or np.float32), ctx)


def zeros(shape: Any, ctx: Context | None = None, dtype: Any = None, **kwargs: Any) -> NDArray:
    return _filled("zeros", shape, ctx, dtype)


def ones(shape: Any, ctx: Context | None = None, dtype: Any = None, **kwargs: Any) -> NDArray:
    return _filled("ones", shape, ctx, dtype)


def empty(shape: Any, ctx: Context | None = None, dtype: Any = None) -> NDArray:
    return _filled("zeros", shape, ctx, dtype)


def full(shape: Any, val: float, ctx: Context | None = None, dtype: Any = None) -> NDArray:
    out = _filled("zeros", shape, ctx, dtype)
    out._data[...] = val
    return out


def concatenate(arrays: list[NDArray], axis: int = 0, always_copy: bool = True) -> NDArray:
    ctx = arrays[0].context
    return NDArray(ctx.xp.concatenate([_on(a, ctx) for a in arrays], axis=axis), ctx)


def waitall() -> None:
    """Computation is synchronous here; kept for MXNet code."""


# -- files ---------------------------------------------------------------------------------


def save(fname: str | os.PathLike, data: NDArray | list[NDArray] | dict[str, NDArray]) -> None:
    """Write arrays in MXNet's binary format (V2 records), which Apache MXNet 1.x loads."""
    if isinstance(data, NDArray):
        data = [data]
    if isinstance(data, dict):
        plain: Any = {k: to_numpy(_unwrap(v)) for k, v in data.items()}
    else:
        plain = [to_numpy(_unwrap(v)) for v in data]
    _ndarray_file.save(fname, plain)


def load(fname: str | os.PathLike, ctx: Context | None = None) -> list[NDArray] | dict[str, NDArray]:
    """Read an MXNet NDArray file of any generation (legacy, V1, V2): a list or a dict."""
    ctx = ctx or cpu()
    loaded = _ndarray_file.load(fname)
    if isinstance(loaded, dict):
        return {k: array(v, ctx, dtype=v.dtype) for k, v in loaded.items()}
    return [array(v, ctx, dtype=v.dtype) for v in loaded]


def _unwrap(value: Any) -> Any:
    return value._data if isinstance(value, NDArray) else value


def __getattr__(attr: str) -> Any:
    """Imperative operators: ``mx.nd.FullyConnected(data=x, weight=w, bias=b, num_hidden=3)``."""
    from framestream.nn.ops import lookup

    cls = lookup(attr)
    if cls is None:
        raise AttributeError(f"module 'mx.nd' has no attribute or operator {attr!r}")

    def run(*args: Any, **kwargs: Any) -> NDArray | list[NDArray]:
        params = {k: v for k, v in kwargs.items() if not isinstance(v, NDArray) and k not in ("name", "out")}
        arrays = {k: v for k, v in kwargs.items() if isinstance(v, NDArray)}
        if cls.variadic and "num_args" not in params:
            params["num_args"] = len(args) + len(arrays)
        op = cls(node=attr.lower(), **params)
        names = op.inputs()
        values = dict(zip(names, args))
        values.update(arrays)
        missing = [n for n in names if n not in values]
        if missing:
            raise TypeError(f"{attr}: missing inputs {', '.join(missing)}")
        ctx = values[names[0]].context
        from framestream.nn import random as _random
        from framestream.nn.ops import Runtime

        with ctx.device():
            outs, _ = op.forward(ctx.xp, [values[n]._data for n in names], False,
                                 Runtime(ctx.xp, _random.next_seed()))
        wrapped = [NDArray(o, ctx) for o in outs]
        return wrapped[0] if len(wrapped) == 1 else wrapped

    run.__name__ = attr
    return run
