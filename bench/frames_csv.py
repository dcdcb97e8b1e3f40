"""CSV ingest and a transform + statistics pass: framestream against pandas and dask.

(a) ingest MB/s: framestream ``SFrame.read_csv`` (CSV -> Zarr store) against
pandas (pyarrow and C engines, in memory and then to Parquet), dask.dataframe
``read_csv().to_parquet()`` and pyarrow's CSV reader + Parquet writer.
(b) the pass of ``csv_transform`` on the ingested data: framestream from its saved
store, pandas in memory, dask.dataframe from Parquet. Every engine runs with 2 threads;
repetitions are interleaved (rep by rep, engine by engine) and medians reported.
"""

from __future__ import annotations

import statistics
from typing import Any

import csv_ingest
import csv_transform
from _util import MB, TMP, setup_env, summarize_times, timed, warm_file
from gen_csv import csv_rows, ensure_csv

NAME = "frames_csv"


def _ingest(csv: Any, reps: int) -> dict[str, Any]:
    size = csv.stat().st_size
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in csv_ingest.ENGINES}
    for _ in range(reps):
        for name, engine in csv_ingest.ENGINES.items():
            runs[name].append(engine(csv, TMP / csv_ingest.STORES[name]))
    out: dict[str, Any] = {}
    for name, rs in runs.items():
        disk = summarize_times([r["read"] + r["write"] for r in rs], size)
        out[name] = {"to_disk": disk, "store_mb": round(rs[-1]["store_bytes"] / MB, 1), "rows": rs[-1]["rows"]}
        if any(r["write"] for r in rs):
            out[name]["in_memory"] = summarize_times([r["read"] for r in rs], size)
        if "save_copy" in rs[0]:
            out[name]["save_copy"] = summarize_times([r["save_copy"] for r in rs], size)
    fs_s = out["framestream"]["to_disk"]["median_s"]
    for r in out.values():
        r["framestream_over_peer_speed"] = round(r["to_disk"]["median_s"] / fs_s, 3)
    return out


def _transform(csv: Any, reps: int) -> dict[str, Any]:
    import pandas as pd

    inputs = {"store": TMP / csv_ingest.STORES["framestream"],
              "parquet": TMP / csv_ingest.STORES["dask.dataframe"],
              "memory": pd.read_csv(csv, engine="pyarrow")}
    rows = len(inputs["memory"])
    nbytes = rows * len(csv_transform.READ_COLUMNS) * 8
    times: dict[str, list[float]] = {name: [] for name in csv_transform.ENGINES}
    results: dict[str, Any] = {}
    for _ in range(reps):
        for name, (source, fn) in csv_transform.ENGINES.items():
            secs, results[name] = timed(lambda fn=fn, source=source: fn(inputs[source]))
            times[name].append(secs)
    ref = results["pandas (in memory)"]
    out: dict[str, Any] = {}
    fs_s = statistics.median(times["framestream"])
    for name, ts in times.items():
        out[name] = {**summarize_times(ts, nbytes), "agrees_with_pandas": csv_transform.agree(results[name], ref),
                     "framestream_over_peer_speed": round(statistics.median(ts) / fs_s, 3)}
    out["_reference_result"] = ref
    out["_column_bytes"] = nbytes
    return out


def run(quick: bool = False) -> dict[str, Any]:
    """Generate (or reuse) the CSV, then run (a) and (b)."""
    setup_env()
    target = int(100e6 if quick else 1e9)
    reps = 3 if quick else 5
    gen_s, csv = timed(lambda: ensure_csv(TMP / f"frames_{target // 10**6}mb.csv", target))
    warm_file(csv)
    ingest = _ingest(csv, reps)
    transform = _transform(csv, reps)
    fs_ingest = ingest["framestream"]["to_disk"]["mb_per_s"]
    fs_pass = transform["framestream"]["median_s"]
    dask_pass = transform["dask.dataframe (1 compute)"]["median_s"]
    return {"name": NAME, "quick": quick, "reps": reps, "csv_mb": round(csv.stat().st_size / MB, 1),
            "csv_rows": csv_rows(csv), "csv_generate_s": round(gen_s, 2), "ingest": ingest, "transform": transform,
            "targets": {"ingest_mb_per_s>=100": {"value": fs_ingest, "pass": fs_ingest >= 100},
                        "pass_not_slower_than_dask": {"ratio_fs_over_dask_s": round(fs_pass / dask_pass, 3),
                                                      "pass": fs_pass <= dask_pass}}}


def _row(name: str, r: dict[str, Any], key: str) -> str:
    t = r[key]
    return f"| {name} | {t['median_s']:.3f} | {t['min_s']:.3f} | {t['mb_per_s']:.1f} | {r['framestream_over_peer_speed']:.2f} |"


def markdown(res: dict[str, Any]) -> str:
    """The results as markdown tables."""
    lines = [f"CSV: {res['csv_mb']} MB, {res['csv_rows']:,} rows (id int64, 5 floats with 1% missing in `w`, "
             f"int category, short string); {res['reps']} repetitions, medians; file in page cache.", "",
             "**(a) Ingest** (CSV -> store on disk; speed ratio = peer seconds / framestream seconds, >1 means "
             "framestream is faster)", "", "| engine | median s | best s | MB/s (CSV, median) | speed ratio fs/peer |", "|---|---|---|---|---|"]
    for name, r in res["ingest"].items():
        lines.append(_row(f"{name} -> disk", r, "to_disk"))
    for name, r in res["ingest"].items():
        if "in_memory" in r:
            t = r["in_memory"]
            lines.append(f"| {name} in memory only (reference) | {t['median_s']:.3f} | {t['min_s']:.3f} | {t['mb_per_s']:.1f} | - |")
    fs = res["ingest"]["framestream"]
    lines += ["", "Store sizes (MB): " + ", ".join(f"{n} {r['store_mb']}" for n, r in res["ingest"].items())
              + f". framestream `save()` of the ingested frame to a new path (a store copy): "
              f"{fs['save_copy']['median_s']:.3f} s.", ""]
    tr = {k: v for k, v in res["transform"].items() if not k.startswith("_")}
    lines += ["**(b) Transform + statistics pass** (xs = (x - c) / s; mean/std/min/max of xs, y, w; count xs > t). "
              f"MB/s over the {res['transform']['_column_bytes'] / MB:.0f} MB of float64 input columns.", "",
              "| engine | median s | best s | MB/s | speed ratio fs/peer | agrees with pandas |", "|---|---|---|---|---|---|"]
    for name, r in tr.items():
        lines.append(f"| {name} | {r['median_s']:.3f} | {r['min_s']:.3f} | {r['mb_per_s']:.1f} | "
                     f"{r['framestream_over_peer_speed']:.2f} | {r['agrees_with_pandas']} |")
    t = res["targets"]
    lines += ["", f"Targets: framestream ingest {t['ingest_mb_per_s>=100']['value']} MB/s >= 100: "
              f"**{'PASS' if t['ingest_mb_per_s>=100']['pass'] else 'FAIL'}**; transform pass framestream/dask "
              f"seconds = {t['pass_not_slower_than_dask']['ratio_fs_over_dask_s']} <= 1: "
              f"**{'PASS' if t['pass_not_slower_than_dask']['pass'] else 'FAIL'}**."]
    return "\n".join(lines)


if __name__ == "__main__":
    import json
    import sys

    result = run(quick="--quick" in sys.argv)
    print(json.dumps(result, indent=1))
    print(markdown(result))
