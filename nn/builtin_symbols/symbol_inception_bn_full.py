"""GraphLab's builtin BN-Inception for full ImageNet (``symbol_inception_bn_full``): 21841 classes.

The topology and names of :mod:`.symbol_inception_bn` with wider early layers (conv1 96,
conv2red 128, conv2 288, wider 3a, 3b and 3c, a narrower double 3x3 in 4d) and convolution
``workspace=512``. 33,619,969 parameters for 21841 classes; the model gallery's
``imagenet21k_inception_bn`` loads into it.
"""

from __future__ import annotations

from framestream.nn.builtin_symbols import symbol_inception_bn
from framestream.nn.builtin_symbols._blocks import ModuleA, ModuleB, bn_inception, fresh_names
from framestream.nn.symbol import Symbol

STEM = (96, 128, 288)
_FULL_WIDTHS = {
    "3a": ModuleA(96, 96, 96, 96, 144, "avg", 48),
    "3b": ModuleA(96, 96, 144, 96, 144, "avg", 96),
    "3c": ModuleB(192, 240, 96, 144),
    "4d": ModuleA(96, 128, 192, 160, 96, "avg", 128),
}
MODULES = tuple((name, _FULL_WIDTHS.get(name, widths)) for name, widths in symbol_inception_bn.MODULES)


@fresh_names
def get_symbol(num_classes: int = 21841) -> Symbol:
    """The full-ImageNet BN-Inception symbol, its loss ``softmax``.

    >>> from framestream import mx
    >>> net = mx.builtin_symbols.symbol_inception_bn_full.get_symbol()
    >>> net.infer_shape(data=(1, 3, 224, 224))[1]
    [(1, 21841)]
    """
    return bn_inception(num_classes, STEM, MODULES, workspace=512)
