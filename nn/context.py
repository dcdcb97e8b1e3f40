"""Devices: ``mx.cpu()`` computes with NumPy, ``mx.gpu(i)`` with CuPy on device i.

The array module is looked up here and nowhere else, so operators stay backend-free
(Chainer's ``get_array_module``). CuPy is imported only when a GPU context is used.
"""

from __future__ import annotations

import contextlib
import threading
from typing import Any

import numpy as np

from framestream.errors import NNError

_local = threading.local()


class Context:
    """A device: ``Context('cpu', 0)`` or ``Context('gpu', 1)``; also a ``with`` block."""

    devtype2str = {1: "cpu", 2: "gpu", 3: "cpu_pinned", 5: "cpu_shared"}
    devstr2type = {v: k for k, v in devtype2str.items()}

    def __init__(self, device_type: str | Context, device_id: int = 0):
        if isinstance(device_type, Context):
            device_type, device_id = device_type.device_type, device_type.device_id
        if device_type not in self.devstr2type:
            raise NNError(f"unknown device type {device_type!r}; expected cpu or gpu")
        self.device_type = "cpu" if device_type in ("cpu_pinned", "cpu_shared") else device_type
        self.device_id = int(device_id)
        self._previous: list[Context] = []

    @property
    def device_typeid(self) -> int:
        return self.devstr2type[self.device_type]

    @property
    def xp(self) -> Any:
        """The array module for this device: numpy, or cupy."""
        if self.device_type == "cpu":
            return np
        return _cupy()

    def device(self) -> contextlib.AbstractContextManager:
        """Make this the current CUDA device for allocations (no-op on CPU)."""
        if self.device_type == "cpu":
            return contextlib.nullcontext()
        return _cupy().cuda.Device(self.device_id)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Context) and (self.device_type, self.device_id) == (other.device_type, other.device_id)

    def __hash__(self) -> int:
        return hash((self.device_type, self.device_id))

    def __repr__(self) -> str:
        return f"{self.device_type}({self.device_id})"

    __str__ = __repr__

    def __enter__(self) -> Context:
        self._previous.append(current_context())
        _local.ctx = self
        return self

    def __exit__(self, *exc: object) -> None:
        _local.ctx = self._previous.pop()


def cpu(device_id: int = 0) -> Context:
    """The CPU (NumPy). ``device_id`` only names it (``[cpu(0), cpu(1)]`` splits a batch)."""
    return Context("cpu", device_id)


def gpu(device_id: int = 0) -> Context:
    """CUDA device ``device_id`` (CuPy)."""
    return Context("gpu", device_id)


def current_context() -> Context:
    return getattr(_local, "ctx", None) or Context("cpu", 0)


def num_gpus() -> int:
    """How many CUDA devices CuPy sees (0 without CuPy or a driver)."""
    try:
        return int(_cupy().cuda.runtime.getDeviceCount())
    except Exception:
        return 0


def _cupy() -> Any:
    try:
        import cupy
    except ImportError:
        raise NNError("a gpu context needs CuPy: pip install 'framestream[gpu]'") from None
    return cupy


def array_module(array: Any) -> Any:
    """numpy or cupy, whichever owns ``array``."""
    if isinstance(array, np.ndarray | np.generic):
        return np
    return _cupy().get_array_module(array)


def context_of(array: Any) -> Context:
    if isinstance(array, np.ndarray | np.generic):
        return cpu()
    return gpu(array.device.id)


def to_device(array: Any, ctx: Context, dtype: Any = None) -> Any:
    """``array`` (numpy, cupy or anything array-like) as an array on ``ctx``."""
    if ctx.device_type == "cpu":
        if not isinstance(array, np.ndarray) and hasattr(array, "get"):
            array = array.get()
        return np.asarray(array, dtype=dtype)
    cp = _cupy()
    with cp.cuda.Device(ctx.device_id):
        return cp.asarray(array, dtype=dtype)


def to_numpy(array: Any) -> np.ndarray:
    if isinstance(array, np.ndarray):
        return array
    if hasattr(array, "get"):
        return array.get()
    return np.asarray(array)
