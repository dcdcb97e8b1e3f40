"""MXNet's NDArray list format: the files Apache MXNet wrote, byte-exact writing, damage."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest

from framestream.nn._ndarray_file import ParamsFileError, dumps, load, load_stored, save
from tests.nn.conftest import MXNET_FIXTURES

FIXTURES = MXNET_FIXTURES

# MXNet 1.9.1: mx.nd.save('d.params', {'arg:w': float32 2x3 arange, 'aux:m': int32 [7]})
WORKED_EXAMPLE = bytes.fromhex(
    "1201000000000000" "0000000000000000" "0200000000000000"
    "c9fa93f9" "00000000" "02000000" "0200000000000000" "0300000000000000"
    "01000000" "00000000" "00000000") + np.arange(6, dtype="<f4").tobytes() + bytes.fromhex(
    "c9fa93f9" "00000000" "01000000" "0100000000000000"
    "01000000" "00000000" "04000000" "07000000"
    "0200000000000000" "0500000000000000") + b"arg:w" + bytes.fromhex("0500000000000000") + b"aux:m"


def test_writes_what_mxnet_writes_byte_for_byte() -> None:
    data = {"arg:w": np.arange(6, dtype=np.float32).reshape(2, 3), "aux:m": np.array([7], dtype=np.int32)}
    assert len(WORKED_EXAMPLE) == 158
    assert dumps(data) == WORKED_EXAMPLE


def test_reads_the_worked_example() -> None:
    got = load(WORKED_EXAMPLE)
    assert list(got) == ["arg:w", "aux:m"]
    np.testing.assert_array_equal(got["arg:w"], np.arange(6, dtype=np.float32).reshape(2, 3))
    assert got["aux:m"].dtype == np.int32 and got["aux:m"].tolist() == [7]


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16, np.uint8, np.int32, np.int8, np.int64])
def test_round_trip_lists_and_dicts(tmp_path: Path, dtype) -> None:
    arrays = [np.arange(24).reshape(2, 3, 4).astype(dtype), np.array([1], dtype=dtype)]
    save(tmp_path / "l.params", arrays)
    back = load(tmp_path / "l.params")
    assert isinstance(back, list) and all(np.array_equal(a, b) and a.dtype == b.dtype for a, b in zip(arrays, back))
    save(tmp_path / "d.params", {"arg:a": arrays[0]})
    assert np.array_equal(load(tmp_path / "d.params")["arg:a"], arrays[0])


def _legacy_record(a: np.ndarray, dev_type: int = 2) -> bytes:
    return (struct.pack(f"<I{a.ndim}I", a.ndim, *a.shape) + struct.pack("<iii", dev_type, 0, 0)
            + a.astype("<f4").tobytes())


def test_reads_legacy_and_v1_records() -> None:
    a = np.arange(6, dtype=np.float32).reshape(3, 2)
    v1 = struct.pack("<Ii2q", 0xF993FAC8, 2, 3, 2) + struct.pack("<iii", 1, 0, 0) + a.tobytes()
    raw = struct.pack("<QQQ", 0x112, 0, 2) + _legacy_record(a) + v1 + struct.pack("<Q", 0)
    got = load_stored(raw)
    assert isinstance(got, list) and got[0].dev_type == 2  # saved from a GPU, loaded on the CPU
    assert np.array_equal(got[0].array, a) and np.array_equal(got[1].array, a)


@pytest.mark.parametrize("name", ["lenet_digits-0001.params", "lenet_digits_legacy-0001.params"])
def test_reads_the_files_apache_mxnet_wrote(name: str) -> None:
    params = load(FIXTURES / name)
    assert set(params) == {f"arg:{p}" for p in ("conv1_weight", "conv1_bias", "conv2_weight", "conv2_bias",
                                               "fc1_weight", "fc1_bias", "fc2_weight", "fc2_bias")}
    assert params["arg:conv1_weight"].shape == (20, 1, 5, 5) and params["arg:fc1_weight"].shape == (500, 800)
    assert all(a.dtype == np.float32 for a in params.values())


def test_both_lenet_formats_hold_the_same_weights() -> None:
    new, legacy = load(FIXTURES / "lenet_digits-0001.params"), load(FIXTURES / "lenet_digits_legacy-0001.params")
    for key in new:
        np.testing.assert_array_equal(new[key], legacy[key])


def test_rewriting_an_mxnet_file_gives_the_same_bytes() -> None:
    raw = (FIXTURES / "lenet_digits-0001.params").read_bytes()
    assert dumps(load(raw)) == raw


def test_damage_is_reported_with_the_byte_offset(tmp_path: Path) -> None:
    with pytest.raises(ParamsFileError, match=r"not an MXNet NDArray file \(magic 0x6f6c6c6568 at byte offset 0"):
        load(b"hello" + bytes(19))
    with pytest.raises(ParamsFileError, match=r"truncated at byte offset 88 while reading array 1's header"):
        load(WORKED_EXAMPLE[:88])
    with pytest.raises(ParamsFileError, match=r"truncated at byte offset 64 while reading array 0's 6 float32 values"):
        load(WORKED_EXAMPLE[:70])
    with pytest.raises(ParamsFileError, match=r"unexpected bytes after the names at byte offset 158"):
        load(WORKED_EXAMPLE + b"x")
    (tmp_path / "t.params").write_bytes(WORKED_EXAMPLE[:100])
    with pytest.raises(ParamsFileError, match=r"t\.params: truncated at byte offset 100"):
        load(tmp_path / "t.params")


def test_a_failed_save_leaves_the_old_file(tmp_path: Path) -> None:
    save(tmp_path / "p.params", {"a": np.ones(3, np.float32)})
    with pytest.raises(ParamsFileError, match="complex128"):
        save(tmp_path / "p.params", {"a": np.ones(3, np.complex128)})
    assert load(tmp_path / "p.params")["a"].tolist() == [1.0, 1.0, 1.0]
    assert [p.name for p in tmp_path.iterdir()] == ["p.params"]
