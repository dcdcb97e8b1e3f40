"""GraphLab's builtin Inception-v3 (``symbol_inception_v3``): 3x299x299 in.

Szegedy et al., "Rethinking the Inception architecture for computer vision",
arXiv:1512.00567 (2015), with the layer names of the TensorFlow checkpoint it was converted
from: units ``<tag>_conv2d`` (no bias), ``<tag>_batchnorm``, ``<tag>_relu`` (94 of each, 188
auxiliary states); towers ``<module>_tower``, ``<module>_tower_1``, ``<module>_tower_2`` whose
convolutions are ``_conv``, ``_conv_1``, ...; modules ``mixed`` .. ``mixed_10``; an 8x8 average
pool ``global_pool``, ``flatten``, ``fc1``. 23,834,568 parameters for 1000 classes; features:
``flatten_output`` (2048). The sizes divide evenly, so rounding up changes nothing here.
"""

from __future__ import annotations

import functools

from framestream.nn import symbol as sym
from framestream.nn.builtin_symbols._blocks import (
    Conv,
    classifier,
    conv_unit,
    fresh_names,
    inception,
    pool,
    tf_names,
)
from framestream.nn.symbol import Symbol

_unit = functools.partial(conv_unit, names=tf_names, no_bias=True)

_K3 = ((3, 3), (1, 1), (1, 1))  # kernel, stride, pad
_K3_DOWN = ((3, 3), (2, 2), (0, 0))
_K5 = ((5, 5), (1, 1), (2, 2))
_K1x7 = ((1, 7), (1, 1), (0, 3))
_K7x1 = ((7, 1), (1, 1), (3, 0))
_K1x3 = ((1, 3), (1, 1), (0, 1))
_K3x1 = ((3, 1), (1, 1), (1, 0))
_K1 = ((1, 1), (1, 1), (0, 0))


def _tower(data: Symbol, name: str, *convs: tuple[int, tuple]) -> Symbol:
    """(width, geometry) convolutions chained as ``<name>_conv``, ``<name>_conv_1``, ..."""
    for k, (width, geometry) in enumerate(convs):
        data = _unit(data, Conv(width, *geometry, tag=f"{name}_conv" + (f"_{k}" if k else "")))
    return data


def _fork(data: Symbol, name: str, n1x3: int, n3x1: int) -> list[Symbol]:
    """Module E's split end of a tower: 1x3 and 3x1 side by side (``<name>_mixed_conv[_1]``)."""
    return [_unit(data, Conv(n1x3, *_K1x3, tag=f"{name}_mixed_conv")),
            _unit(data, Conv(n3x1, *_K3x1, tag=f"{name}_mixed_conv_1"))]


def _proj(name: str, width: int) -> Conv:
    return Conv(width, tag=f"{name}_tower_2_conv")


def _module_a(data: Symbol, name: str, proj: int) -> Symbol:
    """35x35: 1x1 | 1x1, 5x5 | 1x1, 3x3, 3x3 | avg pool, 1x1."""
    towers = [_tower(data, name, (64, _K1)),
              _tower(data, f"{name}_tower", (48, _K1), (64, _K5)),
              _tower(data, f"{name}_tower_1", (64, _K1), (96, _K3), (96, _K3))]
    return inception(data, _unit, name, towers, "avg", proj=_proj(name, proj))


def _module_b(data: Symbol, name: str) -> Symbol:
    """35 -> 17: 3x3/2 | 1x1, 3x3, 3x3/2 | max pool 3x3/2."""
    towers = [_tower(data, name, (384, _K3_DOWN)),
              _tower(data, f"{name}_tower", (64, _K1), (96, _K3), (96, _K3_DOWN))]
    return inception(data, _unit, name, towers, "max", downsample=True)


def _module_c(data: Symbol, name: str, n7: int) -> Symbol:
    """17x17, factorised 7x7: 1x1 | 1x1, 1x7, 7x1 | 1x1, 7x1, 1x7, 7x1, 1x7 | avg pool, 1x1."""
    towers = [_tower(data, name, (192, _K1)),
              _tower(data, f"{name}_tower", (n7, _K1), (n7, _K1x7), (192, _K7x1)),
              _tower(data, f"{name}_tower_1", (n7, _K1), (n7, _K7x1), (n7, _K1x7), (n7, _K7x1),
                     (192, _K1x7))]
    return inception(data, _unit, name, towers, "avg", proj=_proj(name, 192))


def _module_d(data: Symbol, name: str) -> Symbol:
    """17 -> 8: 1x1, 3x3/2 | 1x1, 1x7, 7x1, 3x3/2 | max pool 3x3/2."""
    towers = [_tower(data, f"{name}_tower", (192, _K1), (320, _K3_DOWN)),
              _tower(data, f"{name}_tower_1", (192, _K1), (192, _K1x7), (192, _K7x1),
                     (192, _K3_DOWN))]
    return inception(data, _unit, name, towers, "max", downsample=True)


def _module_e(data: Symbol, name: str, pool_type: str) -> Symbol:
    """8x8, expanded: 1x1 | 1x1, (1x3 | 3x1) | 1x1, 3x3, (1x3 | 3x1) | pool, 1x1."""
    towers = [_tower(data, name, (320, _K1)),
              *_fork(_tower(data, f"{name}_tower", (384, _K1)), f"{name}_tower", 384, 384),
              *_fork(_tower(data, f"{name}_tower_1", (448, _K1), (384, _K3)),
                     f"{name}_tower_1", 384, 384)]
    return inception(data, _unit, name, towers, pool_type, proj=_proj(name, 192))


@fresh_names
def get_symbol(num_classes: int = 1000) -> Symbol:
    """The Inception-v3 symbol, its loss ``softmax``.

    >>> from framestream import mx
    >>> net = mx.builtin_symbols.symbol_inception_v3.get_symbol()
    >>> net.get_internals()['flatten_output'].infer_shape(data=(1, 3, 299, 299))[1]
    [(1, 2048)]
    """
    net = _unit(sym.Variable("data"), Conv(32, *_K3_DOWN, tag="conv"))
    net = _unit(net, Conv(32, (3, 3), tag="conv_1"))
    net = _unit(net, Conv(64, (3, 3), pad=(1, 1), tag="conv_2"))
    net = pool(net, "max", (3, 3), (2, 2), name="pool")
    net = _unit(net, Conv(80, tag="conv_3"))
    net = _unit(net, Conv(192, (3, 3), tag="conv_4"))
    net = pool(net, "max", (3, 3), (2, 2), name="pool1")
    for name, proj in (("mixed", 32), ("mixed_1", 64), ("mixed_2", 64)):
        net = _module_a(net, name, proj)
    net = _module_b(net, "mixed_3")
    for name, n7 in (("mixed_4", 128), ("mixed_5", 160), ("mixed_6", 160), ("mixed_7", 192)):
        net = _module_c(net, name, n7)
    net = _module_d(net, "mixed_8")
    net = _module_e(net, "mixed_9", "avg")
    net = _module_e(net, "mixed_10", "max")
    net = pool(net, "avg", (8, 8), name="global_pool")
    return classifier(net, num_classes, flatten="flatten", fc="fc1")
