"""Where the flows run: Prefect's settings and the Dask cluster.

Prefect reads its settings once, when it is imported, so ``prefect_defaults()`` must run
before anything imports prefect; ``framestream.flows`` calls it when it is imported. With
no ``PREFECT_API_URL`` the flows use Prefect's ephemeral server (127.0.0.1, a random port,
SQLite in ``$FRAMESTREAM_HOME/prefect``); with it, that server.

>>> from framestream.flows.config import ClusterConfig
>>> with dask_client(ClusterConfig(n_workers=1)) as client:  # doctest: +SKIP
...     client.submit(sum, [1, 2]).result()
3
"""

from __future__ import annotations

import contextlib
import logging
import os
import warnings
from collections.abc import Iterator
from typing import Any

from framestream.errors import ClusterError

LOG = logging.getLogger("framestream.flows")

_PREFECT_DEFAULTS = {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_LOGGING_LEVEL": "WARNING",
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "60",
}


def prefect_defaults() -> None:
    """Set Prefect's environment defaults (only those not set already): its home under
    ``$FRAMESTREAM_HOME/prefect`` when no API URL is configured, no telemetry, WARNING logs
    and 60 s for the ephemeral server to start (a fresh database takes ~10 s on 2 cores)."""
    from framestream.frames._config import home

    if not os.environ.get("PREFECT_API_URL"):
        os.environ.setdefault("PREFECT_HOME", str(home() / "prefect"))
        # the ephemeral server's SQLite file cannot be created in a missing folder
        os.makedirs(os.path.expanduser(os.environ["PREFECT_HOME"]), exist_ok=True)
    for key, value in _PREFECT_DEFAULTS.items():
        os.environ.setdefault(key, value)


@contextlib.contextmanager
def quiet_flow_settings() -> Iterator[None]:
    """Run flows without the heartbeat thread, whose join costs each sync flow ~1 s.

    Heartbeats only serve zombie-run detection on a long-lived server; they cannot be
    turned off through the environment (the setting must be >= 30), hence this context.
    """
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

    with temporary_settings({PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
        yield


def _gpu_count() -> int:
    try:
        from dask_cuda.utils import get_n_gpus

        return int(get_n_gpus())
    except Exception:  # no NVML, no driver: no GPU
        return 0


def _local_cluster(cluster: Any, require_gpu: bool = False) -> Any:
    from distributed import LocalCluster

    n_workers = cluster.n_workers or max(1, min(os.cpu_count() or 1, 8))
    # no dashboard; the scheduler's small HTTP server (/health) on a free port, not 8787
    common = {"threads_per_worker": cluster.threads_per_worker, "dashboard_address": None,
              "scheduler_kwargs": {"dashboard_address": ":0"}, "silence_logs": logging.ERROR}
    if cluster.gpu:
        try:
            from dask_cuda import LocalCUDACluster
        except ImportError:
            if require_gpu:
                raise ClusterError("cluster.gpu is true but dask-cuda is not installed (pip "
                                   "install 'framestream[gpu]'); it starts one worker per GPU") from None
            warnings.warn("cluster.gpu is true but dask-cuda is not installed "
                          "(pip install 'framestream[gpu]'); using a CPU LocalCluster",
                          RuntimeWarning, stacklevel=3)
        else:
            gpus = _gpu_count()
            if gpus:
                return LocalCUDACluster(n_workers=cluster.n_workers or gpus, **common)
            if require_gpu:
                raise ClusterError("cluster.gpu is true but no GPU is visible (dask-cuda found "
                                   "none through NVML)")
            warnings.warn("cluster.gpu is true but no GPU is visible; using a CPU LocalCluster",
                          RuntimeWarning, stacklevel=3)
    return LocalCluster(n_workers=n_workers, processes=True, **common)


@contextlib.contextmanager
def dask_client(cluster: Any = None, require_gpu: bool = False) -> Iterator[Any]:
    """A ``distributed.Client`` for ``cluster`` (a ``ClusterConfig``), closed on exit.

    Nothing configured: an embedded ``LocalCluster`` of worker processes, shut down on exit.
    ``address``: that scheduler (left running), or ``ClusterError`` naming it when it cannot
    be reached within ``timeout`` seconds. ``gpu``: a dask-cuda ``LocalCUDACluster``, one
    worker per GPU, when dask-cuda and a GPU are there; else a warning and the CPU cluster
    (with ``require_gpu``, a ``ClusterError`` instead: training means to use the GPUs).
    The client is never made the default one, so frames' own Dask work stays local.
    """
    from distributed import Client

    from framestream.flows.config import ClusterConfig

    cluster = cluster if cluster is not None else ClusterConfig()
    if cluster.address:
        try:
            client = Client(cluster.address, timeout=cluster.timeout, set_as_default=False)
        except (OSError, TimeoutError, ValueError, TypeError) as exc:
            raise ClusterError(f"cannot reach the Dask scheduler at {cluster.address!r} within "
                               f"{cluster.timeout:g} s ({type(exc).__name__}: {exc})") from None
        with client:
            yield client
        return
    with _quiet_distributed(), _kept_environ(), _local_cluster(cluster, require_gpu) as local, \
            Client(local, set_as_default=False) as client:
        LOG.info("local Dask cluster: %d workers", len(local.workers))
        yield client


@contextlib.contextmanager
def _kept_environ() -> Iterator[None]:
    """Undo the environment changes the nannies make in this process when they spawn workers
    (OMP_NUM_THREADS=1 and friends, distributed's pre-spawn-environ), so that processes this
    one starts later get the same BLAS threading, and the same float results, as before."""
    saved = dict(os.environ)
    try:
        yield
    finally:
        for name in set(os.environ) - set(saved):
            del os.environ[name]
        os.environ.update(saved)


@contextlib.contextmanager
def _quiet_distributed() -> Iterator[None]:
    """The embedded scheduler and nannies log start-up chatter at INFO through whatever
    handlers the root logger has (Prefect's, in a flow): keep only warnings and errors."""
    logger = logging.getLogger("distributed")
    old = logger.level
    logger.setLevel(max(logging.WARNING, logger.getEffectiveLevel()))
    try:
        yield
    finally:
        logger.setLevel(old)
