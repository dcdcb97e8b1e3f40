"""MXNet checkpoints: ``prefix-symbol.json`` plus ``prefix-%04d.params`` with ``arg:``/``aux:`` keys."""

from __future__ import annotations

from typing import Any

from framestream.errors import NNError
from framestream.nn import ndarray
from framestream.nn import symbol as sym


def save_checkpoint(prefix: str, epoch: int, symbol: Any, arg_params: dict[str, Any],
                    aux_params: dict[str, Any]) -> None:
    """Write the symbol and the parameters, each file atomically, as Apache MXNet does."""
    if symbol is not None:
        symbol.save(f"{prefix}-symbol.json")
    saved = {f"arg:{k}": v for k, v in arg_params.items()}
    saved.update({f"aux:{k}": v for k, v in aux_params.items()})
    ndarray.save(f"{prefix}-{epoch:04d}.params", saved)


def load_params(fname: str) -> tuple[dict[str, Any], dict[str, Any]]:
    loaded = ndarray.load(fname)
    if not isinstance(loaded, dict):
        raise NNError(f"{fname}: the arrays have no names, so this is not a checkpoint")
    arg, aux = {}, {}
    for key, value in loaded.items():
        kind, _, name = key.partition(":")
        if kind == "arg":
            arg[name] = value
        elif kind == "aux":
            aux[name] = value
        else:
            raise NNError(f"{fname}: key {key!r} is neither 'arg:<name>' nor 'aux:<name>'")
    return arg, aux


def load_checkpoint(prefix: str, epoch: int) -> tuple[Any, dict[str, Any], dict[str, Any]]:
    """``(symbol, arg_params, aux_params)`` from an MXNet checkpoint of any generation."""
    symbol = sym.load(f"{prefix}-symbol.json")
    arg, aux = load_params(f"{prefix}-{epoch:04d}.params")
    return symbol, arg, aux
