"""The out-of-core workload, run in its own process so its memory can be measured.

Usage: ``_ooc_child.py CSV OUT_STORE RESULT_JSON``. read_csv, a column transform,
mean/std in one pass, a filter and a save; stage start/end times (epoch seconds) and
results go to RESULT_JSON.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

from _util import setup_env

C, S, T = 0.5, 0.2887, 0.5


def main(csv: str, out: str, result_path: str) -> None:
    started = time.time()
    setup_env()
    import framestream as fs

    stages: list[dict[str, Any]] = []

    def stage(name: str, t0: float) -> None:
        stages.append({"stage": name, "start": t0, "end": time.time()})

    work = time.time()
    t0 = time.time()
    sf = fs.SFrame.read_csv(csv, verbose=False)
    rows = sf.num_rows()
    stage("read_csv", t0)
    sf["x2"] = (sf["x"] - C) / S
    t0 = time.time()
    stats = sf.summary(["x2", "y"])
    stage("summary(mean/std)", t0)
    t0 = time.time()
    kept = sf[sf["x2"] > T]
    kept_rows = kept.num_rows()
    stage("filter count", t0)
    t0 = time.time()
    kept.save(out, overwrite=True)
    stage("save filtered", t0)
    done = time.time()
    result = {"rows": rows, "kept_rows": kept_rows, "process_start": started, "work_start": work, "work_end": done,
              "stages": stages, "stats": {c: {k: stats[c][k] for k in ("mean", "std")} for c in stats}}
    with open(result_path, "w") as f:
        json.dump(result, f)


if __name__ == "__main__":
    main(*sys.argv[1:4])
