"""Write a large CSV quickly, in row blocks, from seeded random numbers."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv


def write_csv(path: str, target_bytes: int, seed: int = 0, block_rows: int = 200_000) -> int:
    """Columns id, x0..x3 (floats), cat (int), name (str); returns the rows written."""
    rng = np.random.default_rng(seed)
    rows = 0
    with pacsv.CSVWriter(path, _schema()) as writer, open(path, "rb") as probe:
        while True:
            ids = np.arange(rows, rows + block_rows, dtype=np.int64)
            table = pa.table({
                "id": ids,
                **{f"x{i}": np.round(rng.normal(size=block_rows), 6) for i in range(4)},
                "cat": rng.integers(0, 100, block_rows),
                "name": pa.array([f"item{i % 9973}" for i in ids]),
            })
            writer.write_table(table)
            rows += block_rows
            probe.seek(0, 2)
            if probe.tell() >= target_bytes:
                return rows


def _schema() -> pa.Schema:
    return pa.schema([("id", pa.int64())] + [(f"x{i}", pa.float64()) for i in range(4)]
                     + [("cat", pa.int64()), ("name", pa.string())])
