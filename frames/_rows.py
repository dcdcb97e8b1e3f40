"""Row chunking shared by columns that line up row for row.

Columns of one frame share a ``Rows`` object. After a filter the chunk lengths are
unknown (NaN, as in Dask) until something needs them; ``lengths`` then computes them
from the filter masks alone, once, and every column sharing the object learns them.
"""

from __future__ import annotations

import math

import dask
import dask.array as da
import numpy as np


class Rows:
    """The row chunks of a family of aligned columns (lengths may still be unknown)."""

    def __init__(self, chunks: tuple[float, ...], lengths: da.Array | None = None):
        self.chunks = tuple(chunks)
        self.lengths = lengths

    @classmethod
    def of(cls, x: da.Array) -> Rows:
        return cls(x.chunks[0])

    @property
    def known(self) -> bool:
        return not any(math.isnan(c) for c in self.chunks)

    @property
    def nblocks(self) -> int:
        return len(self.chunks)

    def resolve(self) -> tuple[int, ...]:
        """Known chunk lengths, computing them from the masks if needed."""
        if not self.known:
            if self.lengths is None:
                raise RuntimeError("internal: unknown row chunks without a way to count them")
            (lengths,) = dask.compute(self.lengths)
            self.chunks = tuple(int(n) for n in np.asarray(lengths).ravel())
            self.lengths = None
        return tuple(int(c) for c in self.chunks)

    def num_rows(self) -> int:
        return int(sum(self.resolve()))

    def aligned_with(self, other: Rows) -> bool:
        return self is other or (self.known and other.known and self.chunks == other.chunks)

    def fix(self, x: da.Array) -> da.Array:
        """``x`` with this object's chunk lengths, once they are known."""
        if self.known and x.chunks[0] != self.chunks:
            return da.Array(x.dask, x.name, (self.chunks,) + x.chunks[1:], meta=x._meta)
        return x

    def filtered(self, mask: da.Array) -> Rows:
        """The rows left after keeping ``mask`` (a bool array with these chunks)."""
        lengths = mask.map_blocks(_count_true, chunks=((1,) * mask.numblocks[0],), dtype=np.int64)
        return Rows((math.nan,) * mask.numblocks[0], lengths)


def _count_true(mask: np.ndarray) -> np.ndarray:
    return np.array([int(np.count_nonzero(mask))], dtype=np.int64)


def rechunk_to(x: da.Array, chunks: tuple[int, ...]) -> da.Array:
    return x.rechunk((chunks,) + x.chunks[1:])


def concat_rows(a: Rows, b: Rows) -> Rows:
    """The rows of ``a`` followed by those of ``b``."""
    if a.known and b.known:
        return Rows(a.chunks + b.chunks)

    def lengths(r: Rows) -> da.Array:
        if r.known:
            return da.from_array(np.array(r.chunks, dtype=np.int64), chunks=1)
        return r.lengths

    return Rows(a.chunks + b.chunks, da.concatenate([lengths(a), lengths(b)]))
