"""``mx.callback``: what the training loop calls after each batch and each epoch.

Batch-end callbacks receive a ``BatchEndParam(epoch, nbatch, eval_metric, locals)`` with
``nbatch`` counted from 1; epoch-end callbacks receive ``(epoch, symbol, arg_params,
aux_params)`` with a 0-based ``epoch``. ``History`` is both: a batch-end callback that
accumulates the training loss, and an ``on_epoch_end`` hook the loop calls on every
callback object that has one. Messages go to the ``framestream.nn`` logger.
"""

from __future__ import annotations

import json
import logging
import math
import os
import sys
import time
from collections import namedtuple
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import IO, Any

import numpy as np
from tqdm import tqdm

from framestream.nn import _history_plot
from framestream.nn.checkpoint import save_checkpoint
from framestream.nn.context import to_numpy
from framestream.nn.ndarray import NDArray

__all__ = [
    "BatchEndParam", "History", "ProgressBar", "Speedometer", "do_checkpoint",
    "log_train_metric",
]

logger = logging.getLogger("framestream.nn")

BatchEndParam = namedtuple("BatchEndParam", ["epoch", "nbatch", "eval_metric", "locals"])


def _metric_text(eval_metric: Any) -> str:
    return "".join(f"\t{name}={value:f}" for name, value in eval_metric.get_name_value())


class Speedometer:
    """Log the throughput and the training metric every ``frequent`` batches.

    With ``auto_reset`` the metric is reset after each log, so every line (and the
    epoch-end Train metric) covers only the batches since the previous line, as in MXNet.
    """

    def __init__(self, batch_size: int, frequent: int = 50, auto_reset: bool = True):
        self.batch_size = batch_size
        self.frequent = frequent
        self.auto_reset = auto_reset
        self.init = False
        self.tic = 0.0
        self.last_count = 0
        self._tic_count = 0

    def __call__(self, param: BatchEndParam) -> None:
        count = param.nbatch
        if self.last_count > count:  # a new epoch
            self.init = False
        self.last_count = count
        if not self.init:
            self.init, self.tic, self._tic_count = True, time.time(), count
            return
        if count % self.frequent != 0:
            return
        elapsed = time.time() - self.tic
        batches = count - self._tic_count
        speed = batches * self.batch_size / elapsed if elapsed > 0 else float("inf")
        if param.eval_metric is not None:
            first = count - batches + 1 if self.auto_reset else 1
            logger.info("Epoch[%d] Batch [%d-%d]\tSpeed: %.2f samples/sec%s", param.epoch, first,
                        count, speed, _metric_text(param.eval_metric))
            if self.auto_reset:
                param.eval_metric.reset()
        else:
            logger.info("Iter[%d] Batch [%d]\tSpeed: %.2f samples/sec", param.epoch, count, speed)
        self.tic, self._tic_count = time.time(), count


class ProgressBar:
    """A tqdm progress bar over the ``total`` batches of each epoch, showing the metric.

    It draws only on a terminal (so logs and notebooks' captured output stay clean) unless
    ``force``; ``file`` defaults to standard error.
    """

    def __init__(self, total: int, length: int = 80, file: IO[str] | None = None,
                 force: bool = False):
        self.total = total
        self.bar_len = length
        self.file = file
        self.force = force
        self._bar: tqdm | None = None
        self._epoch: int | None = None
        self._last = 0

    def __call__(self, param: BatchEndParam) -> None:
        new_epoch = param.epoch != self._epoch or param.nbatch < self._last
        if self._bar is None and not new_epoch:
            return  # this epoch's bar is already complete
        if new_epoch:
            self.close()
            stream = self.file if self.file is not None else sys.stderr
            enabled = self.force or bool(getattr(stream, "isatty", lambda: False)())
            self._bar = tqdm(total=self.total, ncols=self.bar_len, file=stream, unit="batch",
                             desc=f"Epoch {param.epoch}", disable=not enabled, leave=True)
            self._epoch = param.epoch
        self._last = param.nbatch
        bar = self._bar
        if param.eval_metric is not None:
            bar.set_postfix({n: f"{v:.4g}" for n, v in param.eval_metric.get_name_value()},
                            refresh=False)
        step = min(param.nbatch, self.total) - bar.n
        if step > 0:
            bar.update(step)
        if param.nbatch >= self.total:
            self.close()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def do_checkpoint(prefix: str, period: int = 1) -> Callable[[int, Any, dict, dict], None]:
    """An epoch-end callback saving ``prefix-symbol.json`` and ``prefix-%04d.params`` every
    ``period`` epochs, numbered ``epoch + 1`` (so a run's first checkpoint is 0001). It carries
    ``prefix`` and ``period`` so the training loop can save its resume state beside them."""
    period = int(max(1, period))

    def _callback(iter_no: int, sym: Any, arg: dict, aux: dict) -> None:
        if (iter_no + 1) % period == 0:
            save_checkpoint(prefix, iter_no + 1, sym, arg, aux)
            logger.info('Saved checkpoint to "%s-%04d.params"', prefix, iter_no + 1)

    _callback.prefix, _callback.period = prefix, period  # type: ignore[attr-defined]
    return _callback


def log_train_metric(period: int, auto_reset: bool = False) -> Callable[[BatchEndParam], None]:
    """A batch-end callback logging the training metric every ``period`` batches."""

    def _callback(param: BatchEndParam) -> None:
        if param.nbatch % period == 0 and param.eval_metric is not None:
            for name, value in param.eval_metric.get_name_value():
                logger.info("Iter[%d] Batch[%d] Train-%s=%f", param.epoch, param.nbatch, name,
                            value)
            if auto_reset:
                param.eval_metric.reset()

    return _callback


# -- History -------------------------------------------------------------------------------


def batch_loss(label: Any, pred: Any) -> tuple[float, int] | None:
    """``(summed loss, samples)`` for one output: cross-entropy when ``pred`` holds class
    probabilities (batch, classes) and ``label`` class ids, else squared error averaged
    over each sample's values; None when the two cannot be compared."""
    label, pred = _host(label), _host(pred)
    if pred.ndim == 0 or pred.shape[0] == 0:
        return None
    n = pred.shape[0]
    if pred.ndim == 2 and pred.shape[1] > 1 and label.size == n and _are_class_probs(label, pred):
        prob = pred[np.arange(n), label.reshape(-1).astype(np.int64)].astype(np.float64)
        return float(-np.log(np.maximum(prob, 1e-12)).sum()), n
    if label.size != pred.size:
        return None
    diff = pred.reshape(n, -1).astype(np.float64) - label.reshape(n, -1).astype(np.float64)
    return float((diff**2).mean(axis=1).sum()), n


def _are_class_probs(label: np.ndarray, pred: np.ndarray) -> bool:
    ids = label.reshape(-1)
    if not np.all(ids == np.round(ids)) or ids.min() < 0 or ids.max() >= pred.shape[1]:
        return False
    return bool(pred.min() >= 0 and np.allclose(pred.sum(axis=1), 1.0, atol=1e-3))


def _host(value: Any) -> np.ndarray:
    return value.asnumpy() if isinstance(value, NDArray) else np.asarray(to_numpy(value))


def _as_dict(name_values: Any) -> dict[str, float]:
    if not name_values:
        return {}
    pairs = name_values.items() if isinstance(name_values, dict) else name_values
    return {str(name): float(value) for name, value in pairs}


def _json_ready(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_ready(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_ready(v) for v in value]
    return value


class History:
    """Per-epoch record of the training run: metrics, evaluation metrics, loss, time.

    Pass it as a batch-end callback; the training loop also calls its ``on_epoch_end``.
    Each entry of ``epochs`` is ``{'epoch', 'train', 'eval', 'loss', 'samples', 'time'}``,
    where ``loss`` is the mean training loss over the epoch's samples and ``time`` the
    seconds from the previous epoch's end (for the first epoch, from its first batch).

    >>> h = History()
    >>> h(BatchEndParam(0, 1, None, {'labels': [np.array([0, 1])],
    ...                              'preds': [np.array([[0.5, 0.5], [0.5, 0.5]])]}))
    >>> h.on_epoch_end(0, [('accuracy', 0.5)], None)
    >>> round(h.epochs[0]['loss'], 4), h.epochs[0]['train']
    (0.6931, {'accuracy': 0.5})
    """

    def __init__(self) -> None:
        self.epochs: list[dict[str, Any]] = []
        self._epoch: int | None = None
        self._start: float | None = None
        self._loss_sum = 0.0
        self._loss_count = 0

    def __call__(self, param: BatchEndParam) -> None:
        now = time.perf_counter()
        if self._epoch is not None and param.epoch != self._epoch:
            self._close(self._epoch, {}, {}, now)  # the loop never called on_epoch_end
        if self._start is None:
            self._start = now
        self._epoch = param.epoch
        found = param.locals or {}
        labels, preds = found.get("labels"), found.get("preds")
        if labels is None or preds is None:
            return
        for label, pred in zip(_listed(labels), _listed(preds)):
            loss = batch_loss(label, pred)
            if loss is not None:
                self._loss_sum += loss[0]
                self._loss_count += loss[1]

    def on_epoch_end(self, epoch: int, train_name_values: Iterable | dict | None,
                     eval_name_values: Iterable | dict | None) -> None:
        """Close ``epoch`` with the loop's training and evaluation metric values."""
        now = time.perf_counter()
        closed = [e for e in self.epochs if e["epoch"] == epoch]
        if closed and self._epoch != epoch:  # closed when the next epoch began: add metrics
            closed[-1]["train"].update(_as_dict(train_name_values))
            closed[-1]["eval"].update(_as_dict(eval_name_values))
            return
        self._close(epoch, _as_dict(train_name_values), _as_dict(eval_name_values), now)

    def _close(self, epoch: int, train: dict, evaluation: dict, now: float) -> None:
        start = self._start if self._start is not None else now
        self.epochs.append({
            "epoch": int(epoch), "train": train, "eval": evaluation,
            "loss": self._loss_sum / self._loss_count if self._loss_count else None,
            "samples": self._loss_count, "time": now - start,
        })
        self._epoch, self._start = None, now
        self._loss_sum, self._loss_count = 0.0, 0

    def to_dict(self) -> dict[str, Any]:
        """``{'epochs': [...]}`` with copies of the records; NaN becomes None (JSON null)."""
        return {"epochs": _json_ready([dict(e, train=dict(e["train"]), eval=dict(e["eval"]))
                                       for e in self.epochs])}

    def save_json(self, path: str | os.PathLike) -> Path:
        """Write ``to_dict()`` as JSON, atomically."""
        target = Path(path)
        temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        try:
            temporary.write_text(json.dumps(self.to_dict(), indent=2))
            os.replace(temporary, target)
        finally:
            temporary.unlink(missing_ok=True)
        return target

    def plot(self, path: str | os.PathLike) -> Path:
        """A PNG with one panel for the loss and one per metric (training and evaluation)."""
        xs = [float(e["epoch"]) for e in self.epochs]
        panels = []
        if any(e["loss"] is not None for e in self.epochs):
            panels.append(_history_plot.Panel("Training loss", "loss", [
                _history_plot.Series("train", xs, [e["loss"] for e in self.epochs])]))
        names = list(dict.fromkeys(n for e in self.epochs for n in [*e["train"], *e["eval"]]))
        for name in names:
            series = [_history_plot.Series(label, xs, [e[part].get(name) for e in self.epochs])
                      for part, label in (("train", "train"), ("eval", "validation"))
                      if any(name in e[part] for e in self.epochs)]
            panels.append(_history_plot.Panel(name, name, series))
        return _history_plot.render(panels, path)


def _listed(value: Any) -> list:
    return list(value) if isinstance(value, list | tuple) else [value]
