"""GPU checks of ``framestream.nn.distributed`` on a one-GPU machine (run by
``scripts/device_cluster_check.sh`` on the lent device; ``--device cpu`` rehearses it here).

1. ``NcclAllreduce`` on one rank: NCCL's unique id through the ring, an in-place sum of CuPy
   float32 and float64 buffers (the API calls; more ranks need more GPUs).
2. Two Dask workers sharing gpu(0), ``$FRAMESTREAM_ALLREDUCE=ring`` (CuPy gradients through
   host memory): ``fit(cluster=...)`` with batch 25 each against one process with batch 50.
Prints one line per check; exits 1 if one fails.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time

import numpy as np


def check_nccl() -> str:
    import cupy

    from framestream.nn.distributed import NcclAllreduce, RingAllreduce

    ring = RingAllreduce(0, 1, "nccl-check")
    ring.connect([ring.address])
    comm = NcclAllreduce(ring)
    try:
        for dtype in (np.float32, np.float64):
            buf = cupy.arange(1000, dtype=dtype)
            comm.allreduce_(buf)
            cupy.cuda.get_current_stream().synchronize()
            assert float(buf.sum()) == 999 * 1000 / 2, dtype
        assert comm.allgather("x") == ["x"]
    finally:
        comm.close()
    return "NcclAllreduce (1 rank): float32/float64 sums and allgather ok"


def check_fit(device: str) -> str:
    from distributed import LocalCluster
    from sklearn.datasets import load_digits

    import framestream as fs
    from framestream import mx

    ctx = mx.gpu(0) if device == "gpu" else mx.cpu()
    d = load_digits()
    frame = fs.SFrame({"x": (d.data[:410] / 16).astype(np.float32), "y": d.target[:410]})
    path = os.path.join(tempfile.mkdtemp(), "digits.sframe")
    frame.save(path)

    def net():
        h = mx.sym.FullyConnected(mx.sym.Variable("data"), num_hidden=32, name="fc1")
        h = mx.sym.Activation(h, act_type="relu", name="relu1")
        return mx.sym.SoftmaxOutput(mx.sym.FullyConnected(h, num_hidden=10, name="fc2"),
                                    name="softmax")

    mx.random.seed(0)
    init = mx.model.FeedForward(net(), initializer=mx.init.Xavier())
    init._init_params({"data": (50, 64), "softmax_label": (50,)})
    args = {k: v.asnumpy() for k, v in init.arg_params.items()}

    def model():
        return mx.model.FeedForward(net(), ctx=ctx, num_epoch=2, arg_params=args,
                                    learning_rate=0.1, momentum=0.9, wd=1e-4)

    def data(batch):
        return mx.io.SFrameIter(fs.SFrame(path), "x", "y", batch_size=batch, shuffle=True, seed=3)

    reference = model().fit(data(50))
    # two ranks on one GPU: NCCL refuses that, so "auto" picks the ring
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=None, silence_logs=logging.ERROR) as cluster:
        started = time.perf_counter()
        trained = model().fit(data(25), cluster=cluster, num_workers=2)
        took = time.perf_counter() - started
    worst = max(float(np.abs(trained.arg_params[k].asnumpy() - v.asnumpy()).max()
                      / np.abs(v.asnumpy()).max()) for k, v in reference.arg_params.items())
    assert worst < 1e-5, worst
    return (f"fit(cluster=2 workers on {ctx}) == one process with twice the batch: worst "
            f"relative difference {worst:.2e} ({took:.1f} s)")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--device", choices=("cpu", "gpu"), default="gpu")
    args = parser.parse_args()
    checks = [lambda: check_fit(args.device)]
    if args.device == "gpu":
        checks.insert(0, check_nccl)
    failed = 0
    for check in checks:
        try:
            print("ok  ", check(), flush=True)
        except Exception as exc:  # noqa: BLE001 (report every check)
            failed += 1
            print("FAIL", f"{type(exc).__name__}: {exc}", flush=True)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
