"""The caller's side of ``FeedForward.fit(cluster=...)``: start one training task per worker,
watch them, stop them all when one fails, and take the parameters back from rank 0."""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from typing import Any

from framestream.errors import ClusterError, NNError
from framestream.nn._training import Callbacks
from framestream.nn.distributed._worker import (
    Job,
    Result,
    abort_run,
    address_key,
    stateful_callbacks,
    train_worker,
)

LOG = logging.getLogger("framestream.nn.distributed")

DEFAULT_TIMEOUT = 300.0  # seconds a worker waits for a peer within a step before giving up
TIMEOUT_VARIABLE = "FRAMESTREAM_ALLREDUCE_TIMEOUT"  # overrides DEFAULT_TIMEOUT
ALLREDUCE_VARIABLE = "FRAMESTREAM_ALLREDUCE"  # 'auto' (default), 'ring' or 'nccl'
SETTLE = 5.0  # seconds the survivors get to stop after a failure, before their tasks are cancelled


def connect_client(cluster: Any, timeout: float = 60.0) -> tuple[Any, bool]:
    """``(client, owned)`` for a ``distributed.Client`` (used as is), a scheduler address or
    a cluster object such as ``LocalCluster`` (a new client the caller must close)."""
    from distributed import Client

    if isinstance(cluster, Client):
        return cluster, False
    if isinstance(cluster, str):
        try:
            return Client(cluster, timeout=timeout, set_as_default=False), True
        except (OSError, TimeoutError, ValueError) as exc:
            raise ClusterError(f"cannot reach the Dask scheduler at {cluster!r} within "
                               f"{timeout:g} s ({type(exc).__name__}: {exc})") from None
    if hasattr(cluster, "scheduler_address"):
        return Client(cluster, set_as_default=False), True
    raise TypeError(f"cluster must be a distributed.Client, a scheduler address or a Dask "
                    f"cluster object, not {type(cluster).__name__}")


def pick_workers(client: Any, num_workers: int | None, timeout: float) -> list[str]:
    """The running workers' addresses, sorted (rank = position): the first ``num_workers``,
    once that many run (waiting up to ``timeout`` s, e.g. for a restarted worker), else all."""
    if num_workers is not None and num_workers < 1:
        raise ValueError(f"num_workers must be at least 1, not {num_workers}")
    deadline = time.monotonic() + timeout
    while True:
        info = client.scheduler_info(n_workers=-1)["workers"]
        running = sorted(a for a, w in info.items() if w.get("status", "running") == "running")
        if running and len(running) >= (num_workers or 1):
            return running[:num_workers] if num_workers else running
        if time.monotonic() > deadline:
            raise ClusterError(f"the Dask cluster at {client.scheduler.address} has "
                               f"{len(running)} running workers; waited {timeout:g} s for "
                               f"{num_workers or 1}")
        time.sleep(0.2)


def fit_on_cluster(model: Any, train: Any, evals: Any, metric: Any, param_names: list[str],
                   callbacks: Callbacks, *, cluster: Any, num_workers: int | None = None,
                   logger: logging.Logger | None = None, work_load_list: list[float] | None = None,
                   timeout: float | None = None, connect_timeout: float = 60.0,
                   poll: float = 0.25) -> Result:
    """Train ``model`` (parameters initialised) synchronously on the cluster's workers and
    load rank 0's parameters into it; see ``framestream.nn.distributed``.

    ``train`` / ``evals`` are SFrame iterators; each worker reads its ``part`` (batch by
    batch) with the iterator's batch size, so a step's batch is workers x that.
    ``timeout``: seconds a worker waits for a peer within a collective (default
    ``$FRAMESTREAM_ALLREDUCE_TIMEOUT``, else 300). ``poll``: how often the driver checks the
    tasks and the worker list (never per training step). ``$FRAMESTREAM_ALLREDUCE``: 'ring'
    (TCP, through host memory), 'nccl' (GPU to GPU), or 'auto' (NCCL for GPU contexts
    where CuPy has it, else the ring).
    """
    from framestream.nn import random as nn_random

    for name, it in (("X", train), ("eval_data", evals)):
        if it is not None and getattr(it, "_arguments", None) is None:  # see SFrameIter.recipe
            raise NNError(f"fit(cluster=...): {name} must be an SFrame (or an SFrameIter / "
                          f"SFrameImageIter over one) that the workers can read, not a "
                          f"{type(it).__name__}; save the data with SFrame.save first")
    if timeout is None:
        timeout = float(os.environ.get(TIMEOUT_VARIABLE, DEFAULT_TIMEOUT))
    allreduce = os.environ.get(ALLREDUCE_VARIABLE, "auto")
    if allreduce not in ("auto", "ring", "nccl"):
        raise NNError(f"${ALLREDUCE_VARIABLE} must be 'auto', 'ring' or 'nccl', not {allreduce!r}")
    client, owned = connect_client(cluster, connect_timeout)
    run_id = uuid.uuid4().hex[:12]
    futures: list[Any] = []
    workers: list[str] = []
    try:
        workers = pick_workers(client, num_workers, connect_timeout)
        size = len(workers)
        optimizer = model._make_optimizer(size * train.batch_size, param_names)
        job = Job(run_id, model, train.recipe(), None if evals is None else evals.recipe(), metric,
                  optimizer, param_names, callbacks, nn_random.get_state(), logger,
                  work_load_list, timeout, connect_timeout, allreduce)
        [shared] = client.scatter([job], workers=workers, broadcast=True, hash=False)
        futures = [client.submit(train_worker, shared, rank, size, workers=[address],
                                 allow_other_workers=False, pure=False, retries=0,
                                 key=f"framestream-fit-{run_id}-rank{rank}")
                   for rank, address in enumerate(workers)]
        (logger or LOG).info("training on %d Dask workers (batch %d each, %d per step)", size,
                             train.batch_size, size * train.batch_size)
        result = _watch(client, futures, workers, run_id, poll)
    except BaseException as exc:
        if futures:
            _stop(client, futures, workers, run_id, f"the driver stopped the run ({exc!r})")
        raise
    finally:
        _forget(client, run_id, len(workers))
        if owned:
            client.close()
    _adopt(model, result, metric, callbacks)
    return result


def _watch(client: Any, futures: list[Any], workers: list[str], run_id: str,
           poll: float) -> Result:
    changed = threading.Event()
    for f in futures:
        f.add_done_callback(lambda _: changed.set())
    while True:
        changed.wait(poll)
        changed.clear()
        if any(f.status in ("error", "cancelled", "lost") for f in futures):
            raise _failure(client, futures, workers, run_id)
        if all(f.status == "finished" for f in futures):
            return futures[0].result()
        if _lost(client, workers):
            raise _failure(client, futures, workers, run_id)


def _lost(client: Any, workers: list[str]) -> list[str]:
    info = client.scheduler_info(n_workers=-1)["workers"]
    return [w for w in workers if info.get(w, {}).get("status", "running") != "running"
            or w not in info]


def _failure(client: Any, futures: list[Any], workers: list[str], run_id: str) -> BaseException:
    """The error to raise: a worker's own exception (the root cause) when one raised
    something other than a ClusterError, else a ClusterError naming what was lost."""
    lost = _lost(client, workers)
    reason = (f"worker {lost[0]} (rank {workers.index(lost[0])}) left the cluster" if lost
              else "another worker failed")
    _abort(client, workers, lost, run_id, reason)
    deadline = time.monotonic() + SETTLE
    while time.monotonic() < deadline:  # the survivors stop on the abort or their peers' sockets
        lost = _lost(client, workers)
        if not any(f.status == "pending" and w not in lost for f, w in zip(futures, workers)):
            break
        time.sleep(0.1)
    errors = [(rank, f.exception()) for rank, f in enumerate(futures) if f.status == "error"]
    client.cancel(futures, force=True)
    for rank, exc in errors:
        if not isinstance(exc, ClusterError):
            if hasattr(exc, "add_note"):
                exc.add_note(f"(raised by rank {rank} of the training run, on worker {workers[rank]})")
            return exc
    lost = _lost(client, workers)
    parts = [f"worker {w} (rank {workers.index(w)}) left the cluster" for w in lost]
    parts += [f"rank {rank}: {exc}" for rank, exc in errors]
    return ClusterError("training on the Dask cluster failed: " + "; ".join(parts or [
        f"the tasks ended as {[f.status for f in futures]}"]))


def _abort(client: Any, workers: list[str], lost: list[str], run_id: str, reason: str) -> None:
    alive = [w for w in workers if w not in lost]
    if alive:
        try:
            client.run(abort_run, run_id, reason, workers=alive, on_error="ignore")
        except Exception as exc:  # noqa: BLE001 (the survivors still time out on their own)
            LOG.debug("abort on %s: %s", alive, exc)


def _stop(client: Any, futures: list[Any], workers: list[str], run_id: str, reason: str) -> None:
    if all(f.status == "finished" for f in futures):
        return
    try:
        _abort(client, workers, _lost(client, workers), run_id, reason)
        client.cancel(futures, force=True)
    except Exception as exc:  # noqa: BLE001 (already failing; keep the first error)
        LOG.debug("stopping run %s: %s", run_id, exc)


def _forget(client: Any, run_id: str, size: int) -> None:
    from distributed import Variable

    for rank in range(size):
        try:
            Variable(address_key(run_id, rank), client=client).delete()
        except Exception as exc:  # noqa: BLE001 (the scheduler may be gone)
            LOG.debug("forgetting run %s: %s", run_id, exc)


def _adopt(model: Any, result: Result, metric: Any, callbacks: Callbacks) -> None:
    for name, value in result.arg_params.items():
        model.arg_params[name][:] = value
    for name, value in result.aux_params.items():
        model.aux_params[name][:] = value
    for cb, state in zip(stateful_callbacks(callbacks), result.callbacks):
        if state is not None:
            cb.__dict__.update(state)
    metric.__dict__.update(result.metric.__dict__)
