"""Real data for the pipeline tests, built once per session, and frames saved in small chunks.

The session fixtures build their data sets under their own FRAMESTREAM_HOME (the
autouse ``home`` fixture gives every test a fresh one, which would rebuild them).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import load_diabetes

import framestream as fs
from framestream.frames import _chunking

CHUNK_ROWS = _chunking.MIN_CHUNK_ROWS  # 256


def save_chunked(sf: fs.SFrame, path: Path) -> fs.SFrame:
    """``sf`` saved with 256-row chunks (the smallest frames makes) and reopened lazily."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(_chunking, "TARGET_CHUNK_BYTES", 1)
        sf.save(str(path))
    return fs.load_sframe(str(path))


@pytest.fixture(scope="session")
def data_home(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("pipeline-data")


def _build(data_home: Path, build):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FRAMESTREAM_HOME", str(data_home / "home"))
        return build()


@pytest.fixture(scope="session")
def digits(data_home) -> fs.SFrame:
    """scikit-learn's 1,797 8x8 digits saved in 8 chunks of <= 256 rows."""
    return save_chunked(_build(data_home, fs.datasets.digits), data_home / "digits")


@pytest.fixture(scope="session")
def fashion_test(data_home) -> fs.SFrame:
    """Fashion-MNIST's 10,000 test images (one chunk)."""
    return _build(data_home, lambda: fs.datasets.fashion_mnist("test"))


@pytest.fixture(scope="session")
def fashion_pixels() -> tuple[np.ndarray, np.ndarray]:
    """The same images and labels read straight from the IDX files: the oracle."""
    root = Path("/usr/share/datasets/fashion-mnist")
    return (fs.datasets.read_idx(root / "t10k-images-idx3-ubyte.gz"),
            fs.datasets.read_idx(root / "t10k-labels-idx1-ubyte.gz"))


@pytest.fixture(scope="session")
def diabetes(data_home) -> tuple[fs.SFrame, np.ndarray, np.ndarray]:
    """scikit-learn's diabetes table (442 rows), saved in two chunks, and the numpy oracle.

    Columns: ``age`` (float), ``sex`` (int 1/2), ``bmi`` (float), ``blood`` (a vector of the
    seven blood measures), ``target`` (float).
    """
    d = load_diabetes(scaled=False)
    x = d.data
    sf = fs.SFrame({"age": x[:, 0], "sex": x[:, 1].astype(np.int64), "bmi": x[:, 2],
                    "blood": x[:, 3:], "target": d.target})
    expected = np.hstack([x[:, :3], x[:, 3:]]).astype(np.float32)
    return save_chunked(sf, data_home / "diabetes"), expected, d.target.astype(np.float32)
