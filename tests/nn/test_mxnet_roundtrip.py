"""Checkpoints written BY framestream, run in Apache MXNet 1.9.1: same outputs, same shapes.

``scripts/mxnet_oracle/write_framestream_models.py`` wrote the checkpoints in
``tests/nn/data/roundtrip/`` with framestream (the user guide's CNN, a graph mixing many
operators, and a GraphLab-era LeNet re-saved as MXNet 1.x JSON);
``check_framestream_models.py`` loaded them in MXNet 1.9.1 and kept its outputs and
inferred shapes in ``mxnet_outputs.npz``. Here framestream loads the same files and must
reproduce MXNet, and re-serialising a loaded symbol must give the file back unchanged.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from framestream import mx

DATA = Path(__file__).parent / "data" / "roundtrip"
MODELS = ["guide_cnn", "mixed_ops", "legacy_lenet", "trained_cnn"]  # trained_cnn: trained by FeedForward
EPOCH = 0


@pytest.fixture(scope="module")
def inputs():
    return np.load(DATA / "inputs.npz")


@pytest.fixture(scope="module")
def mxnet_out():
    return np.load(DATA / "mxnet_outputs.npz")


def model_inputs(inputs, name: str) -> dict[str, np.ndarray]:
    prefix = f"{name}.in."
    return {k[len(prefix):]: inputs[k] for k in inputs.files if k.startswith(prefix)}


@pytest.mark.parametrize("name", MODELS)
def test_forward_matches_mxnet(name, inputs, mxnet_out):
    symbol, arg_params, aux_params = mx.model.load_checkpoint(str(DATA / name), EPOCH)
    feed = model_inputs(inputs, name)
    exe = symbol.simple_bind(mx.cpu(), grad_req="null", **{k: v.shape for k, v in feed.items()})
    exe.copy_params_from(arg_params, aux_params)
    outs = exe.forward(is_train=False, **feed)
    expected = [k[len(f"{name}.out."):] for k in mxnet_out.files if k.startswith(f"{name}.out.")]
    assert sorted(symbol.list_outputs()) == sorted(expected)
    for out_name, out in zip(symbol.list_outputs(), outs):
        got, want = out.asnumpy(), mxnet_out[f"{name}.out.{out_name}"]
        assert got.shape == tuple(mxnet_out[f"{name}.shape.{out_name}"]), out_name
        scale = max(float(np.abs(want).max()), 1.0)
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5 * scale, err_msg=f"{name} {out_name}")


@pytest.mark.parametrize("name", ["mixed_ops", "trained_cnn"])
def test_every_layer_matches_mxnet(name, inputs, mxnet_out):
    """Every operator output, so a failure names the first layer off (the trained CNN's
    probabilities saturate, so its logits are what shows the weights agree)."""
    symbol, arg_params, aux_params = mx.model.load_checkpoint(str(DATA / name), EPOCH)
    feed = model_inputs(inputs, name)
    exe = symbol.simple_bind(mx.cpu(), grad_req="null", **{k: v.shape for k, v in feed.items()})
    exe.copy_params_from(arg_params, aux_params)
    ours: dict[str, np.ndarray] = {}
    exe.set_monitor_callback(lambda out_name, arr: ours.__setitem__(out_name, arr.asnumpy().copy()))
    exe.forward(is_train=False, **feed)
    ops = {n["name"]: n["op"] for n in json.loads(symbol.tojson())["nodes"]}
    order = json.loads(mxnet_out[f"{name}.internal_order"].item())
    assert set(order) <= set(ours), sorted(set(order) - set(ours))
    off = []
    for out_name in order:
        got, want = ours[out_name], mxnet_out[f"{name}.internal.{out_name}"]
        scale = max(float(np.abs(want).max()), 1.0)
        diff = float(np.abs(got - want).max()) if got.shape == want.shape else np.inf
        if not np.allclose(got, want, rtol=1e-4, atol=1e-5 * scale):
            node = out_name.rsplit("_output", 1)[0]
            off.append(f"{out_name} ({ops.get(node, '?')} {symbol.get_internals()[out_name].list_attr()}): "
                       f"max|diff| {diff:.3g}")
    assert not off, "first layer that differs from MXNet: " + off[0] + f"; {len(off)} layers off in all"


@pytest.mark.parametrize("name", MODELS)
def test_every_internal_shape_matches_mxnet(name, inputs, mxnet_out):
    symbol = mx.sym.load(str(DATA / f"{name}-symbol.json"))
    internals = symbol.get_internals()
    shapes = {k: v.shape for k, v in model_inputs(inputs, name).items()}
    _, out_shapes, _ = internals.infer_shape(**shapes)
    ours = {n: list(s) for n, s in zip(internals.list_outputs(), out_shapes)}
    assert ours == json.loads(mxnet_out[f"{name}.internal_shapes"].item())


@pytest.mark.parametrize("name", MODELS)
def test_reserialising_gives_the_same_json(name):
    text = (DATA / f"{name}-symbol.json").read_text()
    assert mx.sym.load(str(DATA / f"{name}-symbol.json")).tojson() == text
    assert mx.sym.load_json(text).tojson() == text


def test_legacy_source_resaves_as_the_checkpoint_with_graphlab_pooling(mxnet_out):
    source = DATA / "legacy_lenet_source-symbol.json"
    raw = json.loads(source.read_text())
    assert "mxnet_version" not in raw.get("attrs", {})
    assert all("pooling_convention" not in n["param"] for n in raw["nodes"] if n["op"] == "Pooling")
    assert mx.sym.load(str(source)).tojson() == (DATA / "legacy_lenet-symbol.json").read_text()
    # MXNet, given the re-saved file, sizes the poolings as the GraphLab era did (ceil);
    # its own upgrade of the legacy file would not (floor), and fc1's weights would not fit.
    resaved = json.loads(mxnet_out["legacy_lenet.internal_shapes"].item())
    upgraded = json.loads(mxnet_out["legacy_lenet_source.internal_shapes"].item())
    assert resaved["pool1_output"] == [4, 20, 12, 12] and resaved["flatten_output"] == [4, 800]
    assert upgraded["pool1_output"] == [4, 20, 11, 11] and upgraded["flatten_output"] == [4, 450]
