"""Batches, the rows they are cut from, and the cutting (pad / discard / roll_over).

Every stream in this package ends the same way: blocks of rows (a few columns plus
each row's number in the source) go through a ``Batcher``, which cuts them into
batches of exactly ``batch_size`` rows and decides what happens to the tail.

>>> import numpy as np
>>> rows = Block((np.arange(5.0),), np.arange(5))
>>> [(len(b.rows), b.pad) for b in Batcher(2, "pad").run([rows])]
[(2, 0), (2, 0), (2, 1)]
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import numpy as np

LAST_BATCH_HANDLES = ("pad", "discard", "roll_over")


@dataclass(frozen=True)
class Batch:
    """One batch: data and label arrays (batch axis first), filler count and row numbers.

    ``pad`` rows at the end are filler (copies of the first rows of the pass);
    ``index`` holds the source row number of every row, filler included.

    >>> import numpy as np
    >>> b = Batch([np.zeros((2, 3), np.float32)], [], pad=0, index=np.arange(2))
    >>> b.data[0].shape, b.label
    ((2, 3), [])
    """

    data: list[np.ndarray]
    label: list[np.ndarray]
    pad: int
    index: np.ndarray


@dataclass(frozen=True)
class Field:
    """A named input a stream provides: its shape with the batch axis first, and dtype."""

    name: str
    shape: tuple[int, ...]
    dtype: type = np.float32


@dataclass(frozen=True)
class Block:
    """Aligned columns of some rows, and each row's number in the source.

    >>> b = Block((np.array([10.0, 11.0, 12.0]),), np.array([0, 1, 2]))
    >>> b.take(np.array([2, 0])).columns[0].tolist(), len(b.slice(1, 3))
    ([12.0, 10.0], 2)
    """

    columns: tuple[np.ndarray, ...]
    index: np.ndarray

    def __len__(self) -> int:
        return len(self.index)

    def slice(self, start: int, stop: int) -> Block:
        """Rows [start, stop) as copies, so that a batch never pins the block it came from."""
        columns = tuple(c[start:stop].copy() for c in self.columns)
        return Block(columns, self.index[start:stop].copy())

    def take(self, rows: np.ndarray) -> Block:
        return Block(tuple(c[rows] for c in self.columns), self.index[rows])

    @staticmethod
    def concat(blocks: list[Block]) -> Block:
        if len(blocks) == 1:
            return blocks[0]
        columns = tuple(np.concatenate(cols) for cols in zip(*(b.columns for b in blocks)))
        return Block(columns, np.concatenate([b.index for b in blocks]))


@dataclass(frozen=True)
class RowBatch:
    """The rows of one batch before decoding; ``number`` counts batches within the pass."""

    rows: Block
    pad: int
    number: int


def parse_last_batch_handle(handle: str) -> str:
    if handle not in LAST_BATCH_HANDLES:
        raise ValueError(
            f"last_batch_handle must be one of {list(LAST_BATCH_HANDLES)}, not {handle!r}")
    return handle


def parse_seed(seed: int | None) -> int:
    """A seed for a stream; None draws one (fixed for the stream's life)."""
    if seed is None:
        return int(np.random.SeedSequence().entropy % (2**63))
    return int(seed)


def parse_batch_size(batch_size: int) -> int:
    is_int = isinstance(batch_size, int | np.integer) and not isinstance(batch_size, bool)
    if not is_int or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, not {batch_size!r}")
    return int(batch_size)


@dataclass
class Batcher:
    """Cuts a pass over blocks into batches of ``batch_size`` rows.

    The tail shorter than a batch is, by ``last_batch_handle``:

    - ``'pad'``: filled with the first rows of the pass (cycled when the pass is shorter
      than a batch); ``pad`` says how many rows are filler.
    - ``'discard'``: dropped.
    - ``'roll_over'``: kept in ``carry`` and put in front of the next pass (``pad`` 0).
      A pass abandoned before its end loses the carry, as MXNet's ``reset()`` does.

    >>> batcher = Batcher(4, "roll_over")
    >>> [rb.rows.index.tolist() for rb in batcher.run([Block((), np.arange(6))])]
    [[0, 1, 2, 3]]
    >>> [rb.rows.index.tolist() for rb in batcher.run([Block((), np.arange(6))])]
    [[4, 5, 0, 1], [2, 3, 4, 5]]
    """

    batch_size: int
    handle: str = "pad"
    carry: Block | None = field(default=None, repr=False)

    def run(self, blocks: Iterable[Block]) -> Iterator[RowBatch]:
        bs = self.batch_size
        pending: list[Block] = [self.carry] if self.carry is not None else []
        self.carry = None
        held = sum(len(b) for b in pending)
        head: list[Block] = []  # the first rows of the pass, for 'pad'
        head_rows = 0
        number = 0
        for block in blocks:
            n = len(block)
            if n == 0:
                continue
            if self.handle == "pad" and head_rows < bs:
                head.append(block.slice(0, min(n, bs - head_rows)))
                head_rows += len(head[-1])
            pos = 0
            if held:
                need = bs - held
                if n < need:
                    pending.append(block.slice(0, n))
                    held += n
                    continue
                yield RowBatch(Block.concat([*pending, block.slice(0, need)]), 0, number)
                number += 1
                pos, pending, held = need, [], 0
            while n - pos >= bs:
                yield RowBatch(block.slice(pos, pos + bs), 0, number)
                number += 1
                pos += bs
            if pos < n:
                pending, held = [block.slice(pos, n)], n - pos
        if not held:
            return
        tail = Block.concat(pending)
        if self.handle == "pad":
            first = Block.concat(head) if head else tail
            filler = first.take(np.arange(bs - held) % len(first))
            yield RowBatch(Block.concat([tail, filler]), bs - held, number)
        elif self.handle == "roll_over":
            self.carry = tail
