"""MXNet's binary NDArray list format (``mx.nd.save`` / ``mx.nd.load``, ``.params`` files).

Reads every generation: the GraphLab-era legacy record (u32 ndim, u32 dims, no magic),
V1 (magic 0xF993FAC8, i64 dims) and V2 (magic 0xF993FAC9, storage type, i64 dims);
writes V2 dense records, which Apache MXNet 1.x loads. All integers little-endian::

    u64 0x112, u64 0, u64 n, n records, u64 n_names (0 or n), n_names x (u64 len, bytes)
    legacy record: u32 ndim, u32 dims[ndim], i32 dev_type, i32 dev_id, i32 type_flag, data
    V1 record:     u32 magic, i32 ndim, i64 dims[ndim], i32 dev_type, i32 dev_id, i32 flag, data
    V2 record:     u32 magic, i32 stype (0 dense), i32 ndim, i64 dims[ndim], i32 dev_type,
                   i32 dev_id, i32 type_flag, data

Damage is reported with the file and the byte offset where reading failed.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass

import numpy as np

from framestream.errors import FramestreamError

LIST_MAGIC = 0x112
V1_MAGIC = 0xF993FAC8
V2_MAGIC = 0xF993FAC9
V3_MAGIC = 0xF993FACA
DTYPES = {0: np.float32, 1: np.float64, 2: np.float16, 3: np.uint8, 4: np.int32, 5: np.int8, 6: np.int64, 7: np.bool_}
FLAGS = {np.dtype(v): k for k, v in DTYPES.items()}


class ParamsFileError(FramestreamError, ValueError):
    """A file that is not, or no longer, a valid MXNet NDArray list."""


@dataclass(frozen=True)
class Stored:
    """One array as stored: its values and the context it was saved from."""

    array: np.ndarray
    dev_type: int = 1  # 1 cpu, 2 gpu, 3 cpu pinned, 5 cpu shared
    dev_id: int = 0


class _Reader:
    def __init__(self, raw: bytes, where: str):
        self.raw, self.where, self.pos = raw, where, 0

    def take(self, n: int, what: str) -> bytes:
        if self.pos + n > len(self.raw):
            raise ParamsFileError(f"{self.where}: truncated at byte offset {self.pos} while reading {what} "
                                  f"(needs {n} bytes, {len(self.raw) - self.pos} left)")
        out = self.raw[self.pos : self.pos + n]
        self.pos += n
        return out

    def unpack(self, fmt: str, what: str) -> tuple:
        return struct.unpack("<" + fmt, self.take(struct.calcsize("<" + fmt), what))


def _read_record(r: _Reader, index: int) -> Stored:
    start = r.pos
    (first,) = r.unpack("I", f"array {index}'s header")
    if first in (V2_MAGIC, V3_MAGIC):
        (stype,) = r.unpack("i", f"array {index}'s storage type")
        if stype != 0:
            raise ParamsFileError(f"{r.where}: array {index} at byte offset {start} is sparse (storage type {stype}); "
                                  "only dense arrays are supported")
        (ndim,) = r.unpack("i", f"array {index}'s ndim")
        if ndim <= 0 and first == V2_MAGIC:
            return Stored(np.zeros((0,), np.float32))
        dims = r.unpack(f"{max(ndim, 0)}q", f"array {index}'s shape") if ndim > 0 else ()
    elif first == V1_MAGIC:
        (ndim,) = r.unpack("i", f"array {index}'s ndim")
        dims = r.unpack(f"{ndim}q", f"array {index}'s shape")
    else:  # legacy: the first u32 is ndim
        ndim = first
        if ndim > 32:
            raise ParamsFileError(f"{r.where}: array {index} at byte offset {start} has an impossible ndim {ndim}; "
                                  "not an MXNet params file, or a damaged one")
        if ndim == 0:
            return Stored(np.zeros((0,), np.float32))
        dims = r.unpack(f"{ndim}I", f"array {index}'s shape")
    dev_type, dev_id, flag = r.unpack("iii", f"array {index}'s context and dtype")
    if flag not in DTYPES:
        raise ParamsFileError(f"{r.where}: array {index} at byte offset {r.pos - 4} has unknown dtype flag {flag}")
    dtype = np.dtype(DTYPES[flag])
    count = int(np.prod(dims, dtype=np.int64)) if dims else 1
    data = r.take(count * dtype.itemsize, f"array {index}'s {count} {dtype.name} values")
    return Stored(np.frombuffer(data, dtype=dtype).reshape(dims).copy(), dev_type, dev_id)


def load_stored(source: str | os.PathLike | bytes) -> list[Stored] | dict[str, Stored]:
    """Every array in an NDArray list file: a dict when it has names, else a list."""
    if isinstance(source, bytes | bytearray):
        raw, where = bytes(source), "<bytes>"
    else:
        where = os.fspath(source)
        try:
            with open(where, "rb") as f:
                raw = f.read()
        except OSError as exc:
            raise ParamsFileError(f"{where}: cannot read ({exc.strerror})") from None
    r = _Reader(raw, where)
    magic, _reserved = r.unpack("QQ", "the file header")
    if magic != LIST_MAGIC:
        raise ParamsFileError(f"{where}: not an MXNet NDArray file (magic {magic:#x} at byte offset 0, expected 0x112)")
    (count,) = r.unpack("Q", "the array count")
    if count > len(raw):
        raise ParamsFileError(f"{where}: impossible array count {count} at byte offset 16")
    arrays = [_read_record(r, i) for i in range(count)]
    (n_names,) = r.unpack("Q", "the name count")
    if n_names not in (0, count):
        raise ParamsFileError(f"{where}: {n_names} names for {count} arrays at byte offset {r.pos - 8}")
    names = []
    for i in range(n_names):
        (length,) = r.unpack("Q", f"name {i}'s length")
        names.append(r.take(length, f"name {i}").decode("utf-8", errors="replace"))
    if r.pos != len(raw):
        raise ParamsFileError(f"{where}: {len(raw) - r.pos} unexpected bytes after the names at byte offset {r.pos}")
    return dict(zip(names, arrays)) if n_names else arrays


def load(source: str | os.PathLike | bytes) -> list[np.ndarray] | dict[str, np.ndarray]:
    """The arrays of an NDArray list file as NumPy arrays (dict if the file has names)."""
    stored = load_stored(source)
    if isinstance(stored, dict):
        return {k: v.array for k, v in stored.items()}
    return [v.array for v in stored]


def dumps(data: list[np.ndarray] | dict[str, np.ndarray]) -> bytes:
    """The V2 encoding of a list or dict of arrays (what MXNet 1.x's ``nd.save`` writes)."""
    names, arrays = (list(data), list(data.values())) if isinstance(data, dict) else ([], list(data))
    out = [struct.pack("<QQQ", LIST_MAGIC, 0, len(arrays))]
    for i, a in enumerate(arrays):
        a = np.ascontiguousarray(a)
        if a.dtype not in FLAGS:
            raise ParamsFileError(f"array {names[i] if names else i} has dtype {a.dtype}, which MXNet files cannot hold")
        out.append(struct.pack("<Iii", V2_MAGIC, 0, a.ndim))
        out.append(struct.pack(f"<{a.ndim}q", *a.shape))
        out.append(struct.pack("<iii", 1, 0, FLAGS[a.dtype]))
        out.append(a.astype(a.dtype.newbyteorder("<"), copy=False).tobytes())
    out.append(struct.pack("<Q", len(names)))
    for name in names:
        encoded = name.encode("utf-8")
        out.append(struct.pack("<Q", len(encoded)) + encoded)
    return b"".join(out)


def save(path: str | os.PathLike, data: list[np.ndarray] | dict[str, np.ndarray]) -> None:
    """Write ``data`` to ``path`` atomically (a temporary file renamed into place)."""
    path = os.fspath(path)
    tmp = f"{path}.writing-{os.getpid()}"
    try:
        with open(tmp, "wb") as f:
            f.write(dumps(data))
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
