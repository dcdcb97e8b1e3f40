"""MXNet's example LeNet (``example/image-classification/symbols/lenet.py``), 28x28 in.

LeCun, Bottou, Bengio and Haffner, "Gradient-based learning applied to document
recognition", Proc. IEEE (1998). 5x5 convolutions of 20 and 50, each followed by tanh and a
2x2/2 max pool, then a tanh FullyConnected of 500 and the classifier; every layer but the loss
``softmax`` unnamed (``convolution0..1``, ``activation0..2``, ``pooling0..1``, ``flatten0``,
``fullyconnected0..1``). On 1x28x28: 24, 12, 8, 4, so the first FullyConnected sees 800;
431,080 parameters for 10 classes.
"""

from __future__ import annotations

from typing import Any

from framestream.nn import symbol as sym
from framestream.nn.builtin_symbols._blocks import fresh_names
from framestream.nn.symbol import Symbol


@fresh_names
def get_symbol(num_classes: int = 10, add_stn: bool = False, **kwargs: Any) -> Symbol:
    """The LeNet symbol, its loss ``softmax``.

    ``add_stn=True`` (a spatial transformer in front) needs MXNet's ``SpatialTransformer``,
    which framestream does not have. Other keyword arguments are ignored, as in MXNet.

    >>> from framestream import mx
    >>> net = mx.builtin_symbols.lenet.get_symbol()
    >>> net.infer_shape(data=(1, 1, 28, 28))[0][5]
    (500, 800)
    """
    if add_stn:
        raise ValueError("lenet: add_stn=True needs the SpatialTransformer operator, "
                         "which framestream does not implement")
    net = sym.Variable("data")
    for width in (20, 50):
        net = sym.Convolution(data=net, kernel=(5, 5), num_filter=width)
        net = sym.Activation(data=net, act_type="tanh")
        net = sym.Pooling(data=net, pool_type="max", kernel=(2, 2), stride=(2, 2))
    net = sym.FullyConnected(data=sym.Flatten(data=net), num_hidden=500)
    net = sym.Activation(data=net, act_type="tanh")
    net = sym.FullyConnected(data=net, num_hidden=num_classes)
    return sym.SoftmaxOutput(data=net, name="softmax")
