"""Streaming overhead: the same training fed from memory and from an SFrame on disk.

The user guide's CNN (_fs_nets.py) trained one epoch with ``mx.model.FeedForward`` (SGD
lr 0.01, momentum 0.9, batch 100) on real Fashion-MNIST images (raw 0-255 pixels), fed
(a) from NumPy arrays by ``mx.io.NDArrayIter``, (b) by ``mx.io.SFrameIter`` from the same
images saved as an SFrame (``sf.save``) and reopened with ``SFrame(path)``, reading chunk
by chunk with its default background prefetch. Each timing covers opening the data,
building the iterator and the whole ``fit``; the store is fresh (in the page cache).
Repetitions alternate memory / SFrame (each pair after a wait for quiet CPUs); medians.
Overhead = t_sframe / t_memory - 1.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from _fs_nets import symbol
from _util import (
    TMP,
    median,
    noisy_warning,
    remove,
    setup_env,
    shares,
    timed,
    wait_for_quiet,
    with_foreign_share,
)

FASHION = Path(os.environ.get("FRAMESTREAM_FASHION_MNIST", "/usr/share/datasets/fashion-mnist"))
BATCH = 100


def _images(n: int) -> tuple[Any, Any, Path, float]:
    """The first ``n`` training images as arrays and as a saved SFrame (its path, save seconds)."""
    import numpy as np

    from framestream.frames.datasets import images_frame, read_idx

    pixels = read_idx(FASHION / "train-images-idx3-ubyte.gz")[:n]
    labels = read_idx(FASHION / "train-labels-idx1-ubyte.gz")[:n]
    path = TMP / f"fashion-{n}.sframe"
    remove(path)
    save_s, _ = timed(lambda: images_frame(pixels, labels).save(path))
    return pixels.reshape(n, 1, 28, 28).astype(np.float32), labels.astype(np.float32), path, save_s


def _fit(make_iter: Any, epoch_size: int | None = None) -> float:
    """Seconds to open the data and train one epoch from a fresh, seeded model."""
    from framestream import mx

    def go() -> None:
        mx.random.seed(0)
        model = mx.model.FeedForward(symbol("cnn"), num_epoch=1, epoch_size=epoch_size, optimizer="sgd",
                                     learning_rate=0.01, momentum=0.9, initializer=mx.init.Xavier())
        model.fit(X=make_iter(), eval_metric="acc")

    return timed(go)[0]


def run(quick: bool = False) -> dict[str, Any]:
    setup_env()
    from framestream import SFrame, mx

    logging.getLogger().setLevel(logging.WARNING)
    n, reps = (2000, 2) if quick else (10000, 4)
    x, y, path, save_s = _images(n)
    arms = {"memory": lambda: mx.io.NDArrayIter(x, y, batch_size=BATCH, label_name="sm_label"),
            "sframe": lambda: mx.io.SFrameIter(SFrame(str(path)), data_field="image", label_field="label",
                                               batch_size=BATCH, label_name="sm_label")}
    for make in arms.values():  # warm-up: first-call work (kernels, imports, store metadata)
        _fit(make, epoch_size=5)
    times: dict[str, list[float]] = {a: [] for a in arms}
    foreign: dict[str, list[float]] = {a: [] for a in arms}
    for _ in range(reps):
        wait_for_quiet(max_wait_s=20.0)
        for arm, make in arms.items():
            t, share = with_foreign_share(lambda make=make: _fit(make))
            times[arm].append(t)
            foreign[arm].append(share)
    med = {a: median(t) for a, t in times.items()}
    remove(path)
    return {"name": "streaming", "quick": quick, "images": n, "reps": reps, "batch": BATCH, "save_s": round(save_s, 2),
            "times_s": {a: [round(t, 3) for t in ts] for a, ts in times.items()},
            "median_s": {a: round(t, 3) for a, t in med.items()},
            "samples_per_s": {a: round(n / t, 1) for a, t in med.items()},
            "overhead_pct": round(100 * (med["sframe"] / med["memory"] - 1), 1), "foreign_share": foreign}


def markdown(res: dict[str, Any]) -> str:
    rows = {"memory": "NumPy arrays in memory, `mx.io.NDArrayIter`",
            "sframe": "SFrame on disk, `mx.io.SFrameIter` (reopened with `SFrame(path)`)"}
    lines = [f"The user guide's CNN, one epoch of `FeedForward.fit` (SGD lr 0.01, momentum 0.9, batch {res['batch']}) "
             f"on {res['images']:,} real Fashion-MNIST images; {res['reps']} repetitions, alternating; medians. "
             f"Saving the SFrame took {res['save_s']} s (not timed).", "",
             "| fed from | median s | samples/s | every repetition (s) |", "|---|---|---|---|"]
    for arm, label in rows.items():
        lines.append(f"| {label} | {res['median_s'][arm]:.2f} | {res['samples_per_s'][arm]:.0f} | "
                     f"{', '.join(f'{t:.2f}' for t in res['times_s'][arm])} |")
    lines += ["", f"Streaming overhead (t_sframe / t_memory - 1): **{res['overhead_pct']:+.1f}%**", "",
              "Other processes' share of the CPUs during each repetition: " + "; ".join(
                  f"{a} {shares(v)}" for a, v in res.get("foreign_share", {}).items()) + ".", "",
              *noisy_warning(res)]
    return "\n".join(lines)
