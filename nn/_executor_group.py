"""Data parallelism over a list of contexts: one executor per device, batches split between them.

Gradients are summed across devices and the optimizer runs once per parameter, on the
first device's copy, which is then copied to the others: MXNet's ``kvstore='local'``
arithmetic. So ``ctx=[cpu(0), cpu(1)]`` trains like ``cpu(0)`` on the whole batch (up to
float summation order), and BatchNorm statistics are per device, averaged when read.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from framestream.errors import NNError
from framestream.nn._staging import DeviceStager
from framestream.nn.context import Context, to_device, to_numpy
from framestream.nn.ndarray import NDArray, array


def split_input_slice(batch_size: int, work_load_list: list[float]) -> list[slice]:
    """Slices of a batch proportional to the work loads (MXNet's ``_split_input_slice``)."""
    total = float(sum(work_load_list))
    sizes = [int(round(batch_size * w / total)) for w in work_load_list]
    sizes[-1] = batch_size - sum(sizes[:-1])
    slices, start = [], 0
    for i, size in enumerate(sizes):
        if size <= 0:
            raise NNError(f"batch of {batch_size} cannot be split over {len(work_load_list)} devices: "
                          f"device {i} would get {size} rows; use a larger batch or fewer devices")
        slices.append(slice(start, start + size))
        start += size
    return slices


class ExecutorGroup:
    """Executors for one symbol on several devices, fed slices of each batch."""

    def __init__(self, symbol: Any, ctxs: list[Context], data_shapes: list[tuple[str, tuple]],
                 label_shapes: list[tuple[str, tuple]], param_names: list[str], for_training: bool,
                 work_load_list: list[float] | None = None):
        self.symbol, self.ctxs, self.param_names = symbol, ctxs, param_names
        batch_size = data_shapes[0][1][0]
        self.slices = split_input_slice(batch_size, work_load_list or [1.0] * len(ctxs))
        arguments = set(symbol.list_arguments())
        self.data_names = [n for n, _ in data_shapes]
        self.label_names = [n for n, _ in label_shapes if n in arguments]
        grad_req = {n: "write" if for_training and n in param_names else "null" for n in symbol.list_arguments()}
        self.execs = []
        for ctx, part in zip(ctxs, self.slices):
            rows = part.stop - part.start
            shapes = {n: (rows, *s[1:]) for n, s in [*data_shapes, *label_shapes] if n in arguments}
            self.execs.append(symbol.simple_bind(ctx, grad_req=grad_req, **shapes))
        # GPU inputs arrive through pinned buffers on a side stream (see _staging); None on CPU.
        self.stagers = [DeviceStager(ctx) if ctx.device_type == "gpu" else None for ctx in ctxs]

    # -- parameters ---------------------------------------------------------------------------
    def set_params(self, arg_params: dict[str, NDArray], aux_params: dict[str, NDArray]) -> None:
        for exe in self.execs:
            exe.copy_params_from(arg_params, aux_params, allow_extra_params=True)

    def get_params(self, arg_params: dict[str, NDArray], aux_params: dict[str, NDArray]) -> None:
        """Copy weights from the first device and aux states averaged over devices into CPU arrays."""
        for name in self.param_names:
            arg_params[name][:] = to_numpy(self.execs[0].arg_dict[name].data)
        for name in aux_params:
            total = sum(to_numpy(exe.aux_dict[name].data).astype(np.float64) for exe in self.execs)
            aux_params[name][:] = (total / len(self.execs)).astype(aux_params[name].dtype)

    # -- one batch ---------------------------------------------------------------------------------
    def load_batch(self, batch: Any) -> None:
        inputs = [*zip(self.data_names, batch.data), *zip(self.label_names, batch.label or [])]
        for exe, part, stager in zip(self.execs, self.slices, self.stagers):
            for name, value in inputs:
                rows = _rows(value, part)
                if stager is not None and isinstance(rows, np.ndarray):  # host rows only
                    stager.load(exe.arg_dict[name], name, rows)
                else:
                    exe.arg_dict[name][:] = rows

    def forward(self, is_train: bool) -> None:
        for exe in self.execs:
            exe.forward(is_train=is_train)

    def backward(self) -> None:
        for exe in self.execs:
            exe.backward()

    def update(self, updater: Any) -> None:
        """Sum each gradient over devices, update once, copy the new weight everywhere."""
        first = self.execs[0]
        for index, name in enumerate(self.param_names):
            grad = first.grad_dict[name]
            if len(self.execs) > 1:
                total = grad.data.copy()
                for exe in self.execs[1:]:
                    total += to_device(exe.grad_dict[name].data, first.ctx)
                grad = NDArray(total, first.ctx)
            updater(index, grad, first.arg_dict[name])
            for exe in self.execs[1:]:
                exe.arg_dict[name][:] = first.arg_dict[name].data

    def update_metric(self, metric: Any, labels: list[Any]) -> None:
        for exe, part in zip(self.execs, self.slices):
            metric.update([array(_rows(label, part)) for label in labels], exe.outputs)

    def reduce_metric(self, metric: Any) -> None:
        """Add the other replicas' metric sums to ``metric`` (here every replica is in this
        process and already fed ``metric``; a group spanning processes overrides it)."""

    def outputs(self) -> list[np.ndarray]:
        """Every output with the devices' rows put back together, on the CPU."""
        return [np.concatenate([to_numpy(exe.outputs[i].data) for exe in self.execs])
                for i in range(len(self.execs[0].outputs))]

    def batch_outputs(self) -> list[NDArray]:
        """The outputs for the whole batch (the executors' own arrays when there is one device)."""
        if len(self.execs) == 1:
            return self.execs[0].outputs
        return [NDArray(o) for o in self.outputs()]

    def install_monitor(self, monitor: Any) -> None:
        for exe in self.execs:
            monitor.install(exe)

    def random_states(self) -> list[Any]:
        return [exe._runtime.get_state() for exe in self.execs]

    def set_random_states(self, states: list[Any]) -> None:
        for exe, state in zip(self.execs, states):
            exe._runtime.set_state(state)


def _rows(value: Any, part: slice) -> Any:
    data = value.data if isinstance(value, NDArray) else value
    return data[part]
