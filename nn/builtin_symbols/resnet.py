"""MXNet's example ResNet (``example/image-classification/symbols/resnet.py``): pre-activation.

He, Zhang, Ren and Sun, "Identity mappings in deep residual networks", ECCV 2016 (ResNet v2,
by Wei Wu's MXNet port). The input passes ``identity`` ``id`` and a BatchNorm ``bn_data``
(fix_gamma); every unit ``stage<i>_unit<j>`` is BatchNorm ``_bn<k>`` -> ReLU ``_relu<k>`` ->
Convolution ``_conv<k>`` (no bias) two times (basic) or three (bottleneck, 1x1 / 3x3 / 1x1 at a
quarter of the width), plus the input, or a 1x1 convolution ``_sc`` of the first activation
where the shape changes (every stage's first unit). BatchNorm eps 2e-5, momentum 0.9; the end is
``bn1``, ``relu1``, a global average pool ``pool1``, ``flatten0``, ``fc1``, ``softmax``.

ImageNet size (height > 28): a 7x7/2 stem ``conv0`` + ``bn0`` + ``relu0`` + 3x3/2 max pool
(stride 1 3x3 ``conv0`` alone up to height 32), four stages of widths 64, 128, 256, 512
(times 4 with bottlenecks, from 50 layers). CIFAR size (height <= 28): three stages of
(n - 2) / 6 basic units of widths 16, 32, 64, or from 164 layers (n - 2) / 9 bottleneck units
of widths 64, 128, 256. Pools keep MXNet 1.x's ``'valid'`` default, as its pretrained files.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

from framestream.nn import symbol as sym
from framestream.nn.builtin_symbols._blocks import (
    back_to_float32,
    check_dtype,
    fresh_names,
    half_precision,
)
from framestream.nn.symbol import Symbol

IMAGENET_UNITS = {18: (2, 2, 2, 2), 34: (3, 4, 6, 3), 50: (3, 4, 6, 3), 101: (3, 4, 23, 3),
                  152: (3, 8, 36, 3), 200: (3, 24, 36, 3), 269: (3, 30, 48, 8)}
_BN = {"fix_gamma": False, "eps": 2e-5, "momentum": 0.9}


class Layout(NamedTuple):
    """Units per stage, the stem width followed by each stage's output width, and the unit."""

    units: tuple[int, ...]
    widths: tuple[int, ...]
    bottleneck: bool


def layout(num_layers: int, height: int) -> Layout:
    """The stages of a ``num_layers`` ResNet for images ``height`` pixels high."""
    if height <= 28:
        if num_layers >= 164 and (num_layers - 2) % 9 == 0:
            return Layout(((num_layers - 2) // 9,) * 3, (16, 64, 128, 256), True)
        if num_layers < 164 and (num_layers - 2) % 6 == 0:
            return Layout(((num_layers - 2) // 6,) * 3, (16, 16, 32, 64), False)
        raise ValueError(f"resnet: for images up to 28 pixels num_layers must be 6n + 2 below 164 "
                         f"or 9n + 2 from 164, got {num_layers}")
    if num_layers not in IMAGENET_UNITS:
        raise ValueError(f"resnet: num_layers must be one of {sorted(IMAGENET_UNITS)} for images "
                         f"over 28 pixels, got {num_layers}")
    if num_layers >= 50:
        return Layout(IMAGENET_UNITS[num_layers], (64, 256, 512, 1024, 2048), True)
    return Layout(IMAGENET_UNITS[num_layers], (64, 64, 128, 256, 512), False)


def _residual_unit(data: Symbol, name: str, width: int, stride: int, first: bool,
                   bottleneck: bool, workspace: int) -> Symbol:
    """Pre-activation unit ``name``: (BN, ReLU, conv) x 2 or 3, plus the shortcut."""
    if bottleneck:
        convs = [(width // 4, 1, 1), (width // 4, 3, stride), (width, 1, 1)]
    else:
        convs = [(width, 3, stride), (width, 3, 1)]
    net = first_act = data
    for k, (num_filter, size, step) in enumerate(convs, start=1):
        net = sym.BatchNorm(data=net, name=f"{name}_bn{k}", **_BN)
        net = sym.Activation(data=net, act_type="relu", name=f"{name}_relu{k}")
        if k == 1:
            first_act = net
        net = sym.Convolution(data=net, num_filter=num_filter, kernel=(size, size),
                              stride=(step, step), pad=(size // 2, size // 2), no_bias=True,
                              workspace=workspace, name=f"{name}_conv{k}")
    shortcut = data
    if first:  # the shape changes: project the first activation
        shortcut = sym.Convolution(data=first_act, num_filter=width, kernel=(1, 1),
                                   stride=(stride, stride), no_bias=True, workspace=workspace,
                                   name=f"{name}_sc")
    return net + shortcut


def _stem(data: Symbol, width: int, height: int, workspace: int) -> Symbol:
    if height <= 32:
        return sym.Convolution(data=data, num_filter=width, kernel=(3, 3), stride=(1, 1),
                               pad=(1, 1), no_bias=True, workspace=workspace, name="conv0")
    net = sym.Convolution(data=data, num_filter=width, kernel=(7, 7), stride=(2, 2), pad=(3, 3),
                          no_bias=True, workspace=workspace, name="conv0")
    net = sym.BatchNorm(data=net, name="bn0", **_BN)
    net = sym.Activation(data=net, act_type="relu", name="relu0")
    return sym.Pooling(data=net, kernel=(3, 3), stride=(2, 2), pad=(1, 1), pool_type="max")


def _image_shape(image_shape: str | Sequence[int]) -> tuple[int, int, int]:
    parts = image_shape.split(",") if isinstance(image_shape, str) else image_shape
    dims = [int(d) for d in parts]
    if len(dims) != 3:
        raise ValueError(f"resnet: image_shape must be 'channels,height,width', got {image_shape!r}")
    return dims[0], dims[1], dims[2]


@fresh_names
def get_symbol(num_classes: int, num_layers: int, image_shape: str | Sequence[int] = "3,224,224",
               conv_workspace: int = 256, dtype: str = "float32", **kwargs: Any) -> Symbol:
    """The ResNet symbol with ``num_layers`` layers for ``image_shape`` input, loss ``softmax``.

    ``image_shape`` is MXNet's ``'3,224,224'`` string (or a tuple); only its height chooses the
    layout. ``dtype='float16'`` replaces ``id`` by a ``Cast`` and casts the logits back. Other
    keyword arguments (MXNet's training scripts pass their whole command line) are ignored.

    >>> from framestream import mx
    >>> net = mx.builtin_symbols.resnet.get_symbol(10, 20, image_shape='3,28,28')
    >>> net.infer_shape(data=(1, 3, 28, 28))[0][-3]
    (10, 64)
    """
    check_dtype(dtype, "resnet")
    _, height, _ = _image_shape(image_shape)
    units, widths, bottleneck = layout(num_layers, height)
    data = half_precision(sym.Variable("data"), dtype)
    if dtype == "float32":
        data = sym.identity(data=data, name="id")
    net = sym.BatchNorm(data=data, name="bn_data", **{**_BN, "fix_gamma": True})
    net = _stem(net, widths[0], height, conv_workspace)
    for i, (count, width) in enumerate(zip(units, widths[1:]), start=1):
        for j in range(1, count + 1):
            stride = 2 if i > 1 and j == 1 else 1
            net = _residual_unit(net, f"stage{i}_unit{j}", width, stride, j == 1, bottleneck,
                                 conv_workspace)
    net = sym.BatchNorm(data=net, name="bn1", **_BN)
    net = sym.Activation(data=net, act_type="relu", name="relu1")
    net = sym.Pooling(data=net, global_pool=True, kernel=(7, 7), pool_type="avg", name="pool1")
    net = sym.FullyConnected(data=sym.Flatten(data=net), num_hidden=num_classes, name="fc1")
    return sym.SoftmaxOutput(data=back_to_float32(net, dtype), name="softmax")
