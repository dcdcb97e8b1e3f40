"""Streaming CSV ingest: pyarrow's block reader into a Zarr store, bounded memory.

The file is read in blocks of ``block_size`` bytes (local paths, globs, folders and
fsspec URLs, gzip inferred from the name). Types not hinted are inferred from the first
block; if a later block holds a value that does not fit (an int column meets ``3.5``),
the column is widened (int -> float -> str) and the ingest restarts, so inference
never fails on a late surprise. A hinted type that does not fit is the user's error
and is reported with the file, line, column and value.
"""

from __future__ import annotations

import glob
import io
import logging
import os
import re
import shutil
import threading
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import fsspec
import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
from tqdm.auto import tqdm

from framestream.errors import ConversionError, CSVError
from framestream.frames import _store
from framestream.frames._arrow import column_from_arrow, logical_of_arrow
from framestream.frames._chunking import chunk_rows_for
from framestream.frames._config import new_cache_path
from framestream.frames._store import ColumnSpec, FrameWriter
from framestream.frames._types import (
    FLOAT,
    INT,
    STR,
    VECTOR,
    LogicalType,
    convert_value,
    parse_dtype,
)

log = logging.getLogger("framestream.frames.csv")

_ARROW_OF = {"int": pa.int64(), "float": pa.float64(), "str": pa.string(), "bytes": pa.binary()}
_WIDEN = {"null": INT, "int": FLOAT, "float": STR}
_CONVERSION = re.compile(r"In CSV column #(\d+): (?:Row #\d+: )?CSV conversion error to (\S+): invalid value '(.*)'", re.S)


@dataclass
class _Options:
    delimiter: str
    header: bool
    hints: dict[str, LogicalType]
    na_values: list[str]
    usecols: list[str] | None
    nrows: int | None
    error_bad_lines: bool
    quote_char: str
    double_quote: bool
    escape_char: str | bool
    skiprows: int
    true_values: list[str]
    false_values: list[str]
    block_size: int
    widened: dict[str, LogicalType] = field(default_factory=dict)


class _Restart(Exception):
    """A column must be widened; the ingest starts again."""


def read_csv(url: str | os.PathLike, delimiter: str = ",", header: bool = True,
             column_type_hints: Any = None, na_values: Any = ("NA", ""),
             usecols: Iterable[str] | None = None, nrows: int | None = None,
             error_bad_lines: bool = True, quote_char: str = '"', double_quote: bool = True,
             escape_char: str | None = None, skiprows: int = 0, true_values: Iterable[str] = (),
             false_values: Iterable[str] = (), verbose: bool = True, block_size: int = 4 << 20,
             **unused: Any) -> Any:
    """See ``SFrame.read_csv``."""
    from framestream.frames._lazy_store import open_frame

    if unused:
        log.info("read_csv: ignoring options %s (not supported)", sorted(unused))
    if len(delimiter) != 1:
        raise CSVError(f"the delimiter must be one character, got {delimiter!r}")
    files = _expand(os.fspath(url))
    opts = _Options(delimiter, header, {}, list([na_values] if isinstance(na_values, str) else na_values),
                    list(usecols) if usecols else None, nrows, error_bad_lines, quote_char, double_quote,
                    escape_char or False, skiprows, list(true_values), list(false_values), block_size)
    target = new_cache_path("csv")
    for _attempt in range(8):
        staged = _store.staging_dir(target)
        try:
            _ingest(files, opts, column_type_hints, staged, verbose)
            _store.commit_dir(staged, target, overwrite=False)
            return open_frame(target)
        except _Restart:
            shutil.rmtree(staged, ignore_errors=True)
        except BaseException:
            shutil.rmtree(staged, ignore_errors=True)
            raise
    raise CSVError(f"{url}: column types kept changing while reading; pass column_type_hints")


def _expand(url: str) -> list[str]:
    """A path, folder, glob or URL -> the list of files to read, in name order."""
    if "://" not in url and os.path.isdir(url):
        files = sorted(os.path.join(url, f) for f in os.listdir(url) if not f.startswith("."))
    elif any(ch in url for ch in "*?["):
        if "://" in url:
            filesystem, _ = fsspec.core.url_to_fs(url)
            files = sorted(filesystem.unstrip_protocol(p) for p in filesystem.glob(url))
        else:
            files = sorted(glob.glob(url))
    else:
        files = [url]
    if not files:
        raise CSVError(f"{url}: no files match")
    if "://" not in url:
        for f in files:
            if not os.path.isfile(f):
                raise CSVError(f"{f}: no such file")
    return files


def _open_stream(path: str, block_size: int = 16 << 20) -> _Throttled:
    """A binary stream of the (decompressed) file for pyarrow to read, with backpressure."""
    try:
        return _Throttled(fsspec.open(path, mode="rb", compression="infer").open(), block_size)
    except FileNotFoundError:
        raise CSVError(f"{path}: no such file") from None


class _Throttled(io.RawIOBase):
    """A file that lets pyarrow's background reader run at most ``ahead`` blocks ahead.

    pyarrow's streaming CSV reader reads ahead without bound when its consumer (here the
    Zarr writer) is slower than the disk, which on a large file fills memory with raw
    blocks. The reader thread waits in ``read`` until ``consumed`` catches up.
    """

    def __init__(self, raw: Any, block_size: int, ahead: int = 2):
        super().__init__()
        self.raw, self.block_size, self.ahead = raw, block_size, ahead
        self.bytes_read = 0
        self.blocks_consumed = 0
        self._cv = threading.Condition()
        self._done = False

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        with self._cv:
            self._cv.wait_for(lambda: self._done or
                              self.bytes_read < (self.blocks_consumed + self.ahead) * self.block_size)
        data = self.raw.read(size)
        self.bytes_read += len(data)
        return data

    def consumed(self) -> None:
        with self._cv:
            self.blocks_consumed += 1
            self._cv.notify_all()

    def close(self) -> None:
        with self._cv:
            self._done = True
            self._cv.notify_all()
        self.raw.close()
        super().close()


def _hints(column_type_hints: Any, names: list[str]) -> dict[str, LogicalType]:
    if column_type_hints is None:
        return {}
    if isinstance(column_type_hints, dict):
        unknown = [k for k in column_type_hints if k not in names]
        if unknown:
            raise CSVError(f"column_type_hints names columns {unknown} that the file does not have; it has {names}")
        return {k: parse_dtype(v) for k, v in column_type_hints.items()}
    if isinstance(column_type_hints, list | tuple):
        if len(column_type_hints) != len(names):
            raise CSVError(f"column_type_hints lists {len(column_type_hints)} types for {len(names)} columns {names}")
        return {n: parse_dtype(t) for n, t in zip(names, column_type_hints)}
    t = parse_dtype(column_type_hints)
    return {n: t for n in names}


def _read_options(opts: _Options, names: list[str] | None = None) -> pacsv.ReadOptions:
    return pacsv.ReadOptions(block_size=opts.block_size, use_threads=False, skip_rows=opts.skiprows,
                             autogenerate_column_names=not opts.header and names is None,
                             column_names=names)


def _parse_options(opts: _Options, bad_rows: list[Any]) -> pacsv.ParseOptions:
    def on_invalid(row: Any) -> str:
        bad_rows.append((row.number, row.expected_columns, row.actual_columns, row.text))
        return "error" if opts.error_bad_lines else "skip"

    return pacsv.ParseOptions(delimiter=opts.delimiter, quote_char=opts.quote_char,
                              double_quote=opts.double_quote, escape_char=opts.escape_char,
                              invalid_row_handler=on_invalid)


def _arrow_type(logical: LogicalType) -> pa.DataType:
    return _ARROW_OF.get(logical.name, pa.string())  # list / dict / vector cells are parsed from text


def _file_names(path: str, opts: _Options) -> list[str]:
    """Column names as the user sees them (X1, X2, ... when there is no header)."""
    stream = _open_stream(path)
    with stream:
        parse = pacsv.ParseOptions(delimiter=opts.delimiter, quote_char=opts.quote_char,
                                   double_quote=opts.double_quote, escape_char=opts.escape_char,
                                   invalid_row_handler=lambda row: "skip")
        reader = pacsv.open_csv(stream, read_options=_read_options(opts), parse_options=parse)
        names = reader.schema.names
    return names if opts.header else [f"X{i + 1}" for i in range(len(names))]


def _ingest(files: list[str], opts: _Options, column_type_hints: Any, staged: Any, verbose: bool) -> None:
    names = _file_names(files[0], opts)
    arrow_names = names if opts.header else [f"f{i}" for i in range(len(names))]
    opts.hints = _hints(column_type_hints, names)
    if opts.usecols:
        missing = [c for c in opts.usecols if c not in names]
        if missing:
            raise CSVError(f"{files[0]}: usecols asks for columns {missing}; the file has {names}")
    wanted = opts.usecols or names
    writer: FrameWriter | None = None
    specs: list[ColumnSpec] = []
    rows_total = 0
    total_bytes = sum(_size(f) for f in files)
    bar = tqdm(total=total_bytes, unit="B", unit_scale=True, desc="read_csv", disable=None if verbose else True)
    try:
        for path in files:
            found = names if path == files[0] else _file_names(path, opts)
            if found != names:
                raise CSVError(f"{path}: its columns {found} differ from {names} in {files[0]}")
            rows_in_file = 0
            for batch, logicals in _batches(path, opts, names, arrow_names, wanted):
                if writer is None:
                    specs = [ColumnSpec(n, t, f"c{i}", _width(batch.column(i), t), _dtype(t))
                             for i, (n, t) in enumerate(zip(wanted, logicals))]
                    row_bytes = batch.nbytes / max(batch.num_rows, 1)
                    writer = FrameWriter(specs, chunk_rows_for(row_bytes), staged)
                if opts.nrows is not None and rows_total + batch.num_rows > opts.nrows:
                    batch = batch.slice(0, opts.nrows - rows_total)
                converted = [_convert(batch.column(i), spec, path, opts, rows_in_file) for i, spec in enumerate(specs)]
                writer.append(converted)
                rows_total += batch.num_rows
                rows_in_file += batch.num_rows
                if opts.nrows is not None and rows_total >= opts.nrows:
                    break
            bar.update(_size(path))
            if opts.nrows is not None and rows_total >= opts.nrows:
                break
    finally:
        bar.close()
    if writer is None:  # a header and no rows
        specs = [ColumnSpec(n, opts.hints.get(n, STR), f"c{i}", None, _dtype(opts.hints.get(n, STR)))
                 for i, n in enumerate(wanted)]
        writer = FrameWriter(specs, chunk_rows_for(64), staged)
    writer.commit()


def _size(path: str) -> int:
    try:
        return fsspec.open(path).fs.size(path) or 0
    except Exception:
        return 0


def _dtype(t: LogicalType) -> str | None:
    return {"int": "int64", "float": "float64", "vector": "float64"}.get(t.name)


def _width(arr: pa.Array, t: LogicalType) -> int | None:
    if t is not VECTOR:
        return None
    for v in arr.to_pylist():
        if v is not None:
            return len(_parse_vector(v))
    return 0


def _batches(path: str, opts: _Options, names: list[str], arrow_names: list[str], wanted: list[str]):
    """Record batches of ``path`` with the types settled, and their logical types."""
    column_types = {}
    for name, arrow_name in zip(names, arrow_names):
        t = opts.widened.get(name) or opts.hints.get(name)
        if t is not None:
            column_types[arrow_name] = _arrow_type(t)
    include = [arrow_names[names.index(c)] for c in wanted]
    bad_rows: list[Any] = []
    booleans = {k: v for k, v in (("true_values", opts.true_values), ("false_values", opts.false_values)) if v}
    convert = pacsv.ConvertOptions(column_types=column_types, null_values=opts.na_values,
                                   strings_can_be_null=True, include_columns=include, **booleans)
    stream = _open_stream(path, opts.block_size)
    rows_done = 0
    with stream:
        try:
            reader = pacsv.open_csv(stream, read_options=_read_options(opts), parse_options=_parse_options(opts, bad_rows),
                                    convert_options=convert)
            logicals = _settle_types(reader.schema, wanted, opts)
            while True:
                try:
                    batch = reader.read_next_batch()
                except StopIteration:
                    break
                rows_done += batch.num_rows
                yield batch, logicals
                stream.consumed()
        except pa.ArrowInvalid as exc:
            _raise_for(exc, path, opts, names, arrow_names, bad_rows, rows_done)
    if bad_rows and not opts.error_bad_lines:
        shown = "; ".join(f"line {n}: {t!r}" for n, _, _, t in bad_rows[:5])
        warnings.warn(f"{path}: skipped {len(bad_rows)} rows with the wrong number of fields ({shown})", stacklevel=4)


def _settle_types(schema: pa.Schema, wanted: list[str], opts: _Options) -> list[LogicalType]:
    """The logical type of each column; unsupported inferred types restart as str or int."""
    out = []
    for name, f in zip(wanted, schema):
        hinted = opts.widened.get(name) or opts.hints.get(name)
        if hinted is not None:
            out.append(hinted)
            continue
        if pa.types.is_null(f.type):
            opts.widened[name] = INT
            raise _Restart
        if not (pa.types.is_integer(f.type) or pa.types.is_floating(f.type) or pa.types.is_boolean(f.type)
                or pa.types.is_string(f.type)):
            opts.widened[name] = STR
            raise _Restart
        out.append(logical_of_arrow(f.type, name))
    return out


def _raise_for(exc: Exception, path: str, opts: _Options, names: list[str], arrow_names: list[str],
               bad_rows: list[Any], rows_done: int) -> None:
    message = str(exc)
    if bad_rows and ("Expected" in message or "columns" in message):
        number, expected, actual, text = bad_rows[-1]
        where = f"line {number}" if number is not None else f"after row {rows_done}"
        raise CSVError(f"{path}, {where}: expected {expected} fields, found {actual}: {text!r} "
                       "(pass error_bad_lines=False to skip such rows)") from None
    m = _CONVERSION.search(message)
    if m:
        name = _column_at(int(m.group(1)), opts, names)
        hinted = opts.hints.get(name)
        if hinted is None:
            current = opts.widened.get(name)
            key = current.name if current is not None else ("int" if m.group(2) == "int64" else "float" if m.group(2) == "double" else "null")
            if key in _WIDEN:
                opts.widened[name] = _WIDEN[key]
                raise _Restart from None
        line, value = _locate(path, opts, names, arrow_names, name, hinted or INT, rows_done)
        raise CSVError(f"{path}, line {line}, column {name!r}: value {value!r} is not a valid "
                       f"{(hinted or INT).name}") from None
    raise CSVError(f"{path}: {message}") from None


def _column_at(index: int, opts: _Options, names: list[str]) -> str:
    wanted = opts.usecols or names
    return wanted[index] if index < len(wanted) else names[index]


def _locate(path: str, opts: _Options, names: list[str], arrow_names: list[str], name: str,
            target: LogicalType, rows_before: int) -> tuple[int | str, str]:
    """Find the first value of ``name`` at or after row ``rows_before`` that does not parse."""
    arrow_name = arrow_names[names.index(name)]
    stream = _open_stream(path)
    row = 0
    with stream:
        reader = pacsv.open_csv(stream, read_options=_read_options(opts), parse_options=_parse_options(opts, []),
                                convert_options=pacsv.ConvertOptions(column_types={arrow_name: pa.string()},
                                                                     include_columns=[arrow_name],
                                                                     null_values=opts.na_values,
                                                                     strings_can_be_null=True))
        for batch in reader:
            values = batch.column(0).to_pylist()
            if row + len(values) > rows_before:
                for i, v in enumerate(values):
                    if row + i < rows_before or v is None:
                        continue
                    try:
                        convert_value(v, target)
                    except ConversionError:
                        return row + i + 1 + int(opts.header) + opts.skiprows, v
            row += len(values)
    return f"after {rows_before + int(opts.header)}", "?"


def _convert(arr: pa.Array | pa.ChunkedArray, spec: ColumnSpec, path: str, opts: _Options,
             rows_before: int) -> tuple[Any, np.ndarray | None]:
    """One parsed column -> writer input; list / dict / vector cells are parsed here."""
    if spec.logical.name in ("list", "dict") or spec.logical is VECTOR:
        texts = arr.to_pylist()
        values: list[Any] = []
        for i, text in enumerate(texts):
            if text is None:
                values.append(None)
                continue
            try:
                if spec.logical is VECTOR:
                    vec = _parse_vector(text)
                    if len(vec) != spec.width:
                        raise ValueError(f"length {len(vec)}, expected {spec.width}")
                    values.append(vec)
                else:
                    values.append(convert_value(_jsonish(text), spec.logical))
            except (ValueError, ConversionError) as exc:
                line = rows_before + i + 1 + int(opts.header) + opts.skiprows
                raise CSVError(f"{path}, line {line}, column {spec.name!r}: value {text!r} is not a valid "
                               f"{spec.logical.name} ({exc})") from None
        from framestream.frames._types import to_chunk

        data, valid = to_chunk(values, spec.logical, spec.name, rows_before)
        if spec.logical is VECTOR and data.shape[1] != spec.width:
            data = np.zeros((len(values), spec.width))
        return data, valid
    data, valid, _ = column_from_arrow(arr, spec.logical, spec.name)
    return data, valid


def _parse_vector(text: str) -> list[float]:
    body = text.strip().strip("[]")
    parts = [p for p in re.split(r"[\s,;]+", body) if p]
    return [float(p) for p in parts]


def _jsonish(text: str) -> Any:
    """Turi writes lists as ``[1 2 3]`` or ``[1,2,3]`` and dicts as ``{a:1}``; accept JSON and those."""
    import json

    try:
        return json.loads(text)
    except json.JSONDecodeError:
        body = text.strip()
        if body.startswith("[") and body.endswith("]"):
            return [_scalar(p) for p in re.split(r"[\s,]+", body[1:-1]) if p]
        raise ValueError("not JSON") from None


def _scalar(text: str) -> Any:
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text

