"""preprocess: each kind of source -> transforms -> a saved SFrame; re-runs skip; bad paths."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image as PILImage

import framestream as fs
from framestream.errors import ConfigError
from framestream.flows._outputs import frame_uuid
from framestream.flows.config import (
    PreprocessConfig,
    SourceConfig,
    SourceNotFoundError,
    TransformConfig,
)
from framestream.flows.preprocess import apply_transforms, preprocess, read_source
from framestream.flows.train import train


@pytest.fixture
def csv_file(tmp_path):
    path = tmp_path / "table.csv"
    rng = np.random.default_rng(0)
    rows = ["x,y,name,target"] + [f"{rng.normal(5, 2):.4f},{i},n{i},{i % 3}" for i in range(50)]
    rows[7] = "NA,6,n6,0"
    path.write_text("\n".join(rows) + "\n")
    return path


@pytest.fixture
def image_folder(tmp_path):
    root = tmp_path / "photos"
    rng = np.random.default_rng(1)
    for name, count in (("cat", 3), ("dog", 2)):
        (root / name).mkdir(parents=True)
        for i in range(count):
            pixels = rng.integers(0, 255, size=(12 + i, 10, 3), dtype=np.uint8)
            PILImage.fromarray(pixels).save(root / name / f"{i}.png")
    return root


def test_csv_source_and_column_transforms(csv_file):
    frame = read_source.fn(SourceConfig("csv", str(csv_file)))
    assert frame.column_names() == ["x", "y", "name", "target"] and len(frame) == 50
    t = TransformConfig(select=("x", "y", "target"), rename={"target": "label"}, dropna=True,
                        standardize=("x",))
    out = apply_transforms.fn(frame, t)
    assert out.column_names() == ["x", "y", "label"] and len(out) == 49
    x = out["x"].to_numpy()
    assert abs(x.mean()) < 1e-9
    assert x.std() == pytest.approx(1.0)  # ddof=0: SArray.std is the population std


def test_image_folder_with_labels_and_resize(image_folder):
    frame = read_source.fn(SourceConfig("images", str(image_folder), label_from_folder=True))
    assert sorted(frame.column_names()) == ["image", "label", "label_name", "path"]
    by_name = dict(zip(frame["label_name"].to_numpy(), frame["label"].to_numpy()))
    assert by_name == {"cat": 0, "dog": 1} and len(frame) == 5
    out = apply_transforms.fn(frame, TransformConfig(resize=(8, 6), channels=1))
    sizes = {(img.width, img.height, img.channels) for img in out["image"]}
    assert sizes == {(8, 6, 1)}


def test_fashion_mnist_subset_and_saved_sframe_sources(fmnist):
    frame = read_source.fn(SourceConfig("fashion_mnist", split="test", limit=40))
    assert frame.column_names() == ["image", "label"] and len(frame) == 40
    assert frame["image"][0].width == 28 and set(frame["label"].to_numpy()) <= set(range(10))
    saved = read_source.fn(SourceConfig("sframe", fmnist, limit=40))
    np.testing.assert_array_equal(saved["label"].to_numpy(), frame["label"].to_numpy())


@pytest.mark.parametrize("kind", ["csv", "images", "sframe"])
def test_missing_source_path_is_named(tmp_path, kind):
    missing = tmp_path / "nowhere" / "data"
    with pytest.raises(SourceNotFoundError, match=rf"source.path: {missing} does not exist"):
        read_source.fn(SourceConfig(kind, str(missing)))


def test_missing_fashion_mnist_folder_is_named(tmp_path):
    with pytest.raises(SourceNotFoundError, match="source.path"):
        read_source.fn(SourceConfig("fashion_mnist", str(tmp_path / "idx")))


@pytest.mark.usefixtures("prefect_server")
def test_preprocess_flow_saves_and_a_rerun_skips(csv_file, tmp_path):
    cfg = PreprocessConfig(source=SourceConfig("csv", str(csv_file)),
                           output=str(tmp_path / "t.sframe"),
                           transforms=TransformConfig(dropna=True, select=("x", "target")))
    path = preprocess(cfg)
    saved = fs.SFrame(path)
    assert saved.column_names() == ["x", "target"] and len(saved) == 49
    uuid = frame_uuid(path)
    assert preprocess(cfg) == path  # up to date: not written again
    assert frame_uuid(path) == uuid
    changed = PreprocessConfig(source=cfg.source, output=cfg.output,
                               transforms=TransformConfig(select=("x",)))
    assert fs.SFrame(preprocess(changed)).column_names() == ["x"]


@pytest.mark.usefixtures("prefect_server")
def test_preprocess_flow_from_a_config_file(fmnist, tmp_path):
    from framestream.flows import FLOWS, run

    assert set(FLOWS) == {"preprocess", "train", "score", "extract_features", "etl_train"}
    config = tmp_path / "prep.yaml"
    config.write_text(f"flow: preprocess\nsource: {{kind: sframe, path: '{fmnist}', limit: 30}}\n"
                      f"output: '{tmp_path / 'small.sframe'}'\n"
                      "transforms: {resize: [16, 16]}\n")
    small = fs.SFrame(run(config))
    assert len(small) == 30 and small["image"][0].width == 16
    # deployments pass the config file's path as the flow's parameter
    assert preprocess(str(config)) == str(tmp_path / "small.sframe")
    with pytest.raises(ConfigError, match="prep.yaml: flow: the file configures 'preprocess', "
                                          "but this flow takes a TrainConfig"):
        train(str(config))
