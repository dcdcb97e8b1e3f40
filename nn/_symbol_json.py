"""Symbol JSON in all three MXNet generations (reading) and the 1.x form (writing).

1. Legacy / GraphLab era (MXNet <= 0.8): nodes carry ``param`` (every parameter, defaults
   included) and optional ``attr``; inputs are ``[node, index]``; aux states are not nodes.
   Pooling then rounded output sizes up, so a legacy Pooling node loads as
   ``pooling_convention='full'`` (MXNet 1.x's upgrader forgets this and mis-sizes the models).
2. 0.9-0.12 (NNVM): nodes carry ``attr`` (parameters and attributes together); inputs are
   ``[node, index, version]``; aux states are ``null`` nodes; ``attrs.mxnet_version``.
3. 1.x: as 2, but the per-node key is ``attrs``. We write this one, as MXNet 1.9.1 does.
"""

from __future__ import annotations

import json
import os
from typing import Any

from framestream.errors import NNError, SymbolFileError, UnknownOperatorError
from framestream.nn import attribute
from framestream.nn._graph import Node, topo_order
from framestream.nn.ops import lookup

MXNET_VERSION = 10901


def dumps(symbol: Any) -> str:
    order = topo_order(symbol._outputs)
    index = {id(n): i for i, n in enumerate(order)}
    nodes, row_ptr = [], [0]
    for node in order:
        entry: dict[str, Any] = {"op": node.op.op_name if node.op else "null", "name": node.name}
        attrs = dict(node.op.param_strings()) if node.op else {}
        attrs.update(node.attrs)
        if attrs:
            entry["attrs"] = dict(sorted(attrs.items()))
        entry["inputs"] = [[index[id(src)], idx, 0] for src, idx in node.inputs]
        nodes.append(entry)
        row_ptr.append(row_ptr[-1] + len(node.output_names()))
    graph = {
        "nodes": nodes,
        "arg_nodes": [i for i, n in enumerate(order) if n.is_variable],
        "node_row_ptr": row_ptr,
        "heads": [[index[id(n)], idx, 0] for n, idx in symbol._outputs],
        "attrs": {"mxnet_version": ["int", MXNET_VERSION]},
    }
    return json.dumps(graph, indent=2)


def load(fname: str | os.PathLike) -> Any:
    path = os.fspath(fname)
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as exc:
        raise SymbolFileError(f"{path}: cannot read symbol file ({exc.strerror})") from None
    return loads(text, where=path)


def loads(text: str, where: str = "<json>") -> Any:
    from framestream.nn.symbol import Symbol

    try:
        graph = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SymbolFileError(f"{where}: not valid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from None
    if not isinstance(graph, dict) or not isinstance(graph.get("nodes"), list) or "heads" not in graph:
        raise SymbolFileError(f"{where}: not an MXNet symbol file (no 'nodes' and 'heads')")
    legacy = "mxnet_version" not in graph.get("attrs", {}) and any("param" in n for n in graph["nodes"])
    built: list[Node] = []
    for i, raw in enumerate(graph["nodes"]):
        built.append(_node(raw, i, built, legacy, where))
    try:
        heads = [(built[h[0]], int(h[1])) for h in graph["heads"]]
    except (IndexError, TypeError, ValueError):
        raise SymbolFileError(f"{where}: bad 'heads' entry {graph['heads']!r}") from None
    for node, idx in heads:
        if idx >= len(node.output_names()):
            raise SymbolFileError(f"{where}: head refers to output {idx} of '{node.name}', "
                                  f"which has {len(node.output_names())}")
    symbol = Symbol(heads)
    topo_order(heads)  # every node reachable is well formed
    return symbol


def _node(raw: dict, i: int, built: list[Node], legacy: bool, where: str) -> Node:
    try:
        op_name, name = raw["op"], raw["name"]
    except (KeyError, TypeError):
        raise SymbolFileError(f"{where}: node {i} has no 'op' or 'name'") from None
    if legacy:
        params, attrs = dict(raw.get("param") or {}), dict(raw.get("attr") or {})
    else:
        params, attrs = {}, dict(raw.get("attrs") or raw.get("attr") or {})
    if op_name == "null":
        attrs.update(params)
        return Node(None, name, attrs=attrs)
    cls = lookup(op_name)
    if cls is None:
        raise UnknownOperatorError(f"{where}: node {i} '{name}' uses operator {op_name!r}, "
                                   "which framestream does not implement")
    declared = {p.name for p in cls.params}
    if not legacy:
        params = {k: v for k, v in attrs.items() if k in declared or not _is_attr(k)}
        attrs = {k: v for k, v in attrs.items() if k not in params}
    if legacy and op_name == "Pooling" and "pooling_convention" not in params:
        params["pooling_convention"] = "full"
    try:
        op = cls(node=name, **params)
    except NNError as exc:
        raise SymbolFileError(f"{where}: node {i}: {exc}") from None
    inputs = []
    for entry in raw.get("inputs", []):
        src, idx = int(entry[0]), int(entry[1])
        if not 0 <= src < i:
            raise SymbolFileError(f"{where}: node {i} '{name}' has input node {src}, which is not before it")
        inputs.append((built[src], idx))
    n_args, n_all = len(op.arguments()), len(op.inputs())
    if legacy and len(inputs) == n_args and n_all > n_args:
        inputs += [(Node(None, f"{name}_{aux}"), 0) for aux in op.aux_states()]
    if len(inputs) != n_all:
        raise SymbolFileError(f"{where}: node {i} '{name}' ({op_name}) has {len(inputs)} inputs, "
                              f"expected {n_all} ({', '.join(op.inputs())})")
    return Node(op, name, inputs, attrs)


def _is_attr(key: str) -> bool:
    return key.startswith("__") or key in attribute.HIDDEN_KEYS
