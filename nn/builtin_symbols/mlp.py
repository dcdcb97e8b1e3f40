"""MXNet's example multilayer perceptron (``example/image-classification/symbols/mlp.py``).

``Flatten`` (unnamed, ``flatten0``), ``fc1`` 128 + ``relu1``, ``fc2`` 64 + ``relu2``, ``fc3``
``num_classes``, ``softmax`` (the canonical 1.x revision; one older revision was 1536 wide).
Any input shape: on 1x28x28, 109,386 parameters for 10 classes.
"""

from __future__ import annotations

from typing import Any

from framestream.nn import symbol as sym
from framestream.nn.builtin_symbols._blocks import fresh_names
from framestream.nn.symbol import Symbol


@fresh_names
def get_symbol(num_classes: int = 10, **kwargs: Any) -> Symbol:
    """The MLP symbol, its loss ``softmax``; other keyword arguments are ignored, as in MXNet.

    >>> from framestream import mx
    >>> mx.builtin_symbols.mlp.get_symbol().list_arguments()[:3]
    ['data', 'fc1_weight', 'fc1_bias']
    """
    net = sym.Flatten(data=sym.Variable("data"))
    for k, width in enumerate((128, 64), start=1):
        net = sym.FullyConnected(data=net, num_hidden=width, name=f"fc{k}")
        net = sym.Activation(data=net, act_type="relu", name=f"relu{k}")
    net = sym.FullyConnected(data=net, num_hidden=num_classes, name="fc3")
    return sym.SoftmaxOutput(data=net, name="softmax")
