"""``mx.monitor.Monitor``: statistics of outputs, weights and gradients, every few batches.

It is how MXNet users look for exploding or vanishing values while training: ``install``
it on the executors, call ``tic()`` before a batch's forward and ``toc()`` (or
``toc_print()``) after its update. Forward outputs arrive through the executor's monitor
callback; the arguments, their gradients and the auxiliary states are read at ``toc``.

Gradients are reported as ``<argument>_grad`` from the executor's gradient arrays. (MXNet
reports the outputs of its backward nodes, named after the node, e.g. ``fc_backward_...``;
this executor calls the monitor during forward only.) Pattern ``'.*_grad'`` selects them.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Callable
from typing import Any

import numpy as np

from framestream.nn.ndarray import NDArray

__all__ = ["Monitor"]

logger = logging.getLogger("framestream.nn")


def rms(x: NDArray) -> NDArray:
    """``norm(x) / sqrt(x.size)``: MXNet's default statistic (its docstring says mean |x|)."""
    data = x.data
    dtype = data.dtype if data.dtype.kind == "f" else np.float32
    with x.context.device():
        xp = x.context.xp
        value = xp.sqrt(xp.sum(xp.square(data.astype(np.float64)))) / math.sqrt(max(x.size, 1))
        return NDArray(xp.reshape(value.astype(dtype), (1,)), x.context)


class Monitor:
    """Collect ``stat_func`` of every tensor whose name matches ``pattern``, every
    ``interval`` batches.

    >>> from framestream import mx
    >>> net = mx.sym.FullyConnected(data=mx.sym.Variable('data'), num_hidden=2, name='fc')
    >>> exe = net.simple_bind(mx.cpu(), data=(3, 4))
    >>> mon = Monitor(1, pattern='fc_weight.*')
    >>> mon.install(exe)
    >>> mon.tic(); _ = exe.forward(is_train=True); exe.backward()
    >>> [name for _, name, _ in mon.toc()]
    ['fc_weight_grad', 'fc_weight']
    """

    def __init__(self, interval: int, stat_func: Callable[[NDArray], Any] | None = None,
                 pattern: str = ".*", sort: bool = False):
        if int(interval) < 1:
            raise ValueError(f"Monitor: interval must be at least 1 batch, got {interval}")
        self.interval = int(interval)
        self.stat_func = stat_func if stat_func is not None else rms
        self.re_prog = re.compile(pattern)
        self.sort = sort
        self.activated = False
        self.queue: list[tuple[int, str, Any]] = []
        self.step = 0
        self.exes: list[Any] = []

    def stat_helper(self, name: str, array: NDArray) -> None:
        """The executor's monitor callback: record ``name`` while active and matching."""
        if self.activated and self.re_prog.match(name):
            self.queue.append((self.step, name, self.stat_func(array)))

    def install(self, exe: Any) -> None:
        """Watch ``exe`` (several executors may share one monitor)."""
        exe.set_monitor_callback(self.stat_helper)
        self.exes.append(exe)

    def tic(self) -> None:
        """Call before forward: start collecting if this is an ``interval``-th batch."""
        if self.step % self.interval == 0:
            self.queue = []
            self.activated = True
        self.step += 1

    def toc(self) -> list[tuple[int, str, str]]:
        """Stop collecting; ``[(step, name, value_text)]``, empty on batches not monitored."""
        if not self.activated:
            return []
        for exe in self.exes:
            for name, grad in exe.grad_dict.items():
                self.stat_helper(f"{name}_grad", grad)
            for name, array in exe.arg_dict.items():
                self.stat_helper(name, array)
            for name, array in exe.aux_dict.items():
                self.stat_helper(name, array)
        self.activated = False
        queue, self.queue = self.queue, []
        if self.sort:
            queue.sort(key=lambda item: item[1])
        return [(step, name, _text(value)) for step, name, value in queue]

    def toc_print(self) -> None:
        """``toc()`` and log each line as MXNet prints it."""
        for step, name, value in self.toc():
            logger.info("Batch: %7d %-30s %s", step, name, value)


def _text(values: Any) -> str:
    """MXNet's formatting: each statistic as a scalar (when it has one element) plus a tab."""
    out = ""
    for value in values if isinstance(values, list) else [values]:
        if isinstance(value, NDArray):
            value = value.asnumpy()
        value = np.asarray(value)
        out += (str(value.reshape(-1)[0]) if value.size == 1 else str(value)) + "\t"
    return out
