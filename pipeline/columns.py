"""Which SFrame columns can feed a network, and turning a chunk of them into arrays.

Checked once, when a stream is made: the fields exist, data columns are int, float or
vector (or one image column, alone), the label is int or float. Checked per chunk, as
it is read: no missing values, list columns of one length. Every error names the
column, the row where there is one, and the rule.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from framestream.errors import ColumnNotFoundError, ConversionError, SchemaError
from framestream.frames import SFrame
from framestream.pipeline.batch import Block

NUMERIC = ("int", "float")


@dataclass(frozen=True)
class DataColumn:
    """One data column: its name, kind ('number', 'vector', 'list' or 'image') and width."""

    name: str
    kind: str
    width: int
    shape: tuple[int, ...] | None = None  # element shape of a tensor column, (C, H, W)


def parse_fields(frame: SFrame, data_field: Any, label_field: Any,
                 who: str) -> tuple[list[str], str | None]:
    """``data_field`` as a list of names, ``label_field`` as one name; both in ``frame``."""
    data = [data_field] if isinstance(data_field, str) else list(data_field or [])
    if not data or not all(isinstance(f, str) for f in data):
        raise SchemaError(
            f"{who}: data_field must be a column name or a list of them, not {data_field!r}")
    if isinstance(label_field, list | tuple):
        if len(label_field) != 1:
            raise SchemaError(f"{who}: label_field must be one column, not {list(label_field)}")
        label_field = label_field[0]
    if label_field is not None and not isinstance(label_field, str):
        raise SchemaError(f"{who}: label_field must be a column name, not {label_field!r}")
    names = frame.column_names()
    for role, field in [*(("data_field", f) for f in data), ("label_field", label_field)]:
        if field is not None and field not in names:
            raise ColumnNotFoundError(f"{who}: {role} {field!r} is not a column of the frame; "
                                      f"its columns are {names}")
    return data, label_field


def describe_data(frame: SFrame, fields: list[str], who: str) -> list[DataColumn]:
    """What each data column is; an image column must be the only one."""
    out = []
    for name in fields:
        col = frame[name]
        kind = col._logical.name
        if kind in NUMERIC:
            out.append(DataColumn(name, "number", 1))
        elif kind == "vector":
            shape = col.element_shape
            tensor = shape if len(shape) > 1 else None
            out.append(DataColumn(name, "vector", int(np.prod(shape)), tensor))
        elif kind == "list":
            out.append(DataColumn(name, "list", _list_width(col, name, who)))
        elif kind == "image":
            out.append(DataColumn(name, "image", 0))
        else:
            raise SchemaError(f"{who}: data column {name!r} is {kind}; data columns must be int, "
                              "float or vector (array), or a single image column")
    images = [c.name for c in out if c.kind == "image"]
    if images and len(out) > 1:
        others = [c.name for c in out if c.kind != "image"]
        raise SchemaError(f"{who}: image column {images[0]!r} cannot be mixed with other data "
                          f"columns ({others}); an image column must be the only data_field")
    return out


def check_label(frame: SFrame, label: str | None, who: str) -> None:
    if label is None:
        return
    kind = frame[label]._logical.name
    if kind not in NUMERIC:
        raise SchemaError(f"{who}: label column {label!r} is {kind}; label_field must be an int or "
                          "float column (one number per row)")


def _list_width(col: Any, name: str, who: str) -> int:
    first = col.head(1).to_list()
    if not first:
        return 0
    if first[0] is None:
        raise ConversionError(missing_message(name, 0))
    try:
        return len(np.asarray(first[0], dtype=np.float32).reshape(-1))
    except (TypeError, ValueError):
        raise SchemaError(
            f"{who}: list column {name!r} must hold numbers (row 0 is {first[0]!r})") from None


def missing_message(name: str, row: int) -> str:
    return (f"row {row} of column {name!r} is missing (None); every row fed to a network needs a "
            f"value: drop those rows with sf.dropna({name!r}) or fill them with "
            f"sf.fillna({name!r}, value)")


def check_present(name: str, valid: np.ndarray | None, first_row: int) -> None:
    """Raise naming the first missing row of a chunk, if any."""
    if valid is not None and not valid.all():
        raise ConversionError(missing_message(name, first_row + int(np.argmin(valid))))


def label_array(name: str, pair: tuple[np.ndarray, np.ndarray | None],
                first_row: int) -> np.ndarray:
    data, valid = pair
    check_present(name, valid, first_row)
    return np.asarray(data, dtype=np.float32).reshape(len(data))


def tabular_converter(columns: list[DataColumn], label: str | None) -> Any:
    """A chunk converter: data columns side by side as float32 (n, Σ widths), label (n,)."""
    width = sum(c.width for c in columns)
    shape = columns[0].shape if len(columns) == 1 and columns[0].shape else (width,)

    def convert(pairs: dict[str, tuple[np.ndarray, np.ndarray | None]], first_row: int) -> Block:
        n = len(pairs[columns[0].name][0])
        out = np.empty((n, width), dtype=np.float32)
        at = 0
        for col in columns:
            data, valid = pairs[col.name]
            check_present(col.name, valid, first_row)
            if col.kind == "list":
                data = _lists(data, col, first_row)
            out[:, at : at + col.width] = np.asarray(data).reshape(n, col.width)
            at += col.width
        parts = (out.reshape((n, *shape)),)
        if label is not None:
            parts += (label_array(label, pairs[label], first_row),)
        return Block(parts, np.arange(first_row, first_row + n))

    return convert


def _lists(values: np.ndarray, col: DataColumn, first_row: int) -> np.ndarray:
    lengths = np.fromiter((len(v) for v in values), dtype=np.int64, count=len(values))
    bad = np.flatnonzero(lengths != col.width)
    if len(bad):
        i = int(bad[0])
        raise SchemaError(f"row {first_row + i} of vector column {col.name!r} has length "
                          f"{lengths[i]} but row 0 has {col.width}; vectors fed to a network "
                          "must all have one length")
    try:
        return np.array(list(values), dtype=np.float32).reshape(len(values), col.width)
    except (TypeError, ValueError) as exc:
        last = first_row + len(values) - 1
        raise SchemaError(f"list column {col.name!r} (rows {first_row}-{last}) must hold numbers "
                          f"only: {exc}") from None


def image_converter(column: str, label: str | None) -> Any:
    """A chunk converter keeping the encoded images (decoded per batch, in threads)."""

    def convert(pairs: dict[str, tuple[np.ndarray, np.ndarray | None]], first_row: int) -> Block:
        images, valid = pairs[column]
        check_present(column, valid, first_row)
        parts: tuple[np.ndarray, ...] = (np.asarray(images, dtype=object),)
        if label is not None:
            parts += (label_array(label, pairs[label], first_row),)
        return Block(parts, np.arange(first_row, first_row + len(images)))

    return convert


def first_image_size(frame: SFrame, column: str) -> tuple[int, int, int]:
    """(height, width, channels) of the first image, read from its header (no decode)."""
    first = frame[column].head(1).to_list()
    if not first:
        raise SchemaError(f"image column {column!r} has no rows, so its image size is unknown")
    if first[0] is None:
        raise ConversionError(missing_message(column, 0))
    return first[0].height, first[0].width, first[0].channels
