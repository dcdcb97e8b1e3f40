"""FeedForward: training converges, predicts, scores, saves, resumes exactly, splits over devices."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest

import framestream as fs
from framestream import mx
from framestream.errors import LayerNotFoundError, NNError


def diabetes():
    """scikit-learn's bundled diabetes table: 442 patients, 10 standardised features."""
    from sklearn.datasets import load_diabetes

    X, y = load_diabetes(return_X_y=True)
    X = ((X - X.mean(0)) / X.std(0)).astype(np.float32)
    return X, ((y - y.mean()) / y.std()).astype(np.float32)


def linear_net():
    net = mx.sym.FullyConnected(data=mx.sym.Variable("data"), name="fc1", num_hidden=1)
    return mx.sym.LinearRegressionOutput(data=net, name="lr")


def test_linear_regression_reaches_least_squares():
    X, y = diabetes()
    mx.random.seed(0)
    model = mx.model.FeedForward.create(linear_net(), X=X, y=y, num_epoch=40, learning_rate=0.05,
                                        numpy_batch_size=32, eval_metric="rmse")
    rmse = np.sqrt(np.mean((model.predict(X).ravel() - y) ** 2))
    A = np.hstack([X, np.ones((len(X), 1), np.float32)])
    best = np.sqrt(np.mean((A @ np.linalg.lstsq(A, y, rcond=None)[0] - y) ** 2))
    assert rmse <= 1.05 * best
    assert model.arg_params["fc1_weight"].shape == (1, 10)


def test_sframe_input_with_label_column_and_logistic_output():
    X, y = diabetes()
    sf = fs.SFrame({f"x{i}": X[:, i] for i in range(10)})
    sf["expensive"] = (y > 0).astype(np.float32)
    net = mx.sym.FullyConnected(data=mx.sym.Variable("data"), name="fc1", num_hidden=1)
    net = mx.sym.LogisticRegressionOutput(data=net, name="lr")

    def binary_acc(label, pred):
        return float(((pred.ravel() > 0.5) == label.ravel()).mean())

    mx.random.seed(1)
    model = mx.model.FeedForward.create(net, X=sf, y="expensive", num_epoch=20, learning_rate=0.1,
                                        numpy_batch_size=50, eval_metric=mx.metric.np(binary_acc))
    probs = model.predict(sf).ravel()
    assert probs.shape == (len(sf),)
    assert ((probs > 0.5) == (y > 0)).mean() > 0.7


def small_cnn(dropout=False):
    data = mx.sym.Variable("data")
    net = mx.sym.Convolution(data=data, name="conv1", num_filter=4, kernel=(3, 3))
    net = mx.sym.Activation(data=net, act_type="relu")
    net = mx.sym.Pooling(data=net, kernel=(2, 2), stride=(2, 2), pool_type="max")
    net = mx.sym.Flatten(data=net)
    if dropout:
        net = mx.sym.Dropout(data=net, p=0.3)
    net = mx.sym.FullyConnected(data=net, name="fc1", num_hidden=16)
    net = mx.sym.Activation(data=net, act_type="tanh", name="tanh1")
    net = mx.sym.FullyConnected(data=net, name="fc2", num_hidden=10)
    return mx.sym.SoftmaxOutput(data=net, name="softmax")


def digits(n=300):
    from sklearn.datasets import load_digits

    d = load_digits()
    return (d.images[:n, None] / 16.0).astype(np.float32), d.target[:n].astype(np.float32)


def test_two_devices_train_like_one():
    X, y = digits(200)
    results = []
    for ctx in ([mx.cpu(0)], [mx.cpu(0), mx.cpu(1)]):
        mx.random.seed(3)
        it = mx.io.NDArrayIter(X, y, batch_size=20, shuffle=False)
        model = mx.model.FeedForward.create(small_cnn(), X=it, ctx=ctx, num_epoch=2, learning_rate=0.1,
                                            momentum=0.9, initializer=mx.init.Xavier())
        results.append(model.arg_params)
    for name in results[0]:
        np.testing.assert_allclose(results[1][name].asnumpy(), results[0][name].asnumpy(), rtol=1e-4,
                                   atol=1e-5, err_msg=name)


def test_predict_trims_padding_score_and_return_data():
    X, y = digits(95)
    mx.random.seed(4)
    model = mx.model.FeedForward.create(small_cnn(), X=X, y=y, num_epoch=3, learning_rate=0.1,
                                        numpy_batch_size=20)
    probs = model.predict(X)
    assert probs.shape == (95, 10)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
    it = mx.io.NDArrayIter(X, y, batch_size=20, label_name="softmax_label")
    out, data, label = model.predict(it, return_data=True)
    np.testing.assert_array_equal(data, X)
    np.testing.assert_array_equal(label, y)
    np.testing.assert_allclose(out, probs, rtol=1e-6)
    assert model.predict(it, num_batch=2).shape == (40, 10)
    acc = model.score(mx.io.NDArrayIter(X, y, batch_size=19))
    assert acc == pytest.approx((probs.argmax(1) == y).mean())


def test_save_load_and_feature_extraction(tmp_path):
    X, y = digits(100)
    mx.random.seed(5)
    model = mx.model.FeedForward.create(small_cnn(), X=X, y=y, num_epoch=2, learning_rate=0.1)
    model.save(str(tmp_path / "cnn"))
    assert (tmp_path / "cnn-0002.params").exists()
    again = mx.model.FeedForward.load(str(tmp_path / "cnn"), 2)
    np.testing.assert_allclose(again.predict(X), model.predict(X), rtol=1e-6)
    features = mx.model.extract_features(model, X)
    assert features.shape == (100, 16)  # the tanh before the classifier
    named = mx.model.extract_features(model, X, top_layer="fc1_output")
    assert named.shape == (100, 16)
    with pytest.raises(LayerNotFoundError, match="'fc9_output' is not a layer.*candidates: softmax_output, "
                                                  "fc2_output, tanh1_output"):
        mx.model.extract_features(model, X, top_layer="fc9_output")
    feature = mx.model.get_feature_symbol(model)
    assert feature.list_outputs() == ["tanh1_output"]
    head = mx.sym.SoftmaxOutput(mx.sym.FullyConnected(feature, num_hidden=3, name="new_fc"), name="softmax")
    tuned = mx.model.finetune(symbol=head, model=model, X=X, y=y % 3, num_epoch=1, learning_rate=0.01)
    np.testing.assert_array_equal(tuned.arg_params["fc1_weight"].shape, (16, 36))
    assert tuned.predict(X).shape == (100, 3)


def test_errors_name_the_problem():
    X, y = digits(20)
    with pytest.raises(NNError, match="needs y"):
        mx.model.FeedForward.create(small_cnn(), X=X, num_epoch=1)
    with pytest.raises(NNError, match="X has 20 rows but y has 3"):
        mx.model.FeedForward.create(small_cnn(), X=X, y=y[:3], num_epoch=1)
    with pytest.raises(NNError, match="arg_params has bogus_weight"):
        mx.model.FeedForward(small_cnn(), num_epoch=1, arg_params={"bogus_weight": np.zeros(2)}).fit(X, y)


RESUME_SCRIPT = textwrap.dedent('''
    import sys
    import numpy as np
    from sklearn.datasets import load_digits
    from framestream import mx
    sys.path.insert(0, {root!r})
    from tests.nn.test_model import small_cnn
    d = load_digits()
    X, y = (d.images[:120, None] / 16.0).astype(np.float32), d.target[:120].astype(np.float32)
    prefix, mode = sys.argv[1], sys.argv[2]
    it = mx.io.NDArrayIter(X, y, batch_size=20, shuffle=True, seed=7)
    kwargs = dict(learning_rate=0.05, momentum=0.9, wd=1e-4)
    if mode == "first":
        mx.random.seed(11)
        mx.model.FeedForward.create(small_cnn(dropout=True), X=it, num_epoch=2, initializer=mx.init.Xavier(),
                                    epoch_end_callback=mx.callback.do_checkpoint(prefix), **kwargs)
    else:
        model = mx.model.FeedForward.load(prefix, 2, num_epoch=4, **kwargs)
        model.fit(it)
        model.save(prefix + "-resumed", 4)
''')


def test_resume_after_stopping_is_bit_for_bit(tmp_path):
    from pathlib import Path

    root = str(Path(__file__).resolve().parents[2])
    script = tmp_path / "resume.py"
    script.write_text(RESUME_SCRIPT.format(root=root))
    prefix = str(tmp_path / "run")
    for mode in ("first", "second"):
        subprocess.run([sys.executable, str(script), prefix, mode], check=True, cwd=root)
    assert (tmp_path / "run-0002.states").exists()
    X, y = digits(120)
    it = mx.io.NDArrayIter(X, y, batch_size=20, shuffle=True, seed=7)
    mx.random.seed(11)
    straight = mx.model.FeedForward.create(small_cnn(dropout=True), X=it, num_epoch=4,
                                           initializer=mx.init.Xavier(), learning_rate=0.05, momentum=0.9,
                                           wd=1e-4)
    _, resumed, _ = mx.model.load_checkpoint(prefix + "-resumed", 4)
    for name, value in straight.arg_params.items():
        np.testing.assert_array_equal(resumed[name].asnumpy(), value.asnumpy(), err_msg=name)
