"""fit(cluster=...): synchronous data-parallel training on a real 2-worker Dask LocalCluster.

Two workers with batch b train as one process with batch 2b on the same rows (the workers
take turns batch by batch over that process's pass, shuffle and padding included); a rank-0
checkpoint resumes exactly; a worker lost mid-epoch fails the run at once with ClusterError.
The killing test comes last: it leaves the module's cluster with a restarted worker.
"""

from __future__ import annotations

import logging
import os
import time

import numpy as np
import pytest
from sklearn.datasets import load_digits

import framestream as fs
from framestream import mx
from framestream.errors import ClusterError, NNError
from framestream.nn.distributed import worker_rank

ROWS = 410  # 2 x 25 = 50 rows a step: 8 full steps and one padded with the first 40 rows
OPTIMIZER = {"learning_rate": 0.1, "momentum": 0.9, "wd": 1e-4}


@pytest.fixture(scope="module")
def cluster():
    from distributed import LocalCluster

    saved = dict(os.environ)  # the nannies set OMP_NUM_THREADS=1 & co. here: keep ours
    try:
        with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                          dashboard_address=None, silence_logs=logging.CRITICAL) as local:
            os.environ.clear()
            os.environ.update(saved)
            yield local
    finally:
        os.environ.clear()
        os.environ.update(saved)


@pytest.fixture(scope="module")
def digits(tmp_path_factory) -> str:
    """scikit-learn's digits: ``x`` (64 floats in 0-1), ``image`` (1x8x8) and ``y``, saved."""
    d = load_digits()
    pixels = (d.images[:ROWS] * 16).clip(0, 255).astype(np.uint8)
    sf = fs.SFrame({"x": (d.data[:ROWS] / 16.0).astype(np.float32), "y": d.target[:ROWS],
                    "image": [fs.Image(p[:, :, None]) for p in pixels]})
    path = str(tmp_path_factory.mktemp("data") / "digits.sframe")
    sf.save(path)
    return path


def mlp():
    net = mx.sym.FullyConnected(mx.sym.Variable("data"), num_hidden=32, name="fc1")
    net = mx.sym.Activation(net, act_type="relu", name="relu1")
    net = mx.sym.FullyConnected(net, num_hidden=10, name="fc2")
    return mx.sym.SoftmaxOutput(net, name="softmax")


def small_conv(batch_norm: bool = False):
    net = mx.sym.Convolution(mx.sym.Variable("data"), kernel=(3, 3), num_filter=8, name="conv1")
    if batch_norm:
        net = mx.sym.BatchNorm(net, name="bn1")
    net = mx.sym.Activation(net, act_type="tanh", name="act1")
    net = mx.sym.Pooling(net, kernel=(2, 2), stride=(2, 2), pool_type="max", name="pool1")
    net = mx.sym.FullyConnected(mx.sym.Flatten(net), num_hidden=10, name="fc1")
    return mx.sym.SoftmaxOutput(net, name="softmax")


def initial(symbol, shape) -> tuple[dict, dict]:
    mx.random.seed(0)
    model = mx.model.FeedForward(symbol, initializer=mx.init.Xavier())
    model._init_params({"data": shape, "softmax_label": (shape[0],)})
    return ({k: v.asnumpy() for k, v in model.arg_params.items()},
            {k: v.asnumpy() for k, v in model.aux_params.items()})


@pytest.fixture(autouse=True)
def one_blas_thread():
    """The nannies start their workers with one BLAS thread: so do the references, so that
    only the split of each batch between the workers changes the float sums."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        yield


def model_of(symbol, params, num_epoch=2, **kwargs):
    return mx.model.FeedForward(symbol, num_epoch=num_epoch, arg_params=params[0],
                                aux_params=params[1], **OPTIMIZER, **kwargs)


def mlp_iter(path, batch, **kwargs):
    return mx.io.SFrameIter(fs.SFrame(path), "x", "y", batch_size=batch, shuffle=True, seed=3,
                            **kwargs)


def image_iter(path, batch):
    return mx.io.SFrameImageIter(fs.SFrame(path), "image", "y", batch_size=batch, scale=1 / 16,
                                 shuffle=True, seed=5)


def assert_same_params(got, expected, rtol=1e-5):
    for name, value in expected.arg_params.items():
        ref = value.asnumpy()
        diff = np.abs(got.arg_params[name].asnumpy() - ref).max()
        assert diff <= rtol * np.abs(ref).max(), f"{name}: max difference {diff}"
    for name, value in (expected.aux_params or {}).items():
        np.testing.assert_allclose(got.aux_params[name].asnumpy(), value.asnumpy(), rtol=rtol,
                                   atol=1e-6, err_msg=name)


class RankLog:
    """A batch-end callback object: every rank records itself; rank 0's copy comes back."""

    def __init__(self):
        self.seen = []

    def __call__(self, param):
        self.seen.append((worker_rank(), param.epoch, param.nbatch))


def test_two_workers_of_batch_b_train_like_one_process_of_batch_2b(cluster, digits):
    params = initial(mlp(), (50, 64))
    reference_history = mx.callback.History()
    reference = model_of(mlp(), params).fit(
        mlp_iter(digits, 50), eval_data=mlp_iter(digits, 50, last_batch_handle="pad"),
        batch_end_callback=reference_history)

    history, ranks = mx.callback.History(), RankLog()
    trained = model_of(mlp(), params).fit(
        mlp_iter(digits, 25), eval_data=mlp_iter(digits, 25), cluster=cluster, num_workers=2,
        batch_end_callback=[history, ranks])

    assert_same_params(trained, reference)
    assert ranks.seen == [((0, 2), e, k) for e in (0, 1) for k in range(1, 10)]
    for got, expected in zip(history.epochs, reference_history.epochs, strict=True):
        # the metric is summed over the workers; rank 0's loss covers its half of the rows
        assert got["train"] == pytest.approx(expected["train"], abs=1e-6)
        assert got["eval"] == pytest.approx(expected["eval"], abs=1e-6)


def test_a_small_conv_net_on_images_matches_too(cluster, digits):
    params = initial(small_conv(), (40, 1, 8, 8))
    reference = model_of(small_conv(), params, num_epoch=1).fit(image_iter(digits, 40))
    two_devices = model_of(small_conv(), params, num_epoch=1, ctx=[mx.cpu(0), mx.cpu(1)]).fit(
        image_iter(digits, 40))
    trained = model_of(small_conv(), params, num_epoch=1).fit(image_iter(digits, 20),
                                                              cluster=cluster, num_workers=2)
    # max pooling amplifies float summation order: one process on one or on two contexts
    # differs by ~2e-5 after these 11 steps; the workers do the two contexts' arithmetic
    assert_same_params(trained, reference, rtol=1e-4)
    assert_same_params(trained, two_devices, rtol=1e-6)


def test_batch_norm_uses_per_worker_statistics_as_two_contexts_do(cluster, digits):
    net = small_conv(batch_norm=True)
    params = initial(net, (40, 1, 8, 8))
    two_devices = model_of(net, params, num_epoch=1, ctx=[mx.cpu(0), mx.cpu(1)]).fit(
        image_iter(digits, 40))
    trained = model_of(net, params, num_epoch=1).fit(image_iter(digits, 20), cluster=cluster,
                                                     num_workers=2)
    assert_same_params(trained, two_devices)


def test_resuming_from_rank_0s_checkpoint_continues_identically(cluster, digits, tmp_path):
    params = initial(mlp(), (50, 64))
    prefix = str(tmp_path / "mlp")
    whole = model_of(mlp(), params, num_epoch=2).fit(
        mlp_iter(digits, 25), cluster=cluster, num_workers=2,
        epoch_end_callback=mx.callback.do_checkpoint(prefix))
    assert sorted(os.listdir(tmp_path)) == ["mlp-0001.params", "mlp-0001.states",
                                            "mlp-0002.params", "mlp-0002.states",
                                            "mlp-symbol.json"]
    resumed = mx.model.FeedForward.load(prefix, 1, num_epoch=2, **OPTIMIZER)
    resumed.fit(mlp_iter(digits, 25), cluster=cluster, num_workers=2)
    for name, value in whole.arg_params.items():
        np.testing.assert_array_equal(resumed.arg_params[name].asnumpy(), value.asnumpy(), name)


class FailOnRank1:
    def __call__(self, param):
        if worker_rank() == (1, 2) and param.nbatch == 3:
            raise ValueError("rank 1 gives up at batch 3")


def test_a_worker_error_stops_every_rank_and_is_raised(cluster, digits):
    params = initial(mlp(), (50, 64))
    started = time.monotonic()
    with pytest.raises(ValueError, match="rank 1 gives up at batch 3"):
        model_of(mlp(), params).fit(mlp_iter(digits, 25), cluster=cluster, num_workers=2,
                                    batch_end_callback=FailOnRank1())
    assert time.monotonic() - started < 20


def test_data_the_workers_cannot_read_is_refused(cluster):
    x = np.zeros((10, 4), np.float32)
    with pytest.raises(NNError, match="X must be an SFrame"):
        model_of(mlp(), initial(mlp(), (10, 4))).fit(x, np.zeros(10), cluster=cluster)


class StallOnRank1:
    def __call__(self, param):
        if worker_rank() == (1, 2) and param.nbatch == 2:
            time.sleep(4)  # alive but silent: its sockets stay open


def test_a_silent_worker_fails_the_run_after_the_timeout(cluster, digits, monkeypatch):
    monkeypatch.setenv("FRAMESTREAM_ALLREDUCE_TIMEOUT", "1.5")
    params = initial(mlp(), (50, 64))
    started = time.monotonic()
    with pytest.raises(ClusterError, match="heard nothing from rank 1 .* for 1.5 s"):
        model_of(mlp(), params).fit(mlp_iter(digits, 25), cluster=cluster, num_workers=2,
                                    batch_end_callback=StallOnRank1())
    assert time.monotonic() - started < 15


class ExitOnRank1:
    def __call__(self, param):
        if worker_rank() == (1, 2) and param.epoch == 0 and param.nbatch == 4:
            os._exit(1)  # the worker process dies mid-epoch, as on a crash


def test_a_worker_lost_mid_epoch_fails_the_run_with_cluster_error(cluster, digits):
    params = initial(mlp(), (50, 64))
    started = time.monotonic()
    with pytest.raises(ClusterError, match="rank 1"):
        model_of(mlp(), params, num_epoch=50).fit(
            mlp_iter(digits, 25), cluster=cluster, num_workers=2,
            batch_end_callback=ExitOnRank1())
    assert time.monotonic() - started < 20
