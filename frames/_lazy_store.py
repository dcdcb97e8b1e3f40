"""Saved frames as lazy Dask columns, and lazy frames written to disk chunk by chunk."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import dask
import dask.array as da
import numpy as np
from dask.highlevelgraph import HighLevelGraph

from framestream.frames import _store
from framestream.frames._chunking import chunk_rows_for
from framestream.frames._config import new_cache_path
from framestream.frames._rows import Rows
from framestream.frames._store import ColumnSpec, FrameWriter
from framestream.frames.sarray import SArray

_WINDOW = max(2, os.cpu_count() or 2)


def open_frame(path: str | os.PathLike) -> Any:
    """A saved frame as an SFrame whose columns read their chunks on demand."""
    from framestream.frames.sframe import SFrame

    path = str(Path(path).absolute())
    attrs, specs = _store.open_columns(path)
    n, chunk_rows = int(attrs["num_rows"]), int(attrs["chunk_rows"])
    bounds = list(_store.block_bounds(n, chunk_rows)) or [(0, 0)]
    rows = Rows(tuple(stop - start for start, stop in bounds))
    columns = {}
    for spec in specs:
        data = _column_array(path, attrs["uuid"], spec, "values", bounds)
        valid = _column_array(path, attrs["uuid"], spec, "valid", bounds) if spec.num_missing else None
        col = SArray._make(spec.logical, data, valid, rows)
        col._element_shape = spec.shape
        columns[spec.name] = col
    return SFrame._from_columns(columns, rows, source=path)


def _column_array(path: str, frame_uuid: str, spec: ColumnSpec, part: str, bounds: list[tuple[int, int]]) -> da.Array:
    name = f"read-{spec.key}-{part}-{frame_uuid}"
    vector = spec.logical.storage == "vector" and part == "values"
    suffix = (0,) if vector else ()
    dsk = {(name, i) + suffix: (_store.read_block, path, frame_uuid, spec, part, start, stop)
           for i, (start, stop) in enumerate(bounds)}
    row_chunks = (tuple(stop - start for start, stop in bounds),)
    if part == "valid":
        meta = np.empty(0, dtype=bool)
    elif vector:
        meta = np.empty((0, spec.width), dtype=spec.dtype)
    else:
        meta = np.empty(0, dtype=spec.logical.chunk_dtype if spec.logical.is_varlen else spec.dtype)
    chunks = row_chunks + (((spec.width,),) if vector else ())
    return da.Array(HighLevelGraph.from_collections(name, dsk, dependencies=()), name, chunks, meta=meta)


def specs_of(frame: Any) -> list[ColumnSpec]:
    specs = []
    for i, (name, col) in enumerate(frame._columns.items()):
        width = int(col._data_raw.shape[1]) if col._logical.storage == "vector" else None
        dtype = None if col._logical.is_varlen else str(col._data_raw.dtype)
        shape = getattr(col, "_element_shape", None)
        specs.append(ColumnSpec(name, col._logical, f"c{i}", width, dtype, shape=shape))
    return specs


def _chunk_rows(frame: Any, specs: list[ColumnSpec]) -> int:
    chunks = frame._rows.chunks
    if frame._rows.known and len(chunks) > 1 and len(set(chunks[:-1])) == 1 and chunks[-1] <= chunks[0]:
        return int(chunks[0])  # already uniform: write block for block
    row_bytes = 0.0
    for spec in specs:
        if spec.logical.is_varlen:
            row_bytes += 32
        else:
            row_bytes += np.dtype(spec.dtype).itemsize * (spec.width or 1)
    return chunk_rows_for(row_bytes)


def write_frame(frame: Any, path: str | os.PathLike, overwrite: bool = False) -> Any:
    """Compute ``frame`` chunk by chunk into a new saved frame at ``path``; return it opened.

    A window of chunks is computed in parallel while the previous window is written,
    so at most two windows are in memory.
    """
    specs = specs_of(frame)
    staged = _store.staging_dir(path)
    try:
        writer = FrameWriter(specs, _chunk_rows(frame, specs), staged)
        for block in iter_computed_blocks(frame):
            writer.append(block)
        writer.commit()
        _store.commit_dir(staged, path, overwrite)
    except BaseException:
        shutil.rmtree(staged, ignore_errors=True)
        raise
    return open_frame(path)


def iter_computed_blocks(frame: Any) -> Iterator[list[tuple[np.ndarray, np.ndarray | None]]]:
    """Each row chunk of every column as (data, valid) pairs, in order.

    A window of chunks is computed in parallel while the caller consumes the previous
    one, so at most two windows are in memory.
    """
    from framestream.frames.sframe import frame_blocks

    blocks = frame_blocks(frame)
    windows = [blocks[s : s + _WINDOW] for s in range(0, len(blocks), _WINDOW)]

    def compute(window: list[Any]) -> list[Any]:
        return dask.compute(window)[0]

    with ThreadPoolExecutor(1) as pool:
        future = pool.submit(compute, windows[0]) if windows else None
        for k in range(len(windows)):
            blocks = future.result()
            future = pool.submit(compute, windows[k + 1]) if k + 1 < len(windows) else None
            for block in blocks:
                yield [(d, v) for d, v in block]



def materialize_frame(frame: Any) -> Any:
    """Write ``frame`` into the cache and return it reading from there."""
    return write_frame(frame, new_cache_path("materialized"))
