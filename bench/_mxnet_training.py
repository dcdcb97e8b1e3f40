"""Apache MXNet's side of the training benchmark, run inside bench/.venv-mxnet.

argv[1]: JSON spec {"nets", "steps", "warmup", "batch", "nets_dir"}; the networks are the
symbol JSON framestream wrote (_fs_nets.write_json), so both engines run the same graph.
``mx.mod.Module``; one step: ``forward_backward`` + ``update``. MXNet runs asynchronously,
so ``waitall`` closes the timed span: K steps then waitall (throughput, steps may overlap).
Default kernels (oneDNN on, as the pip wheel ships). Prints one JSON line: ms per step."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import mxnet as mx
from _util import fixed_batch, time_steps


def ms_per_step(net: mx.sym.Symbol, batch: int, steps: int, warmup: int) -> float:
    label = next(a for a in net.list_arguments() if a.endswith("_label"))
    mod = mx.mod.Module(net, data_names=["data"], label_names=[label], context=mx.cpu())
    x, y = fixed_batch(batch)
    mod.bind(data_shapes=[("data", x.shape)], label_shapes=[(label, y.shape)], for_training=True,
             inputs_need_grad=False)
    # framestream's JSON has no __init__ attribute on the BatchNorm statistics (MXNet writes one): set them here
    aux_shapes = net.infer_shape(data=x.shape)[2]
    aux = {k: mx.nd.ones(s) if k.endswith("_var") else mx.nd.zeros(s)
           for k, s in zip(net.list_auxiliary_states(), aux_shapes)}
    mx.random.seed(0)
    mod.init_params(mx.init.Xavier(), aux_params=aux)
    mod.init_optimizer(optimizer="sgd", optimizer_params={"learning_rate": 0.01, "momentum": 0.9,
                                                          "rescale_grad": 1 / batch})
    data = mx.io.DataBatch([mx.nd.array(x)], [mx.nd.array(y.astype("float32"))])

    def step() -> None:
        mod.forward_backward(data)
        mod.update()

    return 1e3 * time_steps(step, steps, warmup, sync=mx.nd.waitall)


def main(spec: dict) -> None:
    folder = Path(spec["nets_dir"])
    ms = {n: ms_per_step(mx.sym.load(str(folder / f"{n}.json")), spec["batch"], spec["steps"][n], spec["warmup"])
          for n in spec["nets"]}
    onednn = mx.runtime.Features().is_enabled("MKLDNN") and os.environ.get("MXNET_MKLDNN_ENABLED", "1") != "0"
    print(json.dumps({"ms": ms, "version": f"MXNet {mx.__version__}" + (" (oneDNN)" if onednn else "")}))


if __name__ == "__main__":
    main(json.loads(sys.argv[1]))
