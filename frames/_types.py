"""Logical column types and how each one is held in memory and on disk.

A column has one logical type (Turi's names: int, float, str, bytes, vector, list,
dict). In memory a column is a Dask array over row chunks: int64 and float64 for the
numeric types, a 2-D float array (rows x width) for vectors, and NumPy object arrays
for the variable-length types. Missing values (None) live in a separate validity mask;
the data slot under a missing value holds the type's placeholder, so arithmetic on it
is harmless.
"""

from __future__ import annotations

import array
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from framestream.errors import SchemaError


@dataclass(frozen=True)
class LogicalType:
    """One column type: its name, the Python type users see, and its storage class."""

    name: str
    python_type: type
    storage: str  # "fixed" (1-D numeric), "vector" (2-D float), "varlen" (offsets + bytes)
    chunk_dtype: np.dtype
    placeholder: Any

    def __repr__(self) -> str:
        return self.name

    @property
    def is_numeric(self) -> bool:
        return self.name in ("int", "float")

    @property
    def is_varlen(self) -> bool:
        return self.storage == "varlen"


INT = LogicalType("int", int, "fixed", np.dtype("int64"), 0)
FLOAT = LogicalType("float", float, "fixed", np.dtype("float64"), 0.0)
STR = LogicalType("str", str, "varlen", np.dtype(object), "")
BYTES = LogicalType("bytes", bytes, "varlen", np.dtype(object), b"")
VECTOR = LogicalType("vector", array.array, "vector", np.dtype("float64"), 0.0)
LIST = LogicalType("list", list, "varlen", np.dtype(object), None)
DICT = LogicalType("dict", dict, "varlen", np.dtype(object), None)

TYPES: dict[str, LogicalType] = {t.name: t for t in (INT, FLOAT, STR, BYTES, VECTOR, LIST, DICT)}

_BY_PYTHON_TYPE: dict[Any, LogicalType] = {
    int: INT,
    bool: INT,
    float: FLOAT,
    str: STR,
    bytes: BYTES,
    array.array: VECTOR,
    np.ndarray: VECTOR,
    list: LIST,
    tuple: LIST,
    dict: DICT,
}


def register_type(logical: LogicalType, *python_types: Any) -> None:
    """Add a logical type (images register themselves this way)."""
    TYPES[logical.name] = logical
    for python_type in python_types:
        _BY_PYTHON_TYPE[python_type] = logical


def parse_dtype(dtype: Any) -> LogicalType:
    """Normalise what a user may pass as a type: ``int``, ``'float'``, ``np.float32``, ..."""
    if isinstance(dtype, LogicalType):
        return dtype
    if isinstance(dtype, str):
        key = {"string": "str", "array": "vector", "double": "float", "integer": "int"}.get(
            dtype, dtype
        )
        if key in TYPES:
            return TYPES[key]
    elif dtype in _BY_PYTHON_TYPE:
        return _BY_PYTHON_TYPE[dtype]
    else:
        try:
            kind = np.dtype(dtype).kind
        except TypeError:
            kind = None
        if kind in ("i", "u", "b"):
            return INT
        if kind == "f":
            return FLOAT
        if kind == "U":
            return STR
        if kind == "S":
            return BYTES
    known = ", ".join(sorted(TYPES))
    raise SchemaError(f"unknown column type {dtype!r}; expected one of {known} (or a Python type)")


def type_of_value(value: Any) -> LogicalType | None:
    """The logical type of one Python value, or None for a missing value."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    logical = _BY_PYTHON_TYPE.get(type(value))
    if logical is not None:
        return logical
    for python_type, logical in _BY_PYTHON_TYPE.items():
        if isinstance(value, python_type):
            return logical
    if isinstance(value, np.generic):
        return parse_dtype(value.dtype)
    raise SchemaError(f"values of type {type(value).__name__} cannot be stored in a column")


def infer_type(values: Sequence[Any], column: str = "") -> LogicalType:
    """The one logical type that holds every value (ints widen to float)."""
    found: LogicalType | None = None
    for row, value in enumerate(values):
        t = type_of_value(value)
        if t is None or t is found:
            continue
        if found is None:
            found = t
        elif {found.name, t.name} == {"int", "float"}:
            found = FLOAT
        else:
            where = f" in column {column!r}" if column else ""
            raise SchemaError(
                f"row {row}{where} holds a {t.name} ({value!r}) but earlier rows hold {found.name}; "
                "a column has one type: convert the values or pass dtype="
            )
    return found if found is not None else FLOAT


def to_chunk(
    values: Sequence[Any], logical: LogicalType, column: str = "", first_row: int = 0
) -> tuple[np.ndarray, np.ndarray | None]:
    """Python values -> (data array, validity mask or None when nothing is missing)."""
    n = len(values)
    valid = np.ones(n, dtype=bool)
    if logical.storage == "vector":
        width = None
        rows = []
        for i, v in enumerate(values):
            if type_of_value(v) is None:
                valid[i] = False
                rows.append(None)
                continue
            vec = np.asarray(v, dtype=np.float64).ravel()
            if width is None:
                width = len(vec)
            elif len(vec) != width:
                raise SchemaError(
                    f"row {first_row + i} of vector column {column!r} has length {len(vec)}, "
                    f"expected {width} like the rows before it; vectors in a column share one length"
                )
            rows.append(vec)
        data = np.zeros((n, width or 0), dtype=np.float64)
        for i, vec in enumerate(rows):
            if vec is not None:
                data[i] = vec
    else:
        data = np.empty(n, dtype=logical.chunk_dtype)
        for i, v in enumerate(values):
            if type_of_value(v) is None:
                valid[i] = False
                data[i] = logical.placeholder
            else:
                data[i] = convert_value(v, logical, column, first_row + i)
    return data, (None if valid.all() else valid)


def convert_value(value: Any, logical: LogicalType, column: str = "", row: int | str | None = None) -> Any:
    """Convert one non-missing value to ``logical`` or raise naming the row and value."""
    try:
        if logical is INT:
            if isinstance(value, str):
                return int(value.strip())
            if isinstance(value, float) and not value.is_integer():
                raise ValueError("not a whole number")
            return int(value)
        if logical is FLOAT:
            return float(value)
        if logical is STR:
            return value.decode() if isinstance(value, bytes) else str(value)
        if logical is BYTES:
            return value.encode() if isinstance(value, str) else bytes(value)
        if logical is LIST:
            if isinstance(value, str):
                value = json.loads(value)
            if isinstance(value, np.ndarray | array.array | tuple):
                value = list(value)
            if not isinstance(value, list):
                raise ValueError("not a list")
            return value
        if logical.name == "image":
            from framestream.frames.image import Image

            return value if isinstance(value, Image) else Image(value)
        if logical is DICT:
            if isinstance(value, str):
                value = json.loads(value)
            if not isinstance(value, dict):
                raise ValueError("not a dict")
            return value
    except (ValueError, TypeError) as exc:
        from framestream.errors import ConversionError

        parts = ([f"row {row}"] if row is not None else []) + ([f"column {column!r}"] if column else [])
        where = " of ".join(parts) or "value"
        raise ConversionError(
            f"{where}: cannot convert {value!r} to {logical.name} ({exc})"
        ) from None
    return value
