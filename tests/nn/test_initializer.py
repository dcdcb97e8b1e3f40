"""Initializers: MXNet's suffix rules, distributions with the right scale, Load and Mixed."""

from __future__ import annotations

import json

import numpy as np
import pytest

from framestream import mx
from framestream.errors import NNError


def fill(init, name, shape):
    arr = np.full(shape, np.nan, dtype=np.float32)
    init(name, arr)
    return arr


def test_suffix_rules():
    init = mx.init.Uniform(0.1)
    assert (fill(init, "fc1_bias", (4,)) == 0).all()
    assert (fill(init, "bn_gamma", (4,)) == 1).all()
    assert (fill(init, "bn_beta", (4,)) == 0).all()
    assert (fill(init, "bn_moving_mean", (4,)) == 0).all()
    assert (fill(init, "bn_moving_var", (4,)) == 1).all()
    w = fill(init, "fc1_weight", (200, 50))
    assert np.abs(w).max() <= 0.1 and w.std() == pytest.approx(0.1 / np.sqrt(3), rel=0.05)
    with pytest.raises(NNError, match="Unknown initialization pattern for mystery"):
        fill(init, "mystery", (2,))


@pytest.mark.parametrize("rnd_type, factor_type, magnitude", [
    ("uniform", "avg", 3), ("gaussian", "in", 2), ("gaussian", "out", 2.34), ("uniform", "in", 1)])
def test_xavier_scale(rnd_type, factor_type, magnitude):
    shape = (64, 32, 3, 3)
    w = fill(mx.init.Xavier(rnd_type, factor_type, magnitude), "conv_weight", shape)
    fan_in, fan_out = 32 * 9, 64 * 9
    fan = {"avg": (fan_in + fan_out) / 2, "in": fan_in, "out": fan_out}[factor_type]
    scale = np.sqrt(magnitude / fan)
    expected_std = scale / np.sqrt(3) if rnd_type == "uniform" else scale
    assert w.std() == pytest.approx(expected_std, rel=0.05)
    if rnd_type == "uniform":
        assert np.abs(w).max() <= scale


def test_msra_normal_constant_and_seed():
    w = fill(mx.init.MSRAPrelu(factor_type="in", slope=0.0), "c_weight", (128, 64, 3, 3))
    assert w.std() == pytest.approx(np.sqrt(2 / (64 * 9)), rel=0.05)
    assert fill(mx.init.Normal(0.5), "x_weight", (100, 100)).std() == pytest.approx(0.5, rel=0.05)
    assert (fill(mx.init.Constant(3.0), "anything", (3,)) == 3).all()
    assert (fill(mx.init.One(), "x_bias", (3,)) == 1).all() and (fill(mx.init.Zero(), "w", (2,)) == 0).all()
    mx.random.seed(11)
    a = fill(mx.init.Xavier(), "w_weight", (5, 5))
    mx.random.seed(11)
    assert (fill(mx.init.Xavier(), "w_weight", (5, 5)) == a).all()


def test_load_mixed_and_variable_init_attribute(tmp_path):
    mx.nd.save(tmp_path / "p.params", {"arg:fc_weight": mx.nd.ones((2, 3))})
    init = mx.init.Load(str(tmp_path / "p.params"), default_init=mx.init.Constant(5.0))
    assert (fill(init, "fc_weight", (2, 3)) == 1).all()
    assert (fill(init, "other_weight", (2,)) == 5).all()
    with pytest.raises(NNError, match=r"fc_weight has shape \(2, 3\) in the source, the model needs \(3, 2\)"):
        fill(init, "fc_weight", (3, 2))
    mixed = mx.init.Mixed(["fc.*", ".*"], [mx.init.Constant(2.0), mx.init.Zero()])
    assert (fill(mixed, "fc_weight", (2,)) == 2).all() and (fill(mixed, "conv_weight", (2,)) == 0).all()
    # a variable's init= travels as MXNet's __init__ attribute and wins over the global rule
    v = mx.sym.Variable("v_weight", init=mx.init.Constant(4.0))
    attrs = v.list_attr()
    assert json.loads(attrs["__init__"]) == ["constant", {"value": 4.0}]
    desc = mx.init.InitDesc("v_weight", attrs)
    assert (fill(mx.init.Uniform(), desc, (3,)) == 4).all()
