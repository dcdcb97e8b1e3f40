"""In-memory arrays as a stream of batches: the engine under ``mx.io.NDArrayIter``.

The arrays stay where they are; a pass is an order of row numbers (shuffled or not),
cut into batches by the ``Batcher``, and each batch is one vectorised gather per array.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from framestream.errors import LengthMismatchError, SchemaError
from framestream.pipeline.batch import (
    Batch,
    Batcher,
    Block,
    Field,
    parse_batch_size,
    parse_last_batch_handle,
    parse_seed,
)


def named_arrays(data: Any, default_name: str,
                 dtype: Any = np.float32) -> list[tuple[str, np.ndarray]]:
    """MXNet's naming of iterator inputs, arrays converted to ``dtype``.

    One array is called ``default_name``; a list of several ``_0_<name>``, ``_1_<name>``,
    ...; a dict keeps its keys (in insertion order). None gives no inputs.

    >>> [n for n, _ in named_arrays([np.zeros(2), np.ones(2)], 'data')]
    ['_0_data', '_1_data']
    """
    if data is None:
        return []
    if isinstance(data, Mapping):
        items = [(str(k), v) for k, v in data.items()]
    elif isinstance(data, list | tuple) and data and not _is_number(data[0]):
        items = ([(default_name, data[0])] if len(data) == 1
                 else [(f"_{i}_{default_name}", d) for i, d in enumerate(data)])
    else:
        items = [(default_name, data)]
    out = []
    for name, value in items:
        try:
            array = np.asarray(value, dtype=dtype)
        except (TypeError, ValueError) as exc:
            kind = np.dtype(dtype).name
            raise SchemaError(f"input {name!r} cannot be read as a {kind} array: {exc}") from None
        if array.ndim == 0:
            raise SchemaError(f"input {name!r} is a scalar; an iterator needs one row per example")
        out.append((name, array))
    return out


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float | np.number)


class ArrayStream:
    """Batches of in-memory arrays, optionally shuffled, with MXNet's tail handling.

    With ``shuffle=True`` every pass has its own order, drawn from ``(seed, epoch)``:
    the same seed and epoch give the same batches (MXNet 1.x ``NDArrayIter`` shuffles once,
    at construction; reshuffling per epoch is what training wants). ``seed=None`` draws
    one seed when the stream is made.

    Parameters
    ----------
    data, label : an array, a list of arrays or a dict ``{name: array}`` (see ``named_arrays``).
    batch_size : rows per batch.
    shuffle : a new row order every pass.
    last_batch_handle : 'pad', 'discard' or 'roll_over' (see ``Batcher``).

    Examples
    --------
    >>> s = ArrayStream(np.arange(10.0).reshape(5, 2), np.arange(5), batch_size=2)
    >>> [b.pad for b in s.batches(0)]
    [0, 0, 1]
    >>> next(iter(s.batches(0))).label[0]
    array([0., 1.], dtype=float32)
    """

    def __init__(self, data: Any, label: Any = None, batch_size: int = 1, shuffle: bool = False,
                 last_batch_handle: str = "pad", data_name: str = "data",
                 label_name: str = "softmax_label", seed: int | None = None,
                 dtype: Any = np.float32):
        self.batch_size = parse_batch_size(batch_size)
        self.data = named_arrays(data, data_name, dtype)
        if not self.data:
            raise SchemaError("an array stream needs data; got None or an empty list")
        self.label = named_arrays(label, label_name, dtype)
        self.num_data = _common_length(self.data + self.label)
        self.shuffle = bool(shuffle)
        self.seed = parse_seed(seed)
        self._batcher = Batcher(self.batch_size, parse_last_batch_handle(last_batch_handle))

    @property
    def provide_data(self) -> list[Field]:
        return [Field(n, (self.batch_size, *a.shape[1:]), a.dtype.type) for n, a in self.data]

    @property
    def provide_label(self) -> list[Field]:
        return [Field(n, (self.batch_size, *a.shape[1:]), a.dtype.type) for n, a in self.label]

    def order(self, epoch: int) -> np.ndarray:
        """The row numbers of one pass, in the order they are served."""
        if not self.shuffle:
            return np.arange(self.num_data)
        return np.random.default_rng([self.seed, epoch]).permutation(self.num_data)

    def batches(self, epoch: int = 0) -> Iterator[Batch]:
        """One pass over the rows (roll_over rows left by the previous pass come first)."""
        order = self.order(epoch)
        for rb in self._batcher.run([Block((), order)]):
            rows = rb.rows.index
            data, label = [a[rows] for _, a in self.data], [a[rows] for _, a in self.label]
            yield Batch(data, label, rb.pad, rows)

    def drop_carry(self) -> None:
        """Forget rows rolled over from the last pass (``hard_reset``)."""
        self._batcher.carry = None


def _common_length(named: Sequence[tuple[str, np.ndarray]]) -> int:
    lengths = {name: len(a) for name, a in named}
    if len(set(lengths.values())) > 1:
        shown = ", ".join(f"{n!r} has {k}" for n, k in lengths.items())
        raise LengthMismatchError(f"inputs must have the same number of rows: {shown}")
    return next(iter(lengths.values()))

