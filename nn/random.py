"""``mx.random.seed``: one seed that makes executors' randomness (Dropout) and initializers repeatable."""

from __future__ import annotations

import itertools
import threading

import numpy as np

_lock = threading.Lock()
_state = {"seed": None, "counter": itertools.count()}


def seed(seed_state: int, ctx: object = "all") -> None:
    """Reset the random streams; what follows is repeatable for a given ``seed_state``."""
    with _lock:
        _state["seed"] = int(seed_state)
        _state["counter"] = itertools.count()
    np.random.seed(int(seed_state) % 2**32)


def next_seed() -> int | None:
    """A fresh seed for one consumer (an executor, an initializer) derived from the global seed."""
    with _lock:
        if _state["seed"] is None:
            return None
        return (_state["seed"] * 1_000_003 + next(_state["counter"])) % 2**32


def get_state() -> tuple[int | None, int]:
    """``(seed, seeds handed out so far)``: where ``next_seed`` stands, so that another
    process (a data-parallel worker) can continue from the same place."""
    with _lock:
        taken = next(_state["counter"])
        _state["counter"] = itertools.count(taken)
        return _state["seed"], taken


def set_state(state: tuple[int | None, int]) -> None:
    """Continue ``next_seed`` from a ``get_state()`` (the global NumPy seed is not touched)."""
    seed_value, taken = state
    with _lock:
        _state["seed"] = None if seed_value is None else int(seed_value)
        _state["counter"] = itertools.count(int(taken))
