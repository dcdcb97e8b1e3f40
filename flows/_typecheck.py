"""Checking and converting configuration values against dataclass field annotations.

One small interpreter of the annotations the flow configs use (``str``, ``int``, ``float``,
``bool``, ``Any``, ``X | None``, unions, ``Literal[...]``, ``tuple[T, ...]``, fixed
``tuple[A, B]``, ``dict[str, T]`` and nested config dataclasses), shared by ``load_config``
(YAML and dicts, with the dotted key path of every value) and the dataclasses'
``__post_init__`` (direct construction in Python). Errors are ``ConfigError`` naming the key
path, the expected type and what came instead.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import types
import typing
from collections.abc import Mapping
from contextvars import ContextVar
from typing import Any, Literal, Union

from framestream.errors import ConfigError

_WHERE: ContextVar[str | None] = ContextVar("framestream_config_path", default=None)


def type_name(annotation: Any) -> str:
    """A readable name for an annotation: ``int``, ``list of str``, ``'csv' | 'images'``.

    >>> type_name(tuple[str, ...] | None), type_name(Literal['csv', 'images'])
    ('list of str or null', "'csv' | 'images'")
    """
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if annotation is Any:
        return "any value"
    if annotation is type(None):
        return "null"
    if origin is Literal:
        return " | ".join(repr(a) for a in args)
    if origin in (Union, types.UnionType):
        return " or ".join(type_name(a) for a in args)
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return f"list of {type_name(args[0])}"
        return f"list of {len(args)} ({', '.join(type_name(a) for a in args)})"
    if origin is dict:
        return f"mapping of {type_name(args[0])} to {type_name(args[1])}"
    if dataclasses.is_dataclass(annotation):
        return f"mapping ({annotation.__name__})"
    return getattr(annotation, "__name__", str(annotation))


def _got(value: Any) -> str:
    text = repr(value)
    text = text if len(text) <= 60 else text[:57] + "..."
    return f"{type(value).__name__} {text}"


def _fail(path: str, annotation: Any, value: Any) -> ConfigError:
    return ConfigError(f"{path}: expected {type_name(annotation)}, got {_got(value)}")


@functools.cache
def hints(cls: type) -> dict[str, Any]:
    """The resolved field annotations of a config dataclass."""
    return typing.get_type_hints(cls)


def coerce(value: Any, annotation: Any, path: str) -> Any:
    """``value`` checked against ``annotation`` and normalised (lists to tuples, ints to
    floats where a float is expected, mappings to config dataclasses).

    >>> coerce([1, 2], tuple[float, ...], 'mean')
    (1.0, 2.0)
    >>> coerce('2', int | None, 'limit')
    Traceback (most recent call last):
    ...
    framestream.errors.ConfigError: limit: expected int or null, got str '2'
    """
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if annotation is Any:
        return value
    if annotation is type(None):
        if value is None:
            return None
        raise _fail(path, annotation, value)
    if origin in (Union, types.UnionType):
        return _coerce_union(value, annotation, args, path)
    if origin is Literal:
        if isinstance(value, str | int) and not isinstance(value, bool) and value in args:
            return value
        raise ConfigError(f"{path}: expected one of {type_name(annotation)}, got {_got(value)}")
    if origin is tuple:
        return _coerce_tuple(value, annotation, args, path)
    if origin is dict:
        if not isinstance(value, Mapping):
            raise _fail(path, annotation, value)
        return {coerce(k, args[0], f"{path}.<key>"): coerce(v, args[1], f"{path}.{k}")
                for k, v in value.items()}
    if dataclasses.is_dataclass(annotation):
        if isinstance(value, annotation):
            return value
        if isinstance(value, Mapping):
            return build(annotation, value, path)
        raise _fail(path, annotation, value)
    return _coerce_scalar(value, annotation, path)


def _coerce_union(value: Any, annotation: Any, args: tuple, path: str) -> Any:
    if value is None and type(None) in args:
        return None
    errors = []
    for arg in args:
        if arg is type(None):
            continue
        try:
            return coerce(value, arg, path)
        except ConfigError as exc:
            errors.append(exc)
    # a nested error (inside a mapping or a list) says more than "expected A or B"
    deeper = [e for e in errors if not str(e).startswith(f"{path}:")]
    raise deeper[0] if len(deeper) == 1 else _fail(path, annotation, value)


def _coerce_tuple(value: Any, annotation: Any, args: tuple, path: str) -> tuple:
    if isinstance(value, str | bytes | Mapping) or not isinstance(value, list | tuple):
        raise _fail(path, annotation, value)
    if len(args) == 2 and args[1] is Ellipsis:
        return tuple(coerce(v, args[0], f"{path}[{i}]") for i, v in enumerate(value))
    if len(value) != len(args):
        raise ConfigError(f"{path}: expected {type_name(annotation)}, got {len(value)} values "
                          f"{list(value)!r}")
    return tuple(coerce(v, a, f"{path}[{i}]") for i, (v, a) in enumerate(zip(value, args)))


def _coerce_scalar(value: Any, annotation: Any, path: str) -> Any:
    if annotation is bool:
        if isinstance(value, bool):
            return value
    elif annotation is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return int(value)
    elif annotation is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
    elif annotation is str:
        if isinstance(value, str):
            return value
    elif isinstance(annotation, type) and isinstance(value, annotation):
        return value
    raise _fail(path, annotation, value)


def build(cls: type, mapping: Mapping[str, Any], path: str) -> Any:
    """A config dataclass from a mapping; unknown and missing keys name their path."""
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    for key in mapping:
        if key not in fields:
            raise unknown_key(key, list(fields), path, cls)
    values = {}
    for name, f in fields.items():
        where = f"{path}.{name}" if path else name
        if name in mapping:
            values[name] = coerce(mapping[name], hints(cls)[name], where)
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ConfigError(f"{where}: required ({type_name(hints(cls)[name])}) but missing")
    token = _WHERE.set(path)
    try:
        return cls(**values)
    finally:
        _WHERE.reset(token)


def field_path(obj: Any, name: str) -> str:
    """How to name field ``name`` of ``obj`` in an error: its key path while ``build`` makes
    it from a mapping, else ``ClassName.name``."""
    where = _WHERE.get()
    if where is None:
        return f"{type(obj).__name__}.{name}"
    return f"{where}.{name}" if where else name


def unknown_key(key: Any, known: list[str], path: str, cls: type) -> ConfigError:
    where = f"{path}.{key}" if path else str(key)
    close = difflib.get_close_matches(str(key), known, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return ConfigError(f"{where}: unknown key{hint}; {cls.__name__} takes {', '.join(known)}")


def check_fields(obj: Any) -> None:
    """Coerce every field of a frozen config dataclass in place (from ``__post_init__``) and
    apply the ``min`` bound in the field's metadata."""
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        fixed = coerce(value, hints(type(obj))[f.name], field_path(obj, f.name))
        if fixed is not value:
            object.__setattr__(obj, f.name, fixed)
        bound = f.metadata.get("min")
        if bound is not None and fixed is not None and fixed < bound:
            raise ConfigError(f"{field_path(obj, f.name)}: must be at least {bound}, got {fixed!r}")
