"""The Symbol API: MXNet's names, attributes, composition, inference, JSON and summaries."""

from __future__ import annotations

import json

import numpy as np
import pytest

from framestream import mx
from framestream.errors import (
    MissingArgumentError,
    NNError,
    ShapeInferenceError,
    SymbolFileError,
    UnknownOperatorError,
)
from tests.nn.conftest import MXNET_FIXTURES


def small_net():
    """MXNet 1.9.1's own naming example (reference §2)."""
    with mx.name.NameManager():
        data = mx.sym.Variable("data")
        net = mx.sym.Convolution(data=data, name="conv1", kernel=(3, 3), num_filter=4)
        net = mx.sym.BatchNorm(data=net, name="bn1")
        net = mx.sym.Flatten(data=net)
        net = mx.sym.FullyConnected(data=net, num_hidden=3)
        return mx.sym.SoftmaxOutput(data=net, name="softmax")


def test_names_follow_mxnet():
    net = small_net()
    assert net.list_arguments() == ["data", "conv1_weight", "conv1_bias", "bn1_gamma", "bn1_beta",
                                    "fullyconnected0_weight", "fullyconnected0_bias", "softmax_label"]
    assert net.list_auxiliary_states() == ["bn1_moving_mean", "bn1_moving_var"]
    assert net.list_outputs() == ["softmax_output"]
    assert net.get_internals().list_outputs() == [
        "data", "conv1_weight", "conv1_bias", "conv1_output", "bn1_gamma", "bn1_beta",
        "bn1_moving_mean", "bn1_moving_var", "bn1_output", "flatten0_output",
        "fullyconnected0_weight", "fullyconnected0_bias", "fullyconnected0_output",
        "softmax_label", "softmax_output"]
    assert net.name == "softmax"


def test_counters_prefixes_and_label_names():
    with mx.name.NameManager():
        a = mx.sym.FullyConnected(data=mx.sym.Variable("x"), num_hidden=2)
        b = mx.sym.FullyConnected(data=a, num_hidden=2)
        lr = mx.sym.LinearRegressionOutput(data=b)
        assert (a.name, b.name) == ("fullyconnected0", "fullyconnected1")
        assert lr.list_arguments()[-1] == "linearregressionoutput0_label"
    with mx.name.Prefix("p_"):
        c = mx.sym.FullyConnected(data=mx.sym.Variable("x"), num_hidden=2, name="fc")
    assert c.list_arguments() == ["x", "p_fc_weight", "p_fc_bias"]


def test_slice_channel_outputs_and_indexing():
    parts = mx.sym.SliceChannel(data=mx.sym.Variable("x"), num_outputs=3, name="sl")
    assert parts.list_outputs() == ["sl_output0", "sl_output1", "sl_output2"]
    assert parts[1].list_outputs() == ["sl_output1"]
    assert parts["sl_output2"].list_outputs() == ["sl_output2"]
    with pytest.raises(KeyError, match="no output named 'sl_output9'"):
        parts["sl_output9"]
    with pytest.raises(NNError, match="has 3 outputs"):
        mx.sym.FullyConnected(data=parts, num_hidden=2)


def test_group_internals_and_feature_cut():
    net = small_net()
    feature = net.get_internals()["fullyconnected0_output"]
    assert feature.list_arguments() == net.list_arguments()[:-1]
    group = mx.sym.Group([feature, net])
    assert group.list_outputs() == ["fullyconnected0_output", "softmax_output"]
    _, out_shapes, _ = group.infer_shape(data=(2, 1, 6, 6))
    assert out_shapes == [(2, 3), (2, 3)]


def test_attributes_variables_scopes_and_auto_variables():
    w = mx.sym.Variable("w", lr_mult=2.0, wd_mult=0.0, shape=(3, 4))
    assert w.attr("lr_mult") == "2.0" and w.attr("__wd_mult__") == "0.0"
    with mx.AttrScope(ctx_group="dev1"):
        fc = mx.sym.FullyConnected(data=mx.sym.Variable("data"), weight=w, num_hidden=3, name="fc",
                                   attr={"lr_mult": "0.5"})
    attrs = fc.attr_dict()
    assert attrs["fc"]["ctx_group"] == "dev1" and attrs["fc"]["lr_mult"] == "0.5"
    assert attrs["fc_bias"]["lr_mult"] == "0.5"  # auto-created inputs inherit the node's attributes
    assert attrs["data"] == {"__ctx_group__": "dev1", "ctx_group": "dev1"}
    assert fc.list_attr(recursive=True)["w_lr_mult"] == "2.0"
    # a variable's __shape__ feeds shape inference
    arg_shapes, _, _ = fc.infer_shape(data=(5, 4))
    assert arg_shapes[1] == (3, 4)


def test_arithmetic_builds_mxnet_ops():
    a, b = mx.sym.Variable("a"), mx.sym.Variable("b")
    expr = (a + b) * 2 - 1 / a + (-b) ** 2
    exe = expr.bind(mx.cpu(), {"a": mx.nd.array([1.0, 2.0]), "b": mx.nd.array([3.0, 4.0])})
    av, bv = np.array([1.0, 2.0]), np.array([3.0, 4.0])
    np.testing.assert_allclose(exe.forward()[0].asnumpy(), (av + bv) * 2 - 1 / av + bv**2, rtol=1e-6)
    ops = [n["op"] for n in json.loads(expr.tojson())["nodes"] if n["op"] != "null"]
    assert {"_rdiv_scalar", "_mul_scalar", "elemwise_add", "elemwise_sub", "_power_scalar"} <= set(ops)
    m = mx.sym.maximum(a, 0.5) + mx.sym.minimum(a, b) + mx.sym.pow(a, 2)
    exe = m.bind(mx.cpu(), {"a": mx.nd.array([1.0, 0.0]), "b": mx.nd.array([3.0, -4.0])})
    np.testing.assert_allclose(exe.forward()[0].asnumpy(), [1.0 + 1.0 + 1.0, 0.5 - 4.0 + 0.0])


def test_compose_replaces_a_variable():
    body = mx.sym.FullyConnected(data=mx.sym.Variable("data"), num_hidden=4, name="fc")
    head = mx.sym.Activation(data=mx.sym.Variable("x"), act_type="relu", name="act")
    composed = head(x=body)
    assert composed.list_arguments() == ["data", "fc_weight", "fc_bias"]
    with pytest.raises(MissingArgumentError, match="'y' is not an argument"):
        head(y=body)


def test_infer_shape_partial_complete_and_errors():
    net = small_net()
    arg, out, aux = net.infer_shape(data=(2, 1, 6, 6))
    assert arg[1] == (4, 1, 3, 3) and arg[5] == (3, 64) and arg[-1] == (2,)
    assert out == [(2, 3)] and aux == [(4,), (4,)]
    assert net.infer_shape() == (None, None, None)
    partial = net.infer_shape_partial(conv1_weight=(4, 1, 3, 3))
    assert partial[0][1] == (4, 1, 3, 3) and partial[0][0] == ()
    with pytest.raises(ShapeInferenceError, match=r"Convolution 'conv1'.*data=\(2, 2, 6, 6\).*weight"):
        net.infer_shape(data=(2, 2, 6, 6), conv1_weight=(4, 1, 3, 3))
    with pytest.raises(MissingArgumentError, match="'dta' is not an input"):
        net.infer_shape(dta=(2, 1, 6, 6))


def test_infer_type():
    net = small_net()
    arg, out, aux = net.infer_type(data=np.float32)
    assert set(arg) == {np.float32} and out == [np.float32] and aux == [np.float32, np.float32]
    assert net.infer_type() == (None, None, None)


def test_json_round_trip_keeps_graph_params_and_attrs(tmp_path):
    net = small_net()
    net._set_attr(ctx_group="dev2")
    path = tmp_path / "net-symbol.json"
    net.save(path)
    graph = json.loads(path.read_text())
    assert graph["attrs"]["mxnet_version"] == ["int", 10901]
    conv = next(n for n in graph["nodes"] if n["name"] == "conv1")
    assert conv["attrs"] == {"kernel": "(3, 3)", "num_filter": "4"}
    assert all(len(i) == 3 for n in graph["nodes"] for i in n["inputs"])
    back = mx.sym.load(path)
    assert back.list_arguments() == net.list_arguments()
    assert back.list_auxiliary_states() == net.list_auxiliary_states()
    assert back.attr("ctx_group") == "dev2"
    assert back.infer_shape(data=(2, 1, 6, 6)) == net.infer_shape(data=(2, 1, 6, 6))
    assert back.tojson() == net.tojson()


def legacy_pool_json(extra: dict | None = None) -> str:
    param = {"kernel": "(3,3)", "stride": "(2,2)", "pad": "(0,0)", "pool_type": "max"}
    param.update(extra or {})
    return json.dumps({
        "nodes": [
            {"op": "null", "param": {}, "name": "data", "inputs": [], "backward_source_id": -1},
            {"op": "Pooling", "param": param, "name": "pool1", "inputs": [[0, 0]], "backward_source_id": -1},
            {"op": "BatchNorm", "param": {"eps": "0.001", "momentum": "0.9", "fix_gamma": "True",
                                          "use_global_stats": "False"},
             "name": "bn", "inputs": [[1, 0], [2, 0], [3, 0]], "backward_source_id": -1},
        ],
        "arg_nodes": [0], "heads": [[4, 0]]})


def test_graphlab_era_json_keeps_pooling_rounding_up_and_gets_aux_states():
    nodes = json.loads(legacy_pool_json())
    nodes["nodes"][2:2] = [{"op": "null", "param": {}, "name": "bn_gamma", "inputs": [], "backward_source_id": -1},
                           {"op": "null", "param": {}, "name": "bn_beta", "inputs": [], "backward_source_id": -1}]
    nodes["nodes"][4]["inputs"] = [[1, 0], [2, 0], [3, 0]]
    nodes["heads"] = [[4, 0]]
    sym = mx.sym.load_json(json.dumps(nodes))
    assert sym.infer_shape(data=(1, 3, 112, 112))[1] == [(1, 3, 56, 56)]  # ceil: the GraphLab runtime's size
    assert sym.list_auxiliary_states() == ["bn_moving_mean", "bn_moving_var"]
    written = json.loads(sym.tojson())
    pool = next(n for n in written["nodes"] if n["op"] == "Pooling")
    assert pool["attrs"]["pooling_convention"] == "full"  # so MXNet 1.x sizes it the same way


def test_lenet_fixture_json_generations():
    legacy = mx.sym.load(MXNET_FIXTURES / "lenet_digits_legacy-symbol.json")
    assert legacy.list_arguments()[:3] == ["data", "conv1_weight", "conv1_bias"]
    seed = mx.sym.load(MXNET_FIXTURES / "seed_cnn-symbol.json")
    assert seed.list_auxiliary_states() == ["bn1_moving_mean", "bn1_moving_var", "bn2_moving_mean",
                                            "bn2_moving_var"]


def test_zero_nine_era_attr_json():
    text = json.dumps({
        "nodes": [{"op": "null", "name": "data", "inputs": []},
                  {"op": "null", "name": "fc_weight", "attr": {"lr_mult": "0.1"}, "inputs": []},
                  {"op": "FullyConnected", "name": "fc", "attr": {"num_hidden": "7", "no_bias": "True"},
                   "inputs": [[0, 0, 0], [1, 0, 0]]}],
        "arg_nodes": [0, 1], "node_row_ptr": [0, 1, 2, 3], "heads": [[2, 0, 0]],
        "attrs": {"mxnet_version": ["int", 905]}})
    sym = mx.sym.load_json(text)
    assert sym.infer_shape(data=(2, 5))[0] == [(2, 5), (7, 5)]
    assert sym.attr_dict()["fc_weight"] == {"lr_mult": "0.1"}


def test_bad_files_name_the_problem(tmp_path):
    text = json.loads(legacy_pool_json())
    text["nodes"][1]["op"] = "FancyPool"
    with pytest.raises(UnknownOperatorError, match="node 1 'pool1' uses operator 'FancyPool'"):
        mx.sym.load_json(json.dumps(text))
    with pytest.raises(SymbolFileError, match="not valid JSON at line 1"):
        mx.sym.load_json("{nodes")
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"nodes": [{"op": "Pooling", "name": "p", "attrs": {"kernel": "(2,2)",
                                                                               "pool_tipe": "max"},
                                          "inputs": []}], "heads": [[0, 0, 0]],
                               "attrs": {"mxnet_version": ["int", 10901]}}))
    with pytest.raises(SymbolFileError, match=r"bad.json: node 0: Pooling 'p': unknown parameter 'pool_tipe'"):
        mx.sym.load(bad)
    with pytest.raises(SymbolFileError, match="cannot read"):
        mx.sym.load(tmp_path / "missing.json")


def test_print_summary_counts_parameters(capsys):
    net = small_net()
    text = mx.viz.print_summary(net, shape={"data": (1, 1, 6, 6)})
    assert "conv1(Convolution)" in text and "(1, 4, 4, 4)" in text
    assert f"Total params: {4 * 9 + 4 + 4 + 4 + 3 * 64 + 3}" in text  # BatchNorm counts gamma and beta
    assert capsys.readouterr().out.strip() == text.strip()


def test_batchnorm_marks_its_moving_statistics_as_mxnet_does():
    """MXNet writes ``__init__`` on the moving-statistics variables it creates; its own
    Module.init_params needs them to initialise a symbol read from our JSON."""
    theirs = {n["name"]: n.get("attrs", {}) for n in
              json.loads((MXNET_FIXTURES / "seed_cnn-symbol.json").read_text())["nodes"]}
    ours = {n["name"]: n.get("attrs", {}) for n in
            json.loads(mx.sym.BatchNorm(mx.sym.Variable("data"), name="bn1").tojson())["nodes"]}
    for name in ("bn1_gamma", "bn1_beta", "bn1_moving_mean", "bn1_moving_var"):
        assert ours[name] == theirs[name], name
