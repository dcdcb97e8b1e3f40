"""SArray: one typed, lazily evaluated column of an SFrame.

An SArray is a Dask array over row chunks plus an optional validity mask (see
``_types``). Element-wise operations build graph layers and return at once; data is
read only by a reduction, ``head``, iteration, conversion or ``save``.

>>> import framestream as fs
>>> sa = fs.SArray([1, 2, None, 4])
>>> (sa * 2).sum(), sa.num_missing()
(14, 1)
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import dask
import dask.array as da
import numpy as np
import pandas as pd
import pyarrow as pa

from framestream.errors import ConversionError, LengthMismatchError, SchemaError
from framestream.frames import _reductions
from framestream.frames._blocks import (
    _and_valid,
    _apply_op,
    _apply_op_scalar,
    _block_unique,
    _fill,
    _isin,
    _logical_not,
    _meta,
    _nonempty,
    _nonempty_valid,
    _numeric_cast,
    _pack,
    _packed_data,
    _packed_valid,
    _rows_as_objects,
    _take_mask,
    _to_python,
    _values_from_python,
    _vectors_to_2d,
    block_first_row,
    object_row_bytes,
    row_at,
)
from framestream.frames._chunking import chunk_rows_for
from framestream.frames._rows import Rows, rechunk_to
from framestream.frames._types import (
    FLOAT,
    INT,
    LogicalType,
    convert_value,
    infer_type,
    parse_dtype,
    type_of_value,
)

_ARITHMETIC = {
    "+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.truediv,
    "//": operator.floordiv, "%": operator.mod, "**": operator.pow,
}
_COMPARISON = {
    "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge,
    "==": operator.eq, "!=": operator.ne,
}
_LOGICAL = {"&": np.logical_and, "|": np.logical_or}


class SArray:
    """A column of one type (int, float, str, bytes, vector, list, dict), possibly with None.

    Parameters
    ----------
    data : list, tuple, numpy array, pandas Series, pyarrow Array, or an SArray
    dtype : the column type; inferred from the values when omitted.
    """

    # ------------------------------------------------------------------ construction

    def __init__(self, data: Any = None, dtype: Any = None, ignore_cast_failure: bool = False):
        if isinstance(data, SArray):
            other = data if dtype is None else data.astype(dtype)
            self._set(other._logical, other._data_raw, other._valid_raw, other._rows)
            return
        values, valid, logical = _values_from_python(data, dtype, ignore_cast_failure)
        row_bytes = values.itemsize * (values.shape[1] if values.ndim == 2 else 1)
        rows_per_chunk = chunk_rows_for(row_bytes if values.dtype != object else object_row_bytes(values))
        chunks = (rows_per_chunk,) + values.shape[1:]
        d = da.from_array(values, chunks=chunks, asarray=False)
        v = None if valid is None else da.from_array(valid, chunks=rows_per_chunk)
        self._set(logical, d, v, Rows.of(d))

    def _set(self, logical: LogicalType, data: da.Array, valid: da.Array | None, rows: Rows) -> None:
        self._logical = logical
        self._data_raw = data
        self._valid_raw = valid
        self._rows = rows
        self._element_shape: tuple[int, ...] | None = None

    @classmethod
    def _make(cls, logical: LogicalType, data: da.Array, valid: da.Array | None, rows: Rows) -> SArray:
        out = cls.__new__(cls)
        out._set(logical, data, valid, rows)
        return out

    def _derive(self, data: da.Array, valid: da.Array | None, rows: Rows) -> SArray:
        """Same type (and tensor shape) over other data: filters, slices, rechunks."""
        out = SArray._make(self._logical, data, valid, rows)
        out._element_shape = self._element_shape
        return out

    @classmethod
    def from_const(cls, value: Any, size: int, dtype: Any = None) -> SArray:
        """``size`` copies of ``value``."""
        logical = parse_dtype(dtype) if dtype is not None else (type_of_value(value) or FLOAT)
        return cls([value] * size, dtype=logical)

    @classmethod
    def from_sequence(cls, start: int, stop: int | None = None) -> SArray:
        """The integers ``start`` .. ``stop - 1`` (or 0 .. ``start - 1``), computed lazily."""
        if stop is None:
            start, stop = 0, start
        n = max(0, stop - start)
        data = da.arange(start, stop, chunks=chunk_rows_for(8), dtype=np.int64)
        return cls._make(INT, data, None, Rows.of(data)) if n else cls([], dtype=int)

    # ------------------------------------------------------------------ metadata

    @property
    def _data(self) -> da.Array:
        return self._rows.fix(self._data_raw)

    @property
    def _valid(self) -> da.Array | None:
        return None if self._valid_raw is None else self._rows.fix(self._valid_raw)

    @property
    def dtype(self) -> type:
        """The Python type of the values (``int``, ``float``, ``str``, ``array.array``, ...)."""
        return self._logical.python_type

    @property
    def element_shape(self) -> tuple[int, ...] | None:
        """The shape of one value: (width,) for a vector, (C, H, W) for an image tensor column."""
        if self._logical.storage != "vector":
            return None
        return self._element_shape or (int(self._data_raw.shape[1]),)

    def __len__(self) -> int:
        return self._rows.num_rows()

    def size(self) -> int:
        return len(self)

    def _num_blocks(self) -> int:
        return self._rows.nblocks

    def __bool__(self) -> bool:
        raise ValueError("the truth value of an SArray is ambiguous; use & | ~ for logic, "
                         "or .any() / .all()")

    def __repr__(self) -> str:
        from framestream.frames._printing import format_sarray

        return format_sarray(self)

    # ------------------------------------------------------------------ element-wise ops

    def _aligned_other(self, other: SArray) -> tuple[da.Array, da.Array | None]:
        """``other``'s data and mask chunked like ``self``, or a clear length error."""
        if self._rows.aligned_with(other._rows):
            return other._data, other._valid
        mine, theirs = self._rows.resolve(), other._rows.resolve()
        if sum(mine) != sum(theirs):
            raise LengthMismatchError(
                f"cannot combine SArrays of {sum(mine)} and {sum(theirs)} rows; they must have equal length"
            )
        data = rechunk_to(other._data, mine)
        valid = None if other._valid is None else rechunk_to(other._valid, mine)
        return data, valid

    def _binary(self, other: Any, symbol: str, reflected: bool = False) -> SArray:
        if isinstance(other, SArray):
            other_data, other_valid = self._aligned_other(other)
            other_type = other._logical
        else:
            other_type = type_of_value(other)
            if other_type is None:
                raise SchemaError(f"cannot apply {symbol} to an SArray and None; use fillna or dropna")
            other_data, other_valid = other, None
        left, right = (other_type, self._logical) if reflected else (self._logical, other_type)
        result_type = _result_type(symbol, left, right)
        op = _ARITHMETIC.get(symbol) or _COMPARISON.get(symbol) or _LOGICAL[symbol]
        a, b = (other_data, self._data) if reflected else (self._data, other_data)
        out_dtype = result_type.chunk_dtype if result_type.storage != "vector" else np.float64
        if isinstance(a, da.Array) and isinstance(b, da.Array):
            data = da.map_blocks(_apply_op, a, b, op, out_dtype, dtype=out_dtype)
        elif isinstance(a, da.Array):
            data = a.map_blocks(_apply_op_scalar, op, b, False, out_dtype, dtype=out_dtype)
        else:
            data = b.map_blocks(_apply_op_scalar, op, a, True, out_dtype, dtype=out_dtype)
        return SArray._make(result_type, data, _and_valid(self._valid, other_valid), self._rows)

    def __add__(self, o): return self._binary(o, "+")
    def __radd__(self, o): return self._binary(o, "+", True)
    def __sub__(self, o): return self._binary(o, "-")
    def __rsub__(self, o): return self._binary(o, "-", True)
    def __mul__(self, o): return self._binary(o, "*")
    def __rmul__(self, o): return self._binary(o, "*", True)
    def __truediv__(self, o): return self._binary(o, "/")
    def __rtruediv__(self, o): return self._binary(o, "/", True)
    def __floordiv__(self, o): return self._binary(o, "//")
    def __rfloordiv__(self, o): return self._binary(o, "//", True)
    def __mod__(self, o): return self._binary(o, "%")
    def __rmod__(self, o): return self._binary(o, "%", True)
    def __pow__(self, o): return self._binary(o, "**")
    def __rpow__(self, o): return self._binary(o, "**", True)
    def __lt__(self, o): return self._binary(o, "<")
    def __le__(self, o): return self._binary(o, "<=")
    def __gt__(self, o): return self._binary(o, ">")
    def __ge__(self, o): return self._binary(o, ">=")
    def __eq__(self, o): return self._binary(o, "==")  # type: ignore[override]
    def __ne__(self, o): return self._binary(o, "!=")  # type: ignore[override]
    def __and__(self, o): return self._binary(o, "&")
    def __rand__(self, o): return self._binary(o, "&", True)
    def __or__(self, o): return self._binary(o, "|")
    def __ror__(self, o): return self._binary(o, "|", True)

    __hash__ = None  # type: ignore[assignment]

    def _unary(self, fn: Callable[[np.ndarray], np.ndarray], logical: LogicalType, what: str) -> SArray:
        if not (self._logical.is_numeric or self._logical.storage == "vector"):
            raise SchemaError(f"{what} needs a numeric column, not {self._logical.name}")
        data = self._data.map_blocks(fn, dtype=logical.chunk_dtype if logical.storage != "vector" else np.float64)
        return SArray._make(logical, data, self._valid, self._rows)

    def __neg__(self) -> SArray:
        return self._unary(np.negative, self._logical, "unary -")

    def __abs__(self) -> SArray:
        return self._unary(np.abs, self._logical, "abs()")

    def __invert__(self) -> SArray:
        return self._unary(_logical_not, INT, "~")

    # ------------------------------------------------------------------ conversions

    def astype(self, dtype: Any, undefined_on_failure: bool = False) -> SArray:
        """Convert every value; a failure names the row and value unless ``undefined_on_failure``."""
        target = parse_dtype(dtype)
        if target is self._logical:
            return self
        if self._logical.is_numeric and target.is_numeric:
            data = self._data.map_blocks(_numeric_cast, target.chunk_dtype, dtype=target.chunk_dtype)
            return SArray._make(target, data, self._valid, self._rows)
        return self._map_values(
            lambda v, row: convert_value(v, target, self._name_hint(), row),
            target, skip_na=True, undefined_on_failure=undefined_on_failure,
        )

    def _name_hint(self) -> str:
        return getattr(self, "_name", "") or ""

    def apply(self, fn: Callable[[Any], Any], dtype: Any = None, skip_na: bool = True) -> SArray:
        """``fn`` applied to every value, in threads, chunk by chunk.

        The result type is ``dtype``, or inferred from ``fn`` on the first ten values.
        ``fn`` returning None gives a missing value.
        """
        if dtype is None:
            sample = [fn(v) for v in self.head(10) if not (skip_na and v is None)]
            target = infer_type(sample)
        else:
            target = parse_dtype(dtype)
        return self._map_values(lambda v, row: fn(v), target, skip_na=skip_na)

    def _map_values(self, fn: Callable[[Any, int], Any], target: LogicalType, skip_na: bool,
                    undefined_on_failure: bool = False) -> SArray:
        source = self._logical
        name = self._name_hint()

        def block(data: np.ndarray, valid: np.ndarray | None, block_info=None) -> np.ndarray:
            first = block_first_row(block_info)
            values = _to_python(data, source)
            out = []
            for i, v in enumerate(values):
                if valid is not None and not valid[i]:
                    v = None
                if v is None and skip_na:
                    out.append(None)
                    continue
                try:
                    r = fn(v, row_at(first, i))
                    out.append(None if r is None else convert_value(r, target, name, row_at(first, i)))
                except ConversionError:
                    if not undefined_on_failure:
                        raise
                    out.append(None)
            return _pack(out)

        packed = da.map_blocks(block, self._data if self._data.ndim == 1 else _rows_as_objects(self._data),
                               self._valid, dtype=object, meta=np.empty(0, dtype=object))
        return SArray._from_packed(packed, target, self._rows)

    @classmethod
    def _from_packed(cls, packed: da.Array, target: LogicalType, rows: Rows) -> SArray:
        """A column from a 1-D object array of per-row results (None = missing)."""
        if target.storage == "vector":
            data = _vectors_to_2d(packed, target)
        else:
            data = packed.map_blocks(_packed_data, target, dtype=target.chunk_dtype, meta=_meta(target))
        valid = packed.map_blocks(_packed_valid, dtype=bool)
        return cls._make(target, data, valid, rows)

    # ------------------------------------------------------------------ missing values

    def num_missing(self) -> int:
        return 0 if self._valid is None else int((~self._valid).sum().compute())

    countna = num_missing

    def dropna(self) -> SArray:
        if self._valid is None:
            return self
        return self._filter(self._valid)

    def fillna(self, value: Any) -> SArray:
        """Missing values replaced by ``value`` (converted to the column type)."""
        if self._valid is None:
            return self
        fill = convert_value(value, self._logical, self._name_hint())
        data = da.map_blocks(_fill, self._data, self._valid, fill, dtype=self._data.dtype)
        return SArray._make(self._logical, data, None, self._rows)

    def is_in(self, other: Iterable[Any] | SArray) -> SArray:
        """1 where the value occurs in ``other``, else 0."""
        values = list(other) if not isinstance(other, SArray) else other.unique().to_list()
        lookup = set(v for v in values if v is not None)
        data = self._data.map_blocks(_isin, lookup, self._logical, dtype=np.int64)
        return SArray._make(INT, data, self._valid, self._rows)

    def _filter(self, mask: da.Array) -> SArray:
        """Rows where the bool dask array ``mask`` (aligned to self) is True."""
        rows = self._rows.filtered(mask)
        return self._filtered_by(mask, rows)

    def _filtered_by(self, mask: da.Array, rows: Rows) -> SArray:
        data = da.map_blocks(_take_mask, self._data, mask, dtype=self._data.dtype,
                             chunks=((math.nan,) * rows.nblocks,) + self._data.chunks[1:])
        valid = None
        if self._valid is not None:
            valid = da.map_blocks(_take_mask, self._valid, mask, dtype=bool,
                                  chunks=((math.nan,) * rows.nblocks,))
        return self._derive(data, valid, rows)

    def _bool_mask(self) -> da.Array:
        """This column as a filter mask: non-zero and not missing."""
        if not (self._logical.is_numeric):
            raise SchemaError(f"a filter needs an int or float column (0/1), not {self._logical.name}")
        mask = self._data != 0
        return mask if self._valid is None else mask & self._valid

    # ------------------------------------------------------------------ reductions

    def _stats(self) -> dict[str, Any]:
        if not (self._logical.is_numeric or self._logical.storage == "vector"):
            raise SchemaError(f"statistics need a numeric or vector column, not {self._logical.name}")
        return _reductions.summarize([self])[0]

    def summary(self) -> dict[str, Any]:
        """count, num_missing, nnz, sum, mean, var, std, min and max in one pass over the data."""
        return self._stats()

    def sum(self) -> Any:
        return self._stats()["sum"]

    def mean(self) -> Any:
        return self._stats()["mean"]

    def var(self, ddof: int = 0) -> Any:
        s = self._stats()
        if s["var"] is None or ddof == 0:
            return s["var"]
        n = s["count"]
        return s["var"] * n / (n - ddof) if n > ddof else None

    def std(self, ddof: int = 0) -> Any:
        v = self.var(ddof)
        return None if v is None else np.sqrt(v) if isinstance(v, np.ndarray) else math.sqrt(v)

    def min(self) -> Any:
        return self._stats()["min"]

    def max(self) -> Any:
        return self._stats()["max"]

    def nnz(self) -> int:
        if self._logical.is_numeric or self._logical.storage == "vector":
            return self._stats()["nnz"]
        counts = self._data.map_blocks(_nonempty, dtype=np.int64, chunks=((1,) * self._num_blocks(),))
        if self._valid is not None:
            counts = da.map_blocks(_nonempty_valid, self._data, self._valid, dtype=np.int64,
                                   chunks=((1,) * self._num_blocks(),))
        return int(counts.sum().compute())

    def any(self) -> bool:
        return self.nnz() > 0

    def all(self) -> bool:
        return self.nnz() == len(self) - self.num_missing()

    def unique(self) -> SArray:
        """The distinct values (missing counted once as None), in no particular order."""
        if self._logical.storage == "vector" or self._logical.name in ("list", "dict"):
            raise SchemaError(f"unique() is not defined for {self._logical.name} columns")
        parts = [dask.delayed(_block_unique)(d, v) for d, v in self.delayed_blocks()]
        uniques = dask.compute(*parts)
        merged = pd.unique(np.concatenate([u for u, _ in uniques])) if uniques else []
        values = list(merged) + ([None] if any(m for _, m in uniques) else [])
        return SArray(values, dtype=self._logical)

    def value_counts(self) -> Any:
        """An SFrame of each distinct value and how many rows hold it, most frequent first."""
        from framestream.frames.sframe import SFrame

        return SFrame({"value": self}).groupby("value", {"count": _count_agg()}).sort("count", False)

    # ------------------------------------------------------------------ access

    def head(self, n: int = 10) -> SArray:
        return SArray(self._head_values(n), dtype=self._logical)

    def tail(self, n: int = 10) -> SArray:
        total = len(self)
        return self[max(0, total - n):]

    def _head_values(self, n: int) -> list[Any]:
        out: list[Any] = []
        for values in self._iter_blocks():
            out.extend(values[: n - len(out)])
            if len(out) >= n:
                break
        return out

    def delayed_blocks(self) -> list[tuple[Any, Any]]:
        """(data, validity or None) of each row chunk as Delayed objects.

        Unoptimised on purpose: a joint compute of several columns then dedupes the
        shared reads (each column optimised alone would fuse them under new keys).
        """
        data = self._data.to_delayed(optimize_graph=False).ravel()
        valid = self._valid.to_delayed(optimize_graph=False).ravel() if self._valid is not None else [None] * len(data)
        return list(zip(data, valid))

    def _iter_blocks(self) -> Iterator[list[Any]]:
        for d, v in self.delayed_blocks():
            data, valid = dask.compute(d, v)
            yield _to_python(data, self._logical, valid)

    def __iter__(self) -> Iterator[Any]:
        for values in self._iter_blocks():
            yield from values

    def to_list(self) -> list[Any]:
        return [v for block in self._iter_blocks() for v in block]

    def to_numpy(self) -> np.ndarray:
        """The values as a NumPy array (float with NaN for missing numbers).

        A tensor column (``element_shape`` of more than one axis, e.g. images as
        (C, H, W)) comes back as (N, C, H, W).
        """
        out = self._to_numpy_rows()
        if self._element_shape is not None and len(self._element_shape) > 1:
            return out.reshape((len(out), *self._element_shape))
        return out

    def _to_numpy_rows(self) -> np.ndarray:
        data, valid = dask.compute(self._data, self._valid)
        if valid is None:
            return data
        if self._logical.is_numeric or self._logical.storage == "vector":
            out = data.astype(np.float64)
            out[~valid] = np.nan
            return out
        out = data.copy()
        out[~valid] = None
        return out

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        a = self.to_numpy()
        return a if dtype is None else a.astype(dtype)

    def to_arrow(self) -> pa.Array:
        data, valid = dask.compute(self._data, self._valid)
        mask = None if valid is None else ~valid
        if self._logical.storage == "vector":
            width = data.shape[1]
            flat = pa.array(data.ravel())
            arr = pa.FixedSizeListArray.from_arrays(flat, width)
            return arr if mask is None else pa.array(
                [None if m else row for m, row in zip(mask, data.tolist())], type=arr.type)
        if self._logical.name in ("list", "dict"):
            return pa.array(_to_python(data, self._logical, valid))
        return pa.array(data, mask=mask, from_pandas=False)

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, SArray):
            return self._filter(self._aligned_mask(key))
        if isinstance(key, slice):
            self._rows.resolve()
            data = self._data[key]
            valid = None if self._valid is None else self._valid[key]
            return self._derive(data, valid, Rows.of(data))
        if isinstance(key, int | np.integer):
            n = len(self)
            i = int(key) + n if key < 0 else int(key)
            if not 0 <= i < n:
                raise IndexError(f"row {key} is out of range for an SArray of {n} rows")
            data, valid = dask.compute(self._data[i : i + 1], None if self._valid is None else self._valid[i : i + 1])
            return _to_python(data, self._logical, valid)[0]
        raise TypeError(f"an SArray is indexed by an int, a slice or a filter SArray, not {type(key).__name__}")

    def _aligned_mask(self, mask: SArray) -> da.Array:
        data, valid = self._aligned_other(mask)
        m = SArray._make(mask._logical, data, valid, self._rows)
        return m._bool_mask()

    def materialize(self) -> SArray:
        """Compute the column now and keep it in memory (chunking kept)."""
        data, valid = dask.compute(self._data, self._valid)
        chunks = self._rows.resolve()
        d = da.from_array(data, chunks=(chunks,) + data.shape[1:], asarray=False)
        v = None if valid is None else da.from_array(valid, chunks=(chunks,))
        return self._derive(d, v, Rows.of(d))


# ---------------------------------------------------------------------- helpers (module level
# so that Dask can ship them to worker processes)


def _result_type(symbol: str, left: LogicalType, right: LogicalType) -> LogicalType:
    names = (left.name, right.name)
    if symbol in _COMPARISON:
        if symbol in ("==", "!=") or left is right or (left.is_numeric and right.is_numeric):
            return INT
    elif symbol in _LOGICAL:
        if left.is_numeric and right.is_numeric:
            return INT
    elif left.is_numeric and right.is_numeric:
        if symbol in ("/", "**"):
            return FLOAT
        return INT if names == ("int", "int") else FLOAT
    elif left.storage == "vector" or right.storage == "vector":
        if all(t.storage == "vector" or t.is_numeric for t in (left, right)):
            return left if left.storage == "vector" else right
    elif symbol == "+" and left is right and left.name in ("str", "list"):
        return left
    raise SchemaError(f"cannot apply {symbol} to {left.name} and {right.name} values")


def _count_agg():
    from framestream.frames.aggregate import COUNT

    return COUNT()
