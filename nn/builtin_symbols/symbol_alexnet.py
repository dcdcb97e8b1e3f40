"""GraphLab's builtin AlexNet (``symbol_alexnet``): 3x224x224 in, ``num_classes`` out.

Krizhevsky, Sutskever and Hinton, "ImageNet classification with deep convolutional neural
networks", NIPS 2012, as GraphLab Create shipped it: one tower, no grouped convolutions.
Every layer but the loss is unnamed, so its names are MXNet's automatic ones
(``convolution0..4``, ``lrn0..1``, ``fullyconnected0..2``, ``dropout0..1``); the pools, rounding
up, give 55 -> 27, 27 -> 13 and 13 -> 6, so ``fullyconnected0_weight`` is (4096, 9216).
62,378,344 parameters for 1000 classes; features: ``dropout1_output`` (4096).
"""

from __future__ import annotations

import functools

from framestream.nn import symbol as sym
from framestream.nn.builtin_symbols._blocks import (
    Conv,
    conv_unit,
    fresh_names,
    pool,
)
from framestream.nn.symbol import Symbol

_unit = functools.partial(conv_unit, batch_norm=False)  # automatic names


def _lrn(data: Symbol) -> Symbol:
    return sym.LRN(data=data, alpha=0.0001, beta=0.75, knorm=1, nsize=5)


@fresh_names
def get_symbol(num_classes: int = 1000) -> Symbol:
    """The AlexNet symbol, its loss ``softmax``.

    >>> from framestream import mx
    >>> net = mx.builtin_symbols.symbol_alexnet.get_symbol(num_classes=10)
    >>> net.infer_shape(data=(1, 3, 224, 224))[0][-3]
    (10, 4096)
    """
    net = _unit(sym.Variable("data"), Conv(96, (11, 11), (4, 4)))
    net = _lrn(pool(net, "max", (3, 3), (2, 2)))
    net = _unit(net, Conv(256, (5, 5), pad=(2, 2)))
    net = _lrn(pool(net, "max", (3, 3), (2, 2)))
    for width in (384, 384, 256):
        net = _unit(net, Conv(width, (3, 3), pad=(1, 1)))
    net = sym.Flatten(data=pool(net, "max", (3, 3), (2, 2)))
    for _ in range(2):
        net = sym.FullyConnected(data=net, num_hidden=4096)
        net = sym.Dropout(data=sym.Activation(data=net, act_type="relu"), p=0.5)
    net = sym.FullyConnected(data=net, num_hidden=num_classes)
    return sym.SoftmaxOutput(data=net, name="softmax")
