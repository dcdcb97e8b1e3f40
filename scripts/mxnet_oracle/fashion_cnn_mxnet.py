"""The user guide's CNN on Fashion-MNIST in Apache MXNet 1.9.1, over several seeds.

Run in the MXNet virtualenv (see README.md here):

    bench/.venv-mxnet/bin/python scripts/mxnet_oracle/fashion_cnn_mxnet.py --seeds 0 1 2 3 4

Same settings as examples/user_guide/cnn_fashion_mnist.py: raw 0-255 pixels, batch 100,
no shuffling, SGD learning_rate 0.1, momentum 0.9, wd 1e-4, FeedForward's default
Uniform(0.01) initializer, 2 epochs; prints one JSON line per (pooling, seed).
"""

from __future__ import annotations

import argparse
import gzip
import json
import logging
import os
import time

os.environ.setdefault("MXNET_MKLDNN_ENABLED", "0")

import mxnet as mx  # noqa: E402
import numpy as np  # noqa: E402

FOLDER = "/usr/share/datasets/fashion-mnist"


def idx(name: str, offset: int) -> np.ndarray:
    with gzip.open(os.path.join(FOLDER, name)) as f:
        return np.frombuffer(f.read(), np.uint8, offset=offset)


def build(pooling: str):
    data = mx.symbol.Variable('data')
    net = mx.symbol.Convolution(data=data, name='conv1', num_filter=32, kernel=(3, 3), stride=(2, 2))
    net = mx.symbol.BatchNorm(data=net, name="bn1")
    net = mx.symbol.Activation(data=net, name='relu1', act_type="relu")
    net = mx.symbol.Pooling(data=net, name='mp1', kernel=(2, 2), stride=(2, 2), pool_type='max',
                            pooling_convention=pooling)
    net = mx.symbol.Convolution(data=net, name='conv2', num_filter=32, kernel=(3, 3), stride=(2, 2))
    net = mx.symbol.BatchNorm(data=net, name="bn2")
    net = mx.symbol.Activation(data=net, name='relu2', act_type="relu")
    net = mx.symbol.Pooling(data=net, name='mp2', kernel=(2, 2), stride=(2, 2), pool_type='max',
                            pooling_convention=pooling)
    net = mx.symbol.Flatten(data=net, name="flatten")
    net = mx.symbol.FullyConnected(data=net, name='fc2', num_hidden=10)
    return mx.symbol.SoftmaxOutput(data=net, name='sm')


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--pooling", nargs="+", default=["valid", "full"])
    parser.add_argument("--epochs", type=int, default=2)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    x = idx("train-images-idx3-ubyte.gz", 16).reshape(-1, 1, 28, 28).astype(np.float32)
    y = idx("train-labels-idx1-ubyte.gz", 8).astype(np.float32)
    tx = idx("t10k-images-idx3-ubyte.gz", 16).reshape(-1, 1, 28, 28).astype(np.float32)
    ty = idx("t10k-labels-idx1-ubyte.gz", 8)
    for pooling in args.pooling:
        for seed in args.seeds:
            mx.random.seed(seed)
            np.random.seed(seed)
            train = mx.io.NDArrayIter(x, y, batch_size=100, shuffle=False, label_name='sm_label')
            started = time.time()
            model = mx.model.FeedForward.create(build(pooling), X=train, num_epoch=args.epochs,
                                                learning_rate=0.1, wd=0.0001, momentum=0.9,
                                                eval_metric=mx.metric.Accuracy())
            seconds = time.time() - started
            test = mx.io.NDArrayIter(tx, batch_size=100)
            accuracy = float((model.predict(test).argmax(1) == ty).mean())
            print(json.dumps({"pooling": pooling, "seed": seed, "accuracy": round(accuracy, 4),
                              "train_seconds": round(seconds, 1)}), flush=True)


if __name__ == "__main__":
    main()
