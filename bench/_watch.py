"""Run a command and record its memory: a small process of its own, on purpose.

Usage: ``_watch.py RESULT_JSON INTERVAL_S -- CMD...``. Samples the RSS of the command
and all its descendants every INTERVAL_S with psutil, then reads
``getrusage(RUSAGE_CHILDREN).ru_maxrss``. It runs apart from the benchmark runner
because on Linux a child's ru_maxrss starts from the RSS of the process that spawned it
(the forked / vforked image before exec), so a runner holding a large frame would
inflate the figure; this watcher imports only the standard library and psutil.
"""

from __future__ import annotations

import contextlib
import json
import resource
import subprocess
import sys
import time

import psutil


def tree_rss(proc: psutil.Process) -> int:
    """RSS of ``proc`` plus every descendant still alive."""
    total = 0
    for p in [proc, *proc.children(recursive=True)]:
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
            total += p.memory_info().rss
    return total


def watch(cmd: list[str], interval: float) -> dict[str, object]:
    """Run ``cmd`` to the end, sampling its process tree's RSS every ``interval`` seconds."""
    own = psutil.Process().memory_info().rss
    start = time.time()
    t0 = time.perf_counter()
    child = subprocess.Popen(cmd)
    proc = psutil.Process(child.pid)
    samples: list[tuple[float, int]] = []
    while child.poll() is None:
        with contextlib.suppress(psutil.NoSuchProcess):
            samples.append((time.time(), tree_rss(proc)))
        time.sleep(interval)
    rc = child.wait()
    wall = time.perf_counter() - t0
    maxrss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
    return {"exit_code": rc, "wall_s": wall, "start": start, "samples": samples,
            "ru_maxrss_children": maxrss, "watcher_rss_at_spawn": own}


if __name__ == "__main__":
    out, interval, sep, *command = sys.argv[1:]
    assert sep == "--", "usage: _watch.py RESULT_JSON INTERVAL_S -- CMD..."
    with open(out, "w") as f:
        json.dump(watch(command, float(interval)), f)
