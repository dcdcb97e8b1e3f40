"""ImageDetector: a tiny Faster R-CNN whose weights are set by hand, so every proposal, class
score and box is known; detect's thresholds, NMS, ordering and 'nothing' rows; the
pre- and post-processing on their own; and the pixels visualize_detection draws."""

from __future__ import annotations

import array
import doctest

import numpy as np
import pytest
from PIL import ImageDraw, ImageFont

import framestream as fs
from framestream import mx
from framestream.errors import LayerNotFoundError, NNError, SchemaError
from framestream.nn.pretrained import detector as detector_module
from framestream.nn.pretrained.detector import (
    ImageDetector,
    postprocess,
    preprocess,
    visualize_detection,
)

LABELS = ["__background__", "red", "green"]
META = {"name": "tiny_rcnn", "version": "1.0", "model_type": "IMAGE_DETECTOR",
        "mean_rgb": [10, 10, 10], "scale": 0.5, "target_size": 64, "max_size": 1000}
TILE = 16
RED = {(1, 1): 200, (1, 2): 180}  # tile (row, column) -> red value
GREEN = {(2, 4): 220}


def tiles_image() -> fs.Image:
    """64 x 96 RGB in 16 x 16 tiles: black, but blue = 10 + 2 * (tile index) so that every
    tile differs; tiles (1, 1) and (1, 2) are red, tile (2, 4) green."""
    pixels = np.zeros((4 * TILE, 6 * TILE, 3), dtype=np.uint8)
    for row in range(4):
        for col in range(6):
            tile = pixels[row * TILE:(row + 1) * TILE, col * TILE:(col + 1) * TILE]
            tile[..., 0] = RED.get((row, col), 0)
            tile[..., 1] = GREEN.get((row, col), 0)
            tile[..., 2] = 10 + 2 * (row * 6 + col)
    return fs.Image(pixels)


def tiny_faster_rcnn() -> mx.sym.Symbol:
    """data -> conv1 (identity) -> RPN on 16 x 16 tiles -> Proposal -> ROIPooling -> FCs."""
    data, im_info = mx.sym.Variable("data"), mx.sym.Variable("im_info")
    conv1 = mx.sym.Convolution(data=data, kernel=(1, 1), num_filter=3, name="conv1")
    rpn_feat = mx.sym.Convolution(data=conv1, kernel=(TILE, TILE), stride=(TILE, TILE),
                                  num_filter=1, name="rpn_conv")
    rpn_cls_score = mx.sym.Convolution(data=rpn_feat, kernel=(1, 1), num_filter=2,
                                       name="rpn_cls_score")
    rpn_bbox_pred = mx.sym.Convolution(data=rpn_feat, kernel=(1, 1), num_filter=4,
                                       name="rpn_bbox_pred")
    score_2 = mx.sym.Reshape(data=rpn_cls_score, shape=(0, 2, -1, 0), name="rpn_cls_score_reshape")
    prob_2 = mx.sym.SoftmaxActivation(data=score_2, mode="channel", name="rpn_cls_prob")
    rpn_prob = mx.sym.Reshape(data=prob_2, shape=(0, 2, -1, 0), name="rpn_cls_prob_reshape")
    rois = mx.sym.Proposal(cls_prob=rpn_prob, bbox_pred=rpn_bbox_pred, im_info=im_info,
                           name="rois", feature_stride=TILE, scales=(1,), ratios=(1,),
                           rpn_pre_nms_top_n=10, rpn_post_nms_top_n=4, threshold=0.7)
    pool = mx.sym.ROIPooling(data=conv1, rois=rois, pooled_size=(1, 1), spatial_scale=1.0,
                             name="roi_pool5")
    flat = mx.sym.Flatten(data=pool, name="flatten")
    cls_score = mx.sym.FullyConnected(data=flat, num_hidden=3, name="cls_score")
    cls_prob = mx.sym.SoftmaxActivation(data=cls_score, name="cls_prob")
    bbox_pred = mx.sym.FullyConnected(data=flat, num_hidden=12, name="bbox_pred")
    return mx.sym.Group([cls_prob, bbox_pred, rois])


def hand_set_params() -> dict[str, np.ndarray]:
    """After normalisation a tile holds (R', G', B') = ((R, G, B) - 10) / 2.

    * conv1 is the identity; rpn_conv sums the tile means, R' + G' + B';
    * the RPN's foreground logit is that sum / 16 (background 0), its deltas 0: the
      proposals are tiles (2, 4) (sum 116), (1, 1) (97), (1, 2) (88), (3, 5) (13);
    * the class logits are background 1, red R' / 32, green G' / 32;
    * red's dx is 3.5 - B' / 2 (tile (1, 1): 0, tile (1, 2): -0.5 = 8 pixels left), green's
      dx is 1.5 (24 pixels right, past the image's edge).
    """
    f32 = np.float32
    cls_w = np.zeros((3, 3), f32)
    cls_w[1, 0] = cls_w[2, 1] = 1 / 32
    box_w, box_b = np.zeros((12, 3), f32), np.zeros(12, f32)
    box_w[4, 2], box_b[4], box_b[8] = -0.5, 3.5, 1.5
    return {
        "conv1_weight": np.eye(3, dtype=f32).reshape(3, 3, 1, 1), "conv1_bias": np.zeros(3, f32),
        "rpn_conv_weight": np.full((1, 3, TILE, TILE), 1 / 256, f32),
        "rpn_conv_bias": np.zeros(1, f32),
        "rpn_cls_score_weight": np.array([0, 1 / 16], f32).reshape(2, 1, 1, 1),
        "rpn_cls_score_bias": np.zeros(2, f32),
        "rpn_bbox_pred_weight": np.zeros((4, 1, 1, 1), f32), "rpn_bbox_pred_bias": np.zeros(4, f32),
        "cls_score_weight": cls_w, "cls_score_bias": np.array([1, 0, 0], f32),
        "bbox_pred_weight": box_w, "bbox_pred_bias": box_b,
    }


def softmax(logits):
    e = np.exp(np.asarray(logits, dtype=np.float64))
    return e / e.sum()


# Class probabilities of the proposals, from the logits in hand_set_params' docstring.
P_GREEN_24 = softmax([1, -5 / 32, 105 / 32])[2]
P_RED_11 = softmax([1, 95 / 32, -5 / 32])[1]
P_RED_12 = softmax([1, 85 / 32, -5 / 32])[1]


@pytest.fixture
def detector(ctx):
    return ImageDetector(tiny_faster_rcnn(), hand_set_params(), {}, LABELS, META, ctx=ctx)


def rows(sf):
    return [(r["id"], list(r["box"]), r["class"], r["score"]) for r in sf]


def assert_detections(sf, expected):
    assert sf.column_names() == ["id", "box", "class", "score"]
    got = rows(sf)
    assert [(i, b, c) for i, b, c, _ in got] == [(i, b, c) for i, b, c, _ in expected]
    np.testing.assert_allclose([s for *_, s in got], [s for *_, s in expected], rtol=1e-6)


# ---------------------------------------------------------------- detect, end to end


def test_hand_set_detector_gives_exactly_the_expected_detections(detector):
    dets = detector.detect(tiles_image())
    # Red's two boxes [16, 16, 31, 31] and [24, 16, 39, 31] overlap by IoU 128 / 384 = 1/3
    # > 0.3: NMS keeps the better one. Green's box [88, 32, 103, 47] is clipped at x = 95.
    # Tile (3, 5)'s best class is the background (0.61), which is never reported.
    assert_detections(dets, [(0, [88, 32, 95, 47], "green", P_GREEN_24),
                             (0, [16, 16, 31, 31], "red", P_RED_11)])


def test_nms_threshold_and_class_score_threshold(detector):
    image = tiles_image()
    assert_detections(detector.detect(image, nms_threshold=0.4), [
        (0, [88, 32, 95, 47], "green", P_GREEN_24), (0, [16, 16, 31, 31], "red", P_RED_11),
        (0, [24, 16, 39, 31], "red", P_RED_12)])
    assert_detections(detector.detect(image, class_score_threshold=0.85),
                      [(0, [88, 32, 95, 47], "green", P_GREEN_24)])
    assert_detections(detector.detect(image, class_score_threshold=0.95),
                      [(0, [0, 0, 0, 0], "nothing", 0.0)])


def test_sarray_and_sframe_inputs_number_the_images(detector):
    image = tiles_image()
    blank = fs.Image(np.zeros((64, 96, 3), dtype=np.uint8))
    expected = [(0, [88, 32, 95, 47], "green", P_GREEN_24),
                (0, [16, 16, 31, 31], "red", P_RED_11),
                (1, [0, 0, 0, 0], "nothing", 0.0),
                (2, [88, 32, 95, 47], "green", P_GREEN_24),
                (2, [16, 16, 31, 31], "red", P_RED_11)]
    assert_detections(detector.detect(fs.SArray([image, blank, image])), expected)
    frame = fs.SFrame({"name": ["a", "b", "c"], "image": [image, blank, image]})
    assert_detections(detector.detect(frame), expected)
    empty = detector.detect(fs.SArray([], dtype=fs.Image))
    assert len(empty) == 0 and empty.column_types() == [int, array.array, str, float]


def test_extract_features_adds_each_detections_roi_feature(detector):
    dets = detector.extract_features(fs.SArray([tiles_image(), fs.Image(np.zeros((64, 96, 3),
                                                                                 np.uint8))]))
    assert dets.column_names() == ["id", "box", "class", "score", "feature"]
    assert [r["class"] for r in dets] == ["green", "red", "nothing"]
    # roi_pool5 of a tile is its normalised colour ((R, G, B) - 10) / 2.
    assert [list(r["feature"]) for r in dets] == [[-5, 105, 16], [95, -5, 7], [0, 0, 0]]
    with pytest.raises(LayerNotFoundError, match="no layer 'pool9'"):
        detector.extract_features(tiles_image(), layer="pool9")


def test_detect_on_real_photos():
    photos = fs.datasets.sample_photos()
    meta = {**META, "target_size": 600}
    detector = ImageDetector(tiny_faster_rcnn(), hand_set_params(), {}, LABELS, meta)
    dets = detector.detect(photos, class_score_threshold=0.3)
    again = detector.detect(photos["image"], class_score_threshold=0.3)
    assert rows(dets) == rows(again)
    assert set(dets["id"]) == {0, 1}
    for image_id in (0, 1):
        mine = [r for r in dets if r["id"] == image_id]
        scores = [r["score"] for r in mine]
        assert scores == sorted(scores, reverse=True)
        for r in mine:
            x1, y1, x2, y2 = r["box"]
            assert r["class"] in ("red", "green", "nothing")
            assert r["class"] == "nothing" or r["score"] > 0.3
            assert 0 <= x1 <= x2 <= 639 and 0 <= y1 <= y2 <= 426


def test_saved_and_loaded_through_the_model_store(tmp_path):
    saved = ImageDetector(tiny_faster_rcnn(), hand_set_params(), {}, LABELS, META)
    folder = mx.pretrained_model.save_model(tmp_path / "tiny_rcnn", saved)
    loaded = mx.pretrained_model.load_path(folder)
    assert isinstance(loaded, ImageDetector) and loaded.labels == LABELS
    assert loaded.metadata["target_size"] == 64 and repr(loaded) == repr(saved)
    assert rows(loaded.detect(tiles_image())) == rows(saved.detect(tiles_image()))


def test_docstring_examples():
    result = doctest.testmod(detector_module)
    assert result.attempted > 0 and result.failed == 0


def test_errors():
    image = tiles_image()
    with pytest.raises(LayerNotFoundError, match="no cls_prob_output, bbox_pred_output"):
        ImageDetector(mx.sym.Variable("data") * 2, {}, {}, LABELS, META)
    wrong = ImageDetector(tiny_faster_rcnn(), hand_set_params(), {}, LABELS + ["blue"], META)
    with pytest.raises(NNError, match="scores 3 classes but there are 4 labels"):
        wrong.detect(image)
    detector = ImageDetector(tiny_faster_rcnn(), hand_set_params(), {}, LABELS, META)
    with pytest.raises(SchemaError, match="exactly one image column"):
        detector.detect(fs.SFrame({"a": [image], "b": [image]}))
    with pytest.raises(SchemaError, match="SArray of images"):
        detector.detect(fs.SArray([1, 2]))
    params = hand_set_params()
    del params["cls_score_bias"]
    with pytest.raises(NNError, match="no parameter values for cls_score_bias"):
        ImageDetector(tiny_faster_rcnn(), params, {}, LABELS, META).detect(image)


# ---------------------------------------------------------------- the two ends on their own


def test_preprocess_sizes_mean_and_scale():
    tensor, info = preprocess(fs.Image(np.full((600, 1001, 3), 30, np.uint8)), 600, 1000,
                              (10, 20, 30), 0.5)
    assert tensor.shape == (1, 3, 599, 1000) and tensor.dtype == np.float32
    np.testing.assert_array_equal(info, np.float32([[599, 1000, 1000 / 1001]]))
    np.testing.assert_array_equal(tensor[0, :, 300, 500], [10, 5, 0])
    gray, info = preprocess(fs.Image(np.full((50, 80), 7, np.uint8)), 100, 1000)
    assert gray.shape == (1, 3, 100, 160) and info[0, 2] == 2 and (gray == 7).all()


def test_postprocess_maps_back_to_the_original_image():
    # Two ROIs in a 2x image (im_info 100 x 120, scale 2); 2 classes plus the background.
    rois = np.array([[0, 32, 32, 63, 63], [0, 200, 10, 239, 49]], np.float32)
    cls_prob = np.array([[0.1, 0.5, 0.4], [0.05, 0.9, 0.05]], np.float32)
    deltas = np.zeros((2, 12), np.float32)
    info = np.array([[100, 120, 2]], np.float32)
    found = postprocess(cls_prob, deltas, rois, info, 0.3, 0.3)
    # Scores must exceed the threshold: 0.5 > 0.3, 0.4 > 0.3, 0.9; ROI 1 is clipped at x 59.
    assert [(c, r, b.tolist(), round(s, 6)) for c, r, b, s in found] == [
        (1, 1, [59, 5, 59, 24.5], 0.9), (1, 0, [16, 16, 31.5, 31.5], 0.5),
        (2, 0, [16, 16, 31.5, 31.5], 0.4)]
    assert postprocess(cls_prob, deltas, rois, info, 0.5, 0.3)[1:] == []
    with pytest.raises(NNError, match=r"bbox_pred \(R, 4C\)"):
        postprocess(cls_prob, deltas[:, :8], rois, info, 0.3, 0.3)


# ---------------------------------------------------------------- visualize_detection


def box_edges(shape, box, width=3):
    x1, y1, x2, y2 = box
    ys, xs = np.mgrid[: shape[0], : shape[1]]
    inside = (xs >= x1) & (xs <= x2) & (ys >= y1) & (ys <= y2)
    core = (xs >= x1 + width) & (xs <= x2 - width) & (ys >= y1 + width) & (ys <= y2 - width)
    return inside & ~core


def label_region(shape, box, text):
    x1, y1 = box[:2]
    left, top, right, bottom = ImageDraw.Draw(fs.Image(np.zeros((1, 1, 3), np.uint8)).to_pil()
                                              ).textbbox((x1 + 2, y1 - 16 if y1 >= 16 else y1 + 3),
                                                         text, font=ImageFont.load_default())
    region = np.zeros(shape, bool)
    region[max(top, 0): bottom, max(left, 0): right] = True
    return region


def test_visualize_detection_draws_red_boxes_and_labels(detector):
    image = tiles_image()
    dets = detector.detect(image)
    drawn = visualize_detection(image, dets)
    assert isinstance(drawn, fs.Image) and (drawn.height, drawn.width) == (64, 96)
    before, after = image.pixels(), drawn.pixels()
    shape = before.shape[:2]
    edges = box_edges(shape, (16, 16, 31, 31)) | box_edges(shape, (88, 32, 95, 47))
    assert (after[edges] == [255, 0, 0]).all()
    red_label = label_region(shape, (16, 16), f"red:{P_RED_11:.3f}")
    green_label = label_region(shape, (88, 32), f"green:{P_GREEN_24:.3f}")
    # The red label sits in rows 0-15 above the red box, starting 2 pixels right of it.
    assert red_label[:16, 18:].any() and not red_label[16:].any()
    # Anti-aliased red ink: the pixels it touches gain red, and its strokes are nearly pure.
    inked = red_label & (after != before).any(axis=2)
    assert inked.sum() >= 20 and (after[inked][:, 0] > before[inked][:, 0]).all()
    assert (after[red_label][:, 0] >= 240).sum() >= 10
    untouched = ~(edges | red_label | green_label)
    np.testing.assert_array_equal(after[untouched], before[untouched])
    assert (after[untouched] != [255, 0, 0]).any(axis=1).all()
    np.testing.assert_array_equal(image.pixels(), before)  # the input is left alone
    assert ImageDetector.visualize_detection is visualize_detection
    np.testing.assert_array_equal(detector.visualize_detection(image, dets).pixels(), after)


def test_visualize_detection_nothing_and_errors(detector):
    image = tiles_image()
    nothing = detector.detect(image, class_score_threshold=0.99)
    np.testing.assert_array_equal(visualize_detection(image, nothing).pixels(), image.pixels())
    gray = fs.Image(np.full((40, 40), 128, np.uint8))
    one = fs.SFrame({"id": [0], "box": [np.array([5.0, 20, 30, 35])], "class": ["red"],
                     "score": [0.75]})
    drawn = visualize_detection(gray, one).pixels()
    assert drawn.shape == (40, 40, 3)
    assert (drawn[box_edges((40, 40), (5, 20, 30, 35))] == [255, 0, 0]).all()
    two = detector.detect(fs.SArray([image, image]))
    with pytest.raises(ValueError, match=r"one image's detections, but these hold ids \[0, 1\]"):
        visualize_detection(image, two)
    with pytest.raises(TypeError, match="must be an fs.Image"):
        visualize_detection(image.pixels(), nothing)
