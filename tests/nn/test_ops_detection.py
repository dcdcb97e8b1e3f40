"""Proposal (``_contrib_Proposal``): MXNet 1.x's loops transcribed as the reference, known
anchors, hand-computed proposals, shape inference, parameter errors and the symbol surface."""

from __future__ import annotations

import doctest
import math

import numpy as np
import pytest

from framestream import mx
from framestream.errors import NNError, OperatorParamError, ShapeInferenceError
from framestream.nn.ops import _boxes, lookup
from framestream.nn.ops._boxes import generate_anchors, nms

# ---------------------------------------------------------------- the reference


def anchors_ref(stride, ratios, scales):
    """MXNet's utils::GenerateAnchors / _Transform, one anchor at a time."""
    out = []
    w = h = stride
    x_ctr = y_ctr = 0.5 * (stride - 1)
    for ratio in ratios:
        for scale in scales:
            size_ratios = math.floor(w * h / ratio)
            new_w = math.floor(math.sqrt(size_ratios) + 0.5) * scale
            new_h = math.floor(new_w / scale * ratio + 0.5) * scale
            out.append([x_ctr - 0.5 * (new_w - 1), y_ctr - 0.5 * (new_h - 1),
                        x_ctr + 0.5 * (new_w - 1), y_ctr + 0.5 * (new_h - 1)])
    return out


def proposal_ref(cls_prob, bbox_pred, im_info, pre=6000, post=300, threshold=0.7, min_size=16,
                 scales=(4, 8, 16, 32), ratios=(0.5, 1, 2), stride=16, iou_loss=False):
    """MXNet 1.x ProposalOp::Forward for each image in turn (float64, stable sort)."""
    rois, out_scores = [], []
    for b in range(cls_prob.shape[0]):
        base = anchors_ref(stride, ratios, scales)
        num_a = len(base)
        _, _, height, width = cls_prob.shape
        im_h, im_w, im_scale = (float(v) for v in im_info[b])
        real_h, real_w = int(im_h / stride), int(im_w / stride)
        props = [None] * (num_a * height * width)
        for a in range(num_a):
            for h in range(height):
                for w in range(width):
                    x1, y1, x2, y2 = (base[a][0] + w * stride, base[a][1] + h * stride,
                                      base[a][2] + w * stride, base[a][3] + h * stride)
                    d = [bbox_pred[b, a * 4 + k, h, w] for k in range(4)]
                    if iou_loss:
                        px1, py1, px2, py2 = x1 + d[0], y1 + d[1], x2 + d[2], y2 + d[3]
                    else:
                        bw, bh = x2 - x1 + 1, y2 - y1 + 1
                        cx, cy = x1 + 0.5 * (bw - 1), y1 + 0.5 * (bh - 1)
                        pcx, pcy = d[0] * bw + cx, d[1] * bh + cy
                        pw, ph = math.exp(d[2]) * bw, math.exp(d[3]) * bh
                        px1, py1 = pcx - 0.5 * (pw - 1), pcy - 0.5 * (ph - 1)
                        px2, py2 = pcx + 0.5 * (pw - 1), pcy + 0.5 * (ph - 1)
                    px1, px2 = (max(min(v, im_w - 1), 0) for v in (px1, px2))
                    py1, py2 = (max(min(v, im_h - 1), 0) for v in (py1, py2))
                    score = cls_prob[b, num_a + a, h, w]
                    if h >= real_h or w >= real_w:
                        score = -1.0
                    props[h * width * num_a + w * num_a + a] = [px1, py1, px2, py2, score]
        smallest = min_size * im_scale
        for p in props:  # FilterBox
            if p[2] - p[0] + 1 < smallest or p[3] - p[1] + 1 < smallest:
                p[0] -= smallest / 2
                p[1] -= smallest / 2
                p[2] += smallest / 2
                p[3] += smallest / 2
                p[4] = -1.0
        count = len(props)
        top = min(pre if pre > 0 else count, count)
        post_top = min(post, top)
        dets = sorted(props, key=lambda p: -p[4])[:top]
        suppressed, keep = [False] * top, []
        for i in range(top):
            if len(keep) >= post_top:
                break
            if suppressed[i]:
                continue
            keep.append(i)
            ai = (dets[i][2] - dets[i][0] + 1) * (dets[i][3] - dets[i][1] + 1)
            for j in range(i + 1, top):
                if suppressed[j]:
                    continue
                aj = (dets[j][2] - dets[j][0] + 1) * (dets[j][3] - dets[j][1] + 1)
                iw = max(0.0, min(dets[i][2], dets[j][2]) - max(dets[i][0], dets[j][0]) + 1)
                ih = max(0.0, min(dets[i][3], dets[j][3]) - max(dets[i][1], dets[j][1]) + 1)
                if iw * ih / (ai + aj - iw * ih) > threshold:
                    suppressed[j] = True
        for i in range(post):
            det = dets[keep[i % len(keep)]]
            rois.append([b, *det[:4]])
            out_scores.append([det[4]])
    return np.array(rois), np.array(out_scores)


def rpn_inputs(seed, n, a, h, w, spread=0.3):
    rng = np.random.default_rng(seed)
    logits = rng.standard_normal((n, 2, a, h, w))
    prob = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return prob.reshape(n, 2 * a, h, w), rng.standard_normal((n, 4 * a, h, w)) * spread


def run(params, inputs, is_train=False):
    op = lookup("_contrib_Proposal")(node="rois", **params)
    outs, _ = op.forward(np, [np.array(x) for x in inputs], is_train, None)
    return op, outs


# ---------------------------------------------------------------- forward against the reference

CASES = [
    # (id, params, (n, h, w), im_info rows)
    ("padded-column", dict(scales=(2, 4), ratios=(0.5, 1, 2), feature_stride=4, rpn_min_size=4,
                           rpn_pre_nms_top_n=30, rpn_post_nms_top_n=12, threshold=0.5),
     (1, 4, 5), [[16, 18, 1.0]]),
    ("scaled-min-size", dict(scales=(1, 2, 3), ratios=(1,), feature_stride=8, rpn_min_size=6,
                             rpn_pre_nms_top_n=0, rpn_post_nms_top_n=20, threshold=0.6),
     (1, 3, 3), [[24, 24, 1.5]]),
    ("repeat-to-fill", dict(scales=(2,), ratios=(1,), feature_stride=4, rpn_min_size=1,
                            rpn_post_nms_top_n=25, threshold=0.0),
     (1, 3, 3), [[12, 12, 1.0]]),
    ("batch-of-two", dict(scales=(2, 3), ratios=(0.5, 2), feature_stride=4, rpn_min_size=2,
                          rpn_pre_nms_top_n=15, rpn_post_nms_top_n=7, output_score=True),
     (2, 3, 4), [[12, 16, 1.0], [9, 11, 0.5]]),
    ("iou-loss", dict(scales=(2,), ratios=(0.5, 1), feature_stride=4, rpn_min_size=3,
                      rpn_post_nms_top_n=8, iou_loss=True, output_score=True),
     (1, 3, 3), [[12, 12, 1.0]]),
]


@pytest.mark.parametrize("case_id,params,nhw,info", CASES, ids=[c[0] for c in CASES])
def test_proposal_forward_matches_mxnet_loops(case_id, params, nhw, info):
    n, h, w = nhw
    a = len(params["scales"]) * len(params["ratios"])
    spread = 2.0 if params.get("iou_loss") else 0.3
    cls_prob, bbox_pred = rpn_inputs(len(case_id), n, a, h, w, spread)
    im_info = np.array(info, dtype=np.float64)
    op, outs = run(params, [cls_prob, bbox_pred, im_info])
    ref_rois, ref_scores = proposal_ref(
        cls_prob, bbox_pred, im_info, pre=params.get("rpn_pre_nms_top_n", 6000),
        post=params["rpn_post_nms_top_n"], threshold=params.get("threshold", 0.7),
        min_size=params["rpn_min_size"], scales=params["scales"], ratios=params["ratios"],
        stride=params["feature_stride"], iou_loss=params.get("iou_loss", False))
    shapes = op.infer_shape([cls_prob.shape, None, None])[1]
    assert [o.shape for o in outs] == shapes
    assert all(o.dtype == np.float64 for o in outs)
    np.testing.assert_allclose(outs[0], ref_rois, rtol=1e-12, atol=1e-12)
    if params.get("output_score"):
        np.testing.assert_allclose(outs[1], ref_scores, rtol=1e-12, atol=1e-12)
    if case_id == "repeat-to-fill":  # threshold 0: only disjoint boxes survive, then repeat
        kept = len({tuple(r) for r in outs[0].tolist()})
        assert 1 < kept < 25
        np.testing.assert_array_equal(outs[0], outs[0][np.arange(25) % kept])


def test_proposal_float32_stays_float32_and_agrees_with_float64():
    cls_prob, bbox_pred = rpn_inputs(3, 1, 6, 4, 4)
    params = dict(scales=(2, 4), ratios=(0.5, 1, 2), feature_stride=4, rpn_min_size=4,
                  rpn_post_nms_top_n=10, threshold=0.6)
    info = np.array([[16, 16, 1.0]])
    _, (out64,) = run(params, [cls_prob, bbox_pred, info])
    _, (out32,) = run(params, [cls_prob.astype(np.float32), bbox_pred.astype(np.float32),
                               info.astype(np.float32)])
    assert out32.dtype == np.float32
    np.testing.assert_allclose(out32, out64, atol=1e-4)


# ---------------------------------------------------------------- hand-computed cases


def test_known_anchors():
    # py-faster-rcnn's table (its matlab comment is the same shifted by one, 1-based).
    np.testing.assert_array_equal(generate_anchors(16, (0.5, 1, 2), (8, 16, 32)), [
        [-84, -40, 99, 55], [-176, -88, 191, 103], [-360, -184, 375, 199],
        [-56, -56, 71, 71], [-120, -120, 135, 135], [-248, -248, 263, 263],
        [-36, -80, 51, 95], [-80, -168, 95, 183], [-168, -344, 183, 359]])
    defaults = generate_anchors(16, (0.5, 1, 2), (4, 8, 16, 32))
    assert defaults.shape == (12, 4) and defaults.dtype == np.float32
    np.testing.assert_array_equal(defaults[0], [-38, -16, 53, 31])
    np.testing.assert_array_equal(defaults, anchors_ref(16, (0.5, 1, 2), (4, 8, 16, 32)))


def test_zero_deltas_give_the_anchors_in_score_order():
    # One 16 x 16 anchor per cell of a 2 x 3 map: the proposals are the cells' squares.
    scores = np.array([[0.1, 0.7, 0.3], [0.9, 0.2, 0.5]])
    cls_prob = np.stack([1 - scores, scores])[None]
    params = dict(scales=(1,), ratios=(1,), rpn_post_nms_top_n=4, output_score=True)
    _, (rois, out_scores) = run(params, [cls_prob, np.zeros((1, 4, 2, 3)), [[32, 48, 1.0]]])
    np.testing.assert_array_equal(rois, [[0, 0, 16, 15, 31], [0, 16, 0, 31, 15],
                                         [0, 32, 16, 47, 31], [0, 32, 0, 47, 15]])
    np.testing.assert_array_equal(out_scores[:, 0], [0.9, 0.7, 0.5, 0.3])


def test_small_boxes_are_widened_and_ranked_last_not_dropped():
    # Cell 1's box shrinks to 8 wide (< rpn_min_size 16): MXNet sets its score to -1 and
    # grows it by 8 on every side, and it still fills the second row.
    cls_prob = np.array([[[[0.4, 0.1]], [[0.6, 0.9]]]])
    deltas = np.zeros((1, 4, 1, 2))
    deltas[0, 2, 0, 1] = math.log(0.5)
    params = dict(scales=(1,), ratios=(1,), rpn_post_nms_top_n=2, output_score=True)
    _, (rois, out_scores) = run(params, [cls_prob, deltas, [[16, 32, 1.0]]])
    np.testing.assert_array_equal(rois, [[0, 0, 0, 15, 15], [0, 12, -8, 35, 23]])
    np.testing.assert_array_equal(out_scores[:, 0], [0.6, -1])


def test_cells_beyond_the_image_are_ranked_last():
    # im_info says the image is 16 x 16: the second column of the 1 x 2 map is padding.
    cls_prob = np.array([[[[0.8, 0.05]], [[0.2, 0.95]]]])
    params = dict(scales=(1,), ratios=(1,), rpn_post_nms_top_n=2, output_score=True)
    _, (rois, out_scores) = run(params, [cls_prob, np.zeros((1, 4, 1, 2)), [[16, 16, 1.0]]])
    np.testing.assert_array_equal(out_scores[:, 0], [0.2, -1])
    # Clipped to the image it is [15, 0, 15, 15], one pixel wide, so it is also widened by 8.
    np.testing.assert_array_equal(rois[1], [0, 7, -8, 23, 23])


def test_nms_suppresses_on_greater_than_with_inclusive_pixels():
    boxes = np.array([[0, 0, 9, 9], [0, 0, 9, 4], [5, 0, 14, 9], [30, 30, 39, 39]], np.float64)
    scores = np.array([0.9, 0.8, 0.8, 0.1])
    # IoU(0, 1) = 50/100 = 0.5 exactly; IoU(0, 2) = 50/150; boxes 1 and 2 tie on score.
    np.testing.assert_array_equal(nms(boxes, scores, 0.5), [0, 1, 2, 3])
    np.testing.assert_array_equal(nms(boxes, scores, 0.49), [0, 2, 3])
    np.testing.assert_array_equal(nms(boxes, scores, 0.3), [0, 3])
    np.testing.assert_array_equal(nms(boxes, scores, 0.5, limit=2), [0, 1])
    assert nms(np.zeros((0, 4)), np.zeros(0), 0.5).tolist() == []


def test_backward_is_zero():
    cls_prob, bbox_pred = rpn_inputs(0, 1, 2, 2, 2)
    op = lookup("Proposal")(node="p", scales=(1, 2), ratios=(1,), rpn_post_nms_top_n=3)
    inputs = [cls_prob, bbox_pred, np.array([[32.0, 32.0, 1.0]])]
    outs, state = op.forward(np, inputs, True, None)
    grads = op.backward(np, [np.ones_like(outs[0])], inputs, outs, state, None)
    assert [g.shape for g in grads] == [x.shape for x in inputs]
    assert not any(g.any() for g in grads)


# ---------------------------------------------------------------- shapes, params, symbols


def test_shape_inference():
    op = lookup("Proposal")(node="rois")
    assert op.infer_shape([(1, 24, 38, 50), None, None]) == (
        [(1, 24, 38, 50), (1, 48, 38, 50), (1, 3)], [(300, 5)])
    assert op.infer_shape([None, (1, 48, 38, 50), None])[0][0] == (1, 24, 38, 50)
    assert op.infer_shape([None, None, (1, 3)]) == ([None, None, (1, 3)], [None])
    scored = lookup("_contrib_Proposal")(node="rois", output_score=True, rpn_post_nms_top_n=50)
    assert scored.outputs() == ["output", "score"]
    assert scored.infer_shape([(2, 24, 4, 4), None, None])[1] == [(100, 5), (100, 1)]
    with pytest.raises(ShapeInferenceError, match=r"Proposal 'rois'.*cls_prob should be "
                       r"\(N, 24, H, W\): 2 x 12 anchors \(4 scales x 3 ratios\)"):
        op.infer_shape([(1, 18, 38, 50), None, None])
    with pytest.raises(ShapeInferenceError, match=r"bbox_pred should be \(N, 48, H, W\)"):
        op.infer_shape([None, (1, 48, 38), None])
    with pytest.raises(ShapeInferenceError,
                       match=r"im_info should have shape \(1, 3\), got \(1, 4\)"):
        op.infer_shape([(1, 24, 38, 50), None, (1, 4)])
    with pytest.raises(ShapeInferenceError, match=r"bbox_pred should have shape \(1, 48, 38, 50\)"):
        op.infer_shape([(1, 24, 38, 50), (1, 48, 38, 51), None])


def test_param_errors():
    proposal = lookup("Proposal")
    with pytest.raises(OperatorParamError, match="rpn_post_nms_top_n must be at least 1, got 0"):
        proposal(node="p", rpn_post_nms_top_n=0)
    with pytest.raises(OperatorParamError, match=r"scales=\(\) must be a non-empty tuple"):
        proposal(node="p", scales=())
    with pytest.raises(OperatorParamError, match=r"ratios=\(1.0, -2.0\)"):
        proposal(node="p", ratios="(1, -2)")
    with pytest.raises(OperatorParamError, match=r"threshold=1.5 is an IoU"):
        proposal(node="p", threshold=1.5)
    with pytest.raises(OperatorParamError, match="unknown parameter 'base_anchor'"):
        proposal(node="p", base_anchor=(0, 0, 15, 15))
    parsed = proposal(node="p", scales="(8, 16, 32)", ratios="(0.5,1,2)", output_score="True",
                      feature_stride="16", threshold="0.7")
    assert parsed.p.scales == (8.0, 16.0, 32.0) and parsed.p.output_score is True
    op = proposal(node="p", scales=(1,), ratios=(1,))
    with pytest.raises(NNError, match=r"Proposal 'p': im_info height, width \[64.0, 16.0\] at "
                       r"feature_stride 16 need a 4 x 1 feature map, but cls_prob's map is 2 x 2"):
        op.forward(np, [np.full((1, 2, 2, 2), 0.5), np.zeros((1, 4, 2, 2)),
                        np.array([[64.0, 16.0, 1.0]])], False, None)


def test_symbol_surface_and_json_round_trip():
    cls_prob, bbox_pred, im_info = (mx.sym.Variable(n) for n in ("cls", "bbox", "im_info"))
    rois = mx.sym.Proposal(cls_prob=cls_prob, bbox_pred=bbox_pred, im_info=im_info, name="rois",
                           scales=(8, 16, 32), rpn_post_nms_top_n=10)
    assert rois.list_arguments() == ["cls", "bbox", "im_info"]
    assert rois.list_outputs() == ["rois_output"]
    _, out_shapes, _ = rois.infer_shape(cls=(1, 18, 5, 6))
    assert out_shapes == [(10, 5)]
    scored = mx.sym._contrib_Proposal(cls_prob=cls_prob, bbox_pred=bbox_pred, im_info=im_info,
                                      name="p", output_score=True)
    assert scored.list_outputs() == ["p_output", "p_score"]
    again = mx.sym.load_json(rois.tojson())
    assert again.tojson() == rois.tojson()
    auto = mx.sym.Proposal(name="q")
    assert auto.list_arguments() == ["q_cls_prob", "q_bbox_pred", "q_im_info"]


def test_proposal_in_an_executor(ctx):
    cls_prob, bbox_pred = rpn_inputs(5, 1, 6, 4, 5)
    im_info = np.array([[16.0, 20.0, 1.0]])
    params = dict(scales=(2, 4), ratios=(0.5, 1, 2), feature_stride=4, rpn_min_size=4,
                  rpn_post_nms_top_n=9, threshold=0.6, output_score=True)
    net = mx.sym.Proposal(name="rois", **params)
    args = {"rois_cls_prob": cls_prob.astype(np.float32),
            "rois_bbox_pred": bbox_pred.astype(np.float32),
            "rois_im_info": im_info.astype(np.float32)}
    exe = net.bind(ctx, {k: mx.nd.array(v, ctx) for k, v in args.items()}, grad_req="null")
    rois, scores = (o.asnumpy() for o in exe.forward(is_train=False))
    ref_rois, ref_scores = proposal_ref(cls_prob, bbox_pred, im_info, post=9, threshold=0.6,
                                        min_size=4, scales=(2, 4), ratios=(0.5, 1, 2), stride=4)
    np.testing.assert_allclose(rois, ref_rois, atol=1e-4)
    np.testing.assert_allclose(scores, ref_scores, atol=1e-6)


def test_box_helper_docstring_examples():
    result = doctest.testmod(_boxes)
    assert result.attempted > 0 and result.failed == 0
