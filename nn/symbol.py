"""``mx.symbol`` / ``mx.sym``: networks described as graphs of operators, as in MXNet.

>>> from framestream import mx
>>> net = mx.sym.Variable('data')
>>> net = mx.sym.FullyConnected(data=net, name='fc1', num_hidden=10)
>>> net = mx.sym.SoftmaxOutput(data=net, name='softmax')
>>> net.list_arguments()
['data', 'fc1_weight', 'fc1_bias', 'softmax_label']
>>> net.infer_shape(data=(32, 100))[1]
[(32, 10)]

Every registered operator is a function of this module (``mx.sym.Convolution``);
inputs it is not given become variables named ``<node>_<input>``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from framestream.errors import MissingArgumentError, NNError, UnknownOperatorError
from framestream.nn import _graph, attribute
from framestream.nn import name as _name
from framestream.nn._graph import Node
from framestream.nn.ops import lookup


class Symbol:
    """One or more outputs of a graph of operators."""

    def __init__(self, outputs: list[_graph.Entry]):
        self._outputs = list(outputs)

    # -- identity -------------------------------------------------------------------------
    @property
    def name(self) -> str | None:
        """The node name of a single-output symbol (None for a group)."""
        return self._outputs[0][0].name if len(self._outputs) == 1 else None

    def __repr__(self) -> str:
        if len(self._outputs) == 1:
            return f"<Symbol {self.name}>"
        return f"<Symbol group [{', '.join(self.list_outputs())}]>"

    def __len__(self) -> int:
        return len(self._outputs)

    def __iter__(self) -> Iterator[Symbol]:
        return (Symbol([o]) for o in self._outputs)

    def __getitem__(self, index: int | str) -> Symbol:
        if isinstance(index, str):
            names = self.list_outputs()
            if index not in names:
                raise KeyError(f"no output named {index!r}; outputs are {', '.join(names)}")
            if names.count(index) > 1:
                raise KeyError(f"more than one output is named {index!r}")
            index = names.index(index)
        if not -len(self._outputs) <= index < len(self._outputs):
            raise IndexError(f"output {index} of a symbol with {len(self._outputs)} outputs")
        return Symbol([self._outputs[index]])

    def __copy__(self) -> Symbol:
        return self._clone({})

    def __deepcopy__(self, memo: dict) -> Symbol:
        return self._clone({})

    def _clone(self, replace: dict[str, _graph.Entry]) -> Symbol:
        """A copy of the graph with the variables named in ``replace`` swapped for entries."""
        copies: dict[int, Node] = {}

        def entry(e: _graph.Entry) -> _graph.Entry:
            node, idx = e
            if node.is_variable and node.name in replace:
                return replace[node.name]
            return copies[id(node)], idx

        for node in _graph.topo_order(self._outputs):
            if node.is_variable and node.name in replace:
                continue
            copies[id(node)] = Node(node.op, node.name, [entry(e) for e in node.inputs], node.attrs)
        return Symbol([entry(e) for e in self._outputs])

    def __call__(self, *args: Symbol, **kwargs: Any) -> Symbol:
        """Compose: replace free variables, positionally (in argument order) or by name."""
        kwargs.pop("name", None)
        arguments = self.list_arguments()
        replace = dict(zip(arguments, args))
        replace.update(kwargs)
        entries = {}
        for key, value in replace.items():
            if key not in arguments:
                raise MissingArgumentError(f"cannot compose: {key!r} is not an argument; "
                                           f"arguments are {', '.join(arguments)}")
            entries[key] = _single_output(value, f"compose argument {key!r}")
        return self._clone(entries)

    # -- listing --------------------------------------------------------------------------
    def _order(self) -> list[Node]:
        return _graph.topo_order(self._outputs)

    def list_arguments(self) -> list[str]:
        return [n.name for n in _graph.variable_roles(self._order())[0]]

    def list_auxiliary_states(self) -> list[str]:
        return [n.name for n in _graph.variable_roles(self._order())[1]]

    def list_inputs(self) -> list[str]:
        return [n.name for n in self._order() if n.is_variable]

    def list_outputs(self) -> list[str]:
        return [node.output_names()[idx] for node, idx in self._outputs]

    def get_internals(self) -> Symbol:
        """Every node's every output, in graph order; ``internals['fc1_output']`` cuts a feature symbol."""
        return Symbol([(n, i) for n in self._order() for i in range(len(n.output_names()))])

    def get_children(self) -> Symbol | None:
        entries = [e for node, _ in self._outputs for e in node.inputs]
        return Symbol(entries) if entries else None

    # -- attributes ------------------------------------------------------------------------
    def attr(self, key: str) -> str | None:
        """One attribute (or operator parameter) of a single-output symbol's node."""
        if len(self._outputs) != 1:
            return None
        return _node_attrs(self._outputs[0][0]).get(key)

    def list_attr(self, recursive: bool = False) -> dict[str, str]:
        """This node's attributes; ``recursive`` (GraphLab era) gives ``<node>_<key>`` for all."""
        if not recursive:
            return _node_attrs(self._outputs[0][0]) if len(self._outputs) == 1 else {}
        return {f"{n.name}_{k}": v for n in self._order() for k, v in _node_attrs(n).items()
                if not k.startswith("__")}

    def attr_dict(self) -> dict[str, dict[str, str]]:
        """``{node: {key: value}}`` for every node with attributes (1.x's way to read them)."""
        return {n.name: attrs for n in self._order() if (attrs := _node_attrs(n))}

    def _set_attr(self, **kwargs: str) -> None:
        for node, _ in self._outputs:
            node.attrs.update(attribute.hidden(kwargs))

    # -- inference ---------------------------------------------------------------------------
    def _given(self, args: tuple, kwargs: dict, what: str) -> dict[str, Any]:
        arguments = self.list_arguments()
        given = {k: v for k, v in zip(arguments, args) if v is not None}
        inputs = set(self.list_inputs())
        for key, value in kwargs.items():
            if key not in inputs:
                raise MissingArgumentError(f"{what}: {key!r} is not an input of this symbol; "
                                           f"arguments are {', '.join(arguments)}")
            if value is not None:
                given[key] = value
        return given

    def infer_shape(self, *args: Any, **kwargs: Any) -> tuple[list | None, list | None, list | None]:
        """``(arg_shapes, out_shapes, aux_shapes)`` from some input shapes; Nones if incomplete.

        Raises ``ShapeInferenceError`` naming the layer when shapes contradict.
        """
        arg, out, aux = self.infer_shape_partial(*args, **kwargs)
        if any(s == () for s in arg + out + aux):
            return None, None, None
        return arg, out, aux

    def infer_shape_partial(self, *args: Any, **kwargs: Any) -> tuple[list, list, list]:
        """Like ``infer_shape``, with ``()`` where a shape cannot be inferred yet."""
        order = self._order()
        given = {k: tuple(v) for k, v in self._given(args, kwargs, "infer_shape").items()}
        shapes = _graph.infer_shapes(order, given)
        args_, aux_ = _graph.variable_roles(order)
        pick = lambda n, i=0: tuple(shapes.get((id(n), i)) or ())  # noqa: E731
        return ([pick(n) for n in args_], [pick(n, i) for n, i in self._outputs], [pick(n) for n in aux_])

    def infer_type(self, *args: Any, **kwargs: Any) -> tuple[list | None, list | None, list | None]:
        """``(arg_types, out_types, aux_types)`` as numpy types; Nones if incomplete."""
        order = self._order()
        types = _graph.infer_types(order, self._given(args, kwargs, "infer_type"))
        args_, aux_ = _graph.variable_roles(order)
        got = lambda n, i=0: types.get((id(n), i))  # noqa: E731
        result = ([got(n) for n in args_], [got(n, i) for n, i in self._outputs], [got(n) for n in aux_])
        if any(t is None for part in result for t in part):
            return None, None, None
        return tuple([np.dtype(t).type for t in part] for part in result)  # type: ignore[return-value]

    # -- files -----------------------------------------------------------------------------------
    def tojson(self) -> str:
        from framestream.nn import _symbol_json

        return _symbol_json.dumps(self)

    def save(self, fname: str | os.PathLike) -> None:
        """Write MXNet 1.x JSON (loads in Apache MXNet 1.9.1), atomically."""
        path = os.fspath(fname)
        tmp = f"{path}.writing-{os.getpid()}"
        with open(tmp, "w") as f:
            f.write(self.tojson())
        os.replace(tmp, path)

    # -- binding ------------------------------------------------------------------------------
    def simple_bind(self, ctx: Any = None, grad_req: Any = "write", type_dict: dict | None = None,
                    group2ctx: dict | None = None, shared_exec: Any = None, **shapes: Any) -> Any:
        """Infer every shape from the inputs' shapes, allocate zeroed arrays, and bind."""
        from framestream.nn.executor import Executor

        return Executor.simple(self, ctx, grad_req, type_dict or {}, shapes)

    def bind(self, ctx: Any = None, args: Any = None, args_grad: Any = None, grad_req: Any = "write",
             aux_states: Any = None, group2ctx: dict | None = None, shared_exec: Any = None) -> Any:
        """Bind given arrays (lists in ``list_arguments`` order, or dicts by name)."""
        from framestream.nn.executor import Executor

        return Executor(self, ctx, args, args_grad, grad_req, aux_states)

    # -- arithmetic -----------------------------------------------------------------------------
    def _arith(self, other: Any, sym_op: str, scalar_op: str) -> Symbol:
        if isinstance(other, Symbol):
            return _create(sym_op, self, other)
        if isinstance(other, int | float | np.generic):
            return _create(scalar_op, self, scalar=other)
        return NotImplemented

    def __add__(self, o): return self._arith(o, "_Plus", "_PlusScalar")  # noqa: E704
    def __radd__(self, o): return self._arith(o, "_Plus", "_PlusScalar")  # noqa: E704
    def __sub__(self, o): return self._arith(o, "_Minus", "_MinusScalar")  # noqa: E704
    def __rsub__(self, o): return self._arith(o, "_Minus", "_RMinusScalar")  # noqa: E704
    def __mul__(self, o): return self._arith(o, "_Mul", "_MulScalar")  # noqa: E704
    def __rmul__(self, o): return self._arith(o, "_Mul", "_MulScalar")  # noqa: E704
    def __truediv__(self, o): return self._arith(o, "_Div", "_DivScalar")  # noqa: E704
    def __rtruediv__(self, o): return self._arith(o, "_Div", "_RDivScalar")  # noqa: E704
    def __pow__(self, o): return self._arith(o, "_Power", "_PowerScalar")  # noqa: E704
    def __rpow__(self, o): return self._arith(o, "_Power", "_RPowerScalar")  # noqa: E704
    def __neg__(self): return self.__mul__(-1.0)  # noqa: E704

    __div__ = __truediv__
    __rdiv__ = __rtruediv__


def _node_attrs(node: Node) -> dict[str, str]:
    merged = dict(node.op.param_strings()) if node.op else {}
    merged.update(node.attrs)
    return attribute.listed(merged)


def _single_output(value: Any, where: str) -> _graph.Entry:
    if not isinstance(value, Symbol):
        raise NNError(f"{where}: expected a Symbol, got {type(value).__name__}")
    if len(value._outputs) != 1:
        raise NNError(f"{where}: the symbol has {len(value._outputs)} outputs "
                      f"({', '.join(value.list_outputs())}); pick one with sym[i]")
    return value._outputs[0]


def Variable(name: str, attr: dict[str, str] | None = None, shape: tuple | None = None,
             lr_mult: float | None = None, wd_mult: float | None = None, dtype: Any = None,
             init: Any = None, stype: str | None = None, **kwargs: Any) -> Symbol:
    """A named input or parameter: ``mx.sym.Variable('data')``."""
    if not isinstance(name, str):
        raise TypeError(f"Variable name must be a string, got {name!r}")
    attrs = attribute.scoped(attr)
    extra = {"shape": shape, "lr_mult": lr_mult, "wd_mult": wd_mult, "init": init,
             "dtype": None if dtype is None else _DTYPE_CODES[np.dtype(dtype).name]}
    for key, value in extra.items():
        if value is not None:
            attrs[f"__{key}__"] = value.dumps() if hasattr(value, "dumps") else str(value)
    for key, value in kwargs.items():
        attrs[key if key.startswith("__") else f"__{key}__"] = str(value)
    return Symbol([(Node(None, name, attrs=attrs), 0)])


var = Variable
_DTYPE_CODES = {"float32": "0", "float64": "1", "float16": "2", "uint8": "3", "int32": "4", "int8": "5",
                "int64": "6"}


def Group(symbols: list[Symbol]) -> Symbol:
    """One symbol whose outputs are the outputs of ``symbols``, in order."""
    if not symbols or not all(isinstance(s, Symbol) for s in symbols):
        raise NNError("Group needs a non-empty list of Symbols")
    return Symbol([e for s in symbols for e in s._outputs])


def _create(op_name: str, *args: Any, name: str | None = None, attr: dict | None = None,
            hint: str | None = None, **kwargs: Any) -> Symbol:
    """Build one operator node: the shared body of every ``mx.sym.<Op>`` function."""
    cls = lookup(op_name)
    if cls is None:
        raise UnknownOperatorError(f"unknown operator {op_name!r}")
    inputs = {k: v for k, v in kwargs.items() if isinstance(v, Symbol)}
    params = {k: v for k, v in kwargs.items() if not isinstance(v, Symbol) and v is not None}
    positional = [a for a in args if a is not None]
    if cls.variadic and "num_args" not in params:
        params["num_args"] = len(positional) + len(inputs)
    node_name = _name.current().get(name, hint or op_name.lower())
    op = cls(node=node_name, **params)
    slots = op.inputs()
    for key in inputs:
        if key not in slots:
            raise NNError(f"{op_name} '{node_name}': no input named {key!r}; inputs are {', '.join(slots)}")
    if len(positional) > len(slots):
        raise NNError(f"{op_name} '{node_name}': {len(positional)} positional inputs for {len(slots)} slots")
    attrs = attribute.scoped(attr)
    entries = []
    for i, slot in enumerate(slots):
        value = positional[i] if i < len(positional) else inputs.get(slot)
        if value is None:  # MXNet copies the node's parameters and attributes onto it
            auto = {**op.param_strings(), **attrs, **op.input_attrs(slot)}
            entries.append((Node(None, f"{node_name}_{slot}", attrs=auto), 0))
        else:
            entries.append(_single_output(value, f"{op_name} '{node_name}' input {slot!r}"))
    node = Node(op, node_name, entries, attrs)
    return Symbol([(node, i) for i in range(len(op.outputs()))])


def _op_function(op_name: str, hint: str | None = None) -> Callable[..., Symbol]:
    cls = lookup(op_name)

    def make(*args: Any, **kwargs: Any) -> Symbol:
        return _create(op_name, *args, hint=hint, **kwargs)

    make.__name__ = make.__qualname__ = op_name
    make.__doc__ = (cls.__doc__ or "") + f"\n\nParameters: {', '.join(p.name for p in cls.params)}"
    return make


def __getattr__(attr: str) -> Callable[..., Symbol]:
    if lookup(attr) is not None:
        return _op_function(attr)
    raise AttributeError(f"module 'mx.symbol' has no attribute or operator {attr!r}")


class linalg:  # noqa: N801  (MXNet's namespace mx.sym.linalg)
    """``mx.sym.linalg.gemm2``: batched matrix products."""

    @staticmethod
    def gemm2(*args: Any, **kwargs: Any) -> Symbol:
        return _create("_linalg_gemm2", *args, hint="gemm2", **kwargs)


def _binary(lhs: Any, rhs: Any, sym_op: str, scalar_op: str, rscalar_op: str) -> Symbol:
    if isinstance(lhs, Symbol) and isinstance(rhs, Symbol):
        return _create(sym_op, lhs, rhs)
    if isinstance(lhs, Symbol):
        return _create(scalar_op, lhs, scalar=float(rhs))
    if isinstance(rhs, Symbol):
        return _create(rscalar_op, rhs, scalar=float(lhs))
    raise TypeError(f"expected at least one Symbol, got {type(lhs).__name__} and {type(rhs).__name__}")


def pow(base: Any, exp: Any) -> Symbol:  # noqa: A001  (MXNet's name)
    return _binary(base, exp, "_Power", "_PowerScalar", "_RPowerScalar")


def maximum(left: Any, right: Any) -> Symbol:
    return _binary(left, right, "_Maximum", "_MaximumScalar", "_MaximumScalar")


def minimum(left: Any, right: Any) -> Symbol:
    return _binary(left, right, "_Minimum", "_MinimumScalar", "_MinimumScalar")


def load(fname: str | os.PathLike) -> Symbol:
    """Read a symbol JSON file of any MXNet generation."""
    from framestream.nn import _symbol_json

    return _symbol_json.load(fname)


def load_json(json_str: str) -> Symbol:
    from framestream.nn import _symbol_json

    return _symbol_json.loads(json_str)


__all__ = ["Group", "Symbol", "Variable", "load", "load_json", "maximum", "minimum", "pow", "var"]
