"""Shared helpers for the benchmarks: paths, thread settings, peer virtualenvs, timing, machine info.

Only the standard library is imported at module level: the peer scripts (run inside
bench/.venv-torch and bench/.venv-mxnet) import this module too.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
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
TORCH_VENV = BENCH / ".venv-torch"
MXNET_VENV = BENCH / ".venv-mxnet"


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


def venv_python(venv: Path, packages: list[str]) -> Path:
    """The python of a side virtualenv holding ``packages``, made once (peers whose
    dependencies clash with the project's, e.g. MXNet's numpy<1.24)."""
    py = venv / "bin" / "python"
    if not py.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(py), "-m", "pip", "install", "-q", *packages], check=True)
    return py


def torch_python() -> Path:
    """bench/.venv-torch: torch 2.13.0 CPU (installs from the local wheel)."""
    return venv_python(TORCH_VENV, ["torch==2.13.0", "numpy", "pillow"])


def mxnet_python() -> Path:
    """bench/.venv-mxnet: Apache MXNet 1.9.1, which needs numpy < 1.24."""
    return venv_python(MXNET_VENV, ["mxnet==1.9.1", "numpy==1.23.5"])


def thread_env(threads: int = THREADS) -> dict[str, str]:
    """The environment for a peer subprocess: every thread pool (OpenMP, BLAS, numba, MXNet's
    operator pool) pinned to ``threads``. MXNet's engine keeps its one CPU worker
    (``MXNET_CPU_WORKER_NTHREADS=1``, its default): each worker runs ops with OMP threads, so
    more workers would mean workers x ``threads`` threads (measured slower here)."""
    n = str(threads)
    return {**os.environ, "OMP_NUM_THREADS": n, "OPENBLAS_NUM_THREADS": n, "MKL_NUM_THREADS": n,
            "NUMBA_NUM_THREADS": n, "MXNET_CPU_WORKER_NTHREADS": "1", "MXNET_OMP_MAX_THREADS": n,
            "PYTHONWARNINGS": "ignore"}


def run_json(cmd: list[str], env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run a benchmark script; its last stdout line is a JSON object (stderr shown on failure)."""
    out = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if out.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({out.returncode}):\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def interleaved(commands: dict[str, list[str]], reps: int, env: dict[str, str] | None = None,
                quiet_wait_s: float = 20.0) -> dict[str, list[dict]]:
    """Every command ``reps`` times in turn (a, b, c, a, b, c, ...) so drift hits all alike.

    Each round first waits (up to ``quiet_wait_s``) for the CPUs to calm down; each run's
    JSON gets ``foreign_share``, other processes' share of the CPUs while it ran."""
    runs: dict[str, list[dict]] = {name: [] for name in commands}
    for _ in range(reps):
        wait_for_quiet(max_wait_s=quiet_wait_s)
        for name, cmd in commands.items():
            out, share = with_foreign_share(lambda cmd=cmd: run_json(cmd, env))
            runs[name].append({**out, "foreign_share": share})
    return runs


def with_foreign_share(fn: Callable[[], Any]) -> tuple[Any, float]:
    """``fn()``'s result and other processes' share of all CPUs while it ran (0-1)."""
    load = ForeignLoad()
    out = fn()
    return out, load.result()["foreign_cpu_share"]


def noisy_warning(res: dict[str, Any], limit: float = 0.2) -> list[str]:
    """Markdown lines warning that other processes took over ``limit`` of the CPUs in some
    repetition (``res["foreign_share"]``: lists by engine); empty when the run was quiet."""
    worst = max((v for vs in res.get("foreign_share", {}).values() for v in vs), default=0.0)
    if worst <= limit:
        return []
    return [f"**Noisy run**: other processes used up to {100 * worst:.0f}% of the CPUs during a repetition; "
            "rerun on an idle machine before trusting these ratios.", ""]


def shares(values: list[float]) -> str:
    """Foreign CPU shares as percentages, for the markdown."""
    return " ".join(f"{100 * v:.0f}%" for v in values)


def time_steps(step: Callable[[], Any], steps: int, warmup: int, sync: Callable[[], Any] = lambda: None,
               blocks: int = 5) -> float:
    """Seconds per call of ``step``: ``warmup`` untimed calls, then ``steps`` calls timed in
    ``blocks`` blocks, the median block kept (a burst of load from other processes spoils a
    block, not the figure). ``sync()`` (waiting for an asynchronous engine) ends every block."""
    for _ in range(warmup):
        step()
    sync()
    per_block = max(1, steps // blocks)
    times = []
    for _ in range(blocks):
        t0 = time.perf_counter()
        for _ in range(per_block):
            step()
        sync()
        times.append((time.perf_counter() - t0) / per_block)
    return statistics.median(times)


def warm_pass_ms(fn: Callable[[], Any]) -> float:
    """Milliseconds of one ``fn()`` after an untimed one (binding and first-call work)."""
    fn()
    t0 = time.perf_counter()
    fn()
    return 1e3 * (time.perf_counter() - t0)


def fixed_batch(batch: int, seed: int = 0) -> tuple[Any, Any]:
    """Random (batch, 1, 28, 28) float32 images and int64 labels 0-9, the same in every engine."""
    import numpy as np

    rng = np.random.default_rng(seed)
    return rng.standard_normal((batch, 1, 28, 28), dtype=np.float32), rng.integers(0, 10, batch)


def median(values: list[float]) -> float:
    return statistics.median(values)


def speed_ratios(ours: float, peers: dict[str, float]) -> dict[str, Any]:
    """Peer time / our time for each peer and the fastest one (>1: framestream is faster)."""
    fastest = min(peers, key=peers.__getitem__)
    return {**{f"vs_{k}": round(v / ours, 3) for k, v in peers.items()},
            "fastest_peer": fastest, "vs_fastest": round(peers[fastest] / ours, 3)}


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
