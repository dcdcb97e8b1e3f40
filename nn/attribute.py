"""``mx.AttrScope``: string attributes (``ctx_group``, ``lr_mult``) given to every symbol built inside."""

from __future__ import annotations

import threading

_local = threading.local()


class AttrScope:
    """``with mx.AttrScope(ctx_group='dev1'):`` tags every node created inside the block."""

    def __init__(self, **attrs: str):
        for key, value in attrs.items():
            if not isinstance(value, str):
                raise ValueError(f"attribute {key} must be a string, got {value!r}")
        self._attrs = attrs
        self._old: AttrScope | None = None

    def get(self, attrs: dict[str, str] | None) -> dict[str, str]:
        merged = dict(self._attrs)
        merged.update(attrs or {})
        return merged

    def __enter__(self) -> AttrScope:
        self._old = current()
        if self._old is not None:
            merged = dict(self._old._attrs)
            merged.update(self._attrs)
            self._attrs = merged
        _local.scope = self
        return self

    def __exit__(self, *exc: object) -> None:
        _local.scope = self._old


def current() -> AttrScope | None:
    return getattr(_local, "scope", None)


# MXNet's C API stores these under ``__key__`` and lists them under both names.
HIDDEN_KEYS = ("ctx_group", "lr_mult", "wd_mult", "force_mirroring", "mirror_stage")


def hidden(attrs: dict[str, str]) -> dict[str, str]:
    """``ctx_group`` -> ``__ctx_group__`` (and the other hidden keys), as MXNet stores them."""
    return {f"__{k}__" if k in HIDDEN_KEYS else k: str(v) for k, v in attrs.items()}


def listed(attrs: dict[str, str]) -> dict[str, str]:
    """Attributes as MXNet lists them: hidden keys under both names."""
    out = dict(attrs)
    for key in HIDDEN_KEYS:
        if f"__{key}__" in attrs:
            out[key] = attrs[f"__{key}__"]
    return out


def scoped(attrs: dict[str, str] | None) -> dict[str, str]:
    """The current scope's attributes updated with ``attrs``, in stored form."""
    scope = current()
    merged = scope.get(attrs) if scope else dict(attrs or {})
    return hidden(merged)
