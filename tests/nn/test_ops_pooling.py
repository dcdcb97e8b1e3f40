"""Pooling and ROIPooling: shapes, loop-based NumPy references, finite differences."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from framestream.errors import NNError, OperatorParamError, ShapeInferenceError
from framestream.nn.ops import Runtime, lookup
from tests.nn.opcheck import Case, check_case


def pool_ref(data, kernel=(), stride=None, pad=None, pool_type="max", convention="valid",
             global_pool=False, count_include_pad=True, p_value=None):
    """MXNet 1.9.1's pool.h loops: a window starts at y*s - p, ends at min(start + k, H + p),
    reads the real pixels it covers; avg divides by that (padded) extent."""
    d = data.ndim - 2
    spatial = data.shape[2:]
    if global_pool:
        kernel, stride, pad = spatial, (1,) * d, (0,) * d
    stride, pad = stride or (1,) * d, pad or (0,) * d
    sizes = []
    for size, k, s, p in zip(spatial, kernel, stride, pad):
        room = size + 2 * p - k
        sizes.append({"valid": room // s + 1, "full": math.ceil(room / s) + 1,
                      "same": math.ceil((size + 2 * p) / s)}[convention])
    out = np.zeros((*data.shape[:2], *sizes))
    for pos in itertools.product(*map(range, sizes)):
        starts = [o * s - p for o, s, p in zip(pos, stride, pad)]
        ends = [min(a + k, size + p) for a, k, size, p in zip(starts, kernel, spatial, pad)]
        area = math.prod(e - a for a, e in zip(starts, ends))
        real = [slice(max(a, 0), min(e, size)) for a, e, size in zip(starts, ends, spatial)]
        patch = data[(slice(None), slice(None), *real)].reshape(*data.shape[:2], -1)
        if not count_include_pad:
            area = patch.shape[-1]
        cell = (slice(None), slice(None), *pos)
        if pool_type == "max":
            out[cell] = patch.max(axis=-1) if patch.size else np.finfo(float).min
        elif pool_type == "lp":
            out[cell] = (patch ** p_value).sum(axis=-1) ** (1 / p_value)
        else:
            out[cell] = patch.sum(axis=-1) / (max(area, 1) if pool_type == "avg" else 1)
    return [out]


def pool(params, shape, ref_kw, **kw):
    return Case("Pooling", params, {"data": shape},
                reference=lambda data: pool_ref(data, **ref_kw), **kw)


CASES = [
    pool({"kernel": (2, 2), "stride": (2, 2)}, (2, 2, 4, 5), {"kernel": (2, 2), "stride": (2, 2)},
         id="max-2x2-s2"),
    pool({"kernel": (3, 3), "stride": (2, 2), "pad": (1, 1)}, (1, 2, 5, 6),
         {"kernel": (3, 3), "stride": (2, 2), "pad": (1, 1)}, id="max-pad"),
    pool({"kernel": (3, 2), "stride": (2, 2), "pooling_convention": "full"}, (2, 1, 6, 5),
         {"kernel": (3, 2), "stride": (2, 2), "convention": "full"}, id="max-full-nonsquare"),
    pool({"kernel": "(3, 3)", "stride": "(2, 2)", "pad": "(1, 1)", "pool_type": "avg"},
         (1, 2, 5, 5), {"kernel": (3, 3), "stride": (2, 2), "pad": (1, 1), "pool_type": "avg"},
         id="avg-pad-strings"),
    pool({"kernel": (3, 3), "stride": (2, 2), "pool_type": "avg", "pooling_convention": "full"},
         (1, 2, 6, 6), {"kernel": (3, 3), "stride": (2, 2), "pool_type": "avg",
                        "convention": "full"}, id="avg-full-clipped"),
    pool({"kernel": (3, 3), "stride": (2, 2), "pad": (1, 1), "pool_type": "avg",
          "pooling_convention": "full", "count_include_pad": False}, (1, 2, 6, 5),
         {"kernel": (3, 3), "stride": (2, 2), "pad": (1, 1), "pool_type": "avg",
          "convention": "full", "count_include_pad": False}, id="avg-full-exclude-pad"),
    pool({"kernel": (3, 3), "pad": (1, 1), "pool_type": "avg", "count_include_pad": False},
         (1, 2, 4, 4), {"kernel": (3, 3), "pad": (1, 1), "pool_type": "avg",
                        "count_include_pad": False}, id="avg-exclude-pad"),
    pool({"kernel": (2, 3), "stride": (1, 2), "pad": (1, 0), "pool_type": "sum",
          "pooling_convention": "full"}, (2, 2, 4, 6),
         {"kernel": (2, 3), "stride": (1, 2), "pad": (1, 0), "pool_type": "sum",
          "convention": "full"}, id="sum-full-pad"),
    pool({"kernel": (1, 1), "stride": (2, 2), "pad": (1, 1)}, (1, 2, 3, 4),
         {"kernel": (1, 1), "stride": (2, 2), "pad": (1, 1)}, id="max-padding-only-windows",
         grad_inputs=[]),  # outputs of float64's lowest value defeat finite differences
    pool({"global_pool": True}, (2, 3, 3, 4), {"global_pool": True}, id="max-global"),
    pool({"kernel": (1, 1), "global_pool": True, "pool_type": "avg"}, (2, 3, 3, 4),
         {"global_pool": True, "pool_type": "avg"}, id="avg-global"),
    pool({"global_pool": True, "pool_type": "sum"}, (2, 3, 5), {"global_pool": True,
                                                               "pool_type": "sum"},
         id="sum-global-1d"),
    pool({"kernel": (3,), "stride": (2,), "pad": (1,), "pool_type": "avg"}, (2, 2, 7),
         {"kernel": (3,), "stride": (2,), "pad": (1,), "pool_type": "avg"}, id="avg-1d"),
    pool({"kernel": (3,), "stride": (2,), "pooling_convention": "same"}, (2, 2, 6),
         {"kernel": (3,), "stride": (2,), "convention": "same"}, id="max-same-1d"),
    pool({"kernel": (2, 2), "stride": (2, 2), "pad": (1, 0), "pool_type": "lp", "p_value": 2},
         (2, 2, 4, 5), {"kernel": (2, 2), "stride": (2, 2), "pad": (1, 0), "pool_type": "lp",
                        "p_value": 2}, id="lp2-pad"),
    pool({"kernel": (2,), "pool_type": "lp", "p_value": "1"}, (2, 2, 4),
         {"kernel": (2,), "pool_type": "lp", "p_value": 1}, id="lp1-1d"),
    pool({"global_pool": True, "pool_type": "lp", "p_value": 2}, (2, 3, 3, 2),
         {"global_pool": True, "pool_type": "lp", "p_value": 2}, id="lp2-global"),
    pool({"kernel": (2, 2, 2), "stride": (1, 2, 2), "pooling_convention": "full"},
         (1, 2, 3, 3, 4), {"kernel": (2, 2, 2), "stride": (1, 2, 2), "convention": "full"},
         id="max-3d-full"),
    pool({"kernel": (2, 3, 2), "pad": (1, 1, 0), "pool_type": "avg"}, (1, 2, 2, 3, 3),
         {"kernel": (2, 3, 2), "pad": (1, 1, 0), "pool_type": "avg"}, id="avg-3d-pad"),
]


def roi_ref(data, rois, pooled_size, spatial_scale):
    """MXNet's ROIPooling loops, transcribed (halves round away from zero, as C's round)."""
    n, c, h, w = data.shape
    ph, pw = pooled_size
    out = np.zeros((len(rois), c, ph, pw))
    c_round = lambda v: math.floor(abs(v) + 0.5) * (1 if v >= 0 else -1)  # noqa: E731
    for r, (b, x1, y1, x2, y2) in enumerate(rois):
        sw, sh, ew, eh = (c_round(v * spatial_scale) for v in (x1, y1, x2, y2))
        bin_h, bin_w = max(eh - sh + 1, 1) / ph, max(ew - sw + 1, 1) / pw
        for i in range(ph):
            for j in range(pw):
                hs = min(max(math.floor(i * bin_h) + sh, 0), h)
                he = min(max(math.ceil((i + 1) * bin_h) + sh, 0), h)
                ws = min(max(math.floor(j * bin_w) + sw, 0), w)
                we = min(max(math.ceil((j + 1) * bin_w) + sw, 0), w)
                if he > hs and we > ws:
                    out[r, :, i, j] = data[int(b), :, hs:he, ws:we].max(axis=(1, 2))
    return [out]


ROIS = np.array([[0, 0, 0, 7, 7], [1, 2.4, 4, 13, 9.5], [0, 10, 2, 11, 3], [1, -6, -4, 3, 20],
                 [0, 40, 40, 50, 50], [1, 1, 2, 30, 30]])  # the last has empty bins at the edge
ROI_CASES = [
    Case("ROIPooling", {"pooled_size": (2, 3), "spatial_scale": 0.5},
         {"data": (2, 2, 6, 7), "rois": ROIS}, grad_inputs=["data"], id="roi-2x3",
         reference=lambda data, rois: roi_ref(data, rois, (2, 3), 0.5)),
    Case("ROIPooling", {"pooled_size": "(3, 3)", "spatial_scale": "0.25"},
         {"data": (2, 1, 5, 5), "rois": ROIS[:2] * [1, 2, 2, 2, 2]}, grad_inputs=["data"],
         id="roi-overlapping-bins", reference=lambda data, rois: roi_ref(data, rois, (3, 3), .25)),
]


@pytest.mark.parametrize("case", CASES + ROI_CASES, ids=str)
def test_pooling_op(case):
    check_case(case)


def _run(name, params, arrays, is_train=True):
    op = lookup(name)(node="t", **params)
    outs, state = op.forward(np, arrays, is_train, Runtime(np, 0))
    grads = op.backward(np, [np.ones_like(outs[0])], arrays, outs, state, Runtime(np, 0))
    return op, outs[0], state, grads


@pytest.mark.parametrize("pool_type", ["max", "avg", "sum"])
def test_float32_stays_float32_and_inference_matches(pool_type):
    x = np.random.default_rng(0).standard_normal((2, 3, 7, 7)).astype(np.float32)
    params = {"kernel": (3, 3), "stride": (2, 2), "pad": (1, 1), "pool_type": pool_type,
              "pooling_convention": "full"}
    _, out, _, (dx,) = _run("Pooling", params, [x])
    assert out.dtype == np.float32 and dx.dtype == np.float32
    _, infer, _, (dx2,) = _run("Pooling", params, [x], is_train=False)
    np.testing.assert_array_equal(out, infer)
    np.testing.assert_array_equal(dx, dx2)
    want = pool_ref(x.astype(np.float64), (3, 3), (2, 2), (1, 1), pool_type, "full")[0]
    assert want.shape == out.shape
    np.testing.assert_allclose(out, want, rtol=1e-5, atol=1e-6)


def test_max_pool_gradient_goes_to_first_max_on_ties():
    x = np.zeros((1, 1, 2, 4))
    x[0, 0, 1, 1] = x[0, 0, 0, 1] = 5.0  # tie inside the first window: row-major first wins
    _, out, _, (dx,) = _run("Pooling", {"kernel": (2, 2), "stride": (2, 2)}, [x])
    assert out.tolist() == [[[[5.0, 0.0]]]]
    assert dx[0, 0].tolist() == [[0, 1, 1, 0], [0, 0, 0, 0]]


def test_windows_of_padding_alone_give_the_lowest_value_and_no_gradient():
    x = np.arange(12.0).reshape(1, 1, 3, 4)
    _, out, _, (dx,) = _run("Pooling", {"kernel": (1, 1), "stride": (2, 2), "pad": (1, 1)}, [x])
    low = np.finfo(np.float64).min
    assert out[0, 0].tolist() == [[low, low, low], [low, 5.0, 7.0], [low, low, low]]
    assert dx[0, 0].tolist() == [[0, 0, 0, 0], [0, 1, 0, 1], [0, 0, 0, 0]]


def test_full_convention_gives_the_graphlab_era_sizes():
    shape = [(1, 3, 112, 112)]
    valid = lookup("Pooling")(node="p", kernel=(3, 3), stride=(2, 2))
    full = lookup("Pooling")(node="p", kernel=(3, 3), stride=(2, 2), pooling_convention="full")
    assert valid.infer_shape(shape)[1] == [(1, 3, 55, 55)]
    assert full.infer_shape(shape)[1] == [(1, 3, 56, 56)]
    glob = lookup("Pooling")(node="p", global_pool=True, pool_type="avg")
    assert glob.infer_shape([(4, 8, 7, 5)])[1] == [(4, 8, 1, 1)]


def test_roi_pooling_float32_empty_bins_and_hidden_maxidx():
    data = np.arange(2 * 3 * 4 * 4, dtype=np.float32).reshape(2, 3, 4, 4)
    rois = np.array([[1, 0, 0, 3, 3], [0, 8, 8, 9, 9]], dtype=np.float32)  # second: off the map
    op, out, (batch, maxidx), (ddata, drois) = _run(
        "ROIPooling", {"pooled_size": (2, 2), "spatial_scale": 1.0}, [data, rois])
    assert op.outputs() == ["output"] and out.dtype == np.float32
    np.testing.assert_array_equal(out[0, 0], [[53, 55], [61, 63]])
    assert (out[1] == 0).all() and (maxidx[1] == -1).all()
    assert maxidx[0, 0].tolist() == [[5, 7], [13, 15]]
    assert ddata.dtype == np.float32 and ddata.sum() == 12 and ddata[0].sum() == 0
    assert drois.shape == rois.shape and not drois.any()


def test_roi_pooling_bins_use_the_data_dtype_like_mxnet():
    # A 29-row ROI in 7 bins: the last bin ends at ceil(7 * (29 / 7)), which is 29 in float32
    # but 30 in float64 (29.000000000000004). MXNet computes in the data's dtype; so do we.
    op = lookup("ROIPooling")(node="r", pooled_size=(7, 1), spatial_scale=1.0)
    rois = np.array([[0, 0, 0, 3, 28]])
    for dtype, end in ((np.float32, 29), (np.float64, 30)):
        data = np.zeros((1, 1, 32, 4), dtype=dtype)
        data[0, 0, 29, 0] = 9.0  # just past the ROI: only the float64 bin reaches it
        (out,), _ = op.forward(np, [data, rois.astype(dtype)], False, None)
        assert op._bins(rois, dtype, (32, 4))[1][0][1][0, -1] == end
        assert out[0, 0, -1, 0] == (9.0 if end == 30 else 0.0)


def test_pooling_errors():
    pooling = lookup("Pooling")
    with pytest.raises(OperatorParamError, match="kernel is required unless global_pool"):
        pooling(node="p")
    with pytest.raises(OperatorParamError, match="pool_type='lp' needs p_value >= 1, got None"):
        pooling(node="p", kernel=(2, 2), pool_type="lp")
    with pytest.raises(OperatorParamError, match="pool_type='median'"):
        pooling(node="p", kernel=(2, 2), pool_type="median")
    with pytest.raises(OperatorParamError, match=r"pad=\(1,\) has 1 entries but kernel"):
        pooling(node="p", kernel=(2, 2), pad=(1,))
    with pytest.raises(OperatorParamError, match="layout='NHWC' is not supported"):
        pooling(node="p", kernel=(2, 2), layout="NHWC")
    p = pooling(node="pool1", kernel=(5, 5), pad=(1, 1))
    with pytest.raises(ShapeInferenceError, match=r"Pooling 'pool1' with inputs "
                       r"data=\(1, 2, 2, 9\).*kernel 5 along height exceeds the input 2 "
                       r"padded to 4"):
        p.infer_shape([(1, 2, 2, 9)])
    with pytest.raises(ShapeInferenceError, match=r"data should be 4-D \(N, C, H, W\)"):
        p.infer_shape([(1, 2, 9)])
    same = pooling(node="p", kernel=(2, 2), pooling_convention="same")
    with pytest.raises(ShapeInferenceError, match="'same' supports 1-D"):
        same.infer_shape([(1, 2, 4, 4)])


def test_roi_pooling_errors():
    roi = lookup("ROIPooling")
    with pytest.raises(OperatorParamError, match="required parameter 'spatial_scale'"):
        roi(node="r", pooled_size=(7, 7))
    with pytest.raises(OperatorParamError, match=r"spatial_scale=2.0 must be in \(0, 1\]"):
        roi(node="r", pooled_size=(7, 7), spatial_scale=2)
    r = roi(node="roi5", pooled_size=(7, 7), spatial_scale=0.0625)
    with pytest.raises(ShapeInferenceError, match=r"ROIPooling 'roi5'.*rois=\(10, 4\).*"
                                                  r"rois should be \(R, 5\)"):
        r.infer_shape([(1, 512, 38, 50), (10, 4)])
    assert r.infer_shape([(1, 512, 38, 50), (10, 5)])[1] == [(10, 512, 7, 7)]
    with pytest.raises(NNError, match=r"batch indices \[0, 3\], but data has batch size 2"):
        r.forward(np, [np.zeros((2, 1, 4, 4)), np.array([[0, 0, 0, 1, 1], [3, 0, 0, 1, 1.0]])],
                  False, None)
