"""Record single-operator oracle data from real Apache MXNet 1.9.1.

Runs ONLY under the separate MXNet virtualenv (MXNet 1.9.1 needs numpy 1.23.5,
which clashes with the project's own numpy 2 venv):

    python3 -m venv bench/.venv-mxnet
    bench/.venv-mxnet/bin/pip install mxnet==1.9.1 numpy==1.23.5
    bench/.venv-mxnet/bin/python scripts/mxnet_oracle/make_op_fixtures.py

(run from the repository root; ``--out-dir DIR`` writes elsewhere, ``--mkldnn``
keeps MXNet's oneDNN/MKLDNN kernels and subgraph fusion instead of the plain CPU
kernels used by default).

Its outputs, ``tests/nn/data/mxnet_ops.json`` and ``tests/nn/data/mxnet_ops.npz``,
are committed, so the project's tests never need MXNet installed.

For each configuration in ``CASES`` it builds a one-operator symbol with MXNet's
symbolic API (every input auto-created by MXNet, so argument names are
``<node>_<suffix>``; variadic operators get variables ``<node>_arg<i>``), binds it
to fixed seeded float32 inputs, runs ``forward(is_train=...)`` and
``backward(head_grads, is_train=...)`` and records:

* op name as in ``tojson()``, the attribute strings MXNet keeps, list_arguments,
  list_auxiliary_states, list_outputs, argument/aux suffixes, inferred shapes;
* npz keys of inputs (``<id>.arg.<name>``), aux states before and after forward
  and after backward (``<id>.aux_before.<name>``, ``<id>.aux_after.<name>``,
  ``<id>.aux_after_backward.<name>``), outputs
  (``<id>.out.<output name>``), head gradients (``<id>.head.<output name>``) and
  input gradients (``<id>.grad.<name>``; grad_req 'write' for every float argument,
  'null' for labels, indices and ROIs).

Loss layers (whose head gradients MXNet ignores) and MakeLoss get ones as head
gradients. The JSON also holds naming facts (auto-generated names, how attributes
are serialized) taken from MXNet itself, and the configurations MXNet refused.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import re
import sys
import zipfile
import zlib

import mxnet_kernels  # noqa: F401, E402  (chooses the kernels before mxnet loads)

# isort: split
import mxnet as mx  # noqa: E402
import numpy as np  # noqa: E402

# ---------------------------------------------------------------------------
# Input specifications: a shape tuple (standard normal) or a tagged tuple.
#   ("pos", shape)              uniform(0.5, 2.0)
#   ("uni", shape, lo, hi)      uniform(lo, hi)
#   ("cls", shape, n)           integer classes in [0, n), stored as float
#   ("cls_ign", shape, n, ign)  classes with at least one entry == ign
#   ("idx", shape, n)           integer indices in [0, n), stored as float
#   ("const", nested list)      given values
# Suffixes listed in a case's ``nograd`` (and every cls/cls_ign/idx/const input
# unless ``grad`` overrides) get grad_req 'null'.
# ---------------------------------------------------------------------------

N, C, H, W = 2, 3, 5, 5
IMG = (N, C, H, W)
IMG4 = (2, 4, 6, 6)
POOL_IMG = (2, 3, 6, 8)  # (6-3) and (8-3) odd: 'full' != 'valid' for k=3, s=2

LOSS_OPS = {
    "SoftmaxOutput",
    "LinearRegressionOutput",
    "LogisticRegressionOutput",
    "MAERegressionOutput",
    "MakeLoss",
}


SO_ND_NOTE = (
    "Without multi_output/preserve_shape MXNet infers label shape = data.shape[:-1], but forward "
    "takes softmax over data reshaped to (N, -1) and backward uses only the first N labels of the "
    "flattened label (p - onehot(label.ravel()[:N]))."
)
BN_VAR_NOTE = (
    "With output_mean_var the 'var' output is the inverse std 1/sqrt(var + eps): of the batch "
    "variance in training, of moving_var in inference (where 'mean' = moving_mean)."
)


def case(cid, op, attrs=None, inputs=None, is_train=True, **extra):
    c = {"id": cid, "op": op, "attrs": attrs or {}, "inputs": inputs or {}, "is_train": is_train}
    c.update(extra)
    return c


def build_cases():
    cs = []
    # FullyConnected
    cs += [
        case("fc_flatten", "FullyConnected", {"num_hidden": 4}, {"data": IMG}),
        case("fc_2d", "FullyConnected", {"num_hidden": 5}, {"data": (2, 7)}),
        case("fc_no_bias", "FullyConnected", {"num_hidden": 4, "no_bias": True}, {"data": IMG}),
        case(
            "fc_noflatten",
            "FullyConnected",
            {"num_hidden": 4, "flatten": False},
            {"data": (2, 3, 5)},
        ),
        case(
            "fc_noflatten_nobias",
            "FullyConnected",
            {"num_hidden": 2, "flatten": False, "no_bias": True},
            {"data": (2, 2, 3, 4)},
        ),
    ]
    # Convolution
    cs += [
        case("conv_basic", "Convolution", {"kernel": (3, 3), "num_filter": 4}, {"data": IMG}),
        case(
            "conv_stride_pad",
            "Convolution",
            {"kernel": (3, 3), "num_filter": 4, "stride": (2, 2), "pad": (1, 1)},
            {"data": (2, 3, 7, 7)},
        ),
        case(
            "conv_rect",
            "Convolution",
            {"kernel": (3, 2), "num_filter": 2, "stride": (1, 2), "pad": (0, 1)},
            {"data": (2, 3, 6, 7)},
        ),
        case(
            "conv_dilate",
            "Convolution",
            {"kernel": (3, 3), "num_filter": 2, "dilate": (2, 2), "pad": (1, 1)},
            {"data": (2, 3, 7, 7)},
        ),
        case(
            "conv_group2",
            "Convolution",
            {"kernel": (3, 3), "num_filter": 4, "num_group": 2},
            {"data": IMG4},
        ),
        case(
            "conv_depthwise",
            "Convolution",
            {"kernel": (3, 3), "num_filter": 4, "num_group": 4, "pad": (1, 1)},
            {"data": IMG4},
        ),
        case(
            "conv_depthwise_mult2",
            "Convolution",
            {"kernel": (3, 3), "num_filter": 8, "num_group": 4},
            {"data": IMG4},
        ),
        case(
            "conv_no_bias",
            "Convolution",
            {"kernel": (3, 3), "num_filter": 3, "no_bias": True, "pad": (1, 1)},
            {"data": IMG},
        ),
        case("conv_1x1", "Convolution", {"kernel": (1, 1), "num_filter": 5}, {"data": IMG}),
        case(
            "conv_1d",
            "Convolution",
            {"kernel": (3,), "num_filter": 4, "stride": (2,), "pad": (1,)},
            {"data": (2, 3, 9)},
        ),
        case(
            "conv_3d",
            "Convolution",
            {"kernel": (2, 2, 2), "num_filter": 2},
            {"data": (1, 2, 3, 4, 4)},
        ),
    ]
    # Deconvolution
    cs += [
        case("deconv_basic", "Deconvolution", {"kernel": (3, 3), "num_filter": 2}, {"data": IMG}),
        case(
            "deconv_bias",
            "Deconvolution",
            {"kernel": (3, 3), "num_filter": 2, "no_bias": False},
            {"data": IMG},
        ),
        case(
            "deconv_stride_pad",
            "Deconvolution",
            {"kernel": (3, 3), "num_filter": 2, "stride": (2, 2), "pad": (1, 1)},
            {"data": IMG},
        ),
        case(
            "deconv_adj",
            "Deconvolution",
            {"kernel": (3, 3), "num_filter": 2, "stride": (2, 2), "pad": (1, 1), "adj": (1, 1)},
            {"data": IMG},
        ),
        case(
            "deconv_target_shape",
            "Deconvolution",
            {"kernel": (4, 4), "num_filter": 2, "stride": (2, 2), "target_shape": (10, 10)},
            {"data": IMG},
        ),
        case(
            "deconv_target_shape_odd",
            "Deconvolution",
            {"kernel": (3, 3), "num_filter": 3, "stride": (2, 2), "target_shape": (10, 11)},
            {"data": IMG},
        ),
        case(
            "deconv_group2",
            "Deconvolution",
            {"kernel": (3, 3), "num_filter": 4, "num_group": 2, "stride": (2, 2)},
            {"data": IMG4},
        ),
        case(
            "deconv_dilate",
            "Deconvolution",
            {"kernel": (3, 3), "num_filter": 2, "dilate": (2, 2)},
            {"data": IMG},
        ),
        case(
            "deconv_1d",
            "Deconvolution",
            {"kernel": (3,), "num_filter": 2, "stride": (2,), "no_bias": False},
            {"data": (2, 3, 5)},
        ),
    ]
    # BatchNorm: moving stats non-trivial, gamma ~ normal (!= 1)
    bn_aux = {"moving_mean": (C,), "moving_var": ("pos", (C,))}
    bn_in = {"data": IMG, **bn_aux}
    cs += [
        case("bn_train", "BatchNorm", {}, bn_in),
        case("bn_train_nofix", "BatchNorm", {"fix_gamma": False}, bn_in),
        case(
            "bn_train_nofix_eps_mom",
            "BatchNorm",
            {"fix_gamma": False, "eps": 1e-3, "momentum": 0.8},
            bn_in,
        ),
        case("bn_train_global", "BatchNorm", {"fix_gamma": False, "use_global_stats": True}, bn_in),
        case("bn_train_fix_global", "BatchNorm", {"use_global_stats": True}, bn_in),
        case(
            "bn_train_mean_var",
            "BatchNorm",
            {"fix_gamma": False, "output_mean_var": True},
            bn_in,
            note=BN_VAR_NOTE,
        ),
        case(
            "bn_train_axis_last",
            "BatchNorm",
            {"fix_gamma": False, "axis": -1},
            {"data": (2, 3, 4), "moving_mean": (4,), "moving_var": ("pos", (4,))},
        ),
        case("bn_train_2d", "BatchNorm", {"fix_gamma": False}, {"data": (4, 3), **bn_aux}),
        case("bn_infer", "BatchNorm", {}, bn_in, is_train=False),
        case("bn_infer_nofix", "BatchNorm", {"fix_gamma": False}, bn_in, is_train=False),
        case(
            "bn_infer_global",
            "BatchNorm",
            {"fix_gamma": False, "use_global_stats": True},
            bn_in,
            is_train=False,
        ),
        case(
            "bn_infer_mean_var",
            "BatchNorm",
            {"fix_gamma": False, "output_mean_var": True},
            bn_in,
            is_train=False,
            note=BN_VAR_NOTE,
        ),
    ]
    # Activation / LeakyReLU
    for act in ["relu", "sigmoid", "tanh", "softrelu", "softsign"]:
        cs.append(case(f"act_{act}", "Activation", {"act_type": act}, {"data": IMG}))
    cs += [
        case("lrelu_leaky", "LeakyReLU", {"act_type": "leaky", "slope": 0.1}, {"data": IMG}),
        case("lrelu_leaky_default", "LeakyReLU", {}, {"data": IMG}),
        case(
            "lrelu_prelu",
            "LeakyReLU",
            {"act_type": "prelu"},
            {"data": IMG, "gamma": ("uni", (C,), 0.05, 0.5)},
        ),
        case(
            "lrelu_prelu_2d",
            "LeakyReLU",
            {"act_type": "prelu"},
            {"data": (4, 3), "gamma": ("uni", (3,), 0.05, 0.5)},
        ),
        case("lrelu_elu", "LeakyReLU", {"act_type": "elu", "slope": 0.7}, {"data": IMG}),
        case("lrelu_selu", "LeakyReLU", {"act_type": "selu"}, {"data": IMG}),
        case("lrelu_gelu", "LeakyReLU", {"act_type": "gelu"}, {"data": IMG}),
        case(
            "lrelu_rrelu_infer",
            "LeakyReLU",
            {"act_type": "rrelu", "lower_bound": 0.1, "upper_bound": 0.3},
            {"data": IMG},
            is_train=False,
        ),
    ]
    # Pooling
    for pt in ["max", "avg", "sum"]:
        for conv in ["valid", "full"]:
            cs.append(
                case(
                    f"pool_{pt}_{conv}",
                    "Pooling",
                    {
                        "kernel": (3, 3),
                        "stride": (2, 2),
                        "pool_type": pt,
                        "pooling_convention": conv,
                    },
                    {"data": POOL_IMG},
                )
            )
            cs.append(
                case(
                    f"pool_{pt}_{conv}_pad",
                    "Pooling",
                    {
                        "kernel": (3, 3),
                        "stride": (2, 2),
                        "pad": (1, 1),
                        "pool_type": pt,
                        "pooling_convention": conv,
                    },
                    {"data": POOL_IMG},
                )
            )
        cs.append(
            case(
                f"pool_{pt}_global",
                "Pooling",
                {"kernel": (3, 3), "pool_type": pt, "global_pool": True},
                {"data": POOL_IMG},
            )
        )
    cs += [
        case(
            "pool_avg_pad_noinclude",
            "Pooling",
            {
                "kernel": (3, 3),
                "stride": (2, 2),
                "pad": (1, 1),
                "pool_type": "avg",
                "count_include_pad": False,
            },
            {"data": POOL_IMG},
        ),
        case(
            "pool_avg_full_pad_noinclude",
            "Pooling",
            {
                "kernel": (3, 3),
                "stride": (2, 2),
                "pad": (1, 1),
                "pool_type": "avg",
                "pooling_convention": "full",
                "count_include_pad": False,
            },
            {"data": POOL_IMG},
        ),
        case(
            "pool_max_same",
            "Pooling",
            {"kernel": (3, 3), "stride": (2, 2), "pool_type": "max", "pooling_convention": "same"},
            {"data": POOL_IMG},
        ),
        case(
            "pool_max_same_1d",
            "Pooling",
            {"kernel": (3,), "stride": (2,), "pool_type": "max", "pooling_convention": "same"},
            {"data": (2, 3, 8)},
        ),
        case(
            "pool_avg_same_1d_pad",
            "Pooling",
            {
                "kernel": (3,),
                "stride": (2,),
                "pad": (1,),
                "pool_type": "avg",
                "pooling_convention": "same",
            },
            {"data": (2, 3, 7)},
        ),
        case(
            "pool_max_k2s2",
            "Pooling",
            {"kernel": (2, 2), "stride": (2, 2), "pool_type": "max"},
            {"data": IMG},
        ),
        case(
            "pool_max_default_stride",
            "Pooling",
            {"kernel": (2, 2), "pool_type": "max"},
            {"data": IMG},
        ),
        case(
            "pool_global_nokernel",
            "Pooling",
            {"pool_type": "avg", "global_pool": True},
            {"data": POOL_IMG},
        ),
        case(
            "pool_lp2",
            "Pooling",
            {"kernel": (2, 2), "stride": (2, 2), "pool_type": "lp", "p_value": 2},
            {"data": IMG},
        ),
        case(
            "pool_max_1d",
            "Pooling",
            {"kernel": (3,), "stride": (2,), "pool_type": "max", "pooling_convention": "full"},
            {"data": (2, 3, 8)},
        ),
    ]
    # Flatten, Dropout, Concat
    cs += [
        case("flatten_4d", "Flatten", {}, {"data": IMG}),
        case("flatten_2d", "Flatten", {}, {"data": (3, 4)}),
        case("dropout_infer", "Dropout", {"p": 0.5}, {"data": IMG}, is_train=False),
        case(
            "concat_dim1",
            "Concat",
            {"dim": 1, "num_args": 3},
            {"arg0": IMG, "arg1": (2, 1, 5, 5), "arg2": (2, 2, 5, 5)},
            variadic=3,
        ),
        case(
            "concat_dim0",
            "Concat",
            {"dim": 0, "num_args": 2},
            {"arg0": (2, 3, 4), "arg1": (1, 3, 4)},
            variadic=2,
        ),
        case(
            "concat_default",
            "Concat",
            {"num_args": 2},
            {"arg0": (2, 3), "arg1": (2, 2)},
            variadic=2,
        ),
    ]
    # LRN
    cs += [
        case("lrn_3", "LRN", {"nsize": 3}, {"data": (2, 6, 4, 4)}),
        case(
            "lrn_5",
            "LRN",
            {"nsize": 5, "alpha": 0.01, "beta": 0.5, "knorm": 1.5},
            {"data": (2, 6, 4, 4)},
        ),
    ]
    # SoftmaxOutput
    so = (4, 5)
    cs += [
        case("so_basic", "SoftmaxOutput", {}, {"data": so, "label": ("cls", (4,), 5)}),
        case(
            "so_norm_batch",
            "SoftmaxOutput",
            {"normalization": "batch"},
            {"data": so, "label": ("cls", (4,), 5)},
        ),
        case(
            "so_norm_valid",
            "SoftmaxOutput",
            {"normalization": "valid"},
            {"data": so, "label": ("cls", (4,), 5)},
        ),
        case(
            "so_grad_scale",
            "SoftmaxOutput",
            {"grad_scale": 0.5},
            {"data": so, "label": ("cls", (4,), 5)},
        ),
        case(
            "so_ignore_null",
            "SoftmaxOutput",
            {"use_ignore": True, "ignore_label": 2},
            {"data": (6, 5), "label": ("cls_ign", (6,), 5, 2)},
        ),
        case(
            "so_ignore_valid",
            "SoftmaxOutput",
            {"use_ignore": True, "ignore_label": 2, "normalization": "valid"},
            {"data": (6, 5), "label": ("cls_ign", (6,), 5, 2)},
        ),
        case(
            "so_ignore_batch",
            "SoftmaxOutput",
            {"use_ignore": True, "ignore_label": 2, "normalization": "batch"},
            {"data": (6, 5), "label": ("cls_ign", (6,), 5, 2)},
        ),
        case(
            "so_ignore_neg1",
            "SoftmaxOutput",
            {"use_ignore": True, "normalization": "valid"},
            {"data": (6, 5), "label": ("cls_ign", (6,), 5, -1)},
        ),
        case(
            "so_multi_output",
            "SoftmaxOutput",
            {"multi_output": True},
            {"data": (2, 4, 3, 3), "label": ("cls", (2, 3, 3), 4)},
        ),
        case(
            "so_multi_output_flatlabel",
            "SoftmaxOutput",
            {"multi_output": True},
            {"data": (2, 4, 3, 3), "label": ("cls", (2, 9), 4)},
        ),
        case(
            "so_multi_output_valid_ignore",
            "SoftmaxOutput",
            {
                "multi_output": True,
                "use_ignore": True,
                "ignore_label": 0,
                "normalization": "valid",
                "grad_scale": 2.0,
            },
            {"data": (2, 4, 3, 3), "label": ("cls_ign", (2, 3, 3), 4, 0)},
        ),
        case(
            "so_preserve_shape",
            "SoftmaxOutput",
            {"preserve_shape": True},
            {"data": (2, 3, 5), "label": ("cls", (2, 3), 5)},
        ),
        # refused by MXNet (kept to document it): label shape must be data shape minus last axis
        case(
            "so_4d_no_multi",
            "SoftmaxOutput",
            {},
            {"data": (2, 3, 2, 2), "label": ("cls", (2,), 12)},
        ),
        case(
            "so_4d_label_3d",
            "SoftmaxOutput",
            {},
            {"data": (2, 3, 2, 2), "label": ("cls", (2, 3, 2), 2)},
            note=SO_ND_NOTE,
        ),
        case(
            "so_3d_label_2d",
            "SoftmaxOutput",
            {},
            {"data": (2, 3, 5), "label": ("cls", (2, 3), 5)},
            note=SO_ND_NOTE,
        ),
        case(
            "so_infer",
            "SoftmaxOutput",
            {},
            {"data": so, "label": ("cls", (4,), 5)},
            is_train=False,
            backward=False,
        ),
    ]
    # Regression outputs
    cs += [
        case(
            "linreg",
            "LinearRegressionOutput",
            {},
            {"data": (4, 3), "label": (4, 3)},
            nograd=["label"],
        ),
        case(
            "linreg_scale",
            "LinearRegressionOutput",
            {"grad_scale": 2.0},
            {"data": (4, 3), "label": (4, 3)},
            nograd=["label"],
        ),
        case(
            "linreg_1d_label",
            "LinearRegressionOutput",
            {},
            {"data": (4, 1), "label": (4,)},
            nograd=["label"],
        ),
        case(
            "logreg",
            "LogisticRegressionOutput",
            {},
            {"data": (4, 3), "label": ("uni", (4, 3), 0.0, 1.0)},
            nograd=["label"],
        ),
        case(
            "maereg", "MAERegressionOutput", {}, {"data": (4, 3), "label": (4, 3)}, nograd=["label"]
        ),
        case(
            "maereg_scale",
            "MAERegressionOutput",
            {"grad_scale": 0.5},
            {"data": (4, 3), "label": (4, 3)},
            nograd=["label"],
        ),
    ]
    # ElementWiseSum / add_n
    cs += [
        case(
            "ewsum_3",
            "ElementWiseSum",
            {"num_args": 3},
            {"arg0": (2, 3), "arg1": (2, 3), "arg2": (2, 3)},
            variadic=3,
        ),
        case("add_n_2", "add_n", {"num_args": 2}, {"arg0": IMG, "arg1": IMG}, variadic=2),
    ]
    # Reshape
    rs = (2, 3, 4, 5)
    cs += [
        case("reshape_plain", "Reshape", {"shape": (6, 20)}, {"data": rs}),
        case("reshape_0_m1", "Reshape", {"shape": (0, -1)}, {"data": rs}),
        case("reshape_m2", "Reshape", {"shape": (-2,)}, {"data": rs}),
        case("reshape_0_m2", "Reshape", {"shape": (0, 0, -2)}, {"data": rs}),
        case("reshape_m3", "Reshape", {"shape": (-3, -2)}, {"data": rs}),
        case("reshape_m3_m3", "Reshape", {"shape": (-3, -3)}, {"data": rs}),
        case("reshape_m4", "Reshape", {"shape": (0, -4, 2, -1, 0, 0)}, {"data": (2, 6, 4, 5)}),
        case("reshape_m4_m1_first", "Reshape", {"shape": (-4, -1, 1, -2)}, {"data": rs}),
        case("reshape_reverse", "Reshape", {"shape": (-1, 0), "reverse": True}, {"data": rs}),
        case(
            "reshape_reverse_plain",
            "Reshape",
            {"shape": (0, -1), "reverse": False},
            {"data": (4, 6, 2)},
        ),
        case(
            "reshape_reverse_m1_0",
            "Reshape",
            {"shape": (-1, 0), "reverse": True},
            {"data": (4, 6, 2)},
        ),
    ]
    # SliceChannel
    cs += [
        case("split_2", "SliceChannel", {"num_outputs": 2}, {"data": (2, 4, 3)}),
        case("split_axis2", "SliceChannel", {"num_outputs": 3, "axis": 2}, {"data": (2, 4, 3)}),
        case(
            "split_squeeze",
            "SliceChannel",
            {"num_outputs": 3, "axis": 1, "squeeze_axis": True},
            {"data": (2, 3, 4)},
        ),
        case("split_neg_axis", "SliceChannel", {"num_outputs": 2, "axis": -1}, {"data": (2, 3, 4)}),
    ]
    # Embedding
    cs += [
        case("embed", "Embedding", {"input_dim": 6, "output_dim": 4}, {"data": ("idx", (2, 3), 6)}),
        case(
            "embed_repeat",
            "Embedding",
            {"input_dim": 4, "output_dim": 3},
            {"data": ("const", [[0, 1, 1], [3, 0, 1]])},
        ),
        case(
            "embed_1d", "Embedding", {"input_dim": 5, "output_dim": 2}, {"data": ("idx", (7,), 5)}
        ),
    ]
    # SoftmaxActivation, MakeLoss, BlockGrad
    cs += [
        case("smact_instance", "SoftmaxActivation", {}, {"data": (3, 5)}),
        case(
            "smact_instance_4d", "SoftmaxActivation", {"mode": "instance"}, {"data": (2, 3, 2, 2)}
        ),
        case("smact_channel", "SoftmaxActivation", {"mode": "channel"}, {"data": (2, 3, 2, 2)}),
        case("makeloss", "MakeLoss", {}, {"data": (2, 3)}),
        case("makeloss_scale", "MakeLoss", {"grad_scale": 0.3}, {"data": (2, 3)}),
        case("makeloss_batch", "MakeLoss", {"normalization": "batch"}, {"data": (4, 3)}),
        case(
            "makeloss_valid",
            "MakeLoss",
            {"normalization": "valid", "valid_thresh": 0.5},
            {"data": ("const", [[0.0, 1.0, 2.0], [0.2, 0.7, -1.0]])},
            grad=["data"],
        ),
        case("blockgrad", "BlockGrad", {}, {"data": (2, 3)}),
        case("stop_gradient", "stop_gradient", {}, {"data": (2, 3)}),
    ]
    # ROIPooling: rois rows [batch_idx, x1, y1, x2, y2]
    rois = [[0, 0, 0, 4, 4], [1, 1, 2, 5, 6], [0, 2.4, 1.6, 6.7, 3.2], [1, 0, 0, 1, 1]]
    cs += [
        case(
            "roipool",
            "ROIPooling",
            {"pooled_size": (2, 2), "spatial_scale": 1.0},
            {"data": (2, 3, 8, 8), "rois": ("const", rois)},
        ),
        case(
            "roipool_scale",
            "ROIPooling",
            {"pooled_size": (3, 2), "spatial_scale": 0.5},
            {"data": (2, 2, 6, 6), "rois": ("const", [[0, 0, 0, 10, 10], [1, 3, 2, 9, 11]])},
        ),
    ]
    # Pad
    pw = (0, 0, 0, 0, 1, 2, 2, 1)
    cs += [
        case(
            "pad_constant",
            "Pad",
            {"mode": "constant", "pad_width": pw, "constant_value": 1.5},
            {"data": IMG},
        ),
        case(
            "pad_constant_default",
            "Pad",
            {"mode": "constant", "pad_width": (0, 0, 0, 0, 1, 1, 1, 1)},
            {"data": IMG},
        ),
        case("pad_edge", "Pad", {"mode": "edge", "pad_width": pw}, {"data": IMG}),
        case("pad_reflect", "Pad", {"mode": "reflect", "pad_width": pw}, {"data": IMG}),
        case(
            "pad_edge_5d",
            "Pad",
            {"mode": "edge", "pad_width": (0, 0, 0, 0, 1, 0, 0, 1, 1, 1)},
            {"data": (1, 2, 3, 3, 3)},
        ),
    ]
    # clip and elementwise
    cs += [
        case("clip", "clip", {"a_min": -0.5, "a_max": 0.8}, {"data": (3, 4)}),
    ]
    bshapes = [((2, 3, 4), (1, 3, 1)), ((2, 1, 4), (2, 3, 1)), ((3, 4), (3, 4))]
    for opn in ["broadcast_add", "broadcast_sub", "broadcast_mul", "broadcast_div"]:
        for i, (ls, rsh) in enumerate(bshapes):
            rhs = ("uni", rsh, 0.5, 2.0) if opn == "broadcast_div" else rsh
            cs.append(case(f"{opn}_{i}", opn, {}, {"lhs": ls, "rhs": rhs}))
    for opn in ["elemwise_add", "elemwise_sub", "elemwise_mul", "elemwise_div"]:
        rhs = ("uni", (3, 4), 0.5, 2.0) if opn == "elemwise_div" else (3, 4)
        cs.append(case(opn, opn, {}, {"lhs": (3, 4), "rhs": rhs}))
    for opn, sc in [
        ("_plus_scalar", 1.5),
        ("_minus_scalar", 0.25),
        ("_rminus_scalar", 2.0),
        ("_mul_scalar", -3.0),
        ("_div_scalar", 4.0),
    ]:
        cs.append(case(opn, opn, {"scalar": sc}, {"data": (3, 4)}))
    cs.append(
        case("_rdiv_scalar", "_rdiv_scalar", {"scalar": 2.0}, {"data": ("uni", (3, 4), 0.5, 2.0)})
    )
    # dot / batch_dot / gemm2
    cs += [
        case("dot", "dot", {}, {"lhs": (3, 4), "rhs": (4, 5)}),
        case("dot_ta", "dot", {"transpose_a": True}, {"lhs": (4, 3), "rhs": (4, 5)}),
        case("dot_tb", "dot", {"transpose_b": True}, {"lhs": (3, 4), "rhs": (5, 4)}),
        case(
            "dot_ta_tb",
            "dot",
            {"transpose_a": True, "transpose_b": True},
            {"lhs": (4, 3), "rhs": (5, 4)},
        ),
        case("dot_3d_2d", "dot", {}, {"lhs": (2, 3, 4), "rhs": (4, 5)}),
        case("dot_1d_1d", "dot", {}, {"lhs": (4,), "rhs": (4,)}),
        case("batch_dot", "batch_dot", {}, {"lhs": (2, 3, 4), "rhs": (2, 4, 5)}),
        case(
            "batch_dot_ta", "batch_dot", {"transpose_a": True}, {"lhs": (2, 4, 3), "rhs": (2, 4, 5)}
        ),
        case(
            "batch_dot_tb", "batch_dot", {"transpose_b": True}, {"lhs": (2, 3, 4), "rhs": (2, 5, 4)}
        ),
        case(
            "batch_dot_ta_tb",
            "batch_dot",
            {"transpose_a": True, "transpose_b": True},
            {"lhs": (2, 4, 3), "rhs": (2, 5, 4)},
        ),
        case("gemm2", "_linalg_gemm2", {}, {"A": (3, 4), "B": (4, 2)}),
        case(
            "gemm2_ta_tb_alpha",
            "_linalg_gemm2",
            {"transpose_a": True, "transpose_b": True, "alpha": 0.5},
            {"A": (4, 3), "B": (2, 4)},
        ),
        case(
            "gemm2_batched",
            "_linalg_gemm2",
            {"transpose_b": True},
            {"A": (2, 3, 4), "B": (2, 5, 4)},
        ),
    ]
    # shape ops
    cs += [
        case("transpose_default", "transpose", {}, {"data": (2, 3, 4)}),
        case("transpose_axes", "transpose", {"axes": (1, 0, 2)}, {"data": (2, 3, 4)}),
        case("transpose_axes4", "transpose", {"axes": (0, 2, 3, 1)}, {"data": (2, 3, 4, 5)}),
        case("expand_dims_0", "expand_dims", {"axis": 0}, {"data": (2, 3)}),
        case("expand_dims_neg", "expand_dims", {"axis": -1}, {"data": (2, 3)}),
        case("expand_dims_mid", "expand_dims", {"axis": 1}, {"data": (2, 3)}),
        case("slice_axis", "slice_axis", {"axis": 1, "begin": 1, "end": 3}, {"data": (2, 4, 3)}),
        case(
            "slice_axis_none", "slice_axis", {"axis": 0, "begin": 1, "end": None}, {"data": (3, 4)}
        ),
        case(
            "slice_axis_neg", "slice_axis", {"axis": -1, "begin": -3, "end": -1}, {"data": (2, 5)}
        ),
    ]
    # softmax family, unary
    cs += [
        case("softmax", "softmax", {}, {"data": (3, 5)}),
        case("softmax_axis1", "softmax", {"axis": 1}, {"data": (2, 3, 4)}),
        case("softmax_temp", "softmax", {"temperature": 2.0}, {"data": (3, 5)}),
        case("log_softmax", "log_softmax", {}, {"data": (3, 5)}),
        case("log_softmax_axis0", "log_softmax", {"axis": 0}, {"data": (3, 5)}),
        case("relu", "relu", {}, {"data": (3, 4)}),
        case("sigmoid", "sigmoid", {}, {"data": (3, 4)}),
        case("tanh", "tanh", {}, {"data": (3, 4)}),
    ]
    # reductions
    red = (2, 3, 4)
    for opn in ["sum", "mean"]:
        cs += [
            case(f"{opn}_all", opn, {}, {"data": red}),
            case(f"{opn}_axis1", opn, {"axis": 1}, {"data": red}),
            case(f"{opn}_axes_keep", opn, {"axis": (0, 2), "keepdims": True}, {"data": red}),
            case(f"{opn}_exclude", opn, {"axis": 1, "exclude": True}, {"data": red}),
            case(f"{opn}_neg_axis", opn, {"axis": -1}, {"data": red}),
        ]
    # Cast, identity
    cs += [
        case("cast_f16", "Cast", {"dtype": "float16"}, {"data": (3, 4)}),
        case("cast_f64", "Cast", {"dtype": "float64"}, {"data": (3, 4)}),
        case("cast_i32", "Cast", {"dtype": "int32"}, {"data": ("uni", (3, 4), -3.0, 3.0)}),
        case("identity", "identity", {}, {"data": (3, 4)}),
        case("copy", "_copy", {}, {"data": (3, 4)}),
    ]
    return cs


# ---------------------------------------------------------------------------


def op_function(op):
    if op == "_linalg_gemm2":
        return mx.sym.linalg.gemm2
    f = getattr(mx.sym, op, None)
    if f is None:
        f = getattr(mx.sym._internal, op)
    return f


def make_value(spec, rng):
    if isinstance(spec, tuple) and spec and isinstance(spec[0], str):
        tag = spec[0]
        if tag == "pos":
            return rng.uniform(0.5, 2.0, spec[1])
        if tag == "uni":
            return rng.uniform(spec[2], spec[3], spec[1])
        if tag in ("cls", "idx"):
            return rng.randint(0, spec[2], spec[1]).astype(np.float64)
        if tag == "cls_ign":
            v = rng.randint(0, spec[2], spec[1]).astype(np.float64).ravel()
            v[0] = spec[3]
            v[len(v) // 2] = spec[3]
            return v.reshape(spec[1])
        if tag == "const":
            return np.array(spec[1], dtype=np.float64)
        raise ValueError(tag)
    return rng.standard_normal(spec)


def spec_shape(spec):
    if isinstance(spec, tuple) and spec and isinstance(spec[0], str):
        return tuple(np.shape(spec[1])) if spec[0] == "const" else tuple(spec[1])
    return tuple(spec)


def is_int_spec(spec):
    return isinstance(spec, tuple) and spec and spec[0] in ("cls", "cls_ign", "idx", "const")


def node_of(sym):
    js = json.loads(sym.tojson())
    return js["nodes"][js["heads"][0][0]], js


def run_case(c, arrays):
    cid, op, node = c["id"], c["op"], "op"
    rng = np.random.RandomState(zlib.crc32(cid.encode()) & 0x7FFFFFFF)
    fn = op_function(op)
    if c.get("variadic"):
        vs = [mx.sym.Variable(f"{node}_arg{i}") for i in range(c["variadic"])]
        sym = fn(*vs, name=node, **c["attrs"])
    else:
        sym = fn(name=node, **c["attrs"])
    opnode, js = node_of(sym)
    args = sym.list_arguments()
    auxs = sym.list_auxiliary_states()
    outs = sym.list_outputs()

    def suffix(n):
        return n[len(node) + 1 :] if n.startswith(node + "_") else n

    known = {}
    specs = {}
    for full in args + auxs:
        s = suffix(full)
        if s in c["inputs"]:
            spec = c["inputs"][s]
            specs[full] = spec
            known[full] = spec_shape(spec)
    unknown = set(c["inputs"]) - {suffix(n) for n in args + auxs}
    if unknown:
        raise ValueError(f"inputs {unknown} not among {args + auxs}")
    arg_shapes, out_shapes, aux_shapes = sym.infer_shape(
        **{k: tuple(v) for k, v in known.items() if k in args}
    )
    _, out_types, _ = sym.infer_type(**{a: "float32" for a in args})

    ctx = mx.cpu()
    arg_arrays, reqs = {}, {}
    grad_force = set(c.get("grad", []))
    nograd = set(c.get("nograd", []))
    for name, shp in zip(args, arg_shapes):
        spec = specs.get(name, tuple(shp))
        val = make_value(spec, rng).astype(np.float32)
        assert val.shape == tuple(shp), (name, val.shape, shp)
        arg_arrays[name] = val
        s = suffix(name)
        int_like = is_int_spec(spec) or s in ("label", "rois")
        want = (not int_like and s not in nograd) or s in grad_force
        reqs[name] = "write" if want else "null"
    aux_before = {}
    for name, shp in zip(auxs, aux_shapes):
        spec = specs.get(name, tuple(shp))
        aux_before[name] = make_value(spec, rng).astype(np.float32)

    nd_args = {k: mx.nd.array(v, ctx=ctx, dtype="float32") for k, v in arg_arrays.items()}
    nd_grads = {
        k: mx.nd.zeros(v.shape, ctx=ctx, dtype="float32")
        for k, v in arg_arrays.items()
        if reqs[k] == "write"
    }
    nd_aux = {k: mx.nd.array(v, ctx=ctx, dtype="float32") for k, v in aux_before.items()}
    ex = sym.bind(ctx, args=nd_args, args_grad=nd_grads, grad_req=reqs, aux_states=nd_aux)
    ex.forward(is_train=c["is_train"])
    out_vals = [o.asnumpy() for o in ex.outputs]
    aux_after = {k: ex.aux_dict[k].asnumpy() for k in auxs}

    heads = None
    do_backward = c.get("backward", True) and any(r == "write" for r in reqs.values())
    if do_backward:
        ones = op in LOSS_OPS
        heads = []
        for o, t in zip(out_vals, out_types):
            h = (
                np.ones(o.shape, np.float32)
                if ones
                else rng.standard_normal(o.shape).astype(np.float32)
            )
            if np.dtype(t).kind != "f":
                h = np.ones(o.shape, np.float32)
            heads.append(h)
        ex.backward(
            out_grads=[mx.nd.array(h, ctx=ctx, dtype=t) for h, t in zip(heads, out_types)],
            is_train=c["is_train"],
        )
        grad_vals = {k: ex.grad_dict[k].asnumpy() for k in args if reqs[k] == "write"}
        aux_after_bwd = {k: ex.aux_dict[k].asnumpy() for k in auxs}
    else:
        grad_vals = {}
        aux_after_bwd = None

    rec = {
        "id": cid,
        **({"note": c["note"]} if "note" in c else {}),
        "op": opnode["op"],
        "node_name": opnode["name"],
        "attrs": opnode.get("attrs", {}),
        "attr_dict": sym.attr_dict().get(node, {}),
        "list_attr": sym.list_attr(),
        "python_kwargs": {
            k: (list(v) if isinstance(v, tuple) else v) for k, v in c["attrs"].items()
        },
        "is_train": c["is_train"],
        "arguments": args,
        "argument_suffixes": [suffix(a) for a in args],
        "aux_states": auxs,
        "aux_suffixes": [suffix(a) for a in auxs],
        "outputs": outs,
        "arg_shapes": [list(s) for s in arg_shapes],
        "aux_shapes": [list(s) for s in aux_shapes],
        "out_shapes": [list(s) for s in out_shapes],
        "out_dtypes": [np.dtype(t).name for t in out_types],
        "grad_req": reqs,
        "head_grads": ("ones" if op in LOSS_OPS else "random") if heads is not None else None,
        "keys": {
            "args": {},
            "aux_before": {},
            "aux_after": {},
            "aux_after_backward": {},
            "outputs": {},
            "heads": {},
            "grads": {},
        },
    }
    if len(outs) != len(out_vals):
        rec["visible_outputs"] = len(out_vals)
    k = rec["keys"]

    def put(kind, name, val):
        key = f"{cid}.{kind}.{name}"
        arrays[key] = np.asarray(val).astype(np.float32)
        return key

    for a in args:
        k["args"][a] = put("arg", a, arg_arrays[a])
    for a in auxs:
        k["aux_before"][a] = put("aux_before", a, aux_before[a])
        k["aux_after"][a] = put("aux_after", a, aux_after[a])
        if aux_after_bwd is not None:
            k["aux_after_backward"][a] = put("aux_after_backward", a, aux_after_bwd[a])
    for name, v in zip(outs, out_vals):
        k["outputs"][name] = put("out", name, v)
    if heads is not None:
        for name, h in zip(outs, heads):
            k["heads"][name] = put("head", name, h)
    for a, g in grad_vals.items():
        k["grads"][a] = put("grad", a, g)
    return rec


def naming_facts():
    facts = {}
    with mx.name.NameManager():
        a = mx.sym.Variable("a")
        b = mx.sym.Variable("b")

        def info(s):
            n, _ = node_of(s)
            return {
                "name": s.name,
                "op": n["op"],
                "attrs": n.get("attrs", {}),
                "list_arguments": s.list_arguments(),
                "list_outputs": s.list_outputs(),
            }

        facts["sym_exprs_in_fresh_NameManager"] = {
            "a + 1": info(a + 1),
            "a + b": info(a + b),
            "a * 2": info(a * 2),
            "2 - a": info(2 - a),
            "a - 1": info(a - 1),
            "a - b": info(a - b),
            "a * b": info(a * b),
            "a / b": info(a / b),
            "a / 2": info(a / 2),
            "2 / a": info(2 / a),
            "1 + a": info(1 + a),
            "2 * a": info(2 * a),
            "-a": info(-a),
            "a ** 2": info(a**2),
            "a + 1 (second)": info(a + 1),
        }
        fc0 = mx.sym.FullyConnected(data=a, num_hidden=3)
        fc1 = mx.sym.FullyConnected(data=a, num_hidden=3)
        cv0 = mx.sym.Convolution(data=a, kernel=(3, 3), num_filter=2)
        bn0 = mx.sym.BatchNorm(data=a)
        facts["auto_names"] = {
            "FullyConnected #1": info(fc0),
            "FullyConnected #2": info(fc1),
            "Convolution #1": info(cv0),
            "BatchNorm #1": {**info(bn0), "list_auxiliary_states": bn0.list_auxiliary_states()},
            "Activation relu": info(mx.sym.Activation(a, act_type="relu")),
            "relu": info(mx.sym.relu(a)),
            "identity": info(mx.sym.identity(a)),
            "SoftmaxOutput": info(mx.sym.SoftmaxOutput(a)),
            "SliceChannel": info(mx.sym.SliceChannel(a, num_outputs=2)),
            "Concat": info(mx.sym.Concat(a, b)),
            "linalg.gemm2": info(mx.sym.linalg.gemm2(a, b)),
        }

    with mx.name.NameManager():
        data = mx.sym.Variable("data")
        w = mx.sym.Variable("w", lr_mult=2.0)
        fc = mx.sym.FullyConnected(
            data=data, weight=w, num_hidden=3, name="fc", attr={"ctx_group": "dev1"}
        )
        with mx.AttrScope(ctx_group="dev2", __custom__="x"):
            act = mx.sym.Activation(fc, act_type="relu", name="act")
        v = mx.sym.Variable(
            "v",
            shape=(2, 3),
            dtype="float32",
            init=mx.init.Zero(),
            lr_mult=0.5,
            wd_mult=0.0,
            attr={"mood": "ok"},
        )
        net = mx.sym.broadcast_add(act, v, name="out")
        facts["tiny_net"] = {
            "code": (
                "data = Variable('data'); w = Variable('w', lr_mult=2.0); "
                "fc = FullyConnected(data=data, weight=w, num_hidden=3, name='fc', attr={'ctx_group':'dev1'}); "
                "with AttrScope(ctx_group='dev2', __custom__='x'): act = Activation(fc, act_type='relu', name='act'); "
                "v = Variable('v', shape=(2,3), dtype='float32', init=mx.init.Zero(), lr_mult=0.5, wd_mult=0.0, attr={'mood':'ok'}); "
                "net = broadcast_add(act, v, name='out')"
            ),
            "tojson": net.tojson(),
            "attr_dict": net.attr_dict(),
            "list_attr": {
                "w": w.list_attr(),
                "fc": fc.list_attr(),
                "act": act.list_attr(),
                "v": v.list_attr(),
                "net": net.list_attr(),
                "data": data.list_attr(),
            },
            "list_attr_recursive_call": "list_attr(recursive=True) is deprecated in 1.x; see attr_dict",
            "attr('lr_mult') of w": w.attr("lr_mult"),
            "attr('__lr_mult__') of w": w.attr("__lr_mult__"),
            "attr('ctx_group') of fc": fc.attr("ctx_group"),
            "attr('num_hidden') of fc": fc.attr("num_hidden"),
            "list_arguments": net.list_arguments(),
            "list_outputs": net.list_outputs(),
            "internals": net.get_internals().list_outputs(),
        }
        g = mx.sym.Group([fc, act])
        facts["group"] = {"list_outputs": g.list_outputs(), "tojson": g.tojson()}
        loaded = mx.sym.load_json(net.tojson())
        facts["tiny_net"]["roundtrip_equal"] = loaded.tojson() == net.tojson()
    return facts


def write_npz(path, arrays):
    """Like np.savez_compressed, but byte-for-byte reproducible (fixed zip timestamps)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for key in sorted(arrays):
            buf = io.BytesIO()
            np.lib.format.write_array(buf, np.ascontiguousarray(arrays[key]), allow_pickle=False)
            info = zipfile.ZipInfo(key + ".npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, buf.getvalue())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument(
        "--out-dir",
        default=os.path.join(os.path.dirname(__file__), "..", "..", "tests", "nn", "data"),
    )
    ap.add_argument("--mkldnn", action="store_true")
    ap.add_argument("--only", default=None, help="comma-separated case ids")
    opts = ap.parse_args()
    np.random.seed(0)
    mx.random.seed(0)
    cases = build_cases()
    if opts.only:
        keep = set(opts.only.split(","))
        cases = [c for c in cases if c["id"] in keep]
    ids = [c["id"] for c in cases]
    assert len(ids) == len(set(ids)), "duplicate case ids"
    arrays, records, refused = {}, [], []
    for c in cases:
        try:
            records.append(run_case(c, arrays))
        except Exception as e:  # MXNet refused this configuration
            msg = str(e).strip().splitlines()
            msg = [m for m in msg if m.strip() and not m.startswith("Stack trace")][:3]
            msg = [re.sub(r"\[\d\d:\d\d:\d\d\] ", "", m) for m in msg]
            refused.append(
                {
                    "id": c["id"],
                    "op": c["op"],
                    "python_kwargs": {
                        k: (list(v) if isinstance(v, tuple) else v) for k, v in c["attrs"].items()
                    },
                    "error": " | ".join(msg)[:600],
                }
            )
            for key in [k for k in arrays if k.startswith(c["id"] + ".")]:
                del arrays[key]
            print(f"REFUSED {c['id']}: {refused[-1]['error'][:200]}", file=sys.stderr)
    doc = {
        "mxnet_version": mx.__version__,
        "numpy_version": np.__version__,
        "generator": "scripts/mxnet_oracle/make_op_fixtures.py",
        "kernels": "mkldnn"
        if opts.mkldnn
        else "plain CPU (MXNET_MKLDNN_ENABLED=0, MXNET_SUBGRAPH_BACKEND=NONE)",
        "npz": "mxnet_ops.npz",
        "notes": [
            "Every op input is auto-created by MXNet: argument '<node>_<suffix>' with node name 'op'; variadic ops use Variables 'op_arg<i>'.",
            "Arrays are float32; integer-valued inputs (labels, indices, ROIs) are stored as float. Outputs of Cast are stored as float32 (see out_dtypes).",
            "attrs = the op node's JSON attrs (strings MXNet keeps); python_kwargs = what the script passed.",
            "aux_after = aux states right after forward; aux_after_backward = after backward (MXNet 1.x BatchNorm updates its moving stats in BACKWARD, not forward).",
            "grads = argument gradients after backward(heads, is_train=is_train) with grad_req 'write'; head_grads 'ones' for loss layers and MakeLoss.",
        ],
        "naming": naming_facts(),
        "refused": refused,
        "cases": records,
    }
    opts.out_dir = os.path.normpath(opts.out_dir)
    os.makedirs(opts.out_dir, exist_ok=True)
    with open(os.path.join(opts.out_dir, "mxnet_ops.json"), "w") as f:
        json.dump(doc, f, indent=1, sort_keys=False)
        f.write("\n")
    write_npz(os.path.join(opts.out_dir, "mxnet_ops.npz"), arrays)
    print(f"{len(records)} cases, {len(refused)} refused, {len(arrays)} arrays -> {opts.out_dir}")


if __name__ == "__main__":
    main()
