"""ImageClassifier: a Fashion-MNIST CNN trained here goes through the whole store (package,
HTTP download with checksum, list, load) and predict_topk gives its accuracy; then the
preprocessing (resize, channels, mean, mean image, scale), the inputs accepted, feature
layers, and results streamed chunk by chunk.
"""

from __future__ import annotations

import numpy as np
import pytest

import framestream as fs
from framestream import mx
from framestream.errors import LayerNotFoundError, SchemaError
from framestream.nn.pretrained import _results
from tests.nn.conftest import MXNET_FIXTURES as FIX
from tests.nn.pretrained_support import (
    DIGITS,
    digit_images,
    http_server,
    lenet_folder,
    topk_probabilities,
)

pm = mx.pretrained_model
CLASSES = fs.datasets.FASHION_MNIST_CLASSES


def small_cnn():
    data = mx.sym.Variable("data")
    net = mx.sym.Convolution(data, kernel=(5, 5), num_filter=8, name="conv1")
    net = mx.sym.Activation(net, act_type="relu", name="relu1")
    net = mx.sym.Pooling(net, pool_type="max", kernel=(2, 2), stride=(2, 2), name="pool1")
    net = mx.sym.Flatten(net, name="flatten")
    net = mx.sym.FullyConnected(net, num_hidden=64, name="fc1")
    net = mx.sym.Activation(net, act_type="relu", name="relu2")
    net = mx.sym.FullyConnected(net, num_hidden=10, name="fc2")
    return mx.sym.SoftmaxOutput(net, name="softmax")


@pytest.fixture(scope="module")
def fashion(tmp_path_factory):
    """A small CNN trained for one epoch on 5,000 Fashion-MNIST images, and the test split."""
    try:
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("FRAMESTREAM_HOME", str(tmp_path_factory.mktemp("fashion-home")))
            train = fs.datasets.fashion_mnist("train").head(5000)
            test = fs.datasets.fashion_mnist("test")
    except fs.datasets.DatasetNotInstalled as exc:
        pytest.skip(str(exc))
    mx.random.seed(0)
    it = mx.io.SFrameImageIter(train, data_field=["image"], label_field="label", batch_size=50,
                               scale=1 / 255, shuffle=True, seed=1)
    model = mx.model.FeedForward.create(small_cnn(), it, num_epoch=1, optimizer="adam",
                                        learning_rate=0.002, initializer=mx.init.Xavier())
    return model, test


def test_fashion_mnist_model_through_the_store(fashion, tmp_path, home):
    model, test = fashion
    pkg = pm.package_model(model, tmp_path / "www" / "fmnist_cnn-1.0.tar.gz", labels=CLASSES,
                           name="fmnist_cnn", input_shape=(28, 28, 1), scale=1 / 255)
    with http_server(tmp_path / "www") as url:
        entry = pm.download_model(f"{url}/fmnist_cnn-1.0.tar.gz", sha256=pkg.sha256)
    assert pm.list_models() == [entry] == [("fmnist_cnn", "IMAGE_CLASSIFIER", "1.0")]
    classifier = pm.load_model("fmnist_cnn")
    assert classifier.labels == CLASSES

    top = classifier.predict_topk(test, k=3, batch_size=128)
    assert len(top) == 3 * len(test)
    best = top[top["rank"] == 1]
    truth = np.asarray(CLASSES, dtype=object)[test["label"].to_numpy()]
    accuracy = float((best["label"].to_numpy() == truth).mean())

    it = mx.io.SFrameImageIter(test, data_field=["image"], batch_size=128, scale=1 / 255)
    probs = model.predict(it)
    own = float((probs.argmax(axis=1) == test["label"].to_numpy()).mean())
    assert accuracy == own
    assert accuracy > 0.6, f"accuracy {accuracy} after one epoch (chance is 0.1)"
    np.testing.assert_allclose(best["score"].to_numpy(), probs.max(axis=1), rtol=1e-5, atol=1e-6)
    assert list(classifier.predict(test[:50])) == list(best["label"][:50])


# ----------------------------------------------------------------------------- preprocessing


def tiny_rgb_classifier(labels=("a", "b", "c", "d", "e"), **metadata):
    """data (N, 3, 4, 4) -> Flatten -> FC 5 -> softmax, with fixed random weights."""
    net = mx.sym.FullyConnected(mx.sym.Flatten(mx.sym.Variable("data")), num_hidden=5, name="fc")
    net = mx.sym.SoftmaxOutput(net, name="softmax")
    rng = np.random.default_rng(0)
    params = {"fc_weight": mx.nd.array(rng.normal(0, 0.05, (5, 48))),
              "fc_bias": mx.nd.array(rng.normal(0, 0.1, 5))}
    meta = {"name": "tiny", "version": 1, "input_shape": [4, 4, 3], "mean_rgb": [10, 20, 30],
            "scale": 0.5}
    meta.update(metadata)
    return pm.ImageClassifier(net, params, {}, list(labels), meta), params


def softmax_fc(x, params):
    logits = x.reshape(len(x), -1) @ params["fc_weight"].asnumpy().T + params["fc_bias"].asnumpy()
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def test_mean_rgb_and_scale_per_channel():
    classifier, params = tiny_rgb_classifier()
    pixels = np.random.default_rng(1).integers(0, 256, (7, 4, 4, 3), dtype=np.uint8)
    images = fs.SArray([fs.Image(p) for p in pixels])
    x = (pixels.astype(np.float32) - np.float32([10, 20, 30])) * np.float32(0.5)
    want = softmax_fc(x.transpose(0, 3, 1, 2), params)
    got = np.stack([np.asarray(v) for v in classifier.predict(images, "probability_vector")])
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_mean_image_overrides_mean_rgb_and_survives_save_and_load(tmp_path):
    mean = np.random.default_rng(2).uniform(0, 255, (4, 4, 3)).astype(np.float32)
    classifier, params = tiny_rgb_classifier(mean_nd=mean)
    pixels = np.random.default_rng(3).integers(0, 256, (5, 4, 4, 3), dtype=np.uint8)
    images = fs.SArray([fs.Image(p) for p in pixels])
    want = softmax_fc(((pixels - mean) * np.float32(0.5)).transpose(0, 3, 1, 2), params)
    got = np.stack([np.asarray(v) for v in classifier.predict(images, "probability_vector")])
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)

    pm.save_model(tmp_path / "tiny", classifier)
    assert (tmp_path / "tiny" / "mean.nd").is_file()
    again = pm.load_path(tmp_path / "tiny")
    np.testing.assert_array_equal(again.metadata["mean_nd"], mean)
    np.testing.assert_allclose(
        np.stack([np.asarray(v) for v in again.predict(images, "probability_vector")]), got)


def test_images_of_other_sizes_and_channels_are_resized_like_image_analysis(tmp_path):
    classifier = pm.load_path(lenet_folder(tmp_path / "lenet", scale=1 / 255))
    rng = np.random.default_rng(4)
    images = fs.SArray([fs.Image(rng.integers(0, 256, (40 + i, 33, 3), dtype=np.uint8))
                        for i in range(6)] + [fs.Image(rng.integers(0, 256, (28, 28, 4),
                                                                     dtype=np.uint8))])
    resized = fs.image_analysis.resize(images, 28, 28, 1, decode=True)
    x = np.stack([img.pixel_data.reshape(28, 28, 1) for img in resized]).astype(np.float32)
    x = (x * np.float32(1 / 255)).transpose(0, 3, 1, 2)
    symbol, arg, aux = mx.model.load_checkpoint(str(FIX / "lenet_digits"), 1)
    want = mx.model.FeedForward(symbol, arg_params=arg, aux_params=aux).predict(x)
    top = classifier.predict_topk(images, k=10, batch_size=3)
    np.testing.assert_allclose(topk_probabilities(top, len(images), DIGITS), want, rtol=1e-5,
                               atol=1e-6)


# ----------------------------------------------------------------------------- inputs and outputs


@pytest.fixture
def lenet(tmp_path):
    return pm.load_path(lenet_folder(tmp_path / "lenet"))


def test_accepted_inputs_give_the_same_answers(lenet):
    images, _ = digit_images()
    images = images[:13]
    frame = fs.SFrame({"id": list(range(13)), "picture": images})
    by_sarray = lenet.predict_topk(images, k=2, batch_size=5)
    assert len(by_sarray) == 26 and list(by_sarray["rank"][:4]) == [1, 2, 1, 2]
    assert list(by_sarray["row_id"]) == list(np.repeat(np.arange(13), 2))
    by_frame = lenet.predict_topk(frame, k=2, batch_size=100).to_dataframe()
    same = by_sarray.to_dataframe()
    assert by_frame[["row_id", "label", "rank"]].equals(same[["row_id", "label", "rank"]])
    np.testing.assert_allclose(by_frame["score"], same["score"], rtol=1e-5, atol=1e-7)
    single = lenet.predict_topk(images[4], k=2)
    assert list(single["label"]) == list(by_sarray["label"][8:10])
    assert list(single["row_id"]) == [0, 0]
    assert lenet.predict(images[4])[0] == by_sarray["label"][8]


def test_k_batch_size_and_empty_input(lenet):
    images, _ = digit_images()
    top = lenet.predict_topk(images[:3], k=50)
    assert len(top) == 30  # k is capped at the 10 labels, as GraphLab did
    with pytest.raises(ValueError, match="k must be a positive integer"):
        lenet.predict_topk(images[:3], k=0)
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        lenet.predict_topk(images[:3], batch_size=0)
    empty = lenet.predict_topk(images[:0])
    assert len(empty) == 0 and empty.column_names() == ["row_id", "label", "score", "rank"]
    assert len(lenet.extract_features(images[:0])) == 0


def test_bad_inputs_name_what_is_wrong(lenet):
    images, _ = digit_images()
    with pytest.raises(SchemaError, match="exactly one image column; its image columns: 'a', 'b'"):
        lenet.predict_topk(fs.SFrame({"a": images[:2], "b": images[:2]}))
    with pytest.raises(SchemaError, match="its image columns: none"):
        lenet.predict_topk(fs.SFrame({"x": [1, 2]}))
    with pytest.raises(SchemaError, match="expected an SArray of images, got an SArray of int"):
        lenet.extract_features(fs.SArray([1, 2]))
    with pytest.raises(SchemaError, match="not ndarray"):
        lenet.predict(np.zeros((2, 1, 28, 28)))
    with pytest.raises(ValueError, match="output_type"):
        lenet.predict(images[:2], output_type="class")


def test_feature_layers(lenet):
    images, _ = digit_images()
    default = lenet.extract_features(images[:4])
    fc1 = lenet.extract_features(images[:4], layer="fc1_output")
    np.testing.assert_allclose(np.asarray(default[0]), np.tanh(np.asarray(fc1[0])), rtol=1e-5,
                               atol=1e-6)
    pooled = lenet.extract_features(images[:4], layer="pool2_output")
    assert len(pooled[0]) == 50 * 4 * 4
    with pytest.raises(LayerNotFoundError, match="candidates"):
        lenet.extract_features(images[:4], layer="nope_output")
    assert lenet.extract_feature is not None  # GraphLab's spelling


def test_network_without_a_loss_head_gluon_style():
    """Exported from Gluon: ends with the FullyConnected layer, scores are its outputs."""
    net = mx.sym.FullyConnected(mx.sym.Flatten(mx.sym.Variable("data")), num_hidden=8, name="h")
    net = mx.sym.FullyConnected(mx.sym.Activation(net, act_type="relu", name="r"), num_hidden=3,
                                name="out")
    rng = np.random.default_rng(5)
    params = {"h_weight": rng.normal(0, 0.1, (8, 4)), "h_bias": np.zeros(8),
              "out_weight": rng.normal(0, 0.5, (3, 8)), "out_bias": np.zeros(3)}
    params = {k: mx.nd.array(v) for k, v in params.items()}
    meta = {"name": "g", "version": "1", "input_shape": [2, 2, 1], "mean_rgb": [0, 0, 0],
            "scale": 1.0}
    classifier = pm.ImageClassifier(net, params, {}, [7, 8, 9], meta)
    pixels = rng.integers(0, 256, (6, 2, 2, 1), dtype=np.uint8)
    images = fs.SArray([fs.Image(p) for p in pixels])
    hidden = np.maximum(pixels.reshape(6, 4) @ params["h_weight"].asnumpy().T, 0)
    logits = hidden @ params["out_weight"].asnumpy().T
    features = np.stack([np.asarray(v) for v in classifier.extract_features(images)])
    np.testing.assert_allclose(features, hidden, rtol=1e-5, atol=1e-4)
    labels = classifier.predict(images)
    assert labels.dtype is int and list(labels) == [7 + int(i) for i in logits.argmax(axis=1)]


def test_label_count_must_match_the_network(tmp_path):
    symbol, arg, aux = mx.model.load_checkpoint(str(FIX / "lenet_digits"), 1)
    meta = {"name": "x", "version": 1, "input_shape": [28, 28, 1], "mean_rgb": [0, 0, 0],
            "scale": 1}
    with pytest.raises(ValueError, match="10 outputs per image but there are 3 labels"):
        pm.ImageClassifier(symbol, arg, aux, ["a", "b", "c"], meta)


def test_several_contexts_split_each_batch(tmp_path):
    one = pm.load_path(lenet_folder(tmp_path / "a"))
    two = pm.load_path(lenet_folder(tmp_path / "b"), ctx=[mx.cpu(0), mx.cpu(1)])
    images, _ = digit_images()
    a = one.predict_topk(images[:21], k=3, batch_size=8).to_dataframe()
    b = two.predict_topk(images[:21], k=3, batch_size=8).to_dataframe()
    assert a[["row_id", "label", "rank"]].equals(b[["row_id", "label", "rank"]])
    np.testing.assert_allclose(a["score"], b["score"], rtol=1e-6)


def test_results_are_written_chunk_by_chunk(lenet, monkeypatch):
    """The result frame is written in chunks as batches finish (small chunks forced here)."""
    monkeypatch.setattr(_results, "chunk_rows_for", lambda row_bytes: 256)
    writes = []
    real_append = _results.FrameWriter.append

    def append(self, batch):
        writes.append(len(batch[0][0]))
        return real_append(self, batch)

    monkeypatch.setattr(_results.FrameWriter, "append", append)
    images, X = digit_images()
    top = lenet.predict_topk(images, k=10, batch_size=32)
    assert writes == [320] * 9 + [10 * (297 - 9 * 32)]
    assert top.is_materialized() and len(top) == 2970
    expected = np.load(FIX / "lenet_digits_expected.npz")["probs"]
    np.testing.assert_allclose(topk_probabilities(top, len(X), DIGITS), expected, rtol=1e-5,
                               atol=1e-5)
    features = lenet.extract_features(images, batch_size=64)
    assert len(features) == 297 and len(features[0]) == 500
