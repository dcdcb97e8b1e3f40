"""Pinned, side-stream host-to-GPU batch staging: the values arrive, in order, and training
through it equals training with plain copies. GPU only; skips where CuPy sees no device."""

from __future__ import annotations

import numpy as np
import pytest

from framestream import mx

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(mx.num_gpus() == 0, reason="no CUDA device visible to CuPy")]


def test_each_staged_batch_arrives_whole_while_earlier_work_is_queued():
    import cupy as cp

    from framestream.nn._staging import DeviceStager

    stager = DeviceStager(mx.gpu(0))
    target = mx.nd.zeros((64, 3, 32, 32), mx.gpu(0))
    rng = np.random.default_rng(0)
    sums = []
    for _ in range(6):  # more batches than buffers: each buffer is reused while work is queued
        host = rng.random(target.shape, dtype=np.float32)
        stager.load(target, "data", host)
        sums.append((target.data * 2).sum())  # queued on the compute stream, after the copy
        np.testing.assert_array_equal(cp.asnumpy(target.data), host)
    assert all(np.isfinite(float(s)) for s in sums)


def test_training_with_staging_equals_plain_copies(monkeypatch):
    from framestream.nn import _executor_group

    data = np.random.default_rng(1).random((200, 10), dtype=np.float32)
    label = (data.sum(axis=1) > 5).astype(np.float32)
    net = mx.sym.SoftmaxOutput(mx.sym.FullyConnected(mx.sym.Variable("data"), num_hidden=2, name="fc"),
                               name="softmax")
    results = []
    for staged in (True, False):
        if not staged:  # every group made from here on copies plainly
            monkeypatch.setattr(_executor_group, "DeviceStager", lambda ctx: None)
        mx.random.seed(3)
        model = mx.model.FeedForward(net, ctx=mx.gpu(0), num_epoch=2, learning_rate=0.1, momentum=0.9)
        model.fit(mx.io.NDArrayIter(data, label, batch_size=20))
        results.append(model.arg_params["fc_weight"].asnumpy())
    np.testing.assert_allclose(results[0], results[1], rtol=1e-6, atol=1e-7)
