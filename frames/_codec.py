"""JSON encoding of list and dict cells, tolerant of NumPy values inside them."""

from __future__ import annotations

import json
from typing import Any

import numpy as np


def _default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    raise TypeError(f"{type(value).__name__} values cannot be stored inside a list or dict cell")


def dumps_json(value: Any) -> bytes:
    return json.dumps(value, default=_default, separators=(",", ":"), ensure_ascii=False).encode()


def loads_json(raw: bytes) -> Any:
    return json.loads(raw)
