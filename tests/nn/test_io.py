"""``mx.io``: MXNet's DataIter surface over the pipeline, with the user guide's iterator calls."""

from __future__ import annotations

import doctest
import threading
import warnings
from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import load_diabetes, load_iris

import framestream as fs
from framestream import mx
from framestream.errors import SchemaError

IRIS = load_iris()
X, Y = IRIS.data, IRIS.target  # 150 rows


@pytest.fixture(scope="module")
def houses(tmp_path_factory) -> tuple[fs.SFrame, list[str]]:
    """A stand-in for the guide's houses.csv: scikit-learn's diabetes table, normalised as the
    guide normalises its features (``sf[f] = (sf[f] - mean) / std``)."""
    d = load_diabetes(scaled=False)
    features = ["age", "bmi", "bp", "s1", "s5"]
    sf = fs.SFrame({f: d.data[:, d.feature_names.index(f)] for f in features})
    sf["price"] = d.target
    sf["expensive"] = sf["price"] > 150
    for f in features:
        sf[f] = sf[f] - sf[f].mean()
        sf[f] = sf[f] / sf[f].std()
    return sf, features


@pytest.fixture(scope="module")
def mnist(tmp_path_factory) -> fs.SFrame:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FRAMESTREAM_HOME", str(tmp_path_factory.mktemp("io-home")))
        return fs.datasets.mnist()[:1000]


def test_datadesc_is_a_name_shape_pair_with_dtype_and_layout():
    desc = mx.io.DataDesc("data", [100, 3], np.float16, "NC")
    name, shape = desc
    assert (name, shape, desc.dtype, desc.layout) == ("data", (100, 3), np.float16, "NC")
    assert desc == ("data", (100, 3)) and len(desc) == 2
    assert mx.io.DataDesc.get_batch_axis("TNC") == 1 and mx.io.DataDesc.get_batch_axis(None) == 0
    assert mx.io.DataDesc.get_list([("a", (1,))], [("a", np.int32)])[0].dtype == np.int32


def test_ndarray_iter_batches_are_float32_ndarrays_on_cpu_in_order():
    it = mx.io.NDArrayIter(X, Y, batch_size=32)
    assert it.provide_data == [("data", (32, 4))] and it.provide_label == [("softmax_label", (32,))]
    batches = list(it)
    assert [b.pad for b in batches] == [0, 0, 0, 0, 10]
    first = batches[0]
    assert isinstance(first.data[0], mx.nd.NDArray) and first.data[0].context == mx.cpu()
    assert first.data[0].dtype == np.float32
    np.testing.assert_array_equal(first.data[0].asnumpy(), X[:32].astype(np.float32))
    np.testing.assert_array_equal(batches[-1].label[0].asnumpy(), np.r_[Y[128:], Y[:10]])
    assert list(it) == []  # exhausted until reset
    it.reset()
    assert len(list(it)) == 5


def test_ndarray_iter_protocol_methods():
    it = mx.io.NDArrayIter(mx.nd.array(X), mx.nd.array(Y), batch_size=100)
    assert it.iter_next()
    assert it.getdata()[0].shape == (100, 4) and it.getlabel()[0].shape == (100,)
    assert it.getpad() == 0 and it.getindex().tolist() == list(range(100))
    assert it.iter_next() and it.getpad() == 50
    assert not it.iter_next()
    with pytest.raises(StopIteration):
        it.next()


def test_ndarray_iter_shuffles_per_epoch_with_a_seed():
    def epoch_orders(it, n):
        orders = []
        for _ in range(n):
            orders.append(np.concatenate([b.index for b in it]))
            it.reset()
        return orders

    a = epoch_orders(mx.io.NDArrayIter(X, Y, 50, shuffle=True, seed=7), 2)
    b = epoch_orders(mx.io.NDArrayIter(X, Y, 50, shuffle=True, seed=7), 2)
    assert all(np.array_equal(p, q) for p, q in zip(a, b))
    assert not np.array_equal(a[0], a[1]) and sorted(a[0]) == list(range(150))


def test_roll_over_and_hard_reset():
    it = mx.io.NDArrayIter(X, Y, batch_size=40, last_batch_handle="roll_over")
    assert len(list(it)) == 3 and it.getpad() == 0 and it.getdata() is None
    it.reset()
    first = it.next()
    assert first.index.tolist() == [*range(120, 150), *range(10)] and first.pad == 0
    it.hard_reset()
    assert it.next().index.tolist() == list(range(40))
    discard = mx.io.NDArrayIter(X, Y, batch_size=40, last_batch_handle="discard")
    assert [b.pad for b in discard] == [0, 0, 0]


def test_several_arrays_and_names():
    it = mx.io.NDArrayIter([X, X[:, :2]], Y, batch_size=10)
    assert [d.name for d in it.provide_data] == ["_0_data", "_1_data"]
    it = mx.io.NDArrayIter({"pixels": X}, {"lr_label": Y}, batch_size=10)
    assert it.provide_data == [("pixels", (10, 4))] and it.provide_label == [("lr_label", (10,))]
    assert it.num_data == 150 and it.data[0][0] == "pixels"
    it = mx.io.NDArrayIter(X, batch_size=10, data_name="x")
    assert it.provide_label == [] and it.next().label == []


def test_guide_sframe_iter_regression(houses):
    sf, features = houses
    dataiter = mx.io.SFrameIter(sf, data_field=features, label_field="price",
                                data_name="data", label_name="lr_label", batch_size=1)
    assert dataiter.provide_data == [("data", (1, 5))]
    assert dataiter.provide_label == [("lr_label", (1,))]
    batches = list(dataiter)
    assert len(batches) == 442 and all(b.pad == 0 for b in batches)
    expected = np.stack([sf[f].to_numpy() for f in features], axis=1).astype(np.float32)
    got = np.concatenate([b.data[0].asnumpy() for b in batches])
    np.testing.assert_allclose(got, expected, rtol=1e-6)
    np.testing.assert_array_equal(np.concatenate([b.label[0].asnumpy() for b in batches]),
                                  sf["price"].to_numpy().astype(np.float32))
    binary = mx.io.SFrameIter(sf, data_field=features, label_field="expensive", batch_size=100)
    assert set(np.unique(np.concatenate([b.label[0].asnumpy() for b in binary]))) == {0.0, 1.0}


def test_guide_sframe_image_iter(mnist):
    dataiter = mx.io.SFrameImageIter(mnist, data_field=["image"], label_field="label",
                                     data_name="data", label_name="sm_label", batch_size=100)
    assert dataiter.provide_data == [("data", (100, 1, 28, 28))]
    assert dataiter.provide_label == [("sm_label", (100,))]
    batch = dataiter.next()
    pixels = np.stack([img.pixels() for img in mnist["image"].head(100)]).transpose(0, 3, 1, 2)
    np.testing.assert_array_equal(batch.data[0].asnumpy(), pixels.astype(np.float32))
    np.testing.assert_array_equal(batch.label[0].asnumpy(), mnist["label"].head(100).to_numpy())
    assert str(batch) == "DataBatch: data shapes: [(100, 1, 28, 28)] label shapes: [(100,)]"
    dataiter.close()


def test_sframe_iter_on_an_image_column_serves_raw_pixels(mnist):
    it = mx.io.SFrameIter(mnist[:10], data_field="image", batch_size=4)
    assert it.provide_data == [("data", (4, 1, 28, 28))] and it.provide_label == []
    batches = list(it)
    assert [b.pad for b in batches] == [0, 0, 2] and all(b.label == [] for b in batches)
    assert batches[0].data[0].asnumpy().max() == 255.0


def test_image_iter_normalises_and_augments(mnist):
    kw = dict(data_field="image", label_field="label", batch_size=50, seed=3)
    plain = mx.io.SFrameImageIter(mnist, mean_r=128, scale=1 / 128, **kw).next().data[0].asnumpy()
    raw = mx.io.SFrameImageIter(mnist, **kw).next().data[0].asnumpy()
    np.testing.assert_allclose(plain, (raw - 128) / 128, atol=1e-6)
    mean_nd = mx.nd.array(np.full((28, 28, 1), 10.0))
    minus_nd = mx.io.SFrameImageIter(mnist, mean_nd=mean_nd, **kw).next().data[0].asnumpy()
    np.testing.assert_allclose(minus_nd, raw - 10.0)
    augment = dict(data_shape=(1, 24, 24), random_crop=True, random_mirror=True, shuffle=True)
    aug = mx.io.SFrameImageIter(mnist, **augment, **kw)
    e0 = aug.next().data[0].asnumpy()
    aug.reset()
    e1 = aug.next().data[0].asnumpy()
    assert e0.shape == (50, 1, 24, 24) and not np.array_equal(e0, e1)
    again = mx.io.SFrameImageIter(mnist, **augment, **kw)
    np.testing.assert_array_equal(again.next().data[0].asnumpy(), e0)
    turi = mx.io.SFrameImageIter(mnist, image_shape=(1, 14, 14), **kw)
    assert turi.provide_data[0].shape == (50, 1, 14, 14)


def test_saved_frame_and_sharding_through_mx_io(mnist, tmp_path):
    mnist.save(str(tmp_path / "mnist"))
    parts = [mx.io.SFrameImageIter(str(tmp_path / "mnist"), "image", "label", batch_size=64,
                                   part_index=p, num_parts=2, shuffle=True, seed=0)
             for p in range(2)]
    seen = [b.index[: 64 - b.pad] for it in parts for b in it]
    assert sorted(np.concatenate(seen).tolist()) == list(range(1000))


def test_unknown_keywords():
    sf = fs.SFrame({"x": [1.0, 2.0], "image": [fs.Image(np.zeros((4, 4, 1), np.uint8))] * 2})
    with pytest.raises(TypeError, match=r"SFrameIter got unknown arguments \['shufle'\]"):
        mx.io.SFrameIter(sf, "x", shufle=True)
    with pytest.warns(UserWarning,
                      match=r"unknown arguments \['rand_crop'\].*ignored, as GraphLab did"):
        mx.io.SFrameImageIter(sf, "image", rand_crop=True)
    with pytest.raises(SchemaError, match="needs one image column"):
        mx.io.SFrameImageIter(sf, "x")


def test_resize_iter():
    inner = mx.io.NDArrayIter(X, Y, batch_size=50)
    it = mx.io.ResizeIter(inner, 5)
    assert it.provide_data == inner.provide_data and it.batch_size == 50
    got = [b.index[0] for b in it]
    assert got == [0, 50, 100, 0, 50]
    it.reset()
    assert it.next().index[0] == 0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(list(mx.io.ResizeIter(inner, 2, reset_internal=False))) == 2


def test_prefetching_iter_joins_iterators_and_renames():
    a = mx.io.NDArrayIter(X, Y, batch_size=50)
    b = mx.io.NDArrayIter(X[:, :2] * 10, batch_size=50, data_name="extra")
    it = mx.io.PrefetchingIter([a, b], rename_data=[{"data": "left"}, {"extra": "right"}])
    assert [d.name for d in it.provide_data] == ["left", "right"] and it.batch_size == 50
    batches = list(it)
    assert len(batches) == 3 and len(batches[0].data) == 2 and len(batches[0].label) == 1
    right = batches[1].data[1].asnumpy()
    np.testing.assert_array_equal(right, (X[50:100, :2] * 10).astype(np.float32))
    it.reset()
    assert len(list(it)) == 3
    short = mx.io.PrefetchingIter([mx.io.NDArrayIter(X, batch_size=50),
                                   mx.io.NDArrayIter(X[:100], batch_size=50)])
    with pytest.raises(ValueError, match="disagree on the number of batches"):
        list(short)
    it.close()
    short.close()
    alive = [t for t in threading.enumerate() if t.name == "framestream-prefetching-iter"]
    assert not [t for t in alive if t.is_alive()]


def test_custom_iterators_can_subclass_dataiter():
    class Two(mx.io.DataIter):
        def __init__(self):
            super().__init__(batch_size=1)
            self.provide_data = [("data", (1, 1))]
            self.left = 2

        def iter_next(self):
            self.left -= 1
            return self.left >= 0

        def getdata(self):
            return [mx.nd.array([[self.left]])]

    batches = list(Two())
    assert len(batches) == 2 and batches[0].pad == 0 and batches[0].data[0].asnumpy()[0, 0] == 1


def test_mx_exposes_io():
    assert mx.io.SFrameIter is not None and "io" in mx.__all__
    assert Path(mx.io.__file__).name == "io.py"


def test_docstring_examples():
    result = doctest.testmod(mx.io)
    assert result.attempted > 0 and result.failed == 0


def test_set_epoch_replays_an_epoch_for_resumed_training():
    it = mx.io.NDArrayIter(X, Y, batch_size=50, shuffle=True, seed=1)
    orders = []
    for _ in range(3):
        orders.append(np.concatenate([b.index for b in it]))
        it.reset()
    it.set_epoch(1)
    np.testing.assert_array_equal(np.concatenate([b.index for b in it]), orders[1])
    assert it.epoch == 1
    both = mx.io.PrefetchingIter([mx.io.NDArrayIter(X, batch_size=50, shuffle=True, seed=1)])
    both.set_epoch(2)
    np.testing.assert_array_equal(np.concatenate([b.index for b in both]), orders[2])
    both.close()
