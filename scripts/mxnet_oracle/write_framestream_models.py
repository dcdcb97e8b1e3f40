"""Write small checkpoints WITH FRAMESTREAM, for Apache MXNet 1.9.1 to load back.

Runs in the project's own venv (numpy 2, no MXNet), from the repository root:

    .venv/bin/python scripts/mxnet_oracle/write_framestream_models.py

It builds models with framestream's ``mx.sym`` API, fills their parameters with
seeded random values (``mx.init.Xavier`` plus numpy for biases, PReLU slopes and
BatchNorm moving statistics) and writes them with ``mx.model.save_checkpoint`` into
``tests/nn/data/roundtrip/`` (``--out-dir DIR`` writes elsewhere):

* ``guide_cnn``   the user guide's CNN (conv/BN/relu/max-pool twice, fc2, SoftmaxOutput 'sm');
* ``mixed_ops``   many operators and parameter forms in one graph, three outputs;
* ``legacy_lenet`` a GraphLab-era (MXNet <= 0.8) LeNet JSON, derived from
  ``tests/nn/fixtures/mxnet/lenet_digits_legacy-symbol.json`` with both poolings made
  kernel 3 / stride 2 (where the era's 'full' rounding changes the size: 24 -> 12 not 11,
  8 -> 4 not 3) and fc1 cut to 32 units to keep the files small. The legacy source is
  kept as ``legacy_lenet_source-symbol.json``; framestream loads it and re-saves it as
  MXNet 1.x JSON, which must then give the GraphLab-era shapes in MXNet too.

``inputs.npz`` holds, per model, the inputs (``<model>.in.<name>``) and framestream's
own forward outputs with ``is_train=False`` (``<model>.out.<output name>``).
``scripts/mxnet_oracle/check_framestream_models.py`` then runs the checkpoints in
MXNet. Rerunning gives byte-identical files.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from reproducible_npz import write_npz  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from framestream import mx  # noqa: E402

OUT_DIR = ROOT / "tests" / "nn" / "data" / "roundtrip"
LEGACY_LENET = ROOT / "tests" / "nn" / "fixtures" / "mxnet" / "lenet_digits_legacy-symbol.json"
EPOCH = 0


# ------------------------------------------------------------------------------ models


def guide_cnn():
    """The user guide's CNN: input (4, 1, 28, 28)."""
    net = mx.sym.Variable("data")
    net = mx.sym.Convolution(net, name="conv1", kernel=(3, 3), stride=(2, 2), num_filter=32)
    net = mx.sym.BatchNorm(net, name="bn1")
    net = mx.sym.Activation(net, name="relu1", act_type="relu")
    net = mx.sym.Pooling(net, name="pool1", pool_type="max", kernel=(2, 2), stride=(2, 2))
    net = mx.sym.Convolution(net, name="conv2", kernel=(3, 3), stride=(2, 2), num_filter=32)
    net = mx.sym.BatchNorm(net, name="bn2")
    net = mx.sym.Activation(net, name="relu2", act_type="relu")
    net = mx.sym.Pooling(net, name="pool2", pool_type="max", kernel=(2, 2), stride=(2, 2))
    net = mx.sym.Flatten(net, name="flatten")
    net = mx.sym.FullyConnected(net, name="fc2", num_hidden=10)
    net = mx.sym.SoftmaxOutput(net, name="sm")
    return net, {"data": (4, 1, 28, 28)}


def mixed_ops():
    """One graph touching many operators; data (2, 3, 12, 12) and tokens (2, 5)."""
    data = mx.sym.Variable("data")
    tokens = mx.sym.Variable("tokens")
    # convolutions: pad + dilate, grouped, 1x1 without bias
    c1 = mx.sym.Convolution(data, name="conv_dil", kernel=(3, 3), pad=(2, 2), dilate=(2, 2), num_filter=8)
    c2 = mx.sym.Convolution(c1, name="conv_grp", kernel=(3, 3), pad=(1, 1), num_filter=8, num_group=4)
    c3 = mx.sym.Convolution(data, name="conv_1x1", kernel=(1, 1), num_filter=8, no_bias=True)
    # activations, Concat / SliceChannel / ElementWiseSum
    a1 = mx.sym.LeakyReLU(c2, name="prelu1", act_type="prelu")
    a2 = mx.sym.LeakyReLU(c1, name="elu1", act_type="elu", slope=0.3)
    a3 = mx.sym.LeakyReLU(c3, name="leaky1", act_type="leaky", slope=0.1)
    cat = mx.sym.Concat(a1, a2, dim=1, name="cat1")
    parts = mx.sym.SliceChannel(cat, num_outputs=2, axis=1, name="split1")
    ew = mx.sym.ElementWiseSum(parts[0], parts[1], a3, name="esum1")
    lrn = mx.sym.LRN(ew, name="lrn1", nsize=3, alpha=1e-3, beta=0.75, knorm=2.0)
    drop = mx.sym.Dropout(lrn, name="drop1", p=0.3)
    # (12 - 3) / 2 = 4.5: 'full' gives 6, 'valid' would give 5
    pool = mx.sym.Pooling(drop, name="pool_full", pool_type="avg", kernel=(3, 3), stride=(2, 2),
                          pooling_convention="full")
    deconv = mx.sym.Deconvolution(pool, name="deconv1", kernel=(4, 4), stride=(2, 2), pad=(1, 1),
                                  num_filter=4, no_bias=False)  # 6 -> 12
    # arithmetic and broadcasting
    sl = mx.sym.slice_axis(c1, name="slice1", axis=1, begin=0, end=4)
    y = (deconv + sl) * 0.5
    y = 1 - y
    y = y * mx.sym.Activation(sl, name="sig1", act_type="sigmoid") - deconv / 4.0
    ch = mx.sym.mean(y, name="chmean", axis=(2, 3), keepdims=True)
    bm = mx.sym.broadcast_mul(y, ch, name="bmul1")
    cl = mx.sym.clip(bm, name="clip1", a_min=-0.5, a_max=0.8)
    pd = mx.sym.Pad(cl, name="pad1", mode="constant", pad_width=(0, 0, 0, 0, 1, 1, 2, 0),
                    constant_value=0.25)  # (2, 4, 14, 14)
    pe = mx.sym.Pad(cl, name="pad2", mode="edge", pad_width=(0, 0, 0, 0, 1, 1, 2, 0))
    pd = pd + pe
    tr = mx.sym.transpose(pd, name="tr1", axes=(0, 2, 3, 1))  # (2, 14, 14, 4)
    rs = mx.sym.Reshape(tr, name="rs1", shape=(0, -3, -2))  # (2, 196, 4)
    rs = mx.sym.Reshape(rs, name="rs2", shape=(0, -4, 2, -1, 0))  # (2, 2, 98, 4)
    rs = mx.sym.Reshape(rs, name="rs3", shape=(-1, 196, 0), reverse=True)  # (2, 196, 4)
    fc = mx.sym.FullyConnected(rs, name="fc_seq", num_hidden=6, flatten=False)  # (2, 196, 6)
    sm = mx.sym.softmax(fc, name="softmax1", axis=-1)
    pooled = mx.sym.sum(sm, name="sum1", axis=1) / 196.0  # (2, 6)
    # Embedding branch
    emb = mx.sym.Embedding(tokens, name="embed", input_dim=7, output_dim=6)  # (2, 5, 6)
    emean = mx.sym.mean(emb, name="emean", axis=1)  # (2, 6)
    h = mx.sym.ElementWiseSum(pooled, mx.sym.BlockGrad(emean, name="bg1"), name="esum2")
    h3 = mx.sym.expand_dims(h, name="ex1", axis=2)  # (2, 6, 1)
    h3 = mx.sym.broadcast_mul(h3, mx.sym.expand_dims(emean, name="ex2", axis=1), name="bmul2")  # (2, 6, 6)
    act = mx.sym.SoftmaxActivation(mx.sym.expand_dims(h3, name="ex3", axis=3), name="smact", mode="channel")
    flat = mx.sym.Flatten(act, name="flat1")  # (2, 36)
    fc_cls = mx.sym.FullyConnected(mx.sym.Concat(flat, h, dim=1, name="cat2"), name="fc_cls", num_hidden=5)
    cls = mx.sym.SoftmaxOutput(fc_cls, name="cls")
    fc_reg = mx.sym.FullyConnected(mx.sym.Activation(fc_cls, name="tanh1", act_type="tanh"), name="fc_reg",
                                   num_hidden=3)
    reg = mx.sym.LinearRegressionOutput(fc_reg, name="reg")
    loss = mx.sym.MakeLoss(mx.sym.sum(mx.sym.square(fc_reg, name="sq1"), name="sum2") * 0.1, name="aux_loss")
    return mx.sym.Group([cls, reg, loss]), {"data": (2, 3, 12, 12), "tokens": (2, 5)}


def legacy_lenet_source() -> dict:
    """The GraphLab-era LeNet JSON with both poolings made kernel 3 / stride 2 and fc1 cut to 32."""
    graph = json.loads(LEGACY_LENET.read_text())
    graph = copy.deepcopy(graph)
    for node in graph["nodes"]:
        if node["op"] == "Pooling":
            assert "pooling_convention" not in node["param"], node
            node["param"].update({"kernel": "(3,3)", "stride": "(2,2)"})
        if node["name"] == "fc1":
            node["param"]["num_hidden"] = "32"
    return graph


# ------------------------------------------------------------------------------ values


def trained_cnn():
    """The user guide's CNN trained here by FeedForward for one epoch on 1,000 real MNIST digits.

    Its parameters come from framestream's own training (SGD with momentum, BatchNorm
    statistics updated as in MXNet), so MXNet loading it checks the whole path users take.
    """
    import framestream as fs

    mx.random.seed(0)
    digits = fs.datasets.mnist().head(1000)
    it = mx.io.SFrameImageIter(digits, data_field=["image"], label_field="label", data_name="data",
                               label_name="sm_label", batch_size=50, scale=1 / 255.0)
    symbol, shapes = guide_cnn()
    model = mx.model.FeedForward.create(symbol, X=it, num_epoch=1, learning_rate=0.1, momentum=0.9, wd=1e-4)
    pixels = np.stack([np.asarray(digits["image"][i].pixels(), np.float32).reshape(1, 28, 28) / 255.0
                       for i in range(4)])
    labels = digits["label"].to_numpy()[:4].astype(np.float32)
    return symbol, shapes, model.arg_params, model.aux_params, {"data": pixels, "sm_label": labels}


def make_params(symbol, shapes: dict, seed: int):
    """Seeded parameters: Xavier weights, random biases/slopes, non-trivial BatchNorm stats."""
    mx.random.seed(seed)
    rng = np.random.default_rng(seed)
    arg_shapes, _, aux_shapes = symbol.infer_shape(**shapes)
    init = mx.init.Xavier(rnd_type="gaussian", factor_type="avg", magnitude=2)
    inputs = set(shapes) | {n for n in symbol.list_arguments() if n.endswith("_label")}
    arg_params, aux_params = {}, {}
    for name, shape in zip(symbol.list_arguments(), arg_shapes):
        if name in inputs:
            continue
        arr = mx.nd.zeros(shape)
        if name.endswith("_weight"):
            init(mx.init.InitDesc(name), arr)
        elif name.endswith("_gamma") and "prelu" in name:
            arr[:] = rng.uniform(0.05, 0.4, shape).astype(np.float32)
        elif name.endswith("_gamma"):
            arr[:] = rng.uniform(0.5, 1.5, shape).astype(np.float32)
        else:  # biases, betas
            arr[:] = rng.normal(0.0, 0.1, shape).astype(np.float32)
        arg_params[name] = arr
    for name, shape in zip(symbol.list_auxiliary_states(), aux_shapes):
        if name.endswith("_moving_var"):
            value = rng.uniform(0.5, 2.0, shape)
        else:
            value = rng.normal(0.0, 0.3, shape)
        aux_params[name] = mx.nd.array(value.astype(np.float32))
    return arg_params, aux_params


def make_inputs(symbol, shapes: dict, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed + 1000)
    arg_shapes, out_shapes, _ = symbol.infer_shape(**shapes)
    values = {}
    for name, shape in zip(symbol.list_arguments(), arg_shapes):
        if name == "tokens":
            values[name] = rng.integers(0, 7, shape).astype(np.float32)
        elif name == "data":
            values[name] = rng.uniform(0.0, 1.0, shape).astype(np.float32)
        elif name.endswith("_label"):
            if len(shape) == 1:
                values[name] = rng.integers(0, 5, shape).astype(np.float32)
            else:
                values[name] = rng.normal(0.0, 1.0, shape).astype(np.float32)
    return values


def forward(symbol, shapes, arg_params, aux_params, inputs) -> dict[str, np.ndarray]:
    exe = symbol.simple_bind(mx.cpu(), grad_req="null", **shapes)
    exe.copy_params_from(arg_params, aux_params)
    outs = exe.forward(is_train=False, **inputs)
    return {name: o.asnumpy() for name, o in zip(symbol.list_outputs(), outs)}




# ------------------------------------------------------------------------------ main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out-dir", type=Path, default=OUT_DIR)
    out_dir = parser.parse_args().out_dir
    out_dir.mkdir(parents=True, exist_ok=True)

    source = legacy_lenet_source()
    source_path = out_dir / "legacy_lenet_source-symbol.json"
    source_path.write_text(json.dumps(source, indent=2) + "\n")
    legacy = mx.sym.load(str(source_path))

    models = [
        ("guide_cnn", *guide_cnn()),
        ("mixed_ops", *mixed_ops()),
        ("legacy_lenet", legacy, {"data": (4, 1, 28, 28)}),
    ]
    saved: dict[str, np.ndarray] = {}
    for seed, (name, symbol, shapes) in enumerate(models, start=1):
        arg_params, aux_params = make_params(symbol, shapes, seed)
        inputs = make_inputs(symbol, shapes, seed)
        mx.model.save_checkpoint(str(out_dir / name), EPOCH, symbol, arg_params, aux_params)
        outs = forward(symbol, shapes, arg_params, aux_params, inputs)
        for key, value in inputs.items():
            saved[f"{name}.in.{key}"] = value
        for key, value in outs.items():
            saved[f"{name}.out.{key}"] = value
        print(f"{name}: {len(arg_params)} params, {len(aux_params)} aux, outputs "
              + ", ".join(f"{k} {v.shape}" for k, v in outs.items()))
    symbol, shapes, arg_params, aux_params, inputs = trained_cnn()
    mx.model.save_checkpoint(str(out_dir / "trained_cnn"), EPOCH, symbol, arg_params, aux_params)
    outs = forward(symbol, shapes, arg_params, aux_params, inputs)
    saved.update({f"trained_cnn.in.{k}": v for k, v in inputs.items()})
    saved.update({f"trained_cnn.out.{k}": v for k, v in outs.items()})
    print("trained_cnn: trained by FeedForward, outputs " + ", ".join(f"{k} {v.shape}" for k, v in outs.items()))
    write_npz(out_dir / "inputs.npz", saved)
    print(f"wrote {out_dir}")


if __name__ == "__main__":
    main()
