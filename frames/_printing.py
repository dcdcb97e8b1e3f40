"""Turi-style text tables for SFrames and previews for SArrays (only the head is computed)."""

from __future__ import annotations

from typing import Any


def _cell(value: Any, width: int) -> str:
    if value is None:
        text = "None"
    elif isinstance(value, float):
        text = f"{value:.6g}"
    elif hasattr(value, "tolist") and not isinstance(value, str | bytes):
        text = str([round(v, 4) if isinstance(v, float) else v for v in value.tolist()])
    else:
        text = str(value)
    text = text.replace("\n", " ")
    return text if len(text) <= width else text[: width - 3] + "..."


def format_sframe(sf: Any, num_rows: int = 10, num_columns: int = 40, max_column_width: int = 30,
                  max_row_width: int = 120) -> str:
    names = sf.column_names()
    if not names:
        return "Columns:\n\nRows: 0\n\n[0 rows x 0 columns]"
    head = sf.head(num_rows)
    shown = names[:num_columns]
    types = {n: t.__name__ for n, t in zip(names, sf.column_types())}
    cells = {n: [_cell(v, max_column_width) for v in head[n].to_list()] for n in shown}
    widths = {n: max([len(n), len(types[n]) + 2] + [len(c) for c in cells[n]]) for n in shown}
    # drop columns that do not fit in the row width, like Turi does
    used, fitted = 1, []
    for n in shown:
        if used + widths[n] + 3 > max_row_width and fitted:
            break
        fitted.append(n)
        used += widths[n] + 3
    sep = "+" + "+".join("-" * (widths[n] + 2) for n in fitted) + "+"
    lines = [sep, "| " + " | ".join(n.ljust(widths[n]) for n in fitted) + " |",
             "| " + " | ".join(f"[{types[n]}]".ljust(widths[n]) for n in fitted) + " |", sep]
    for i in range(len(head)):
        lines.append("| " + " | ".join(cells[n][i].ljust(widths[n]) for n in fitted) + " |")
    lines.append(sep)
    total = sf.num_rows()
    hidden = len(names) - len(fitted)
    footer = f"[{total} rows x {len(names)} columns]"
    if total > len(head):
        lines.append("Note: only the head of the SFrame is printed.")
    if hidden:
        lines.append(f"... and {hidden} more columns: {names[len(fitted):]}")
    if not sf.is_materialized():
        lines.append("This SFrame is lazily evaluated; sf.materialize() computes it.")
    lines.append(footer)
    return "\n".join(lines)


def format_sarray(sa: Any, num_rows: int = 10) -> str:
    values = sa._head_values(num_rows)
    total = len(sa)
    body = ", ".join(_cell(v, 40) for v in values)
    more = ", ..." if total > len(values) else ""
    return f"dtype: {sa.dtype.__name__}\nRows: {total}\n[{body}{more}]"
