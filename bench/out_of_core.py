"""Out-of-core check: a CSV far larger than the memory budget, processed in a child process.

The child (``_ooc_child.py``) runs read_csv + a column transform + mean/std + a filter
+ save. ``_watch.py`` samples the RSS of the child and all its descendants every 50 ms with
psutil, and reads ``getrusage(RUSAGE_CHILDREN).ru_maxrss`` after it exits. The
budget is 1 GB (1e9 bytes) on a >= 4 GB CSV, or 400 MB on a 400 MB CSV with ``--quick``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from _util import BENCH, MB, TMP, dir_bytes, remove, setup_env
from gen_csv import csv_rows, ensure_csv

NAME = "out_of_core"
INTERVAL = 0.05


def _watch(cmd: list[str], result: Path) -> dict[str, Any]:
    """Run ``cmd`` under ``_watch.py`` (a small process, see there) and load what it saw."""
    subprocess.run([sys.executable, str(BENCH / "_watch.py"), str(result), str(INTERVAL), "--", *cmd], check=True)
    return json.loads(result.read_text())


def _stage_peaks(stages: list[dict[str, Any]], samples: list[tuple[float, int]]) -> dict[str, float]:
    peaks = {}
    for s in stages:
        inside = [rss for t, rss in samples if s["start"] <= t <= s["end"]]
        peaks[s["stage"]] = round(max(inside) / MB, 1) if inside else None
    return peaks


def run(quick: bool = False) -> dict[str, Any]:
    """Generate (or reuse) the big CSV and measure the child's time and peak memory."""
    setup_env()
    target, budget = (int(400e6), int(400e6)) if quick else (int(4.3e9), int(1e9))
    gen_s = time.perf_counter()
    csv = ensure_csv(TMP / f"ooc_{target // 10**6}mb.csv", target, seed=1)
    gen_s = time.perf_counter() - gen_s
    out, result_path = TMP / "ooc_out.sframe", TMP / "ooc_child.json"
    remove(out)
    remove(result_path)
    seen = _watch([sys.executable, str(BENCH / "_ooc_child.py"), str(csv), str(out), str(result_path)],
                  TMP / "ooc_watch.json")
    rc, wall, start, maxrss = seen["exit_code"], seen["wall_s"], seen["start"], seen["ru_maxrss_children"]
    samples = [(t, r) for t, r in seen["samples"]]
    child = json.loads(result_path.read_text()) if rc == 0 else {}
    peak = max((rss for _, rss in samples), default=0)
    size = csv.stat().st_size
    work = child["work_end"] - child["work_start"] if child else None
    stages = {s["stage"]: round(s["end"] - s["start"], 2) for s in child.get("stages", [])}
    result = {"name": NAME, "quick": quick, "exit_code": rc, "csv_mb": round(size / MB, 1), "csv_rows": csv_rows(csv),
              "csv_generate_s": round(gen_s, 2), "budget_mb": budget / MB, "wall_s": round(wall, 2),
              "work_s": round(work, 2) if work else None, "mb_per_s_wall": round(size / MB / wall, 1),
              "mb_per_s_work": round(size / MB / work, 1) if work else None,
              "peak_rss_mb_sampled": round(peak / MB, 1), "ru_maxrss_children_mb": round(maxrss / MB, 1),
              "watcher_rss_mb": round(seen["watcher_rss_at_spawn"] / MB, 1), "samples": len(samples),
              "stage_s": stages, "stage_peak_rss_mb": _stage_peaks(child.get("stages", []), samples),
              "rss_at_work_start_mb": _rss_at(samples, child.get("work_start")),
              "kept_rows": child.get("kept_rows"), "rows": child.get("rows"),
              "saved_store_mb": round(dir_bytes(out) / MB, 1) if out.exists() else None,
              "timeline_mb": [(round(t - start, 2), round(r / MB)) for t, r in samples[::20]]}
    result["pass"] = rc == 0 and max(peak, maxrss) <= budget and child.get("rows") == csv_rows(csv)
    remove(out)
    return result


def _rss_at(samples: list[tuple[float, int]], when: float | None) -> float | None:
    """RSS when the child finished importing (its baseline before any data)."""
    if when is None:
        return None
    before = [r for t, r in samples if t <= when]
    return round(before[-1] / MB, 1) if before else None


def markdown(res: dict[str, Any]) -> str:
    """The result as a markdown table."""
    peak = max(res["peak_rss_mb_sampled"], res["ru_maxrss_children_mb"])
    lines = [f"CSV: {res['csv_mb']} MB, {res['csv_rows']:,} rows. Child process: read_csv + (x - c) / s + "
             "mean/std (one summary pass) + filter count + save of the filtered frame.", "",
             "| metric | value |", "|---|---|",
             f"| budget | {res['budget_mb']:.0f} MB |",
             f"| peak RSS, psutil every 50 ms (process tree) | {res['peak_rss_mb_sampled']} MB |",
             f"| ru_maxrss (RUSAGE_CHILDREN of a {res['watcher_rss_mb']} MB watcher) | {res['ru_maxrss_children_mb']} MB |",
             f"| RSS after imports, before data | {res['rss_at_work_start_mb']} MB |",
             f"| wall (process start to exit) | {res['wall_s']} s ({res['mb_per_s_wall']} MB/s) |",
             f"| work (after imports) | {res['work_s']} s ({res['mb_per_s_work']} MB/s) |"]
    for stage, secs in res["stage_s"].items():
        lines.append(f"| stage `{stage}` | {secs} s, peak {res['stage_peak_rss_mb'].get(stage)} MB |")
    lines += [f"| rows / kept by filter | {res['rows']:,} / {res['kept_rows']:,} |" if res["rows"] else "| rows | - |",
              f"| result | **{'PASS' if res['pass'] else 'FAIL'}** (peak {peak} MB vs {res['budget_mb']:.0f} MB, "
              f"exit code {res['exit_code']}) |"]
    return "\n".join(lines)


if __name__ == "__main__":
    outcome = run(quick="--quick" in sys.argv)
    print(json.dumps({k: v for k, v in outcome.items() if k != "timeline_mb"}, indent=1))
    print(markdown(outcome))
