"""The three benchmark networks in framestream, bound and initialised the same way everywhere.

``mlp`` and ``lenet`` are MXNet's example symbols (framestream's ``builtin_symbols``); ``cnn``
is the user guide's network from examples/user_guide/cnn_fashion_mnist.py with ceil
(``'full'``) pooling. The MXNet peer loads these symbols' JSON (``write_json``), so both run
the very same graph; the PyTorch twins are in _torch_nets.py.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from framestream import mx

NETS = ("mlp", "lenet", "cnn")
FLATTEN = {"lenet": "flatten0_output", "cnn": "flatten_output"}  # feature layers (mlp's flatten is its input)
GUIDE = Path(__file__).resolve().parent.parent / "examples" / "user_guide"


def symbol(name: str) -> Any:
    """The network's symbol, its loss a SoftmaxOutput."""
    if name == "mlp":
        return mx.builtin_symbols.mlp.get_symbol(num_classes=10)
    if name == "lenet":
        return mx.builtin_symbols.lenet.get_symbol(num_classes=10)
    if name == "cnn":
        sys.path.insert(0, str(GUIDE))
        from cnn_fashion_mnist import build

        return build("full")
    raise ValueError(f"unknown network {name!r}; one of {NETS}")


def label_name(net: Any) -> str:
    return next(a for a in net.list_arguments() if a.endswith("_label"))


def bind(name: str, batch: int, train: bool) -> Any:
    """An executor for (batch, 1, 28, 28) input, Xavier weights (seed 0); gradients for the
    parameters only when ``train``."""
    net = symbol(name)
    inputs = ("data", label_name(net))
    req = {a: "null" if a in inputs or not train else "write" for a in net.list_arguments()}
    ex = net.simple_bind(mx.cpu(), grad_req=req, data=(batch, 1, 28, 28), **{inputs[1]: (batch,)})
    mx.random.seed(0)
    init = mx.init.Xavier()
    for name_, arr in [*ex.arg_dict.items(), *ex.aux_dict.items()]:
        if name_ not in inputs:
            init(mx.init.InitDesc(name_), arr)
    return ex


def params(ex: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """An executor's (arg_params, aux_params), as FeedForward takes them."""
    return {k: v for k, v in ex.arg_dict.items() if k != "data" and not k.endswith("_label")}, dict(ex.aux_dict)


def write_json(folder: Path) -> Path:
    """Every network's symbol JSON in ``folder``, for the MXNet peer."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in NETS:
        (folder / f"{name}.json").write_text(symbol(name).tojson())
    return folder
