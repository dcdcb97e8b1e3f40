"""How many rows go in one chunk.

Every column of a frame shares one row chunking, so the chunk size follows the width
of a whole row: a chunk of all columns together is about ``TARGET_CHUNK_BYTES``, big
enough that per-chunk overhead is small, small enough that a few chunks in flight per
thread keep memory bounded whatever the number of rows.
"""

from __future__ import annotations

import os

TARGET_CHUNK_BYTES = int(os.environ.get("FRAMESTREAM_CHUNK_BYTES", 16 << 20))
MIN_CHUNK_ROWS = 256
MAX_CHUNK_ROWS = 1 << 20


def chunk_rows_for(row_bytes: float, target: int | None = None) -> int:
    """A power-of-two row count whose chunk of all columns is near ``target`` bytes."""
    target = target or TARGET_CHUNK_BYTES
    rows = max(1.0, target / max(row_bytes, 1.0))
    power = 1 << max(0, int(rows).bit_length() - 1)
    return max(MIN_CHUNK_ROWS, min(MAX_CHUNK_ROWS, power))
