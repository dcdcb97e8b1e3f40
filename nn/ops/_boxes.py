"""Box arithmetic shared by the ``Proposal`` operator and the Faster R-CNN ``ImageDetector``.

Boxes are rows [x1, y1, x2, y2] in pixels with MXNet's inclusive corners: a box from
x1 = 0 to x2 = 15 is 16 pixels wide (``x2 - x1 + 1``), and areas and overlaps count the
same way. One module, so the RPN stage and the detector's last stage decode, clip and
suppress boxes identically.

``bbox_transform_inv`` and ``clip_boxes`` are elementwise and run on whichever array
module owns their input (numpy or cupy). ``nms`` is a greedy, sequential loop over the
kept boxes; it works on host NumPy arrays (a device array is fetched first), because a
few thousand boxes do not pay for a kernel launch per kept box.

This lives beside the operators (like ``_im2col``) rather than under ``nn/pretrained``
so the operator table never imports the pretrained-model package.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from framestream.nn.context import array_module, to_numpy

_F32 = np.float32


def generate_anchors(base_size: int, ratios: Sequence[float],
                     scales: Sequence[float]) -> np.ndarray:
    """Reference anchors (len(ratios) * len(scales), 4) around the base box [0, 0, s-1, s-1].

    Ratio-major, scale-minor, in float32 as MXNet 1.x's ``GenerateAnchors``: for each
    ratio the area is kept (width = round(sqrt(floor(area / ratio))), height =
    round(width * ratio), halves rounded up) and then both sides are multiplied by the
    scale, all about the base box's centre.

    >>> generate_anchors(16, (0.5, 1, 2), (8,))
    array([[-84., -40.,  99.,  55.],
           [-56., -56.,  71.,  71.],
           [-36., -80.,  51.,  95.]], dtype=float32)
    """
    side = _F32(base_size)
    centre = _F32(0.5) * (side - _F32(1))
    rows = []
    for ratio in ratios:
        for scale in scales:
            ratio32, scale32 = _F32(ratio), _F32(scale)
            area_per_ratio = np.floor(side * side / ratio32)
            width = np.floor(np.sqrt(area_per_ratio) + _F32(0.5)) * scale32
            height = np.floor(width / scale32 * ratio32 + _F32(0.5)) * scale32
            half_w, half_h = _F32(0.5) * (width - _F32(1)), _F32(0.5) * (height - _F32(1))
            rows.append([centre - half_w, centre - half_h, centre + half_w, centre + half_h])
    return np.asarray(rows, dtype=np.float32).reshape(-1, 4)


def shift_anchors(anchors: np.ndarray, height: int, width: int, stride: int) -> np.ndarray:
    """Every anchor at every feature-map cell: (height * width * A, 4), rows ordered (h, w, a).

    That is MXNet's ``index = h * (W * A) + w * A + a``, so row r lines up with the
    RPN outputs transposed from (A, H, W) to (H, W, A).
    """
    shift_y, shift_x = np.meshgrid(np.arange(height) * stride, np.arange(width) * stride,
                                   indexing="ij")
    shifts = np.stack([shift_x, shift_y, shift_x, shift_y], axis=-1).astype(anchors.dtype)
    return (shifts[:, :, None, :] + anchors[None, None, :, :]).reshape(-1, 4)


def bbox_transform_inv(boxes: Any, deltas: Any) -> Any:
    """Apply regression deltas (dx, dy, dw, dh) to boxes: (n, 4) and (n, 4k) give (n, 4k).

    MXNet 1.x's convention: width = x2 - x1 + 1, centre = x1 + (width - 1) / 2, and the
    decoded box spans centre +- (new_width - 1) / 2, so zero deltas give the box back.
    (py-faster-rcnn, and GraphLab's detector after it, put the centre at x1 + width / 2
    and x2 at centre + new_width / 2: one pixel wider for zero deltas.) Computed in the
    deltas' dtype, on the deltas' array module.

    >>> bbox_transform_inv(np.array([[0., 0., 15., 7.]]), np.array([[0.5, 0., 0., 0.]]))
    array([[ 8.,  0., 23.,  7.]])
    """
    xp = array_module(deltas)
    boxes = xp.asarray(boxes).astype(deltas.dtype, copy=False)
    widths = boxes[:, 2:3] - boxes[:, 0:1] + 1.0
    heights = boxes[:, 3:4] - boxes[:, 1:2] + 1.0
    centre_x = boxes[:, 0:1] + 0.5 * (widths - 1.0)
    centre_y = boxes[:, 1:2] + 0.5 * (heights - 1.0)
    new_cx = deltas[:, 0::4] * widths + centre_x
    new_cy = deltas[:, 1::4] * heights + centre_y
    half_w = 0.5 * (xp.exp(deltas[:, 2::4]) * widths - 1.0)
    half_h = 0.5 * (xp.exp(deltas[:, 3::4]) * heights - 1.0)
    out = xp.empty_like(deltas)
    out[:, 0::4], out[:, 1::4] = new_cx - half_w, new_cy - half_h
    out[:, 2::4], out[:, 3::4] = new_cx + half_w, new_cy + half_h
    return out


def iou_transform_inv(boxes: Any, deltas: Any) -> Any:
    """MXNet's ``iou_loss`` decoding: the deltas are added to the corners, (n, 4) + (n, 4)."""
    return boxes.astype(deltas.dtype, copy=False) + deltas


def clip_boxes(boxes: Any, height: float, width: float) -> Any:
    """Clamp every x into [0, width - 1] and every y into [0, height - 1]; returns a new array.

    Both sides of each coordinate are clamped, as MXNet 1.x's Proposal and py-faster-rcnn
    do (GraphLab's detector only raised x1, y1 and lowered x2, y2).
    """
    xp = array_module(boxes)
    out = boxes.copy()
    for start, limit in ((0, width), (1, height), (2, width), (3, height)):
        out[:, start::4] = xp.maximum(xp.minimum(out[:, start::4], limit - 1.0), 0.0)
    return out


def box_areas(boxes: np.ndarray) -> np.ndarray:
    """(x2 - x1 + 1) * (y2 - y1 + 1) per row."""
    return (boxes[:, 2] - boxes[:, 0] + 1) * (boxes[:, 3] - boxes[:, 1] + 1)


def nms(boxes: Any, scores: Any, threshold: float, limit: int | None = None) -> np.ndarray:
    """Greedy non-maximum suppression: indices of the kept boxes, best score first.

    Boxes are visited by descending score (a stable sort: equal scores keep their row
    order); each kept box removes every later box whose IoU with it exceeds
    ``threshold`` (MXNet and GraphLab both suppress on ``>``, keep on ``<=``). IoU counts
    pixels inclusively (+1), as MXNet. ``limit`` stops after that many boxes are kept
    (MXNet's ``rpn_post_nms_top_n``). The loop is over kept boxes; each step compares one
    box with all remaining ones at once. Runs on the host.

    >>> nms(np.array([[0, 0, 9, 9], [1, 0, 10, 9], [20, 20, 29, 29]], dtype=np.float32),
    ...     np.array([0.9, 0.8, 0.7], dtype=np.float32), 0.5)
    array([0, 2])
    """
    boxes, scores = to_numpy(boxes), to_numpy(scores)
    order = np.argsort(-scores, kind="stable")
    x1, y1, x2, y2 = (boxes[:, i] for i in range(4))
    areas = box_areas(boxes)
    keep: list[int] = []
    with np.errstate(divide="ignore", invalid="ignore"):
        while order.size and (limit is None or len(keep) < limit):
            best, rest = order[0], order[1:]
            keep.append(int(best))
            inter_w = np.minimum(x2[best], x2[rest]) - np.maximum(x1[best], x1[rest]) + 1
            inter_h = np.minimum(y2[best], y2[rest]) - np.maximum(y1[best], y1[rest]) + 1
            inter = np.maximum(inter_w, 0) * np.maximum(inter_h, 0)
            overlap = inter / (areas[best] + areas[rest] - inter)
            order = rest[~(overlap > threshold)]  # NaN never suppresses, as in C
    return np.asarray(keep, dtype=np.int64)
