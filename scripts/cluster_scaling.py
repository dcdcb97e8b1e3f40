"""Steps per second of synchronous data-parallel training on 1, 2, ... Dask workers.

Trains MXNet's MLP and LeNet (``mx.builtin_symbols``) on scikit-learn's digits upsampled to
1x28x28 (a saved SFrame, a float tensor column), ``--batch`` rows per worker and step, on a
``LocalCluster`` of single-threaded worker processes (``threads_per_worker=1``; the nannies
give each one BLAS thread), with ``FeedForward.fit(cluster=...)``. Rank 0 times every step
(a batch-end callback) and the group counts the seconds spent in the allreduce; the first
``--warmup`` steps are left out. ``--workers 0`` is one plain process (no cluster), also
with one BLAS thread. framestream's compiled CPU kernels split over
``--kernel-threads`` threads (default 1), so that each worker is one core. Prints a table
and writes ``--json``.

    .venv/bin/python scripts/cluster_scaling.py --workers 0 1 2 --json scaling.json
    python3 scripts/cluster_scaling.py --device gpu   # all workers on gpu(0): a smoke test

See ``deploy/scaling.md`` for the figures and what they say about more workers.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

NETS = ("mlp", "lenet")


class StepClock:
    """A batch-end callback: the time of each step and the allreduce seconds so far."""

    def __init__(self) -> None:
        self.times: list[float] = []
        self.comm: list[float] = []

    def __call__(self, param: Any) -> None:
        self.times.append(time.perf_counter())
        group = (param.locals or {}).get("group")
        self.comm.append(getattr(group, "comm_seconds", 0.0))


def make_frame(folder: Path) -> str:
    """Digits as float 1x28x28 tensors in 0-1 (``x``) and their labels (``y``), saved."""
    import framestream as fs
    from framestream import image_analysis as ia

    images = fs.datasets.digits(size=28)
    frame = fs.SFrame({"x": ia.to_tensor(images["image"], scale=1 / 255), "y": images["label"]})
    path = str(folder / "digits28.sframe")
    frame.save(path)
    return path


def measure(net: str, workers: int, client: Any, path: str, args: argparse.Namespace) -> dict:
    import framestream as fs
    from framestream import mx

    ctx = mx.gpu(0) if args.device == "gpu" else mx.cpu()
    symbol = getattr(mx.builtin_symbols, net).get_symbol(num_classes=10)
    mx.random.seed(0)
    model = mx.model.FeedForward(symbol, ctx=ctx, num_epoch=1, epoch_size=args.warmup + args.steps,
                                 learning_rate=0.01, momentum=0.9, initializer=mx.init.Xavier())
    data = mx.io.SFrameIter(fs.SFrame(path), "x", "y", batch_size=args.batch, shuffle=True, seed=0)
    clock = StepClock()
    on_cluster = {"cluster": client, "num_workers": workers} if workers else {}
    started = time.perf_counter()
    if workers:
        model.fit(data, batch_end_callback=clock, **on_cluster)
    else:
        from threadpoolctl import threadpool_limits

        with threadpool_limits(1):
            model.fit(data, batch_end_callback=clock)
    wall = time.perf_counter() - started
    span = clock.times[-1] - clock.times[args.warmup - 1]
    comm = clock.comm[-1] - clock.comm[args.warmup - 1]
    gradient = 4 * sum(v.size for v in model.arg_params.values())
    return {"net": net, "workers": workers, "device": args.device, "batch_per_worker": args.batch,
            "steps": args.steps, "steps_per_s": args.steps / span,
            "samples_per_s": args.steps * args.batch * max(1, workers) / span,
            "step_ms": 1000 * span / args.steps, "allreduce_ms": 1000 * comm / args.steps,
            "gradient_bytes": gradient, "fit_wall_s": wall}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nets", nargs="+", default=list(NETS), choices=NETS)
    parser.add_argument("--workers", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=2, help="runs per setting; the best counts")
    parser.add_argument("--device", choices=("cpu", "gpu"), default="cpu")
    parser.add_argument("--kernel-threads", type=int, default=1,
                        help="FRAMESTREAM_NUM_THREADS of every process: the threads framestream's "
                             "compiled CPU kernels split over (BLAS gets one per worker anyway)")
    parser.add_argument("--no-profile", action="store_true",
                        help="turn the Dask workers' statistical profiler off (every 10 ms)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    import dask
    from distributed import Client, LocalCluster

    if args.no_profile:
        dask.config.set({"distributed.worker.profile.enabled": False})
    os.environ["FRAMESTREAM_NUM_THREADS"] = str(args.kernel_threads)  # the workers inherit it
    folder = Path(tempfile.mkdtemp(prefix="cluster-scaling-"))
    path = make_frame(folder)
    most = max(args.workers)
    saved = dict(os.environ)
    results = []
    with LocalCluster(n_workers=max(1, most), threads_per_worker=1, processes=True,
                      host="127.0.0.1", dashboard_address=None,
                      silence_logs=logging.ERROR) as cluster, Client(cluster) as client:
        os.environ.clear()
        os.environ.update(saved)  # the nannies set OMP_NUM_THREADS=1 here too
        for net in args.nets:
            for workers in args.workers:
                runs = [measure(net, workers, client, path, args) for _ in range(args.repeats)]
                best = max(runs, key=lambda r: r["steps_per_s"])
                results.append(best)
                print(f"{net:6s} workers={workers} steps/s={best['steps_per_s']:7.2f} "
                      f"step={best['step_ms']:7.2f} ms allreduce={best['allreduce_ms']:6.2f} ms "
                      f"samples/s={best['samples_per_s']:8.0f} grad={best['gradient_bytes']} B",
                      flush=True)
    report = {"machine": {"cpus": os.cpu_count(), "processor": platform.processor(),
                          "python": platform.python_version(),
                          "load_avg_at_end": os.getloadavg()},
              "profiler": not args.no_profile, "kernel_threads": args.kernel_threads,
              "results": results}
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    print(json.dumps(report["machine"]))
    print(np.round([r["steps_per_s"] for r in results], 2).tolist())


if __name__ == "__main__":
    main()
