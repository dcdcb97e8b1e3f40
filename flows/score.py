"""The ``score`` and ``extract_features`` flows: a model over a saved SFrame on Dask.

The rows are cut into partitions of ``partition_rows``; the workers score them in
parallel with the model sent once per worker (see ``_partitions``), each partition saved
on its own as it finishes, then the parts are appended in input order into the output.
Output columns: ``row`` (the input row), the ``keep_columns``, then ``prediction`` and
``scores`` (class probabilities; absent for a one-output regression) for ``score``, or
``features`` for ``extract_features``. A re-run skips the partitions already saved, and
returns at once when the output is already what this config asks for.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from framestream.errors import ConfigError
from framestream.flows import _partitions
from framestream.flows._models import Predictor, load_predictor
from framestream.flows._outputs import digest, frame_uuid, is_current, work_dir, write_stamp
from framestream.flows.config import ScoreConfig, SourceNotFoundError, as_config, to_dict
from framestream.flows.runtime import dask_client


@task(cache_policy=NO_CACHE)
def open_model(config: ScoreConfig) -> Predictor:
    """The checkpoint or pretrained model as a picklable predictor."""
    return load_predictor(config.model, config.data_field, config.input, config.batch_size,
                          config.device)


@task(cache_policy=NO_CACHE)
def plan_job(config: ScoreConfig, predictor: Predictor, mode: str) -> _partitions.Job:
    """The partitions of the input and the key of this run's inputs."""
    import framestream as fs

    uuid = frame_uuid(config.data)
    if uuid is None:
        raise SourceNotFoundError(f"data: {config.data} is not a saved SFrame")
    frame = fs.SFrame(config.data)
    columns = frame.column_names()
    missing = [c for c in predictor.data_field if c not in columns]
    if missing:
        raise ConfigError(f"data_field: {config.data} has no column {missing[0]!r}; "
                          f"its columns are {columns}")
    keep = config.keep_columns
    if keep is None:
        keep = tuple(c for c in columns if c not in predictor.data_field and c != "row")
    absent = [c for c in keep if c not in columns]
    if absent:
        raise ConfigError(f"keep_columns: {config.data} has no column {absent[0]!r}; "
                          f"its columns are {columns}")
    if len(frame) == 0:
        raise ConfigError(f"data: {config.data} has no rows to {mode}")
    arrays = [params[k] for params in (predictor.arg_params, predictor.aux_params)
              for k in sorted(params)]
    model_hash = digest(predictor.symbol_json, *arrays)
    options = None if predictor.options is None else to_dict(predictor.options)
    key = digest(mode, model_hash, uuid, config.layer if mode == "features" else None, keep,
                 predictor.data_field, options, predictor.labels, config.partition_rows)
    return _partitions.Job(key=key, data=str(Path(config.data).absolute()),
                           work=str(work_dir(config.output)), mode=mode, layer=config.layer,
                           keep=tuple(keep),
                           groups=_partitions.plan_groups(len(frame), config.partition_rows))


@task(cache_policy=NO_CACHE)
def run_partitions(config: ScoreConfig, job: _partitions.Job, predictor: Predictor) -> dict:
    """Every partition not saved yet, in parallel on the cluster."""
    with dask_client(config.cluster) as client:
        return _partitions.run_job(client, job, predictor)


@task(cache_policy=NO_CACHE)
def assemble_output(job: _partitions.Job, output: str) -> str:
    """The parts in row order as one saved SFrame at ``output``."""
    path = str(Path(output).absolute())
    _partitions.assemble(job, path)
    return path


def _run(config: ScoreConfig | dict, mode: str) -> str:
    cfg = as_config(config, ScoreConfig)
    log = get_run_logger()
    output = str(Path(cfg.output).absolute())
    predictor = open_model(cfg)
    job = plan_job(cfg, predictor, mode)
    if is_current(output, job.key):
        log.info("%s: %s is up to date", mode, output)
        return output
    started = time.perf_counter()
    stats = run_partitions(cfg, job, predictor)
    path = assemble_output(job, output)
    stats.update(rows=job.groups[-1][1], total_seconds=time.perf_counter() - started,
                 rows_per_second=stats["rows_computed"] / max(stats["seconds"], 1e-9))
    write_stamp(path, job.key, stats=stats, model=predictor.name)
    log.info("%s: %d partitions (%d skipped) -> %s", mode, stats["groups"], stats["skipped"], path)
    return path


@flow(name="score", validate_parameters=False)
def score(config: ScoreConfig | dict | str) -> str:
    """Predictions for every row of ``config.data``; returns the saved output's path."""
    return _run(config, "score")


@flow(name="extract_features", validate_parameters=False)
def extract_features(config: ScoreConfig | dict | str) -> str:
    """Features (a layer's output) for every row of ``config.data``; returns the output path."""
    return _run(config, "features")


def last_run(output: str) -> dict[str, Any] | None:
    """The counts and timings the last run that wrote ``output`` recorded in its stamp."""
    from framestream.flows._outputs import read_stamp

    stamp = read_stamp(output)
    return None if stamp is None else stamp.get("stats")
