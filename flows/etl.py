"""The ``etl_train`` flow: preprocess -> train -> evaluate -> extract features and score ->
a report, everything under one output folder::

    <output>/data/train.sframe, data/test.sframe     preprocessed (or split) data
    <output>/model/<experiment>-%04d.params ...      checkpoints, history.json
    <output>/features.sframe, scores.sframe          the test set's features and predictions
    <output>/training_curves.png, report.md, report.json

Each stage is a sub-flow or task that skips work already done, so re-running the flow
after a crash picks up where it stopped (training resumes at the last finished epoch).
Scoring and feature extraction share one Dask cluster.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from pathlib import Path
from typing import Any

from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from framestream.flows._models import load_predictor
from framestream.flows._outputs import digest, is_current, write_stamp
from framestream.flows.config import (
    ClusterConfig,
    EtlTrainConfig,
    FitConfig,
    PreprocessConfig,
    ScoreConfig,
    TrainConfig,
    as_config,
    to_dict,
)
from framestream.flows.preprocess import check_source, preprocess
from framestream.flows.runtime import dask_client
from framestream.flows.score import extract_features, last_run, score
from framestream.flows.train import train


@task(cache_policy=NO_CACHE)
def split_train_test(data: str, fraction: float, seed: int, out_dir: str) -> tuple[str, str]:
    """``data`` split at random into ``train.sframe`` and ``test.sframe`` (``fraction`` test)."""
    import framestream as fs

    paths = (str(Path(out_dir) / "train.sframe"), str(Path(out_dir) / "test.sframe"))
    key = digest("split", digest(data), fraction, seed, Path(data).stat().st_mtime_ns)
    if all(is_current(p, key) for p in paths):
        return paths
    train_part, test_part = fs.SFrame(data).random_split(1.0 - fraction, seed=seed)
    for frame, path in zip((train_part, test_part), paths):
        frame.save(path, overwrite=True)
        write_stamp(path, key)
    return paths


@task(cache_policy=NO_CACHE)
def evaluate(checkpoint: str, data: str, fit: FitConfig) -> dict[str, Any]:
    """Accuracy (or RMSE for a one-output network) of ``checkpoint`` on ``data``."""
    import numpy as np

    import framestream as fs

    predictor = load_predictor(checkpoint, None, None, fit.batch_size, fit.device)
    frame = fs.SFrame(data)
    started = time.perf_counter()
    prediction, scores = predictor.predict(frame)
    seconds = time.perf_counter() - started
    labels = frame[fit.label_field].to_numpy()
    result: dict[str, Any] = {"rows": len(frame), "seconds": seconds,
                              "rows_per_second": len(frame) / max(seconds, 1e-9)}
    if scores is not None:
        result["accuracy"] = float(np.mean(prediction == labels))
    else:
        result["rmse"] = float(np.sqrt(np.mean((prediction - labels) ** 2)))
    return result


def _scored_accuracy(scores_path: str, label_field: str) -> float | None:
    import numpy as np

    import framestream as fs

    frame = fs.SFrame(scores_path)
    if label_field not in frame.column_names() or "scores" not in frame.column_names():
        return None
    return float(np.mean(frame["prediction"].to_numpy() == frame[label_field].to_numpy()))


@task(cache_policy=NO_CACHE)
def write_report(config: EtlTrainConfig, facts: dict[str, Any]) -> dict[str, Any]:
    """report.json, report.md and training_curves.png in the output folder; returns the
    report as a dict."""
    from framestream.nn.callback import History

    out = Path(config.output).absolute()
    history = History()
    history.epochs = json.loads(Path(facts["outputs"]["history"]).read_text())["epochs"]
    curves = history.plot(out / "training_curves.png")
    epochs = history.to_dict()["epochs"]
    samples = sum(e["samples"] or 0 for e in epochs)
    seconds = sum(e["time"] or 0.0 for e in epochs)
    report = {
        "flow": "etl_train",
        "output": str(out),
        "accuracy": facts["evaluation"].get("accuracy"),
        **({"rmse": facts["evaluation"]["rmse"]} if "rmse" in facts["evaluation"] else {}),
        "scored_accuracy": facts.get("scored_accuracy"),
        "rows": {"train": facts["train_rows"], "test": facts["evaluation"]["rows"]},
        "throughput": {
            "train_images_per_second": samples / seconds if seconds else None,
            "evaluate_rows_per_second": facts["evaluation"]["rows_per_second"],
            **{f"{k}_rows_per_second": v["rows_per_second"] for k, v in facts["dask"].items()},
        },
        "seconds": facts["seconds"],
        "epochs": epochs,
        "outputs": {**facts["outputs"], "training_curves": str(curves),
                    "report_json": str(out / "report.json"), "report_md": str(out / "report.md")},
        "config": to_dict(config),
    }
    _atomic_write(out / "report.json", json.dumps(report, indent=2, default=str))
    _atomic_write(out / "report.md", render_markdown(report))
    return report


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    tmp.replace(path)


def render_markdown(report: dict[str, Any]) -> str:
    """The report as a short Markdown page."""
    def num(value: Any, fmt: str = ",.0f") -> str:
        return "-" if value is None else format(value, fmt)

    lines = ["# framestream etl_train report", ""]
    if report.get("accuracy") is not None:
        lines.append(f"- test accuracy: **{report['accuracy']:.4f}** "
                     f"({report['rows']['test']:,} rows)")
    if report.get("rmse") is not None:
        lines.append(f"- test RMSE: **{report['rmse']:.4g}**")
    lines.append(f"- training rows: {report['rows']['train']:,}, epochs: {len(report['epochs'])}")
    lines += ["", "| epoch | loss | train | validation | seconds |", "|---|---|---|---|---|"]
    for e in report["epochs"]:
        train_m = ", ".join(f"{k} {v:.4f}" for k, v in e["train"].items() if v is not None)
        eval_m = ", ".join(f"{k} {v:.4f}" for k, v in e["eval"].items() if v is not None)
        lines.append(f"| {e['epoch'] + 1} | {num(e['loss'], '.4f')} | {train_m} | {eval_m} | "
                     f"{num(e['time'], '.1f')} |")
    lines += ["", "| throughput | rows/s |", "|---|---|"]
    lines += [f"| {k.removesuffix('_per_second').replace('_', ' ')} | {num(v)} |"
              for k, v in report["throughput"].items()]
    lines += ["", "| stage | seconds |", "|---|---|"]
    lines += [f"| {k} | {v:.1f} |" for k, v in report["seconds"].items()]
    lines += ["", "Outputs:", ""]
    lines += [f"- {k}: `{v}`" for k, v in report["outputs"].items()]
    lines.append("")
    return "\n".join(lines)


def _prepare(cfg: EtlTrainConfig, out: Path) -> tuple[str, str]:
    data = out / "data"
    if cfg.test is not None:
        train_path = preprocess(PreprocessConfig(source=cfg.train, transforms=cfg.transforms,
                                                 output=str(data / "train.sframe")))
        test_path = preprocess(PreprocessConfig(source=cfg.test, transforms=cfg.transforms,
                                                output=str(data / "test.sframe")))
        return train_path, test_path
    all_cfg = PreprocessConfig(source=cfg.train, transforms=cfg.transforms,
                               output=str(data / "all.sframe"))
    everything = preprocess(all_cfg)
    return split_train_test(everything, cfg.test_fraction, cfg.training.seed, str(data))


def _fit_fields(fit: FitConfig) -> dict[str, Any]:
    return {f.name: getattr(fit, f.name) for f in dataclasses.fields(FitConfig)}


@flow(name="etl_train", validate_parameters=False)
def etl_train(config: EtlTrainConfig | dict | str) -> dict[str, Any]:
    """The whole job; returns the report (accuracy, throughput, timings, every output's path)."""
    import framestream as fs

    cfg = as_config(config, EtlTrainConfig)
    check_source(cfg.train, "train")
    if cfg.test is not None:
        check_source(cfg.test, "test")
    out = Path(cfg.output).absolute()
    out.mkdir(parents=True, exist_ok=True)
    seconds: dict[str, float] = {}
    clock = time.perf_counter()
    started = clock

    def lap(stage: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        seconds[stage] = now - clock
        clock = now

    train_path, test_path = _prepare(cfg, out)
    lap("preprocess")
    model_dir = out / "model"
    checkpoint = train(TrainConfig(**_fit_fields(cfg.training), data=train_path,
                                   output=str(model_dir), eval_data=test_path,
                                   experiment=cfg.experiment))
    lap("train")
    evaluation = evaluate(checkpoint, test_path, cfg.training)
    lap("evaluate")
    outputs = {"train_data": train_path, "test_data": test_path, "checkpoint": checkpoint,
               "model_dir": str(model_dir), "history": str(model_dir / "history.json")}
    dask_stats: dict[str, Any] = {}
    if cfg.extract_features or cfg.score:
        with dask_client(cfg.cluster) as client:
            lap("dask_start")
            shared = ClusterConfig(address=client.scheduler.address, timeout=cfg.cluster.timeout)
            common = {"model": checkpoint, "data": test_path, "partition_rows": cfg.partition_rows,
                      "batch_size": cfg.training.batch_size, "device": cfg.training.device,
                      "cluster": shared}
            if cfg.extract_features:
                outputs["features"] = extract_features(ScoreConfig(
                    **common, output=str(out / "features.sframe"), layer=cfg.feature_layer))
                dask_stats["features"] = last_run(outputs["features"])
                lap("features")
            if cfg.score:
                outputs["scores"] = score(ScoreConfig(**common, output=str(out / "scores.sframe")))
                dask_stats["score"] = last_run(outputs["scores"])
                lap("score")
    seconds["total"] = time.perf_counter() - started
    facts = {
        "train_rows": len(fs.SFrame(train_path)), "evaluation": evaluation, "seconds": seconds,
        "dask": {k: v for k, v in dask_stats.items() if v}, "outputs": outputs,
        "scored_accuracy": (_scored_accuracy(outputs["scores"], cfg.training.label_field)
                            if "scores" in outputs else None),
    }
    return write_report(cfg, facts)


__all__ = ["etl_train", "evaluate", "render_markdown", "split_train_test", "write_report"]
