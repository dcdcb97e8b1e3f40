"""Prediction and feature extraction: forward only, no gradients, 1x28x28 in, 10 classes.

framestream against PyTorch 2.13 (``model.eval()`` under ``torch.inference_mode()``) on the
training benchmark's three networks (_fs_nets.py, _torch_nets.py): the bound executor's
inference forward at batch 100 and 1000; ``FeedForward.predict`` over an NDArrayIter
(batch 100) against a PyTorch loop collecting softmax outputs; and
``framestream.nn.features.extract_features`` at the flatten layer against the PyTorch
network up to its flatten. Subprocesses per engine, repetitions interleaved, medians.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from _fs_nets import NETS
from _util import (
    BENCH,
    THREADS,
    interleaved,
    median,
    noisy_warning,
    setup_env,
    shares,
    speed_ratios,
    thread_env,
    torch_python,
)

BATCHES = (100, 1000)
MODES = {"forward_100": "executor forward, batch 100", "forward_1000": "executor forward, batch 1000",
         "predict": "FeedForward.predict (NDArrayIter, batch 100)", "features": "extract_features at the flatten"}


def _samples(mode: str, rows: int) -> int:
    """Rows one measurement covers: a batch for forward_B, the whole pass otherwise."""
    return int(mode.split("_")[1]) if mode.startswith("forward_") else rows


def run(quick: bool = False) -> dict[str, Any]:
    setup_env()
    reps, warmup, rows = (2, 2, 1000) if quick else (4, 3, 5000)
    steps = {"100": 10, "1000": 5} if quick else {"100": 40, "1000": 5}
    spec = {"nets": list(NETS), "batches": list(BATCHES), "steps": steps, "rows": rows, "warmup": warmup,
            "threads": THREADS}
    arg = [json.dumps(spec)]
    runs = interleaved({"framestream": [sys.executable, str(BENCH / "_fs_prediction.py"), *arg],
                        "torch": [str(torch_python()), str(BENCH / "_torch_prediction.py"), *arg]},
                       reps, env=thread_env())
    nets: dict[str, Any] = {}
    for net in NETS:
        nets[net] = {}
        for mode in runs["framestream"][0]["ms"][net]:
            ms = {e: [r["ms"][net][mode] for r in rs] for e, rs in runs.items()}
            med = {e: median(v) for e, v in ms.items()}
            n = _samples(mode, rows)
            nets[net][mode] = {"ms": {e: [round(t, 3) for t in v] for e, v in ms.items()},
                               "median_ms": {e: round(v, 3) for e, v in med.items()},
                               "samples_per_s": {e: round(n / v * 1e3, 1) for e, v in med.items()},
                               **speed_ratios(med["framestream"], {"torch": med["torch"]})}
    return {"name": "prediction", "quick": quick, "reps": reps, "warmup": warmup, "steps": steps, "rows": rows,
            "threads": THREADS, "versions": {"torch": runs["torch"][0]["version"]}, "nets": nets,
            "foreign_share": {e: [r["foreign_share"] for r in rs] for e, rs in runs.items()}}


def markdown(res: dict[str, Any]) -> str:
    lines = [f"Forward only, 1x28x28 in. {res['reps']} interleaved repetitions per engine (fresh processes); "
             f"executor forward: {res['warmup']} warm-up batches, then {res['steps']['100']} (batch 100) or "
             f"{res['steps']['1000']} (batch 1000) timed in 5 blocks, the median block kept; predict / features: "
             "one untimed pass, then one timed "
             f"pass over {res['rows']:,} rows in batches of 100; medians. Peer: {res['versions']['torch']}, "
             "eval mode under `torch.inference_mode()`, softmax included where SoftmaxOutput gives it. "
             "Speed ratio = PyTorch ms / framestream ms (>1: framestream faster). Features: mlp has none (its "
             "flatten is its input).", "",
             "| network | measurement | framestream ms | PyTorch ms | framestream samples/s | PyTorch samples/s "
             "| PyTorch / fs |", "|---|---|---|---|---|---|---|"]
    for net, modes in res["nets"].items():
        for mode, r in modes.items():
            m, s = r["median_ms"], r["samples_per_s"]
            lines.append(f"| {net} | {MODES[mode]} | {m['framestream']:.2f} | {m['torch']:.2f} | "
                         f"{s['framestream']:.0f} | {s['torch']:.0f} | {r['vs_torch']:.2f} |")
    lines += ["", "ms are per batch for the executor rows and per whole pass for predict / features. Other processes' "
              "share of the CPUs during each repetition: " + "; ".join(
                  f"{e} {shares(v)}" for e, v in res.get("foreign_share", {}).items()) + ".", "",
              *noisy_warning(res)]
    return "\n".join(lines)
