"""Shared helpers for the benchmarks: paths, thread settings, timing, machine info."""

from __future__ import annotations

import os
import platform
import shutil
import statistics
import time
from collections.abc import Callable
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
RESULTS = BENCH / "results"
TMP = RESULTS / "tmp"
THREADS = 2
MB = 1e6


def setup_env() -> Path:
    """Point FRAMESTREAM_HOME at bench/results/tmp and pin every engine to ``THREADS`` threads."""
    TMP.mkdir(parents=True, exist_ok=True)
    os.environ["FRAMESTREAM_HOME"] = str(TMP / "home")
    import dask
    import pyarrow as pa

    dask.config.set(scheduler="threads", num_workers=THREADS)
    pa.set_cpu_count(THREADS)
    return TMP


def clear_cache() -> None:
    """Remove the ingest caches framestream left under FRAMESTREAM_HOME (ours alone)."""
    shutil.rmtree(TMP / "home" / "cache", ignore_errors=True)


def dir_bytes(path: str | os.PathLike) -> int:
    """Total size of the files under ``path`` (or of the file itself)."""
    p = Path(path)
    if p.is_file():
        return p.stat().st_size
    return sum(f.stat().st_size for f in p.rglob("*") if f.is_file())


def remove(path: str | os.PathLike) -> None:
    p = Path(path)
    if p.is_dir():
        shutil.rmtree(p, ignore_errors=True)
    elif p.exists():
        p.unlink()


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    """Seconds taken by ``fn()`` and its result."""
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def summarize_times(times: list[float], nbytes: float) -> dict[str, Any]:
    """Median seconds, MB/s at the median, and every repetition."""
    med = statistics.median(times)
    return {"median_s": round(med, 4), "mb_per_s": round(nbytes / MB / med, 1),
            "min_s": round(min(times), 4), "times_s": [round(t, 4) for t in times]}


def warm_file(path: str | os.PathLike) -> None:
    """Read a file once so every engine starts with it in the page cache."""
    with open(path, "rb") as f:
        while f.read(64 << 20):
            pass


class ForeignLoad:
    """CPU time used by other processes while a benchmark runs (they distort timings)."""

    def __init__(self) -> None:
        import psutil

        self._me = psutil.Process()
        self._t0 = time.perf_counter()
        self._busy0, self._own0 = self._busy(), self._own()

    @staticmethod
    def _busy() -> float:
        import psutil

        t = psutil.cpu_times()
        return sum(t) - t.idle - getattr(t, "iowait", 0.0) - getattr(t, "steal", 0.0) - getattr(t, "guest", 0.0)

    def _own(self) -> float:
        t = self._me.cpu_times()
        return t.user + t.system + t.children_user + t.children_system

    def result(self) -> dict[str, float]:
        """Seconds of CPU others used, and that as a share of all cores over the interval."""
        wall = time.perf_counter() - self._t0
        foreign = max(0.0, (self._busy() - self._busy0) - (self._own() - self._own0))
        return {"foreign_cpu_s": round(foreign, 1), "foreign_cpu_share": round(foreign / (wall * (os.cpu_count() or 1)), 3)}


def wait_for_quiet(max_wait_s: float = 120.0, threshold: float = 15.0) -> float:
    """Wait (up to ``max_wait_s``) until system CPU use is under ``threshold`` percent."""
    import psutil

    t0 = time.perf_counter()
    while time.perf_counter() - t0 < max_wait_s and psutil.cpu_percent(interval=2.0) > threshold:
        pass
    return time.perf_counter() - t0


def _git_head() -> str:
    """The commit benchmarked, with '+dirty' when library files differ from it."""
    import subprocess

    root = BENCH.parent
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True,
                              text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", ".", ":!bench"], cwd=root,
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("+dirty" if dirty else "")


def machine_info() -> dict[str, Any]:
    """CPU model, cores, RAM, Python and library versions, date."""
    import psutil

    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions = {}
    for dist in ("framestream", "numpy", "pandas", "pyarrow", "dask", "zarr", "numcodecs", "psutil"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = None
    return {"cpu": cpu, "git": _git_head(), "logical_cores": os.cpu_count(), "ram_gb": round(psutil.virtual_memory().total / 2**30, 1),
            "python": platform.python_version(), "platform": platform.platform(), "versions": versions,
            "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "threads": THREADS}
