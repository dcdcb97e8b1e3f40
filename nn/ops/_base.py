"""The operator interface and its registry: one table, keyed by MXNet's op name.

An operator instance holds one node's parsed parameters. The Symbol layer asks it for
its inputs (arguments, then aux states), visible outputs and shape/type rules; the
executor calls ``forward`` / ``backward`` with the array module ``xp`` (numpy or cupy),
so one body runs on both. Parameters arrive as Python values or MXNet strings
(``"(3, 3)"``, ``"True"``) and are parsed once, here, into typed values on ``self.p``.
"""

from __future__ import annotations

import ast
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any, ClassVar

from framestream.errors import OperatorParamError, ShapeInferenceError

Shape = tuple[int, ...]
REQUIRED = object()


# ---------------------------------------------------------------- parameter parsing


def _literal(text: str) -> Any:
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def parse_int(value: Any) -> int:
    value = _literal(value) if isinstance(value, str) else value
    if isinstance(value, bool) or not isinstance(value, int | float) or int(value) != value:
        raise ValueError(f"expected an integer, got {value!r}")
    return int(value)


def parse_float(value: Any) -> float:
    if isinstance(value, str):
        value = value.strip()
        low = value.lower()
        if low in ("inf", "+inf", "-inf", "nan"):
            return float(low)
        value = _literal(value)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"expected a number, got {value!r}")
    return float(value)


def parse_bool(value: Any) -> bool:
    if isinstance(value, str):
        low = value.strip().lower()
        if low in ("true", "1"):
            return True
        if low in ("false", "0"):
            return False
        raise ValueError(f"expected True or False, got {value!r}")
    if isinstance(value, bool | int) and value in (0, 1):
        return bool(value)
    raise ValueError(f"expected True or False, got {value!r}")


def parse_shape(value: Any) -> Shape:
    value = _literal(value) if isinstance(value, str) else value
    if isinstance(value, int) and not isinstance(value, bool):
        return (value,)
    if isinstance(value, list | tuple) and all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        return tuple(int(v) for v in value)
    raise ValueError(f"expected a tuple of integers such as (3, 3), got {value!r}")


def parse_float_tuple(value: Any) -> tuple[float, ...]:
    value = _literal(value) if isinstance(value, str) else value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return (float(value),)
    if isinstance(value, list | tuple) and all(isinstance(v, int | float) for v in value):
        return tuple(float(v) for v in value)
    raise ValueError(f"expected a tuple of numbers, got {value!r}")


def parse_str(value: Any) -> str:
    return str(value)


def parse_optional(parse: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """MXNet writes an unset optional parameter as ``None``."""

    def parse_or_none(value: Any) -> Any:
        if value is None or (isinstance(value, str) and value.strip() == "None"):
            return None
        return parse(value)

    return parse_or_none


def parse_enum(*choices: str) -> Callable[[Any], str]:
    def parse_choice(value: Any) -> str:
        text = str(value)
        if text not in choices:
            raise ValueError(f"expected one of {', '.join(choices)}; got {text!r}")
        return text

    return parse_choice


@dataclass(frozen=True)
class P:
    """One declared parameter: its name, parser and default (``REQUIRED`` if none)."""

    name: str
    parse: Callable[[Any], Any]
    default: Any = REQUIRED


def mx_str(value: Any) -> str:
    """A parameter value as MXNet's Python frontend writes it (``str()``; tuples ``(3, 3)``)."""
    if isinstance(value, list):
        value = tuple(value)
    return str(value)


# ---------------------------------------------------------------- the operator base


class Operator:
    """One node's operator: its typed parameters plus the maths for shapes and values.

    Subclasses set ``op_name`` and ``params``, and override what differs from a
    one-input, one-output, shape-preserving op.
    """

    op_name: ClassVar[str] = ""
    params: ClassVar[tuple[P, ...]] = ()
    aliases: ClassVar[tuple[str, ...]] = ()
    # Inputs are arg0, arg1, ... and the count is the `num_args` parameter (Concat, ElementWiseSum).
    variadic: ClassVar[bool] = False
    # Loss layers start the backward pass and ignore a head gradient (MXNet's SoftmaxOutput).
    is_loss: ClassVar[bool] = False
    # Runs compiled CPU kernels over the kernel pool on big arrays: then the executor keeps
    # BLAS single-threaded so the two sets of threads do not fight (see _cpu_kernels).
    uses_cpu_pool: ClassVar[bool] = False

    def __init__(self, node: str = "?", **raw: Any):
        self.node = node
        self.raw = {k: v for k, v in raw.items()}
        values = {}
        known = {p.name: p for p in self.params}
        for key, value in raw.items():
            if key not in known:
                raise OperatorParamError(
                    f"{self.op_name} '{node}': unknown parameter {key!r}; "
                    f"it takes {', '.join(sorted(known)) or 'no parameters'}"
                )
            try:
                values[key] = known[key].parse(value)
            except (ValueError, TypeError) as exc:
                raise OperatorParamError(f"{self.op_name} '{node}': parameter {key}={value!r}: {exc}") from None
        for p in self.params:
            if p.name not in values:
                if p.default is REQUIRED:
                    raise OperatorParamError(f"{self.op_name} '{node}': required parameter {p.name!r} is missing")
                values[p.name] = p.default
        self.p = SimpleNamespace(**values)
        self.check_params()

    # -- declarations ------------------------------------------------------------

    def check_params(self) -> None:
        """Validate parameter combinations; raise ``self.param_error(...)``."""

    def arguments(self) -> list[str]:
        """Input names that are arguments (data, weights, labels), in MXNet's order."""
        if self.variadic:
            return [f"arg{i}" for i in range(self.p.num_args)]
        return ["data"]

    def aux_states(self) -> list[str]:
        """Input names that are auxiliary states (BatchNorm's moving statistics)."""
        return []

    def outputs(self) -> list[str]:
        """Visible output names; the node's outputs are ``<node>_<name>``."""
        return ["output"]

    def inputs(self) -> list[str]:
        return self.arguments() + self.aux_states()

    def input_attrs(self, slot: str) -> dict[str, str]:
        """Attributes MXNet sets on an input variable it creates (BatchNorm's ``__init__``)."""
        return {}

    def param_strings(self) -> dict[str, str]:
        """The parameters as given, in MXNet's string form (for JSON and ``list_attr``)."""
        return {k: mx_str(v) for k, v in self.raw.items()}

    # -- shape and type rules -------------------------------------------------------

    def infer_shape(self, in_shapes: list[Shape | None]) -> tuple[list[Shape | None], list[Shape | None]]:
        """Complete ``in_shapes`` (arguments then aux) and give the output shapes.

        Return ``(in_shapes, out_shapes)``; leave ``None`` where a shape is not yet known.
        The default keeps the shape of the first input.
        """
        shape = in_shapes[0]
        return list(in_shapes), [shape] * len(self.outputs())

    def infer_type(self, in_types: list[Any]) -> tuple[list[Any], list[Any]]:
        """Complete input dtypes and give output dtypes; default: all share one dtype."""
        known = next((t for t in in_types if t is not None), None)
        return [known if t is None else t for t in in_types], [known] * len(self.outputs())

    # -- computation --------------------------------------------------------------------

    def forward(self, xp: Any, inputs: list[Any], is_train: bool, rt: Runtime) -> tuple[list[Any], Any]:
        """Compute the outputs; return ``(outputs, state)`` where state is kept for backward.

        Aux-state arrays sit at the end of ``inputs`` and may be updated in place.
        """
        raise NotImplementedError

    def backward(self, xp: Any, out_grads: list[Any], inputs: list[Any], outputs: list[Any],
                 state: Any, rt: Runtime) -> list[Any]:
        """Gradients of the arguments (one per argument, ``None`` for none), given ``out_grads``.

        ``out_grads`` has one array per visible output (zeros where no gradient flows; a
        loss layer gets whatever the caller passed and may ignore it). Never modify
        ``out_grads``, ``inputs`` or ``outputs`` in place; a returned gradient may be one of
        the ``out_grads`` arrays itself (the executor never writes into them).
        """
        raise NotImplementedError(f"{self.op_name} has no backward")

    # -- errors ---------------------------------------------------------------------------

    def param_error(self, message: str) -> OperatorParamError:
        return OperatorParamError(f"{self.op_name} '{self.node}': {message}")

    def shape_error(self, in_shapes: Sequence[Shape | None], message: str) -> ShapeInferenceError:
        shown = ", ".join(f"{n}={_fmt_shape(s)}" for n, s in zip(self.inputs(), in_shapes))
        return ShapeInferenceError(f"{self.op_name} '{self.node}' with inputs {shown}: {message}")

    def assign(self, in_shapes: list[Shape | None], index: int, expected: Shape) -> None:
        """Fill in input ``index`` with ``expected``, or raise if it holds something else."""
        have = in_shapes[index]
        if have is None:
            in_shapes[index] = tuple(expected)
        elif tuple(have) != tuple(expected):
            name = self.inputs()[index]
            raise self.shape_error(in_shapes, f"{name} should have shape {_fmt_shape(expected)}, got {_fmt_shape(have)}")

    def __repr__(self) -> str:
        return f"{self.op_name}({', '.join(f'{k}={v}' for k, v in self.param_strings().items())})"


def _fmt_shape(shape: Shape | None) -> str:
    return "?" if shape is None else str(tuple(int(d) for d in shape))


def size_of(shape: Shape) -> int:
    return math.prod(shape)


class Runtime:
    """What an op may need from its executor besides arrays: the backend and randomness."""

    def __init__(self, xp: Any, seed: int | None = None):
        self.xp = xp
        self._rng = xp.random.RandomState(seed)
        # Per argument of the op whose backward runs: does its gradient flow anywhere?
        # The executor sets it before each backward call; None means every one does.
        self.needs_grad: Sequence[bool] | None = None

    def wants(self, index: int) -> bool:
        """Whether backward must compute argument ``index``'s gradient (else may return None)."""
        return self.needs_grad is None or self.needs_grad[index]

    def uniform(self, shape: Shape, dtype: Any) -> Any:
        """Uniform [0, 1) samples of ``dtype`` on the runtime's device."""
        return self._rng.uniform(0.0, 1.0, size=shape).astype(dtype, copy=False)

    def reseed(self, seed: int) -> None:
        self._rng = self.xp.random.RandomState(seed)

    def get_state(self) -> Any:
        """The random state, so a resumed training run draws the same numbers."""
        return self._rng.get_state() if hasattr(self._rng, "get_state") else None

    def set_state(self, state: Any) -> None:
        if state is not None:
            self._rng.set_state(state)


# ---------------------------------------------------------------- the registry

_REGISTRY: dict[str, type[Operator]] = {}


def register(cls: type[Operator]) -> type[Operator]:
    """Class decorator: add an operator (and its aliases) to the table."""
    for name in (cls.op_name, *cls.aliases):
        if name in _REGISTRY and _REGISTRY[name] is not cls:
            raise RuntimeError(f"operator {name} registered twice")
        _REGISTRY[name] = cls
    return cls


def lookup(name: str) -> type[Operator] | None:
    return _REGISTRY.get(name)


def registered() -> dict[str, type[Operator]]:
    return dict(_REGISTRY)
