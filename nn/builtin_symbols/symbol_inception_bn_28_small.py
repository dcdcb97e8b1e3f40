"""GraphLab's builtin small BN-Inception for 28x28 images (``symbol_inception_bn_28_small``).

A CIFAR/MNIST-size Inception from MXNet's early examples: a 3x3 stem of 96, "simple" modules
(1x1 and 3x3 towers) and two "downsample" modules (a strided 3x3 tower next to an unpadded
3x3/2 max pool, which needs GraphLab's rounding up: 28 -> 14 -> 7), a 7x7 average pool
``global_pool``, ``flatten1``, ``fc1``. Every unit is unnamed (``convolution0..18``,
``batchnorm0..18``, ``activation0..18``, ``concat0..9``, ``pooling0..1``). 1,652,826 parameters
for the default 10 classes; features: ``flatten1_output`` (336).
"""

from __future__ import annotations

from framestream.nn import symbol as sym
from framestream.nn.builtin_symbols._blocks import Conv, classifier, conv_unit, fresh_names, pool
from framestream.nn.symbol import Symbol

# ("simple", 1x1 width, 3x3 width) or ("down", 3x3 width), in order.
MODULES = (
    ("simple", 32, 32), ("simple", 32, 48), ("down", 80),
    ("simple", 112, 48), ("simple", 96, 64), ("simple", 80, 80), ("simple", 48, 96), ("down", 96),
    ("simple", 176, 160), ("simple", 176, 160),
)


def _simple(data: Symbol, n1x1: int, n3x3: int) -> Symbol:
    return sym.Concat(conv_unit(data, Conv(n1x1)),
                      conv_unit(data, Conv(n3x3, (3, 3), pad=(1, 1))))


def _downsample(data: Symbol, n3x3: int) -> Symbol:
    conv = conv_unit(data, Conv(n3x3, (3, 3), (2, 2), (1, 1)))
    return sym.Concat(conv, pool(data, "max", (3, 3), (2, 2)))


@fresh_names
def get_symbol(num_classes: int = 10) -> Symbol:
    """The small BN-Inception symbol for 3x28x28 input, its loss ``softmax``.

    >>> from framestream import mx
    >>> net = mx.builtin_symbols.symbol_inception_bn_28_small.get_symbol()
    >>> net.get_internals()['flatten1_output'].infer_shape(data=(1, 3, 28, 28))[1]
    [(1, 336)]
    """
    net = conv_unit(sym.Variable("data"), Conv(96, (3, 3), pad=(1, 1)))
    for kind, *widths in MODULES:
        net = _simple(net, *widths) if kind == "simple" else _downsample(net, *widths)
    net = pool(net, "avg", (7, 7), name="global_pool")
    return classifier(net, num_classes, flatten="flatten1", fc="fc1")
