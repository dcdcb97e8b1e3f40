"""score / extract_features on Dask: rows line up, a killed worker changes nothing, re-runs
skip finished partitions, bad models and schedulers are named."""

from __future__ import annotations

import os
import pickle
import signal
import threading
import time

import numpy as np
import pytest
from distributed import Client, LocalCluster

import framestream as fs
from framestream.errors import ClusterError
from framestream.flows import _partitions
from framestream.flows._models import ModelNotInstalledError, load_predictor
from framestream.flows._outputs import read_stamp, work_dir
from framestream.flows.config import ClusterConfig, ScoreConfig, SourceNotFoundError
from framestream.flows.score import extract_features, open_model, plan_job, score

pytestmark = pytest.mark.usefixtures("prefect_server")


@pytest.fixture(scope="module")
def cluster():
    """Two worker processes, one thread each (the embedded default, made once here)."""
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                      scheduler_kwargs={"dashboard_address": ":0"}) as c:
        yield c


def config(checkpoint, data, output, cluster, **changes) -> ScoreConfig:
    return ScoreConfig(model=checkpoint, data=data, output=str(output), partition_rows=30,
                       batch_size=25, cluster=ClusterConfig(cluster.scheduler_address), **changes)


def expected(checkpoint, data):
    predictor = load_predictor(checkpoint, None, None, 100, "cpu")
    return predictor.predict(fs.SFrame(data)), predictor


def test_score_survives_a_killed_worker_and_scores_every_row_once(checkpoint, fmnist, tmp_path,
                                                                  cluster):
    cfg = config(checkpoint, fmnist, tmp_path / "scores.sframe", cluster)
    killed: list[int] = []

    problems: list[BaseException] = []

    def kill_a_busy_worker() -> None:
        with Client(cluster.scheduler_address, set_as_default=False) as client:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                busy = [w for w, keys in client.processing().items()
                        if any(str(k).startswith("score-") for k in keys)]
                try:
                    if busy:  # a worker in the middle of a partition
                        pid = client.run(os.getpid, workers=busy[:1])[busy[0]]
                        os.kill(pid, signal.SIGKILL)
                        killed.append(pid)
                        return
                except Exception as exc:  # that worker went away meanwhile: try again
                    problems.append(exc)
                time.sleep(0.005)

    killer = threading.Thread(target=kill_a_busy_worker)
    killer.start()
    try:
        path = score(cfg)
    finally:
        killer.join()
    assert killed, f"no worker was killed while scoring ({problems})"
    out = fs.SFrame(path)
    assert out.column_names() == ["row", "label", "prediction", "scores"]
    np.testing.assert_array_equal(out["row"].to_numpy(), np.arange(600))
    (prediction, scores), _ = expected(checkpoint, fmnist)
    np.testing.assert_array_equal(out["prediction"].to_numpy(), prediction)
    np.testing.assert_allclose(out["scores"].to_numpy(), scores, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(out["label"].to_numpy(), fs.SFrame(fmnist)["label"].to_numpy())
    assert not work_dir(cfg.output).exists()
    assert read_stamp(path)["stats"]["groups"] == 20


def test_features_line_up_and_a_rerun_skips_finished_partitions(checkpoint, fmnist, tmp_path,
                                                                cluster):
    cfg = config(checkpoint, fmnist, tmp_path / "features.sframe", cluster, layer="relu2_output",
                 keep_columns=())
    # a first run that "crashed" after two partitions: their files are there, nothing else
    predictor = open_model.fn(cfg)
    job = plan_job.fn(cfg, predictor, "features")
    # each Dask task carries only the small Job; the model travels once, in the worker plugin
    assert len(pickle.dumps(job)) * 50 < len(pickle.dumps(predictor))
    assert len(_partitions.prepare_work(job)) == 20
    _partitions._MODELS[job.key] = predictor
    try:
        for start, stop in job.groups[:2]:
            _partitions.run_group(job, start, stop)
    finally:
        del _partitions._MODELS[job.key]
    path = extract_features(cfg)
    stats = read_stamp(path)["stats"]
    assert (stats["computed"], stats["skipped"], stats["rows_computed"]) == (18, 2, 540)
    out = fs.SFrame(path)
    assert out.column_names() == ["row", "features"]
    np.testing.assert_array_equal(out["row"].to_numpy(), np.arange(600))
    _, local = expected(checkpoint, fmnist)
    np.testing.assert_allclose(out["features"].to_numpy(),
                               local.features(fs.SFrame(fmnist), "relu2_output"),
                               rtol=1e-5, atol=1e-6)
    assert out["features"].to_numpy().shape == (600, 64)
    uuid = read_stamp(path)["uuid"]
    assert extract_features(cfg) == path and read_stamp(path)["uuid"] == uuid  # up to date


def test_an_unknown_model_name_is_named(fmnist, tmp_path, cluster):
    cfg = config("fmnist-resnet-not-installed", fmnist, tmp_path / "o.sframe", cluster)
    with pytest.raises(ModelNotInstalledError, match=r"model: 'fmnist-resnet-not-installed' is "
                                                     r"neither a checkpoint nor an installed"):
        score(cfg)
    missing = config(str(tmp_path / "runs" / "cnn-0002"), fmnist, tmp_path / "o.sframe", cluster)
    with pytest.raises(SourceNotFoundError, match=r"model: no checkpoint .*runs/cnn-0002"):
        score(missing)


def test_an_unreachable_scheduler_is_named(checkpoint, fmnist, tmp_path):
    address = "tcp://127.0.0.1:9"  # discard port: nothing listens
    cfg = ScoreConfig(model=checkpoint, data=fmnist, output=str(tmp_path / "o.sframe"),
                      cluster=ClusterConfig(address, timeout=1))
    started = time.monotonic()
    with pytest.raises(ClusterError, match=r"cannot reach the Dask scheduler at "
                                           r"'tcp://127.0.0.1:9' within 1 s"):
        score(cfg)
    assert time.monotonic() - started < 15



def test_a_regression_on_numeric_columns_trains_and_scores(tmp_path, cluster):
    from framestream.flows.train import train

    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 3)).astype(np.float32)
    frame = fs.SFrame({"a": x[:, 0], "b": x[:, 1], "c": x[:, 2], "id": np.arange(400),
                       "y": x @ np.array([1.0, -2.0, 0.5]) + 3.0})
    frame.save(tmp_path / "table.sframe")
    factory = tmp_path / "linear.py"
    factory.write_text("from framestream import mx\n\ndef linear():\n"
                       "    data = mx.sym.Variable('data')\n"
                       "    fc = mx.sym.FullyConnected(data, num_hidden=1, name='fc')\n"
                       "    return mx.sym.LinearRegressionOutput(fc, name='lr')\n")
    checkpoint = train({"data": str(tmp_path / "table.sframe"), "output": str(tmp_path / "model"),
                        "network": f"{factory}:linear", "data_field": ["a", "b", "c"],
                        "label_field": "y", "num_epoch": 5, "batch_size": 20,
                        "learning_rate": 0.05, "momentum": 0.0, "wd": 0.0})
    assert checkpoint == str(tmp_path / "model" / "model-0005")
    assert '"rmse"' in (tmp_path / "model" / "history.json").read_text()
    out = fs.SFrame(score(ScoreConfig(model=str(tmp_path / "model" / "model"),  # latest epoch
                                      data=str(tmp_path / "table.sframe"),
                                      output=str(tmp_path / "pred.sframe"), partition_rows=150,
                                      cluster=ClusterConfig(cluster.scheduler_address))))
    assert out.column_names() == ["row", "id", "y", "prediction"]
    np.testing.assert_array_equal(out["id"].to_numpy(), np.arange(400))
    assert np.sqrt(np.mean((out["prediction"].to_numpy() - out["y"].to_numpy()) ** 2)) < 0.5


def test_an_installed_pretrained_model_scores_with_its_labels(checkpoint, fmnist, tmp_path,
                                                              cluster):
    from framestream import mx
    from framestream.datasets import FASHION_MNIST_CLASSES

    prefix, epoch = checkpoint.rsplit("-", 1)
    folder = mx.pretrained_model.save_model(
        tmp_path / "fmnist_mlp", mx.model.FeedForward.load(prefix, int(epoch)),
        labels=FASHION_MNIST_CLASSES, input_shape=(28, 28, 1), scale=1 / 255)
    mx.pretrained_model.download_model(str(folder))
    out = fs.SFrame(score(config("fmnist_mlp", fmnist, tmp_path / "p.sframe", cluster)))
    (prediction, scores), _ = expected(checkpoint, fmnist)
    assert out.column_names() == ["row", "label", "prediction", "scores"]
    np.testing.assert_array_equal(out["prediction"].to_numpy(),
                                  np.asarray(FASHION_MNIST_CLASSES)[prediction])
    np.testing.assert_allclose(out["scores"].to_numpy(), scores, rtol=1e-5, atol=1e-6)
    features = fs.SFrame(extract_features(config("fmnist_mlp", fmnist, tmp_path / "f.sframe",
                                                 cluster)))
    assert features["features"].to_numpy().shape == (600, 64)
