"""CSV ingest: types, options, sources (files, globs, folders, gzip, HTTP) and bad input."""

from __future__ import annotations

import functools
import gzip
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

import framestream as fs
from framestream.errors import CSVError


def _write(path: Path, text: str) -> str:
    path.write_text(text)
    return str(path)


def test_types_are_inferred_and_na_values_are_missing(tmp_path: Path) -> None:
    sf = fs.SFrame.read_csv(_write(tmp_path / "a.csv", "i,f,s\n1,1.5,x\nNA,,\n3,2.5,zz\n"))
    assert sf.column_types() == [int, float, str]
    assert sf["i"].to_list() == [1, None, 3]
    assert sf["f"].to_list() == [1.5, None, 2.5]
    assert sf["s"].to_list() == ["x", None, "zz"]


def test_sframe_constructor_reads_csv_paths(tmp_path: Path) -> None:
    assert fs.SFrame(_write(tmp_path / "a.csv", "a\n1\n2\n"))["a"].sum() == 3


def test_options_header_usecols_nrows_skiprows_delimiter(tmp_path: Path) -> None:
    path = _write(tmp_path / "a.tsv", "junk line\n1\t2\t3\n4\t5\t6\n7\t8\t9\n")
    sf = fs.SFrame.read_csv(path, delimiter="\t", header=False, skiprows=1, usecols=["X1", "X3"], nrows=2)
    assert sf.column_names() == ["X1", "X3"]
    assert sf["X3"].to_list() == [3, 6]


@pytest.mark.parametrize("hints, types", [
    (str, [str, str]),
    ([float, str], [float, str]),
    ({"a": float}, [float, int]),
])
def test_column_type_hints(tmp_path: Path, hints, types) -> None:
    sf = fs.SFrame.read_csv(_write(tmp_path / "a.csv", "a,b\n1,2\n3,4\n"), column_type_hints=hints)
    assert sf.column_types() == types


def test_list_dict_and_vector_cells(tmp_path: Path) -> None:
    path = _write(tmp_path / "a.csv", 'l,d,v\n"[1,2,""x""]","{""k"": 1}","[1 2 3]"\n"[]","{}","[4,5,6]"\n')
    sf = fs.SFrame.read_csv(path, column_type_hints={"l": list, "d": dict, "v": "vector"})
    assert sf["l"].to_list() == [[1, 2, "x"], []]
    assert sf["d"].to_list() == [{"k": 1}, {}]
    assert [list(v) for v in sf["v"].to_list()] == [[1, 2, 3], [4, 5, 6]]


def test_a_late_value_widens_an_inferred_column(tmp_path: Path) -> None:
    rows = "\n".join(f"{i},{i}" for i in range(300_000))
    sf = fs.SFrame.read_csv(_write(tmp_path / "a.csv", f"a,b\n{rows}\n2.5,text\n"), verbose=False)
    assert sf.column_types() == [float, str]
    assert sf.num_rows() == 300_001 and sf["a"][-1] == 2.5 and sf["b"][-1] == "text"


def test_gzip_globs_and_folders(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    for i in range(3):
        with gzip.open(tmp_path / "d" / f"part{i}.csv.gz", "wt") as f:
            f.write(f"a,b\n{i},x{i}\n")
    assert fs.SFrame.read_csv(str(tmp_path / "d"))["a"].to_list() == [0, 1, 2]
    assert fs.SFrame.read_csv(str(tmp_path / "d" / "part[12].csv.gz"))["b"].to_list() == ["x1", "x2"]


def test_wrong_field_count_names_file_and_line(tmp_path: Path) -> None:
    path = _write(tmp_path / "bad.csv", "a,b,c\n1,2,x\n3,4,y\n5,6,z,9\n7,8,w\n")
    with pytest.raises(CSVError, match=r"bad.csv, line 4: expected 3 fields, found 4: '5,6,z,9'"):
        fs.SFrame.read_csv(path)
    with pytest.warns(UserWarning, match="skipped 1 rows"):
        assert fs.SFrame.read_csv(path, error_bad_lines=False).num_rows() == 3


def test_bad_value_for_a_hinted_type_names_line_column_and_value(tmp_path: Path) -> None:
    rows = "\n".join(f"{i},{i}" for i in range(200_000))
    path = _write(tmp_path / "bad.csv", f"a,b\n{rows}\n7,seven\n")
    with pytest.raises(CSVError, match=r"bad.csv, line 200002, column 'b': value 'seven' is not a valid int"):
        fs.SFrame.read_csv(path, column_type_hints={"b": int}, verbose=False)


@pytest.mark.parametrize("kwargs, message", [
    ({"usecols": ["a", "nope"]}, r"usecols asks for columns \['nope'\]; the file has \['a', 'b'\]"),
    ({"column_type_hints": {"zz": int}}, r"column_type_hints names columns \['zz'\]"),
    ({"column_type_hints": [int]}, "lists 1 types for 2 columns"),
    ({"delimiter": "::"}, "one character"),
])
def test_bad_options(tmp_path: Path, kwargs, message) -> None:
    with pytest.raises(CSVError, match=message):
        fs.SFrame.read_csv(_write(tmp_path / "a.csv", "a,b\n1,2\n"), **kwargs)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(CSVError, match="nope.csv: no such file"):
        fs.SFrame.read_csv(str(tmp_path / "nope.csv"))


@pytest.fixture
def http_root(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    handler.log_message = lambda *a, **k: None  # type: ignore[method-assign]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", tmp_path
    finally:
        server.shutdown()


def test_reads_a_url_from_a_local_http_server(http_root) -> None:
    url, root = http_root
    _write(root / "houses.csv", "price,size\n100,1.5\n200,2.5\n")
    sf = fs.SFrame.read_csv(f"{url}/houses.csv")
    assert sf["price"].to_list() == [100, 200] and sf["size"].mean() == 2.0


def test_export_csv_and_parquet_round_trip(tmp_path: Path) -> None:
    sf = fs.SFrame({"i": [1, None, 3], "s": ["a", "b,c", None], "f": [0.25, 1.0, 2.0]})
    sf.export_csv(tmp_path / "out.csv")
    back = fs.SFrame.read_csv(str(tmp_path / "out.csv"))
    assert back["i"].to_list() == [1, None, 3] and back["s"].to_list() == ["a", "b,c", None]
    sf.to_parquet(tmp_path / "out.parquet")
    pq = fs.SFrame.read_parquet(str(tmp_path / "out.parquet"))
    assert pq["s"].to_list() == ["a", "b,c", None] and pq["f"].to_list() == [0.25, 1.0, 2.0]
