"""GraphLab's builtin BN-Inception (``symbol_inception_bn``), 3x224x224 in.

Ioffe and Szegedy, "Batch normalization: accelerating deep network training by reducing
internal covariate shift", arXiv:1502.03167 (2015). Convolution + BatchNorm + ReLU units
named ``conv_<tag>``, ``bn_<tag>``, ``relu_<tag>`` (69 of each, 138 auxiliary states); modules
3a, 3b, 3c (downsampling), 4a-4d, 4e (downsampling), 5a, 5b with 256, 320, 576, 576, 576, 608,
608, 1056, 1024, 1024 channels; a 7x7 average pool ``global_pool``, ``flatten``, ``fc1``.
11,295,240 parameters for 1000 classes; features: ``flatten_output`` (1024). The downsampling
modules' unpadded 3x3/2 max pools need GraphLab's rounding up: under ``'valid'`` they give
13x13 against the convolutions' 14x14 and the Concat fails. The model gallery's
``imagenet1k_inception_bn`` loads into this network.
"""

from __future__ import annotations

from framestream.nn.builtin_symbols._blocks import ModuleA, ModuleB, bn_inception, fresh_names
from framestream.nn.symbol import Symbol

STEM = (64, 64, 192)  # conv1, conv2red, conv2
MODULES = (
    ("3a", ModuleA(64, 64, 64, 64, 96, "avg", 32)),
    ("3b", ModuleA(64, 64, 96, 64, 96, "avg", 64)),
    ("3c", ModuleB(128, 160, 64, 96)),
    ("4a", ModuleA(224, 64, 96, 96, 128, "avg", 128)),
    ("4b", ModuleA(192, 96, 128, 96, 128, "avg", 128)),
    ("4c", ModuleA(160, 128, 160, 128, 160, "avg", 128)),
    ("4d", ModuleA(96, 128, 192, 160, 192, "avg", 128)),
    ("4e", ModuleB(128, 192, 192, 256)),
    ("5a", ModuleA(352, 192, 320, 160, 224, "avg", 128)),
    ("5b", ModuleA(352, 192, 320, 192, 224, "max", 128)),
)


@fresh_names
def get_symbol(num_classes: int = 1000) -> Symbol:
    """The BN-Inception symbol, its loss ``softmax``.

    >>> from framestream import mx
    >>> net = mx.builtin_symbols.symbol_inception_bn.get_symbol()
    >>> net.get_internals()['ch_concat_3c_chconcat_output'].infer_shape(
    ...     data=(1, 3, 224, 224))[1]
    [(1, 576, 14, 14)]
    """
    return bn_inception(num_classes, STEM, MODULES)
