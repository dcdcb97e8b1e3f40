"""Automatic node names (``convolution0``, ``fc1_weight``) and name prefixes, as in MXNet.

Counters are process-global, as in MXNet, so names depend on what was built before;
``with mx.name.NameManager():`` starts a fresh count and ``mx.name.Prefix('p_')``
prefixes every name built inside it.
"""

from __future__ import annotations

import threading

_local = threading.local()


class NameManager:
    """Hands out ``<hint><counter>`` names for nodes the user did not name."""

    def __init__(self) -> None:
        self._counter: dict[str, int] = {}
        self._old: NameManager | None = None

    def get(self, name: str | None, hint: str) -> str:
        if name:
            return name
        count = self._counter.get(hint, 0)
        self._counter[hint] = count + 1
        return f"{hint}{count}"

    def __enter__(self) -> NameManager:
        self._old = current()
        _local.manager = self
        return self

    def __exit__(self, *exc: object) -> None:
        _local.manager = self._old


class Prefix(NameManager):
    """Prefix every name, given or automatic, with ``prefix``."""

    def __init__(self, prefix: str):
        super().__init__()
        self._prefix = prefix

    def get(self, name: str | None, hint: str) -> str:
        return self._prefix + super().get(name, hint)


_GLOBAL = NameManager()


def current() -> NameManager:
    return getattr(_local, "manager", None) or _GLOBAL
