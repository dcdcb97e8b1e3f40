"""Apache MXNet 1.9.1's own files and numbers: framestream must reproduce them.

LeNet in both file generations (1.x JSON + V2 params; GraphLab-era JSON + legacy
records): probabilities, the penultimate layer, one backward pass and one SGD step.
The user guide's CNN with BatchNorm: training and inference forward and every gradient.
"""

from __future__ import annotations

import numpy as np
import pytest

from framestream import mx
from tests.nn.conftest import MXNET_FIXTURES as FIX

LENET = ["lenet_digits", "lenet_digits_legacy"]


def bind_checkpoint(prefix: str, epoch: int, batch: int, ctx, grad_req: str = "null"):
    symbol, arg_params, aux_params = mx.model.load_checkpoint(str(FIX / prefix), epoch)
    exe = symbol.simple_bind(ctx, grad_req=grad_req, data=(batch, 1, 28, 28))
    exe.copy_params_from(arg_params, aux_params)
    return symbol, exe, arg_params


@pytest.fixture(scope="module")
def digits():
    return np.load(FIX / "digits28_val.npz")


@pytest.fixture(scope="module")
def lenet_expected():
    return np.load(FIX / "lenet_digits_expected.npz")


@pytest.mark.parametrize("prefix", LENET)
def test_lenet_reproduces_probabilities_and_features(prefix, digits, lenet_expected, ctx):
    symbol, exe, _ = bind_checkpoint(prefix, 1, len(digits["X"]), ctx)
    probs = exe.forward(is_train=False, data=digits["X"])[0].asnumpy()
    np.testing.assert_allclose(probs, lenet_expected["probs"], rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(probs.argmax(axis=1), lenet_expected["argmax"])

    features = symbol.get_internals()["tanh3_output"]
    fexe = features.simple_bind(ctx, grad_req="null", data=digits["X"].shape)
    fexe.copy_params_from(exe.arg_dict, allow_extra_params=True)
    out = fexe.forward(data=digits["X"])[0].asnumpy()
    np.testing.assert_allclose(out, lenet_expected["tanh3_output"], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("prefix", LENET)
def test_lenet_gradients_and_one_sgd_step(prefix, digits, lenet_expected, ctx):
    symbol, exe, arg_params = bind_checkpoint(prefix, 1, 32, ctx, grad_req="write")
    exe.forward(is_train=True, data=digits["X"][:32], softmax_label=digits["y"][:32])
    exe.backward()
    params = [n for n in symbol.list_arguments() if n not in ("data", "softmax_label")]
    assert params == ["conv1_weight", "conv1_bias", "conv2_weight", "conv2_bias",
                      "fc1_weight", "fc1_bias", "fc2_weight", "fc2_bias"]
    for name in params:
        grad = exe.grad_dict[name].asnumpy()
        want = lenet_expected[f"grad:{name}"]
        scale = np.abs(want).max()
        np.testing.assert_allclose(grad, want, rtol=1e-5, atol=1e-5 * scale, err_msg=name)
        stepped = arg_params[name].asnumpy() - 0.1 * (grad / 32)
        np.testing.assert_allclose(stepped, lenet_expected[f"after_sgd:{name}"], rtol=1e-5, atol=1e-6,
                                   err_msg=name)


def test_both_generations_load_to_the_same_graph():
    new, legacy = (mx.sym.load(str(FIX / f"{p}-symbol.json")) for p in LENET)
    assert new.list_arguments() == legacy.list_arguments()
    assert new.list_outputs() == legacy.list_outputs() == ["softmax_output"]
    assert new.infer_shape(data=(5, 1, 28, 28)) == legacy.infer_shape(data=(5, 1, 28, 28))


@pytest.fixture(scope="module")
def seed_cnn():
    return np.load(FIX / "seed_cnn_expected.npz")


def test_seed_cnn_training_forward_gradients_and_inference(seed_cnn, ctx):
    symbol, exe, _ = bind_checkpoint("seed_cnn", 0, 64, ctx, grad_req="write")
    assert symbol.list_auxiliary_states() == ["bn1_moving_mean", "bn1_moving_var",
                                              "bn2_moving_mean", "bn2_moving_var"]
    moving = {k: v.asnumpy().copy() for k, v in exe.aux_dict.items()}
    probs = exe.forward(is_train=True, data=seed_cnn["data"], softmax_label=seed_cnn["label"])[0]
    np.testing.assert_allclose(probs.asnumpy(), seed_cnn["train_probs"], rtol=1e-4, atol=1e-5)
    for name, value in moving.items():  # MXNet 1.x updates moving statistics in backward, not forward
        np.testing.assert_array_equal(exe.aux_dict[name].asnumpy(), value)
    exe.backward()
    for key in seed_cnn.files:
        if key.startswith("grad:"):
            name = key[5:]
            want = seed_cnn[key]
            # A bias feeding BatchNorm has an exact gradient of zero; MXNet's float32 BatchNorm
            # backward leaves about 2e-5 of the layer's weight-gradient scale there. So the
            # tolerance is set by the layer's weight gradient, not by the noise itself.
            layer = name.rsplit("_", 1)[0]
            weight = seed_cnn.get(f"grad:{layer}_weight", want)
            scale = max(np.abs(weight).max(), np.abs(want).max())
            np.testing.assert_allclose(exe.grad_dict[name].asnumpy(), want, rtol=1e-4, atol=1e-4 * scale,
                                       err_msg=name)
    assert not np.allclose(exe.aux_dict["bn1_moving_mean"].asnumpy(), moving["bn1_moving_mean"])
    # Inference runs on the moving statistics as updated by that backward pass.
    infer = exe.forward(is_train=False, data=seed_cnn["data"])[0].asnumpy()
    np.testing.assert_allclose(infer, seed_cnn["infer_probs"], rtol=1e-4, atol=1e-5)
