"""Knowing whether a saved output is already what a configuration asks for.

A flow that writes a saved SFrame also writes a small stamp beside it, the hidden file
``.<name>.flow.json``: the key of the inputs that made it (a hash of the config and of the
data it read) and the saved frame's uuid. A re-run whose key matches a stamp whose uuid is
the frame's current one skips the work; anything else (another config, a frame replaced by
hand, no stamp) does it again.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np


def digest(*parts: Any) -> str:
    """A short stable hash of JSON-able values, numpy arrays and bytes.

    >>> digest({'b': 1, 'a': [2]}) == digest({'a': [2], 'b': 1}) != digest({'a': [3], 'b': 1})
    True
    """
    h = hashlib.sha256()
    for part in parts:
        if isinstance(part, np.ndarray):
            h.update(str((part.dtype.str, part.shape)).encode())
            h.update(np.ascontiguousarray(part).tobytes())
        elif isinstance(part, bytes):
            h.update(part)
        else:
            h.update(json.dumps(part, sort_keys=True, default=str).encode())
        h.update(b"\x00")
    return h.hexdigest()[:20]


def frame_uuid(path: str | os.PathLike) -> str | None:
    """The uuid a saved SFrame got when it was written; None if ``path`` holds none."""
    from framestream.errors import StoreError
    from framestream.frames._store import read_attrs

    try:
        return str(read_attrs(path)["uuid"])
    except (StoreError, OSError, KeyError):
        return None


def stamp_path(output: str | os.PathLike) -> Path:
    output = Path(output).absolute()
    return output.parent / f".{output.name}.flow.json"


def read_stamp(output: str | os.PathLike) -> dict[str, Any] | None:
    try:
        return json.loads(stamp_path(output).read_text())
    except (OSError, ValueError):
        return None


def is_current(output: str | os.PathLike, key: str) -> bool:
    """Whether ``output`` is a saved frame that inputs with ``key`` wrote."""
    stamp = read_stamp(output)
    return bool(stamp and stamp.get("key") == key and stamp.get("uuid") == frame_uuid(output))


def write_stamp(output: str | os.PathLike, key: str, **extra: Any) -> None:
    path = stamp_path(output)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps({"key": key, "uuid": frame_uuid(output), **extra}, default=str))
    tmp.replace(path)


def source_identity(path: str | None) -> Any:
    """What changes when a source's content changes: a saved frame's uuid, else a file's
    size and modification time (None for URLs, globs and folders)."""
    if not path or "://" in path:
        return None
    uuid = frame_uuid(path)
    if uuid is not None:
        return uuid
    p = Path(path)
    if p.is_file():
        stat = p.stat()
        return [stat.st_size, stat.st_mtime_ns]
    return None


def work_dir(output: str | os.PathLike) -> Path:
    """The hidden sibling folder where an output's partial results wait."""
    output = Path(output).absolute()
    return output.parent / f".{output.name}.parts"
