"""``mx.builtin_symbols``: GraphLab Create's builtin networks and MXNet's example networks.

GraphLab's seven (``get_symbol(num_classes=...)``, names and parameter counts of its
``graphlab.mxnet.builtin_symbols``, every Pooling rounding up as its runtime did):
``symbol_alexnet``, ``symbol_googlenet``, ``symbol_vgg``, ``symbol_inception_bn``,
``symbol_inception_bn_full`` (21841 classes), ``symbol_inception_bn_28_small`` (28x28, 10
classes) and ``symbol_inception_v3`` (299x299). MXNet's ``example/image-classification``
networks: ``lenet``, ``mlp``, ``vgg`` (11-19 layers, optional BatchNorm) and ``resnet``
(pre-activation, ImageNet or CIFAR size).

Every ``get_symbol`` counts automatic names (``convolution0``, ``flatten0``) from zero, so the
names are the same whatever was built before and match checkpoints written by a fresh
process; ``mx.name.Prefix`` still applies.

>>> from framestream import mx
>>> net = mx.builtin_symbols.symbol_alexnet.get_symbol(num_classes=10)
>>> net.list_arguments()[:3]
['data', 'convolution0_weight', 'convolution0_bias']
>>> 'symbol_inception_bn' in mx.builtin_symbols.list_builtins()
True
"""

from __future__ import annotations

from framestream.nn.builtin_symbols import (
    lenet,
    mlp,
    resnet,
    symbol_alexnet,
    symbol_googlenet,
    symbol_inception_bn,
    symbol_inception_bn_28_small,
    symbol_inception_bn_full,
    symbol_inception_v3,
    symbol_vgg,
    vgg,
)

GRAPHLAB_BUILTINS = (
    "symbol_alexnet", "symbol_googlenet", "symbol_vgg", "symbol_inception_bn",
    "symbol_inception_bn_full", "symbol_inception_bn_28_small", "symbol_inception_v3",
)
MXNET_EXAMPLES = ("lenet", "mlp", "vgg", "resnet")


def list_builtins(graphlab_only: bool = False) -> list[str]:
    """Names of the network modules here: GraphLab's builtins, then MXNet's examples."""
    return list(GRAPHLAB_BUILTINS if graphlab_only else GRAPHLAB_BUILTINS + MXNET_EXAMPLES)


__all__ = [
    "GRAPHLAB_BUILTINS", "MXNET_EXAMPLES", "lenet", "list_builtins", "mlp", "resnet",
    "symbol_alexnet", "symbol_googlenet", "symbol_inception_bn", "symbol_inception_bn_28_small",
    "symbol_inception_bn_full", "symbol_inception_v3", "symbol_vgg", "vgg",
]
