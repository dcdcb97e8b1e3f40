"""``SFrame.apply``: a Python function over rows as dicts, chunk by chunk in threads."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import dask.array as da
import numpy as np

from framestream.frames._blocks import _rows_as_objects, _to_python, block_first_row, row_at
from framestream.frames._types import convert_value, infer_type, parse_dtype
from framestream.frames.sarray import SArray


def apply_rows(frame: Any, fn: Callable[[dict[str, Any]], Any], dtype: Any = None) -> SArray:
    names = frame.column_names()
    logicals = [c._logical for c in frame._columns.values()]
    if dtype is None:
        target = infer_type([fn(row) for row in _first_rows(frame, 10)])
    else:
        target = parse_dtype(dtype)
    arrays = []
    for col in frame._columns.values():
        arrays.append(col._data if col._data.ndim == 1 else _rows_as_objects(col._data))
        arrays.append(col._valid)

    def block(*parts: np.ndarray, block_info: Any = None) -> np.ndarray:
        start = block_first_row(block_info)
        columns = [_to_python(parts[2 * i], logicals[i], parts[2 * i + 1]) for i in range(len(names))]
        out = np.empty(len(columns[0]) if columns else 0, dtype=object)
        for j, values in enumerate(zip(*columns)):
            r = fn(dict(zip(names, values)))
            out[j] = None if r is None else convert_value(r, target, "apply", row_at(start, j))
        return out

    packed = da.map_blocks(block, *arrays, dtype=object, meta=np.empty(0, dtype=object))
    return SArray._from_packed(packed, target, frame._rows)


def _first_rows(frame: Any, n: int) -> list[dict[str, Any]]:
    rows = []
    for row in frame:
        rows.append(row)
        if len(rows) >= n:
            break
    return rows
