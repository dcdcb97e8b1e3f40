"""Training step: forward + backward + SGD momentum 0.9 (lr 0.01), batch 100 of 1x28x28, 10 classes.

framestream (executor + ``get_updater``) against PyTorch 2.13 (eager nn.Module + optim.SGD)
and Apache MXNet 1.9.1 (``mx.mod.Module``), on MXNet's example MLP and LeNet and the user
guide's CNN, defined identically in all three (_fs_nets.py, _torch_nets.py; MXNet loads
framestream's symbol JSON). Each engine runs in its own subprocess with its thread pools
pinned to THREADS, repetitions interleaved (fs, torch, mxnet, fs, ...) so drift hits all
alike; each repetition times a fixed number of steps on one fixed random batch after a
warm-up, in blocks whose median it keeps (other processes' bursts spoil a block, not the
figure). Target: faster than PyTorch on every network and within 1.5x of the fastest peer.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from _fs_nets import NETS, write_json
from _util import (
    BENCH,
    THREADS,
    TMP,
    interleaved,
    median,
    mxnet_python,
    noisy_warning,
    setup_env,
    shares,
    speed_ratios,
    thread_env,
    torch_python,
)

BATCH = 100
TARGET = 1.5  # framestream at most this many times the fastest peer's time
PEERS = {"torch": "PyTorch", "mxnet": "MXNet"}
# The figures (idle 2-core x86-64, batch 100, ms per step)
REFERENCE_MS = {"torch": {"mlp": 0.80, "lenet": 19.1, "cnn": 7.1}, "mxnet": {"mlp": 0.87, "lenet": 32.0, "cnn": 3.9}}


def run(quick: bool = False) -> dict[str, Any]:
    setup_env()
    reps, warmup = (2, 3) if quick else (5, 5)
    steps = {"mlp": 100, "lenet": 10, "cnn": 20} if quick else {"mlp": 500, "lenet": 40, "cnn": 80}
    spec = {"nets": list(NETS), "steps": steps, "warmup": warmup, "batch": BATCH, "threads": THREADS,
            "nets_dir": str(write_json(TMP / "nets"))}
    arg = [json.dumps(spec)]
    runs = interleaved({"framestream": [sys.executable, str(BENCH / "_fs_training.py"), *arg],
                        "torch": [str(torch_python()), str(BENCH / "_torch_training.py"), *arg],
                        "mxnet": [str(mxnet_python()), str(BENCH / "_mxnet_training.py"), *arg]},
                       reps, env=thread_env())
    nets = {}
    for net in NETS:
        ms = {engine: [r["ms"][net] for r in rs] for engine, rs in runs.items()}
        med = {engine: median(v) for engine, v in ms.items()}
        ratios = speed_ratios(med["framestream"], {p: med[p] for p in PEERS})
        nets[net] = {"ms": {e: [round(t, 3) for t in v] for e, v in ms.items()},
                     "median_ms": {e: round(v, 3) for e, v in med.items()},
                     "samples_per_s": {e: round(BATCH / v * 1e3, 1) for e, v in med.items()},
                     **ratios, "pass": ratios["vs_torch"] >= 1 and ratios["vs_fastest"] >= 1 / TARGET}
    return {"name": "training", "quick": quick, "reps": reps, "warmup": warmup, "steps": steps, "batch": BATCH,
            "threads": THREADS, "versions": {p: runs[p][0].get("version", p) for p in PEERS},
            "nets": nets, "reference_ms": REFERENCE_MS,
            "foreign_share": {e: [r["foreign_share"] for r in rs] for e, rs in runs.items()}}


def markdown(res: dict[str, Any]) -> str:
    v = res["versions"]
    lines = [f"Batch {res['batch']} of 1x28x28, 10 classes; one step = forward + backward + SGD momentum 0.9 update. "
             f"{res['reps']} interleaved repetitions per engine (each a fresh process, {res['warmup']} warm-up steps, then "
             f"{', '.join(f'{n} {s}' for n, s in res['steps'].items())} timed steps in 5 blocks, the median block kept); "
             f"medians over repetitions. Peers: {v['torch']}, "
             f"{v['mxnet']} (K steps then `waitall`; OpenMP at {res['threads']} threads with MXNet's one engine worker: "
             f"{res['threads']} workers x {res['threads']} threads oversubscribe and ran about 2x slower). Speed ratio = peer ms / framestream ms (>1: framestream faster); "
             f"target: > 1 against PyTorch and >= {1 / TARGET:.2f} (within {TARGET}x) against the fastest peer.", "",
             "| network | framestream ms/step | PyTorch ms/step | MXNet ms/step | framestream samples/s | PyTorch / fs "
             "| MXNet / fs | fastest peer / fs | target |",
             "|---|---|---|---|---|---|---|---|---|"]
    for net, r in res["nets"].items():
        m = r["median_ms"]
        lines.append(f"| {net} | {m['framestream']:.2f} | {m['torch']:.2f} | {m['mxnet']:.2f} | "
                     f"{r['samples_per_s']['framestream']:.0f} | {r['vs_torch']:.2f} | {r['vs_mxnet']:.2f} | "
                     f"{r['vs_fastest']:.2f} ({PEERS[r['fastest_peer']]}) | **{'PASS' if r['pass'] else 'FAIL'}** |")
    lines += ["", "Every repetition (ms/step): " + "; ".join(
        f"{net} " + ", ".join(f"{e} [{' '.join(f'{t:.2f}' for t in ts)}]" for e, ts in r["ms"].items())
        for net, r in res["nets"].items()), "",
        "Other processes' share of the CPUs during each repetition: " + "; ".join(
            f"{e} {shares(v)}" for e, v in res.get("foreign_share", {}).items()) + ".", "",
        *noisy_warning(res), "The issue's reference figures (idle 2-core x86-64, ms/step): " + "; ".join(
            f"{PEERS[p]} " + ", ".join(f"{n} {t}" for n, t in ref.items()) for p, ref in res["reference_ms"].items()) + "."]
    return "\n".join(lines)
