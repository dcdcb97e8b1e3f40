"""The on-disk format of a saved SFrame, and the code that writes and reads it.

Format ``framestream.sframe`` version 1: a Zarr v3 group on a local filesystem::

    frame/
      zarr.json        group; attributes["framestream"] = {
                          "format": "framestream.sframe", "version": 1,
                          "uuid": <hex, new on every write>,
                          "chunk_rows": R,                   # rows per chunk, every array
                          "columns": [{"name", "type", "key", "num_missing", "width", "dtype"}],
                          "num_rows": N }                    # written last: the commit point
      c0/              one Zarr group per column, named by its position when written
        values         fixed-size types: int64 / float64 (N,), vectors float (N, width)
        offsets        variable-length types: int64 (N,) end offset of each row in data
        data           variable-length types: uint8, the rows' bytes back to back
                       (str: UTF-8, bytes: raw, list / dict: JSON as UTF-8)
        valid          bool (N,), present only when the column has missing values

Every array shares the row chunking R (``data`` is chunked by bytes), every chunk is
written even when it equals the fill value, so a missing chunk file means damage, not
zeros. Column names live only in the attributes, so any name is allowed and renaming
rewrites no data. A frame is written into a hidden sibling folder and then renamed (or
atomically exchanged) into place, so a crash never leaves a readable half-written
frame and never damages the frame that was there before.
"""

from __future__ import annotations

import ctypes
import functools
import os
import shutil
import uuid
import weakref
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import zarr
from zarr.codecs import BloscCodec, ZstdCodec

from framestream.errors import CorruptStoreError, FrameExistsError, NotAnSFrameError, StoreError
from framestream.frames._memory import trim_soon
from framestream.frames._types import TYPES, LogicalType

FORMAT = "framestream.sframe"
VERSION = 1
ATTR = "framestream"
DATA_CHUNK_BYTES = 4 << 20
_NUMERIC_CODEC = BloscCodec(cname="lz4", clevel=5, shuffle="shuffle")
_BYTES_CODEC = ZstdCodec(level=1)
_ARRAY_CONFIG = {"write_empty_chunks": True}


@dataclass(frozen=True)
class ColumnSpec:
    """What the format records about one column."""

    name: str
    logical: LogicalType
    key: str
    width: int | None = None  # vectors only
    dtype: str | None = None  # storage dtype of fixed / vector values
    num_missing: int = 0
    shape: tuple[int, ...] | None = None  # element shape of a tensor (vector) column

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": self.logical.name,
            "key": self.key,
            "width": self.width,
            "dtype": self.dtype,
            "num_missing": self.num_missing,
            "shape": list(self.shape) if self.shape else None,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> ColumnSpec:
        if d["type"] not in TYPES:
            raise StoreError(f"column {d['name']!r} has type {d['type']!r}, unknown to this framestream")
        shape = tuple(d["shape"]) if d.get("shape") else None
        return cls(d["name"], TYPES[d["type"]], d["key"], d.get("width"), d.get("dtype"),
                   int(d.get("num_missing", 0)), shape)


# --------------------------------------------------------------------------------------------
# Writing


class _ColumnWriter:
    """Appends one column's chunk-aligned row blocks to its Zarr arrays."""

    def __init__(self, group: zarr.Group, spec: ColumnSpec, chunk_rows: int):
        self.spec = spec
        self.chunk_rows = chunk_rows
        self.group = group.create_group(spec.key)
        self.rows = 0
        self.num_missing = 0
        self.valid: zarr.Array | None = None
        if spec.logical.is_varlen:
            self.offsets = self._create("offsets", (0,), (chunk_rows,), "int64", _NUMERIC_CODEC)
            self.data = self._create("data", (0,), (DATA_CHUNK_BYTES,), "uint8", _BYTES_CODEC)
            self.nbytes = 0
            if spec.logical.name == "image":
                self.meta = self._create("meta", (0, 4), (chunk_rows, 4), "int32", _NUMERIC_CODEC)
        elif spec.logical.storage == "vector":
            shape, chunks = (0, spec.width), (chunk_rows, spec.width)
            self.values = self._create("values", shape, chunks, spec.dtype, _NUMERIC_CODEC)
        else:
            self.values = self._create("values", (0,), (chunk_rows,), spec.dtype, _NUMERIC_CODEC)

    def _create(self, name, shape, chunks, dtype, codec) -> zarr.Array:
        return self.group.create_array(name, shape=shape, chunks=chunks, dtype=dtype,
                                       compressors=codec, config=_ARRAY_CONFIG)

    def append(self, values: Any, valid: np.ndarray | None) -> None:
        n = len(values)
        if self.spec.logical.is_varlen:
            offsets, data = encode_varlen(values, self.spec.logical)
            if self.spec.logical.name == "image":
                self.meta.append(image_meta(values))
            self.offsets.append(offsets + self.nbytes)
            if len(data):
                self.data.append(data)
            self.nbytes += len(data)
        else:
            self.values.append(np.asarray(values, dtype=self.spec.dtype))
        if valid is not None and not valid.all():
            if self.valid is None:  # first missing value: back-fill the rows written so far
                self.valid = self._create("valid", (0,), (self.chunk_rows,), "bool", _NUMERIC_CODEC)
                for start in range(0, self.rows, self.chunk_rows):
                    stop = min(self.rows, start + self.chunk_rows)
                    self.valid.append(np.ones(stop - start, dtype=bool))
            self.num_missing += int(n - valid.sum())
        if self.valid is not None:
            self.valid.append(np.ones(n, dtype=bool) if valid is None else valid)
        self.rows += n


def encode_varlen(values: Any, logical: LogicalType) -> tuple[np.ndarray, np.ndarray]:
    """Rows -> (end offsets relative to the first row, bytes): Arrow's binary layout."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if isinstance(values, pa.Array):
        if pa.types.is_string(values.type) or pa.types.is_large_string(values.type):
            values = values.cast(pa.large_string()).view(pa.large_binary())
        elif not pa.types.is_large_binary(values.type):
            values = values.cast(pa.large_binary())
        values = values.fill_null(b"")
    else:
        if logical.name == "image":
            values = pa.array([b"" if v is None else v._data for v in values], type=pa.large_binary())
        elif logical.name in ("list", "dict"):
            from framestream.frames._codec import dumps_json

            values = [b"" if v is None else dumps_json(v) for v in values]
            values = pa.array(values, type=pa.large_binary())
        elif logical.name == "str":
            values = pa.array(values, type=pa.large_string(), from_pandas=True).fill_null("")
            values = values.view(pa.large_binary())
        else:
            values = pa.array(values, type=pa.large_binary(), from_pandas=True).fill_null(b"")
    _, offsets_buf, data_buf = values.buffers()
    offsets = np.frombuffer(offsets_buf, dtype=np.int64)[values.offset : values.offset + len(values) + 1]
    data = np.frombuffer(data_buf, dtype=np.uint8)[offsets[0] : offsets[-1]] if data_buf else np.empty(0, np.uint8)
    return (offsets[1:] - offsets[0]).astype(np.int64, copy=False), data


def image_meta(values: Any) -> np.ndarray:
    """(width, height, channels, format code) of each image; format -1 where missing."""
    from framestream.frames.image import FORMAT_CODES

    meta = np.zeros((len(values), 4), dtype=np.int32)
    meta[:, 3] = -1
    for i, v in enumerate(values):
        if v is not None:
            meta[i] = (v.width, v.height, v.channels, FORMAT_CODES[v.format])
    return meta


class FrameWriter:
    """Streams row batches into a new saved frame; nothing is readable until ``commit``.

    Batches of any size come in; whole chunks of ``chunk_rows`` go out, so every array is
    written chunk-aligned by this single writer.
    """

    def __init__(self, specs: list[ColumnSpec], chunk_rows: int, directory: str | os.PathLike):
        self.directory = Path(directory)
        self.chunk_rows = int(chunk_rows)
        self.specs = specs
        self.group = zarr.open_group(str(self.directory), mode="w", zarr_format=3)
        self.group.attrs[ATTR] = self._attrs(num_rows=None)
        self.writers = [_ColumnWriter(self.group, s, self.chunk_rows) for s in specs]
        self.pending: list[list[tuple[Any, np.ndarray | None]]] = [[] for _ in specs]
        self.pending_rows = 0
        self.rows = 0
        # Chunks are encoded, compressed and written in the background (columns in
        # parallel; the codecs release the GIL) while the caller parses or computes the
        # next batch. One write is in flight at a time, which bounds the memory held.
        self._columns_pool = ThreadPoolExecutor(max(1, min(4, os.cpu_count() or 1)), thread_name_prefix="fs-write")
        self._flush_pool = ThreadPoolExecutor(1, thread_name_prefix="fs-flush")
        self._in_flight: Future | None = None
        weakref.finalize(self, _shutdown, self._columns_pool, self._flush_pool)

    def _attrs(self, num_rows: int | None) -> dict[str, Any]:
        cols = [s.to_json() for s in self.specs]
        attrs = {"format": FORMAT, "version": VERSION, "uuid": uuid.uuid4().hex,
                 "chunk_rows": self.chunk_rows, "columns": cols}
        if num_rows is not None:
            attrs["num_rows"] = num_rows
        return attrs

    def append(self, batch: list[tuple[Any, np.ndarray | None]]) -> None:
        """Add rows: one (values, valid-or-None) pair per column, in spec order."""
        n = len(batch[0][0])
        for pending, (values, valid) in zip(self.pending, batch, strict=True):
            if len(values) != n:
                raise StoreError("internal: a batch's columns have different lengths")
            pending.append((values, valid))
        self.pending_rows += n
        if self.pending_rows >= self.chunk_rows:
            self._flush(self.pending_rows // self.chunk_rows * self.chunk_rows)

    def _flush(self, rows: int) -> None:
        pieces = []
        for i, pending in enumerate(self.pending):
            values, valid = _concat(pending)
            pieces.append((_take(values, 0, rows), None if valid is None else valid[:rows]))
            rest = len(values) - rows
            self.pending[i] = [(_take(values, rows, rest), None if valid is None else valid[rows:])] if rest else []
        self.pending_rows -= rows
        self.rows += rows
        self._wait()
        self._in_flight = self._flush_pool.submit(self._write, pieces)

    def _write(self, pieces: list[tuple[Any, np.ndarray | None]]) -> None:
        jobs = [self._columns_pool.submit(w.append, v, m) for w, (v, m) in zip(self.writers, pieces)]
        for job in jobs:
            job.result()
        del pieces, jobs
        trim_soon()

    def _wait(self) -> None:
        if self._in_flight is not None:
            future, self._in_flight = self._in_flight, None
            future.result()  # re-raises a write error here, in the caller's thread

    def commit(self) -> int:
        """Write what is left and then the row count, which makes the frame readable."""
        if self.pending_rows:
            self._flush(self.pending_rows)
        self._wait()
        _shutdown(self._columns_pool, self._flush_pool)
        self.specs = [replace(s, num_missing=w.num_missing) for s, w in zip(self.specs, self.writers)]
        self.group.attrs[ATTR] = self._attrs(num_rows=self.rows)
        return self.rows


def _shutdown(*pools: ThreadPoolExecutor) -> None:
    for pool in pools:
        pool.shutdown(wait=False, cancel_futures=True)


def _concat(pieces: list[tuple[Any, np.ndarray | None]]) -> tuple[Any, np.ndarray | None]:
    if len(pieces) == 1:
        return pieces[0]
    values = [p[0] for p in pieces]
    if isinstance(values[0], pa.Array | pa.ChunkedArray):
        values = pa.concat_arrays([v.combine_chunks() if isinstance(v, pa.ChunkedArray) else v for v in values])
    else:
        values = np.concatenate(values)
    if all(p[1] is None for p in pieces):
        return values, None
    valid = np.concatenate([np.ones(len(p[0]), bool) if p[1] is None else p[1] for p in pieces])
    return values, valid


def _take(values: Any, start: int, length: int) -> Any:
    if isinstance(values, pa.Array):
        return values.slice(start, length)
    return values[start : start + length]


# --------------------------------------------------------------------------------------------
# Committing into place


def staging_dir(path: str | os.PathLike) -> Path:
    """A new hidden sibling of ``path`` to write into before the rename."""
    path = Path(path).absolute()
    path.parent.mkdir(parents=True, exist_ok=True)
    return path.parent / f".{path.name}.writing-{uuid.uuid4().hex[:12]}"


def check_writable(path: str | os.PathLike, overwrite: bool) -> None:
    """Refuse to replace anything that is not a saved frame, or anything without overwrite."""
    path = Path(path)
    if not path.exists():
        return
    if not overwrite:
        raise FrameExistsError(f"'{path}' already exists; pass overwrite=True to replace it")
    if path.is_dir() and not any(path.iterdir()):
        return
    read_attrs(path)  # raises NotAnSFrameError: never delete a folder we did not write


def commit_dir(staged: Path, path: str | os.PathLike, overwrite: bool) -> None:
    """Move a finished staging folder to ``path``, replacing an old frame atomically."""
    path = Path(path).absolute()
    check_writable(path, overwrite)
    if not path.exists():
        os.rename(staged, path)
        return
    if _exchange(staged, path):  # staged now holds the old frame
        shutil.rmtree(staged, ignore_errors=True)
        return
    old = path.parent / f".{path.name}.old-{uuid.uuid4().hex[:12]}"
    os.rename(path, old)
    os.rename(staged, path)
    shutil.rmtree(old, ignore_errors=True)


@functools.cache
def _renameat2():
    libc = ctypes.CDLL(None, use_errno=True)  # the running process's libc, no ldconfig subprocess
    return getattr(libc, "renameat2", None)


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one atomic step (Linux renameat2 RENAME_EXCHANGE); False if unsupported."""
    fn = _renameat2()
    if fn is None:
        return False
    at_fdcwd, rename_exchange = -100, 2
    rc = fn(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange)
    return rc == 0


# --------------------------------------------------------------------------------------------
# Reading


def read_attrs(path: str | os.PathLike) -> dict[str, Any]:
    """The frame's attributes, after checking that ``path`` holds a complete saved frame."""
    path = Path(path)
    if not path.exists():
        raise NotAnSFrameError(f"'{path}' does not exist")
    if not (path / "zarr.json").is_file():
        raise NotAnSFrameError(f"'{path}' is not a saved SFrame: it has no zarr.json")
    try:
        group = zarr.open_group(str(path), mode="r", zarr_format=3)
    except Exception as exc:
        raise NotAnSFrameError(f"'{path}' is not a saved SFrame: {path / 'zarr.json'} is not a Zarr v3 group ({exc})") from None
    attrs = dict(group.attrs).get(ATTR)
    if not isinstance(attrs, dict) or attrs.get("format") != FORMAT:
        raise NotAnSFrameError(f"'{path}' is a Zarr group but not a saved SFrame (no '{ATTR}' format attributes)")
    if attrs.get("version", 0) > VERSION:
        raise StoreError(f"'{path}' was written by a newer framestream (format version {attrs['version']} > {VERSION})")
    if "num_rows" not in attrs:
        raise CorruptStoreError(f"'{path}' is an incomplete SFrame: its row count was never written (an interrupted save)")
    return attrs


def open_columns(path: str | os.PathLike) -> tuple[dict[str, Any], list[ColumnSpec]]:
    """Attributes and column specs of a saved frame, checking every array's length."""
    path = Path(path).absolute()
    attrs = read_attrs(path)
    specs = [ColumnSpec.from_json(c) for c in attrs["columns"]]
    n = attrs["num_rows"]
    for spec in specs:
        names = ["offsets", "data"] if spec.logical.is_varlen else ["values"]
        if spec.logical.name == "image":
            names.append("meta")
        if spec.num_missing:
            names.append("valid")
        for name in names:
            arr = _open_array(str(path / spec.key / name), attrs["uuid"], fresh=True)
            if name != "data" and arr.shape[0] != n:
                raise CorruptStoreError(
                    f"{path / spec.key / name}: {arr.shape[0]} rows but the frame has {n} (column {spec.name!r})"
                )
    return attrs, specs


_OPEN_ARRAYS: dict[tuple[str, str], zarr.Array] = {}


def _open_array(array_path: str, frame_uuid: str, fresh: bool = False) -> zarr.Array:
    """An opened array, cached per (path, frame uuid): a rewritten frame has a new uuid."""
    key = (array_path, frame_uuid)
    if fresh or key not in _OPEN_ARRAYS:
        if not os.path.isfile(os.path.join(array_path, "zarr.json")):
            raise CorruptStoreError(f"{array_path}: array metadata file zarr.json is missing")
        if len(_OPEN_ARRAYS) > 1024:
            _OPEN_ARRAYS.clear()
        _OPEN_ARRAYS[key] = zarr.open_array(array_path, mode="r", zarr_format=3)
    return _OPEN_ARRAYS[key]


def _read(arr: zarr.Array, array_path: str, start: int, stop: int, column: str) -> np.ndarray:
    """arr[start:stop], reading each chunk file directly; a missing or damaged file is named.

    Our arrays use one of two codec pipelines (bytes + blosc, bytes + zstd), which are
    decoded here straight from the file: zarr's general path costs ~1 ms of event-loop
    work per chunk, ~7x the decode itself. Other pipelines go through zarr.
    """
    if stop <= start:
        return np.empty((0,) + arr.shape[1:], dtype=arr.dtype)
    chunk = arr.chunks[0]
    first, last = start // chunk, (stop - 1) // chunk
    suffix = "/0" * (arr.ndim - 1)
    decode = _decoder(arr)
    pieces = []
    for i in range(first, last + 1):
        path = f"{array_path}/c/{i}{suffix}"
        if not os.path.isfile(path):
            raise CorruptStoreError(
                f"{path}: chunk file missing (rows {start}-{stop - 1} of column {column!r}); the store is damaged")
        lo, hi = max(start, i * chunk) - i * chunk, min(stop, (i + 1) * chunk) - i * chunk
        if decode is None:
            try:
                pieces.append(arr[i * chunk + lo : i * chunk + hi])
            except Exception as exc:
                raise CorruptStoreError(f"{path}: cannot read rows of column {column!r}: {exc}") from None
            continue
        with open(path, "rb") as f:
            raw = f.read()
        try:
            block = np.frombuffer(decode(raw), dtype=arr.dtype)
        except Exception as exc:
            raise CorruptStoreError(f"{path}: cannot decode chunk {i} of column {column!r}: {exc}") from None
        expected = chunk * int(np.prod(arr.shape[1:], dtype=np.int64))
        if block.size != expected:
            raise CorruptStoreError(f"{path}: chunk {i} of column {column!r} holds {block.size} values, expected {expected}")
        pieces.append(block.reshape((chunk,) + arr.shape[1:])[lo:hi])
    return pieces[0] if len(pieces) == 1 else np.concatenate(pieces)


def _decoder(arr: zarr.Array) -> Any:
    """A bytes -> bytes decoder for the array's codec pipeline, or None to use zarr."""
    from zarr.codecs import BytesCodec

    codecs = arr.metadata.codecs
    if len(codecs) != 2 or not isinstance(codecs[0], BytesCodec):
        return None
    if arr.dtype.itemsize > 1 and (codecs[0].endian is None or codecs[0].endian.value != "little"):
        return None
    if isinstance(codecs[1], BloscCodec):
        import numcodecs.blosc

        return numcodecs.blosc.decompress
    if isinstance(codecs[1], ZstdCodec) and not codecs[1].checksum:
        import numcodecs

        return numcodecs.Zstd().decode
    return None


def read_block(path: str, frame_uuid: str, spec: ColumnSpec, part: str, start: int, stop: int) -> np.ndarray:
    """Rows [start, stop) of one column part ('values' or 'valid'), decoded for memory."""
    base = f"{path}/{spec.key}"
    if part == "valid":
        return _read(_open_array(f"{base}/valid", frame_uuid), f"{base}/valid", start, stop, spec.name)
    if not spec.logical.is_varlen:
        return _read(_open_array(f"{base}/values", frame_uuid), f"{base}/values", start, stop, spec.name)
    offsets_arr = _open_array(f"{base}/offsets", frame_uuid)
    lo = max(start - 1, 0)
    ends = _read(offsets_arr, f"{base}/offsets", lo, stop, spec.name)
    first = int(ends[0]) if start > 0 else 0
    ends = ends[1:] if start > 0 else ends
    last = int(ends[-1]) if len(ends) else first
    data = _read(_open_array(f"{base}/data", frame_uuid), f"{base}/data", first, last, spec.name)
    offsets = np.concatenate([[0], ends - first]).astype(np.int64)
    if spec.logical.name == "image":
        meta = _read(_open_array(f"{base}/meta", frame_uuid), f"{base}/meta", start, stop, spec.name)
        return decode_images(offsets, data, meta)
    return decode_varlen(offsets, data, spec.logical)


def decode_images(offsets: np.ndarray, data: np.ndarray, meta: np.ndarray) -> np.ndarray:
    """Stored image bytes and sizes -> an object array of ``Image`` (no pixel decoding)."""
    from framestream.frames.image import FORMATS, Image

    raw = data.tobytes()
    out = np.empty(len(meta), dtype=object)
    for i, (w, h, c, f) in enumerate(meta.tolist()):
        out[i] = Image._from_parts(raw[offsets[i]:offsets[i + 1]], w, h, c, FORMATS[f]) if f >= 0 else None
    return out


def decode_varlen(offsets: np.ndarray, data: np.ndarray, logical: LogicalType) -> np.ndarray:
    """Arrow binary layout -> an object array of the logical type's values."""
    n = len(offsets) - 1
    binary = pa.LargeBinaryArray.from_buffers(pa.large_binary(), n, [None, pa.py_buffer(offsets), pa.py_buffer(data)])
    if logical.name == "str":
        return binary.view(pa.large_string()).to_numpy(zero_copy_only=False)
    values = binary.to_numpy(zero_copy_only=False)
    if logical.name in ("list", "dict"):
        from framestream.frames._codec import loads_json

        out = np.empty(n, dtype=object)
        for i, v in enumerate(values):
            out[i] = loads_json(v) if v else None
        return out
    return values


def block_bounds(num_rows: int, chunk_rows: int) -> Iterator[tuple[int, int]]:
    for start in range(0, num_rows, chunk_rows):
        yield start, min(num_rows, start + chunk_rows)
