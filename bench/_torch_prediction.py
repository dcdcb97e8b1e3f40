"""PyTorch's side of the prediction benchmark, run inside bench/.venv-torch.

The same measurements as _fs_prediction.py with ``model.eval()`` under
``torch.inference_mode()``: forward + softmax (what SoftmaxOutput gives) at each batch
size; a predict pass over ``rows`` rows in batches of 100 collected as one NumPy array;
features (the network up to its flatten) likewise. Prints one JSON line of milliseconds."""

from __future__ import annotations

import json
import sys

import numpy as np
import torch
from _torch_nets import build
from _util import fixed_batch, time_steps, warm_pass_ms

FEATURES = ("lenet", "cnn")  # mlp's flatten is its input


def measure(name: str, spec: dict) -> dict[str, float]:
    torch.manual_seed(0)
    model = build(name).eval()
    out = {}
    for b in spec["batches"]:
        x = torch.from_numpy(fixed_batch(b)[0])
        step = lambda x=x: torch.softmax(model(x), 1)  # noqa: E731
        out[f"forward_{b}"] = 1e3 * time_steps(step, spec["steps"][str(b)], spec["warmup"])
    rows = torch.from_numpy(fixed_batch(spec["rows"], seed=1)[0])
    out["predict"] = warm_pass_ms(lambda: np.concatenate([torch.softmax(model(xb), 1).numpy() for xb in rows.split(100)]))
    if name in FEATURES:
        out["features"] = warm_pass_ms(lambda: np.concatenate([model.features(xb).numpy() for xb in rows.split(100)]))
    return out


def main(spec: dict) -> None:
    torch.set_num_threads(spec["threads"])
    with torch.inference_mode():
        ms = {n: measure(n, spec) for n in spec["nets"]}
    print(json.dumps({"ms": ms, "version": f"PyTorch {torch.__version__}"}))


if __name__ == "__main__":
    main(json.loads(sys.argv[1]))
