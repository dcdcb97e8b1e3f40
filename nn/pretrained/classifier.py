"""``ImageClassifier``: a pretrained network that labels images and extracts their features.

Images go through the same streaming machinery as training, so memory never depends on
the number of images::

    image column -> fs.image_analysis.resize to the model's (H, W, C)   lazy, per chunk
      -> mx.io.SFrameImageIter: (pixels - mean) * scale, NCHW float32   decoded in threads,
                                                                        prefetched
      -> executor forward, batch by batch (on ctx, or split across a list of contexts)
      -> results appended to an SFrame written chunk by chunk to the cache folder

The results are an ordinary (saved, lazily read) SFrame / SArray, removed when the process
exits unless saved elsewhere.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from framestream.errors import SchemaError
from framestream.frames import Image, SArray, SFrame
from framestream.frames import image_analysis as ia
from framestream.nn import io
from framestream.nn._executor_group import ExecutorGroup
from framestream.nn.context import Context, cpu
from framestream.nn.features import get_feature_symbol
from framestream.nn.pretrained._described import DescribedModel
from framestream.nn.pretrained._folder import IMAGE_CLASSIFIER, data_and_label_names
from framestream.nn.pretrained._results import ResultWriter, label_type

__all__ = ["ImageClassifier"]


def image_frame(data: Any, who: str) -> tuple[SFrame, str]:
    """``(frame, image column)`` for an Image, an image SArray, or an SFrame with one."""
    if isinstance(data, Image):
        data = SArray([data])
    if isinstance(data, SArray):
        if data.dtype is not Image:
            raise SchemaError(f"{who}: expected an SArray of images, got an SArray of "
                              f"{getattr(data.dtype, '__name__', data.dtype)}")
        return SFrame({"image": data}), "image"
    if isinstance(data, SFrame):
        columns = [n for n, t in zip(data.column_names(), data.column_types()) if t is Image]
        if len(columns) != 1:
            found = ", ".join(repr(c) for c in columns) or "none"
            raise SchemaError(f"{who}: the SFrame must have exactly one image column; its image "
                              f"columns: {found} (select one: sf[['image']])")
        return data, columns[0]
    raise SchemaError(f"{who}: data must be an fs.Image, an SArray of images or an SFrame with "
                      f"one image column, not {type(data).__name__}")


def _contexts(ctx: Any) -> list[Context]:
    if ctx is None:
        return [cpu()]
    return list(ctx) if isinstance(ctx, list | tuple) else [ctx]


def _check_batch_size(batch_size: Any, who: str) -> int:
    integer = isinstance(batch_size, int | np.integer) and not isinstance(batch_size, bool)
    if not integer or batch_size < 1:
        raise ValueError(f"{who}: batch_size must be a positive integer, not {batch_size!r}")
    return int(batch_size)


class ImageClassifier(DescribedModel):
    """A pretrained image classifier (GraphLab's ``mx.pretrained_model.ImageClassifier``).

    Usually made by ``load_model``. ``metadata`` holds ``name``, ``version``,
    ``input_shape`` (H, W, C), ``mean_rgb``, ``scale`` (None: 1), optionally ``mean_nd``
    (an (H, W, C) mean image that replaces ``mean_rgb``) and ``data_name``.

    ``data`` for every method: an ``fs.Image``, an SArray of images, or an SFrame with one
    image column. Images of any size and channel count are resized (bilinear) and converted
    to ``input_shape`` with ``fs.image_analysis.resize``.

    Examples
    --------
    >>> from framestream import mx
    >>> model = mx.pretrained_model.load_model('fmnist_cnn')  # doctest: +SKIP
    >>> model.predict_topk(test['image'], k=3)  # doctest: +SKIP
    >>> model.extract_features(test['image'])  # doctest: +SKIP
    """

    def __init__(self, symbol: Any, arg_params: dict[str, Any], aux_params: dict[str, Any],
                 labels: list[Any], metadata: dict[str, Any], ctx: Any = None):
        self._symbol = symbol
        self._arg_params = dict(arg_params)
        self._aux_params = dict(aux_params or {})
        self._labels = list(labels)
        self._metadata = {"model_type": IMAGE_CLASSIFIER, **metadata}
        self._ctx = _contexts(ctx)
        shape = metadata.get("input_shape")
        if shape is None or len(shape) != 3:
            raise ValueError(f"metadata input_shape must be (height, width, channels), "
                             f"not {shape!r}")
        self._input_shape = tuple(int(v) for v in shape)
        mean_nd = metadata.get("mean_nd")
        if mean_nd is not None and not hasattr(mean_nd, "shape"):
            raise TypeError("metadata mean_nd must be an (H, W, C) array here (load_model reads "
                            f"the file), not {type(mean_nd).__name__}")
        self._data_name, _ = data_and_label_names(symbol, metadata)
        self._groups: dict[tuple, ExecutorGroup] = {}
        self._num_classes = self._output_width(symbol, "the network's output")
        if self._num_classes != len(self._labels):
            raise ValueError(f"{self.name}: the network has {self._num_classes} outputs per image "
                             f"but there are {len(self._labels)} labels")

    # -- what it is ---------------------------------------------------------------------------
    @property
    def input_shape(self) -> tuple[int, int, int]:
        """(height, width, channels) that images are resized and converted to."""
        return self._input_shape

    @property
    def ctx(self) -> list[Context]:
        return list(self._ctx)

    @property
    def model(self) -> Any:
        """The network as an ``mx.model.FeedForward`` (GraphLab exposed it as ``model``)."""
        from framestream.nn.model import FeedForward

        return FeedForward(self._symbol, ctx=self._ctx, arg_params=self._arg_params,
                           aux_params=self._aux_params, allow_extra_params=True)

    def __repr__(self) -> str:
        return f"ImageClassifier: {self.name} (version {self.version})"

    __str__ = __repr__

    # -- running --------------------------------------------------------------------------------
    def _output_width(self, symbol: Any, what: str) -> int:
        h, w, c = self._input_shape
        try:
            _, out_shapes, _ = symbol.infer_shape(**{self._data_name: (1, c, h, w)})
        except Exception as exc:
            raise ValueError(f"{self.name}: cannot infer the shape of {what} for input "
                             f"(1, {c}, {h}, {w}) ({exc})") from None
        return int(np.prod(out_shapes[0][1:]))

    def _group(self, layer: str | None, symbol: Any, batch: int) -> ExecutorGroup:
        """An executor group for ``symbol`` (the outputs, or ``layer``) at this batch size,
        bound once and kept (a few of them)."""
        h, w, c = self._input_shape
        key = (layer, batch)
        if key not in self._groups:
            if len(self._groups) >= 4:
                self._groups.pop(next(iter(self._groups)))
            ctxs = self._ctx[:batch]
            group = ExecutorGroup(symbol, ctxs, [(self._data_name, (batch, c, h, w))], [], [],
                                  for_training=False)
            group.set_params(self._arg_params, self._aux_params)
            self._groups[key] = group
        return self._groups[key]

    def _iterator(self, data: Any, batch_size: int, who: str) -> io.SFrameImageIter | None:
        """The images resized (lazily) and normalised, in batches; None for no images."""
        frame, column = image_frame(data, who)
        rows = len(frame)
        if rows == 0:
            return None
        h, w, c = self._input_shape
        images = ia.resize(frame[column], w, h, c, decode=True)
        mean_rgb = list(self._metadata.get("mean_rgb") or (0.0, 0.0, 0.0))
        scale = self._metadata.get("scale")
        it = io.SFrameImageIter(
            SFrame({"image": images}), data_field="image", batch_size=min(batch_size, rows),
            data_name=self._data_name, mean_r=mean_rgb[0], mean_g=mean_rgb[1],
            mean_b=mean_rgb[2], mean_nd=self._metadata.get("mean_nd"),
            scale=1.0 if scale is None else float(scale))
        return it

    def _outputs(self, data: Any, layer: str | None, batch_size: int,
                 who: str) -> Iterator[np.ndarray]:
        """The first output of the network (or of ``layer``) per batch, padding trimmed."""
        it = self._iterator(data, _check_batch_size(batch_size, who), who)
        if it is None:
            return
        symbol = self._symbol if layer is None else get_feature_symbol(self, layer)
        group = self._group(layer, symbol, it.batch_size)
        try:
            for batch in it:
                group.load_batch(batch)
                group.forward(is_train=False)
                yield group.outputs()[0][: it.batch_size - (batch.pad or 0)]
        finally:
            it.close()

    # -- the public methods --------------------------------------------------------------------
    def predict_topk(self, data: Any, k: int = 5, batch_size: int = 50) -> SFrame:
        """The ``k`` best labels of every image, best first.

        Parameters
        ----------
        data : fs.Image, SArray of images, or SFrame with one image column
        k : int
            Labels per image; capped at the number of labels (as GraphLab did).
        batch_size : int
            Images per forward pass (capped at the number of images).

        Returns
        -------
        SFrame
            Columns ``row_id`` (the image's row), ``label``, ``score`` (the network's output,
            a probability for a softmax head) and ``rank`` (1 = best): ``k`` rows per image.
            Equal scores keep the lower class index first.

        Examples
        --------
        >>> top = model.predict_topk(sf['image'], k=2)  # doctest: +SKIP
        >>> top.column_names()  # doctest: +SKIP
        ['row_id', 'label', 'score', 'rank']
        """
        if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
            raise ValueError(f"predict_topk: k must be a positive integer, not {k!r}")
        k = min(int(k), len(self._labels))
        labels = np.empty(len(self._labels), dtype=object)
        labels[:] = self._labels
        columns = [("row_id", "int"), ("label", label_type(self._labels)), ("score", "float"),
                   ("rank", "int")]
        with ResultWriter(columns, "topk") as out:
            start = 0
            for scores in self._outputs(data, None, batch_size, "predict_topk"):
                scores = scores.reshape(len(scores), -1)
                top = _top_indices(scores, k)
                n = len(scores)
                out.append([np.repeat(np.arange(start, start + n), k), labels[top.ravel()],
                            np.take_along_axis(scores, top, axis=1).ravel().astype(np.float64),
                            np.tile(np.arange(1, k + 1), n)])
                start += n
            return out.frame()

    def predict(self, data: Any, output_type: str = "label", batch_size: int = 50) -> SArray:
        """The best label of every image, or the network's output vector.

        GraphLab's ImageClassifier had only ``predict_topk``; this is its top-1 as one value
        per image (the common need), in input order.

        Parameters
        ----------
        output_type : 'label' or 'probability_vector'
            The top-1 label, or the whole output (the class probabilities of a softmax head).

        Returns
        -------
        SArray
            Labels (str or int, as in labels.json), or float vectors of length ``len(labels)``.

        Examples
        --------
        >>> model.predict(sf['image'])  # doctest: +SKIP
        """
        if output_type not in ("label", "probability_vector"):
            raise ValueError(f"predict: output_type must be 'label' or 'probability_vector', not "
                             f"{output_type!r}")
        if output_type == "probability_vector":
            return self._vectors(data, None, self._num_classes, batch_size, "predict")
        labels = np.empty(len(self._labels), dtype=object)
        labels[:] = self._labels
        with ResultWriter([("label", label_type(self._labels))], "predict") as out:
            for scores in self._outputs(data, None, batch_size, "predict"):
                scores = scores.reshape(len(scores), -1)
                out.append([labels[_top_indices(scores, 1)[:, 0]]])
            return out.frame()["label"]

    def extract_features(self, data: Any, layer: str | None = None, batch_size: int = 50) -> SArray:
        """Every image's features: the output of ``layer``, flattened, as a float vector.

        Parameters
        ----------
        layer : str, optional
            An internal output such as ``'flatten_output'``; default: the input of the last
            classifier layer (``mx.model.get_feature_symbol``'s default; for a network
            without a loss head, the input of its last FullyConnected layer).

        Returns
        -------
        SArray
            One float32-valued vector per image, in input order.

        Examples
        --------
        >>> feats = model.extract_features(sf['image'])  # doctest: +SKIP
        >>> len(feats[0])  # doctest: +SKIP
        500
        """
        layer = layer or _last_classifier_input(self._symbol)
        symbol = get_feature_symbol(self, layer)  # checks the name, and picks GraphLab's default
        layer = symbol.list_outputs()[0]
        width = self._output_width(symbol, f"layer {layer}")
        return self._vectors(data, layer, width, batch_size, "extract_features")

    extract_feature = extract_features  # the name in GraphLab's code

    def _vectors(self, data: Any, layer: str | None, width: int, batch_size: int,
                 who: str) -> SArray:
        with ResultWriter([("feature", ("vector", width))], who) as out:
            for values in self._outputs(data, layer, batch_size, who):
                out.append([values.reshape(len(values), -1).astype(np.float32, copy=False)])
            return out.frame()["feature"]


def _top_indices(scores: np.ndarray, k: int) -> np.ndarray:
    """(rows, k) class indices by descending score; ties keep the lower index first.

    A full stable sort: even 21,841 ImageNet classes take far less time than the forward.
    """
    return np.argsort(-scores, axis=1, kind="stable")[:, :k]


def _last_classifier_input(symbol: Any) -> str | None:
    """The input of the network's last FullyConnected layer, when it does not end with a loss.

    With a loss head (SoftmaxOutput & co.) GraphLab's rule (``get_feature_symbol``'s default)
    already picks it; a Gluon or ONNX graph ends with the FullyConnected layer itself.
    """
    order = symbol._order()
    heads = [node for node, _ in symbol._outputs]
    if any(h.op is not None and h.op.op_name.endswith("Output") for h in heads):
        return None
    for node in reversed(order):
        if node.op is not None and node.op.op_name == "FullyConnected":
            source, index = node.inputs[0]
            if source.op is None:
                return None
            return source.output_names()[index]
    return None
