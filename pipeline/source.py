"""Reading an SFrame chunk by chunk: which rows a worker reads, in what order, how many at once.

A frame's rows live in chunks (a saved frame: one Zarr chunk per column; a lazy frame:
one Dask block). A pass reads *units* (a chunk, or the part of one that belongs to this
worker) a *window* at a time: the units of a window are read in parallel in a thread
pool, concatenated, and (when shuffling) their rows permuted together, so the window is
also the row shuffle buffer. While the consumer works through one window the next is
read, so at most two windows of units are in memory, whatever the number of rows.

With ``shuffle`` the unit order is drawn per pass from ``(seed, epoch)`` and each
window's row permutation from ``(seed, epoch, window)``: the same seed and epoch give
the same rows in the same order, whatever the thread count.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, Future
from dataclasses import dataclass
from typing import Any

import dask
import numpy as np

from framestream.frames import SFrame
from framestream.frames.sframe import frame_blocks
from framestream.pipeline.batch import Block

# A unit's columns {name: (data, validity or None)} and the number of its first row -> a Block
Convert = Callable[[dict[str, tuple[np.ndarray, np.ndarray | None]], int], Block]


@dataclass(frozen=True)
class Unit:
    """Rows [lo, hi) of chunk ``chunk``; ``first_row`` is row ``lo``'s number in the frame."""

    chunk: int
    lo: int
    hi: int
    first_row: int

    def __len__(self) -> int:
        return self.hi - self.lo


def plan_units(chunks: tuple[int, ...], part_index: int = 0, num_parts: int = 1) -> list[Unit]:
    """The units of worker ``part_index`` of ``num_parts``: an equal share of the rows.

    Part p reads rows [N·p/P, N·(p+1)/P): whole chunks where it can, the end of one and
    the start of another at its edges, so the parts cover every row exactly once and
    differ by at most one row, even when there are fewer chunks than parts.

    >>> [(u.chunk, u.lo, u.hi) for u in plan_units((4, 4), part_index=1, num_parts=3)]
    [(0, 2, 4), (1, 0, 1)]
    """
    if num_parts < 1 or not 0 <= part_index < num_parts:
        raise ValueError(f"part_index must be in [0, num_parts); got part_index={part_index}, "
                         f"num_parts={num_parts}")
    total = sum(chunks)
    lo_row, hi_row = total * part_index // num_parts, total * (part_index + 1) // num_parts
    units, start = [], 0
    for k, n in enumerate(chunks):
        lo, hi = max(lo_row, start), min(hi_row, start + n)
        if lo < hi:
            units.append(Unit(k, lo - start, hi - start, lo))
        start += n
    return units


class ChunkReader:
    """Reads units of some columns of a frame and converts them with ``convert``.

    Counts the units held in memory (read and not yet released) and the peak of that
    count, so tests and users can see the window bound at work.
    """

    def __init__(self, frame: SFrame, columns: list[str], convert: Convert):
        self._names = list(dict.fromkeys(columns))
        self._blocks = frame_blocks(frame[self._names])
        self._convert = convert
        self._lock = threading.Lock()
        self.held = 0
        self.peak = 0
        self.reads = 0

    def read(self, unit: Unit) -> Block:
        flat = [x for pair in self._blocks[unit.chunk] for x in pair]
        values = dask.compute(*flat, scheduler="sync")  # this thread is already one of a pool
        pairs = {name: (_rows(values[2 * i], unit), _rows(values[2 * i + 1], unit))
                 for i, name in enumerate(self._names)}
        block = self._convert(pairs, unit.first_row)
        with self._lock:
            self.reads += 1
            self.held += 1
            self.peak = max(self.peak, self.held)
        return block

    def release(self, count: int) -> None:
        with self._lock:
            self.held -= count


def _rows(values: Any, unit: Unit) -> Any:
    if values is None or (unit.lo == 0 and unit.hi == len(values)):
        return values
    return values[unit.lo : unit.hi]


class WindowedSource:
    """One pass over a worker's units as blocks of a window of units each.

    Parameters
    ----------
    reader : reads and converts one unit.
    units : this worker's units (``plan_units``).
    window : units per window (and per row shuffle).
    shuffle : shuffle the unit order per pass and the rows within each window.
    seed : the stream's seed.
    """

    def __init__(self, reader: ChunkReader, units: list[Unit], window: int, shuffle: bool,
                 seed: int):
        if window < 1:
            raise ValueError(f"window must be at least 1 chunk, not {window}")
        self.reader = reader
        self.units = units
        self.window = int(window)
        self.shuffle = shuffle
        self.seed = seed

    @property
    def num_rows(self) -> int:
        return sum(len(u) for u in self.units)

    def windows(self, epoch: int) -> list[list[Unit]]:
        order = list(self.units)
        if self.shuffle:
            perm = np.random.default_rng([self.seed, epoch]).permutation(len(order))
            order = [order[i] for i in perm]
        return [order[s : s + self.window] for s in range(0, len(order), self.window)]

    def blocks(self, epoch: int, pool: Executor) -> Iterator[Block]:
        """The pass's blocks; the next window is read while the caller consumes this one."""
        windows = self.windows(epoch)
        ahead = self._submit(pool, windows[0]) if windows else []
        current = 0
        try:
            for k in range(len(windows)):
                parts = [f.result() for f in ahead]
                current, ahead = len(parts), []
                if k + 1 < len(windows):
                    ahead = self._submit(pool, windows[k + 1])
                block = Block.concat(parts)
                del parts
                if self.shuffle:
                    rng = np.random.default_rng([self.seed, epoch, k])
                    block = block.take(rng.permutation(len(block)))
                yield block
                del block
                self.reader.release(current)
                current = 0
        finally:
            self.reader.release(current)
            self._drop(ahead)

    def _submit(self, pool: Executor, window: list[Unit]) -> list[Future]:
        return [pool.submit(self.reader.read, unit) for unit in window]

    def _drop(self, futures: list[Future]) -> None:
        """Cancel reads not started; wait for the others and release what they hold."""
        for f in futures:
            f.cancel()
        for f in futures:
            if not f.cancelled() and f.exception() is None:
                self.reader.release(1)
