"""Where framestream keeps its files: ``$FRAMESTREAM_HOME`` (default ``~/.framestream``).

Ingest results and materialised frames go to ``cache/frames/<pid>-<id>``; a process
removes its own cache folders when it exits, and sweeps those left by dead processes.
"""

from __future__ import annotations

import atexit
import os
import shutil
import uuid
from pathlib import Path

import psutil

_created: list[Path] = []
_swept = False


def home() -> Path:
    return Path(os.environ.get("FRAMESTREAM_HOME", Path.home() / ".framestream")).expanduser()


def cache_frames_dir() -> Path:
    d = home() / "cache" / "frames"
    d.mkdir(parents=True, exist_ok=True)
    return d


def new_cache_path(prefix: str = "frame") -> Path:
    """A fresh path for a cached frame, removed when this process exits."""
    global _swept
    base = cache_frames_dir()
    if not _swept:
        _sweep_dead(base)
        _swept = True
        atexit.register(_remove_created)
    path = base / f"{os.getpid()}-{prefix}-{uuid.uuid4().hex[:12]}"
    _created.append(path)
    return path


def _sweep_dead(base: Path) -> None:
    for entry in base.iterdir():
        pid = entry.name.lstrip(".").split("-", 1)[0]
        if pid.isdigit() and not psutil.pid_exists(int(pid)):
            shutil.rmtree(entry, ignore_errors=True)


def _remove_created() -> None:
    for path in _created:
        shutil.rmtree(path, ignore_errors=True)
        for stale in path.parent.glob(f".{path.name}.*"):
            shutil.rmtree(stale, ignore_errors=True)
