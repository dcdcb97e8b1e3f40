"""``ImageDetector``: GraphLab's Faster R-CNN wrapper, image by image, and ``visualize_detection``.

One image at a time, as GraphLab did (the network's input size follows the image)::

    image -> RGB, short side to target_size (long side at most max_size), Lanczos
          -> (pixels - mean_rgb) * scale, (1, 3, H, W) float32; im_info = [[H, W, im_scale]]
          -> forward; read cls_prob_output (R, C), bbox_pred_output (R, 4C), rois_output (R, 5)
          -> boxes = decode(rois / im_scale, deltas), clipped to the image
          -> for each class c >= 1 (0 is the background): scores > threshold, then NMS
          -> rows (id, box, class, score), ordered by id then score, best first

``labels`` is the class list with the background first: GraphLab's detector looped over
classes 1 .. len(labels) - 1 and named them ``labels[j]`` (its coco_vgg_16 had 81 labels,
'__background__' plus the 80 COCO classes, as in py-faster-rcnn's ``classes`` tuples).

Differences from GraphLab, on purpose: boxes decode with MXNet 1.x's centre convention
(GraphLab's Python decode put x2, y2 one pixel further out) and are clamped on both
sides; equal scores keep a fixed order (stable sorts); grayscale and RGBA images are
converted to RGB; ``extract_features`` takes each detection's own ROI feature (GraphLab
indexed the ROI features with per-class positions).
"""

from __future__ import annotations

from array import array as array_type
from collections.abc import Iterator
from typing import Any

import numpy as np
from PIL import Image as PILImage
from PIL import ImageDraw, ImageFont

from framestream.errors import LayerNotFoundError, MissingArgumentError, NNError
from framestream.frames import Image, SArray, SFrame
from framestream.nn import symbol as sym
from framestream.nn.context import Context, cpu
from framestream.nn.ndarray import NDArray, array
from framestream.nn.ops._boxes import bbox_transform_inv, clip_boxes, nms
from framestream.nn.pretrained._described import DescribedModel
from framestream.nn.pretrained.classifier import image_frame

__all__ = ["ImageDetector", "visualize_detection"]

TARGET_SIZE = 600
MAX_SIZE = 1000
_HEADS = ("cls_prob_output", "bbox_pred_output", "rois_output")
_NOTHING = "nothing"


# ---------------------------------------------------------------- pre- and post-processing


def preprocess(image: Image, target_size: float = TARGET_SIZE, max_size: float = MAX_SIZE,
               mean_rgb: Any = (0.0, 0.0, 0.0), scale: float | None = None
               ) -> tuple[np.ndarray, np.ndarray]:
    """One image as the network's input: ``(tensor (1, 3, H, W) float32, im_info (1, 3) float32)``.

    GraphLab's rule: scale the short side to ``target_size`` unless the long side would
    then exceed ``max_size`` (after rounding), in which case the long side goes to
    ``max_size``; the new sides are truncated to integers. ``im_info`` is [H, W, im_scale],
    and the boxes found are divided by that ``im_scale`` to return to the original image.

    >>> import numpy as np, framestream as fs
    >>> tensor, info = preprocess(fs.Image(np.zeros((427, 640, 3), np.uint8)))
    >>> tensor.shape, [round(float(v), 4) for v in info[0]]
    ((1, 3, 600, 899), [600.0, 899.0, 1.4052])
    """
    pil = image.to_pil()
    pil = pil if pil.mode == "RGB" else pil.convert("RGB")
    width, height = pil.size
    im_scale = float(target_size) / min(width, height)
    if round(im_scale * max(width, height)) > max_size:
        im_scale = float(max_size) / max(width, height)
    pil = pil.resize((int(width * im_scale), int(height * im_scale)), PILImage.LANCZOS)
    pixels = np.asarray(pil, dtype=np.float64) - np.asarray(mean_rgb, dtype=np.float64)
    if scale is not None:
        pixels = pixels * float(scale)
    tensor = pixels.transpose(2, 0, 1)[None].astype(np.float32)
    im_info = np.array([[tensor.shape[2], tensor.shape[3], im_scale]], dtype=np.float32)
    return tensor, im_info


def postprocess(cls_prob: np.ndarray, bbox_pred: np.ndarray, rois: np.ndarray,
                im_info: np.ndarray, class_score_threshold: float, nms_threshold: float
                ) -> list[tuple[int, int, np.ndarray, float]]:
    """Detections of one image: ``(class index, roi row, box, score)``, best score first.

    Boxes are decoded from the ROIs mapped back to the original image (rois / im_scale) and
    clipped to it (im_info's size / im_scale, as GraphLab). For each class but the
    background, ROIs scoring above ``class_score_threshold`` go through NMS at
    ``nms_threshold``. The final order is by score; equal scores keep the lower class,
    then NMS's order.
    """
    rows, classes = cls_prob.shape
    if bbox_pred.shape != (rows, 4 * classes) or rois.shape != (rows, 5):
        raise NNError(f"ImageDetector: expected cls_prob (R, C), bbox_pred (R, 4C) and rois "
                      f"(R, 5); the network gave {cls_prob.shape}, {bbox_pred.shape}, "
                      f"{rois.shape}")
    im_scale = im_info[0, 2]
    boxes = bbox_transform_inv(rois[:, 1:5] / im_scale, bbox_pred)
    boxes = clip_boxes(boxes, float(im_info[0, 0] / im_scale), float(im_info[0, 1] / im_scale))
    found = []
    for c in range(1, classes):
        candidates = np.flatnonzero(cls_prob[:, c] > class_score_threshold)
        class_boxes = boxes[candidates, 4 * c: 4 * c + 4]
        for k in nms(class_boxes, cls_prob[candidates, c], nms_threshold):
            roi = int(candidates[k])
            found.append((c, roi, class_boxes[k], float(cls_prob[roi, c])))
    order = sorted(range(len(found)), key=lambda i: -found[i][3])
    return [found[i] for i in order]


# ---------------------------------------------------------------- drawing


def visualize_detection(image: Image, detections: SFrame) -> Image:
    """Draw one image's detections: 3-pixel red boxes and a red "class:score" label on each.

    The label sits 16 pixels above the box's top-left corner (GraphLab's place), or just
    inside the box when there is no room above; it uses Pillow's default font (GraphLab
    bundled a TrueType font). 'nothing' rows draw nothing. Grayscale images come back RGB.

    Parameters
    ----------
    image : fs.Image
    detections : SFrame
        ``detect``'s rows for this image only (one ``id``).

    Returns
    -------
    fs.Image
        A new image (raw pixels); ``image`` is unchanged.

    Examples
    --------
    >>> dets = detector.detect(photo)  # doctest: +SKIP
    >>> visualize_detection(photo, dets).save('boxes.png')  # doctest: +SKIP
    """
    if not isinstance(image, Image):
        raise TypeError(f"visualize_detection: image must be an fs.Image, not "
                        f"{type(image).__name__}")
    ids = sorted(set(detections["id"]))
    if len(ids) > 1:
        raise ValueError(f"visualize_detection draws one image's detections, but these hold ids "
                         f"{ids}; select one: dets[dets['id'] == {ids[0]}]")
    pil = image.to_pil()
    pil = pil if pil.mode in ("RGB", "RGBA") else pil.convert("RGB")
    draw = ImageDraw.Draw(pil)
    font = ImageFont.load_default()
    for row in detections:
        if row["class"] == _NOTHING:
            continue
        x1, y1, x2, y2 = (int(round(v)) for v in row["box"])
        for inset in range(3):
            if x2 - inset >= x1 + inset and y2 - inset >= y1 + inset:
                draw.rectangle([x1 + inset, y1 + inset, x2 - inset, y2 - inset], outline="red")
        label = f"{row['class']}:{row['score']:.3f}"
        draw.text((x1 + 2, y1 - 16 if y1 >= 16 else y1 + 3), label, font=font, fill="red")
    return Image(np.asarray(pil))


# ---------------------------------------------------------------- the detector


class ImageDetector(DescribedModel):
    """A pretrained Faster R-CNN detector (GraphLab's ``mx.pretrained_model.ImageDetector``).

    Usually made by ``load_model``. The network must give ``cls_prob_output`` (R, C),
    ``bbox_pred_output`` (R, 4C) and ``rois_output`` (R, 5) as outputs or internal
    layers, for inputs ``data`` (``metadata['data_name']``) and ``im_info``.

    Parameters
    ----------
    symbol, arg_params, aux_params
        The network and its parameters (``data`` and ``im_info`` entries are ignored).
    labels : list
        Class index -> name, the background at index 0.
    metadata : dict
        ``name``, ``version``, ``mean_rgb``, ``scale`` (None: 1) and optionally
        ``target_size`` (600), ``max_size`` (1000), ``data_name`` ('data').
    ctx : Context or list of Context, optional
        Where to run (the first one, as GraphLab); default the CPU.

    Examples
    --------
    >>> from framestream import mx
    >>> detector = mx.pretrained_model.load_model('coco_vgg_16')  # doctest: +SKIP
    >>> dets = detector.detect(photo)  # doctest: +SKIP
    >>> detector.visualize_detection(photo, dets).show()  # doctest: +SKIP
    """

    def __init__(self, symbol: Any, arg_params: dict[str, Any], aux_params: dict[str, Any],
                 labels: list[Any], metadata: dict[str, Any], ctx: Any = None):
        self._symbol = symbol
        self._labels = list(labels)
        self._metadata = dict(metadata)
        contexts = list(ctx) if isinstance(ctx, list | tuple) else [ctx]
        self._ctx: Context = (contexts[0] if contexts else None) or cpu()
        self._data_name = self._metadata.get("data_name") or "data"
        if len(self._labels) < 2:
            raise ValueError(f"ImageDetector: labels must hold the background and at least one "
                             f"class, got {self._labels!r}")
        inputs = {self._data_name, "im_info"}
        self._arg_params = {k: _on(v, self._ctx) for k, v in arg_params.items() if k not in inputs}
        self._aux_params = {k: _on(v, self._ctx) for k, v in (aux_params or {}).items()}
        internals = symbol.get_internals()
        missing = [h for h in _HEADS if h not in internals.list_outputs()]
        if missing:
            raise LayerNotFoundError(f"ImageDetector: the network has no {', '.join(missing)}; "
                                     f"a Faster R-CNN detector reads {', '.join(_HEADS)}")
        self._heads = [internals[h] for h in _HEADS]

    # -- what it is ---------------------------------------------------------------------------
    @property
    def ctx(self) -> list[Context]:
        return [self._ctx]

    def __repr__(self) -> str:
        return f"ImageDetector: {self.name} (version {self.version})"

    __str__ = __repr__

    # -- running --------------------------------------------------------------------------------
    def _forward(self, network: Any, image: Image) -> tuple[list[np.ndarray], np.ndarray]:
        """Bind ``network`` to this image's size (GraphLab rebound per image) and run it."""
        meta = self._metadata
        tensor, im_info = preprocess(image, meta.get("target_size") or TARGET_SIZE,
                                     meta.get("max_size") or MAX_SIZE,
                                     meta.get("mean_rgb") or (0.0, 0.0, 0.0), meta.get("scale"))
        args = dict(self._arg_params)
        args[self._data_name] = array(tensor, self._ctx)
        args["im_info"] = array(im_info, self._ctx)
        names = network.list_arguments()
        absent = [n for n in names if n not in args]
        if absent:
            shapes, _, _ = network.infer_shape_partial(**{k: v.shape for k, v in args.items()
                                                          if k in names})
            by_name = dict(zip(names, shapes))
            unfilled = [n for n in absent if not n.endswith("label") or not by_name[n]]
            if unfilled:
                raise MissingArgumentError(f"ImageDetector: no parameter values for "
                                           f"{', '.join(unfilled)}")
            for n in absent:  # label inputs of loss heads: unused at inference
                args[n] = array(np.zeros(by_name[n], np.float32), self._ctx)
        aux = {n: self._aux_params[n] for n in network.list_auxiliary_states()}
        executor = network.bind(self._ctx, {n: args[n] for n in names}, grad_req="null",
                                aux_states=aux)
        return [o.asnumpy() for o in executor.forward(is_train=False)], im_info

    def _detections(self, data: Any, network: Any, threshold: float, nms_threshold: float,
                    who: str) -> Iterator[tuple[int, list[tuple], np.ndarray | None]]:
        """Per image: its id, its detections, and the network's 4th output (features) if any."""
        frame, column = image_frame(data, who)
        for image_id, image in enumerate(frame[column]):
            outs, im_info = self._forward(network, image)
            cls_prob, bbox_pred, rois = outs[:3]
            cls_prob = cls_prob.reshape(len(cls_prob), -1)
            if cls_prob.shape[1] != len(self._labels):
                raise NNError(f"{who}: the network scores {cls_prob.shape[1]} classes but there "
                              f"are {len(self._labels)} labels")
            found = postprocess(cls_prob, bbox_pred.reshape(len(bbox_pred), -1), rois, im_info,
                                threshold, nms_threshold)
            yield image_id, found, (outs[3] if len(outs) > 3 else None)

    def detect(self, data: Any, class_score_threshold: float = 0.5,
               nms_threshold: float = 0.3) -> SFrame:
        """Find objects: one row per detection, and one 'nothing' row for an image without any.

        Parameters
        ----------
        data : fs.Image, SArray of images, or SFrame with one image column
            Images of any size; each is run on its own.
        class_score_threshold : float
            A detection needs a class probability above this.
        nms_threshold : float
            Within a class, a box overlapping a better one by IoU above this is dropped.

        Returns
        -------
        SFrame
            ``id`` (the image's row), ``box`` ([x1, y1, x2, y2] in the image's pixels),
            ``class`` (the label, as a string) and ``score``, ordered by id, then score (best
            first). An image with no detection gets one row: box [0, 0, 0, 0], class
            'nothing', score 0.

        Examples
        --------
        >>> dets = detector.detect(sf['image'], class_score_threshold=0.7)  # doctest: +SKIP
        >>> dets.column_names()  # doctest: +SKIP
        ['id', 'box', 'class', 'score']
        """
        return self._run(data, sym.Group(self._heads), class_score_threshold, nms_threshold,
                         "detect", with_features=False)

    def extract_features(self, data: Any, class_score_threshold: float = 0.5,
                         nms_threshold: float = 0.3, layer: str = "roi_pool5") -> SFrame:
        """``detect`` plus a ``feature`` column: each detection's ROI feature from ``layer``.

        The feature is ``<layer>_output`` (one map per ROI) averaged over its spatial cells
        and flattened (GraphLab: a 7 x 7 average pool over roi_pool5's 7 x 7 maps). A
        'nothing' row gets zeros (GraphLab: [0.0]; here vectors in a column share a length).

        Examples
        --------
        >>> dets = detector.extract_features(photo)  # doctest: +SKIP
        >>> len(dets['feature'][0])  # doctest: +SKIP
        512
        """
        internals = self._symbol.get_internals()
        name = f"{layer}_output"
        if name not in internals.list_outputs():
            raise LayerNotFoundError(f"extract_features: the network has no layer {layer!r} "
                                     f"(no output {name!r})")
        pooled = sym.Pooling(data=internals[name], global_pool=True, pool_type="avg",
                             kernel=(1, 1), name="roi_avg_pool")
        feature = sym.Flatten(data=pooled, name="feature")
        return self._run(data, sym.Group([*self._heads, feature]), class_score_threshold,
                         nms_threshold, "extract_features", with_features=True)

    extract_feature = extract_features  # GraphLab's alias

    def _run(self, data: Any, network: Any, threshold: float, nms_threshold: float, who: str,
             with_features: bool) -> SFrame:
        columns: dict[str, list[Any]] = {"id": [], "box": [], "class": [], "score": []}
        if with_features:
            columns["feature"] = []
        for image_id, found, features in self._detections(data, network, threshold,
                                                           nms_threshold, who):
            rows = found or [(None, None, np.zeros(4), 0.0)]
            for class_index, roi, box, score in rows:
                columns["id"].append(image_id)
                columns["box"].append(np.asarray(box, dtype=np.float64))
                columns["class"].append(_NOTHING if class_index is None
                                        else str(self._labels[class_index]))
                columns["score"].append(float(score))
                if with_features:
                    width = features.shape[1]
                    columns["feature"].append(np.zeros(width) if roi is None
                                              else features[roi].astype(np.float64))
        types = {"id": int, "box": array_type, "class": str, "score": float, "feature": array_type}
        return SFrame({name: SArray(values, dtype=types[name]) for name, values in columns.items()})

    visualize_detection = staticmethod(visualize_detection)  # GraphLab's was a method


def _on(value: Any, ctx: Context) -> NDArray:
    return value.as_in_context(ctx) if isinstance(value, NDArray) else array(value, ctx)
