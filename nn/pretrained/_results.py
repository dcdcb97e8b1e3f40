"""Model outputs written batch by batch into a new SFrame, so results never pile up in memory.

The frame goes to the cache folder (``$FRAMESTREAM_HOME/cache/frames``, removed when the
process exits) through frames' ``FrameWriter``: rows are buffered to one chunk at a time,
and the frame becomes readable only at ``frame()``; on an error the partial files go.
"""

from __future__ import annotations

import shutil
from typing import Any

import numpy as np

from framestream.frames import _store
from framestream.frames._chunking import chunk_rows_for
from framestream.frames._config import new_cache_path
from framestream.frames._lazy_store import open_frame
from framestream.frames._store import ColumnSpec, FrameWriter
from framestream.frames._types import FLOAT, INT, STR, VECTOR

_TYPES = {"int": (INT, "int64", 8), "float": (FLOAT, "float64", 8), "str": (STR, None, 32)}


def label_type(labels: list[Any]) -> str:
    """'int' when every label is an int (labels.json of class numbers), else 'str'."""
    return "int" if all(isinstance(v, int) and not isinstance(v, bool) for v in labels) else "str"


class ResultWriter:
    """``with ResultWriter([(name, kind)], what) as out: out.append([...]); sf = out.frame()``.

    ``kind``: 'int', 'float', 'str', or ('vector', width) stored as float32.
    """

    def __init__(self, columns: list[tuple[str, Any]], what: str):
        specs, row_bytes = [], 0
        self._kinds = []
        for i, (name, kind) in enumerate(columns):
            if isinstance(kind, tuple):
                width = int(kind[1])
                specs.append(ColumnSpec(name, VECTOR, f"c{i}", width, "float32"))
                row_bytes += 4 * width
            else:
                logical, dtype, size = _TYPES[kind]
                specs.append(ColumnSpec(name, logical, f"c{i}", None, dtype))
                row_bytes += size
            self._kinds.append(kind)
        self._target = new_cache_path(what)
        self._staged = _store.staging_dir(self._target)
        self._writer = FrameWriter(specs, chunk_rows_for(row_bytes), self._staged)
        self._done = False

    def __enter__(self) -> ResultWriter:
        return self

    def __exit__(self, *exc: Any) -> None:
        if not self._done:
            shutil.rmtree(self._staged, ignore_errors=True)

    def append(self, values: list[np.ndarray]) -> None:
        """One batch of rows: an array per column, in column order."""
        batch = []
        for kind, column in zip(self._kinds, values, strict=True):
            if kind == "str":
                column = np.asarray([str(v) for v in column], dtype=object)
            batch.append((column, None))
        self._writer.append(batch)

    def frame(self) -> Any:
        """Finish writing and open the result (lazily read) as an SFrame."""
        self._writer.commit()
        _store.commit_dir(self._staged, self._target, overwrite=False)
        self._done = True
        return open_frame(self._target)
