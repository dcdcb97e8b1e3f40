"""``mx.viz.print_summary``: a table of layers, output shapes and parameter counts."""

from __future__ import annotations

import math
from typing import Any

from framestream.nn import _graph


def summary_rows(symbol: Any, shape: dict[str, tuple] | None = None) -> list[tuple[str, str, str, int, str]]:
    """(layer name, op, output shape, parameter count, inputs) for every operator node."""
    order = _graph.topo_order(symbol._outputs)
    shapes = _graph.infer_shapes(order, {k: tuple(v) for k, v in (shape or {}).items()})
    arg_nodes, _ = _graph.variable_roles(order)  # aux states are not counted, as in MXNet
    params = {id(n) for n in arg_nodes if n.name not in (shape or {})}
    rows = []
    for node in order:
        if node.is_variable:
            if shape and node.name in shape:
                rows.append((node.name, "Variable", str(tuple(shape[node.name])), 0, ""))
            continue
        count = 0
        for src, _ in node.inputs:
            if src.is_variable and id(src) in params and not src.name.endswith("label"):
                s = shapes.get((id(src), 0))
                count += math.prod(s) if s else 0
        out = shapes.get((id(node), 0))
        inputs = ", ".join(src.name for src, _ in node.inputs if not src.is_variable or
                           (shape and src.name in shape))
        rows.append((node.name, node.op.op_name, str(out) if out else "?", count, inputs))
    return rows


def print_summary(symbol: Any, shape: dict[str, tuple] | None = None, line_length: int = 120,
                  positions: tuple[float, ...] = (0.44, 0.64, 0.74, 1.0)) -> str:
    """Print (and return) the summary; ``shape`` gives input shapes, e.g. ``{'data': (1, 3, 28, 28)}``."""
    cols = [int(line_length * p) for p in positions]
    header = ("Layer (type)", "Output Shape", "Param #", "Previous Layer")

    def line(fields: tuple) -> str:
        text = ""
        for field, end in zip(fields, cols):
            text = (text + str(field))[:end].ljust(end)
        return text.rstrip()

    rows = summary_rows(symbol, shape)
    out = ["_" * line_length, line(header), "=" * line_length]
    total = 0
    for i, (name, op, out_shape, count, inputs) in enumerate(rows):
        out.append(line((f"{name}({op})", out_shape, count, inputs)))
        out.append(("=" if i == len(rows) - 1 else "_") * line_length)
        total += count
    out.append(f"Total params: {total}")
    out.append("_" * line_length)
    text = "\n".join(out)
    print(text)
    return text
