"""An SFrame as a stream of batches: the engine under ``mx.io.SFrameIter`` / ``SFrameImageIter``.

How a pass runs, in one background thread per pass (the ``Prefetcher``)::

    WindowedSource   units of chunks, a window at a time, read in the thread pool,
                     rows shuffled within the window; the next window read ahead
      -> Batcher     cut into batches of batch_size rows (pad / discard / roll_over)
      -> decode      images: one pool task per batch, num_threads in flight, in order
      -> queue       up to ``prefetch`` finished batches wait for the consumer

Memory: two windows of chunks (numbers: as float32; images: still encoded), plus the
batches in flight and in the queue. Nothing depends on the number of rows.
"""

from __future__ import annotations

import os
import weakref
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any

import numpy as np

from framestream.errors import SchemaError
from framestream.frames import SFrame, load_sframe
from framestream.pipeline.batch import (
    Batch,
    Batcher,
    Field,
    RowBatch,
    parse_batch_size,
    parse_last_batch_handle,
    parse_seed,
)
from framestream.pipeline.columns import (
    check_label,
    describe_data,
    first_image_size,
    image_converter,
    parse_fields,
    tabular_converter,
)
from framestream.pipeline.images import ImageDecoder, ImageOptions
from framestream.pipeline.prefetch import Prefetcher, ordered_map
from framestream.pipeline.source import BatchPartSource, ChunkReader, WindowedSource, plan_units

DEFAULT_THREADS = max(1, min(8, os.cpu_count() or 1))


class _Pool:
    """The stream's thread pool, made on first use and shut down with the stream."""

    def __init__(self, threads: int):
        self.threads = threads
        self.pool: ThreadPoolExecutor | None = None

    def get(self) -> ThreadPoolExecutor:
        if self.pool is None:
            self.pool = ThreadPoolExecutor(self.threads, thread_name_prefix="framestream-pipeline")
        return self.pool

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=False, cancel_futures=True)
            self.pool = None


class SFrameStream:
    """Batches of an SFrame's columns, read chunk by chunk, prefetched in the background.

    Numeric data (int, float, vector and list columns) is concatenated per row into
    float32 ``(batch, Σ widths)`` (a single tensor column keeps its (C, H, W)); one image
    column becomes float32 ``(batch, C, H, W)``, raw 0-255 unless ``image`` options say
    otherwise; the label column becomes float32 ``(batch,)``.

    Parameters
    ----------
    sframe : an SFrame, or the path of a saved one (opened lazily).
    data_field, label_field : column name(s); see ``columns.parse_fields``.
    batch_size : rows per batch.
    image : decoding and augmentation options for an image column.
    require_image : reject anything but one image column (SFrameImageIter).
    shuffle : shuffle chunk order and rows within a window, per pass, from (seed, epoch).
    last_batch_handle : 'pad' (GraphLab's behaviour), 'discard' or 'roll_over'.
    part_index, num_parts : read only this worker's share of the rows.
    part_by : how the rows are shared: 'rows' (part p reads the p-th contiguous range of
        rows) or 'batch' (the parts take turns batch by batch over the pass a single reader
        makes, shuffle and filler included, so the parts' k-th batches side by side are
        the single reader's k-th batch of ``num_parts * batch_size`` rows; see
        ``source.BatchPartSource``).
    num_threads : threads reading chunks and decoding images.
    window : chunks read (and shuffled) together; at most two windows are in memory.
    prefetch : finished batches kept ready by the background thread; 0 runs inline.

    Examples
    --------
    >>> import framestream as fs
    >>> sf = fs.SFrame({'x': [1.0, 2.0, 3.0], 'v': [[1.0, 0.0]] * 3, 'y': [0, 1, 0]})
    >>> s = SFrameStream(sf, ['x', 'v'], 'y', batch_size=2)
    >>> [(b.data[0].shape, b.pad) for b in s.batches(0)]
    [((2, 3), 0), ((2, 3), 1)]
    """

    def __init__(self, sframe: Any, data_field: Any, label_field: Any = None,
                 batch_size: int = 1, *, data_name: str = "data",
                 label_name: str = "softmax_label", image: ImageOptions | None = None,
                 require_image: bool = False, shuffle: bool = False, seed: int | None = None,
                 last_batch_handle: str = "pad", part_index: int = 0, num_parts: int = 1,
                 part_by: str = "rows", num_threads: int | None = None, window: int = 2, prefetch: int = 4,
                 who: str = "SFrameIter"):
        frame = sframe if isinstance(sframe, SFrame) else _open(sframe, who)
        self.batch_size = parse_batch_size(batch_size)
        self.seed = parse_seed(seed)
        self.data_name, self.label_name = data_name, label_name
        fields, self.label_field = parse_fields(frame, data_field, label_field, who)
        columns = describe_data(frame, fields, who)
        check_label(frame, self.label_field, who)
        self.decoder: ImageDecoder | None = None
        if columns[0].kind == "image":
            options = image or ImageOptions()
            if options.random_crop and options.data_shape is None:
                raise ValueError(
                    f"{who}: random_crop=True needs data_shape=(C, H, W), the size to crop")
            first = first_image_size(frame, fields[0])
            self.decoder = ImageDecoder(options, first, fields[0], self.seed)
            convert = image_converter(fields[0], self.label_field)
            self.sample_shape: tuple[int, ...] = self.decoder.shape
        elif require_image:
            kind = frame[fields[0]]._logical.name
            raise SchemaError(f"{who}: data_field {fields[0]!r} is {kind}; this iterator needs one "
                              "image column (use SFrameIter for numbers)")
        else:
            convert = tabular_converter(columns, self.label_field)
            width = sum(c.width for c in columns)
            tensor = columns[0].shape if len(columns) == 1 else None
            self.sample_shape = tensor or (width,)
        self.num_threads = int(num_threads or DEFAULT_THREADS)
        self.prefetch = int(prefetch)
        wanted = fields + ([self.label_field] if self.label_field else [])
        self.reader = ChunkReader(frame, wanted, convert)
        handle = parse_last_batch_handle(last_batch_handle)
        chunks = frame._rows.resolve()  # chunk lengths, known now
        if parse_part_by(part_by) == "batch":
            self.source: WindowedSource | BatchPartSource = BatchPartSource(
                self.reader, chunks, window, bool(shuffle), self.seed, self.batch_size,
                part_index, num_parts, handle)
        else:
            self.source = WindowedSource(self.reader, plan_units(chunks, part_index, num_parts),
                                         window, bool(shuffle), self.seed)
        self._batcher = Batcher(self.batch_size, handle)
        self._pool = _Pool(self.num_threads)
        self._finalizer = weakref.finalize(self, self._pool.close)

    @property
    def num_rows(self) -> int:
        """Rows this worker reads per pass."""
        return self.source.num_rows

    @property
    def provide_data(self) -> list[Field]:
        return [Field(self.data_name, (self.batch_size, *self.sample_shape))]

    @property
    def provide_label(self) -> list[Field]:
        return [Field(self.label_name, (self.batch_size,))] if self.label_field else []

    def batches(self, epoch: int = 0) -> Iterator[Batch]:
        """One pass; ``epoch`` keys the shuffle and the augmentation draws.

        The result is an iterator running in a background thread (unless ``prefetch=0``);
        ``close()`` it to stop a pass early. Passes run one at a time: rows a 'roll_over'
        pass leaves over open the next one.
        """
        produce = self._produce(epoch)
        if self.prefetch <= 0:
            return produce
        return Prefetcher(produce, self.prefetch, name=f"framestream-prefetch-{self.data_name}")

    def drop_carry(self) -> None:
        """Forget rows rolled over from the last pass."""
        self._batcher.carry = None

    def close(self) -> None:
        """Shut the thread pool down (also done when the stream is collected)."""
        self._finalizer()

    def _produce(self, epoch: int) -> Iterator[Batch]:
        pool = self._pool.get()
        rows = self._batcher.run(self.source.blocks(epoch, pool))
        if isinstance(self.source, BatchPartSource):  # whole batches; the filler is counted here
            rows = _with_pads(rows, self.source)
        try:
            if self.decoder is None:
                for rb in rows:
                    yield self._batch(rb.rows.columns[0], rb)
            else:
                decode = partial(self._decode, epoch=epoch)
                yield from ordered_map(pool, decode, rows, self.num_threads)
        finally:
            rows.close()

    def _decode(self, rb: RowBatch, epoch: int) -> Batch:
        data = self.decoder.decode(rb.rows.columns[0], rb.rows.index, epoch, rb.number)
        return self._batch(data, rb)

    def _batch(self, data: np.ndarray, rb: RowBatch) -> Batch:
        label = [rb.rows.columns[1]] if self.label_field else []
        return Batch([data], label, rb.pad, rb.rows.index)


def parse_part_by(part_by: str) -> str:
    if part_by not in ("rows", "batch"):
        raise ValueError(f"part_by must be 'rows' or 'batch', not {part_by!r}")
    return part_by


def _with_pads(rows: Iterator[RowBatch], source: BatchPartSource) -> Iterator[RowBatch]:
    try:
        for rb in rows:
            yield RowBatch(rb.rows, source.pad_of(rb.number), rb.number)
    finally:
        rows.close()


def _open(path: Any, who: str) -> SFrame:
    if isinstance(path, str | os.PathLike):
        return load_sframe(os.fspath(path))
    raise SchemaError(
        f"{who}: expected an SFrame or the path of a saved one, not {type(path).__name__}")
