"""Columns SFrame builds block by block: constants, all-valid masks, random masks.

Module level so that Dask can ship the block functions to worker processes.
"""

from __future__ import annotations

from typing import Any

import dask.array as da
import numpy as np

from framestream.errors import SchemaError
from framestream.frames._rows import Rows
from framestream.frames._types import LogicalType, type_of_value
from framestream.frames.sarray import SArray


def _constant(value: Any, rows: Rows, like: SArray | None = None) -> SArray:
    """A column holding ``value`` on every row, chunked like ``rows``."""
    logical = type_of_value(value) or (like._logical if like is not None and value is None else None)
    if logical is None:
        from framestream.frames._types import FLOAT

        logical = FLOAT
    if like is not None and not rows.known:
        base = like._data_raw if like._data_raw.ndim == 1 else like._data_raw[:, 0]
        data = base.map_blocks(_full_like, value, logical, dtype=logical.chunk_dtype)
    else:
        chunks = rows.resolve()
        data = da.map_blocks(_full, value, logical, chunks=(chunks,), dtype=logical.chunk_dtype,
                             meta=np.empty(0, logical.chunk_dtype))
    valid = None
    if value is None:
        valid = data.map_blocks(lambda b: np.zeros(len(b), bool), dtype=bool)
    return SArray._make(logical, data, valid, rows)


def _full(value: Any, logical: LogicalType, block_info: Any = None) -> np.ndarray:
    n = block_info[None]["chunk-shape"][0]
    return _full_n(n, value, logical)


def _full_like(base: np.ndarray, value: Any, logical: LogicalType) -> np.ndarray:
    return _full_n(len(base), value, logical)


def _full_n(n: int, value: Any, logical: LogicalType) -> np.ndarray:
    out = np.empty(n, dtype=logical.chunk_dtype)
    out[:] = logical.placeholder if value is None else value
    return out


def _valid_or_ones(col: SArray) -> da.Array:
    if col._valid_raw is not None:
        return col._valid_raw
    base = col._data_raw if col._data_raw.ndim == 1 else col._data_raw[:, 0]
    return base.map_blocks(lambda b: np.ones(len(b), bool), dtype=bool)


def _match_width(data: da.Array, like: da.Array, name: str) -> da.Array:
    if data.ndim == 2 and data.shape[1] != like.shape[1]:
        raise SchemaError(f"vector column {name!r} has width {like.shape[1]} here but {data.shape[1]} in the frame to append")
    return data.astype(like.dtype) if data.dtype != like.dtype else data


def _bernoulli(block: np.ndarray, seed: int, fraction: float, block_info: Any = None) -> np.ndarray:
    index = block_info[0]["chunk-location"][0] if block_info else 0
    rng = np.random.default_rng([seed, index])
    return rng.random(len(block)) < fraction
