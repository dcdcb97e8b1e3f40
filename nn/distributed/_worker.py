"""The task each worker runs: join the ring, train a replica on this worker's share of the
data, and (rank 0) hand the parameters back.

One long task per worker, pinned to it by the driver. The peers' addresses are exchanged
once through the scheduler (a ``distributed.Variable`` per rank); after that the workers
talk to each other directly (``RingAllreduce``) and the scheduler sees nothing per step.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import pickle
import threading
import time
import types
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import dask
import numpy as np

from framestream.errors import ClusterError
from framestream.nn._training import Callbacks
from framestream.nn.distributed._allreduce import Allreduce, NcclAllreduce, RingAllreduce

LOG = logging.getLogger("framestream.nn.distributed")

_LOCAL = threading.local()
_ACTIVE: dict[str, Allreduce] = {}  # this process's runs, for the driver's abort


def worker_rank() -> tuple[int, int] | None:
    """``(rank, number of workers)`` while a data-parallel training task runs in this
    thread (in its callbacks, say), else None.

    >>> worker_rank() is None
    True
    """
    return getattr(_LOCAL, "rank", None)


@dataclass
class Job:
    """Everything a worker needs, sent to each worker once (the model holds the initial
    parameters and, when resuming, the optimizer and random state)."""

    run_id: str
    model: Any
    train: Any  # an io.IterRecipe: each worker makes its part
    evals: Any
    metric: Any
    optimizer: Any
    param_names: list[str]
    callbacks: Callbacks
    random_state: tuple[int | None, int]
    logger: logging.Logger | None = None
    work_load_list: list[float] | None = None
    timeout: float = 300.0
    connect_timeout: float = 60.0
    allreduce: str = "auto"  # 'ring' (TCP), 'nccl', or 'auto': NCCL for GPU contexts if CuPy has it


@dataclass
class Result:
    """What rank 0 hands back: the trained parameters, the attributes of its stateful
    callbacks (a History's records, say; see ``stateful_callbacks``) and its metric."""

    arg_params: dict[str, np.ndarray]
    aux_params: dict[str, np.ndarray]
    callbacks: list[dict[str, Any] | None]
    metric: Any
    gradient_bytes: int


def address_key(run_id: str, rank: int) -> str:
    return f"framestream-allreduce-{run_id}-rank{rank}"


def train_worker(job: Job, rank: int, size: int) -> Result | None:
    """The Dask task of rank ``rank``: train to ``job.model.num_epoch``; rank 0 returns the
    result, the others None."""
    from distributed import get_client, get_worker
    from distributed.comm import get_address_host

    # The worker's client (made on first use) makes itself Dask's default scheduler, in the
    # process-wide config; so get it first, then send this task's own Dask computations (an
    # image column's size, say) to the synchronous scheduler: this worker reads its data
    # itself, never through tasks of the cluster, whose threads the training tasks hold.
    client = get_client()
    with dask.config.set(scheduler="sync"), _malloc_for_training():
        ring = RingAllreduce(rank, size, job.run_id, get_address_host(get_worker().address),
                             job.timeout, job.connect_timeout)
        comm: Allreduce = ring
        _ACTIVE[job.run_id] = ring
        _LOCAL.rank = (rank, size)
        try:
            ring.connect(_exchange(client, job, rank, size, ring))
            if _use_nccl(job, ring):
                comm = NcclAllreduce(ring)
            return _train(job, comm, rank, size)
        finally:
            _LOCAL.rank = None
            _ACTIVE.pop(job.run_id, None)
            comm.close()


@contextlib.contextmanager
def _malloc_for_training() -> Iterator[None]:
    """Keep freed memory in the process while training (glibc only).

    Dask's nannies start workers with MALLOC_TRIM_THRESHOLD_=65536, which also pins glibc's
    mmap threshold at 128 KiB: every large temporary of a step (im2col buffers, activations)
    is then a fresh mmap, zeroed page by page, and a LeNet step takes twice as long as in a
    plain process (measured: 61-73 ms against 32-38 ms on 2 cores). Raise both thresholds
    for the task, then give the memory back and restore them.
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
        mallopt, trim = libc.mallopt, libc.malloc_trim
    except (OSError, AttributeError):  # not glibc
        yield
        return
    m_trim_threshold, m_mmap_threshold = -1, -3  # <malloc.h>
    mallopt(m_mmap_threshold, 32 << 20)  # glibc's largest
    mallopt(m_trim_threshold, 1 << 30)
    try:
        yield
    finally:
        mallopt(m_mmap_threshold, 128 << 10)
        mallopt(m_trim_threshold, int(os.environ.get("MALLOC_TRIM_THRESHOLD_", 128 << 10)))
        trim(0)


def _exchange(client: Any, job: Job, rank: int, size: int, ring: RingAllreduce) -> list[str]:
    """Every rank's listening address, through the scheduler (once per run). Waits in short
    polls, so that the driver's abort (a peer that never started) ends it at once."""
    from distributed import Variable

    Variable(address_key(job.run_id, rank), client=client).set(ring.address)
    addresses = []
    deadline = time.monotonic() + job.connect_timeout
    for r in range(size):
        variable = Variable(address_key(job.run_id, r), client=client)
        while True:
            ring.check()
            try:
                addresses.append(variable.get(timeout=0.5))
                break
            except TimeoutError:
                if time.monotonic() > deadline:
                    raise ClusterError(f"rank {rank}: rank {r} of {size} did not start within "
                                       f"{job.connect_timeout:g} s (is its worker alive and "
                                       "free?)") from None
    return addresses


def abort_run(run_id: str, reason: str) -> bool:
    """Fail run ``run_id``'s collectives in this process (the driver calls it through
    ``Client.run`` when a peer is lost, so no survivor waits out its timeout)."""
    comm = _ACTIVE.get(run_id)
    if comm is not None:
        comm.abort(reason)
    return comm is not None


def _use_nccl(job: Job, ring: RingAllreduce) -> bool:
    """NCCL if asked, or ('auto') if every rank trains on a GPU of its own and has CuPy's
    NCCL: ranks sharing a GPU (NCCL refuses them) or lacking it use the ring. Every rank
    makes the same calls here, so they all decide alike."""
    ctx = job.model.ctx[0]
    if ring.size == 1 or job.allreduce == "ring" or ctx.device_type != "gpu":
        return False
    if job.allreduce == "nccl":
        return True
    seen = ring.allgather(_gpu_identity(ctx.device_id))
    usable = all(s is not None for s in seen) and len(set(seen)) == len(seen)
    if not usable and ring.rank == 0:
        LOG.info("allreduce: the ring (through host memory), as the GPUs are %s", seen)
    return usable


def _gpu_identity(device_id: int) -> str | None:
    """Host and PCI bus id of the GPU, or None without CuPy's NCCL."""
    try:
        import cupy
        from cupy.cuda import nccl  # noqa: F401
    except ImportError:
        return None
    import socket

    return f"{socket.gethostname()}/{cupy.cuda.Device(device_id).pci_bus_id}"


def _train(job: Job, comm: Allreduce, rank: int, size: int) -> Result | None:
    from framestream.nn import random as nn_random
    from framestream.nn.distributed._group import DistributedGroup

    model = job.model
    seed, taken = job.random_state  # rank r's executors draw as contexts r*k.. of one process
    nn_random.set_state((seed, taken + rank * len(model.ctx)))
    train = job.train.part(rank, size, "batch")
    evals = job.evals.part(rank, size, "batch") if job.evals is not None else None
    try:
        group = DistributedGroup(comm, model.symbol, model.ctx, train.provide_data,
                                 train.provide_label, job.param_names, for_training=True,
                                 work_load_list=job.work_load_list)
        callbacks = job.callbacks
        if rank != 0:  # checkpoints: rank 0 alone
            callbacks = Callbacks(None, callbacks.batch_end, callbacks.eval_batch_end,
                                  callbacks.monitor)
        model._train(group, job.optimizer, train, evals, job.metric, callbacks, job.logger)
    finally:
        for it in (train, evals):
            if it is not None:
                it.close()
    if rank != 0:
        return None
    return Result({k: v.asnumpy() for k, v in model.arg_params.items()},
                  {k: v.asnumpy() for k, v in (model.aux_params or {}).items()},
                  _portable_states(job.callbacks), job.metric, group.gradient_bytes)


def stateful_callbacks(callbacks: Callbacks) -> list[Any]:
    """The callback objects whose state rank 0 sends back (objects, not plain functions)."""
    found = []
    for value in (callbacks.epoch_end, callbacks.batch_end, callbacks.eval_batch_end):
        for cb in value if isinstance(value, list | tuple) else [value]:
            if cb is not None and hasattr(cb, "__dict__") and not isinstance(
                    cb, types.FunctionType | types.MethodType | types.BuiltinFunctionType):
                found.append(cb)
    return found


def _portable_states(callbacks: Callbacks) -> list[dict[str, Any] | None]:
    """Each stateful callback's attributes, or None where they do not pickle (a drawn tqdm)."""
    states: list[dict[str, Any] | None] = []
    for cb in stateful_callbacks(callbacks):
        try:
            pickle.dumps(cb.__dict__)
            states.append(dict(cb.__dict__))
        except Exception:  # noqa: BLE001 (that callback's state stays on the worker)
            states.append(None)
    return states
