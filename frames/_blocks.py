"""What SArray hands to Dask: per-chunk NumPy functions, and Python values <-> chunks.

Module level so that Dask can ship them to worker processes; SArray composes them
into graph layers.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable
from typing import Any

import dask
import dask.array as da
import numpy as np
import pandas as pd
import pyarrow as pa

from framestream.errors import ConversionError, SchemaError
from framestream.frames._types import (
    INT,
    LogicalType,
    convert_value,
    infer_type,
    parse_dtype,
    to_chunk,
    type_of_value,
)


def _values_from_python(data: Any, dtype: Any, ignore_cast_failure: bool) -> tuple[np.ndarray, np.ndarray | None, LogicalType]:
    if data is None:
        data = []
    if isinstance(data, pa.ChunkedArray | pa.Array):
        data = data.to_pandas()
    if isinstance(data, pd.Series):
        if data.dtype != object and dtype is None:
            from framestream.frames._arrow import column_from_arrow, memory_from_arrow

            values, valid, logical = column_from_arrow(pa.Array.from_pandas(data))
            return memory_from_arrow(values, logical), valid, logical
        data = [None if _is_na(v) else v for v in data.tolist()]
    if isinstance(data, np.ndarray) and data.dtype != object:
        logical = parse_dtype(dtype) if dtype is not None else parse_dtype(data.dtype) if data.ndim == 1 else parse_dtype("vector")
        if data.ndim == 2 and logical.storage == "vector":
            return np.ascontiguousarray(data, dtype=data.dtype if data.dtype.kind == "f" else np.float64), None, logical
        if data.ndim == 1 and logical.is_numeric:
            valid = None
            if data.dtype.kind == "f" and np.isnan(data).any():
                valid = ~np.isnan(data)
                data = np.where(valid, data, 0)
            if logical is INT and data.dtype.kind == "f" and not np.all(np.mod(data, 1) == 0):
                raise ConversionError("cannot store non-whole floats in an int column; use dtype=float")
            return data.astype(logical.chunk_dtype), valid, logical
        data = data.tolist()
    values = list(data)
    logical = parse_dtype(dtype) if dtype is not None else infer_type(values)
    if ignore_cast_failure:
        safe = []
        for v in values:
            try:
                safe.append(None if type_of_value(v) is None else convert_value(v, logical))
            except (ConversionError, SchemaError):
                safe.append(None)
        values = safe
    d, valid = to_chunk(values, logical)
    return d, valid, logical


def object_row_bytes(values: np.ndarray, sample: int = 1000) -> float:
    """Average bytes a variable-length value takes in memory (strings, bytes, images)."""
    total = 0
    step = max(1, len(values) // sample)
    picked = values[::step][:sample]
    for v in picked:
        if v is None:
            continue
        size = getattr(v, "size", None)  # Image: its bytes
        total += (size if isinstance(size, int) else len(v) if hasattr(v, "__len__") else 8) + 56
    return max(64.0, total / max(1, len(picked)))


def _is_na(value: Any) -> bool:
    return value is None or value is pd.NA or value is pd.NaT or (isinstance(value, float) and math.isnan(value))


def _apply_op(a: np.ndarray, b: np.ndarray, op: Callable, out_dtype: np.dtype) -> np.ndarray:
    if a.dtype.kind in "iu" and b.dtype.kind in "iu" and op in (operator.floordiv, operator.mod):
        b = np.where(b == 0, 1, b)  # int // 0 and int % 0: avoid SIGFPE-like warnings
    if op is operator.pow:
        a, b = a.astype(np.float64), b.astype(np.float64)
    if a.ndim == 2 and b.ndim == 1:  # vector (op) number column: one number per row
        b = b[:, None]
    elif a.ndim == 1 and b.ndim == 2:
        a = a[:, None]
    with np.errstate(all="ignore"):
        return np.asarray(op(a, b)).astype(out_dtype, copy=False)


def _apply_op_scalar(a: np.ndarray, op: Callable, scalar: Any, reflected: bool, out_dtype: np.dtype) -> np.ndarray:
    if op is operator.pow:
        a, scalar = a.astype(np.float64), float(scalar)
    with np.errstate(all="ignore"):
        r = op(scalar, a) if reflected else op(a, scalar)
    return np.asarray(r).astype(out_dtype, copy=False)


def _and_valid(a: da.Array | None, b: da.Array | None) -> da.Array | None:
    if a is None:
        return b
    if b is None:
        return a
    return a & b


def _logical_not(a: np.ndarray) -> np.ndarray:
    return (a == 0).astype(np.int64)


def _numeric_cast(a: np.ndarray, dtype: np.dtype) -> np.ndarray:
    with np.errstate(all="ignore"):
        if dtype.kind == "i" and a.dtype.kind == "f":
            return np.nan_to_num(np.trunc(a)).astype(dtype)
        return a.astype(dtype)


def _fill(data: np.ndarray, valid: np.ndarray, fill: Any) -> np.ndarray:
    out = data.copy()
    out[~valid] = fill
    return out


def _isin(data: np.ndarray, lookup: set, logical: LogicalType) -> np.ndarray:
    if logical.is_numeric:
        numbers = [v for v in lookup if isinstance(v, int | float | np.number) and not isinstance(v, bool)]
        if data.dtype.kind == "i" and all(isinstance(v, int | np.integer) for v in numbers):
            return np.isin(data, np.array(numbers, dtype=np.int64)).astype(np.int64)
        return np.isin(data.astype(np.float64), np.array(numbers, dtype=np.float64)).astype(np.int64)
    return np.fromiter((v in lookup for v in data), dtype=np.int64, count=len(data))


def _take_mask(data: np.ndarray, mask: np.ndarray) -> np.ndarray:
    return data[mask]


def _nonempty(data: np.ndarray) -> np.ndarray:
    return np.array([sum(1 for v in data if v)], dtype=np.int64)


def _nonempty_valid(data: np.ndarray, valid: np.ndarray) -> np.ndarray:
    return np.array([sum(1 for v, ok in zip(data, valid) if ok and v)], dtype=np.int64)


def _block_unique(data: np.ndarray, valid: np.ndarray | None) -> tuple[np.ndarray, bool]:
    if valid is not None:
        return pd.unique(data[valid]), bool((~valid).any())
    return pd.unique(data), False


def _to_python(data: np.ndarray, logical: LogicalType, valid: np.ndarray | None = None) -> list[Any]:
    """A block as Python values (None where missing)."""
    if logical.storage == "vector":
        import array

        values = [array.array("d", row) for row in data] if data.ndim == 2 else list(data)
    elif logical.is_numeric:
        values = data.tolist()
    else:
        values = list(data)
    if valid is not None:
        values = [v if ok else None for v, ok in zip(values, valid)]
    return values


def _rows_as_objects(data: da.Array) -> da.Array:
    """A 2-D vector array as a 1-D object array of row vectors (for per-row functions)."""
    return data.map_blocks(_rows_block, drop_axis=1, dtype=object, meta=np.empty(0, dtype=object))


def _rows_block(block: np.ndarray) -> np.ndarray:
    out = np.empty(len(block), dtype=object)
    for i, row in enumerate(block):
        out[i] = row
    return out


def _pack(values: list[Any]) -> np.ndarray:
    """Per-row results of a function -> a 1-D object array (None = missing)."""
    out = np.empty(len(values), dtype=object)
    for i, v in enumerate(values):
        out[i] = v
    return out


def _packed_valid(packed: np.ndarray) -> np.ndarray:
    return np.fromiter((v is not None for v in packed), dtype=bool, count=len(packed))


def _packed_data(packed: np.ndarray, target: LogicalType) -> np.ndarray:
    out = np.empty(len(packed), dtype=target.chunk_dtype)
    for i, v in enumerate(packed):
        out[i] = target.placeholder if v is None else v
    return out


def _vectors_to_2d(packed: da.Array, target: LogicalType) -> da.Array:
    """Per-row vectors -> a 2-D float array; the width comes from the first block."""
    first = next(v for v in dask.compute(packed.blocks[0])[0] if v is not None) if packed.numblocks[0] else None
    width = 0 if first is None else len(np.asarray(first).ravel())

    def block(p: np.ndarray) -> np.ndarray:
        out = np.zeros((len(p), width))
        for i, v in enumerate(p):
            if v is not None:
                row = np.asarray(v, dtype=np.float64).ravel()
                if len(row) != width:
                    raise SchemaError(f"a function returned a vector of length {len(row)}, expected {width}")
                out[i] = row
        return out

    return packed.map_blocks(block, new_axis=1, chunks=(packed.chunks[0], (width,)), dtype=np.float64)


def _chunk_dtype(target: LogicalType) -> Any:
    return object if target.storage == "vector" else target.chunk_dtype


def _meta(target: LogicalType) -> np.ndarray:
    return np.empty(0, dtype=_chunk_dtype(target))


def block_first_row(block_info: Any) -> int | str:
    """The global number of a block's first row, or a chunk label after a filter."""
    try:
        loc = block_info[0]["array-location"][0][0]
        if not (isinstance(loc, float) and math.isnan(loc)):
            return int(loc)
        return f"chunk {block_info[0]['chunk-location'][0]}"
    except (TypeError, KeyError, IndexError):
        return 0


def row_at(first: int | str, i: int) -> int | str:
    """Row ``i`` of a block as users should see it (within-chunk after a filter)."""
    if isinstance(first, str):
        return f"{i} of {first} (counted within the chunk: the frame was filtered)"
    return first + i
