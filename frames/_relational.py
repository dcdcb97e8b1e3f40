"""Out-of-core sort and join: partition to disk by key, then finish each partition in pandas.

Both run in two passes over the data. Pass one reads each row chunk once and splits it
into buckets (by key range for a sort, by key hash for a join), pickled back to back
into one spill file per chunk. Pass two gathers one bucket from every spill file,
sorts or joins it in pandas and writes it as one part of the result. Memory holds a
few chunks or buckets at a time, never the whole frame.
"""

from __future__ import annotations

import pickle
import shutil
from collections.abc import Callable
from typing import Any

import dask
import numpy as np
import pandas as pd

from framestream.errors import SchemaError
from framestream.frames._config import new_cache_path
from framestream.frames._io import block_to_pandas, frame_from_parts, write_pandas_part
from framestream.frames._lazy_store import specs_of
from framestream.frames._store import ColumnSpec
from framestream.frames.sframe import frame_blocks

_SAMPLE_PER_CHUNK = 512


def _spill(names, logicals, block, bucket_of: Callable[[pd.DataFrame], np.ndarray], nbuckets: int, path: str) -> list[int]:
    """Pass one: split a chunk into buckets, pickled one after another; returns byte offsets."""
    df = block_to_pandas(names, logicals, block)
    ids = bucket_of(df)
    offsets = [0]
    with open(path, "wb") as f:
        for b in range(nbuckets):
            pickle.dump(df[ids == b], f, protocol=pickle.HIGHEST_PROTOCOL)
            offsets.append(f.tell())
    return offsets


def _gather(paths: list[str], offsets: list[list[int]], bucket: int) -> pd.DataFrame:
    pieces = []
    for path, offs in zip(paths, offsets):
        with open(path, "rb") as f:
            f.seek(offs[bucket])
            pieces.append(pickle.load(f))
    return pd.concat(pieces, ignore_index=True) if pieces else pd.DataFrame()


def _partitioned(sides: list[tuple[Any, Callable]], nbuckets: int, finish: Callable,
                 specs: list[ColumnSpec]) -> Any:
    """Run both passes. ``sides`` holds one (frame, bucket function) for a sort, two for a join."""
    work = new_cache_path("shuffle")
    spill_dir = work / "spill"
    spill_dir.mkdir(parents=True)
    spills = []
    for side, (f, bucket_of) in enumerate(sides):
        names, logicals = f.column_names(), [c._logical for c in f._columns.values()]
        paths = [str(spill_dir / f"{side}-{i:05d}.pkl") for i in range(f._rows.nblocks)]
        tasks = [dask.delayed(_spill)(names, logicals, blk, bucket_of, nbuckets, p)
                 for blk, p in zip(frame_blocks(f), paths)]
        spills.append((paths, list(dask.compute(*tasks))))
    dirs = [work / f"part-{b:05d}" for b in range(nbuckets)]
    tasks = [dask.delayed(_finish_bucket)(spills, b, finish, specs, str(d)) for b, d in enumerate(dirs)]
    dask.compute(*tasks)
    shutil.rmtree(spill_dir, ignore_errors=True)
    return frame_from_parts(dirs)


def _finish_bucket(spills, bucket, finish: Callable[..., pd.DataFrame], specs: list[ColumnSpec],
                   directory: str) -> int:
    frames = [_gather(paths, offsets, bucket) for paths, offsets in spills]
    return write_pandas_part(finish(*frames), specs, directory)


# ------------------------------------------------------------------------------------ sort


def sort_frame(frame: Any, key_column_names: Any, ascending: bool = True) -> Any:
    keys, orders = _sort_keys(key_column_names, ascending)
    for k in keys:
        col = frame._column(k)
        if col._logical.name not in ("int", "float", "str"):
            raise SchemaError(f"sort key {k!r} is a {col._logical.name} column; sort keys must be int, float or str")
    if frame.num_rows() == 0:
        return frame.copy()
    boundaries = _boundaries(frame, keys[0], max(1, frame._rows.nblocks))
    nbuckets = len(boundaries) + 2  # ranges, plus one bucket for missing first keys

    def bucket_of(df: pd.DataFrame) -> np.ndarray:
        key = df[keys[0]]
        missing = key.isna().to_numpy()
        values = key.to_numpy(dtype=object if key.dtype == object else "float64", na_value=None if key.dtype == object else np.nan)
        ids = np.full(len(df), nbuckets - 1)
        present = ~missing
        if present.any():
            found = np.searchsorted(boundaries, values[present], side="right")
            ids[present] = found if orders[0] else (nbuckets - 2) - found
        return ids

    def finish(df: pd.DataFrame) -> pd.DataFrame:
        return df.sort_values(keys, ascending=orders, na_position="last", kind="stable") if len(df) else df

    return _partitioned([(frame, bucket_of)], nbuckets, finish, specs_of(frame))


def _sort_keys(key_column_names: Any, ascending: bool) -> tuple[list[str], list[bool]]:
    if isinstance(key_column_names, str):
        return [key_column_names], [bool(ascending)]
    keys, orders = [], []
    for item in key_column_names:
        if isinstance(item, tuple):
            keys.append(item[0])
            orders.append(bool(item[1]))
        else:
            keys.append(item)
            orders.append(bool(ascending))
    return keys, orders


def _boundaries(frame: Any, key: str, nparts: int) -> np.ndarray:
    """Range boundaries for ``nparts`` buckets from a sample of every chunk's keys."""
    col = frame._column(key)
    samples = [dask.delayed(_sample_block)(d, v) for d, v in col.delayed_blocks()]
    sample = np.concatenate(dask.compute(*samples)) if samples else np.array([])
    if len(sample) == 0 or nparts <= 1:
        return np.array([], dtype=sample.dtype)
    sample = np.sort(sample)
    picks = np.linspace(0, len(sample) - 1, nparts + 1)[1:-1].astype(int)
    return np.unique(sample[picks])


def _sample_block(data: np.ndarray, valid: np.ndarray | None) -> np.ndarray:
    values = data if valid is None else data[valid]
    if len(values) <= _SAMPLE_PER_CHUNK:
        return values
    idx = np.random.default_rng(len(values)).choice(len(values), _SAMPLE_PER_CHUNK, replace=False)
    return values[idx]


# ------------------------------------------------------------------------------------ join


def join_frames(left: Any, right: Any, on: Any = None, how: str = "inner") -> Any:
    how = {"outer": "outer", "inner": "inner", "left": "left", "right": "right"}.get(how)
    if how is None:
        raise ValueError("how must be 'inner', 'left', 'right' or 'outer'")
    if on is None:
        on = [c for c in left.column_names() if c in right.column_names()]
        if not on:
            raise SchemaError("join: the frames share no column name; pass on=")
    pairs = {on: on} if isinstance(on, str) else ({k: k for k in on} if isinstance(on, list | tuple) else dict(on))
    for lk, rk in pairs.items():
        lt, rt = left._column(lk)._logical, right._column(rk)._logical
        if lt is not rt:
            raise SchemaError(f"join key {lk!r} is {lt.name} on the left but {rk!r} is {rt.name} on the right")
        if lt.name not in ("int", "float", "str"):
            raise SchemaError(f"join key {lk!r} is a {lt.name} column; keys must be int, float or str")
    lkeys, rkeys = list(pairs), list(pairs.values())
    rename = {}
    for c in right.column_names():
        if c in rkeys:
            continue
        new = c
        while new in left.column_names() or new in rename.values():
            new = f"{new}.1"
        rename[c] = new
    specs = specs_of(left)
    for c, new in rename.items():
        s = specs_of(right[[c]])[0]
        specs.append(ColumnSpec(new, s.logical, f"c{len(specs)}", s.width, s.dtype))
    nbuckets = max(1, max(left._rows.nblocks, right._rows.nblocks))

    def finish(ldf: pd.DataFrame, rdf: pd.DataFrame) -> pd.DataFrame:
        rdf = rdf.rename(columns=rename)
        merged = ldf.merge(rdf, left_on=lkeys, right_on=rkeys, how=how, suffixes=("", ".1"))
        for lk, rk in zip(lkeys, rkeys):
            if rk != lk and rk in merged.columns:
                merged[lk] = merged[lk].where(merged[lk].notna(), merged[rk])
                merged = merged.drop(columns=[rk])
        return merged[[s.name for s in specs]]

    return _partitioned([(left, _hash_bucket(lkeys, nbuckets)), (right, _hash_bucket(rkeys, nbuckets))],
                        nbuckets, finish, specs)


def _hash_bucket(keys: list[str], nbuckets: int) -> Callable[[pd.DataFrame], np.ndarray]:
    def bucket_of(df: pd.DataFrame) -> np.ndarray:
        if len(df) == 0:
            return np.zeros(0, dtype=np.int64)
        # numbers hash as float64 so that int64, nullable Int64 and float keys agree; a
        # collision only puts two keys in one bucket, where the merge still compares them
        keyframe = pd.DataFrame({i: (df[k].astype("float64") if df[k].dtype.kind in "iuf" or str(df[k].dtype) == "Int64"
                                     else df[k].astype(object)) for i, k in enumerate(keys)})
        return (pd.util.hash_pandas_object(keyframe, index=False).to_numpy() % nbuckets).astype(np.int64)

    return bucket_of
