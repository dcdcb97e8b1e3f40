"""The out-of-core job the memory test runs in a child process: ingest, transform,
statistics, filter, save and reopen. Prints one JSON line of results."""

from __future__ import annotations

import json
import sys
import time


def main(csv_path: str, out_path: str) -> None:
    import framestream as fs

    t0 = time.perf_counter()
    sf = fs.SFrame.read_csv(csv_path, verbose=False)
    t_ingest = time.perf_counter() - t0
    sf["score"] = (sf["x0"] - sf["x0"].mean()) / sf["x0"].std()
    stats = sf.summary(["score", "x1"])
    big = sf[sf["score"] > 1.0]
    big.save(out_path, overwrite=True)
    reopened = fs.SFrame(out_path)
    print(json.dumps({
        "rows": sf.num_rows(),
        "kept": reopened.num_rows(),
        "score_mean": stats["score"]["mean"],
        "score_std": stats["score"]["std"],
        "x1_max": stats["x1"]["max"],
        "kept_min_score": reopened["score"].min(),
        "ingest_s": t_ingest,
        "total_s": time.perf_counter() - t0,
    }))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
