"""The pieces the builtin networks share: stable names, conv units, pools, inception modules.

Names are the contract: a checkpoint from GraphLab's model gallery loads into a network by
argument name (``conv_3a_1x1_weight``, ``fullyconnected0_bias``), so every factory here takes
the names the GraphLab / MXNet source gave, quirks included. Unnamed layers take MXNet's
automatic names, which come from process-global counters; :func:`fresh_names` gives each
``get_symbol`` call its own counter, so ``convolution0`` is always the first convolution of
*this* network, as it was in the fresh process that built GraphLab's files.

The GraphLab runtime rounded pooled sizes up (MXNet before PR #2585, see the reference §1),
so every GraphLab network pools with :data:`GRAPHLAB_POOLING` (``'full'``); MXNet's own
example networks keep the 1.x default (``'valid'``), as their pretrained files expect.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple, TypeVar

from framestream.nn import name as _name
from framestream.nn import symbol as sym
from framestream.nn.symbol import Symbol

GRAPHLAB_POOLING = "full"

Build = TypeVar("Build", bound=Callable[..., Symbol])


class _FreshCounter(_name.NameManager):
    """Counts automatic names from zero; the enclosing manager (a ``Prefix``) still gets to
    finish every name, so ``with mx.name.Prefix('p_'):`` prefixes a builtin network too."""

    def __init__(self, outer: _name.NameManager) -> None:
        super().__init__()
        self._outer = outer

    def get(self, name: str | None, hint: str) -> str:
        return self._outer.get(super().get(name, hint), hint)


def fresh_names(build: Build) -> Build:
    """Decorator: run ``build`` under its own name counter (names independent of the past)."""

    @functools.wraps(build)
    def wrapper(*args: Any, **kwargs: Any) -> Symbol:
        with _FreshCounter(_name.current()):
            return build(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


# -- units ---------------------------------------------------------------------------------

Names = Callable[[str], tuple[str, str, str]]


def caffe_names(tag: str) -> tuple[str, str, str]:
    """GoogLeNet / BN-Inception names: ``conv_<tag>``, ``bn_<tag>``, ``relu_<tag>``."""
    return f"conv_{tag}", f"bn_{tag}", f"relu_{tag}"


def tf_names(tag: str) -> tuple[str, str, str]:
    """Inception-v3 names (converted from TensorFlow): ``<tag>_conv2d``, ``_batchnorm``, ``_relu``."""
    return f"{tag}_conv2d", f"{tag}_batchnorm", f"{tag}_relu"


class Conv(NamedTuple):
    """One convolution: width, geometry, and the tag its unit's layer names are made from."""

    num_filter: int
    kernel: tuple[int, int] = (1, 1)
    stride: tuple[int, int] = (1, 1)
    pad: tuple[int, int] = (0, 0)
    tag: str | None = None


def conv_unit(data: Symbol, conv: Conv, *, names: Names | None = None, batch_norm: bool = True,
              **conv_params: Any) -> Symbol:
    """Convolution, optional BatchNorm (MXNet defaults: eps 1e-3, fix_gamma), ReLU.

    With ``names=None`` (or an untagged ``conv``) the three layers take automatic names.
    Networks bind their style once: ``unit = functools.partial(conv_unit, names=caffe_names)``.
    """
    conv_name, bn_name, relu_name = (
        names(conv.tag) if names and conv.tag is not None else (None, None, None))
    net = sym.Convolution(data=data, num_filter=conv.num_filter, kernel=conv.kernel,
                          stride=conv.stride, pad=conv.pad, name=conv_name, **conv_params)
    if batch_norm:
        net = sym.BatchNorm(data=net, name=bn_name)
    return sym.Activation(data=net, act_type="relu", name=relu_name)


Unit = Callable[[Symbol, Conv], Symbol]


def tower(data: Symbol, unit: Unit, convs: Sequence[Conv]) -> Symbol:
    """``convs`` applied one after the other, each as a ``unit``."""
    for conv in convs:
        data = unit(data, conv)
    return data


def pool(data: Symbol, pool_type: str, kernel: tuple[int, int], stride: tuple[int, int] = (1, 1),
         pad: tuple[int, int] = (0, 0), name: str | None = None) -> Symbol:
    """A Pooling layer rounding up as GraphLab's runtime did (:data:`GRAPHLAB_POOLING`)."""
    return sym.Pooling(data=data, pool_type=pool_type, kernel=kernel, stride=stride, pad=pad,
                       pooling_convention=GRAPHLAB_POOLING, name=name)


def classifier(net: Symbol, num_classes: int, flatten: str | None = None,
               fc: str | None = None) -> Symbol:
    """Flatten, the last FullyConnected, and SoftmaxOutput ``softmax`` (label ``softmax_label``)."""
    net = sym.Flatten(data=net, name=flatten)
    net = sym.FullyConnected(data=net, num_hidden=num_classes, name=fc)
    return sym.SoftmaxOutput(data=net, name="softmax")


# -- inception modules ---------------------------------------------------------------------

def inception(data: Symbol, unit: Unit, name: str, branches: Sequence[Symbol], pool_type: str,
              *, proj: Conv | None = None, downsample: bool = False) -> Symbol:
    """Concatenate ``branches`` and a pooled branch of ``data`` (projected by ``proj``).

    The pool is 3x3, stride 1 and pad 1, or stride 2 and no pad when ``downsample`` (the
    window that needs ``'full'`` rounding). Names: ``<pool_type>_pool_<name>_pool`` and
    ``ch_concat_<name>_chconcat``, shared by GoogLeNet, BN-Inception and Inception-v3.
    """
    step, margin = ((2, 2), (0, 0)) if downsample else ((1, 1), (1, 1))
    pooled = pool(data, pool_type, (3, 3), step, margin, name=f"{pool_type}_pool_{name}_pool")
    if proj is not None:
        pooled = unit(pooled, proj)
    return sym.Concat(*branches, pooled, name=f"ch_concat_{name}_chconcat")


class ModuleA(NamedTuple):
    """Widths of a GoogLeNet / BN-Inception module that keeps the spatial size."""

    n1x1: int
    n3x3_reduce: int
    n3x3: int
    nd_reduce: int  # the third tower: 5x5 (GoogLeNet) or double 3x3 (BN-Inception)
    nd: int
    pool_type: str
    proj: int


class ModuleB(NamedTuple):
    """Widths of a BN-Inception module that halves the spatial size (no 1x1, no projection)."""

    n3x3_reduce: int
    n3x3: int
    nd_reduce: int
    nd: int


def _k3(width: int, tag: str, stride: int = 1) -> Conv:
    return Conv(width, (3, 3), (stride, stride), (1, 1), tag)


def inception_a(data: Symbol, unit: Unit, name: str, widths: ModuleA, *,
                double_3x3: bool) -> Symbol:
    """Towers 1x1; 1x1 then 3x3; 1x1 then 5x5 (or two 3x3); pool then 1x1 projection."""
    w = widths
    if double_3x3:
        third = [Conv(w.nd_reduce, tag=f"{name}_double_3x3_reduce"),
                 _k3(w.nd, f"{name}_double_3x3_0"), _k3(w.nd, f"{name}_double_3x3_1")]
    else:
        third = [Conv(w.nd_reduce, tag=f"{name}_5x5_reduce"),
                 Conv(w.nd, (5, 5), pad=(2, 2), tag=f"{name}_5x5")]
    towers = [[Conv(w.n1x1, tag=f"{name}_1x1")],
              [Conv(w.n3x3_reduce, tag=f"{name}_3x3_reduce"), _k3(w.n3x3, f"{name}_3x3")],
              third]
    return inception(data, unit, name, [tower(data, unit, t) for t in towers], w.pool_type,
                     proj=Conv(w.proj, tag=f"{name}_proj"))


def inception_b(data: Symbol, unit: Unit, name: str, widths: ModuleB) -> Symbol:
    """BN-Inception's downsampling module: strided 3x3, strided double 3x3, strided max pool."""
    w = widths
    towers = [[Conv(w.n3x3_reduce, tag=f"{name}_3x3_reduce"), _k3(w.n3x3, f"{name}_3x3", 2)],
              [Conv(w.nd_reduce, tag=f"{name}_double_3x3_reduce"),
               _k3(w.nd, f"{name}_double_3x3_0"), _k3(w.nd, f"{name}_double_3x3_1", 2)]]
    return inception(data, unit, name, [tower(data, unit, t) for t in towers], "max",
                     downsample=True)


def bn_inception(num_classes: int, stem: tuple[int, int, int],
                 modules: Sequence[tuple[str, ModuleA | ModuleB]], **conv_params: Any) -> Symbol:
    """BN-Inception (GraphLab's ``symbol_inception-bn`` family) from its width table.

    ``stem`` holds the widths of ``conv1`` (7x7/2), ``conv2red`` (1x1) and ``conv2`` (3x3);
    ``modules`` the named modules in order. Ends with a 7x7 average pool ``global_pool``,
    ``flatten``, ``fc1`` and ``softmax``.
    """
    unit = functools.partial(conv_unit, names=caffe_names, **conv_params)
    net = unit(sym.Variable("data"), Conv(stem[0], (7, 7), (2, 2), (3, 3), "conv1"))
    net = pool(net, "max", (3, 3), (2, 2), name="pool1")
    net = unit(net, Conv(stem[1], tag="conv2red"))
    net = unit(net, _k3(stem[2], "conv2"))
    net = pool(net, "max", (3, 3), (2, 2), name="pool2")
    for name, widths in modules:
        if isinstance(widths, ModuleA):
            net = inception_a(net, unit, name, widths, double_3x3=True)
        else:
            net = inception_b(net, unit, name, widths)
    net = pool(net, "avg", (7, 7), name="global_pool")
    return classifier(net, num_classes, flatten="flatten", fc="fc1")


# -- VGG -----------------------------------------------------------------------------------

VGG_WIDTHS = (64, 128, 256, 512, 512)


def vgg_logits(data: Symbol, num_classes: int, group_sizes: Sequence[int], *,
               batch_norm: bool = False, pooling_convention: str | None = None,
               renames: dict[str, str] | None = None) -> Symbol:
    """VGG up to ``fc8``: groups of 3x3 convolutions ``conv<i>_<j>`` (+ ``bn<i>_<j>``) +
    ``relu<i>_<j>``, a 2x2 max pool ``pool<i>`` after each group, ``flatten``, then fc6 and fc7
    (4096, ``relu6``/``7``, ``drop6``/``7``) and fc8.

    ``renames`` maps a default layer name to the one a checkpoint uses (GraphLab's quirk);
    ``pooling_convention=None`` leaves the Pooling parameter out, as MXNet's example does.
    """
    renames = renames or {}
    pool_params = {"pooling_convention": pooling_convention} if pooling_convention else {}
    net = data
    for i, (size, width) in enumerate(zip(group_sizes, VGG_WIDTHS), start=1):
        for j in range(1, size + 1):
            net = sym.Convolution(data=net, kernel=(3, 3), pad=(1, 1), num_filter=width,
                                  name=f"conv{i}_{j}")
            if batch_norm:
                net = sym.BatchNorm(data=net, name=f"bn{i}_{j}")
            relu = f"relu{i}_{j}"
            net = sym.Activation(data=net, act_type="relu", name=renames.get(relu, relu))
        net = sym.Pooling(data=net, pool_type="max", kernel=(2, 2), stride=(2, 2),
                          name=f"pool{i}", **pool_params)
    net = sym.Flatten(data=net, name="flatten")
    for k in (6, 7):
        net = sym.FullyConnected(data=net, num_hidden=4096, name=f"fc{k}")
        net = sym.Activation(data=net, act_type="relu", name=f"relu{k}")
        net = sym.Dropout(data=net, p=0.5, name=f"drop{k}")
    return sym.FullyConnected(data=net, num_hidden=num_classes, name="fc8")


# -- MXNet's example networks: float16 ---------------------------------------------------

def check_dtype(dtype: str, network: str) -> None:
    if dtype not in ("float32", "float16"):
        raise ValueError(f"{network}: dtype must be 'float32' or 'float16', got {dtype!r}")


def half_precision(data: Symbol, dtype: str) -> Symbol:
    """``data`` cast to float16 when ``dtype='float16'`` (MXNet's examples' ``Cast``)."""
    return sym.Cast(data=data, dtype="float16") if dtype == "float16" else data


def back_to_float32(logits: Symbol, dtype: str) -> Symbol:
    """The logits cast back to float32 before the loss, when the body ran in float16."""
    return sym.Cast(data=logits, dtype="float32") if dtype == "float16" else logits
