"""The training loop of ``FeedForward.fit``: epochs of forward, backward, update, metrics, callbacks.

Kept apart from ``FeedForward`` so that the model object only holds parameters and
settings; this module owns the per-batch work and the resumable training state
(optimizer state, random state and epoch, saved beside each checkpoint).
"""

from __future__ import annotations

import logging
import os
import pickle
import time
from dataclasses import dataclass, field
from typing import Any

from framestream.errors import NNError
from framestream.nn._executor_group import ExecutorGroup

LOG = logging.getLogger("framestream.nn")
STATE_FORMAT = 1


@dataclass
class TrainingState:
    """What a checkpoint needs beyond the MXNet files for a resumed run to continue exactly."""

    epoch: int
    updater: bytes
    random: list[Any] = field(default_factory=list)
    format: int = STATE_FORMAT


@dataclass(frozen=True)
class Callbacks:
    """What ``fit`` calls besides the model: at each epoch's end, each batch's end, each
    evaluation batch's end, and the Monitor."""

    epoch_end: Any = None
    batch_end: Any = None
    eval_batch_end: Any = None
    monitor: Any = None


def state_path(prefix: str, epoch: int) -> str:
    return f"{prefix}-{epoch:04d}.states"


def save_state(prefix: str, state: TrainingState) -> None:
    """Write the training state atomically beside ``prefix-%04d.params``."""
    path = state_path(prefix, state.epoch)
    tmp = f"{path}.writing-{os.getpid()}"
    with open(tmp, "wb") as f:
        pickle.dump(state, f, protocol=pickle.HIGHEST_PROTOCOL)
    os.replace(tmp, path)


def load_state(prefix: str, epoch: int) -> TrainingState | None:
    path = state_path(prefix, epoch)
    if not os.path.exists(path):
        return None
    with open(path, "rb") as f:
        state = pickle.load(f)
    if not isinstance(state, TrainingState) or state.format != STATE_FORMAT:
        raise NNError(f"{path}: not a framestream training state (format {STATE_FORMAT})")
    return state


def _as_list(callbacks: Any) -> list[Any]:
    if callbacks is None:
        return []
    return list(callbacks) if isinstance(callbacks, list | tuple) else [callbacks]


def run_epochs(model: Any, group: ExecutorGroup, updater: Any, train_data: Any, eval_data: Any,
               eval_metric: Any, epoch_end_callback: Any, batch_end_callback: Any,
               eval_batch_end_callback: Any, monitor: Any, logger: logging.Logger | None) -> None:
    """Train ``model`` from ``model.begin_epoch`` to ``model.num_epoch``."""
    from framestream.nn.callback import BatchEndParam

    logger = logger or LOG
    batch_callbacks = _as_list(batch_end_callback)
    epoch_callbacks = _as_list(epoch_end_callback)
    if monitor is not None:
        group.install_monitor(monitor)
    for epoch in range(model.begin_epoch, model.num_epoch):
        started = time.time()
        eval_metric.reset()
        if hasattr(train_data, "set_epoch") and model.epoch_size is None:
            train_data.set_epoch(epoch)  # the epoch's order depends on (seed, epoch) only: resumable
        nbatch = 0
        while True:  # MXNet's loop: with epoch_size an epoch may end early or span several passes
            do_reset = True
            for batch in train_data:
                if monitor is not None:
                    monitor.tic()
                group.load_batch(batch)
                group.forward(is_train=True)
                group.backward()
                group.update(updater)
                group.update_metric(eval_metric, batch.label)
                if monitor is not None:
                    monitor.toc_print()
                nbatch += 1
                preds = group.batch_outputs()  # noqa: F841 (callbacks read it from locals)
                labels = batch.label  # noqa: F841 (for callbacks)
                params = BatchEndParam(epoch=epoch, nbatch=nbatch, eval_metric=eval_metric, locals=locals())
                for callback in batch_callbacks:
                    callback(params)
                if model.epoch_size is not None and nbatch >= model.epoch_size:
                    do_reset = False
                    break
            if do_reset:
                train_data.reset()
            if model.epoch_size is None or nbatch >= model.epoch_size:
                break
            if nbatch == 0:
                raise NNError("the training data yielded no batch")
        group.reduce_metric(eval_metric)
        for name, value in eval_metric.get_name_value():
            logger.info("Epoch[%d] Train-%s=%f", epoch, name, value)
        logger.info("Epoch[%d] Time cost=%.3f", epoch, time.time() - started)
        train_values = eval_metric.get_name_value()
        group.get_params(model.arg_params, model.aux_params)
        for callback in epoch_callbacks:
            callback(epoch, model.symbol, model.arg_params, model.aux_params)
            prefix = getattr(callback, "prefix", None)
            period = getattr(callback, "period", 1)
            if prefix is not None and (epoch + 1) % period == 0:
                save_state(prefix, TrainingState(epoch + 1, updater.get_states(dump_optimizer=True),
                                                 group.random_states()))
        eval_values = None
        if eval_data is not None:
            eval_values = evaluate(group, eval_data, eval_metric, epoch, eval_batch_end_callback)
            for name, value in eval_values:
                logger.info("Epoch[%d] Validation-%s=%f", epoch, name, value)
        for callback in {id(c): c for c in batch_callbacks + epoch_callbacks}.values():
            if hasattr(callback, "on_epoch_end"):
                callback.on_epoch_end(epoch, train_values, eval_values)


def evaluate(group: ExecutorGroup, data: Any, metric: Any, epoch: int, batch_end_callback: Any = None,
             num_batch: int | None = None) -> list[tuple[str, float]]:
    """Score ``data`` with the training executors (inference mode); padding rows count, as in MXNet."""
    from framestream.nn.callback import BatchEndParam

    metric.reset()
    data.reset()
    for nbatch, batch in enumerate(data, start=1):
        group.load_batch(batch)
        group.forward(is_train=False)
        group.update_metric(metric, batch.label)
        for callback in _as_list(batch_end_callback):
            callback(BatchEndParam(epoch=epoch, nbatch=nbatch, eval_metric=metric, locals=locals()))
        if num_batch is not None and nbatch >= num_batch:
            break
    group.reduce_metric(metric)
    return metric.get_name_value()
