"""One GPU: framestream's executor on ``mx.gpu(0)`` (CuPy) against PyTorch CUDA, per step.

Run on a machine with a CUDA GPU, CuPy and PyTorch (``scripts/device_gpu_check.sh`` does):
``python bench/gpu_training.py OUT.json``. The same three networks and step as
bench/training.py (forward, backward, SGD momentum; batch 100 and 1000, 1x28x28), each
timed as the median of several repetitions of K steps followed by a device synchronise,
after warm-up. Also times the host-to-device batch copy both ways: plain assignment from
pageable memory against framestream's pinned, side-stream staging.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _fs_nets import NETS, label_name, symbol  # noqa: E402

from framestream import mx  # noqa: E402

REPS, STEPS, WARMUP = 5, 50, 10


def _median_ms(step: Any, sync: Any, steps: int = STEPS) -> float:
    for _ in range(WARMUP):
        step()
    sync()
    times = []
    for _ in range(REPS):
        t0 = time.perf_counter()
        for _ in range(steps):
            step()
        sync()
        times.append((time.perf_counter() - t0) / steps)
    return 1e3 * statistics.median(times)


def framestream_ms(name: str, batch: int) -> float:
    import cupy as cp

    net = symbol(name)
    label = label_name(net)
    req = {a: "null" if a in ("data", label) else "write" for a in net.list_arguments()}
    ex = net.simple_bind(mx.gpu(0), grad_req=req, data=(batch, 1, 28, 28), **{label: (batch,)})
    mx.random.seed(0)
    init = mx.init.Xavier()
    for key, arr in [*ex.arg_dict.items(), *ex.aux_dict.items()]:
        if key not in ("data", label):
            init(mx.init.InitDesc(key), arr)
    rng = np.random.default_rng(0)
    ex.arg_dict["data"][:] = rng.random((batch, 1, 28, 28), dtype=np.float32)
    ex.arg_dict[label][:] = rng.integers(0, 10, batch).astype(np.float32)
    updater = mx.optimizer.get_updater(mx.optimizer.SGD(learning_rate=0.01, momentum=0.9,
                                                        rescale_grad=1 / batch))
    names = list(ex.grad_dict)

    def step() -> None:
        ex.forward(is_train=True)
        ex.backward()
        for i, key in enumerate(names):
            updater(i, ex.grad_dict[key], ex.arg_dict[key])

    return _median_ms(step, cp.cuda.Device(0).synchronize)


def torch_ms(name: str, batch: int) -> float:
    import torch
    from _torch_nets import build

    torch.manual_seed(0)
    model = build(name).cuda()
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.01, momentum=0.9)
    x = torch.rand(batch, 1, 28, 28, device="cuda")
    y = torch.randint(0, 10, (batch,), device="cuda")
    loss_fn = torch.nn.CrossEntropyLoss()

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        loss_fn(model(x), y).backward()
        opt.step()

    return _median_ms(step, torch.cuda.synchronize)


def staging_ms(batch: int) -> dict[str, float]:
    """Host-to-device copy of one (batch, 3, 224, 224) float32 batch: plain vs staged."""
    import cupy as cp

    from framestream.nn._staging import DeviceStager

    host = np.random.default_rng(0).random((batch, 3, 224, 224), dtype=np.float32)
    target = mx.nd.zeros(host.shape, mx.gpu(0))
    stager = DeviceStager(mx.gpu(0))
    sync = cp.cuda.Device(0).synchronize
    plain = _median_ms(lambda: target.__setitem__(slice(None), host), sync, steps=10)
    staged = _median_ms(lambda: stager.load(target, "data", host), sync, steps=10)
    gb = host.nbytes / 1e9
    return {"batch_mb": round(host.nbytes / 1e6, 1), "plain_ms": round(plain, 3),
            "staged_ms": round(staged, 3), "plain_gb_s": round(gb / plain * 1e3, 1),
            "staged_gb_s": round(gb / staged * 1e3, 1)}


def markdown(res: dict[str, Any]) -> str:
    """The device run's table for bench/results/README.md."""
    lines = [f"Measured on an {res['device']} by `scripts/device_gpu_check.sh` (not part of `make bench`: "
             "it needs a CUDA GPU). ms per training step, median of 5 x 50 steps after warm-up; "
             "speed ratio = PyTorch ms / framestream ms.", "",
             "| network @ batch | framestream (CuPy) ms | PyTorch CUDA ms | PyTorch / fs |", "|---|---|---|---|"]
    for key, row in res["nets"].items():
        lines.append(f"| {key} | {row['framestream_ms']:.2f} | {row['torch_ms']:.2f} | "
                     f"{row['speed_ratio_torch_over_fs']:.2f} |")
    st = res["staging"]
    lines += ["", f"Host-to-device copy of a {st['batch_mb']} MB batch: plain assignment {st['plain_ms']} ms "
              f"({st['plain_gb_s']} GB/s), pinned + side stream {st['staged_ms']} ms ({st['staged_gb_s']} GB/s); "
              "the staged copy's gain is that it overlaps the queued kernels, which this copy-only "
              "timing does not show."]
    return "\n".join(lines)


def main(out: str) -> None:
    import cupy as cp

    props = cp.cuda.runtime.getDeviceProperties(0)
    result: dict[str, Any] = {"device": props["name"].decode(), "nets": {}}
    for batch in (100, 1000):
        for name in NETS:
            fs, pt = framestream_ms(name, batch), torch_ms(name, batch)
            result["nets"][f"{name}@{batch}"] = {
                "framestream_ms": round(fs, 3), "torch_ms": round(pt, 3),
                "speed_ratio_torch_over_fs": round(pt / fs, 3)}
            print(name, batch, result["nets"][f"{name}@{batch}"], flush=True)
    result["staging"] = staging_ms(64)
    print(result["staging"], flush=True)
    Path(out).write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main(sys.argv[1])
