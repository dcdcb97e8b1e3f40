"""Synchronous data-parallel training on the workers of a Dask cluster.

``FeedForward.fit(X, ..., cluster=client)`` (a ``distributed.Client``, a scheduler address or
a ``LocalCluster``) runs one long task pinned to each worker (rank = position in the sorted
worker addresses; ``num_workers`` picks the first ones). Each worker:

1. reads its part of the saved SFrame behind ``X`` (``SFrameIter.part(rank, N)``): the
   workers take turns batch by batch over the pass one reader would make, so step k's N
   batches of b rows are exactly that reader's batch k of N x b rows (shuffle, windows and
   the last batch's filler included);
2. builds its own executor and starts from the parameters the caller initialised;
3. every step, sums its gradients with the other workers' directly, worker to worker
   (``RingAllreduce`` over Dask's TCP comms; the scheduler is used once, to swap
   addresses), and applies the same optimizer step (``rescale_grad`` = 1 / (N x b)) to
   the same sum, so the replicas stay identical;
4. at each epoch's end sums the metric over the workers; rank 0 alone calls the epoch-end
   callbacks, so it alone writes checkpoints (``do_checkpoint``: ``prefix-%04d.params``
   and the ``.states`` file for an exact resume, with every worker's random state).

So N workers with batch b train as one process with batch N x b on the same rows, to
float summation order (bit for bit as one process on N contexts of batch b each, for
N = 2). BatchNorm normalises with per-worker batch statistics, as MXNet's multi-device
training does (its moving averages are averaged over the workers when read). A worker lost
mid-run (its sockets close) or silent for ``timeout`` seconds fails the run with
``ClusterError`` on every rank; the caller's ``fit`` raises it (or the worker's own
exception, when one raised). The trained parameters come back from rank 0; callbacks run on
the workers (batch-end on every rank, ``worker_rank()`` tells which), and callback objects
(a ``History``) get rank 0's state back.

>>> from distributed import LocalCluster                            # doctest: +SKIP
>>> with LocalCluster(n_workers=2, threads_per_worker=1) as cluster:  # doctest: +SKIP
...     model.fit(mx.io.SFrameIter(fs.SFrame('train.sframe'), 'x', 'y', batch_size=50),
...               cluster=cluster)
"""

from framestream.nn.distributed._allreduce import Allreduce, NcclAllreduce, RingAllreduce
from framestream.nn.distributed._driver import DEFAULT_TIMEOUT, connect_client, fit_on_cluster
from framestream.nn.distributed._group import DistributedGroup
from framestream.nn.distributed._worker import worker_rank

__all__ = ["DEFAULT_TIMEOUT", "Allreduce", "DistributedGroup", "NcclAllreduce", "RingAllreduce",
           "connect_client", "fit_on_cluster", "worker_rank"]
