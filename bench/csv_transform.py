"""The transform + statistics pass, written the idiomatic way for each engine.

The pass: ``xs = (x - C) / S``; mean, std (ddof=0), min and max of ``xs``, ``y`` and
``w`` (``w`` has missing values); and the number of rows with ``xs > T``. Each engine
returns ``{column: {mean, std, min, max}}`` plus ``count`` so results can be compared.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

C, S, T = 0.5, 0.2887, 0.5
STATS_COLUMNS = ["xs", "y", "w"]
READ_COLUMNS = ["x", "y", "w"]
Result = dict[str, Any]


def framestream_pass(store: Path) -> Result:
    """From the saved Zarr store: lazy column, one-pass summary, then a filtered count."""
    import framestream as fs

    sf = fs.SFrame(str(store))
    sf["xs"] = (sf["x"] - C) / S
    stats = sf.summary(STATS_COLUMNS)
    count = sf[sf["xs"] > T].num_rows()
    out = {c: {k: stats[c][k] for k in ("mean", "std", "min", "max")} for c in STATS_COLUMNS}
    return {**out, "count": int(count)}


def _frame_result(mean: Any, std: Any, lo: Any, hi: Any, count: Any) -> Result:
    out = {c: {"mean": float(mean[c]), "std": float(std[c]), "min": float(lo[c]), "max": float(hi[c])}
           for c in STATS_COLUMNS}
    return {**out, "count": int(count)}


def pandas_pass(df: Any) -> Result:
    """In memory (the frame is loaded before timing starts)."""
    df = df[READ_COLUMNS].copy(deep=False)
    df["xs"] = (df["x"] - C) / S
    sub = df[STATS_COLUMNS]
    return _frame_result(sub.mean(), sub.std(ddof=0), sub.min(), sub.max(), (df["xs"] > T).sum())


def _dask_frame(store: Path) -> tuple[Any, Any]:
    import dask.dataframe as dd

    ddf = dd.read_parquet(str(store), columns=READ_COLUMNS)
    ddf["xs"] = (ddf["x"] - C) / S
    return ddf, ddf[STATS_COLUMNS]


def dask_one_compute(store: Path) -> Result:
    """From Parquet on disk, everything in one dask.compute (one read of the data)."""
    import dask

    ddf, sub = _dask_frame(store)
    return _frame_result(*dask.compute(sub.mean(), sub.std(ddof=0), sub.min(), sub.max(), (ddf["xs"] > T).sum()))


def dask_two_computes(store: Path) -> Result:
    """From Parquet on disk, statistics then the count: two passes, as framestream's API does."""
    import dask

    ddf, sub = _dask_frame(store)
    mean, std, lo, hi = dask.compute(sub.mean(), sub.std(ddof=0), sub.min(), sub.max())
    return _frame_result(mean, std, lo, hi, (ddf["xs"] > T).sum().compute())


def agree(a: Result, b: Result, rtol: float = 1e-9) -> bool:
    """Same count, and every statistic equal within ``rtol``."""
    if a["count"] != b["count"]:
        return False
    for c in STATS_COLUMNS:
        for k, va in a[c].items():
            vb = b[c][k]
            if abs(va - vb) > rtol * max(1.0, abs(va), abs(vb)):
                return False
    return True


ENGINES: dict[str, tuple[str, Callable[[Any], Result]]] = {
    "framestream": ("store", framestream_pass),
    "pandas (in memory)": ("memory", pandas_pass),
    "dask.dataframe (1 compute)": ("parquet", dask_one_compute),
    "dask.dataframe (2 computes)": ("parquet", dask_two_computes),
}
