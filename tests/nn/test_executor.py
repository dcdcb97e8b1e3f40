"""The executor: binding, grad_req, whole-graph gradients, reshape, monitor and its errors."""

from __future__ import annotations

import numpy as np
import pytest

from framestream import mx
from framestream.errors import MissingArgumentError, NNError, ShapeInferenceError


def cnn():
    data = mx.sym.Variable("data")
    net = mx.sym.Convolution(data=data, name="conv", kernel=(3, 3), num_filter=3, pad=(1, 1))
    net = mx.sym.BatchNorm(data=net, name="bn", fix_gamma=False)
    net = mx.sym.Activation(data=net, act_type="tanh", name="act")
    net = mx.sym.Pooling(data=net, kernel=(2, 2), stride=(2, 2), pool_type="avg", name="pool")
    skip = mx.sym.FullyConnected(data=net, num_hidden=4, name="fc_a")
    both = skip + mx.sym.FullyConnected(data=net, num_hidden=4, name="fc_b") * skip  # fan-out
    return mx.sym.SoftmaxOutput(data=both, name="softmax")


def random_bind(symbol, grad_req="write", dtype=np.float64, **shapes):
    rng = np.random.default_rng(0)
    arg_shapes, _, aux_shapes = symbol.infer_shape(**shapes)
    args = {n: mx.nd.array(rng.standard_normal(s) * 0.5, dtype=dtype)
            for n, s in zip(symbol.list_arguments(), arg_shapes)}
    if "softmax_label" in args:
        args["softmax_label"] = mx.nd.array(rng.integers(0, 4, arg_shapes[-1]), dtype=dtype)
    grads = {n: mx.nd.zeros(s, dtype=dtype) for n, s in zip(symbol.list_arguments(), arg_shapes)}
    aux = {n: mx.nd.ones(s, dtype=dtype) for n, s in zip(symbol.list_auxiliary_states(), aux_shapes)}
    return symbol.bind(mx.cpu(), args, grads, grad_req, aux)


def cross_entropy(exe):
    probs = exe.forward(is_train=True)[0].asnumpy()
    labels = exe.arg_dict["softmax_label"].asnumpy().astype(int)
    return -np.log(probs[np.arange(len(labels)), labels]).sum()


def test_whole_network_gradient_matches_finite_differences():
    exe = random_bind(cnn(), data=(2, 2, 4, 4))
    exe.forward(is_train=True)
    exe.backward()
    rng = np.random.default_rng(1)
    for name in ["data", "conv_weight", "bn_gamma", "bn_beta", "fc_a_weight", "fc_b_bias"]:
        value = exe.arg_dict[name]
        flat = value.data.reshape(-1)
        for j in rng.choice(flat.size, size=min(5, flat.size), replace=False):
            old = flat[j]
            flat[j] = old + 1e-6
            up = cross_entropy(exe)
            flat[j] = old - 1e-6
            down = cross_entropy(exe)
            flat[j] = old
            numeric = (up - down) / 2e-6
            assert exe.grad_dict[name].data.reshape(-1)[j] == pytest.approx(numeric, rel=1e-5, abs=1e-7), name


def test_grad_req_add_accumulates_and_null_skips():
    sym = cnn()
    exe = random_bind(sym, grad_req={"conv_weight": "add", "fc_a_weight": "write"}, data=(2, 2, 4, 4))
    assert set(exe.grad_dict) == {"conv_weight", "fc_a_weight"}
    exe.forward(is_train=True)
    exe.backward()
    once = exe.grad_dict["conv_weight"].asnumpy()
    fc_once = exe.grad_dict["fc_a_weight"].asnumpy()
    exe.forward(is_train=True)
    exe.backward()
    np.testing.assert_allclose(exe.grad_dict["conv_weight"].asnumpy(), 2 * once)
    np.testing.assert_allclose(exe.grad_dict["fc_a_weight"].asnumpy(), fc_once)


def test_simple_bind_allocates_float32_and_outputs_update_in_place():
    exe = cnn().simple_bind(mx.cpu(), data=(3, 2, 4, 4))
    assert exe.arg_dict["conv_weight"].shape == (3, 2, 3, 3)
    assert exe.arg_dict["conv_weight"].dtype == np.float32
    assert exe.aux_dict["bn_moving_var"].shape == (3,)
    assert exe.grad_dict["data"].shape == (3, 2, 4, 4)
    out = exe.outputs[0]
    exe.arg_dict["data"][:] = np.ones((3, 2, 4, 4))
    exe.forward(is_train=False)
    assert out.dtype == np.float32 and out.shape == (3, 4)
    np.testing.assert_allclose(out.asnumpy().sum(axis=1), 1.0, rtol=1e-6)
    assert exe.output_dict["softmax_output"] is out


def test_forward_kwargs_and_errors():
    exe = cnn().simple_bind(mx.cpu(), data=(3, 2, 4, 4))
    with pytest.raises(ShapeInferenceError, match=r"data has shape \(2, 2, 4, 4\), bound as \(3, 2, 4, 4\)"):
        exe.forward(data=np.zeros((2, 2, 4, 4)))
    with pytest.raises(MissingArgumentError, match="'dat' is not an argument"):
        exe.forward(dat=np.zeros((3, 2, 4, 4)))
    with pytest.raises(NNError, match=r"backward needs a forward pass first"):
        exe.backward()
    predictor = cnn().simple_bind(mx.cpu(), grad_req="null", data=(3, 2, 4, 4))
    predictor.forward(is_train=False)
    with pytest.raises(NNError, match=r"bound with gradients"):
        predictor.backward()


def test_bind_errors_name_the_argument():
    sym = mx.sym.FullyConnected(data=mx.sym.Variable("data"), num_hidden=2, name="fc")
    with pytest.raises(MissingArgumentError, match="no array given in args for 'fc_bias'"):
        sym.bind(mx.cpu(), {"data": mx.nd.zeros((1, 3)), "fc_weight": mx.nd.zeros((2, 3))})
    with pytest.raises(ShapeInferenceError, match=r"FullyConnected 'fc'.*weight should have shape \(2, 3\)"):
        sym.bind(mx.cpu(), [mx.nd.zeros((1, 3)), mx.nd.zeros((2, 4)), mx.nd.zeros((2,))])
    with pytest.raises(MissingArgumentError, match=r"cannot infer the shape of data, fc_weight"):
        sym.simple_bind(mx.cpu())
    with pytest.raises(NNError, match="grad_req for 'data' is 'wrte'"):
        sym.simple_bind(mx.cpu(), grad_req="wrte", data=(1, 3))


def test_bind_with_lists_and_backward_with_out_grads():
    sym = mx.sym.FullyConnected(data=mx.sym.Variable("data"), num_hidden=2, name="fc")
    x, w, b = np.arange(6.0).reshape(2, 3), np.ones((2, 3)), np.zeros(2)
    grads = [mx.nd.zeros((2, 3)), mx.nd.zeros((2, 3)), None]
    exe = sym.bind(mx.cpu(), [mx.nd.array(x), mx.nd.array(w), mx.nd.array(b)], grads)
    exe.forward(is_train=True)
    head = np.array([[1.0, 0.0], [0.0, 2.0]])
    exe.backward(mx.nd.array(head))
    np.testing.assert_allclose(exe.grad_dict["fc_weight"].asnumpy(), head.T @ x)
    np.testing.assert_allclose(exe.grad_dict["data"].asnumpy(), head @ w)
    assert exe.grad_arrays[2] is None


def test_copy_params_from_and_reshape_share_weights():
    exe = cnn().simple_bind(mx.cpu(), data=(3, 2, 4, 4))
    params = {"conv_weight": np.full((3, 2, 3, 3), 0.1), "unused": np.zeros(1)}
    with pytest.raises(NNError, match="'unused' is not an argument"):
        exe.copy_params_from(params)
    exe.copy_params_from(params, allow_extra_params=True)
    with pytest.raises(ShapeInferenceError, match=r"conv_weight has shape \(1,\)"):
        exe.copy_params_from({"conv_weight": np.zeros(1)})
    small = exe.reshape(data=(1, 2, 4, 4))
    assert small.arg_dict["conv_weight"] is exe.arg_dict["conv_weight"]
    assert small.arg_dict["data"].shape == (1, 2, 4, 4)
    assert small.forward()[0].shape == (1, 4)


def test_monitor_sees_every_output_and_inference_frees_intermediates():
    exe = cnn().simple_bind(mx.cpu(), grad_req="null", data=(1, 2, 4, 4))
    seen = []
    exe.set_monitor_callback(lambda name, arr: seen.append((name, arr.shape)))
    exe.forward(is_train=False)
    assert [n for n, _ in seen][:4] == ["conv_output", "bn_output", "act_output", "pool_output"]
    assert ("pool_output", (1, 3, 2, 2)) in seen
    assert exe._values == {}  # nothing kept after inference
    assert "pool" in exe.debug_str()


def test_dropout_is_repeatable_under_a_seed():
    sym = mx.sym.Dropout(data=mx.sym.Variable("data"), p=0.5)
    outs = []
    for _ in range(2):
        mx.random.seed(7)
        exe = sym.simple_bind(mx.cpu(), data=(4, 50))
        outs.append(exe.forward(is_train=True, data=np.ones((4, 50)))[0].asnumpy())
    np.testing.assert_array_equal(outs[0], outs[1])
    assert set(np.unique(outs[0])) == {0.0, 2.0}
