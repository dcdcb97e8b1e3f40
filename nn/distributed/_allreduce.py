"""Allreduce between the processes of a data-parallel run, worker to worker.

``Allreduce`` is what a training replica needs from its peers: ``allreduce_`` sums one
contiguous buffer (the step's flattened gradients) in place so that every rank ends with
the same bits, and ``allgather`` collects small objects (metric sums, random states) once
an epoch. Two implementations:

- ``RingAllreduce``: NumPy buffers over Dask's own TCP comms (``distributed.comm``). Each
  rank listens on ``tcp://<its worker's host>:0``; the addresses are exchanged once at the
  start (``connect``); then rank r writes to rank r+1 and reads from rank r-1. A sum is a
  reduce-scatter and an allgather of N - 1 steps each, every step sending 1/N of the
  buffer, so each rank sends ``2 (N - 1) / N`` times the buffer per step, whatever N.
  The comms live on a private asyncio loop in a background thread; the training thread
  calls in and waits. A peer that dies closes its sockets, so the next read fails at once;
  one that hangs is given up after ``timeout`` seconds. Either way: ``ClusterError``.
- ``NcclAllreduce``: CuPy buffers summed by NCCL (NVLink, PCIe or InfiniBand), bootstrapped
  over a ``RingAllreduce`` (which also carries the objects and any NumPy buffer).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from abc import ABC, abstractmethod
from collections.abc import Coroutine
from typing import Any

import numpy as np

from framestream.errors import ClusterError, NNError

LOG = logging.getLogger("framestream.nn.distributed")


class Allreduce(ABC):
    """Collective operations among ``size`` ranks; every rank must make the same calls in
    the same order."""

    rank: int
    size: int

    @abstractmethod
    def allreduce_(self, buffer: Any) -> Any:
        """Sum the 1-D contiguous ``buffer`` over the ranks, in place (every rank ends with
        the same values); returns ``buffer``."""

    @abstractmethod
    def allgather(self, obj: Any) -> list[Any]:
        """Every rank's ``obj`` (small, picklable), in rank order."""

    @abstractmethod
    def close(self) -> None:
        """Release the connections (after the last collective, on every rank)."""

    @abstractmethod
    def abort(self, reason: str) -> None:
        """Fail the collective in progress, and all later ones, with ``reason`` (any thread)."""

    def __enter__(self) -> Allreduce:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class RingAllreduce(Allreduce):
    """A ring over Dask's TCP comms (see the module docstring).

    Parameters
    ----------
    rank, size : this process's place in the ring and the ring's length.
    run_id : names the run; a connection presenting another is refused.
    host : the interface to listen on (the worker's own host, so peers can reach it).
    timeout : seconds a collective may wait for a neighbour before ``ClusterError``; it must
        cover the longest gap between ranks (rank 0 writing a checkpoint, a slow batch).
    connect_timeout : seconds to connect to the neighbours at the start.

    >>> ring = RingAllreduce(0, 1, "doc")
    >>> ring.connect([ring.address])
    >>> ring.allreduce_(np.ones(3, np.float32)).tolist(), ring.allgather("x")
    ([1.0, 1.0, 1.0], ['x'])
    >>> ring.close()
    """

    def __init__(self, rank: int, size: int, run_id: str, host: str = "127.0.0.1",
                 timeout: float = 300.0, connect_timeout: float = 60.0):
        if not 0 <= rank < size:
            raise ValueError(f"rank must be in [0, size); got rank={rank}, size={size}")
        self.rank, self.size, self.run_id = rank, size, run_id
        self.timeout, self.connect_timeout = float(timeout), float(connect_timeout)
        self.addresses: list[str] = []
        self._seq = 0
        self._failed: str | None = None
        self._left: Any = None
        self._right: Any = None
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True,
                                        name=f"framestream-allreduce-{rank}")
        self._thread.start()
        self._left_ready: asyncio.Future = self._call(self._future(), "start")
        self._listener: Any = None
        self.address: str = self._call(self._listen(host), "listen")

    # -- the loop ----------------------------------------------------------------------------
    def check(self) -> None:
        """Raise ``ClusterError`` if the ring failed or was aborted."""
        if self._failed is not None:
            raise ClusterError(self._failed)

    def _call(self, coro: Coroutine, what: str) -> Any:
        """Run ``coro`` on the comm loop and wait for it (from the training thread)."""
        if self._failed is not None:
            coro.close()
            raise ClusterError(self._failed)
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    async def _future(self) -> asyncio.Future:
        return self._loop.create_future()

    async def _listen(self, host: str) -> str:
        from distributed.comm import listen

        self._listener = listen(f"tcp://{host}:0", self._on_comm, deserialize=True)
        await self._listener.start()
        return self._listener.contact_address

    async def _on_comm(self, comm: Any) -> None:
        """A neighbour connecting: keep it if it is this run's rank - 1."""
        try:
            hello = await asyncio.wait_for(comm.read(), self.connect_timeout)
        except Exception:  # noqa: BLE001 (a stray or broken connection: drop it)
            comm.abort()
            return
        left = (self.rank - 1) % self.size
        wanted = isinstance(hello, dict) and hello.get("run") == self.run_id and hello.get("rank") == left
        if not wanted or self._left_ready.done():
            LOG.warning("allreduce rank %d: refused a connection from %s (%r)", self.rank,
                        comm.peer_address, hello)
            comm.abort()
            return
        self._left_ready.set_result(comm)

    # -- joining the ring --------------------------------------------------------------------
    def connect(self, addresses: list[str]) -> None:
        """Join the ring; ``addresses[r]`` is rank r's ``address`` (exchanged once, out of band)."""
        if len(addresses) != self.size or addresses[self.rank] != self.address:
            raise ValueError(f"connect: expected {self.size} addresses with this rank's "
                             f"{self.address} at {self.rank}, got {addresses}")
        self.addresses = list(addresses)
        if self.size > 1:
            self._call(self._connect(), "connect")

    async def _connect(self) -> None:
        from distributed.comm import connect

        right = (self.rank + 1) % self.size
        try:
            self._right = await connect(self.addresses[right], timeout=self.connect_timeout)
            await self._right.write({"run": self.run_id, "rank": self.rank})
        except OSError as exc:
            raise self._fail(f"rank {self.rank} cannot connect to rank {right} at "
                             f"{self.addresses[right]} ({exc})") from None
        try:
            self._left = await asyncio.wait_for(asyncio.shield(self._left_ready), self.connect_timeout)
        except asyncio.TimeoutError:
            left = (self.rank - 1) % self.size
            raise self._fail(f"rank {left} ({self.addresses[left]}) did not connect to rank "
                             f"{self.rank} within {self.connect_timeout:g} s") from None

    # -- collectives -------------------------------------------------------------------------
    def allreduce_(self, buffer: Any) -> Any:
        if self.size == 1:
            return buffer
        host = buffer if isinstance(buffer, np.ndarray) else buffer.get()  # a CuPy buffer
        if host.ndim != 1 or not host.flags.c_contiguous:
            raise ValueError(f"allreduce_ takes a 1-D contiguous buffer, got shape {host.shape}")
        self._call(self._ring(host), "allreduce")
        if host is not buffer:
            buffer.set(host)
        return buffer

    def allgather(self, obj: Any) -> list[Any]:
        if self.size == 1:
            return [obj]
        return self._call(self._gather(obj), "allgather")

    async def _ring(self, buf: np.ndarray) -> None:
        """Reduce-scatter then allgather; after step s of the first half rank r holds the sum
        over s + 2 ranks of segment r - s - 1, so after N - 1 steps it owns segment r + 1."""
        from distributed.protocol import to_serialize

        n, r = self.size, self.rank
        bounds = [len(buf) * i // n for i in range(n + 1)]

        def segment(i: int) -> np.ndarray:
            i %= n
            return buf[bounds[i]:bounds[i + 1]]

        for step in range(n - 1):
            got = await self._swap({"data": to_serialize(segment(r - step).copy())})
            segment(r - step - 1)[...] += got["data"]
        for step in range(n - 1):
            got = await self._swap({"data": to_serialize(segment(r - step + 1).copy())})
            segment(r - step)[...] = got["data"]

    async def _gather(self, obj: Any) -> list[Any]:
        from distributed.protocol import to_serialize

        out = [None] * self.size
        out[self.rank] = carried = obj
        for step in range(self.size - 1):
            carried = (await self._swap({"obj": to_serialize(carried)}))["obj"]
            out[(self.rank - step - 1) % self.size] = carried
        return out

    async def _swap(self, message: dict[str, Any]) -> dict[str, Any]:
        """Send ``message`` to the right neighbour while receiving the left one's.

        Sent arrays are copies: a comm's write returns before the bytes leave."""
        from distributed.comm import CommClosedError

        seq, self._seq = self._seq, self._seq + 1
        send = asyncio.ensure_future(self._right.write({**message, "seq": seq}))
        recv = asyncio.ensure_future(self._left.read())
        try:
            await asyncio.wait_for(asyncio.gather(send, recv), self.timeout)
        except (asyncio.TimeoutError, CommClosedError, OSError) as exc:
            for task in (send, recv):
                task.cancel()
            raise self._fail(self._why(send, exc)) from None
        got = recv.result()
        if not isinstance(got, dict) or got.get("seq") != seq:
            raise self._fail(f"rank {self.rank} is out of step with rank {self._left_rank}: "
                             f"expected message {seq}, got {got.get('seq') if isinstance(got, dict) else got!r}"
                             " (the ranks made different collective calls)")
        return got

    @property
    def _left_rank(self) -> int:
        return (self.rank - 1) % self.size

    def _why(self, send: asyncio.Future, exc: BaseException) -> str:
        if self._failed is not None:
            return self._failed
        left = self._left_rank
        if isinstance(exc, asyncio.TimeoutError):
            return (f"allreduce: rank {self.rank} heard nothing from rank {left} "
                    f"({self.addresses[left]}) for {self.timeout:g} s (a worker hung or is far "
                    "slower than the others)")
        peer = (self.rank + 1) % self.size if send.done() and not send.cancelled() \
            and send.exception() is not None else left
        return (f"allreduce: the connection from rank {self.rank} to rank {peer} "
                f"({self.addresses[peer]}) closed: that worker stopped or failed "
                f"({type(exc).__name__}: {exc})")

    def _fail(self, reason: str) -> ClusterError:
        self._failed = self._failed or reason
        for comm in (self._left, self._right):
            if comm is not None:
                comm.abort()
        return ClusterError(self._failed)

    # -- ending ------------------------------------------------------------------------------
    def abort(self, reason: str) -> None:
        if self._loop.is_closed():
            return
        self._failed = self._failed or reason
        self._loop.call_soon_threadsafe(self._fail, reason)

    def close(self) -> None:
        if self._loop.is_closed():
            return
        try:
            asyncio.run_coroutine_threadsafe(self._close(), self._loop).result(timeout=10)
        except Exception as exc:  # noqa: BLE001 (closing: nothing left to save)
            LOG.debug("allreduce rank %d: close: %s", self.rank, exc)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        if not self._thread.is_alive():
            self._loop.close()

    async def _close(self) -> None:
        if self._listener is not None:
            self._listener.stop()
        for comm in (self._right, self._left):
            if comm is not None and not comm.closed():
                await comm.close()  # flushes what was written before closing
        if not self._left_ready.done():
            self._left_ready.cancel()


class NcclAllreduce(Allreduce):
    """CuPy buffers summed by NCCL on the GPUs; objects and NumPy buffers go over
    ``bootstrap`` (a connected ``RingAllreduce``), which also shares NCCL's unique id.

    Each rank must have made its GPU current (``cupy.cuda.Device(i).use()``) before. Not
    exercised by the test suite (no GPU there). NCCL has no receive timeout: a peer lost in
    the middle of an ``allReduce`` can hang it (the ring's timeout still ends the run at the
    next object exchange only if the GPU call returns).
    """

    _DTYPES = {"float16": "NCCL_FLOAT16", "float32": "NCCL_FLOAT32", "float64": "NCCL_FLOAT64"}

    def __init__(self, bootstrap: RingAllreduce):
        try:
            import cupy
            from cupy.cuda import nccl
        except ImportError as exc:
            raise NNError("NcclAllreduce needs CuPy built with NCCL (pip install "
                          "'framestream[gpu]'); without it use RingAllreduce") from exc
        self._cupy, self._nccl, self._bootstrap = cupy, nccl, bootstrap
        self.rank, self.size = bootstrap.rank, bootstrap.size
        uid = nccl.get_unique_id() if self.rank == 0 else None
        uid = bootstrap.allgather(uid)[0]
        self._comm = nccl.NcclCommunicator(self.size, uid, self.rank)

    def allreduce_(self, buffer: Any) -> Any:
        if not isinstance(buffer, self._cupy.ndarray):
            return self._bootstrap.allreduce_(buffer)
        kind = self._DTYPES.get(buffer.dtype.name)
        if kind is None or not buffer.flags.c_contiguous:
            raise ValueError(f"NcclAllreduce: expected a contiguous float16/32/64 buffer, got "
                             f"{buffer.dtype} {buffer.shape}")
        stream = self._cupy.cuda.get_current_stream()
        self._comm.allReduce(buffer.data.ptr, buffer.data.ptr, buffer.size,
                             getattr(self._nccl, kind), self._nccl.NCCL_SUM, stream.ptr)
        return buffer

    def allgather(self, obj: Any) -> list[Any]:
        return self._bootstrap.allgather(obj)

    def abort(self, reason: str) -> None:
        self._bootstrap.abort(reason)
        self._comm.abort()

    def close(self) -> None:
        self._comm.destroy()
        self._bootstrap.close()
