"""MXNet's example VGG (``example/image-classification/symbols/vgg.py``): 11 to 19 layers.

Simonyan and Zisserman, "Very deep convolutional networks for large-scale image
recognition", arXiv:1409.1556 (2014). Convolutions per group of widths 64, 128, 256, 512,
512: VGG-11 [1, 1, 2, 2, 2], -13 [2, 2, 2, 2, 2], -16 [2, 2, 3, 3, 3], -19 [2, 2, 4, 4, 4].
Names ``conv<i>_<j>``, ``bn<i>_<j>`` (with ``batch_norm``), ``relu<i>_<j>``, ``pool<i>``,
``flatten``, ``fc6``, ``fc7``, ``fc8``, ``softmax``. Pools keep MXNet 1.x's ``'valid'`` default
(224 divides evenly, so the shapes are those of :mod:`.symbol_vgg` either way).
"""

from __future__ import annotations

from typing import Any

from framestream.nn import symbol as sym
from framestream.nn.builtin_symbols._blocks import (
    back_to_float32,
    check_dtype,
    fresh_names,
    half_precision,
    vgg_logits,
)
from framestream.nn.symbol import Symbol

GROUP_SIZES = {11: (1, 1, 2, 2, 2), 13: (2, 2, 2, 2, 2), 16: (2, 2, 3, 3, 3), 19: (2, 2, 4, 4, 4)}


@fresh_names
def get_symbol(num_classes: int, num_layers: int, batch_norm: bool = False,
               dtype: str = "float32", **kwargs: Any) -> Symbol:
    """The VGG symbol with ``num_layers`` weight layers (11, 13, 16 or 19), loss ``softmax``.

    ``dtype='float16'`` runs the body in half precision between two ``Cast`` layers, as
    MXNet's example does. Other keyword arguments (MXNet's training scripts pass their whole
    command line) are ignored.

    >>> from framestream import mx
    >>> net = mx.builtin_symbols.vgg.get_symbol(num_classes=10, num_layers=16, batch_norm=True)
    >>> [n for n in net.list_arguments() if n.startswith('bn5_3')]
    ['bn5_3_gamma', 'bn5_3_beta']
    """
    if num_layers not in GROUP_SIZES:
        raise ValueError(f"vgg: num_layers must be one of {sorted(GROUP_SIZES)}, got {num_layers}")
    check_dtype(dtype, "vgg")
    data = half_precision(sym.Variable("data"), dtype)
    logits = vgg_logits(data, num_classes, GROUP_SIZES[num_layers], batch_norm=batch_norm)
    return sym.SoftmaxOutput(data=back_to_float32(logits, dtype), name="softmax")
