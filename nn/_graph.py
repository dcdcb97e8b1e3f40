"""The graph under a Symbol: nodes, a stable DFS order, and shape/dtype inference.

A node is a variable (``op is None``) or an operator instance with input entries
``(node, output_index)``. Inputs of an op are its arguments followed by its aux states,
as in MXNet 1.x, so a variable feeding an aux slot is an auxiliary state.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from framestream.errors import ShapeInferenceError
from framestream.nn.ops import Operator

Shape = tuple[int, ...]
Entry = tuple["Node", int]


class Node:
    __slots__ = ("op", "name", "inputs", "attrs")

    def __init__(self, op: Operator | None, name: str, inputs: list[Entry] | None = None,
                 attrs: dict[str, str] | None = None):
        self.op = op
        self.name = name
        self.inputs = list(inputs or [])
        self.attrs = dict(attrs or {})

    @property
    def is_variable(self) -> bool:
        return self.op is None

    def output_names(self) -> list[str]:
        if self.op is None:
            return [self.name]
        return [f"{self.name}_{o}" for o in self.op.outputs()]

    def __repr__(self) -> str:
        return f"Node({self.op.op_name if self.op else 'null'}, {self.name})"


def topo_order(heads: Iterable[Entry]) -> list[Node]:
    """Nodes in MXNet's DFS post-order (inputs first, in input order), each once."""
    order: list[Node] = []
    seen: set[int] = set()
    for head, _ in heads:
        stack: list[tuple[Node, int]] = [(head, 0)]
        while stack:
            node, i = stack.pop()
            if id(node) in seen:
                continue
            if i < len(node.inputs):
                stack.append((node, i + 1))
                child = node.inputs[i][0]
                if id(child) not in seen:
                    stack.append((child, 0))
            else:
                seen.add(id(node))
                order.append(node)
    return order


def variable_roles(order: list[Node]) -> tuple[list[Node], list[Node]]:
    """(argument variables, aux-state variables), each in DFS order."""
    aux_ids: set[int] = set()
    for node in order:
        if node.op is not None:
            n_args = len(node.op.arguments())
            for src, _ in node.inputs[n_args:]:
                aux_ids.add(id(src))
    variables = [n for n in order if n.is_variable]
    return [n for n in variables if id(n) not in aux_ids], [n for n in variables if id(n) in aux_ids]


def _propagate(order: list[Node], known: dict[Entry | tuple[int, int], Any], rule: Callable,
               what: str) -> dict[tuple[int, int], Any]:
    """Run ``rule(op, in_values) -> (in_values, out_values)`` over the graph to a fixed point."""
    values: dict[tuple[int, int], Any] = dict(known)
    for _ in range(len(order) + 1):
        changed = False
        for node in order:
            if node.op is None:
                continue
            keys = [(id(src), idx) for src, idx in node.inputs]
            new_ins, outs = rule(node.op, [values.get(k) for k in keys])
            found = [(k, v, "input", "inferred elsewhere") for k, v in zip(keys, new_ins)]
            found += [((id(node), i), v, "output", "required by its consumers")
                      for i, v in enumerate(outs)]
            for key, new, side, source in found:
                if new is None:
                    continue
                old = values.get(key)
                if old is None:
                    values[key] = new
                    changed = True
                elif _differ(old, new):
                    raise ShapeInferenceError(f"{node.op.op_name} '{node.name}': {side} {what} {new} "
                                              f"contradicts {old} {source}")
        if not changed:
            break
    return values


def _differ(a: Any, b: Any) -> bool:
    if isinstance(a, tuple):
        return tuple(a) != tuple(b)
    return np.dtype(a) != np.dtype(b)


def infer_shapes(order: list[Node], given: dict[str, Shape]) -> dict[tuple[int, int], Shape]:
    """Shapes of every entry, keyed ``(id(node), output_index)``; missing where unknown."""
    known = {}
    for node in order:
        if node.is_variable:
            shape = given.get(node.name)
            if shape is None and "__shape__" in node.attrs:
                from framestream.nn.ops._base import parse_shape

                shape = parse_shape(node.attrs["__shape__"])
                shape = shape if all(shape) else None  # MXNet writes 0 for unknown dims
            if shape is not None:
                known[(id(node), 0)] = tuple(int(d) for d in shape)

    def rule(op: Operator, ins: list) -> tuple[list, list]:
        return op.infer_shape(ins)

    return _propagate(order, known, rule, "shape")


def infer_types(order: list[Node], given: dict[str, Any]) -> dict[tuple[int, int], Any]:
    known = {}
    for node in order:
        if node.is_variable:
            dtype = given.get(node.name) or node.attrs.get("__dtype__")
            if dtype is not None:
                known[(id(node), 0)] = np.dtype(_dtype_of(dtype))

    def rule(op: Operator, ins: list) -> tuple[list, list]:
        new_ins, outs = op.infer_type(ins)
        return ([None if t is None else np.dtype(t) for t in new_ins],
                [None if t is None else np.dtype(t) for t in outs])

    return _propagate(order, known, rule, "dtype")


_MX_DTYPE_CODES = {"0": "float32", "1": "float64", "2": "float16", "3": "uint8", "4": "int32",
                   "5": "int8", "6": "int64"}


def _dtype_of(value: Any) -> Any:
    if isinstance(value, str):
        return _MX_DTYPE_CODES.get(value, value)
    return value
