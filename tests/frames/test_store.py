"""The saved-frame format: round trips, atomic replacement, and damage reported by file."""

from __future__ import annotations

import array
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import zarr

import framestream as fs
from framestream.errors import CorruptStoreError, FrameExistsError, NotAnSFrameError


def _sample() -> fs.SFrame:
    return fs.SFrame({
        "i": [1, None, 3, 4],
        "f": [0.5, 1.5, None, -2.0],
        "s": ["a", "", None, "héllo wörld"],
        "b": [b"\x00\x01", b"", b"zz", None],
        "v": [array.array("d", [1, 2]), array.array("d", [3, 4]), None, array.array("d", [7, 8])],
        "l": [[1, "x"], [], None, [2.5]],
        "d": [{"k": 1}, {}, {"a": [1, 2]}, None],
        "odd/name with space": [1, 2, 3, 4],
    })


def test_round_trip_keeps_types_values_and_missing(tmp_path: Path) -> None:
    sf = _sample()
    sf.save(tmp_path / "f")
    back = fs.SFrame(str(tmp_path / "f"))
    assert back.column_names() == sf.column_names()
    assert back.column_types() == sf.column_types()
    for name in sf.column_names():
        expected, got = sf[name].to_list(), back[name].to_list()
        if name == "v":
            expected = [None if x is None else list(x) for x in expected]
            got = [None if x is None else list(x) for x in got]
        assert got == expected, name
    assert back["i"].num_missing() == 1


def test_open_reads_metadata_only(tmp_path: Path) -> None:
    sf = fs.SFrame({"x": np.arange(100_000, dtype=np.int64)})
    sf.save(tmp_path / "f")
    for chunk in (tmp_path / "f").glob("c0/values/c/*"):
        chunk.unlink()  # no data left: opening must still work, reading must not
    opened = fs.SFrame(str(tmp_path / "f"))
    assert opened.num_rows() == 100_000 and opened.column_types() == [int]
    with pytest.raises(CorruptStoreError, match=r"c0/values/c/0: chunk file missing .*column 'x'"):
        opened["x"].sum()


def test_layout_is_a_zarr_v3_group_with_row_count_and_schema(tmp_path: Path) -> None:
    _sample().save(tmp_path / "f")
    group = zarr.open_group(str(tmp_path / "f"), mode="r")
    attrs = group.attrs["framestream"]
    assert attrs["format"] == "framestream.sframe" and attrs["num_rows"] == 4
    assert [c["type"] for c in attrs["columns"]] == ["int", "float", "str", "bytes", "vector", "list", "dict", "int"]
    assert group["c0/values"].shape == (4,) and group["c4/values"].shape == (4, 2)
    assert group["c2/offsets"].shape == (4,) and group["c0/valid"].shape == (4,)
    assert "valid" not in group["c7"]  # no missing values, no mask


def test_save_refuses_to_overwrite_without_flag(tmp_path: Path) -> None:
    fs.SFrame({"x": [1]}).save(tmp_path / "f")
    with pytest.raises(FrameExistsError, match="overwrite=True"):
        fs.SFrame({"x": [2]}).save(tmp_path / "f")
    assert fs.SFrame(str(tmp_path / "f"))["x"].to_list() == [1]
    fs.SFrame({"x": [2]}).save(tmp_path / "f", overwrite=True)
    assert fs.SFrame(str(tmp_path / "f"))["x"].to_list() == [2]


def test_overwrite_never_deletes_a_folder_that_is_not_a_frame(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "thesis.txt").write_text("precious")
    with pytest.raises(NotAnSFrameError, match="no zarr.json"):
        fs.SFrame({"x": [1]}).save(tmp_path / "docs", overwrite=True)
    assert (tmp_path / "docs" / "thesis.txt").read_text() == "precious"


def test_saving_over_the_frame_being_read(tmp_path: Path) -> None:
    fs.SFrame({"x": np.arange(10)}).save(tmp_path / "f")
    sf = fs.SFrame(str(tmp_path / "f"))
    sf["x"] = sf["x"] * 10
    sf.save(tmp_path / "f", overwrite=True)
    assert fs.SFrame(str(tmp_path / "f"))["x"].to_list() == list(range(0, 100, 10))
    assert sf["x"].sum() == 450  # the frame now reads its own saved copy


@pytest.mark.parametrize("make, message", [
    (lambda p: p.mkdir(), "no zarr.json"),
    (lambda p: p.write_text("hello"), "no zarr.json"),
    (lambda p: zarr.open_group(str(p), mode="w", zarr_format=3), "not a saved SFrame"),
])
def test_opening_something_else_says_what_it_is(tmp_path: Path, make, message) -> None:
    target = tmp_path / "x"
    make(target)
    with pytest.raises(NotAnSFrameError, match=message):
        fs.SFrame(str(target))


def test_missing_path(tmp_path: Path) -> None:
    with pytest.raises(NotAnSFrameError, match="does not exist"):
        fs.SFrame(str(tmp_path / "nothing"))


def test_truncated_chunk_names_the_file(tmp_path: Path) -> None:
    fs.SFrame({"x": np.arange(1000, dtype=np.float64)}).save(tmp_path / "f")
    chunk = tmp_path / "f" / "c0" / "values" / "c" / "0"
    chunk.write_bytes(chunk.read_bytes()[:10])
    with pytest.raises(CorruptStoreError, match=r"c0/values.*column 'x'"):
        fs.SFrame(str(tmp_path / "f"))["x"].sum()


def test_interrupted_save_is_not_readable(tmp_path: Path) -> None:
    fs.SFrame({"x": [1, 2]}).save(tmp_path / "f")
    group = zarr.open_group(str(tmp_path / "f"), mode="r+")
    attrs = dict(group.attrs["framestream"])
    del attrs["num_rows"]
    group.attrs["framestream"] = attrs
    with pytest.raises(CorruptStoreError, match="interrupted save"):
        fs.SFrame(str(tmp_path / "f"))


def test_column_length_damage_is_reported(tmp_path: Path) -> None:
    fs.SFrame({"x": [1, 2, 3]}).save(tmp_path / "f")
    zarr.open_array(str(tmp_path / "f" / "c0" / "values"), mode="r+").resize((2,))
    with pytest.raises(CorruptStoreError, match=r"c0/values: 2 rows but the frame has 3 \(column 'x'\)"):
        fs.SFrame(str(tmp_path / "f"))


def _kill_during_save(path: Path, tmp_path: Path) -> None:
    env = dict(os.environ, FRAMESTREAM_CHUNK_BYTES=str(64 << 10), FRAMESTREAM_HOME=str(tmp_path / "home"))
    job = Path(__file__).with_name("save_job.py")
    proc = subprocess.Popen([sys.executable, str(job), str(path)], env=env, stdout=subprocess.PIPE)
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline:
            staged = list(path.parent.glob(f".{path.name}.writing-*"))
            if staged and len(list(staged[0].glob("c*/*/c/*"))) > 20:
                break
            assert proc.poll() is None, "the save finished before it could be interrupted"
            time.sleep(0.01)
        else:
            pytest.fail("the child never started writing")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()


def test_killed_save_leaves_the_earlier_frame_readable_and_unchanged(tmp_path: Path) -> None:
    path = tmp_path / "frame"
    fs.SFrame({"a": [1.0, 2.0], "b": [3, 4], "c": ["x", "y"]}).save(path)
    _kill_during_save(path, tmp_path)
    survivor = fs.SFrame(str(path))
    assert survivor.num_rows() == 2
    assert survivor["a"].to_list() == [1.0, 2.0] and survivor["c"].to_list() == ["x", "y"]
    fs.SFrame({"a": [9.0], "b": [9], "c": ["z"]}).save(path, overwrite=True)  # leftovers do not block
    assert fs.SFrame(str(path))["c"].to_list() == ["z"]


def test_killed_first_save_leaves_nothing_readable(tmp_path: Path) -> None:
    path = tmp_path / "frame"
    _kill_during_save(path, tmp_path)
    assert not path.exists()
    with pytest.raises(NotAnSFrameError):
        fs.SFrame(str(path))
