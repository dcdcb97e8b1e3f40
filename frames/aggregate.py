"""Aggregators for ``SFrame.groupby`` (Turi's ``graphlab.aggregate``), and groupby itself.

Groupby is chunk / combine / aggregate: each row chunk is reduced to per-group partial
statistics (count, sum, mean, M2, min, max) in pandas, the partial tables are merged,
and the requested aggregates are finished from them. Only the groups are held in
memory, never the rows.

>>> import framestream as fs
>>> from framestream import aggregate as agg
>>> sf = fs.SFrame({'k': ['a', 'b', 'a'], 'x': [1, 2, 3]})
>>> sf.groupby('k', {'n': agg.COUNT(), 'total': agg.SUM('x')}).sort('k')['total'].to_list()
[4, 2]
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import dask
import numpy as np
import pandas as pd

from framestream.errors import SchemaError
from framestream.frames._types import FLOAT, INT


@dataclass(frozen=True)
class Aggregator:
    """One aggregate: its kind and the column it reads (None for COUNT)."""

    kind: str
    column: str | None = None

    def default_name(self) -> str:
        return "Count" if self.column is None else f"{self.kind.lower()} of {self.column}"


def COUNT(*_: Any) -> Aggregator:  # noqa: N802  (Turi's names)
    return Aggregator("COUNT")


def SUM(column: str) -> Aggregator:  # noqa: N802
    return Aggregator("SUM", column)


def MEAN(column: str) -> Aggregator:  # noqa: N802
    return Aggregator("MEAN", column)


def MIN(column: str) -> Aggregator:  # noqa: N802
    return Aggregator("MIN", column)


def MAX(column: str) -> Aggregator:  # noqa: N802
    return Aggregator("MAX", column)


def STD(column: str) -> Aggregator:  # noqa: N802
    return Aggregator("STD", column)


def VAR(column: str) -> Aggregator:  # noqa: N802
    return Aggregator("VAR", column)


AVG = MEAN
STDV = STD
VARIANCE = VAR


def _parse_operations(operations: Any, args: tuple[Any, ...]) -> dict[str, Aggregator]:
    if isinstance(operations, Aggregator):
        operations = [operations, *args]
    if isinstance(operations, list | tuple):
        return {op.default_name(): op for op in operations}
    if isinstance(operations, dict):
        for name, op in operations.items():
            if not isinstance(op, Aggregator):
                raise SchemaError(f"groupby operation {name!r} must be an aggregate such as agg.SUM('x'), got {op!r}")
        return dict(operations)
    raise SchemaError("groupby operations must be a dict {name: aggregate} or a list of aggregates")


def groupby(frame: Any, key_column_names: str | list[str], operations: Any, *args: Any) -> Any:
    from framestream.frames.sframe import SFrame

    keys = [key_column_names] if isinstance(key_column_names, str) else list(key_column_names)
    ops = _parse_operations(operations, args)
    for k in keys:
        col = frame._column(k)
        if col._logical.name not in ("int", "float", "str", "bytes"):
            raise SchemaError(f"groupby key {k!r} is a {col._logical.name} column; keys must be int, float or str")
    values = sorted({op.column for op in ops.values() if op.column is not None})
    for v in values:
        col = frame._column(v)
        if not col._logical.is_numeric:
            kinds = sorted({op.kind for op in ops.values() if op.column == v})
            raise SchemaError(f"aggregates {kinds} need a numeric column; {v!r} is {col._logical.name}")
    sub = frame[keys + [v for v in values if v not in keys]]
    names = sub.column_names()
    logicals = [c._logical for c in sub._columns.values()]
    from framestream.frames.sframe import frame_blocks

    partials = [dask.delayed(_partial)(names, logicals, block, keys, values) for block in frame_blocks(sub)]
    tables = [t for t in dask.compute(*partials) if len(t)]
    merged = _merge(tables, keys, values)
    out = SFrame()
    for k in keys:
        out[k] = _column_values(merged[k], frame._column(k)._logical)
    for name, op in ops.items():
        out[name] = _finish(merged, op, frame)
    return out



def _partial(names, logicals, block, keys, values) -> pd.DataFrame:
    from framestream.frames._io import block_to_pandas

    df = block_to_pandas(names, logicals, block)
    for v in values:  # sums, min and max stay exact in the column's own type; moments in float64
        df[f"{v}__f"] = df[v].astype("float64")
    grouped = df.groupby(keys, dropna=False, sort=False)
    out = grouped.size().rename("__count").to_frame()
    for v in values:
        g = grouped[f"{v}__f"]
        out[f"{v}__n"] = g.count()
        out[f"{v}__sum"] = grouped[v].sum()
        out[f"{v}__mean"] = g.mean()
        out[f"{v}__m2"] = g.var(ddof=0).fillna(0.0) * out[f"{v}__n"]
        out[f"{v}__min"] = grouped[v].min()
        out[f"{v}__max"] = grouped[v].max()
    return out.reset_index()


def _merge(tables: list[pd.DataFrame], keys: list[str], values: list[str]) -> pd.DataFrame:
    if not tables:
        cols = keys + ["__count"] + [f"{v}__{s}" for v in values for s in ("n", "sum", "mean", "m2", "min", "max")]
        return pd.DataFrame({c: [] for c in cols})
    allp = pd.concat(tables, ignore_index=True)
    grouped = allp.groupby(keys, dropna=False, sort=False)
    out = grouped["__count"].sum().to_frame()
    for v in values:
        n = grouped[f"{v}__n"].sum()
        total = grouped[f"{v}__sum"].sum()
        weighted = (allp[f"{v}__mean"].fillna(0.0) * allp[f"{v}__n"]).groupby([allp[k] for k in keys], dropna=False, sort=False).sum()
        mean = weighted / n.where(n > 0)
        out[f"{v}__n"], out[f"{v}__sum"], out[f"{v}__mean"] = n, total, mean
        # M2 of a union: sum of the parts' M2 plus each part's n * (part mean - overall mean)^2
        joined = allp[keys + [f"{v}__n", f"{v}__mean", f"{v}__m2"]].merge(
            mean.rename("__overall").reset_index(), on=keys, how="left")
        joined["__c"] = joined[f"{v}__m2"] + joined[f"{v}__n"] * (joined[f"{v}__mean"] - joined["__overall"]).fillna(0.0) ** 2
        out[f"{v}__m2"] = joined.groupby(keys, dropna=False, sort=False)["__c"].sum()
        out[f"{v}__min"] = grouped[f"{v}__min"].min()
        out[f"{v}__max"] = grouped[f"{v}__max"].max()
    return out.reset_index()


def _column_values(series: pd.Series, logical: Any) -> list[Any]:
    values = series.tolist()
    out = []
    for v in values:
        if v is None or (isinstance(v, float) and np.isnan(v)) or v is pd.NA:
            out.append(None)
        elif logical is INT:
            out.append(int(v))
        else:
            out.append(v)
    return out


def _finish(merged: pd.DataFrame, op: Aggregator, frame: Any) -> Any:
    from framestream.frames.sarray import SArray

    if op.kind == "COUNT":
        return SArray(merged["__count"].astype("int64").to_numpy(), dtype=int)
    v = op.column
    n = merged[f"{v}__n"].to_numpy()
    empty = n == 0
    is_int = frame._column(v)._logical is INT
    if op.kind == "SUM":
        s = merged[f"{v}__sum"].tolist()
        return SArray([int(x) if is_int else float(x) for x in s], dtype=INT if is_int else FLOAT)
    if op.kind in ("MIN", "MAX"):
        x = merged[f"{v}__{op.kind.lower()}"].tolist()
        vals = [None if e else (int(a) if is_int else float(a)) for a, e in zip(x, empty)]
        return SArray(vals, dtype=INT if is_int else FLOAT)
    mean = merged[f"{v}__mean"].to_numpy()
    if op.kind == "MEAN":
        return SArray([None if e else float(m) for m, e in zip(mean, empty)], dtype=FLOAT)
    var = merged[f"{v}__m2"].to_numpy() / np.where(empty, 1, n)
    if op.kind == "VAR":
        return SArray([None if e else float(x) for x, e in zip(var, empty)], dtype=FLOAT)
    return SArray([None if e else float(np.sqrt(x)) for x, e in zip(var, empty)], dtype=FLOAT)
