"""Checkpoints: MXNet's prefix-symbol.json + prefix-%04d.params, both ways."""

from __future__ import annotations

import numpy as np
import pytest

from framestream import mx
from framestream.errors import NNError
from tests.nn.conftest import MXNET_FIXTURES


def test_save_and_load_checkpoint(tmp_path):
    net = mx.sym.FullyConnected(data=mx.sym.Variable("data"), num_hidden=3, name="fc")
    net = mx.sym.BatchNorm(data=net, name="bn")
    arg = {"fc_weight": mx.nd.array(np.random.rand(3, 4)), "fc_bias": mx.nd.zeros(3),
           "bn_gamma": mx.nd.ones(3), "bn_beta": mx.nd.zeros(3)}
    aux = {"bn_moving_mean": mx.nd.zeros(3), "bn_moving_var": mx.nd.ones(3)}
    prefix = str(tmp_path / "model")
    mx.model.save_checkpoint(prefix, 7, net, arg, aux)
    assert (tmp_path / "model-symbol.json").exists() and (tmp_path / "model-0007.params").exists()
    sym, arg2, aux2 = mx.model.load_checkpoint(prefix, 7)
    assert sym.tojson() == net.tojson()
    assert set(arg2) == set(arg) and set(aux2) == set(aux)
    np.testing.assert_array_equal(arg2["fc_weight"].asnumpy(), arg["fc_weight"].asnumpy())
    keys = set(mx.nd.load(f"{prefix}-0007.params"))
    assert "arg:fc_weight" in keys and "aux:bn_moving_var" in keys


def test_loads_mxnet_checkpoints_of_both_generations():
    for prefix in ("lenet_digits", "lenet_digits_legacy"):
        sym, arg, aux = mx.model.load_checkpoint(str(MXNET_FIXTURES / prefix), 1)
        assert arg["conv1_weight"].shape == (20, 1, 5, 5) and aux == {}
        assert sym.list_outputs() == ["softmax_output"]


def test_params_without_prefixes_are_not_checkpoints(tmp_path):
    mx.nd.save(tmp_path / "x-0001.params", {"w": mx.nd.ones(2)})
    (tmp_path / "x-symbol.json").write_text(mx.sym.Variable("w").tojson())
    with pytest.raises(NNError, match="key 'w' is neither 'arg:<name>' nor 'aux:<name>'"):
        mx.model.load_checkpoint(str(tmp_path / "x"), 1)
