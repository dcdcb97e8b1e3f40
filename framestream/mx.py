"""``from framestream import mx``: MXNet's Python surface, as GraphLab Create users know it.

>>> from framestream import mx
>>> net = mx.sym.FullyConnected(data=mx.sym.Variable('data'), num_hidden=2, name='fc')
>>> net.list_arguments()
['data', 'fc_weight', 'fc_bias']
"""

from framestream.errors import NNError as MXNetError
from framestream.nn import (
    attribute,
    builtin_symbols,
    callback,
    context,
    initializer,
    io,
    lr_scheduler,
    metric,
    model,
    monitor,
    name,
    ndarray,
    optimizer,
    pretrained_model,
    random,
    symbol,
    visualization,
)
from framestream.nn.attribute import AttrScope
from framestream.nn.context import Context, cpu, current_context, gpu, num_gpus
from framestream.nn.executor import Executor
from framestream.nn.monitor import Monitor

sym = symbol
nd = ndarray
init = initializer
viz = visualization
mon = monitor


class base:  # noqa: N801  (MXNet's module name)
    """``mx.base.MXNetError``, for code that catches it."""

    MXNetError = MXNetError


__all__ = [
    "builtin_symbols", "pretrained_model",
    "AttrScope", "Context", "Executor", "MXNetError", "Monitor", "attribute", "base", "callback",
    "context", "cpu", "current_context", "gpu", "init", "initializer", "io", "lr_scheduler",
    "metric", "model", "mon", "monitor", "name", "nd", "ndarray", "num_gpus", "optimizer", "random",
    "sym", "symbol", "viz", "visualization",
]
