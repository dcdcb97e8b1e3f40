"""``mx.io``: MXNet's data iterators, as thin adapters over framestream.pipeline's streams.

The work (ordering, shuffling, chunked reading, decoding, prefetching) happens in the
pipeline's plain iterators; this module only speaks MXNet: ``reset()``, ``next()``,
``provide_data`` / ``provide_label`` and ``DataBatch`` of ``mx.nd.NDArray`` (CPU arrays,
wrapped without a copy).

Each ``reset()`` starts a new epoch; shuffles and random augmentations are drawn from
``(seed, epoch)``. Without a label field ``provide_label`` is ``[]`` and ``batch.label``
is ``[]`` (Turi Create's behaviour; GraphLab's fork served zeros).

>>> import numpy as np
>>> from framestream import mx
>>> it = mx.io.NDArrayIter(np.arange(10.0).reshape(5, 2), np.arange(5), batch_size=2)
>>> [b.pad for b in it]
[0, 0, 1]
>>> it.provide_data
[DataDesc[data,(2, 2),<class 'numpy.float32'>,NCHW]]
"""

from __future__ import annotations

import warnings
from collections import namedtuple
from collections.abc import Iterator
from typing import Any

import numpy as np

from framestream.nn._iter_recipe import IterRecipe
from framestream.nn.ndarray import NDArray
from framestream.pipeline import ArrayStream, Batch, ImageOptions, Prefetcher, SFrameStream

__all__ = ["DataBatch", "DataDesc", "DataIter", "IterRecipe", "NDArrayIter", "PrefetchingIter",
           "ResizeIter", "SFrameImageIter", "SFrameIter"]

_STREAM_OPTIONS = ("shuffle", "seed", "last_batch_handle", "part_index", "num_parts", "part_by",
                   "num_threads", "window", "prefetch")


class DataDesc(namedtuple("DataDesc", ["name", "shape"])):
    """A named input: ``(name, shape)`` as a tuple (so it unpacks as a pair), plus dtype and layout.

    >>> name, shape = DataDesc('data', (100, 1, 28, 28))
    >>> name, shape, DataDesc('data', (2, 3)).layout
    ('data', (100, 1, 28, 28), 'NCHW')
    """

    def __new__(cls, name: str, shape: Any, dtype: Any = np.float32,
                layout: str = "NCHW") -> DataDesc:
        desc = super().__new__(cls, name, tuple(int(d) for d in shape))
        desc.dtype = dtype
        desc.layout = layout
        return desc

    def __repr__(self) -> str:
        return f"DataDesc[{self.name},{self.shape},{self.dtype},{self.layout}]"

    @staticmethod
    def get_batch_axis(layout: str | None) -> int:
        """The position of 'N' in ``layout`` (0 when there is no layout)."""
        return 0 if layout is None else layout.find("N")

    @staticmethod
    def get_list(shapes: list[tuple[str, Any]],
                 types: list[tuple[str, Any]] | None = None) -> list[DataDesc]:
        """DataDescs from ``[(name, shape)]`` and optionally ``[(name, dtype)]``."""
        if types is None:
            return [DataDesc(name, shape) for name, shape in shapes]
        dtypes = dict(types)
        return [DataDesc(name, shape, dtypes[name]) for name, shape in shapes]


class DataBatch:
    """One batch: lists of NDArrays, the filler count ``pad`` and the source row ``index``.

    >>> from framestream import mx
    >>> b = DataBatch([mx.nd.zeros((2, 3))], [mx.nd.zeros((2,))], pad=1)
    >>> print(b)
    DataBatch: data shapes: [(2, 3)] label shapes: [(2,)]
    """

    def __init__(self, data: list[NDArray], label: list[NDArray] | None = None,
                 pad: int | None = None, index: Any = None, bucket_key: Any = None,
                 provide_data: list[DataDesc] | None = None,
                 provide_label: list[DataDesc] | None = None):
        self.data = data
        self.label = label
        self.pad = pad
        self.index = index
        self.bucket_key = bucket_key
        self.provide_data = provide_data
        self.provide_label = provide_label

    def __str__(self) -> str:
        shapes = [d.shape for d in self.data or []]
        labels = [d.shape for d in self.label or []]
        return f"{type(self).__name__}: data shapes: {shapes} label shapes: {labels}"


class DataIter:
    """Base class of iterators: subclasses define ``iter_next`` and the ``get*`` methods.

    ``provide_data`` / ``provide_label`` (lists of ``DataDesc`` or ``(name, shape)``) are
    set by subclasses, as attributes or properties.

    >>> from framestream import mx
    >>> class Once(DataIter):
    ...     def __init__(self):
    ...         super().__init__(batch_size=1)
    ...         self.provide_data, self.left = [('data', (1, 2))], 1
    ...     def iter_next(self):
    ...         self.left -= 1
    ...         return self.left >= 0
    ...     def getdata(self):
    ...         return [mx.nd.ones((1, 2))]
    >>> [b.data[0].shape for b in Once()]
    [(1, 2)]
    """

    provide_data: Any = None
    provide_label: Any = None

    def __init__(self, batch_size: int = 0):
        self.batch_size = batch_size

    def __iter__(self) -> DataIter:
        return self

    def reset(self) -> None:
        """Go back to the start (the next epoch)."""

    def next(self) -> DataBatch:
        if self.iter_next():
            return DataBatch(self.getdata(), self.getlabel(), pad=self.getpad(),
                             index=self.getindex())
        raise StopIteration

    def __next__(self) -> DataBatch:
        return self.next()

    def iter_next(self) -> bool:
        """Move to the next batch; False at the end of the epoch."""
        return False

    def getdata(self) -> list[NDArray] | None:
        return None

    def getlabel(self) -> list[NDArray] | None:
        return None

    def getindex(self) -> Any:
        return None

    def getpad(self) -> int:
        return 0


class _BatchHolder(DataIter):
    """An iterator whose ``iter_next`` leaves the whole batch in ``current_batch``."""

    current_batch: DataBatch | None = None

    def next(self) -> DataBatch:
        if self.iter_next():
            return self.current_batch
        raise StopIteration

    def getdata(self) -> list[NDArray] | None:
        return None if self.current_batch is None else self.current_batch.data

    def getlabel(self) -> list[NDArray] | None:
        return None if self.current_batch is None else self.current_batch.label

    def getindex(self) -> Any:
        return None if self.current_batch is None else self.current_batch.index

    def getpad(self) -> int:
        return 0 if self.current_batch is None else self.current_batch.pad


def _descs(fields: list[Any]) -> list[DataDesc]:
    return [DataDesc(f.name, f.shape, f.dtype) for f in fields]


class _StreamIter(_BatchHolder):
    """A pipeline stream behind MXNet's DataIter surface: a pass per epoch, reset() moves on."""

    def __init__(self, stream: Any):
        super().__init__(stream.batch_size)
        self._stream = stream
        self._epoch = 0
        self._pass: Iterator[Batch] | None = None
        self._provide_data = _descs(stream.provide_data)
        self._provide_label = _descs(stream.provide_label)
        self._arguments: dict[str, Any] | None = None  # how to make it again (SFrame iterators)

    @property
    def provide_data(self) -> list[DataDesc]:
        return self._provide_data

    @property
    def provide_label(self) -> list[DataDesc]:
        return self._provide_label

    @property
    def epoch(self) -> int:
        """The epoch being served (it keys shuffling and augmentation)."""
        return self._epoch

    def reset(self) -> None:
        self._close_pass()
        self._epoch += 1

    def set_epoch(self, epoch: int) -> None:
        """Serve epoch ``epoch`` next (its order and draws depend on (seed, epoch) only, so a
        resumed training run sees the batches the uninterrupted run would have seen)."""
        self._close_pass()
        self._epoch = int(epoch)

    def close(self) -> None:
        """Stop any background work now (it also stops when the iterator is collected)."""
        self._close_pass()

    def recipe(self) -> IterRecipe:
        """How to make this iterator again (frame, columns, options and seed), elsewhere: a
        picklable ``IterRecipe`` whose ``make()`` starts afresh at epoch 0."""
        if self._arguments is None:
            raise TypeError(f"{type(self).__name__} cannot be made again elsewhere; use an "
                            "SFrameIter or SFrameImageIter")
        return IterRecipe(type(self), dict(self._arguments))

    def part(self, part_index: int, num_parts: int, part_by: str = "batch") -> _StreamIter:
        """The same iterator (frame, columns, options, seed) over worker ``part_index``'s share
        of the rows, for data-parallel training on ``num_parts`` workers.

        ``part_by='batch'`` (training): the workers take turns batch by batch over the pass
        this iterator makes, so their k-th batches side by side are this iterator's k-th
        batch with ``num_parts`` times the rows, and all have as many batches.
        ``part_by='rows'`` (scoring): contiguous ranges of rows.

        >>> import framestream as fs
        >>> from framestream import mx
        >>> it = mx.io.SFrameIter(fs.SFrame({'x': [0.0, 1.0, 2.0, 3.0, 4.0]}), 'x', batch_size=1)
        >>> [[float(b.data[0].asnumpy()[0, 0]) for b in it.part(p, 2)] for p in (0, 1)]
        [[0.0, 2.0, 4.0], [1.0, 3.0, 0.0]]
        """
        return self.recipe().part(part_index, num_parts, part_by)

    def _close_pass(self) -> None:
        close = getattr(self._pass, "close", None)
        if close is not None:
            close()
        self._pass, self.current_batch = None, None

    def iter_next(self) -> bool:
        if self._pass is None:
            self._pass = self._stream.batches(self._epoch)
        try:
            batch = next(self._pass)
        except StopIteration:
            self.current_batch = None
            return False
        self.current_batch = DataBatch(
            [NDArray(a) for a in batch.data], [NDArray(a) for a in batch.label], pad=batch.pad,
            index=batch.index, provide_data=self._provide_data, provide_label=self._provide_label)
        return True


def _plain(value: Any) -> Any:
    """NDArrays (also inside lists and dicts) as numpy arrays."""
    if isinstance(value, NDArray):
        return value.asnumpy()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


class NDArrayIter(_StreamIter):
    """Batches of in-memory arrays (numpy or NDArray; one, a list, or a dict by name).

    Arrays are served as float32. With ``shuffle=True`` each epoch has its own order,
    drawn from ``(seed, epoch)`` (MXNet 1.x shuffles once, at construction). For
    ``last_batch_handle`` see ``framestream.pipeline.Batcher``; with ``'roll_over'`` call
    ``hard_reset()`` before predicting, to drop the rows carried over.

    Examples
    --------
    >>> import numpy as np
    >>> it = NDArrayIter({'a': np.zeros((4, 3)), 'b': np.ones((4, 1))}, batch_size=3,
    ...                  last_batch_handle='roll_over')
    >>> [d.name for d in it.provide_data], len(list(it))
    (['a', 'b'], 1)
    """

    def __init__(self, data: Any, label: Any = None, batch_size: int = 1, shuffle: bool = False,
                 last_batch_handle: str = "pad", data_name: str = "data",
                 label_name: str = "softmax_label", seed: int | None = None):
        stream = ArrayStream(_plain(data), _plain(label), batch_size, shuffle, last_batch_handle,
                             data_name, label_name, seed)
        super().__init__(stream)
        self.num_data = stream.num_data
        self.last_batch_handle = last_batch_handle
        self.data = [(n, NDArray(a)) for n, a in stream.data]
        self.label = [(n, NDArray(a)) for n, a in stream.label]

    def hard_reset(self) -> None:
        """Start the next epoch without rows rolled over from this one."""
        self.reset()
        self._stream.drop_carry()


def _stream_options(kwargs: dict[str, Any], who: str, strict: bool) -> dict[str, Any]:
    options = {k: kwargs.pop(k) for k in list(kwargs) if k in _STREAM_OPTIONS}
    if kwargs:
        message = f"{who} got unknown arguments {sorted(kwargs)}; it takes {list(_STREAM_OPTIONS)}"
        if strict:
            raise TypeError(message)
        warnings.warn(message + " (ignored, as GraphLab did)", stacklevel=3)
    return options


class SFrameIter(_StreamIter):
    """Batches from SFrame columns, read chunk by chunk (GraphLab's ``mx.io.SFrameIter``).

    ``data_field``: int, float and vector (array) columns, concatenated per row into
    float32 ``(batch, Σ widths)`` (vectors of one length), or one image column alone
    (raw 0-255 pixels, ``(batch, C, H, W)``, all images one size). ``label_field``: one
    int or float column, served as float32 ``(batch,)``. The last batch is padded with
    the first rows (``pad`` says how many) unless ``last_batch_handle`` says otherwise.

    Keyword extensions: ``shuffle``, ``seed``, ``last_batch_handle``, ``part_index`` and
    ``num_parts`` (this worker's share of rows) with ``part_by`` ('rows': a contiguous range;
    'batch': turns of a batch, see ``part``), ``num_threads``, ``window`` (chunks in
    memory and shuffled together), ``prefetch`` (batches made ahead).

    Examples
    --------
    >>> import framestream as fs
    >>> from framestream import mx
    >>> sf = fs.SFrame({'x': [1.0, 2.0, 3.0], 'v': [[0.5, 1.5]] * 3, 'y': [0, 1, 1]})
    >>> it = mx.io.SFrameIter(sf, data_field=['x', 'v'], label_field='y', batch_size=2)
    >>> it.provide_data[0].shape, [b.pad for b in it]
    ((2, 3), [0, 1])
    """

    def __init__(self, sframe: Any, data_field: Any, label_field: str | None = None,
                 batch_size: int = 1, data_name: str = "data",
                 label_name: str = "softmax_label", **kwargs: Any):
        options = _stream_options(dict(kwargs), "SFrameIter", strict=True)
        super().__init__(SFrameStream(sframe, data_field, label_field, batch_size,
                                      data_name=data_name, label_name=label_name, **options))
        self._arguments = {"sframe": sframe, "data_field": data_field, "label_field": label_field,
                           "batch_size": batch_size, "data_name": data_name,
                           "label_name": label_name, **options, "seed": self._stream.seed}


class SFrameImageIter(_StreamIter):
    """Batches of one image column, normalised and optionally augmented (``(batch, C, H, W)``).

    Output ``(pixels - mean) * scale`` with the mean per channel ``[mean_r, mean_g,
    mean_b][:C]`` or ``mean_nd``, an ``(H, W, C)`` array that overrides them.
    ``random_flip`` mirrors the whole batch with probability 1/2 (GraphLab's behaviour).

    Extensions, re-drawn every epoch from ``seed``: ``data_shape=(C, H, W)`` (crop to
    H x W, centre unless ``random_crop=True``; convert to C channels), ``resize=(h, w)``
    or an int for the shorter side (applied first), ``random_mirror`` (each image with
    probability 1/2), Turi's ``image_shape`` (resize to it); plus the ``SFrameIter``
    extensions. Other keyword arguments are ignored with a warning, as GraphLab ignored them.

    Examples
    --------
    >>> import numpy as np, framestream as fs
    >>> from framestream import mx
    >>> img = fs.Image(np.full((8, 8, 3), 200, np.uint8))
    >>> sf = fs.SFrame({'image': [img] * 3, 'label': [0, 1, 2]})
    >>> it = mx.io.SFrameImageIter(sf, data_field=['image'], label_field='label', batch_size=2,
    ...                            mean_r=100, mean_g=100, mean_b=100, scale=0.01)
    >>> float(it.next().data[0].asnumpy().max())
    1.0
    """

    def __init__(self, sframe: Any, data_field: Any, label_field: str | None = None,
                 batch_size: int = 1, data_name: str = "data",
                 label_name: str = "softmax_label", mean_r: float = 0.0, mean_g: float = 0.0,
                 mean_b: float = 0.0, mean_nd: Any = None, scale: float = 1.0,
                 random_flip: bool = False, data_shape: Any = None, resize: Any = None,
                 random_crop: bool = False, random_mirror: bool = False,
                 image_shape: Any = None, **kwargs: Any):
        options = _stream_options(dict(kwargs), "SFrameImageIter", strict=False)
        if image_shape is not None:
            data_shape = data_shape or tuple(image_shape)
            resize = resize or (int(image_shape[1]), int(image_shape[2]))
        image = ImageOptions(
            data_shape=None if data_shape is None else tuple(int(v) for v in data_shape),
            resize=resize, random_crop=bool(random_crop), random_mirror=bool(random_mirror),
            random_flip=bool(random_flip), mean=(float(mean_r), float(mean_g), float(mean_b)),
            mean_nd=None if mean_nd is None else np.asarray(_plain(mean_nd), dtype=np.float32),
            scale=float(scale))
        super().__init__(SFrameStream(sframe, data_field, label_field, batch_size,
                                      data_name=data_name, label_name=label_name, image=image,
                                      require_image=True, who="SFrameImageIter", **options))
        self._arguments = {
            "sframe": sframe, "data_field": data_field, "label_field": label_field,
            "batch_size": batch_size, "data_name": data_name, "label_name": label_name,
            "mean_r": mean_r, "mean_g": mean_g, "mean_b": mean_b, "mean_nd": mean_nd,
            "scale": scale, "random_flip": random_flip, "data_shape": data_shape, "resize": resize,
            "random_crop": random_crop, "random_mirror": random_mirror, **options,
            "seed": self._stream.seed}


class ResizeIter(_BatchHolder):
    """``data_iter`` seen as epochs of exactly ``size`` batches (restarting it when it runs out).

    >>> import numpy as np
    >>> len(list(ResizeIter(NDArrayIter(np.zeros((4, 1)), batch_size=2), 5)))
    5
    """

    def __init__(self, data_iter: DataIter, size: int, reset_internal: bool = True):
        super().__init__(data_iter.batch_size)
        self.data_iter = data_iter
        self.size = int(size)
        self.reset_internal = reset_internal
        self.cur = 0
        self.provide_data = data_iter.provide_data
        self.provide_label = data_iter.provide_label
        if hasattr(data_iter, "default_bucket_key"):
            self.default_bucket_key = data_iter.default_bucket_key

    def reset(self) -> None:
        self.cur = 0
        if self.reset_internal:
            self.data_iter.reset()

    def iter_next(self) -> bool:
        if self.cur == self.size:
            return False
        try:
            self.current_batch = self.data_iter.next()
        except StopIteration:
            self.data_iter.reset()
            self.current_batch = self.data_iter.next()
        self.cur += 1
        return True


def _drain(it: DataIter) -> Iterator[DataBatch]:
    while True:
        try:
            batch = it.next()
        except StopIteration:
            return
        yield batch


class PrefetchingIter(_BatchHolder):
    """Runs one or more iterators each in its own thread; their batches are joined side by side.

    ``rename_data`` / ``rename_label``: one ``{old: new}`` dict per iterator.

    >>> import numpy as np
    >>> a = NDArrayIter(np.zeros((4, 2)), batch_size=2)
    >>> b = NDArrayIter(np.ones((4, 3)), batch_size=2, data_name='extra')
    >>> it = PrefetchingIter([a, b])
    >>> [d.name for d in it.provide_data], len(it.next().data)
    (['data', 'extra'], 2)
    >>> it.close()
    """

    def __init__(self, iters: DataIter | list[DataIter], rename_data: list[dict] | None = None,
                 rename_label: list[dict] | None = None):
        self.iters = iters if isinstance(iters, list) else [iters]
        if not self.iters:
            raise ValueError("PrefetchingIter needs at least one iterator")
        self.n_iter = len(self.iters)
        self.rename_data, self.rename_label = rename_data, rename_label
        super().__init__(self.provide_data[0][1][0])
        self._passes: list[Prefetcher] | None = None

    @staticmethod
    def _renamed(descs: list[list[Any]], renames: list[dict] | None) -> list[DataDesc]:
        out = []
        for k, group in enumerate(descs):
            names = renames[k] if renames else {}
            for d in group:
                dtype = getattr(d, "dtype", np.float32)
                out.append(DataDesc(names.get(d[0], d[0]), d[1], dtype))
        return out

    @property
    def provide_data(self) -> list[DataDesc]:
        return self._renamed([i.provide_data for i in self.iters], self.rename_data)

    @property
    def provide_label(self) -> list[DataDesc]:
        return self._renamed([i.provide_label or [] for i in self.iters], self.rename_label)

    def close(self) -> None:
        """Stop the background threads."""
        for p in self._passes or []:
            p.close()
        self._passes = None

    def reset(self) -> None:
        self.close()
        for it in self.iters:
            it.reset()

    def set_epoch(self, epoch: int) -> None:
        """Forward ``set_epoch`` to the iterators that have it (see ``SFrameIter.set_epoch``)."""
        self.close()
        for it in self.iters:
            if hasattr(it, "set_epoch"):
                it.set_epoch(epoch)

    def iter_next(self) -> bool:
        if self._passes is None:
            self._passes = [Prefetcher(_drain(it), depth=1, name="framestream-prefetching-iter")
                            for it in self.iters]
        batches = [next(p, None) for p in self._passes]
        if all(b is None for b in batches):
            return False
        if any(b is None for b in batches) or any(b.pad != batches[0].pad for b in batches):
            raise ValueError(
                "PrefetchingIter: the iterators disagree on the number of batches or rows")
        self.current_batch = DataBatch(
            sum((b.data for b in batches), []), sum((b.label or [] for b in batches), []),
            batches[0].pad, batches[0].index, provide_data=self.provide_data,
            provide_label=self.provide_label)
        return True
