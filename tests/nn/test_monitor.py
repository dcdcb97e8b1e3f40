"""Monitor on a real executor: which tensors it reports, when, their statistics, and order."""

from __future__ import annotations

import doctest
import logging

import numpy as np
import pytest

from framestream import mx
from framestream.nn import monitor as monitor_module


def bound(ctx, batch=4):
    net = mx.sym.FullyConnected(data=mx.sym.Variable("data"), num_hidden=3, name="fc")
    net = mx.sym.BatchNorm(data=net, name="bn", fix_gamma=False)
    net = mx.sym.SoftmaxOutput(data=net, name="softmax")
    exe = net.simple_bind(ctx, data=(batch, 5))
    rng = np.random.default_rng(0)
    for array in exe.arg_dict.values():
        array[:] = rng.standard_normal(array.shape).astype(np.float32)
    exe.arg_dict["softmax_label"][:] = np.array([0, 1, 2, 1], np.float32)
    exe.aux_dict["bn_moving_var"][:] = np.ones(3, np.float32)
    return exe


def step(mon, exe):
    mon.tic()
    exe.forward(is_train=True)
    exe.backward()
    return mon.toc()


def rms(array):
    values = np.asarray(array, dtype=np.float64)
    return np.linalg.norm(values) / np.sqrt(values.size)


def test_doctests():
    assert doctest.testmod(monitor_module).failed == 0


def test_reports_outputs_gradients_weights_and_aux_every_interval(ctx):
    exe = bound(ctx)
    mon = mx.mon.Monitor(2)
    mon.install(exe)
    first = step(mon, exe)
    expected = {name: rms(array.asnumpy()) for name, array in [
        ("fc_weight", exe.arg_dict["fc_weight"]), ("fc_weight_grad", exe.grad_dict["fc_weight"]),
        ("softmax_output", exe.outputs[0]), ("bn_moving_var", exe.aux_dict["bn_moving_var"])]}
    assert step(mon, exe) == []  # step 2 is not monitored with interval 2
    third = step(mon, exe)
    names = [name for _, name, _ in first]
    assert names == [
        "fc_output", "bn_output", "softmax_output",
        "data_grad", "fc_weight_grad", "fc_bias_grad", "bn_gamma_grad", "bn_beta_grad",
        "softmax_label_grad",
        "data", "fc_weight", "fc_bias", "bn_gamma", "bn_beta", "softmax_label",
        "bn_moving_mean", "bn_moving_var",
    ]
    assert {s for s, _, _ in first} == {1} and {s for s, _, _ in third} == {3}
    values = {name: value for _, name, value in first}
    assert all(v.endswith("\t") for v in values.values())
    for name, value in expected.items():
        assert float(values[name]) == pytest.approx(value, rel=1e-5), name


def test_pattern_sort_custom_stat_and_several_executors(ctx):
    exes = [bound(ctx), bound(ctx)]
    mon = mx.Monitor(1, stat_func=lambda x: [x.reshape((-1,))[:1], mx.nd.array(np.zeros(2))],
                     pattern=".*weight.*", sort=True)
    for exe in exes:
        mon.install(exe)
    mon.tic()
    for exe in exes:
        exe.forward(is_train=True)
        exe.backward()
    result = mon.toc()
    assert [name for _, name, _ in result] == ["fc_weight"] * 2 + ["fc_weight_grad"] * 2
    first = exes[0].arg_dict["fc_weight"].asnumpy().reshape(-1)[0]
    assert result[0][2] == f"{first!s}\t[0. 0.]\t"


def test_toc_print_logs_and_inactive_forward_is_ignored(caplog):
    exe = bound(mx.cpu())
    mon = mx.Monitor(1, pattern="softmax_output")
    mon.install(exe)
    exe.forward()  # no tic: nothing is recorded
    assert mon.queue == [] and mon.toc() == []
    mon.tic()
    exe.forward(is_train=True)
    with caplog.at_level(logging.INFO, logger="framestream.nn"):
        mon.toc_print()
    (record,) = caplog.records
    assert record.getMessage().startswith("Batch:       1 softmax_output" + " " * 16)


def test_interval_must_be_positive():
    with pytest.raises(ValueError, match="interval"):
        mx.Monitor(0)
