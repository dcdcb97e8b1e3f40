"""Conversions between SFrames and pandas, Arrow, Parquet, CSV and Dask DataFrames.

Everything that leaves or enters a frame in bulk goes chunk by chunk: writers get one
row chunk at a time, readers stream row groups or partitions into a ``FrameWriter``.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import dask
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from framestream.errors import SchemaError
from framestream.frames import _store
from framestream.frames._arrow import arrow_from_block, column_from_arrow, memory_from_arrow
from framestream.frames._blocks import _is_na
from framestream.frames._chunking import chunk_rows_for
from framestream.frames._config import new_cache_path
from framestream.frames._lazy_store import iter_computed_blocks, open_frame
from framestream.frames._store import ColumnSpec, FrameWriter
from framestream.frames._types import DICT, INT, LIST, TYPES, VECTOR, LogicalType, to_chunk

NESTED_TYPE_KEY = b"framestream.type"  # Arrow field metadata: list / dict cells stored as JSON text


def frame_from_arrow(table: pa.Table | pa.RecordBatch) -> Any:
    """An in-memory SFrame holding an Arrow table's columns."""
    from framestream.frames.sframe import frame_from_memory

    columns = {}
    for field, arr in zip(table.schema, table.columns):
        nested = (field.metadata or {}).get(NESTED_TYPE_KEY)
        if nested is not None:
            logical = TYPES[nested.decode()]
            texts = arr.to_pylist()
            data, valid = to_chunk([None if t is None else json.loads(t) for t in texts], logical, field.name)
        else:
            data, valid, logical = column_from_arrow(arr, column=field.name)
            data = memory_from_arrow(data, logical)
        columns[str(field.name)] = (data, valid, logical)
    return frame_from_memory(columns)


def _writer_specs(schema: pa.Schema, first: pa.RecordBatch | None) -> list[ColumnSpec]:
    from framestream.frames._arrow import logical_of_arrow

    specs = []
    for i, f in enumerate(schema):
        logical = logical_of_arrow(f.type, f.name)
        width = f.type.list_size if logical is VECTOR else None
        dtype = {"int": "int64", "float": "float64", "vector": "float64"}.get(logical.name)
        specs.append(ColumnSpec(f.name, logical, f"c{i}", width, dtype))
    return specs


def read_parquet(path: str | os.PathLike, columns: list[str] | None = None) -> Any:
    """Stream a Parquet file into a cached saved frame, one record batch at a time."""
    pf = pq.ParquetFile(os.fspath(path))
    schema = pf.schema_arrow if columns is None else pa.schema([pf.schema_arrow.field(c) for c in columns])
    specs = _writer_specs(schema, None)
    row_bytes = max(1.0, sum(rg.total_byte_size for rg in (pf.metadata.row_group(i) for i in range(pf.num_row_groups)))
                    / max(pf.metadata.num_rows, 1))
    target = new_cache_path("parquet")
    staged = _store.staging_dir(target)
    try:
        writer = FrameWriter(specs, chunk_rows_for(row_bytes), staged)
        for batch in pf.iter_batches(batch_size=65536, columns=columns):
            writer.append([column_from_arrow(batch.column(i), s.logical, s.name)[:2] for i, s in enumerate(specs)])
        writer.commit()
        _store.commit_dir(staged, target, overwrite=False)
    except BaseException:
        shutil.rmtree(staged, ignore_errors=True)
        raise
    return open_frame(target)


def block_to_pandas(names: list[str], logicals: list[LogicalType], block: list[tuple[np.ndarray, Any]]) -> pd.DataFrame:
    """One row chunk -> pandas (missing ints as nullable Int64, others as NaN / None)."""
    out = {}
    for name, logical, (data, valid) in zip(names, logicals, block):
        if logical is INT:
            out[name] = pd.arrays.IntegerArray(data, ~valid) if valid is not None else data
        elif logical.is_numeric:
            out[name] = data if valid is None else np.where(valid, data, np.nan)
        else:
            if logical is VECTOR:
                values = np.empty(len(data), dtype=object)
                for i, row in enumerate(data):
                    values[i] = row
            else:
                values = data.copy() if valid is not None else data
            if valid is not None:
                values[~valid] = None
            out[name] = pd.Series(values, dtype=object)
    return pd.DataFrame(out)


def to_dataframe(frame: Any) -> pd.DataFrame:
    names = frame.column_names()
    logicals = [c._logical for c in frame._columns.values()]
    parts = [block_to_pandas(names, logicals, block) for block in iter_computed_blocks(frame)]
    if not parts:
        return pd.DataFrame({n: [] for n in names})
    return pd.concat(parts, ignore_index=True)


def pandas_to_batch(df: pd.DataFrame, specs: list[ColumnSpec]) -> list[tuple[Any, np.ndarray | None]]:
    """A pandas frame -> writer input with the given column types."""
    batch = []
    for spec in specs:
        series = df[spec.name]
        if spec.logical in (VECTOR, LIST, DICT):
            values = [None if _is_na(v) else v for v in series.tolist()]
            data, valid = to_chunk(values, spec.logical, spec.name)
            if spec.logical is VECTOR and data.shape[1] != (spec.width or 0):
                data = np.zeros((len(values), spec.width or 0))
        else:
            arr = pa.Array.from_pandas(series) if len(series) else pa.array([], type=_arrow_of(spec.logical))
            if pa.types.is_null(arr.type):
                arr = arr.cast(_arrow_of(spec.logical))
            data, valid, _ = column_from_arrow(arr, spec.logical, spec.name)
        batch.append((data, valid))
    return batch


def _arrow_of(logical: LogicalType) -> pa.DataType:
    return {"int": pa.int64(), "float": pa.float64(), "str": pa.large_string()}.get(logical.name, pa.large_binary())


def write_pandas_part(df: pd.DataFrame, specs: list[ColumnSpec], directory: str) -> int:
    """Write one partition to its own saved frame (parallel writers own separate stores)."""
    writer = FrameWriter(specs, chunk_rows_for(max(64.0, df.memory_usage(deep=False).sum() / max(len(df), 1))), directory)
    if len(df):
        writer.append(pandas_to_batch(df, specs))
    return writer.commit()


def frame_from_parts(part_dirs: list[Path]) -> Any:
    """The frames written to ``part_dirs``, appended in order."""
    from framestream.frames.sframe import SFrame

    parts = [open_frame(d) for d in part_dirs]
    nonempty = [p for p in parts if p.num_rows()] or parts[:1]
    result = None
    for part in nonempty:
        result = part if result is None else result.append(part)
    return result if result is not None else SFrame()


def specs_from_pandas_meta(meta: pd.DataFrame, sample: pd.DataFrame | None) -> list[ColumnSpec]:
    from framestream.frames._types import infer_type

    specs = []
    for i, name in enumerate(meta.columns):
        dtype = meta[name].dtype
        if dtype.kind in "iub":
            logical = INT
        elif dtype.kind == "f":
            from framestream.frames._types import FLOAT

            logical = FLOAT
        else:
            values = [v for v in sample[name].tolist() if not _is_na(v)] if sample is not None else []
            logical = infer_type(values, str(name))
            if logical.name == "float" and not values:
                from framestream.frames._types import STR

                logical = STR
        width = None
        if logical is VECTOR:
            first = next((v for v in sample[name] if v is not None), None) if sample is not None else None
            width = 0 if first is None else len(np.asarray(first).ravel())
        specs.append(ColumnSpec(str(name), logical, f"c{i}", width,
                                {"int": "int64", "float": "float64", "vector": "float64"}.get(logical.name)))
    return specs


def frame_from_dask_dataframe(ddf: Any) -> Any:
    """Write every partition in parallel to its own cached store; the frame appends them."""
    parts = ddf.to_delayed(optimize_graph=False)
    if not parts:
        return frame_from_arrow(pa.Table.from_pandas(ddf._meta, preserve_index=False))
    sample = parts[0].compute()
    specs = specs_from_pandas_meta(ddf._meta, sample)
    base = new_cache_path("ddf")
    base.mkdir(parents=True)
    dirs = [base / f"part-{i:05d}" for i in range(len(parts))]
    tasks = [dask.delayed(write_pandas_part)(p.reset_index(drop=True) if hasattr(p, "reset_index") else p, specs, str(d))
             for p, d in zip(parts, dirs)]
    dask.compute(*tasks)
    return frame_from_parts(dirs)


def to_dask_dataframe(frame: Any) -> Any:
    import dask.dataframe as dd

    names = frame.column_names()
    logicals = [c._logical for c in frame._columns.values()]
    from framestream.frames.sframe import frame_blocks

    parts = [dask.delayed(_part)(names, logicals, block) for block in frame_blocks(frame)]
    meta = block_to_pandas(names, logicals, [(_empty(c), None) for c in frame._columns.values()])
    with dask.config.set({"dataframe.convert-string": False}):
        return dd.from_delayed(parts, meta=meta, verify_meta=False)


def _part(names, logicals, block):
    return block_to_pandas(names, logicals, block)


def _empty(col: Any) -> np.ndarray:
    return np.empty((0,) + col._data_raw.shape[1:], dtype=col._data_raw.dtype)



def block_table(names: list[str], logicals: list[LogicalType], block: list[tuple[np.ndarray, Any]],
                text_nested: bool = False) -> pa.Table:
    """One row chunk as an Arrow table. Lists and dicts (and, for CSV, vectors) become JSON
    text, marked in the field metadata so that ``frame_from_arrow`` restores them exactly
    (Arrow structs would add every key to every dict, and lists may mix types)."""
    arrays, fields = [], []
    for name, logical, (data, valid) in zip(names, logicals, block):
        if logical in (LIST, DICT) or (text_nested and logical is VECTOR):
            rows = data.tolist() if logical is VECTOR else list(data)
            texts = [None if (valid is not None and not valid[i]) else json.dumps(r) for i, r in enumerate(rows)]
            arrays.append(pa.array(texts, type=pa.large_string()))
            fields.append(pa.field(name, pa.large_string(), metadata={NESTED_TYPE_KEY: logical.name.encode()}))
        else:
            arrays.append(arrow_from_block(data, valid, logical))
            fields.append(pa.field(name, arrays[-1].type))
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields))


def export_csv(frame: Any, filename: str | os.PathLike, delimiter: str = ",", header: bool = True) -> None:
    """Write CSV chunk by chunk into a temporary file renamed into place at the end."""
    names = frame.column_names()
    logicals = [c._logical for c in frame._columns.values()]
    path = Path(filename)
    tmp = path.with_name(f".{path.name}.writing")
    options = pacsv.WriteOptions(include_header=header, delimiter=delimiter)
    writer = None
    try:
        with open(tmp, "wb") as sink:
            for block in iter_computed_blocks(frame):
                table = block_table(names, logicals, block, text_nested=True)
                if writer is None:
                    writer = pacsv.CSVWriter(sink, table.schema, write_options=options)
                writer.write_table(table)
            if writer is None:
                sink.write((delimiter.join(names) + "\n").encode() if header else b"")
            else:
                writer.close()
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def to_parquet(frame: Any, path: str | os.PathLike) -> None:
    """Write one Parquet file, a row group per chunk, renamed into place at the end."""
    names = frame.column_names()
    logicals = [c._logical for c in frame._columns.values()]
    path = Path(path)
    tmp = path.with_name(f".{path.name}.writing")
    writer = None
    try:
        for block in iter_computed_blocks(frame):
            table = block_table(names, logicals, block)
            if writer is None:
                writer = pq.ParquetWriter(tmp, table.schema)
            writer.write_table(table.cast(writer.schema) if table.schema != writer.schema else table)
        if writer is None:
            raise SchemaError("to_parquet: the frame has no rows or columns to write")
        writer.close()
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
