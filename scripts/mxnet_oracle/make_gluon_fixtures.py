"""Record real ImageNet CNN graphs (Gluon model zoo, ONNX round trips) run by Apache MXNet 1.9.1.

Runs ONLY under the separate MXNet virtualenv, from the repository root:

    bench/.venv-mxnet/bin/pip install onnx==1.14.1     # optional: the ONNX-imported graphs
    bench/.venv-mxnet/bin/python scripts/mxnet_oracle/make_gluon_fixtures.py

No pretrained weights are downloaded (there is no network). For each architecture of
``mxnet.gluon.model_zoo.vision`` in ``GLUON_MODELS`` it builds the network with
``pretrained=False``, hybridizes it, runs it once and ``export()``s it, exactly as a user
publishing a Gluon model would. Every parameter is then replaced by the value that
``deterministic_weights.parameter(name, shape)`` computes from its name and shape, so the
test side can rebuild the same weights without a params file. MXNet binds the exported
symbol with ``simple_bind`` and runs ``forward(is_train=False)`` on a fixed batch of two
seeded uint8 images, normalised as an ImageClassifier would: ``(pixels - MEAN_RGB) *
SCALE``, NCHW float32.

For ``ONNX_MODELS`` the exported network (with those weights) also goes through
``mx.onnx.export_model`` and back through ``mx.contrib.onnx.import_model``, which gives
the graph a user gets from an ONNX file (``relu``, ``Pad`` before ``Pooling``,
``_linalg_gemm2`` plus ``broadcast_add`` for dense layers ...); that symbol is recorded
too, run with the rule's weights. If ``onnx`` is missing or a step fails, the manifest
says why.

Writes into ``tests/nn/data/gluon/`` (``--out-dir DIR`` elsewhere), only small files:

* ``<model>-symbol.json``: the symbol, as MXNet wrote it but with compact separators;
* ``mxnet_outputs.npz`` (``reproducible_npz.write_npz``): ``images`` (2, 299, 299, 3)
  uint8 (a model of input size S reads ``images[:, :S, :S]``), ``<model>.out.<output>``
  (MXNet's outputs, float32) and ``<model>.internal_stats`` (JSON: per internal output
  its shape, sum and sum of absolute values, to name the first layer that differs);
* ``manifest.json``: per model the source, input shape, data name, output names and
  shapes, operator counts, the weights' SHA-256 (``deterministic_weights.digest``), and
  how far the exported symbol is from the Gluon block (or the ONNX graph from its source);
  versions of MXNet, numpy and onnx; MEAN_RGB and SCALE; the ONNX steps that failed.

Uses MXNet's plain CPU kernels (``MXNET_MKLDNN_ENABLED=0``) unless ``--mkldnn``. Reruns
give byte-identical files.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import traceback
from collections import Counter
from pathlib import Path

from mxnet_kernels import MKLDNN as _MKLDNN  # noqa: E402  (chooses the kernels before mxnet loads)

# isort: split
import mxnet as mx  # noqa: E402
import numpy as np  # noqa: E402
from deterministic_weights import digest, parameters  # noqa: E402
from mxnet.gluon.model_zoo import vision  # noqa: E402
from reproducible_npz import write_npz  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
OUT_DIR = ROOT / "tests" / "nn" / "data" / "gluon"
# (model-zoo name, input size): a broad set of the operators and parameters Gluon exports.
GLUON_MODELS = [
    ("resnet18_v1", 224),        # conv/BN/relu, padded max pool, elemwise_add, global pool, FC
    ("resnet18_v2", 224),        # pre-activation, BN fix_gamma=True on the input, Flatten
    ("mobilenet0.25", 224),      # depthwise (num_group) convolutions
    ("mobilenetv2_0.25", 224),   # clip (relu6), inverted residuals, 1x1 conv classifier
    ("squeezenet1.1", 224),      # ceil-mode max pool ('full'), Concat, Dropout, avg pool 13x13
    ("densenet121", 224),        # 58 Concats, avg pools with count_include_pad, 121 BatchNorms
    ("inceptionv3", 299),        # 1x7/7x1 kernels, padded avg pools, Concat of 4 branches
    ("alexnet", 224),            # 11x11 stride 4, three FC layers, Dropout
    ("vgg11_bn", 224),           # 3x3 stacks, 25088 -> 4096 FC
]
ONNX_MODELS = ["resnet18_v1", "squeezenet1.1", "mobilenetv2_0.25"]
MEAN_RGB = (123.68, 116.779, 103.939)
SCALE = 0.017
IMAGE_SIZE = 299
IMAGE_SEED = 20240611


def file_name(model: str) -> str:
    return model.replace(".", "_")


def make_images() -> np.ndarray:
    """Two (299, 299, 3) uint8 images of seeded 2x2-pixel blocks (they compress to a third)."""
    rng = np.random.default_rng(IMAGE_SEED)
    half_size = (IMAGE_SIZE + 1) // 2
    half = rng.integers(0, 256, (2, half_size, half_size, 3), dtype=np.uint8)
    full = half.repeat(2, axis=1).repeat(2, axis=2)
    return np.ascontiguousarray(full[:, :IMAGE_SIZE, :IMAGE_SIZE])


def normalise(images: np.ndarray, size: int) -> np.ndarray:
    """What ImageClassifier feeds the network: (pixels - mean) * scale, NCHW float32."""
    chw = images[:, :size, :size].transpose(0, 3, 1, 2).astype(np.float32)
    mean = np.asarray(MEAN_RGB, dtype=np.float32).reshape(1, 3, 1, 1)
    return np.ascontiguousarray((chw - mean) * np.float32(SCALE))


def compact(json_text: str) -> str:
    return json.dumps(json.loads(json_text), separators=(",", ":")) + "\n"


def rule_params(symbol, data_shape):
    """The rule's (arg_params, aux_params) for every parameter of ``symbol``."""
    arg_shapes, _, aux_shapes = symbol.infer_shape(data=data_shape)
    args = {n: s for n, s in zip(symbol.list_arguments(), arg_shapes) if n != "data"}
    aux = dict(zip(symbol.list_auxiliary_states(), aux_shapes))
    values = parameters({**args, **aux})
    return ({n: mx.nd.array(values[n]) for n in args}, {n: mx.nd.array(values[n]) for n in aux},
            digest(values))


def run(symbol, arg_params, aux_params, data: np.ndarray):
    """MXNet's outputs, and (shape, sum, sum |x|) of every internal output, is_train=False."""
    exe = symbol.simple_bind(mx.cpu(), grad_req="null", data=data.shape)
    exe.copy_params_from(arg_params, aux_params)
    outs = [o.asnumpy() for o in exe.forward(is_train=False, data=mx.nd.array(data))]
    internals = symbol.get_internals()
    iexe = internals.simple_bind(mx.cpu(), grad_req="null", data=data.shape)
    iexe.copy_params_from(arg_params, aux_params, allow_extra_params=True)
    iexe.forward(is_train=False, data=mx.nd.array(data))
    variables = set(symbol.list_inputs())
    stats = {}
    for name, value in zip(internals.list_outputs(), iexe.outputs):
        if name in variables:
            continue
        v = value.asnumpy().astype(np.float64)
        stats[name] = [list(v.shape), float(v.sum()), float(np.abs(v).sum())]
    return outs, stats


def max_rel(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).max() / max(float(np.abs(b).max()), 1e-12))


def record(out_dir: Path, name: str, source: str, json_text: str, size: int, images: np.ndarray,
           arrays: dict, entries: list, extra: dict):
    """Write the compact symbol, run it in MXNet with the rule's weights, note the results."""
    path = out_dir / f"{file_name(name)}-symbol.json"
    path.write_text(compact(json_text))
    symbol = mx.sym.load(str(path))  # what is committed is what runs
    data = normalise(images, size)
    arg_params, aux_params, weights_sha = rule_params(symbol, data.shape)
    outs, stats = run(symbol, arg_params, aux_params, data)
    ops = Counter(n["op"] for n in json.loads(json_text)["nodes"] if n["op"] != "null")
    for out_name, value in zip(symbol.list_outputs(), outs):
        arrays[f"{name}.out.{out_name}"] = value.astype(np.float32)
    arrays[f"{name}.internal_stats"] = np.array(json.dumps(stats))
    entries.append({
        "name": name, "source": source, "symbol": path.name, "data_name": "data",
        "input_shape": list(data.shape), "output_names": symbol.list_outputs(),
        "output_shapes": [list(o.shape) for o in outs], "ops": dict(sorted(ops.items())),
        "num_params": len(arg_params) + len(aux_params), "weights_sha256": weights_sha, **extra})
    print(f"{name}: {len(symbol.get_internals().list_outputs())} internal outputs, outputs "
          + ", ".join(f"{n} {o.shape} max|.| {np.abs(o).max():.3g} std {o.std():.3g}"
                      for n, o in zip(symbol.list_outputs(), outs)))
    return symbol, arg_params, aux_params, outs


def gluon_model(name: str, size: int, images: np.ndarray, tmp: Path):
    """Build, hybridize, run and export the model-zoo net; then put the rule's weights in it."""
    net = vision.get_model(name, pretrained=False)
    net.initialize(mx.init.Xavier())
    net.hybridize()
    data = normalise(images, size)
    net(mx.nd.array(data)).wait_to_read()
    net.export(str(tmp / file_name(name)))
    json_text = (tmp / f"{file_name(name)}-symbol.json").read_text()
    # The Gluon block itself, with the same weights, for the export's own fidelity.
    for pname, param in net.collect_params().items():
        param.set_data(mx.nd.array(parameters({pname: param.shape})[pname]))
    block_out = net(mx.nd.array(data)).asnumpy()
    return json_text, block_out


def onnx_round_trip(name: str, symbol, arg_params, aux_params, shape, tmp: Path):
    """The symbol exported to ONNX and imported back: what a user loading an ONNX file gets."""
    import onnx

    path = mx.onnx.export_model(symbol, {**arg_params, **aux_params}, in_shapes=[shape],
                                in_types=[np.float32],
                                onnx_file_path=str(tmp / f"{file_name(name)}.onnx"))

    opset = max(o.version for o in onnx.load(path).opset_import if o.domain in ("", "ai.onnx"))
    imported, imp_args, imp_aux = mx.contrib.onnx.import_model(path)
    return imported, imp_args, imp_aux, opset


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out-dir", type=Path, default=OUT_DIR)
    parser.add_argument("--mkldnn", action="store_true", help="keep oneDNN kernels")
    parser.add_argument("--only", default="", help="comma-separated model-zoo names (the "
                        "manifest then lists only those: use with --out-dir)")
    args = parser.parse_args()
    out_dir = args.out_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    only = set(filter(None, args.only.split(",")))
    onnx_version, onnx_missing = None, ""
    try:
        import onnx

        onnx_version = onnx.__version__
    except ImportError as exc:
        onnx_missing = f"onnx is not installed in MXNet's venv ({exc})"
    images = make_images()
    arrays: dict[str, np.ndarray] = {"images": images}
    entries: list[dict] = []
    onnx_failures: list[dict] = []
    failed = False
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        for name, size in GLUON_MODELS:
            if only and name not in only:
                continue
            json_text, block_out = gluon_model(name, size, images, tmp)
            symbol, arg_params, aux_params, outs = record(
                out_dir, name, "gluon", json_text, size, images, arrays, entries,
                {"gluon_model": name})
            entries[-1]["export_vs_block_max_rel"] = max_rel(outs[0], block_out)
            if name not in ONNX_MODELS:
                continue
            onnx_name = f"{name}_onnx"
            if onnx_version is None:
                onnx_failures.append({"model": onnx_name, "stage": "import onnx",
                                      "error": onnx_missing})
                continue
            shape = (2, 3, size, size)
            try:
                imported, imp_args, imp_aux, opset = onnx_round_trip(
                    name, symbol, arg_params, aux_params, shape, tmp)
            except Exception as exc:  # MXNet's exporter or importer refused: say which and why
                exported = (tmp / f"{file_name(name)}.onnx").exists()
                stage = "mx.contrib.onnx.import_model" if exported else "mx.onnx.export_model"
                onnx_failures.append({"model": onnx_name, "stage": stage,
                                      "error": f"{type(exc).__name__}: {exc}"})
                print(f"{onnx_name}: {stage} FAILED: {type(exc).__name__}: {exc}")
                traceback.print_exc(limit=3)
                continue
            # with the importer's own parameters (the exported weights): the source's outputs?
            imp_outs, _ = run(imported, imp_args, imp_aux, normalise(images, size))
            _, _, _, onnx_outs = record(out_dir, onnx_name, "onnx", imported.tojson(), size,
                                        images, arrays, entries,
                                        {"gluon_model": name, "onnx_opset": opset})
            entries[-1]["imported_params_vs_source_max_rel"] = max_rel(imp_outs[0], outs[0])
            entries[-1]["rule_params_vs_source_max_rel"] = max_rel(onnx_outs[0], outs[0])
    for entry in entries:
        for key in ("export_vs_block_max_rel", "imported_params_vs_source_max_rel"):
            if key in entry and entry[key] > 1e-4:
                print(f"{entry['name']}: {key} = {entry[key]:.3g}")
                failed |= key == "export_vs_block_max_rel"
        for key in [k for k in entry if k.endswith("_max_rel")]:
            entry[key] = float(f"{entry[key]:.3g}")
    manifest = {
        "mxnet_version": mx.__version__, "numpy_version": np.__version__,
        "onnx_version": onnx_version, "mkldnn": _MKLDNN,
        "images": {"key": "images", "shape": list(images.shape), "seed": IMAGE_SEED,
                   "note": "a model of input size S reads images[:, :S, :S]"},
        "mean_rgb": list(MEAN_RGB), "scale": SCALE,
        "normalisation": "(pixels - mean_rgb) * scale in float32, NCHW",
        "weights": "scripts/mxnet_oracle/deterministic_weights.py: parameter(name, shape)",
        "models": entries, "onnx_failures": onnx_failures,
    }
    (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    write_npz(out_dir / "mxnet_outputs.npz", arrays)
    print(f"wrote {out_dir}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
