"""Keep the C heap from holding on to freed chunk buffers (glibc only).

glibc raises its mmap threshold each time a large block is freed, so after the first
few chunks every chunk-sized buffer (decoded columns, decompressed bytes) comes from
the heap arenas of the threads that touched it; freed, they stay in the process as
fragmented heap. On an out-of-core run that made RSS grow with every pass (from 260
to 850 MB on a 1.2 GB CSV). A fixed threshold (what ``MALLOC_MMAP_THRESHOLD_=131072``
does, and what Dask's nannies set for their workers by environment) returns every
large buffer to the system when it is freed. Set ``FRAMESTREAM_MALLOC_TUNING=0`` to
leave the allocator alone.
"""

from __future__ import annotations

import ctypes
import os
import sys

M_MMAP_THRESHOLD = -3
THRESHOLD_BYTES = 128 * 1024  # below a column chunk even at small chunk sizes


def tune_allocator() -> bool:
    """Fix glibc's mmap threshold; returns whether it was set."""
    if os.environ.get("FRAMESTREAM_MALLOC_TUNING", "1") == "0" or not sys.platform.startswith("linux"):
        return False
    if "MALLOC_MMAP_THRESHOLD_" in os.environ:
        return False  # the user chose already
    try:
        libc = ctypes.CDLL(None)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False  # not glibc (musl, ...)
    return bool(mallopt(M_MMAP_THRESHOLD, THRESHOLD_BYTES))
