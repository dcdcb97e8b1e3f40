"""Load framestream-written checkpoints in real Apache MXNet 1.9.1 and record its outputs.

Runs ONLY under the separate MXNet virtualenv (MXNet 1.9.1 needs numpy 1.23.5), from
the repository root, after ``write_framestream_models.py`` has written the models:

    bench/.venv-mxnet/bin/python scripts/mxnet_oracle/check_framestream_models.py

For every ``<model>-symbol.json`` / ``<model>-0000.params`` pair that
``write_framestream_models.py`` wrote into ``tests/nn/data/roundtrip/`` (``--dir DIR``
reads and writes elsewhere) it calls ``mx.model.load_checkpoint``, binds the symbol
twice (``simple_bind`` and ``mx.mod.Module``) to the saved inputs of ``inputs.npz``,
runs ``forward(is_train=False)`` and

* writes MXNet's outputs to ``mxnet_outputs.npz``: ``<model>.out.<output name>`` (the
  ``simple_bind`` result), ``<model>.shape.<output name>`` (int64 output shape) and
  ``<model>.internal_shapes`` (a JSON string: every internal output's name -> the shape
  MXNet infers, from ``get_internals().infer_shape``); for the models in
  ``KEEP_INTERNALS`` also every operator output (``<model>.internal.<name>``) and their
  order (``<model>.internal_order``, JSON); plus
  ``legacy_lenet_source.internal_shapes``: the shapes MXNet infers when it loads the
  GraphLab-era source JSON itself (its upgrader reads legacy Pooling as 'valid');
* prints, per output, the max absolute and relative difference to framestream's own
  outputs (``<model>.out.<name>`` in ``inputs.npz``), the Module/simple_bind
  agreement, and whether MXNet re-serialises the loaded symbol to the same graph.

Exit status 1 if a model fails to load or bind, or an output's shape or values differ
beyond rtol 1e-4 / atol 1e-5 x max|output|. Uses MXNet's plain CPU kernels
(``MXNET_MKLDNN_ENABLED=0``) unless ``--mkldnn`` is given.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import traceback
from pathlib import Path

import mxnet_kernels  # noqa: F401, E402  (chooses the kernels before mxnet loads)

# isort: split
import mxnet as mx  # noqa: E402
import numpy as np  # noqa: E402
from reproducible_npz import write_npz  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
DATA_DIR = ROOT / "tests" / "nn" / "data" / "roundtrip"
EPOCH = 0
RTOL, ATOL = 1e-4, 1e-5
# Models whose every intermediate output is kept too, so a test can name the first layer that differs.
KEEP_INTERNALS = ("mixed_ops", "trained_cnn")


def models_in(directory: Path) -> list[str]:
    names = sorted(p.name[: -len("-symbol.json")] for p in directory.glob("*-symbol.json"))
    return [n for n in names if (directory / f"{n}-{EPOCH:04d}.params").exists()]




def graph_of(json_text: str) -> dict:
    """The graph with only what defines it (nodes, inputs, heads, attributes)."""
    g = json.loads(json_text)
    return {"nodes": [(n["op"], n["name"], n.get("attrs", {}), [e[:2] for e in n["inputs"]])
                      for n in g["nodes"]],
            "heads": [h[:2] for h in g["heads"]], "arg_nodes": g["arg_nodes"]}


def run_model(directory: Path, name: str, inputs: dict[str, np.ndarray]):
    symbol, arg_params, aux_params = mx.model.load_checkpoint(str(directory / name), EPOCH)
    shapes = {k: v.shape for k, v in inputs.items()}
    exe = symbol.simple_bind(mx.cpu(), grad_req="null", **shapes)
    exe.copy_params_from(arg_params, aux_params)
    outs = [o.asnumpy() for o in exe.forward(is_train=False, **{k: mx.nd.array(v) for k, v in inputs.items()})]

    labels = [k for k in inputs if k.endswith("_label")]
    data = [k for k in inputs if k not in labels]
    mod = mx.mod.Module(symbol, data_names=data, label_names=labels, context=mx.cpu())
    mod.bind(data_shapes=[(k, shapes[k]) for k in data], label_shapes=[(k, shapes[k]) for k in labels] or None,
             for_training=False)
    mod.set_params(arg_params, aux_params)
    batch = mx.io.DataBatch(data=[mx.nd.array(inputs[k]) for k in data],
                            label=[mx.nd.array(inputs[k]) for k in labels] or None)
    mod.forward(batch, is_train=False)
    mod_outs = [o.asnumpy() for o in mod.get_outputs()]
    internals = symbol.get_internals()
    _, internal, _ = internals.infer_shape(**shapes)
    shapes_json = json.dumps(dict(zip(internals.list_outputs(), map(list, internal))))
    values = {}
    if name in KEEP_INTERNALS:
        iexe = internals.simple_bind(mx.cpu(), grad_req="null", **shapes)
        iexe.copy_params_from(arg_params, aux_params, allow_extra_params=True)
        iexe.forward(is_train=False, **{k: mx.nd.array(v) for k, v in inputs.items()})
        variables = set(symbol.list_inputs())
        values = {k: v.asnumpy() for k, v in iexe.output_dict.items() if k not in variables}
    return symbol, outs, mod_outs, shapes_json, values


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, default=DATA_DIR)
    parser.add_argument("--mkldnn", action="store_true", help="keep oneDNN kernels")
    directory = parser.parse_args().dir
    saved = np.load(directory / "inputs.npz")
    print(f"MXNet {mx.__version__}, numpy {np.__version__}, "
          f"MXNET_MKLDNN_ENABLED={os.environ.get('MXNET_MKLDNN_ENABLED', '(unset)')}")
    record: dict[str, np.ndarray] = {}
    failed = False
    for name in models_in(directory):
        inputs = {k.split(".", 2)[2]: saved[k] for k in saved.files if k.startswith(f"{name}.in.")}
        try:
            symbol, outs, mod_outs, shapes_json, internal_values = run_model(directory, name, inputs)
        except Exception as exc:  # report MXNet's own error and go on
            failed = True
            print(f"{name}: FAILED in MXNet: {type(exc).__name__}: {exc}")
            traceback.print_exc()
            continue
        same_graph = graph_of(symbol.tojson()) == graph_of((directory / f"{name}-symbol.json").read_text())
        print(f"{name}: loaded; MXNet re-serialises the same graph: {same_graph}")
        record[f"{name}.internal_shapes"] = np.array(shapes_json)
        if internal_values:
            record[f"{name}.internal_order"] = np.array(json.dumps(list(internal_values)))
        for key, value in internal_values.items():
            record[f"{name}.internal.{key}"] = value.astype(np.float32)
        for out_name, value, mod_value in zip(symbol.list_outputs(), outs, mod_outs):
            record[f"{name}.out.{out_name}"] = value.astype(np.float32)
            record[f"{name}.shape.{out_name}"] = np.array(value.shape, dtype=np.int64)
            ours = saved.get(f"{name}.out.{out_name}")
            mod_diff = float(np.abs(value - mod_value).max())
            if ours is None:
                failed = True
                print(f"  {out_name}: framestream has no such output")
                continue
            if ours.shape != value.shape:
                failed = True
                print(f"  {out_name}: SHAPE differs: MXNet {value.shape}, framestream {ours.shape}")
                continue
            diff = np.abs(value.astype(np.float64) - ours)
            scale = float(np.abs(value).max())
            rel = float((diff / np.maximum(np.abs(value), 1e-12)).max())
            ok = bool(np.all(diff <= ATOL * max(scale, 1.0) + RTOL * np.abs(value)))
            failed |= not ok
            print(f"  {out_name} {value.shape}: {'ok' if ok else 'MISMATCH'}: max|diff| {diff.max():.3g}, "
                  f"max rel {rel:.3g}, max|out| {scale:.3g} (Module vs simple_bind: {mod_diff:.3g})")
    source = directory / "legacy_lenet_source-symbol.json"
    if source.exists():  # MXNet's own upgrade of the GraphLab-era file, for contrast
        internals = mx.sym.load(str(source)).get_internals()
        _, shapes, _ = internals.infer_shape_partial(data=tuple(saved["legacy_lenet.in.data"].shape))
        upgraded = dict(zip(internals.list_outputs(), map(list, shapes)))
        record["legacy_lenet_source.internal_shapes"] = np.array(json.dumps(upgraded))
        print("legacy_lenet_source loaded directly by MXNet (its own upgrader): "
              + ", ".join(f"{k} {tuple(v)}" for k, v in upgraded.items() if k.startswith(("pool", "flatten"))))
    write_npz(directory / "mxnet_outputs.npz", record)
    print(f"wrote {directory / 'mxnet_outputs.npz'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
