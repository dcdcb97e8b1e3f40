"""``from framestream import mx``: MXNet's Python surface, as GraphLab Create users know it.

>>> from framestream import mx
>>> net = mx.sym.FullyConnected(data=mx.sym.Variable('data'), num_hidden=2, name='fc')
>>> net.list_arguments()
['data', 'fc_weight', 'fc_bias']
"""

from framestream.errors import NNError as MXNetError
from framestream.nn import (
    attribute,
    context,
    initializer,
    model,
    name,
    ndarray,
    random,
    symbol,
    visualization,
)
from framestream.nn.attribute import AttrScope
from framestream.nn.context import Context, cpu, current_context, gpu, num_gpus
from framestream.nn.executor import Executor

sym = symbol
nd = ndarray
init = initializer
viz = visualization


class base:  # noqa: N801  (MXNet's module name)
    """``mx.base.MXNetError``, for code that catches it."""

    MXNetError = MXNetError


__all__ = [
    "AttrScope", "Context", "Executor", "MXNetError", "attribute", "base", "context", "cpu",
    "current_context", "gpu", "init", "initializer", "model", "name", "nd", "ndarray", "num_gpus",
    "random", "sym", "symbol", "viz", "visualization",
]
