"""mx.builtin_symbols: GraphLab's seven builtin networks and MXNet's example networks.

Where the expected numbers come from:

* GraphLab builtins: parameter counts, layer shapes and feature layers of the reference §7.5
  (MXNet 1.9.1 running the dato-code/mxnet sources with every Pooling set to ``'full'``).
* LeNet: 431,080 (reference §7.6, verified in MXNet 1.9.1), and the MXNet-trained LeNet
  fixture, whose weights must run in our unnamed LeNet and give MXNet's probabilities.
* MLP, VGG, ResNet: layer arithmetic written out below, tied to published counts: torchvision's
  model table (VGG-11/13/16/19 with and without BatchNorm, ResNet-18 11,689,512, ResNet-50
  25,557,032; post-activation ResNet v1) and He et al. 2016 (CIFAR ResNet-20: 0.27M).

Forward + backward passes at batch 1: the small networks run in the default suite, the
ImageNet-size ones are ``slow`` (``make test-slow``).
"""

from __future__ import annotations

import json
import math
from typing import NamedTuple

import numpy as np
import pytest

from framestream import mx
from framestream.errors import ShapeInferenceError
from tests.nn.conftest import MXNET_FIXTURES as FIX

bs = mx.builtin_symbols


# -- expected counts from layer arithmetic -------------------------------------------------

def conv(c_in: int, c_out: int, k: int, bias: bool = True) -> int:
    return c_out * c_in * k * k + (c_out if bias else 0)


def fc(n_in: int, n_out: int) -> int:
    return n_in * n_out + n_out


def bn(channels: int) -> int:
    return 2 * channels  # gamma and beta; moving mean / var are auxiliary states


def mlp_params(n_in: int, classes: int) -> int:
    return fc(n_in, 128) + fc(128, 64) + fc(64, classes)


VGG_LAYERS = {11: (1, 1, 2, 2, 2), 13: (2, 2, 2, 2, 2), 16: (2, 2, 3, 3, 3), 19: (2, 2, 4, 4, 4)}


def vgg_params(num_layers: int, classes: int, batch_norm: bool) -> int:
    total, c_in = 0, 3
    for count, width in zip(VGG_LAYERS[num_layers], (64, 128, 256, 512, 512)):
        for _ in range(count):
            total += conv(c_in, width, 3) + (bn(width) if batch_norm else 0)
            c_in = width
    return total + fc(512 * 7 * 7, 4096) + fc(4096, 4096) + fc(4096, classes)


# torchvision's published counts (1000 classes), the same layers.
TORCHVISION_VGG = {(11, False): 132_863_336, (13, False): 133_047_848, (16, False): 138_357_544,
                   (19, False): 143_667_240, (11, True): 132_868_840, (13, True): 133_053_736,
                   (16, True): 138_365_992, (19, True): 143_678_248}


def resnet_v2_params(units, widths, bottleneck: bool, imagenet: bool, classes: int) -> int:
    """bn_data + conv0 (+ bn0), pre-activation units, final bn1 + fc1; no conv biases."""
    total = bn(3) + conv(3, widths[0], 7 if imagenet else 3, bias=False)
    total += bn(widths[0]) if imagenet else 0
    c_in = widths[0]
    for count, width in zip(units, widths[1:]):
        for j in range(count):
            if bottleneck:
                mid = width // 4
                total += (bn(c_in) + conv(c_in, mid, 1, False) + bn(mid) + conv(mid, mid, 3, False)
                          + bn(mid) + conv(mid, width, 1, False))
            else:
                total += bn(c_in) + conv(c_in, width, 3, False) + bn(width) + conv(width, width, 3, False)
            if j == 0:  # every stage's first unit projects the shortcut
                total += conv(c_in, width, 1, False)
            c_in = width
    return total + bn(c_in) + fc(c_in, classes)


# torchvision's post-activation ResNet-18 (11,689,512) has BatchNorm after each convolution
# and on each projection; MXNet's pre-activation one normalises each unit's input instead,
# adds bn_data (3 channels) and a final bn1, and projects stage 1's shortcut (64 -> 64):
#   + bn_data 6 + stage-1 projection 64*64 + final bn1 2*512
#   - the difference in BatchNorm channels per stage (v1 minus v2): stage 2 192, 3 384, 4 768
RESNET18_V2 = 11_689_512 + 6 + 64 * 64 + 2 * 512 - 2 * (192 + 384 + 768)
# ResNet-50 (25,557,032; projections in all four stages already): + bn_data 6 + final bn1
# 2*2048 - per stage (v1 minus v2 BatchNorm channels) 448, 768, 1536, 3072.
RESNET50_V2 = 25_557_032 + 6 + 2 * 2048 - 2 * (448 + 768 + 1536 + 3072)


# -- the networks --------------------------------------------------------------------------

class Net(NamedTuple):
    build: object  # () -> Symbol
    input_shape: tuple[int, ...]  # without the batch axis
    classes: int
    params: int
    heavy: bool = False  # forward + backward is slow-marked


NETS = {
    "alexnet": Net(bs.symbol_alexnet.get_symbol, (3, 224, 224), 1000, 62_378_344, True),
    "googlenet": Net(bs.symbol_googlenet.get_symbol, (3, 224, 224), 1000, 6_998_552, True),
    "symbol_vgg": Net(bs.symbol_vgg.get_symbol, (3, 224, 224), 1000, 132_863_336, True),
    "inception_bn": Net(bs.symbol_inception_bn.get_symbol, (3, 224, 224), 1000, 11_295_240, True),
    "inception_bn_full": Net(bs.symbol_inception_bn_full.get_symbol, (3, 224, 224), 21841,
                             33_619_969, True),
    "inception_v3": Net(bs.symbol_inception_v3.get_symbol, (3, 299, 299), 1000, 23_834_568, True),
    "inception_bn_28_small": Net(bs.symbol_inception_bn_28_small.get_symbol, (3, 28, 28), 10,
                                 1_652_826),
    "lenet": Net(bs.lenet.get_symbol, (1, 28, 28), 10, 431_080),
    "mlp": Net(bs.mlp.get_symbol, (1, 28, 28), 10, mlp_params(28 * 28, 10)),
    "vgg16_bn": Net(lambda: bs.vgg.get_symbol(10, 16, batch_norm=True), (3, 224, 224), 10,
                    vgg_params(16, 10, True), True),
    "resnet18": Net(lambda: bs.resnet.get_symbol(1000, 18), (3, 224, 224), 1000, RESNET18_V2),
    "resnet50": Net(lambda: bs.resnet.get_symbol(1000, 50), (3, 224, 224), 1000, RESNET50_V2,
                    True),
    "resnet20_cifar": Net(lambda: bs.resnet.get_symbol(10, 20, image_shape="3,28,28"),
                          (3, 28, 28), 10,
                          resnet_v2_params((3, 3, 3), (16, 16, 32, 64), False, False, 10)),
    "resnet164_cifar": Net(lambda: bs.resnet.get_symbol(10, 164, image_shape="3,28,28"),
                           (3, 28, 28), 10,
                           resnet_v2_params((18,) * 3, (16, 64, 128, 256), True, False, 10)),
}


def param_count(net, input_shape) -> int:
    arg_shapes, _, _ = net.infer_shape(data=input_shape)
    return sum(math.prod(shape) for name, shape in zip(net.list_arguments(), arg_shapes)
               if name != "data" and not name.endswith("label"))


def shape_of(net, output: str, input_shape) -> tuple[int, ...]:
    """The shape of an internal output (``<layer>_output``) or argument (``<layer>_weight``)."""
    return tuple(net.get_internals()[output].infer_shape(data=input_shape)[1][0])


# -- shape inference and parameter counts: every network, default suite --------------------

@pytest.mark.parametrize("key", NETS)
def test_parameter_count_and_output_shape(key):
    spec = NETS[key]
    net = spec.build()
    assert param_count(net, (1, *spec.input_shape)) == spec.params
    _, out_shapes, _ = net.infer_shape(data=(2, *spec.input_shape))
    assert out_shapes == [(2, spec.classes)]
    assert net.list_outputs() == ["softmax_output"]
    assert net.list_arguments()[-1] == "softmax_label"


def test_arithmetic_matches_published_counts():
    """The formulas above reproduce the published counts they stand in for."""
    for (layers, batch_norm), published in TORCHVISION_VGG.items():
        assert vgg_params(layers, 1000, batch_norm) == published
    assert resnet_v2_params((2, 2, 2, 2), (64, 64, 128, 256, 512), False, True, 1000) == RESNET18_V2
    assert resnet_v2_params((3, 4, 6, 3), (64, 256, 512, 1024, 2048), True, True,
                            1000) == RESNET50_V2
    assert round(NETS["resnet20_cifar"].params / 1e6, 2) == 0.27  # He et al. 2016, table 6
    assert NETS["mlp"].params == 109_386


@pytest.mark.parametrize("num_layers", sorted(VGG_LAYERS))
@pytest.mark.parametrize("batch_norm", [False, True])
def test_vgg_example_counts(num_layers, batch_norm):
    net = bs.vgg.get_symbol(1000, num_layers, batch_norm=batch_norm)
    assert param_count(net, (1, 3, 224, 224)) == TORCHVISION_VGG[num_layers, batch_norm]
    assert ("bn1_1_gamma" in net.list_arguments()) is batch_norm


@pytest.mark.parametrize("num_layers", [34, 101, 152])
def test_resnet_imagenet_depths(num_layers):
    units = bs.resnet.IMAGENET_UNITS[num_layers]
    widths = (64, 256, 512, 1024, 2048) if num_layers >= 50 else (64, 64, 128, 256, 512)
    net = bs.resnet.get_symbol(1000, num_layers)
    assert param_count(net, (1, 3, 224, 224)) == resnet_v2_params(units, widths, num_layers >= 50,
                                                                  True, 1000)


# (network, internal output or argument, shape at batch 1)
LAYER_SHAPES = [
    ("alexnet", "fullyconnected0_weight", (4096, 9216)),
    ("alexnet", "pooling2_output", (1, 256, 6, 6)),
    ("alexnet", "dropout1_output", (1, 4096)),
    ("googlenet", "flatten0_output", (1, 1024)),
    ("googlenet", "ch_concat_in5b_chconcat_output", (1, 1024, 7, 7)),
    ("symbol_vgg", "fc6_weight", (4096, 25088)),
    ("symbol_vgg", "conv1_2_output", (1, 512, 14, 14)),  # GraphLab's name for relu5_2
    ("symbol_vgg", "drop7_output", (1, 4096)),
    ("inception_bn", "flatten_output", (1, 1024)),
    ("inception_bn", "fc1_weight", (1000, 1024)),
    ("inception_bn_full", "conv_conv1_weight", (96, 3, 7, 7)),
    ("inception_bn_full", "conv_4d_double_3x3_1_weight", (96, 96, 3, 3)),
    ("inception_bn_full", "fc1_weight", (21841, 1024)),
    ("inception_v3", "flatten_output", (1, 2048)),
    ("inception_v3", "ch_concat_mixed_10_chconcat_output", (1, 2048, 8, 8)),
    ("inception_v3", "mixed_9_tower_1_mixed_conv_1_conv2d_weight", (384, 384, 3, 1)),
    ("inception_bn_28_small", "flatten1_output", (1, 336)),
    ("inception_bn_28_small", "concat2_output", (1, 160, 14, 14)),
    ("lenet", "fullyconnected0_weight", (500, 800)),
    ("resnet50", "flatten0_output", (1, 2048)),  # Turi Create's resnet-50 features
    ("resnet50", "stage1_unit1_sc_weight", (256, 64, 1, 1)),
    ("resnet20_cifar", "stage3_unit3_conv2_weight", (64, 64, 3, 3)),
]


@pytest.mark.parametrize(("key", "output", "shape"), LAYER_SHAPES,
                         ids=[f"{k}-{o}" for k, o, _ in LAYER_SHAPES])
def test_layer_shapes(key, output, shape):
    spec = NETS[key]
    net = spec.build()
    if output.endswith("_output"):
        assert shape_of(net, output, (1, *spec.input_shape)) == shape
    else:
        arg_shapes, _, _ = net.infer_shape(data=(1, *spec.input_shape))
        assert dict(zip(net.list_arguments(), arg_shapes))[output] == shape


def test_inception_bn_module_channels():
    net = bs.symbol_inception_bn.get_symbol()
    modules = ["3a", "3b", "3c", "4a", "4b", "4c", "4d", "4e", "5a", "5b"]
    channels = [shape_of(net, f"ch_concat_{m}_chconcat_output", (1, 3, 224, 224))[1]
                for m in modules]
    assert channels == [256, 320, 576, 576, 576, 608, 608, 1056, 1024, 1024]


def _ops(net, op_name):
    nodes = json.loads(net.tojson())["nodes"]
    return [n for n in nodes if n["op"] == op_name]


# (network, convolutions, BatchNorms, convolutions with a bias)
LAYER_COUNTS = [
    ("googlenet", 57, 0, 57),
    ("inception_bn", 69, 69, 69),
    ("inception_bn_full", 69, 69, 69),
    ("inception_v3", 94, 94, 0),
    ("inception_bn_28_small", 19, 19, 19),
]


@pytest.mark.parametrize(("key", "n_conv", "n_bn", "n_bias"), LAYER_COUNTS)
def test_layer_counts(key, n_conv, n_bn, n_bias):
    net = NETS[key].build()
    assert len(_ops(net, "Convolution")) == n_conv
    assert len(_ops(net, "BatchNorm")) == n_bn
    assert len(net.list_auxiliary_states()) == 2 * n_bn
    assert sum(n.endswith("_bias") for n in net.list_arguments()) == n_bias + 1  # + classifier


def test_graphlab_builtins_pool_rounding_up_and_workspace():
    for name in bs.list_builtins(graphlab_only=True):
        pools = _ops(getattr(bs, name).get_symbol(), "Pooling")
        assert pools and all(p["attrs"]["pooling_convention"] == "full" for p in pools), name
    convs = _ops(bs.symbol_inception_bn_full.get_symbol(), "Convolution")
    assert {c["attrs"]["workspace"] for c in convs} == {"512"}
    assert all("pooling_convention" not in p["attrs"]
               for p in _ops(bs.resnet.get_symbol(10, 18), "Pooling"))  # MXNet 1.x default


# -- names ---------------------------------------------------------------------------------

def test_graphlab_names_and_quirks():
    alexnet = bs.symbol_alexnet.get_symbol()
    assert alexnet.list_arguments() == [
        "data", *[f"convolution{i}_{p}" for i in range(5) for p in ("weight", "bias")],
        *[f"fullyconnected{i}_{p}" for i in range(3) for p in ("weight", "bias")],
        "softmax_label"]
    assert {"lrn0_output", "lrn1_output", "dropout0_output"} <= set(
        alexnet.get_internals().list_outputs())
    vgg = bs.symbol_vgg.get_symbol().get_internals().list_outputs()
    assert "conv1_2_output" in vgg and "relu5_2_output" not in vgg
    v3 = bs.symbol_inception_v3.get_symbol().list_arguments()
    assert v3[1:4] == ["conv_conv2d_weight", "conv_batchnorm_gamma", "conv_batchnorm_beta"]
    assert "mixed_tower_2_conv_conv2d_weight" in v3
    bn = bs.symbol_inception_bn.get_symbol()
    assert bn.list_auxiliary_states()[:2] == ["bn_conv1_moving_mean", "bn_conv1_moving_var"]
    assert "avg_pool_3a_pool_output" in bn.get_internals().list_outputs()
    assert "max_pool_3c_pool_output" in bn.get_internals().list_outputs()


def test_names_do_not_depend_on_what_was_built_before():
    first = bs.symbol_googlenet.get_symbol().get_internals().list_outputs()
    for _ in range(2):  # advance the process-global counters
        mx.sym.FullyConnected(data=mx.sym.Pooling(data=mx.sym.Variable("x"), kernel=(2, 2)),
                              num_hidden=2)
    again = bs.symbol_googlenet.get_symbol().get_internals().list_outputs()
    assert again == first
    assert {"pooling0_output", "pooling4_output", "flatten0_output",
            "fullyconnected0_output"} <= set(again)


def test_name_prefix_still_applies():
    with mx.name.Prefix("p_"):
        net = bs.lenet.get_symbol()
    assert net.list_arguments()[1] == "p_convolution0_weight"
    assert net.list_outputs() == ["p_softmax_output"]


def test_lenet_runs_mxnet_trained_weights():
    """MXNet's LeNet checkpoint (named layers) loads by position and gives MXNet's numbers."""
    trained, arg_params, _ = mx.model.load_checkpoint(str(FIX / "lenet_digits"), 1)
    digits = np.load(FIX / "digits28_val.npz")
    expected = np.load(FIX / "lenet_digits_expected.npz")
    net = bs.lenet.get_symbol()
    renamed = {ours: arg_params[theirs]
               for ours, theirs in zip(net.list_arguments(), trained.list_arguments())
               if theirs in arg_params}
    assert len(renamed) == 8
    exe = net.simple_bind(mx.cpu(), grad_req="null", data=digits["X"].shape)
    exe.copy_params_from(renamed)
    probs = exe.forward(is_train=False, data=digits["X"])[0].asnumpy()
    np.testing.assert_allclose(probs, expected["probs"], rtol=1e-5, atol=1e-5)


# -- the pooling trap ----------------------------------------------------------------------

def _with_valid_pooling(net):
    """The same graph with every Pooling rounding down (MXNet 1.x's default, and what 1.x made
    of GraphLab-era JSON files, which carry no pooling_convention)."""
    text = net.tojson().replace('"pooling_convention": "full"', '"pooling_convention": "valid"')
    return mx.sym.load_json(text)


def test_valid_pooling_breaks_inception_bn():
    net = _with_valid_pooling(bs.symbol_inception_bn.get_symbol())
    with pytest.raises(ShapeInferenceError, match=r"ch_concat_3c_chconcat.*14, 14.*13, 13"):
        net.infer_shape(data=(1, 3, 224, 224))


@pytest.mark.parametrize("key", ["googlenet", "inception_bn_full", "inception_bn_28_small"])
def test_valid_pooling_breaks_other_builtins(key):
    spec = NETS[key]
    with pytest.raises(ShapeInferenceError):
        _with_valid_pooling(spec.build()).infer_shape(data=(1, *spec.input_shape))


def test_valid_pooling_shrinks_alexnet_and_spares_inception_v3():
    alexnet = _with_valid_pooling(bs.symbol_alexnet.get_symbol())
    assert alexnet.infer_shape(data=(1, 3, 224, 224))[0][11] == (4096, 6400)
    v3 = _with_valid_pooling(bs.symbol_inception_v3.get_symbol())
    assert param_count(v3, (1, 3, 299, 299)) == NETS["inception_v3"].params


# -- arguments -----------------------------------------------------------------------------

def test_list_builtins():
    names = bs.list_builtins()
    assert names[:7] == bs.list_builtins(graphlab_only=True)
    assert {"symbol_inception_bn_28_small", "lenet", "mlp", "vgg", "resnet"} <= set(names)
    assert all(callable(getattr(bs, n).get_symbol) for n in names)


def test_defaults_and_custom_classes():
    assert bs.symbol_inception_bn_full.get_symbol().infer_shape(data=(1, 3, 224, 224))[1] == [
        (1, 21841)]
    net = bs.symbol_inception_v3.get_symbol(num_classes=5)
    assert net.infer_shape(data=(1, 3, 299, 299))[1] == [(1, 5)]
    # MXNet's training scripts pass their whole command line to the examples
    assert bs.mlp.get_symbol(num_classes=3, batch_size=4).infer_shape(data=(4, 7))[1] == [(4, 3)]


def test_resnet_layouts():
    small = bs.resnet.get_symbol(10, 18, image_shape="3,32,32")  # ImageNet stages, 3x3 stem
    assert "bn0_gamma" not in small.list_arguments()
    assert shape_of(small, "flatten0_output", (1, 3, 32, 32)) == (1, 512)
    assert bs.resnet.get_symbol(10, 20, image_shape=(3, 28, 28)).list_arguments()[:4] == [
        "data", "bn_data_gamma", "bn_data_beta", "conv0_weight"]
    assert "id_output" in small.get_internals().list_outputs()


def test_float16_casts():
    for net in (bs.vgg.get_symbol(10, 11, dtype="float16"),
                bs.resnet.get_symbol(10, 20, image_shape="3,28,28", dtype="float16")):
        assert len(_ops(net, "Cast")) == 2
        _, out_types, _ = net.infer_type(data=np.float32)
        assert out_types == [np.float32]


@pytest.mark.parametrize(("build", "message"), [
    (lambda: bs.vgg.get_symbol(10, 12), "num_layers must be one of"),
    (lambda: bs.vgg.get_symbol(10, 16, dtype="int8"), "dtype"),
    (lambda: bs.resnet.get_symbol(10, 19), "num_layers must be one of"),
    (lambda: bs.resnet.get_symbol(10, 21, image_shape="3,28,28"), "6n \\+ 2"),
    (lambda: bs.resnet.get_symbol(10, 18, image_shape="224,224"), "image_shape"),
    (lambda: bs.lenet.get_symbol(add_stn=True), "SpatialTransformer"),
])
def test_bad_arguments(build, message):
    with pytest.raises(ValueError, match=message):
        build()


# -- forward and backward at batch 1 -------------------------------------------------------

def forward_backward(spec: Net) -> None:
    net = spec.build()
    shape = (1, *spec.input_shape)
    exe = net.simple_bind(mx.cpu(), data=shape)
    init = mx.init.Xavier(rnd_type="gaussian", factor_type="in", magnitude=2)
    rng = np.random.default_rng(0)
    for name, arr in exe.arg_dict.items():
        if name == "data":
            arr[:] = rng.standard_normal(shape, dtype=np.float32)
        elif name == "softmax_label":
            arr[:] = rng.integers(0, spec.classes, size=1)
        else:
            init(name, arr)
    for name, arr in exe.aux_dict.items():
        init(name, arr)
    probs = exe.forward(is_train=True)[0].asnumpy()
    assert probs.shape == (1, spec.classes)
    assert np.isfinite(probs).all()
    np.testing.assert_allclose(probs.sum(), 1.0, rtol=1e-4)
    exe.backward()
    arg_shapes = dict(zip(net.list_arguments(), net.infer_shape(data=shape)[0]))
    for name, grad in exe.grad_dict.items():
        values = grad.asnumpy()
        assert values.shape == arg_shapes[name], name
        assert np.isfinite(values).all(), name
    classifier_bias = [n for n in net.list_arguments() if n.endswith("_bias")][-1]
    assert np.abs(exe.grad_dict[classifier_bias].asnumpy()).sum() > 0
    assert np.abs(exe.grad_dict["data"].asnumpy()).sum() > 0


LIGHT = [k for k, spec in NETS.items() if not spec.heavy]
HEAVY = [k for k, spec in NETS.items() if spec.heavy]


@pytest.mark.parametrize("key", LIGHT)
def test_forward_backward(key):
    forward_backward(NETS[key])


@pytest.mark.slow
@pytest.mark.parametrize("key", HEAVY)
def test_forward_backward_imagenet_size(key):
    forward_backward(NETS[key])
