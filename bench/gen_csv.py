"""Generate a realistic mixed-type CSV of a given size, streaming, in chunks.

Columns: ``id`` int64, five floats ``x y z w v`` (``w`` has ~1% missing values),
``cat`` an int category 0..99, ``name`` a short string from a vocabulary. Floats are
rounded to 4-6 decimals as real exports usually are. The file is written once and
reused while its size is within 2% of the target (a ``.done`` marker records that the
write finished).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

CHUNK_ROWS = 1 << 20
FLOATS = ("x", "y", "z", "w", "v")
_OPTS = pacsv.WriteOptions(quoting_style="none")


def _vocab(rng: np.random.Generator, n: int = 2000) -> pa.Array:
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    words = ["".join(rng.choice(letters, size=rng.integers(3, 10))) for _ in range(n)]
    return pa.array(words, type=pa.string())


def _chunk(rng: np.random.Generator, start: int, n: int, vocab: pa.Array) -> pa.Table:
    cols: dict[str, pa.Array] = {"id": pa.array(np.arange(start, start + n, dtype=np.int64))}
    cols["x"] = pa.array(np.round(rng.random(n), 6))
    cols["y"] = pa.array(np.round(rng.normal(100.0, 15.0, n), 4))
    cols["z"] = pa.array(np.round(rng.exponential(3.0, n), 5))
    w = np.round(rng.normal(0.0, 1.0, n), 6)
    cols["w"] = pa.array(w, mask=rng.random(n) < 0.01)
    cols["v"] = pa.array(np.round(rng.uniform(-1000.0, 1000.0, n), 3))
    cols["cat"] = pa.array(rng.integers(0, 100, n, dtype=np.int64))
    cols["name"] = pc.take(vocab, pa.array(rng.integers(0, len(vocab), n)))
    return pa.table(cols)


def ensure_csv(path: str | os.PathLike, target_bytes: int, seed: int = 0) -> Path:
    """Write (or reuse) a CSV of about ``target_bytes`` at ``path``; return its path."""
    path = Path(path)
    done = path.with_name(path.name + ".done")
    if path.exists() and done.exists() and abs(path.stat().st_size - target_bytes) <= 0.02 * target_bytes:
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    done.unlink(missing_ok=True)
    rng = np.random.default_rng(seed)
    vocab = _vocab(rng)
    rows = 0
    tmp = path.with_name(path.name + ".partial")
    with pa.OSFile(str(tmp), "wb") as sink:
        writer = None
        while sink.tell() < target_bytes:
            table = _chunk(rng, rows, CHUNK_ROWS, vocab)
            if writer is None:
                writer = pacsv.CSVWriter(sink, table.schema, write_options=_OPTS)
            remaining = target_bytes - sink.tell()
            per_row = max(1.0, sink.tell() / rows) if rows else 80.0
            if remaining < per_row * CHUNK_ROWS:
                table = table.slice(0, max(1, int(remaining / per_row)))
            writer.write_table(table)
            rows += table.num_rows
        if writer is not None:
            writer.close()
    os.replace(tmp, path)
    done.write_text(f"{rows}\n")
    return path


def csv_rows(path: str | os.PathLike) -> int:
    """Row count recorded when the file was generated."""
    p = Path(path)
    return int(p.with_name(p.name + ".done").read_text())


if __name__ == "__main__":
    import sys
    import time

    t0 = time.perf_counter()
    out = ensure_csv(sys.argv[1], int(float(sys.argv[2])))
    secs = time.perf_counter() - t0
    print(f"{out}: {out.stat().st_size / 1e6:.0f} MB, {csv_rows(out)} rows in {secs:.1f}s")
