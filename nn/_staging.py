"""Host-to-GPU batch copies that overlap computation: pinned buffers and a side stream.

A plain ``device_array[:] = host_array`` copies from pageable memory, which CUDA does
synchronously: the GPU idles while the host copies. Here each input gets two pinned host
buffers and two device buffers. Loading batch k+1 copies it into a pinned buffer, starts an
asynchronous copy to the spare device buffer on a non-blocking stream, and makes the compute
stream wait for that copy (an event), not the host. The executor's input then points at the
new device buffer, so batch k's kernels, already queued, run while batch k+1 travels.

Two events keep the buffers safe: a pinned buffer is refilled only after its last copy
finished, and a device buffer only after the compute work that read it (two batches ago).
"""

from __future__ import annotations

from typing import Any

import numpy as np


class _Slot:
    """One input's double buffers on one device."""

    def __init__(self, cp: Any, shape: tuple, dtype: Any):
        count = int(np.prod(shape))
        self.pinned = []
        for _ in range(2):
            memory = cp.cuda.alloc_pinned_memory(count * np.dtype(dtype).itemsize)
            self.pinned.append(np.frombuffer(memory, dtype=dtype, count=count).reshape(shape))
        self.device = [cp.empty(shape, dtype=dtype) for _ in range(2)]
        self.copied: list[Any] = [None, None]  # event: the side-stream copy out of pinned[i]
        self.read: list[Any] = [None, None]  # event: compute work that read device[i] is done
        self.turn = 0


class DeviceStager:
    """Feeds host batches into one GPU executor's input arrays without stalling the GPU."""

    def __init__(self, ctx: Any):
        self._cp = cp = ctx.xp
        self._ctx = ctx
        with ctx.device():
            self._stream = cp.cuda.Stream(non_blocking=True)
        self._slots: dict[str, _Slot] = {}

    def load(self, target: Any, name: str, host: Any) -> None:
        """Point NDArray ``target`` at a device copy of ``host`` that the compute stream awaits."""
        cp = self._cp
        host = np.asarray(host)
        if host.dtype != target.dtype:
            host = host.astype(target.dtype)
        if tuple(host.shape) != tuple(target.shape):
            target[:] = host  # the NDArray's own shape check and message
            return
        with self._ctx.device():
            slot = self._slots.get(name)
            if slot is None or slot.device[0].shape != host.shape:
                slot = self._slots[name] = _Slot(cp, host.shape, target.dtype)
            i = slot.turn
            slot.turn = 1 - i
            compute = cp.cuda.get_current_stream()
            if slot.copied[i] is not None:
                slot.copied[i].synchronize()  # pinned[i] is free once its last copy is done
            np.copyto(slot.pinned[i], host)
            if slot.read[i] is not None:
                self._stream.wait_event(slot.read[i])
            slot.device[i].set(slot.pinned[i], stream=self._stream)
            slot.copied[i] = self._stream.record()
            compute.wait_event(slot.copied[i])
            # Everything queued on the compute stream so far read the other buffer at most;
            # device[i] is next reused two loads from now, after this batch's work.
            slot.read[1 - i] = compute.record()
            target._data = slot.device[i]
