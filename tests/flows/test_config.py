"""Flow configs: YAML in, typed dataclasses out; bad keys and types named with their path."""

from __future__ import annotations

import pytest

from framestream.errors import ConfigError
from framestream.flows.config import (
    ClusterConfig,
    EtlTrainConfig,
    InputConfig,
    PreprocessConfig,
    ScoreConfig,
    SourceConfig,
    SourceNotFoundError,
    TrainConfig,
    demo_config,
    load_config,
    to_dict,
)

TRAIN = {"flow": "train", "data": "d.sframe", "output": "out"}
ETL = {"flow": "etl_train", "output": "out", "train": {"kind": "fashion_mnist"}}

BAD = [
    # (config, words the message must contain)
    ({**TRAIN, "num_epcoh": 3}, ["num_epcoh", "unknown key", "did you mean 'num_epoch'"]),
    ({**TRAIN, "num_epoch": "3"}, ["num_epoch", "expected int", "str '3'"]),
    ({**TRAIN, "num_epoch": True}, ["num_epoch", "expected int", "bool"]),
    ({**TRAIN, "num_epoch": 0}, ["num_epoch", "at least 1"]),
    ({**TRAIN, "learning_rate": "fast"}, ["learning_rate", "expected float"]),
    ({**TRAIN, "input": {"random_crop": "yes"}}, ["input.random_crop", "expected bool"]),
    ({**TRAIN, "input": {"data_shape": [26, 26]}}, ["input.data_shape", "list of 3"]),
    ({**TRAIN, "input": {"crop": True}}, ["input.crop", "unknown key", "InputConfig"]),
    ({**TRAIN, "data_field": "image"}, ["data_field", "expected list of str"]),
    ({**TRAIN, "device": "tpu"}, ["device", "'gpu:<n>'"]),
    ({**TRAIN, "initializer": "zeros"}, ["initializer", "'xavier'"]),
    ({"flow": "train", "output": "o"}, ["data", "required"]),
    ({**ETL, "training": {"input": {"scale": "x"}}}, ["training.input.scale", "expected float"]),
    ({**ETL, "training": {"num_epochs": 2}}, ["training.num_epochs", "unknown key"]),
    ({**ETL, "train": {"kind": "parquet", "path": "x"}}, ["train.kind", "'csv'", "'sframe'"]),
    ({**ETL, "train": {"kind": "csv"}}, ["train.path", "required"]),
    ({**ETL, "test_fraction": 1.5}, ["test_fraction", "(0, 1)"]),
    ({**ETL, "cluster": {"n_workers": "two"}}, ["cluster.n_workers", "expected int or null"]),
    ({**ETL, "cluster": {"adress": "tcp://x:1"}}, ["cluster.adress", "did you mean 'address'"]),
    ({"flow": "score", "model": "m", "data": "d", "output": "o", "keep_columns": "label"},
     ["keep_columns", "list of str"]),
    ({"flow": "preprocess", "source": {"kind": "csv", "path": "x.csv"}, "output": "o",
      "transforms": {"resize": [28]}}, ["transforms.resize", "list of 2"]),
    ({"flow": "preprocess", "source": {"kind": "csv", "path": "x.csv"}, "output": "o",
      "transforms": {"sample": 2.0}}, ["transforms.sample", "(0, 1]"]),
    ({"flow": "fit"}, ["flow", "'etl_train'", "'fit'"]),
    ({"data": "d"}, ["flow", "got None"]),
]


@pytest.mark.parametrize(("config", "words"), BAD, ids=[" ".join(w[:2]) for _, w in BAD])
def test_bad_configs_name_the_key_and_the_expected_type(config, words):
    with pytest.raises(ConfigError) as info:
        load_config(config)
    for word in words:
        assert word in str(info.value), str(info.value)


def test_yaml_file_errors_name_the_file_and_key(tmp_path):
    path = tmp_path / "job.yaml"
    path.write_text("flow: etl_train\noutput: out\ntrain: {kind: fashion_mnist}\n"
                    "training:\n  input:\n    random_mirror: maybe\n")
    with pytest.raises(ConfigError, match=r"job.yaml: training.input.random_mirror: expected bool, "
                                          r"got str 'maybe'"):
        load_config(path)
    with pytest.raises(SourceNotFoundError, match="no such config file"):
        load_config(tmp_path / "missing.yaml")
    (tmp_path / "broken.yaml").write_text("flow: [train\n")
    with pytest.raises(ConfigError, match="broken.yaml: not valid YAML"):
        load_config(tmp_path / "broken.yaml")


def test_yaml_gives_typed_nested_configs(tmp_path):
    path = tmp_path / "job.yaml"
    path.write_text(
        "flow: etl_train\noutput: runs/x\n"
        "train: {kind: images, path: photos, label_from_folder: true}\n"
        "transforms: {resize: [32, 32], channels: 3}\n"
        "training:\n  network: lenet\n  num_epoch: 3\n  learning_rate: 1\n"
        "  input: {mean: [123.7, 116.3, 103.5], data_shape: [3, 28, 28], random_crop: true}\n"
        "cluster: {address: 'tcp://10.0.0.1:8786'}\n")
    name, cfg = load_config(path)
    assert name == "etl_train" and isinstance(cfg, EtlTrainConfig)
    assert cfg.train == SourceConfig("images", "photos", label_from_folder=True)
    assert cfg.transforms.resize == (32, 32)
    assert cfg.training.learning_rate == 1.0 and isinstance(cfg.training.learning_rate, float)
    assert cfg.training.input.data_shape == (3, 28, 28)
    assert cfg.training.input.iter_options(train=False)["random_crop"] is False
    assert cfg.training.input.iter_options(train=True)["mean_g"] == pytest.approx(116.3)
    assert cfg.cluster == ClusterConfig("tcp://10.0.0.1:8786")
    assert load_config({"flow": "etl_train", **to_dict(cfg)}) == ("etl_train", cfg)


def test_each_flow_has_its_config():
    assert isinstance(load_config(TRAIN)[1], TrainConfig)
    assert isinstance(load_config({"flow": "preprocess", "output": "o",
                                   "source": {"kind": "mnist"}})[1], PreprocessConfig)
    for flow in ("score", "extract_features"):
        name, cfg = load_config({"flow": flow, "model": "m-0002", "data": "d", "output": "o",
                                 "layer": "fc1_output", "cluster": {"n_workers": 2}})
        assert name == flow and isinstance(cfg, ScoreConfig) and cfg.cluster.n_workers == 2


def test_direct_construction_is_checked_too():
    with pytest.raises(ConfigError, match=r"TrainConfig.batch_size: expected int, got str"):
        TrainConfig(data="d", output="o", batch_size="100")
    with pytest.raises(ConfigError, match=r"ClusterConfig.threads_per_worker: must be at least 1"):
        ClusterConfig(threads_per_worker=0)
    cfg = TrainConfig(data="d", output="o", data_field=["x", "y"], input={"mean": 127})
    assert cfg.data_field == ("x", "y") and cfg.input == InputConfig(mean=127.0)


def test_demo_config_is_the_main_job(tmp_path):
    cfg = demo_config(tmp_path)
    assert cfg.output == str(tmp_path)
    assert (cfg.train.kind, cfg.train.split, cfg.test.split) == ("fashion_mnist", "train", "test")
    t = cfg.training
    assert (t.network, t.num_epoch, t.batch_size, t.learning_rate, t.momentum, t.wd) == \
        ("guide_cnn", 2, 100, 0.1, 0.9, 0.0001)
    assert t.input.random_mirror and t.input.iter_options(train=False)["random_mirror"] is False
    assert cfg.score and cfg.extract_features and cfg.cluster == ClusterConfig()


@pytest.mark.parametrize("module", ["config", "runtime", "_models", "_outputs", "_partitions",
                                    "_typecheck"])
def test_docstring_examples(module):
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(f"framestream.flows.{module}"))
    assert result.failed == 0
