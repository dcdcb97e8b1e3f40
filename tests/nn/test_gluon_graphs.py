"""Real ImageNet CNN graphs, exported from Gluon or imported from ONNX by Apache MXNet 1.9.1.

``scripts/mxnet_oracle/make_gluon_fixtures.py`` built Gluon model-zoo networks
(``pretrained=False``; there is no network here for real weights), hybridized and
``export()``ed them, sent some through ``mx.onnx.export_model`` and
``mx.contrib.onnx.import_model``, and ran every symbol in MXNet with weights from
``scripts/mxnet_oracle/deterministic_weights.py``: a rule computing each parameter from
its name and shape. ``tests/nn/data/gluon/`` keeps the symbols, the two input images,
MXNet's outputs and a manifest, but no params: the same rule rebuilds the weights here.

framestream must load each symbol as it is, infer every internal shape as MXNet did, and
reproduce MXNet's outputs; a Gluon network saved as an ImageClassifier must predict as
MXNet computes. The bigger networks are marked slow.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

import framestream as fs
from framestream import mx

DATA = Path(__file__).parent / "data" / "gluon"
RULE = Path(__file__).resolve().parents[2] / "scripts" / "mxnet_oracle" / "deterministic_weights.py"
MANIFEST = json.loads((DATA / "manifest.json").read_text())
ENTRIES = {entry["name"]: entry for entry in MANIFEST["models"]}
SLOW = {"inceptionv3", "alexnet", "vgg11_bn"}  # 3 to 10 s each on 2 cores
RTOL, ATOL = 1e-4, 1e-5


def _rule():
    """``deterministic_weights`` from scripts/mxnet_oracle: the one copy both venvs use."""
    spec = importlib.util.spec_from_file_location("deterministic_weights", RULE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


weights = _rule()


def _cases(names):
    return [pytest.param(n, marks=pytest.mark.slow) if ENTRIES[n]["gluon_model"] in SLOW else n
            for n in names]


@pytest.fixture(scope="module")
def oracle():
    return np.load(DATA / "mxnet_outputs.npz")


def images(oracle, entry) -> np.ndarray:
    """The (2, S, S, 3) uint8 images a model of input size S reads."""
    size = entry["input_shape"][2]
    return oracle[MANIFEST["images"]["key"]][:, :size, :size]


def network_input(oracle, entry) -> np.ndarray:
    """What MXNet was fed: (pixels - mean_rgb) * scale, NCHW float32."""
    chw = images(oracle, entry).transpose(0, 3, 1, 2).astype(np.float32)
    mean = np.asarray(MANIFEST["mean_rgb"], dtype=np.float32).reshape(1, 3, 1, 1)
    return (chw - mean) * np.float32(MANIFEST["scale"])


def rule_params(symbol, entry):
    """The rule's (arg_params, aux_params) for the symbol, checked against MXNet's digest."""
    shape = tuple(entry["input_shape"])
    arg_shapes, _, aux_shapes = symbol.infer_shape(**{entry["data_name"]: shape})
    args = {n: s for n, s in zip(symbol.list_arguments(), arg_shapes) if n != entry["data_name"]}
    aux = dict(zip(symbol.list_auxiliary_states(), aux_shapes))
    values = weights.parameters({**args, **aux})
    assert weights.digest(values) == entry["weights_sha256"], (
        "the weight rule gives other values here than in MXNet's venv (numpy's generator changed?)")
    return ({n: mx.nd.array(values[n]) for n in args}, {n: mx.nd.array(values[n]) for n in aux})


def load(entry):
    return mx.sym.load(str(DATA / entry["symbol"]))


def first_layer_off(symbol, entry, arg_params, aux_params, data, stats: dict) -> str:
    """The first internal output whose shape, sum or sum of |x| is not MXNet's (the oracle keeps
    only those statistics per layer); run only when an output differs."""
    exe = symbol.simple_bind(mx.cpu(), grad_req="null", **{entry["data_name"]: data.shape})
    exe.copy_params_from(arg_params, aux_params)
    ours: dict[str, np.ndarray] = {}
    exe.set_monitor_callback(
        lambda name, arr: ours.__setitem__(name, arr.asnumpy().astype(np.float64)))
    exe.forward(is_train=False, **{entry["data_name"]: data})
    ops = {n["name"]: (n["op"], n.get("attrs", {})) for n in json.loads(symbol.tojson())["nodes"]}
    for name, (shape, total, total_abs) in stats.items():
        node = ops.get(name.rsplit("_output", 1)[0], "?")
        got = ours.get(name)
        if got is None:
            return f"{name} {node}: framestream computed no such output"
        if list(got.shape) != shape:
            return f"{name} {node}: shape {list(got.shape)}, MXNet {shape}"
        s, a = float(got.sum()), float(np.abs(got).sum())
        tol = 1e-5 * total_abs + 1e-6  # agreeing layers differ by < 1e-6 of sum|x|
        if abs(a - total_abs) > tol or abs(s - total) > tol:
            return (f"{name} {node}: sum {s:.6g} (MXNet {total:.6g}), sum|x| {a:.6g} "
                    f"(MXNet {total_abs:.6g})")
    return "no internal output differs in shape, sum or sum|x|"


@pytest.mark.parametrize("name", _cases(ENTRIES))
def test_forward_matches_mxnet(name, oracle):
    entry = ENTRIES[name]
    symbol = load(entry)
    assert symbol.list_outputs() == entry["output_names"]
    arg_params, aux_params = rule_params(symbol, entry)
    data = network_input(oracle, entry)
    exe = symbol.simple_bind(mx.cpu(), grad_req="null", **{entry["data_name"]: data.shape})
    exe.copy_params_from(arg_params, aux_params)
    outs = exe.forward(is_train=False, **{entry["data_name"]: data})
    for out_name, out, shape in zip(entry["output_names"], outs, entry["output_shapes"]):
        got, want = out.asnumpy(), oracle[f"{name}.out.{out_name}"]
        assert list(got.shape) == shape
        scale = max(float(np.abs(want).max()), 1.0)
        if not np.allclose(got, want, rtol=RTOL, atol=ATOL * scale):
            stats = json.loads(oracle[f"{name}.internal_stats"].item())
            where = first_layer_off(symbol, entry, arg_params, aux_params, data, stats)
            pytest.fail(f"{name} {out_name}: max|diff| {np.abs(got - want).max():.3g} "
                        f"(max|out| {scale:.3g}); first layer off: {where}")


@pytest.mark.parametrize("name", list(ENTRIES))
def test_every_internal_shape_matches_mxnet(name, oracle):
    entry = ENTRIES[name]
    internals = load(entry).get_internals()
    _, shapes, _ = internals.infer_shape(**{entry["data_name"]: tuple(entry["input_shape"])})
    ours = dict(zip(internals.list_outputs(), (list(s) for s in shapes)))
    stats = json.loads(oracle[f"{name}.internal_stats"].item())
    assert {k: ours.get(k) for k in stats} == {k: v[0] for k, v in stats.items()}


def _graph(text: str) -> dict:
    """What defines the graph: nodes (op, name, attributes, input edges), heads, arg_nodes.

    framestream's JSON differs from MXNet's own in two bookkeeping fields MXNet recomputes
    on load: node_row_ptr counts one output per node (MXNet also counts hidden ones, such as
    BatchNorm's mean and variance), and edges to aux states carry version 0 (MXNet: 1).
    """
    g = json.loads(text)
    return {"nodes": [(n["op"], n["name"], n.get("attrs", {}), [e[:2] for e in n["inputs"]])
                      for n in g["nodes"]],
            "heads": [h[:2] for h in g["heads"]], "arg_nodes": g["arg_nodes"]}


@pytest.mark.parametrize("name", list(ENTRIES))
def test_reserialising_keeps_the_graph(name):
    text = (DATA / ENTRIES[name]["symbol"]).read_text()
    assert _graph(load(ENTRIES[name]).tojson()) == _graph(text)


def test_onnx_outcome_is_recorded():
    """The ONNX graphs are there, or the manifest says why not."""
    onnx = [e for e in ENTRIES.values() if e["source"] == "onnx"]
    failed = {f["model"] for f in MANIFEST["onnx_failures"]}
    assert onnx or failed
    assert all(e["rule_params_vs_source_max_rel"] < 1e-5 for e in onnx)  # same network in MXNet


def test_gluon_network_as_image_classifier(tmp_path, oracle):
    """mobilenet0.25 with a softmax on top, saved with save_model and loaded by name:
    predict_topk's scores are MXNet's softmax'd outputs for the same images."""
    entry = ENTRIES["mobilenet0.25"]
    symbol = load(entry)
    arg_params, aux_params = rule_params(symbol, entry)
    net = mx.model.FeedForward(mx.sym.softmax(symbol, name="prob"), arg_params=arg_params,
                               aux_params=aux_params)
    labels = [f"class_{i:04d}" for i in range(entry["output_shapes"][0][1])]
    size = entry["input_shape"][2]
    store = tmp_path / "models"
    mx.pretrained_model.save_model(store / "gluon_mobilenet", net, labels=labels,
                                   input_shape=(size, size, 3), mean_rgb=MANIFEST["mean_rgb"],
                                   scale=MANIFEST["scale"], data_name=entry["data_name"])
    model = mx.pretrained_model.load_model("gluon_mobilenet", location=store)

    logits = oracle[f"mobilenet0.25.out.{entry['output_names'][0]}"].astype(np.float64)
    probs = np.exp(logits - logits.max(axis=1, keepdims=True))
    probs /= probs.sum(axis=1, keepdims=True)
    pictures = fs.SArray([fs.Image(np.ascontiguousarray(img)) for img in images(oracle, entry)])
    k = 5
    top = model.predict_topk(pictures, k=k).to_dataframe()
    assert top["row_id"].tolist() == [0] * k + [1] * k
    best = np.argsort(-probs, axis=1, kind="stable")[:, :k]
    assert top["label"].tolist() == [labels[i] for i in best.ravel()]
    np.testing.assert_allclose(top["score"].to_numpy(), np.take_along_axis(probs, best, 1).ravel(),
                               rtol=1e-4, atol=1e-7)
    vectors = np.array(list(model.predict(pictures, output_type="probability_vector")))
    np.testing.assert_allclose(vectors, probs, rtol=1e-4, atol=1e-7)
