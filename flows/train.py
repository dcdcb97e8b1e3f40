"""The ``train`` flow: a network trained on a saved SFrame, one Prefect task per epoch.

Each epoch task loads the previous epoch's checkpoint (``FeedForward.load``, which also
restores the optimizer and random state saved beside it), trains one epoch and writes
``<output>/<experiment>-%04d.params`` (+ ``.states``, ``-symbol.json``) through
``mx.callback.do_checkpoint``; the task returns only that checkpoint's path. Its result
is persisted under ``<output>/.results`` with the key (experiment, hash of the config
and the data, epoch), so a re-run after a crash - even a SIGKILL - finds the finished
epochs cached and resumes at the first missing one, ending with the same parameters bit
for bit as an uninterrupted run. A failed epoch is retried twice from its start.

With ``cluster`` in the config each epoch trains synchronously data-parallel on the Dask
cluster's workers (``FeedForward.fit(cluster=...)``; rank 0 writes the checkpoints), the
cluster started once for the whole flow; a retried epoch resumes from the last checkpoint.

Besides the checkpoints: ``<prefix>-input.json`` (how rows are fed, for scoring),
``history.json`` and ``training_curves.png``.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from framestream.errors import ConfigError
from framestream.flows._models import InputSpec, build_network, data_iter, parse_device
from framestream.flows._outputs import digest, frame_uuid
from framestream.flows.config import SourceNotFoundError, TrainConfig, as_config, to_dict

_MOMENTUM_OPTIMIZERS = {"sgd", "nag", "ccsgd"}


def prefix_of(config: TrainConfig) -> str:
    return str(Path(config.output).absolute() / config.experiment)


def checkpoint_files(checkpoint: str) -> list[Path]:
    prefix, _, epoch = checkpoint.rpartition("-")
    return [Path(f"{prefix}-symbol.json"), Path(f"{checkpoint}.params"),
            Path(f"{checkpoint}.states"), Path(f"{checkpoint}-history.json")]


def _data_uuid(path: str | None, key: str) -> str | None:
    if path is None:
        return None
    uuid = frame_uuid(path)
    if uuid is None:
        raise SourceNotFoundError(f"{key}: {path} is not a saved SFrame")
    return uuid


@task(cache_policy=NO_CACHE)
def build_symbol(config: TrainConfig) -> str:
    """The network's symbol as JSON (built once; its hash is part of the epochs' key).
    The optimizer's name is checked here too, before any epoch starts."""
    from framestream.nn.optimizer import Optimizer

    if config.optimizer.lower() not in Optimizer.opt_registry:
        raise ConfigError(f"optimizer: unknown optimizer {config.optimizer!r}; known: "
                          f"{', '.join(sorted(Optimizer.opt_registry))}")
    return build_network(config.network, dict(config.network_args)).tojson()


@task(cache_policy=NO_CACHE)
def run_key(config: TrainConfig, symbol_json: str) -> str:
    """``<experiment>-<hash>``: the hash covers every setting that changes the parameters
    (not ``num_epoch``, so a longer run reuses the epochs done) and the data's identity."""
    settings = to_dict(config)
    for name in ("num_epoch", "output", "data", "eval_data", "experiment"):
        settings.pop(name)
    cluster = settings.pop("cluster")
    if cluster is not None:  # where the scheduler is does not change the parameters
        settings["cluster"] = {"n_workers": cluster["n_workers"], "gpu": cluster["gpu"]}
    data = _data_uuid(config.data, "data")
    evaluation = _data_uuid(config.eval_data, "eval_data")
    return f"{config.experiment}-{digest(settings, symbol_json, data, evaluation)}"


def _epoch_key(context: Any, parameters: dict[str, Any]) -> str:
    return f"{parameters['key']}-epoch{parameters['epoch'] + 1:04d}"


def _optimizer_args(config: TrainConfig) -> dict[str, Any]:
    args: dict[str, Any] = {"learning_rate": config.learning_rate, "wd": config.wd}
    if config.optimizer.lower() in _MOMENTUM_OPTIMIZERS:
        args["momentum"] = config.momentum
    return args


def _initializer(name: str) -> Any:
    from framestream.nn import initializer as init

    choices = {"uniform": init.Uniform(0.01), "normal": init.Normal(0.01), "xavier": init.Xavier()}
    return choices[name]


def _metric(symbol: Any) -> str:
    heads = json.loads(symbol.tojson())["nodes"]
    return "acc" if heads and heads[-1]["op"] == "SoftmaxOutput" else "rmse"


def _iterators(config: TrainConfig, symbol: Any) -> tuple[Any, Any]:
    import framestream as fs
    from framestream.nn._inputs import input_names

    data_name, label_name = input_names(symbol)
    common = {"data_name": data_name, "label_field": config.label_field,
              "label_name": label_name or "softmax_label", "seed": config.seed}
    train = data_iter(fs.SFrame(config.data), config.data_field, config.input, config.batch_size,
                      train=True, shuffle=config.shuffle, **common)
    evaluation = None
    if config.eval_data is not None:
        evaluation = data_iter(fs.SFrame(config.eval_data), config.data_field, config.input,
                               config.batch_size, **common)
    return train, evaluation


@task(retries=2, retry_delay_seconds=0, cache_key_fn=_epoch_key, persist_result=True)
def train_epoch(config: TrainConfig, key: str, symbol_json: str, epoch: int,
                previous: str | None, scheduler: str | None = None,
                workers: int | None = None) -> str:
    """Train epoch ``epoch`` (0-based) from checkpoint ``previous`` (None: a fresh start);
    returns the checkpoint written, ``<prefix>-<epoch + 1:04d>``. ``scheduler``: train on
    ``workers`` workers of that Dask cluster (a retry after a lost worker starts again from
    ``previous``, on the workers there are then)."""
    import framestream as fs
    from framestream.nn import random as nn_random
    from framestream.nn import symbol as sym
    from framestream.nn.callback import History, ProgressBar, do_checkpoint
    from framestream.nn.context import gpu
    from framestream.nn.model import FeedForward

    prefix = prefix_of(config)
    on_gpus = scheduler is not None and config.cluster is not None and config.cluster.gpu
    ctx = [gpu(0)] if on_gpus else parse_device(config.device)  # a dask-cuda worker sees one GPU
    common = {"ctx": ctx, "num_epoch": epoch + 1,
              "optimizer": config.optimizer, "numpy_batch_size": config.batch_size,
              **_optimizer_args(config)}
    if previous is None:
        nn_random.seed(config.seed)
        model = FeedForward(sym.load_json(symbol_json),
                            initializer=_initializer(config.initializer), **common)
    else:
        model = FeedForward.load(prefix, epoch, **common)
    train, evaluation = _iterators(config, model.symbol)
    history = History()
    batches = -(-len(fs.SFrame(config.data)) // (config.batch_size * (workers or 1)))
    progress = ProgressBar(batches)  # draws only on a terminal (so not on a Dask worker)
    on_cluster = {} if scheduler is None else {"cluster": scheduler, "num_workers": workers}
    try:
        model.fit(train, eval_data=evaluation, eval_metric=_metric(model.symbol),
                  epoch_end_callback=do_checkpoint(prefix), batch_end_callback=[history, progress],
                  **on_cluster)
    finally:
        progress.close()
        for it in (train, evaluation):
            if it is not None:
                it.close()
    checkpoint = f"{prefix}-{epoch + 1:04d}"
    history.save_json(f"{checkpoint}-history.json")
    return checkpoint


@task(cache_policy=NO_CACHE)
def write_history(config: TrainConfig, checkpoints: list[str]) -> Any:
    """``history.json`` and ``training_curves.png`` in the output folder from the epochs'
    records; returns the ``mx.callback.History``."""
    from framestream.nn.callback import History

    history = History()
    for checkpoint in checkpoints:
        history.epochs.extend(json.loads(Path(f"{checkpoint}-history.json").read_text())["epochs"])
    output = Path(config.output).absolute()
    history.save_json(output / "history.json")
    history.plot(output / "training_curves.png")
    return history


@flow(name="train", validate_parameters=False)
def train(config: TrainConfig | dict | str) -> str:
    """Train ``config.num_epoch`` epochs, resuming after the last finished one; returns the
    final checkpoint ``<output>/<experiment>-%04d`` (load it with ``FeedForward.load``)."""
    cfg = as_config(config, TrainConfig)
    log = get_run_logger()
    output = Path(cfg.output).absolute()
    output.mkdir(parents=True, exist_ok=True)
    symbol_json = build_symbol(cfg)
    key = run_key(cfg, symbol_json)
    InputSpec(cfg.data_field, cfg.input).save(prefix_of(cfg))
    epoch_task = train_epoch.with_options(result_storage=output / ".results")
    checkpoint: str | None = None
    done: list[str] = []
    with _training_cluster(cfg) as (scheduler, workers):
        for epoch in range(cfg.num_epoch):
            state = epoch_task(cfg, key, symbol_json, epoch, checkpoint, scheduler, workers,
                               return_state=True)
            checkpoint = state.result()
            if not all(p.exists() for p in checkpoint_files(checkpoint)):  # files removed since
                log.warning("train: %s is gone; training epoch %d again", checkpoint, epoch + 1)
                checkpoint = epoch_task.with_options(refresh_cache=True)(
                    cfg, key, symbol_json, epoch, done[-1] if done else None, scheduler, workers)
            log.info("train: epoch %d %s -> %s", epoch + 1, state.name, checkpoint)
            done.append(checkpoint)
    write_history(cfg, done)
    return checkpoint


@contextlib.contextmanager
def _training_cluster(cfg: TrainConfig) -> Iterator[tuple[str | None, int | None]]:
    """``(scheduler address, number of workers)`` of ``cfg.cluster`` for the whole flow (an
    embedded cluster starts once, not per epoch), or ``(None, None)`` without one."""
    if cfg.cluster is None:
        yield None, None
        return
    from framestream.flows.runtime import dask_client

    with dask_client(cfg.cluster, require_gpu=cfg.cluster.gpu) as client:
        workers = cfg.cluster.n_workers or len(client.scheduler_info(n_workers=-1)["workers"])
        get_run_logger().info("train: on %d Dask workers at %s", workers, client.scheduler.address)
        yield client.scheduler.address, workers
