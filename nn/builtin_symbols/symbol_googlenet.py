"""GraphLab's builtin GoogLeNet (``symbol_googlenet``): Inception v1, 3x224x224 in.

Szegedy et al., "Going deeper with convolutions", arXiv:1409.4842 (2014), without LRN and the
auxiliary heads. Convolution + ReLU units named ``conv_<tag>`` / ``relu_<tag>`` (57
convolutions, all with bias); modules ``in3a`` .. ``in5b``. The five pools between stages, the
flatten and the classifier are unnamed (``pooling0..4``, ``flatten0``, ``fullyconnected0``).
6,998,552 parameters for 1000 classes; features: ``flatten0_output`` (1024). The strided
pools need GraphLab's rounding up: with ``'valid'`` pooling the final 7x7 average pool sees 6x6.
"""

from __future__ import annotations

import functools

from framestream.nn import symbol as sym
from framestream.nn.builtin_symbols._blocks import (
    Conv,
    ModuleA,
    caffe_names,
    classifier,
    conv_unit,
    fresh_names,
    inception_a,
    pool,
)
from framestream.nn.symbol import Symbol

_unit = functools.partial(conv_unit, names=caffe_names, batch_norm=False)

# Stages of modules, each stage after a 3x3/2 max pool.
_STAGES = (
    (("in3a", ModuleA(64, 96, 128, 16, 32, "max", 32)),
     ("in3b", ModuleA(128, 128, 192, 32, 96, "max", 64))),
    (("in4a", ModuleA(192, 96, 208, 16, 48, "max", 64)),
     ("in4b", ModuleA(160, 112, 224, 24, 64, "max", 64)),
     ("in4c", ModuleA(128, 128, 256, 24, 64, "max", 64)),
     ("in4d", ModuleA(112, 144, 288, 32, 64, "max", 64)),
     ("in4e", ModuleA(256, 160, 320, 32, 128, "max", 128))),
    (("in5a", ModuleA(256, 160, 320, 32, 128, "max", 128)),
     ("in5b", ModuleA(384, 192, 384, 48, 128, "max", 128))),
)


@fresh_names
def get_symbol(num_classes: int = 1000) -> Symbol:
    """The GoogLeNet symbol, its loss ``softmax``.

    >>> from framestream import mx
    >>> net = mx.builtin_symbols.symbol_googlenet.get_symbol()
    >>> net.get_internals()['flatten0_output'].infer_shape(data=(1, 3, 224, 224))[1]
    [(1, 1024)]
    """
    net = _unit(sym.Variable("data"), Conv(64, (7, 7), (2, 2), (3, 3), "conv1"))
    net = pool(net, "max", (3, 3), (2, 2))
    net = _unit(net, Conv(64, tag="conv2"))
    net = _unit(net, Conv(192, (3, 3), pad=(1, 1), tag="conv3"))
    for modules in _STAGES:
        net = pool(net, "max", (3, 3), (2, 2))
        for name, widths in modules:
            net = inception_a(net, _unit, name, widths, double_3x3=False)
    return classifier(pool(net, "avg", (7, 7)), num_classes)
