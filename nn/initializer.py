"""``mx.init``: parameter initializers with MXNet's rules by name suffix.

``init(name, arr)`` fills ``arr`` in place: ``*_bias``/``*_beta``/``*_moving_mean`` get 0,
``*_gamma``/``*_moving_var`` get 1, ``*_weight`` gets the initializer's own rule. A
variable's ``__init__`` attribute (``Variable('w', init=mx.init.One())``) takes precedence.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

import numpy as np

from framestream.errors import NNError
from framestream.nn import random


class InitDesc(str):
    """A parameter name carrying the variable's attributes (MXNet 1.x ``InitDesc``)."""

    def __new__(cls, name: str, attrs: dict[str, str] | None = None, global_init: Any = None):
        desc = super().__new__(cls, name)
        desc.attrs = attrs or {}
        desc.global_init = global_init
        return desc


_REGISTRY: dict[str, type[Initializer]] = {}


def register(cls: type[Initializer]) -> type[Initializer]:
    _REGISTRY[cls.__name__.lower()] = cls
    return cls


class Initializer:
    """Base: dispatch on the name's suffix; subclasses define ``_init_weight``."""

    def __init__(self, **kwargs: Any):
        self._kwargs = kwargs
        self._rng = np.random.default_rng(random.next_seed())

    def dumps(self) -> str:
        """The JSON MXNet stores in a variable's ``__init__`` attribute."""
        return json.dumps([self.__class__.__name__.lower(), self._kwargs])

    def __call__(self, desc: str, arr: Any) -> None:
        attrs = getattr(desc, "attrs", {})
        if "__init__" in attrs:
            create(attrs["__init__"])._init_by_name(desc, arr)
            return
        self._init_by_name(desc, arr)

    def _init_by_name(self, name: str, arr: Any) -> None:
        if name.startswith("upsampling"):
            self._init_bilinear(name, arr)
        elif name.endswith("bias"):
            self._init_bias(name, arr)
        elif name.endswith("gamma"):
            self._init_gamma(name, arr)
        elif name.endswith("beta"):
            self._init_beta(name, arr)
        elif name.endswith("weight"):
            self._init_weight(name, arr)
        elif name.endswith("moving_mean") or name.endswith("moving_inv_var") or name.endswith("moving_avg"):
            self._init_zero(name, arr)
        elif name.endswith("moving_var"):
            self._init_one(name, arr)
        else:
            self._init_default(name, arr)

    # -- fills ----------------------------------------------------------------------------------
    @staticmethod
    def _fill(arr: Any, values: Any) -> None:
        arr[:] = np.asarray(values, dtype=arr.dtype).reshape(arr.shape)

    def _init_zero(self, name: str, arr: Any) -> None:
        self._fill(arr, np.zeros(arr.shape))

    def _init_one(self, name: str, arr: Any) -> None:
        self._fill(arr, np.ones(arr.shape))

    _init_bias = _init_zero
    _init_beta = _init_zero
    _init_gamma = _init_one

    def _init_bilinear(self, name: str, arr: Any) -> None:
        shape = arr.shape
        weight = np.zeros(int(np.prod(shape)), dtype=np.float32)
        f = np.ceil(shape[3] / 2.0)
        c = (2 * f - 1 - f % 2) / (2.0 * f)
        for i in range(weight.size):
            x, y = i % shape[3], (i // shape[3]) % shape[2]
            weight[i] = (1 - abs(x / f - c)) * (1 - abs(y / f - c))
        self._fill(arr, weight)

    def _init_weight(self, name: str, arr: Any) -> None:
        raise NotImplementedError(f"{type(self).__name__} cannot initialize weights")

    def _init_default(self, name: str, arr: Any) -> None:
        raise NNError(f"Unknown initialization pattern for {name}: names should end in weight, bias, "
                      "gamma, beta, moving_mean or moving_var (or give the variable an init=)")

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v}' for k, v in self._kwargs.items())})"


@register
class Uniform(Initializer):
    """Weights from U(-scale, scale)."""

    def __init__(self, scale: float = 0.07):
        super().__init__(scale=scale)
        self.scale = scale

    def _init_weight(self, name: str, arr: Any) -> None:
        self._fill(arr, self._rng.uniform(-self.scale, self.scale, arr.shape))


@register
class Normal(Initializer):
    """Weights from N(0, sigma^2)."""

    def __init__(self, sigma: float = 0.01):
        super().__init__(sigma=sigma)
        self.sigma = sigma

    def _init_weight(self, name: str, arr: Any) -> None:
        self._fill(arr, self._rng.normal(0.0, self.sigma, arr.shape))


@register
class Xavier(Initializer):
    """Glorot: scale = sqrt(magnitude / fan), fan by ``factor_type`` (avg, in, out)."""

    def __init__(self, rnd_type: str = "uniform", factor_type: str = "avg", magnitude: float = 3):
        super().__init__(rnd_type=rnd_type, factor_type=factor_type, magnitude=magnitude)
        if rnd_type not in ("uniform", "gaussian") or factor_type not in ("avg", "in", "out"):
            raise NNError(f"Xavier: rnd_type must be uniform|gaussian and factor_type avg|in|out, "
                          f"got {rnd_type!r}, {factor_type!r}")
        self.rnd_type, self.factor_type, self.magnitude = rnd_type, factor_type, float(magnitude)

    def _init_weight(self, name: str, arr: Any) -> None:
        shape = arr.shape
        if len(shape) < 2:
            raise NNError(f"Xavier initializer cannot be applied to vector {name} of shape {shape}; "
                          "it needs at least 2 dimensions")
        hw = math.prod(shape[2:])
        fan_in, fan_out = shape[1] * hw, shape[0] * hw
        factor = {"avg": (fan_in + fan_out) / 2.0, "in": fan_in, "out": fan_out}[self.factor_type]
        scale = math.sqrt(self.magnitude / factor)
        if self.rnd_type == "uniform":
            self._fill(arr, self._rng.uniform(-scale, scale, shape))
        else:
            self._fill(arr, self._rng.normal(0.0, scale, shape))


@register
class MSRAPrelu(Xavier):
    """He et al.: Xavier gaussian with magnitude 2 / (1 + slope^2)."""

    def __init__(self, factor_type: str = "avg", slope: float = 0.25):
        super().__init__("gaussian", factor_type, 2.0 / (1 + slope**2))
        self._kwargs = {"factor_type": factor_type, "slope": slope}


@register
class Constant(Initializer):
    def __init__(self, value: float | Any):
        super().__init__(value=value if np.isscalar(value) else np.asarray(value).tolist())
        self.value = value

    def _init_by_name(self, name: str, arr: Any) -> None:
        self._fill(arr, np.broadcast_to(np.asarray(self.value), arr.shape))


@register
class Zero(Constant):
    def __init__(self) -> None:
        super().__init__(0.0)
        self._kwargs = {}


@register
class One(Constant):
    def __init__(self) -> None:
        super().__init__(1.0)
        self._kwargs = {}


_REGISTRY["zeros"] = Zero
_REGISTRY["ones"] = One


@register
class Load(Initializer):
    """Values from a dict (or a params file); ``default_init`` for names it lacks."""

    def __init__(self, param: Any, default_init: Initializer | None = None, verbose: bool = False):
        super().__init__()
        if isinstance(param, str):
            from framestream.nn.ndarray import load

            param = load(param)
        self.param = {k.split(":", 1)[-1] if k.startswith(("arg:", "aux:")) else k: v for k, v in param.items()}
        self.default_init, self.verbose = default_init, verbose

    def __call__(self, name: str, arr: Any) -> None:
        if name in self.param:
            value = self.param[name]
            value = value.asnumpy() if hasattr(value, "asnumpy") else np.asarray(value)
            if value.shape != tuple(arr.shape):
                raise NNError(f"Load: {name} has shape {value.shape} in the source, the model needs "
                              f"{tuple(arr.shape)}")
            self._fill(arr, value)
        elif self.default_init is not None:
            self.default_init(name, arr)
        else:
            raise NNError(f"Load: no value for {name} and no default_init")


@register
class Mixed(Initializer):
    """The first initializer whose regex pattern matches the name."""

    def __init__(self, patterns: list[str], initializers: list[Initializer]):
        super().__init__()
        if len(patterns) != len(initializers):
            raise NNError(f"Mixed: {len(patterns)} patterns for {len(initializers)} initializers")
        self.map = [(re.compile(p), i) for p, i in zip(patterns, initializers)]

    def __call__(self, name: str, arr: Any) -> None:
        for pattern, init in self.map:
            if pattern.match(name):
                init(name, arr)
                return
        raise NNError(f"Mixed: no pattern matches {name}; add '.*' as a catch-all")


def create(spec: str | Initializer) -> Initializer:
    """An initializer from its name or MXNet's ``__init__`` JSON (``'["xavier", {...}]'``)."""
    if isinstance(spec, Initializer):
        return spec
    text = spec.strip()
    if text.startswith("["):
        name, kwargs = json.loads(text)
    else:
        name, kwargs = text, {}
    cls = _REGISTRY.get(name.lower())
    if cls is None:
        raise NNError(f"unknown initializer {name!r}; known: {', '.join(sorted(_REGISTRY))}")
    return cls(**kwargs)
