"""GraphLab's builtin VGG (``symbol_vgg``): VGG-11 (configuration A), 3x224x224 in.

Simonyan and Zisserman, "Very deep convolutional networks for large-scale image
recognition", arXiv:1409.1556 (2014). Layers ``conv1_1`` .. ``conv5_2``, ``pool1..5``, ``fc6``
(4096, 25088), ``fc7``, ``fc8``; GraphLab named the ReLU after ``conv5_2`` **``conv1_2``**, and
so do we (its output is ``conv1_2_output``). 132,863,336 parameters for 1000 classes;
features: ``drop7_output`` (4096). MXNet's own example, with 13, 16 and 19 layers and
BatchNorm, is :mod:`~framestream.nn.builtin_symbols.vgg`.
"""

from __future__ import annotations

from framestream.nn import symbol as sym
from framestream.nn.builtin_symbols._blocks import GRAPHLAB_POOLING, fresh_names, vgg_logits
from framestream.nn.symbol import Symbol


@fresh_names
def get_symbol(num_classes: int = 1000) -> Symbol:
    """The VGG-11 symbol, its loss ``softmax``.

    >>> from framestream import mx
    >>> net = mx.builtin_symbols.symbol_vgg.get_symbol()
    >>> 'conv1_2_output' in net.get_internals().list_outputs()
    True
    """
    logits = vgg_logits(sym.Variable("data"), num_classes, (1, 1, 2, 2, 2),
                        pooling_convention=GRAPHLAB_POOLING, renames={"relu5_2": "conv1_2"})
    return sym.SoftmaxOutput(data=logits, name="softmax")
