"""Scoring a saved SFrame partition by partition on a Dask cluster, exactly once per row.

The rows ``[0, n)`` are cut into groups of ``partition_rows``. The predictor is pickled
once and registered as a ``WorkerPlugin``, so the scheduler hands it to every worker once
(and to any worker that starts later, such as one a nanny restarts after a crash); each
group is one plain Dask task that opens the input, runs the predictor on its slice and
saves ``part-<start>.sframe`` in the work folder (frames' save is atomic: a staging folder
renamed into place). A group whose file exists is not submitted again, so a re-run after a
crash only does what is missing; a task that Dask re-runs after losing a worker rewrites
the same rows with the same values. The output is the parts appended in row order.

Nothing here imports Prefect: this module is what the workers import.
"""

from __future__ import annotations

import json
import logging
import pickle
import shutil
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from distributed import WorkerPlugin

LOG = logging.getLogger("framestream.flows")
_MODELS: dict[str, Any] = {}  # per worker process: plugin key -> predictor
MANIFEST = "manifest.json"


class ModelPlugin(WorkerPlugin):
    """Carries one pickled predictor to each worker; ``setup`` unpickles it there."""

    def __init__(self, key: str, payload: bytes):
        self.key = key
        self.payload = payload

    def setup(self, worker: Any) -> None:
        _MODELS[self.key] = pickle.loads(self.payload)

    def teardown(self, worker: Any) -> None:
        _MODELS.pop(self.key, None)


@dataclass(frozen=True)
class Job:
    """One scoring run: what to compute for which rows, and where the parts go."""

    key: str                      # the plugin name; also identifies the run's inputs
    data: str                     # the saved input SFrame
    work: str                     # the folder of the parts
    mode: str                     # 'score' or 'features'
    layer: str | None
    keep: tuple[str, ...]         # input columns copied to the output
    groups: tuple[tuple[int, int], ...]

    def part(self, start: int) -> Path:
        return Path(self.work) / f"part-{start:012d}.sframe"


def prepare_work(job: Job) -> list[tuple[int, int]]:
    """Make the work folder for ``job`` (emptied if it holds another run's parts) and return
    the groups still to do."""
    work = Path(job.work)
    manifest = work / MANIFEST
    if work.exists():
        try:
            same = json.loads(manifest.read_text()).get("key") == job.key
        except (OSError, ValueError):
            same = False
        if not same:
            shutil.rmtree(work)
    work.mkdir(parents=True, exist_ok=True)
    if not manifest.exists():
        tmp = work / f".{MANIFEST}.tmp"
        tmp.write_text(json.dumps({"key": job.key, "groups": len(job.groups)}))
        tmp.replace(manifest)
    return [g for g in job.groups if not _finished(job.part(g[0]))]


def _finished(part: Path) -> bool:
    if not part.exists():
        return False
    from framestream.errors import StoreError
    from framestream.frames._store import read_attrs

    try:
        read_attrs(part)
        return True
    except StoreError:
        shutil.rmtree(part, ignore_errors=True)
        return False


def run_group(job: Job, start: int, stop: int) -> str:
    """Score rows ``[start, stop)`` on this worker into their part file; returns its path."""
    import dask
    import numpy as np

    from framestream.frames import SArray, SFrame

    part = job.part(start)
    if part.exists():
        return str(part)
    predictor = _MODELS.get(job.key)
    if predictor is None:
        raise RuntimeError(f"worker has no model {job.key!r}: the ModelPlugin was not set up")
    with dask.config.set(scheduler="sync"):  # frames' graphs stay in this task's thread
        rows = SFrame(job.data)[start:stop]
        out = rows[list(job.keep)] if job.keep else SFrame()
        out["row"] = np.arange(start, stop, dtype=np.int64)
        if job.mode == "features":
            out["features"] = SArray(predictor.features(rows, job.layer))
        else:
            prediction, scores = predictor.predict(rows)
            out["prediction"] = SArray(prediction)
            if scores is not None:
                out["scores"] = SArray(scores)
        out = out[["row", *[c for c in out.column_names() if c != "row"]]]
        out.save(part, overwrite=True)
    return str(part)


def run_job(client: Any, job: Job, predictor: Any) -> dict[str, Any]:
    """Run the groups of ``job`` not done yet on ``client``'s cluster; the model goes to each
    worker once. Returns counts and timings."""
    todo = prepare_work(job)
    started = time.perf_counter()
    if todo:
        client.register_plugin(ModelPlugin(job.key, pickle.dumps(predictor)), name=job.key)
        run = uuid.uuid4().hex[:8]
        try:
            futures = [client.submit(run_group, job, a, b, key=f"{job.mode}-{run}-{a}", retries=2)
                       for a, b in todo]
            client.gather(futures)
        finally:
            _forget_plugin(client, job.key)
    return {"groups": len(job.groups), "computed": len(todo),
            "skipped": len(job.groups) - len(todo), "rows_computed": sum(b - a for a, b in todo),
            "seconds": time.perf_counter() - started}


def _forget_plugin(client: Any, key: str) -> None:
    """Drop the model from the workers, best effort: a worker that a nanny is restarting
    right now (after a crash) may not have set the plugin up yet and answers with an error,
    which must not fail a run whose partitions are all saved."""
    try:
        client.unregister_worker_plugin(key)
    except Exception as exc:  # any worker-side error: the results stand
        LOG.warning("could not remove the model plugin %s from every worker: %s", key, exc)


def assemble(job: Job, output: str) -> Any:
    """The parts appended in row order, saved at ``output`` (replacing what was there); the
    work folder is removed afterwards. Returns the saved frame."""
    from framestream.frames import SFrame

    frames = [SFrame(str(job.part(a))) for a, _ in job.groups]
    while len(frames) > 1:  # pairwise, so the graph is log-deep
        frames = [frames[i].append(frames[i + 1]) if i + 1 < len(frames) else frames[i]
                  for i in range(0, len(frames), 2)]
    result = frames[0]
    result.save(output, overwrite=True)
    shutil.rmtree(job.work, ignore_errors=True)
    return SFrame(output)


def plan_groups(num_rows: int, partition_rows: int) -> tuple[tuple[int, int], ...]:
    """``[start, stop)`` row ranges of ``partition_rows`` covering ``num_rows``.

    >>> plan_groups(7, 3)
    ((0, 3), (3, 6), (6, 7))
    """
    return tuple((a, min(a + partition_rows, num_rows)) for a in range(0, num_rows, partition_rows))
