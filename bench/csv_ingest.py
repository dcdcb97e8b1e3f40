"""CSV ingest engines: each reads one CSV and (for the to-disk ones) writes a store.

Every engine takes ``(csv, out)`` and returns a dict of phase timings in seconds:
``read`` (CSV -> memory or, for framestream / dask, CSV -> store), ``write`` (memory
-> store, 0 when the engine streams) and ``store_bytes`` (size written, 0 if none).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _util import TMP, clear_cache, dir_bytes, remove

Engine = Callable[[Path, Path], dict[str, Any]]


def framestream_read_csv(csv: Path, out: Path) -> dict[str, Any]:
    """SFrame.read_csv: streams the CSV into a Zarr store in the cache folder."""
    import framestream as fs

    clear_cache()
    t0 = time.perf_counter()
    sf = fs.SFrame.read_csv(str(csv), verbose=False)
    rows = sf.num_rows()
    read = time.perf_counter() - t0
    store = dir_bytes(TMP / "home" / "cache")
    t0 = time.perf_counter()
    sf.save(str(out), overwrite=True)
    save = time.perf_counter() - t0
    del sf
    clear_cache()
    return {"read": read, "write": 0.0, "store_bytes": store, "rows": rows, "save_copy": save}


def _pandas(engine: str | None) -> Engine:
    def run(csv: Path, out: Path) -> dict[str, Any]:
        import pandas as pd

        kwargs = {"engine": engine} if engine else {}
        t0 = time.perf_counter()
        df = pd.read_csv(csv, **kwargs)
        read = time.perf_counter() - t0
        remove(out)
        t0 = time.perf_counter()
        df.to_parquet(out, index=False)
        write = time.perf_counter() - t0
        return {"read": read, "write": write, "store_bytes": dir_bytes(out), "rows": len(df)}

    run.__doc__ = f"pandas.read_csv(engine={engine or 'c'!r}) then DataFrame.to_parquet."
    return run


def dask_read_csv_to_parquet(csv: Path, out: Path) -> dict[str, Any]:
    """dask.dataframe.read_csv(...).to_parquet(...): blockwise, streaming, threaded."""
    import dask.dataframe as dd

    remove(out)
    t0 = time.perf_counter()
    dd.read_csv(str(csv)).to_parquet(str(out), write_index=False)
    read = time.perf_counter() - t0
    rows = int(dd.read_parquet(str(out), columns=["id"]).shape[0].compute())
    return {"read": read, "write": 0.0, "store_bytes": dir_bytes(out), "rows": rows}


def pyarrow_csv_to_parquet(csv: Path, out: Path) -> dict[str, Any]:
    """pyarrow.csv.read_csv (multithreaded) then pyarrow.parquet.write_table: the floor."""
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    t0 = time.perf_counter()
    table = pacsv.read_csv(csv)
    read = time.perf_counter() - t0
    remove(out)
    t0 = time.perf_counter()
    pq.write_table(table, out)
    write = time.perf_counter() - t0
    return {"read": read, "write": write, "store_bytes": dir_bytes(out), "rows": table.num_rows}


ENGINES: dict[str, Engine] = {
    "framestream": framestream_read_csv,
    "pandas[pyarrow]": _pandas("pyarrow"),
    "pandas[c]": _pandas(None),
    "dask.dataframe": dask_read_csv_to_parquet,
    "pyarrow": pyarrow_csv_to_parquet,
}
STORES = {"framestream": "ingest.sframe", "pandas[pyarrow]": "ingest_pandas_pa.parquet",
          "pandas[c]": "ingest_pandas_c.parquet", "dask.dataframe": "ingest_dask.parquet",
          "pyarrow": "ingest_pyarrow.parquet"}
