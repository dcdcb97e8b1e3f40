"""etl_train end to end on a small subset: data, model, features, scores and the report."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image as PILImage

import framestream as fs
from framestream.flows.config import (
    ClusterConfig,
    EtlTrainConfig,
    FitConfig,
    InputConfig,
    SourceConfig,
)
from framestream.flows.etl import etl_train

pytestmark = pytest.mark.usefixtures("prefect_server")


def test_etl_train_end_to_end(fmnist, tmp_path):
    cfg = EtlTrainConfig(
        output=str(tmp_path / "run"), train=SourceConfig("sframe", fmnist), test_fraction=0.25,
        training=FitConfig(network="guide_cnn", num_epoch=2, batch_size=50,
                           input=InputConfig(scale=1 / 255, data_shape=(1, 26, 26),
                                             random_crop=True, random_mirror=True)),
        experiment="cnn", partition_rows=50, cluster=ClusterConfig(n_workers=2))
    report = etl_train(cfg)
    out = tmp_path / "run"
    assert 0.0 <= report["accuracy"] <= 1.0 and report["scored_accuracy"] == report["accuracy"]
    rows = report["rows"]
    assert rows["train"] + rows["test"] == 600 and 100 < rows["test"] < 200
    assert report["outputs"]["checkpoint"] == str(out / "model" / "cnn-0002")
    for name in ("train_data", "test_data", "features", "scores", "history", "training_curves",
                 "report_json", "report_md"):
        assert Path(report["outputs"][name]).exists(), name
    assert set(report["throughput"]) == {"train_images_per_second", "evaluate_rows_per_second",
                                         "features_rows_per_second", "score_rows_per_second"}
    assert all(v > 0 for v in report["throughput"].values())
    assert [e["epoch"] for e in report["epochs"]] == [0, 1]
    assert json.loads((out / "report.json").read_text())["accuracy"] == report["accuracy"]
    markdown = (out / "report.md").read_text()
    assert "test accuracy" in markdown and str(out / "scores.sframe") in markdown
    with PILImage.open(out / "training_curves.png") as png:
        assert png.format == "PNG" and png.height >= 500  # loss and accuracy panels

    test = fs.SFrame(report["outputs"]["test_data"])
    scores = fs.SFrame(str(out / "scores.sframe"))
    features = fs.SFrame(str(out / "features.sframe"))
    for frame in (scores, features):
        np.testing.assert_array_equal(frame["row"].to_numpy(), np.arange(len(test)))
        np.testing.assert_array_equal(frame["label"].to_numpy(), test["label"].to_numpy())
    assert features["features"].to_numpy().shape == (len(test), 32)  # the guide CNN's flatten
