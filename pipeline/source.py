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

    def row_order(self, epoch: int, k: int, rows: int) -> np.ndarray:
        """The order of window ``k``'s ``rows`` rows in the pass (shuffled from (seed, epoch,
        k)); part readers (``BatchPartSource``) follow the same order."""
        return np.random.default_rng([self.seed, epoch, k]).permutation(rows)

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
                    block = block.take(self.row_order(epoch, k, len(block)))
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


class BatchPartSource:
    """Part ``part_index`` of ``num_parts`` of a pass when the parts take turns batch by batch.

    The pass is the one a single reader of the whole frame makes: the same windows of
    chunks, the same shuffle from ``(seed, epoch)``, the same filler rows for ``'pad'``
    (the first rows of the pass). Cut it into *global batches* of ``num_parts * batch_size``
    rows; part p takes rows ``[p * batch_size, (p + 1) * batch_size)`` of each. So the
    parts' k-th batches side by side are the single reader's k-th batch of
    ``num_parts * batch_size`` rows, and every part has the same number of batches (the
    last one completed with filler), which synchronous data-parallel training needs.

    A part reads, window by window, only the chunks that hold one of its rows (the next
    window's read ahead, as ``WindowedSource`` does); the filler rows it needs at the end
    are kept from the window they are in. Unshuffled, with chunks of at most
    ``batch_size`` rows that divide it, the parts read disjoint chunks; otherwise each
    part reads every chunk of a window and keeps its share of the rows.

    >>> parts = [BatchPartSource(None, (5,), 1, False, 0, 2, p, 2, 'pad') for p in (0, 1)]
    >>> [(s.plan(0)[0][1].tolist(), s.plan(0)[0][3].tolist()) for s in parts]  # rows, filler
    [([0, 1, 4], [0]), ([2, 3], [1, 2])]
    >>> [s.num_batches for s in parts], [s.pad_of(1) for s in parts]
    ([2, 2], [1, 2])
    """

    def __init__(self, reader: ChunkReader | None, chunks: tuple[int, ...], window: int,
                 shuffle: bool, seed: int, batch_size: int, part_index: int, num_parts: int,
                 handle: str):
        if num_parts < 1 or not 0 <= part_index < num_parts:
            raise ValueError(f"part_index must be in [0, num_parts); got part_index={part_index}, "
                             f"num_parts={num_parts}")
        if handle == "roll_over":
            raise ValueError("part_by='batch' takes last_batch_handle 'pad' or 'discard', not "
                             "'roll_over' (every part must end its pass on the same batch)")
        self.full = WindowedSource(reader, plan_units(chunks), window, shuffle, seed)  # type: ignore[arg-type]
        self.reader = reader
        self.batch_size, self.part, self.parts = batch_size, part_index, num_parts
        self.total = sum(chunks)
        step = batch_size * num_parts
        self.num_batches = -(-self.total // step) if handle == "pad" else self.total // step

    @property
    def num_rows(self) -> int:
        """Rows this part yields per pass, filler included."""
        return self.num_batches * self.batch_size

    def pad_of(self, number: int) -> int:
        """How many rows of this part's batch ``number`` are filler."""
        end = (number * self.parts + self.part + 1) * self.batch_size
        return max(0, min(self.batch_size, end - self.total))

    def _own(self, start: int, stop: int) -> np.ndarray:
        """This part's positions in the pass within [start, stop), in order."""
        b, step = self.batch_size, self.batch_size * self.parts
        stop = min(stop, self.num_batches * step)
        spans = [np.arange(max(start, k * step + self.part * b), min(stop, k * step + (self.part + 1) * b))
                 for k in range(start // step, -(-stop // step))]
        return np.concatenate(spans) if spans else np.zeros(0, np.int64)

    def plan(self, epoch: int) -> list[tuple[list[Unit], np.ndarray, np.ndarray, np.ndarray]]:
        """Per window: the units to read, this part's rows, and the pass positions and row
        numbers of the filler rows found there."""
        filler = self._filler_positions()
        out, start = [], 0
        for k, window in enumerate(self.full.windows(epoch)):
            rows = np.concatenate([np.arange(u.first_row, u.first_row + len(u)) for u in window])
            if self.full.shuffle:
                rows = rows[self.full.row_order(epoch, k, len(rows))]
            stop = start + len(rows)
            own = rows[self._own(start, stop) - start]
            here = np.unique(filler[(filler >= start) & (filler < stop)])
            wanted = np.concatenate([own, rows[here - start]])
            units = [u for u in window
                     if np.any((wanted >= u.first_row) & (wanted < u.first_row + len(u)))]
            out.append((units, own, here, rows[here - start]))
            start = stop
        return out

    def _filler_positions(self) -> np.ndarray:
        """The pass positions of this part's filler rows, in order (the pass's first rows,
        cycled when the pass is shorter than a global batch, as ``Batcher`` pads)."""
        n = self.total
        beyond = self._own(n, self.num_batches * self.batch_size * self.parts) - n
        return beyond % n if n else beyond

    def blocks(self, epoch: int, pool: Executor) -> Iterator[Block]:
        """This part's rows of the pass in order, window by window, then its filler rows."""
        plan = self.plan(epoch)
        kept: list[Block] = []
        kept_positions: list[np.ndarray] = []
        ahead = [pool.submit(self.reader.read, u) for u in plan[0][0]] if plan else []
        current = 0
        try:
            for k, (_, own, filler_positions, filler_rows) in enumerate(plan):
                parts = [f.result() for f in ahead]
                current, ahead = len(parts), []
                if k + 1 < len(plan):
                    ahead = [pool.submit(self.reader.read, u) for u in plan[k + 1][0]]
                block = Block.concat(parts) if parts else None
                del parts
                if len(filler_rows):
                    kept.append(block.take(_positions(block.index, filler_rows)))
                    kept_positions.append(filler_positions)
                if len(own):
                    yield block.take(_positions(block.index, own))
                del block
                self.reader.release(current)
                current = 0
            if kept:
                positions = np.concatenate(kept_positions)
                yield Block.concat(kept).take(_positions(positions, self._filler_positions()))
        finally:
            self.reader.release(current)
            self.full._drop(ahead)


def _positions(index: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Where each of ``rows`` (row numbers, all present) sits in ``index``."""
    order = np.argsort(index, kind="stable")
    return order[np.searchsorted(index, rows, sorter=order)]
