"""One worker's replica in a synchronous data-parallel run: an ``ExecutorGroup`` whose
update first sums the gradients with the other workers'.

Every worker starts from the same parameters and applies the same optimizer step to the
same summed gradient, so the replicas stay identical without sending weights. The
collective calls happen at the same points on every rank: one ``allreduce_`` per batch
(``update``), and at each epoch's end the metric sums (``reduce_metric``), the aux states
and random states (``get_params``), and the evaluation metric.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np

from framestream.nn._executor_group import ExecutorGroup
from framestream.nn.context import to_device
from framestream.nn.distributed._allreduce import Allreduce
from framestream.nn.ndarray import NDArray

LOG = logging.getLogger("framestream.nn.distributed")


class DistributedGroup(ExecutorGroup):
    """``ExecutorGroup`` on one worker of ``allreduce.size``; ``allreduce`` links them.

    Gradients are copied into one contiguous float32 buffer (``gradient_bytes`` long) per
    step, summed across the workers in place, and the optimizer reads its slices. With the
    optimizer's ``rescale_grad`` at 1 / (workers x batch), that is the mean over the global
    batch. BatchNorm keeps per-worker batch statistics (as MXNet's multi-device training
    does); its moving averages are averaged over the workers when read (``get_params``).
    """

    def __init__(self, allreduce: Allreduce, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.allreduce = allreduce
        first = self.execs[0]
        self._layout: list[tuple[str, int, int, tuple[int, ...]]] = []
        total = 0
        for name in self.param_names:
            shape = tuple(first.grad_dict[name].shape)
            size = int(np.prod(shape))
            self._layout.append((name, total, total + size, shape))
            total += size
        with first.ctx.device():
            self._flat = first.ctx.xp.zeros(total, dtype=np.float32)
        self.gradient_bytes = 4 * total
        self.comm_seconds = 0.0  # spent in the per-step allreduce, waiting for peers included
        self._random: list[Any] | None = None

    def update(self, updater: Any) -> None:
        """Sum this worker's gradients over its devices, then over the workers; update once
        per parameter and copy the new weight to this worker's other devices."""
        first, flat = self.execs[0], self._flat
        for name, lo, hi, shape in self._layout:
            part = flat[lo:hi].reshape(shape)
            part[...] = first.grad_dict[name].data
            for exe in self.execs[1:]:
                part += to_device(exe.grad_dict[name].data, first.ctx)
        started = time.perf_counter()
        self.allreduce.allreduce_(flat)
        self.comm_seconds += time.perf_counter() - started
        for index, (name, lo, hi, shape) in enumerate(self._layout):
            updater(index, NDArray(flat[lo:hi].reshape(shape), first.ctx), first.arg_dict[name])
            for exe in self.execs[1:]:
                exe.arg_dict[name][:] = first.arg_dict[name].data

    def reduce_metric(self, metric: Any) -> None:
        """Replace the metric's sums by their totals over the workers."""
        leaves = list(_leaves(metric))
        values = [v for m in leaves for v in (*_listed(m.sum_metric), *_listed(m.num_inst))]
        total = self.allreduce.allreduce_(np.asarray(values, dtype=np.float64))
        pos = 0
        for m in leaves:
            width = len(_listed(m.sum_metric))
            sums, counts = total[pos:pos + width], total[pos + width:pos + 2 * width]
            pos += 2 * width
            m.sum_metric = _like(m.sum_metric, [float(v) for v in sums])
            m.num_inst = _like(m.num_inst, [int(round(v)) for v in counts])

    def get_params(self, arg_params: dict[str, NDArray], aux_params: dict[str, NDArray]) -> None:
        """The weights (the same on every worker), the aux states averaged over the workers,
        and every worker's random state kept for ``random_states`` (a collective call)."""
        super().get_params(arg_params, aux_params)
        names = sorted(aux_params)
        if names:
            flat = np.concatenate([aux_params[n].asnumpy().ravel() for n in names]).astype(np.float64)
            self.allreduce.allreduce_(flat)
            flat /= self.allreduce.size
            pos = 0
            for n in names:
                size = aux_params[n].size
                aux_params[n][:] = flat[pos:pos + size].reshape(aux_params[n].shape)
                pos += size
        per_rank = self.allreduce.allgather(super().random_states())
        self._random = [state for states in per_rank for state in states]

    def random_states(self) -> list[Any]:
        """Every worker's executors' random states, rank by rank: the layout of one process
        training on workers x devices contexts, so checkpoints resume either way."""
        return self._random if self._random is not None else super().random_states()

    def set_random_states(self, states: list[Any]) -> None:
        count = len(self.execs)
        if len(states) == count * self.allreduce.size:
            rank = self.allreduce.rank
            super().set_random_states(states[rank * count:(rank + 1) * count])
        elif states:
            LOG.warning("the checkpoint holds %d random states, this run has %d replicas: their "
                        "random streams (Dropout) start afresh", len(states),
                        count * self.allreduce.size)


def _leaves(metric: Any) -> Any:
    children = getattr(metric, "metrics", None)
    if children is None:
        yield metric
        return
    for child in children:
        yield from _leaves(child)


def _listed(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list | tuple) else [value]


def _like(old: Any, values: list[Any]) -> Any:
    return values if isinstance(old, list | tuple) else values[0]
