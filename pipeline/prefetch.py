"""Running a batch generator ahead of its consumer, in a background thread.

Training alternates "get a batch" and "compute on it"; a ``Prefetcher`` overlaps the
two by producing the next batches in a thread while the consumer works. The queue is
bounded (memory stays bounded), an exception in the thread is re-raised in the
consumer with its traceback, and ``close()`` (or garbage collection of the
prefetcher) stops the thread and closes the generator so that its ``finally`` blocks
run there.

>>> it = Prefetcher(iter(range(3)), depth=2)
>>> list(it)
[0, 1, 2]
"""

from __future__ import annotations

import queue
import threading
import weakref
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Executor, Future
from typing import Any, TypeVar

T = TypeVar("T")
U = TypeVar("U")

_POLL_S = 0.05  # how often a blocked producer looks for a stop request


class _End:
    """Queued after the last item."""


class _Failure:
    """Queued instead of an item when the producer raised."""

    def __init__(self, exc: BaseException):
        self.exc = exc


def _pump(source: Iterator[Any], out: queue.Queue, stop: threading.Event) -> None:
    """The producer thread: move items from ``source`` into ``out`` until done or stopped."""
    try:
        for item in source:
            if not _put(out, item, stop):
                return
        _put(out, _End, stop)
    except BaseException as exc:  # noqa: BLE001  (handed to the consumer)
        _put(out, _Failure(exc), stop)
    finally:
        close = getattr(source, "close", None)
        if close is not None:
            close()


def _put(out: queue.Queue, item: Any, stop: threading.Event) -> bool:
    while not stop.is_set():
        try:
            out.put(item, timeout=_POLL_S)
            return True
        except queue.Full:
            continue
    return False


def _shutdown(out: queue.Queue, stop: threading.Event) -> None:
    """Stop the producer and drop what it queued (also run when a prefetcher is collected)."""
    stop.set()
    while True:
        try:
            out.get_nowait()
        except queue.Empty:
            return


class Prefetcher(Iterator[T]):
    """Iterate ``source`` in a background thread, keeping up to ``depth`` items ready.

    Parameters
    ----------
    source : the iterator to run ahead (a generator is closed in the thread on stop).
    depth : how many finished items may wait in the queue.
    name : the thread's name, for debuggers and ``threading.enumerate()``.

    Examples
    --------
    >>> it = Prefetcher((x * x for x in range(100)), depth=2)
    >>> next(it), next(it)
    (0, 1)
    >>> it.close(); it.running
    False
    """

    def __init__(self, source: Iterator[T], depth: int = 4, name: str = "framestream-prefetch"):
        self._queue: queue.Queue = queue.Queue(maxsize=max(1, depth))
        self._stop = threading.Event()
        self._done = False
        self._thread = threading.Thread(target=_pump, args=(source, self._queue, self._stop),
                                        name=name, daemon=True)
        self._finalizer = weakref.finalize(self, _shutdown, self._queue, self._stop)
        self._thread.start()

    def __next__(self) -> T:
        if self._done:
            raise StopIteration
        item = self._queue.get()
        if item is _End:
            self._done = True
            self._thread.join()
            raise StopIteration
        if isinstance(item, _Failure):
            self._done = True
            self._thread.join()
            raise item.exc
        return item

    def close(self, timeout: float = 30.0) -> None:
        """Stop the producer, drop queued items and wait for the thread to finish."""
        self._done = True
        self._finalizer()
        self._thread.join(timeout)

    @property
    def running(self) -> bool:
        return self._thread.is_alive()


def ordered_map(pool: Executor, fn: Callable[[U], T], items: Iterable[U],
                depth: int) -> Iterator[T]:
    """``fn`` over ``items`` in ``pool``, ``depth`` calls in flight, results in input order.

    Closing the generator cancels the calls that have not started.
    """
    pending: deque[Future] = deque()
    try:
        for item in items:
            pending.append(pool.submit(fn, item))
            if len(pending) >= depth:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:
        for future in pending:
            future.cancel()
