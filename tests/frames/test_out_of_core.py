"""Out of core: a job over a CSV several times larger than its memory budget stays under it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.frames.csvgen import write_csv

BUDGET_BYTES = 400 * 2**20
CSV_BYTES = 3 * BUDGET_BYTES

# Linux folds the RSS of the forked copy of the parent into a child's ru_maxrss, so a
# child forked straight from this (large) pytest process would report pytest's size.
# A small watcher process runs the job and reports its children's peak instead.
WATCHER = """
import json, resource, subprocess, sys
done = subprocess.run(sys.argv[1:], capture_output=True, text=True)
peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
print(json.dumps({"rc": done.returncode, "peak": peak, "out": done.stdout, "err": done.stderr[-3000:]}))
"""


@pytest.fixture(scope="module")
def big_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("ooc") / "big.csv"
    write_csv(str(path), CSV_BYTES)
    return path


def test_ingest_transform_filter_save_stay_under_budget(big_csv: Path, tmp_path: Path) -> None:
    env = dict(os.environ, FRAMESTREAM_HOME=str(tmp_path / "home"),
               FRAMESTREAM_CHUNK_BYTES=str(4 << 20))
    job = Path(__file__).with_name("ooc_job.py")
    watched = subprocess.run([sys.executable, "-c", WATCHER, sys.executable, str(job), str(big_csv),
                              str(tmp_path / "out")], env=env, capture_output=True, text=True, check=True)
    report = json.loads(watched.stdout.strip().splitlines()[-1])
    assert report["rc"] == 0, report["err"]
    peak = report["peak"]
    result = json.loads(report["out"].strip().splitlines()[-1])
    assert big_csv.stat().st_size >= 3 * BUDGET_BYTES
    assert peak < BUDGET_BYTES, f"peak RSS {peak / 2**20:.0f} MiB over the {BUDGET_BYTES / 2**20:.0f} MiB budget"
    # the work was really done: standardised scores, and the filter kept what it should
    assert abs(result["score_mean"]) < 1e-9 and abs(result["score_std"] - 1.0) < 1e-9
    assert 0.14 < result["kept"] / result["rows"] < 0.18  # P(z > 1) = 0.159 for normal data
    assert result["kept_min_score"] > 1.0
