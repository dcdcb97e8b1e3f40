"""One-pass column statistics: chunk / combine / aggregate.

Each chunk is reduced to a small table of partial statistics (count, missing, sum, mean,
M2, min, max, nnz per component); the tables of all chunks are then merged with Chan's
parallel formula. Several columns' statistics go into one ``dask.compute``, so data
shared between them is read once.
"""

from __future__ import annotations

from typing import Any

import dask
import numpy as np

FIELDS = ("count", "missing", "sum", "mean", "m2", "min", "max", "nnz")


def chunk_stats(data: np.ndarray, valid: np.ndarray | None) -> np.ndarray:
    """Partial statistics of one chunk: a (len(FIELDS), width) float64 table."""
    values = (data.reshape(len(data), -1) if data.ndim > 1 else data.reshape(-1, 1)).astype(np.float64, copy=False)
    if valid is not None:
        values = values[valid]
    n = len(values)
    width = values.shape[1]
    out = np.zeros((len(FIELDS), width))
    out[0] = n
    out[1] = 0 if valid is None else len(valid) - int(valid.sum())
    if n:
        with np.errstate(all="ignore"):
            out[2] = values.sum(axis=0)
            out[3] = out[2] / n
            out[4] = ((values - out[3]) ** 2).sum(axis=0)
            out[5] = values.min(axis=0)
            out[6] = values.max(axis=0)
            out[7] = np.count_nonzero(values, axis=0)
    else:
        out[5], out[6] = np.inf, -np.inf
    return out


def int_stats(data: np.ndarray, valid: np.ndarray | None) -> tuple[int, int | None, int | None]:
    """Exact (sum, min, max) of an int chunk (float64 loses digits past 2**53)."""
    values = data if valid is None else data[valid]
    if not len(values):
        return 0, None, None
    return int(values.sum(dtype=np.int64)), int(values.min()), int(values.max())


def combine(tables: list[np.ndarray]) -> dict[str, np.ndarray]:
    """Merge per-chunk tables into whole-column statistics (Chan et al.)."""
    count = np.zeros(tables[0].shape[1]) if tables else np.zeros(1)
    missing = 0.0
    total = np.zeros_like(count)
    mean = np.zeros_like(count)
    m2 = np.zeros_like(count)
    lo = np.full_like(count, np.inf)
    hi = np.full_like(count, -np.inf)
    nnz = np.zeros_like(count)
    for t in tables:
        n_b = t[0]
        missing += t[1][0]
        if not n_b.any():
            continue
        n = count + n_b
        delta = t[3] - mean
        with np.errstate(all="ignore"):
            mean = np.where(n > 0, mean + delta * n_b / n, 0.0)
            m2 = m2 + t[4] + delta**2 * count * n_b / np.where(n > 0, n, 1)
        count = n
        total = total + t[2]
        lo = np.minimum(lo, t[5])
        hi = np.maximum(hi, t[6])
        nnz = nnz + t[7]
    return {"count": count, "missing": missing, "sum": total, "mean": mean, "m2": m2,
            "min": lo, "max": hi, "nnz": nnz}


def finish(stats: dict[str, np.ndarray], is_int: bool, is_vector: bool,
           exact: tuple[int, int | None, int | None] | None) -> dict[str, Any]:
    """Turn merged statistics into the Python values users get back."""
    count = stats["count"]
    empty = not count.any()

    def out(v, cast=float):
        if is_vector:
            return np.asarray(v, dtype=np.float64)
        return cast(v[0])

    with np.errstate(all="ignore"):
        var = stats["m2"] / count
    result = {
        "count": int(count[0]) if len(count) else 0,
        "num_missing": int(stats["missing"]),
        "nnz": int(stats["nnz"].sum()) if is_vector else int(stats["nnz"][0]),
        "sum": exact[0] if exact is not None else out(stats["sum"]),
        "mean": None if empty else out(stats["mean"]),
        "var": None if empty else out(var),
        "std": None if empty else out(np.sqrt(var)),
        "min": None if empty else exact[1] if exact is not None else out(stats["min"]),
        "max": None if empty else exact[2] if exact is not None else out(stats["max"]),
    }
    return result


def summarize(columns: list[Any]) -> list[dict[str, Any]]:
    """Statistics of several SArrays, all computed in one pass over the data."""
    tasks = []
    for col in columns:
        blocks = col.delayed_blocks()
        tasks.append([dask.delayed(chunk_stats)(d, v) for d, v in blocks])
        if col.dtype is int:
            tasks.append([dask.delayed(int_stats)(d, v) for d, v in blocks])
    computed = list(dask.compute(*tasks))
    results = []
    for col in columns:
        tables = computed.pop(0)
        exact = _merge_int(computed.pop(0)) if col.dtype is int else None
        results.append(finish(combine(tables), col.dtype is int, col._logical.name == "vector", exact))
    return results


def _merge_int(parts: list[tuple[int, int | None, int | None]]) -> tuple[int, int | None, int | None]:
    lows = [p[1] for p in parts if p[1] is not None]
    highs = [p[2] for p in parts if p[2] is not None]
    return sum(p[0] for p in parts), min(lows) if lows else None, max(highs) if highs else None
