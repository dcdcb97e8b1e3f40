"""Proposal: the region-proposal step of Faster R-CNN, as MXNet 1.x's ``_contrib_Proposal``.

For each image the RPN's foreground scores and box deltas, one set per anchor per
feature-map cell, become a fixed number of regions of interest:

1. anchors (``generate_anchors`` with base size ``feature_stride``) shifted over the map;
2. deltas applied (``bbox_transform_inv``, or corner offsets with ``iou_loss``) and the
   boxes clipped to the image ``im_info = [height, width, scale]``;
3. cells beyond the image (``h >= int(height / stride)``, padding in a batch) and boxes
   narrower or shorter than ``rpn_min_size * scale`` get score -1; the small boxes are
   also widened by that size / 2 on every side. MXNet keeps them (last in the sort)
   rather than dropping them, and so do we;
4. a sort by score, the best ``rpn_pre_nms_top_n``, greedy NMS at ``threshold`` until
   ``rpn_post_nms_top_n`` survive;
5. rows [batch_index, x1, y1, x2, y2]; when fewer than ``rpn_post_nms_top_n`` survive the
   kept ones repeat cyclically to fill the rows (MXNet's ``keep[i % out_size]``).

Steps 1-2 run on the executor's array module; steps 3-5 (a sort and a sequential loop
over a few thousand boxes) run on the host, and the rois go back with ``xp.asarray``.
MXNet's Proposal takes one image (N = 1); here each image of a batch is proposed for in
turn and the rows stack to (N * post, 5) with batch index n, as ``MultiProposal`` does.
Proposal has no gradient: backward gives zeros, as MXNet's.
"""

from __future__ import annotations

import numpy as np

from framestream.errors import NNError
from framestream.nn.context import to_numpy
from framestream.nn.ops._base import (
    Operator,
    P,
    parse_bool,
    parse_float,
    parse_float_tuple,
    parse_int,
    register,
)
from framestream.nn.ops._boxes import (
    bbox_transform_inv,
    clip_boxes,
    generate_anchors,
    iou_transform_inv,
    nms,
    shift_anchors,
)


@register
class Proposal(Operator):
    """Region proposals from RPN scores (N, 2A, H, W), deltas (N, 4A, H, W) and im_info (N, 3).

    Channels 0..A-1 of ``cls_prob`` are background, A..2A-1 foreground; A must equal
    len(scales) * len(ratios). Outputs ``output`` (N * post, 5) and, with
    ``output_score``, ``score`` (N * post, 1).
    """

    op_name = "Proposal"
    aliases = ("_contrib_Proposal",)
    params = (
        P("rpn_pre_nms_top_n", parse_int, 6000),
        P("rpn_post_nms_top_n", parse_int, 300),
        P("threshold", parse_float, 0.7),
        P("rpn_min_size", parse_int, 16),
        P("scales", parse_float_tuple, (4.0, 8.0, 16.0, 32.0)),
        P("ratios", parse_float_tuple, (0.5, 1.0, 2.0)),
        P("feature_stride", parse_int, 16),
        P("output_score", parse_bool, False),
        P("iou_loss", parse_bool, False),
    )

    def check_params(self) -> None:
        p = self.p
        if p.rpn_post_nms_top_n < 1:
            raise self.param_error(
                f"rpn_post_nms_top_n must be at least 1, got {p.rpn_post_nms_top_n}")
        if p.feature_stride < 1:
            raise self.param_error(f"feature_stride must be at least 1, got {p.feature_stride}")
        for name in ("scales", "ratios"):
            values = getattr(p, name)
            if not values or min(values) <= 0:
                raise self.param_error(
                    f"{name}={values} must be a non-empty tuple of positive numbers")
        if not 0 <= p.threshold <= 1:
            raise self.param_error(f"threshold={p.threshold} is an IoU and must be in [0, 1]")

    @property
    def num_anchors(self) -> int:
        return len(self.p.scales) * len(self.p.ratios)

    def arguments(self) -> list[str]:
        return ["cls_prob", "bbox_pred", "im_info"]

    def outputs(self) -> list[str]:
        return ["output", "score"] if self.p.output_score else ["output"]

    # -- shapes -------------------------------------------------------------------------------

    def infer_shape(self, in_shapes):
        shapes = list(in_shapes)
        cls_prob, bbox_pred, _ = shapes
        a = self.num_anchors
        for index, (name, per_anchor) in enumerate((("cls_prob", 2), ("bbox_pred", 4))):
            shape = shapes[index]
            if shape is not None and (len(shape) != 4 or shape[1] != per_anchor * a):
                raise self.shape_error(
                    shapes, f"{name} should be (N, {per_anchor * a}, H, W): {per_anchor} x "
                    f"{a} anchors ({len(self.p.scales)} scales x {len(self.p.ratios)} ratios)")
        known = cls_prob or bbox_pred
        if known is None:
            return shapes, [None] * len(self.outputs())
        n, h, w = known[0], known[2], known[3]
        self.assign(shapes, 0, (n, 2 * a, h, w))
        self.assign(shapes, 1, (n, 4 * a, h, w))
        self.assign(shapes, 2, (n, 3))
        rows = n * self.p.rpn_post_nms_top_n
        return shapes, [(rows, 5), (rows, 1)][: len(self.outputs())]

    # -- computation ----------------------------------------------------------------------------

    def forward(self, xp, inputs, is_train, rt):
        cls_prob, bbox_pred, im_info = inputs
        n, _, h, w = cls_prob.shape
        a, p = self.num_anchors, self.p
        anchors = generate_anchors(p.feature_stride, p.ratios, p.scales)
        anchors = xp.asarray(shift_anchors(anchors, h, w, p.feature_stride), dtype=cls_prob.dtype)
        info = to_numpy(im_info).astype(np.float64)
        rois, scores = [], []
        for b in range(n):
            fg = cls_prob[b, a:].transpose(1, 2, 0).reshape(-1)  # rows (h, w, a), as the anchors
            deltas = bbox_pred[b].reshape(a, 4, h, w).transpose(2, 3, 0, 1).reshape(-1, 4)
            decode = iou_transform_inv if p.iou_loss else bbox_transform_inv
            boxes = clip_boxes(decode(anchors, deltas), float(info[b, 0]), float(info[b, 1]))
            kept, kept_scores = self._select(to_numpy(boxes), to_numpy(fg).copy(), info[b], (h, w))
            rois.append(np.concatenate([np.full((len(kept), 1), b, kept.dtype), kept], axis=1))
            scores.append(kept_scores[:, None])
        outs = [xp.asarray(np.concatenate(rois), dtype=cls_prob.dtype)]
        if p.output_score:
            outs.append(xp.asarray(np.concatenate(scores), dtype=cls_prob.dtype))
        return outs, None

    def _select(self, boxes: np.ndarray, scores: np.ndarray, info: np.ndarray,
                map_hw: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
        """Steps 3-5 for one image on the host: (post, 4) boxes and (post,) scores."""
        p, (h, w) = self.p, map_hw
        real_h, real_w = int(info[0] / p.feature_stride), int(info[1] / p.feature_stride)
        if real_h > h or real_w > w:
            raise NNError(
                f"Proposal '{self.node}': im_info height, width {info[:2].tolist()} at "
                f"feature_stride {p.feature_stride} need a {real_h} x {real_w} feature map, "
                f"but cls_prob's map is {h} x {w}")
        cell_h = np.arange(h * w * self.num_anchors) // (w * self.num_anchors)
        cell_w = np.arange(h * w * self.num_anchors) // self.num_anchors % w
        scores[(cell_h >= real_h) | (cell_w >= real_w)] = -1
        min_size = np.float32(p.rpn_min_size) * np.float32(info[2])
        small = ((boxes[:, 2] - boxes[:, 0] + 1 < min_size)
                 | (boxes[:, 3] - boxes[:, 1] + 1 < min_size))
        grow = (min_size / 2).astype(boxes.dtype)
        boxes[small] += np.array([-grow, -grow, grow, grow], dtype=boxes.dtype)
        scores[small] = -1

        count = len(scores)
        if count == 0:
            raise NNError(f"Proposal '{self.node}': the feature map is empty ({h} x {w})")
        pre = min(p.rpn_pre_nms_top_n if p.rpn_pre_nms_top_n > 0 else count, count)
        order = np.argsort(-scores, kind="stable")[:pre]
        boxes, scores = boxes[order], scores[order]
        keep = nms(boxes, scores, p.threshold, limit=min(p.rpn_post_nms_top_n, pre))
        fill = keep[np.arange(p.rpn_post_nms_top_n) % len(keep)]
        return boxes[fill], scores[fill]

    def backward(self, xp, out_grads, inputs, outputs, state, rt):
        return [xp.zeros_like(x) for x in inputs]
