"""Arrow <-> column conversions: the bridge to pandas, Parquet, CSV and Dask DataFrames.

Arrow is the common currency: pandas frames, Parquet row groups and CSV record batches
all arrive as Arrow arrays, and one function per direction maps them to our types.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from framestream.errors import SchemaError
from framestream.frames._types import BYTES, DICT, FLOAT, INT, LIST, STR, VECTOR, LogicalType


def logical_of_arrow(t: pa.DataType, column: str = "") -> LogicalType:
    """The column type that holds values of Arrow type ``t``."""
    if pa.types.is_integer(t) or pa.types.is_boolean(t):
        return INT
    if pa.types.is_floating(t) or pa.types.is_decimal(t) or pa.types.is_null(t):
        return FLOAT
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return STR
    if pa.types.is_temporal(t) or pa.types.is_dictionary(t):
        return STR
    if pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_fixed_size_binary(t):
        return BYTES
    if pa.types.is_fixed_size_list(t) and (pa.types.is_floating(t.value_type) or pa.types.is_integer(t.value_type)):
        return VECTOR
    if pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t):
        return LIST
    if pa.types.is_struct(t) or pa.types.is_map(t):
        return DICT
    raise SchemaError(f"column {column!r}: Arrow type {t} has no framestream column type")


def column_from_arrow(arr: pa.Array | pa.ChunkedArray, logical: LogicalType | None = None,
                      column: str = "") -> tuple[Any, np.ndarray | None, LogicalType]:
    """An Arrow array -> (data for the writer or memory, validity or None, type).

    Variable-length string and binary data stay Arrow arrays (the writer stores their
    buffers as they are); everything else becomes NumPy.
    """
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks() if arr.num_chunks != 1 else arr.chunk(0)
    logical = logical or logical_of_arrow(arr.type, column)
    valid = None
    if arr.null_count:
        valid = arr.is_valid().to_numpy(zero_copy_only=False)
    if logical is INT or logical is FLOAT:
        target = pa.int64() if logical is INT else pa.float64()
        filled = arr.cast(target) if arr.type != target else arr
        if arr.null_count:
            filled = filled.fill_null(0)
        data = filled.to_numpy(zero_copy_only=False)
        if logical is FLOAT and valid is None and np.isnan(data).any():
            valid = ~np.isnan(data)
            data = np.where(valid, data, 0.0)
        return data, valid, logical
    if logical in (STR, BYTES):
        if pa.types.is_temporal(arr.type) or pa.types.is_dictionary(arr.type):
            arr = arr.cast(pa.string())
        return arr, valid, logical
    if logical is VECTOR:
        width = arr.type.list_size
        flat = pc.list_flatten(arr.fill_null([0.0] * width) if arr.null_count else arr)
        data = flat.to_numpy(zero_copy_only=False).astype(np.float64).reshape(len(arr), width)
        return data, valid, logical
    values = np.empty(len(arr), dtype=object)
    for i, v in enumerate(arr.to_pylist()):
        values[i] = dict(v) if isinstance(v, list) and logical is DICT else v
    return values, valid, logical


def memory_from_arrow(arr: Any, logical: LogicalType) -> np.ndarray:
    """Writer-ready data -> the in-memory chunk layout of ``logical``."""
    if isinstance(arr, pa.Array):
        return arr.to_numpy(zero_copy_only=False).astype(object)
    return arr


def arrow_from_block(data: np.ndarray, valid: np.ndarray | None, logical: LogicalType) -> pa.Array:
    """One in-memory block -> an Arrow array with nulls where values are missing."""
    mask = None if valid is None else ~valid
    if logical is VECTOR:
        flat = pa.array(np.ascontiguousarray(data).ravel())
        arr = pa.FixedSizeListArray.from_arrays(flat, data.shape[1])
        if mask is not None and mask.any():
            arr = pc.if_else(pa.array(mask), pa.scalar(None, arr.type), arr)
        return arr
    if logical in (LIST, DICT):
        return pa.array([None if (mask is not None and mask[i]) else v for i, v in enumerate(data)])
    typ = {"int": pa.int64(), "float": pa.float64(), "str": pa.large_string(), "bytes": pa.large_binary()}[logical.name]
    return pa.array(data, type=typ, mask=mask)
