"""SFrame operations against pandas as the oracle.

Frames are built from Python lists with missing values (None) in every column, in one
row chunk or in several (pieces appended, each its own chunk), and every result is
compared with what pandas computes from the same data.
"""

from __future__ import annotations

import array
import io
import math

import dask.dataframe as dd
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

import framestream as fs
from framestream import aggregate as agg
from framestream.errors import (
    ColumnNotFoundError,
    ConversionError,
    LengthMismatchError,
    SchemaError,
)
from tests.frames.oracle import py

N = 1200
PARTS = [pytest.param(1, id="1chunk"), pytest.param(4, id="4chunks")]


# ---------------------------------------------------------------------------------- helpers


def make_data(seed: int = 0, n: int = N) -> dict[str, list]:
    """Columns of every kind a key or value can be, with None sprinkled in."""
    rng = np.random.default_rng(seed)

    def maybe(values, p):
        return [None if rng.random() < p else v for v in values]

    return {
        "id": list(range(n)),
        "k": maybe(rng.choice(["a", "b", "c", "d"], n).tolist(), 0.08),
        "k2": maybe([int(v) for v in rng.integers(0, 3, n)], 0.08),
        "x": maybe([round(float(v), 3) for v in rng.normal(2.0, 3.0, n)], 0.1),
        "n": maybe([int(v) for v in rng.integers(-50, 50, n)], 0.1),
    }


def frame(data: dict[str, list], parts: int = 1) -> fs.SFrame:
    """An SFrame of ``data`` spread over ``parts`` row chunks."""
    types = {k: fs.SArray(v).dtype for k, v in data.items()}
    n = len(next(iter(data.values())))
    bounds = np.linspace(0, n, parts + 1).astype(int)
    sf = None
    for lo, hi in zip(bounds[:-1], bounds[1:]):
        piece = fs.SFrame({k: fs.SArray(v[lo:hi], dtype=types[k]) for k, v in data.items()})
        sf = piece if sf is None else sf.append(piece)
    assert sf[sf.column_names()[0]]._num_blocks() == parts
    return sf


def pandas_of(data: dict[str, list]) -> pd.DataFrame:
    """The oracle frame: nullable Int64 for ints, float64 with NaN, object for the rest."""
    cols = {}
    for k, v in data.items():
        t = fs.SArray(v).dtype
        if t is int:
            has_missing = any(x is None for x in v)
            cols[k] = pd.array(v, dtype="Int64") if has_missing else np.array(v, dtype=np.int64)
        elif t is float:
            cols[k] = np.array([np.nan if x is None else x for x in v], dtype=np.float64)
        else:
            cols[k] = pd.Series(v, dtype=object)
    return pd.DataFrame(cols)




def rows_of(sf: fs.SFrame, columns=None) -> list[tuple]:
    columns = columns or sf.column_names()
    return [tuple(py(row[c]) for c in columns) for row in sf]


def rows_of_df(df: pd.DataFrame, columns=None) -> list[tuple]:
    columns = columns or list(df.columns)
    return [tuple(py(v) for v in r) for r in df[columns].itertuples(index=False)]


def approx_rows(rows: list[tuple]) -> list[tuple]:
    return [tuple(pytest.approx(v, rel=1e-9, abs=1e-9) if isinstance(v, float) else v for v in r)
            for r in rows]


def approx_list(values) -> list:
    return list(approx_rows([tuple(values)])[0])


def sorted_rows(rows: list[tuple]) -> list[tuple]:
    return sorted(rows, key=lambda r: tuple((v is None, repr(v)) for v in r))


@pytest.fixture
def data():
    return make_data()


@pytest.fixture
def df(data):
    return pandas_of(data)


# ---------------------------------------------------------------------------------- schema


def test_schema_accessors(data):
    sf = frame(data, 4)
    assert sf.column_names() == ["id", "k", "k2", "x", "n"]
    assert sf.column_types() == [int, str, int, float, int] == sf.dtype
    assert sf.num_rows() == len(sf) == N
    assert sf.num_columns() == 5
    assert sf.shape == (N, 5)
    assert "k" in sf and "zz" not in sf


# ---------------------------------------------------------------------------------- columns


@pytest.mark.parametrize("parts", PARTS)
def test_column_assignment(data, df, parts):
    sf = frame(data, parts)
    sf["y"] = sf["x"] * 2 - 1
    sf["l"] = list(range(N, 0, -1))
    sf["arr"] = np.arange(N) * 0.5
    sf["ind"] = fs.SArray([i % 7 for i in range(N)])  # chunked on its own
    sf["c"] = 5
    sf["f"] = 1.5
    sf["s"] = "z"
    sf["n"] = sf["n"] + 100  # replaces a column in place of the old one
    df = df.assign(y=df["x"] * 2 - 1, l=list(range(N, 0, -1)), arr=np.arange(N) * 0.5,
                   ind=[i % 7 for i in range(N)], c=5, f=1.5, s="z", n=df["n"] + 100)
    assert sf.column_names() == list(df.columns)
    assert sf.column_types() == [int, str, int, float, int, float, int, float, int, int, float, str]
    assert rows_of(sf) == approx_rows(rows_of_df(df))


@pytest.mark.parametrize("parts", PARTS)
def test_assign_none_scalar(data, parts):
    sf = frame(data, parts)
    sf["nothing"] = None
    assert sf["nothing"].num_missing() == N
    assert sf["nothing"].to_list() == [None] * N


def test_assign_scalar_to_the_only_column():
    sf = fs.SFrame({"a": [1, 2, 3]})
    sf["a"] = 0
    assert sf.num_rows() == 3
    assert sf["a"].to_list() == [0, 0, 0]


def test_replace_the_only_column_with_other_length():
    sf = fs.SFrame({"a": [1, 2, 3]})
    sf["a"] = [4, 5]
    assert sf.num_rows() == 2 and sf["a"].to_list() == [4, 5]


@pytest.mark.parametrize("parts", PARTS)
@pytest.mark.parametrize(
    "value",
    [[1, 2, 3], fs.SArray([1.0, 2.0]), np.arange(7), list(range(N + 1))],
    ids=["list", "sarray", "numpy", "one-too-many"],
)
def test_wrong_length_assignment_names_column_and_lengths(data, parts, value):
    sf = frame(data, parts)
    with pytest.raises(LengthMismatchError) as info:
        sf["bad"] = value
    message = str(info.value)
    assert "'bad'" in message and str(len(value)) in message and str(N) in message
    assert isinstance(info.value, ValueError)
    assert "bad" not in sf.column_names()  # the failed assignment left the frame alone
    assert sf.num_rows() == N


def test_constructor_with_unequal_columns():
    with pytest.raises(LengthMismatchError, match="'b'.*3.*2"):
        fs.SFrame({"a": [1, 2], "b": [1, 2, 3]})


@pytest.mark.parametrize(
    "action",
    [
        lambda sf: sf["zz"],
        lambda sf: sf[["id", "zz"]],
        lambda sf: sf.select_column("zz"),
        lambda sf: sf.select_columns(["zz"]),
        lambda sf: sf.remove_column("zz"),
        lambda sf: sf.remove_columns(["zz", "k"]),
        lambda sf: sf.rename({"zz": "q"}),
        lambda sf: sf.fillna("zz", 0),
        lambda sf: sf.dropna(["zz"]),
        lambda sf: sf.sort("zz"),
        lambda sf: sf.groupby("zz", {"c": agg.COUNT()}),
        lambda sf: sf.groupby("k", {"s": agg.SUM("zz")}),
        lambda sf: sf.__delitem__("zz"),
    ],
    ids=["getitem", "list", "select_column", "select_columns", "remove_column", "remove_columns",
         "rename", "fillna", "dropna", "sort", "groupby-key", "groupby-value", "del"],
)
def test_missing_column_error_lists_columns(data, action):
    sf = frame(data, 1)
    with pytest.raises(ColumnNotFoundError) as info:
        action(sf)
    message = str(info.value)
    assert "'zz'" in message
    for name in sf.column_names():
        assert repr(name) in message
    assert isinstance(info.value, KeyError)


def test_remove_columns_with_a_missing_name_changes_nothing(data):
    sf = frame(data, 1)
    with pytest.raises(ColumnNotFoundError):
        sf.remove_columns(["k", "zz"], inplace=True)
    assert sf.column_names() == ["id", "k", "k2", "x", "n"]


def test_add_and_remove_columns(data, df):
    sf = frame(data, 4)
    added = sf.add_column(fs.SArray(list(range(N))), "r")
    assert added.column_names() == ["id", "k", "k2", "x", "n", "r"]
    assert sf.column_names() == ["id", "k", "k2", "x", "n"]  # not in place
    assert added["r"].to_list() == list(range(N))
    auto = sf.add_column([0] * N)
    assert auto.column_names()[-1] == "X6"
    sf.add_column(sf["x"] + 1, "x1", inplace=True)
    assert sf.column_names()[-1] == "x1"
    both = sf.add_columns([fs.SArray([1] * N), ["s"] * N], ["one", "str"])
    assert both.column_names()[-2:] == ["one", "str"] and both.column_types()[-2:] == [int, str]
    from_frame = fs.SFrame({"id": [0]}).add_columns(fs.SFrame({"p": [1], "q": ["a"]}))
    assert from_frame.column_names() == ["id", "p", "q"]

    removed = sf.remove_column("k")
    assert "k" not in removed.column_names() and "k" in sf.column_names()
    assert removed.num_rows() == N
    removed = sf.remove_columns(["k", "k2"])
    assert removed.column_names() == ["id", "x", "n", "x1"]
    sf.remove_column("x1", inplace=True)
    assert sf.column_names() == ["id", "k", "k2", "x", "n"]
    del sf["n"]
    assert sf.column_names() == ["id", "k", "k2", "x"]
    assert rows_of(sf) == approx_rows(rows_of_df(df, ["id", "k", "k2", "x"]))


def test_added_column_values(data, df):
    sf = frame(data, 4)
    sf.add_column(sf["x"] + 1, "x1", inplace=True)
    assert rows_of(sf, ["x1"]) == approx_rows(rows_of_df(df.assign(x1=df["x"] + 1), ["x1"]))


def test_rename(data, df):
    sf = frame(data, 4)
    renamed = sf.rename({"k": "key", "x": "value"})
    assert renamed.column_names() == ["id", "key", "k2", "value", "n"]
    assert sf.column_names() == ["id", "k", "k2", "x", "n"]
    assert rows_of(renamed) == approx_rows(rows_of_df(df))
    sf.rename({"id": "row"}, inplace=True)
    assert sf.column_names()[0] == "row"
    with pytest.raises(SchemaError, match="k2"):
        sf.rename({"k": "k2"})


def test_swap_columns(data, df):
    sf = frame(data, 4)
    swapped = sf.swap_columns("id", "x")
    assert swapped.column_names() == ["x", "k", "k2", "id", "n"]
    assert sf.column_names() == ["id", "k", "k2", "x", "n"]
    assert rows_of(swapped) == approx_rows(rows_of_df(df, ["x", "k", "k2", "id", "n"]))
    sf.swap_columns("k", "n", inplace=True)
    assert sf.column_names() == ["id", "n", "k2", "x", "k"]


def test_select_columns(data, df):
    sf = frame(data, 4)
    picked = sf[["n", "k"]]
    assert picked.column_names() == ["n", "k"]
    assert rows_of(picked) == rows_of_df(df, ["n", "k"])
    assert sf.select_columns(["x", "id"]).column_names() == ["x", "id"]
    assert sf.select_column("k").to_list() == data["k"]
    assert sf[[int]].column_names() == ["id", "k2", "n"]
    assert sf[[str, float]].column_names() == ["k", "x"]
    assert sf[float].column_names() == ["x"]


def test_add_row_number(data):
    sf = frame(data, 4)[["k"]]
    numbered = sf.add_row_number("row", start=10)
    assert numbered.column_names() == ["row", "k"]
    assert numbered["row"].to_list() == list(range(10, 10 + N))


# ---------------------------------------------------------------------------------- filtering

PREDICATES = {
    "x>0": (lambda c: c["x"] > 0, lambda d: d["x"] > 0),
    "n<=10": (lambda c: c["n"] <= 10, lambda d: d["n"] <= 10),
    "k==a": (lambda c: c["k"] == "a", lambda d: d["k"] == "a"),
    "k2!=1": (lambda c: c["k2"] != 1, lambda d: d["k2"] != 1),
    "last-chunk": (lambda c: c["id"] >= N - 100, lambda d: d["id"] >= N - 100),
    "none": (lambda c: c["x"] > 1e9, lambda d: d["x"] > 1e9),
    "all": (lambda c: c["id"] >= 0, lambda d: d["id"] >= 0),
}


def pd_mask(series) -> np.ndarray:
    return pd.Series(series).astype("boolean").fillna(False).to_numpy(dtype=bool)


@pytest.mark.parametrize("parts", PARTS)
@pytest.mark.parametrize("name", list(PREDICATES))
def test_filter_matches_pandas(data, df, parts, name):
    ours, theirs = PREDICATES[name]
    sf = frame(data, parts)
    filtered = sf[ours(sf)]
    expected = df[pd_mask(theirs(df))]
    assert filtered.num_rows() == len(expected) == len(filtered)
    assert rows_of(filtered) == approx_rows(rows_of_df(expected))


@pytest.mark.parametrize(
    "name, parts",
    [(name, parts) for name in PREDICATES if name not in ("none", "last-chunk") for parts in (1, 4)]
    + [("last-chunk", 1), ("last-chunk", 4), ("none", 1), ("none", 4)],
)
def test_reductions_after_filter(data, df, name, parts):
    ours, theirs = PREDICATES[name]
    sf = frame(data, parts)
    filtered = sf[ours(sf)]
    expected = df[pd_mask(theirs(df))]
    assert filtered["n"].sum() == int(expected["n"].sum())
    assert filtered["n"].num_missing() == int(expected["n"].isna().sum())
    x = expected["x"].dropna()
    for got, want in [(filtered["x"].mean(), x.mean()), (filtered["x"].std(), x.std(ddof=0)),
                      (filtered["x"].min(), x.min()), (filtered["x"].max(), x.max())]:
        assert py(got) == (None if len(x) == 0 else pytest.approx(want))


@pytest.mark.parametrize("parts", PARTS)
def test_operations_on_a_filtered_frame(data, df, parts):
    sf = frame(data, parts)
    f = sf[sf["x"] > 0]
    e = df[pd_mask(df["x"] > 0)].reset_index(drop=True)
    assert f.num_rows() == len(e)
    assert f["x"].mean() == pytest.approx(e["x"].mean())
    assert f["x"].std() == pytest.approx(e["x"].std(ddof=0))
    assert f["n"].max() == e["n"].max()
    f["y"] = f["x"] * 2 + 1
    f["neg"] = -f["n"]
    f["c"] = 3
    f["seq"] = list(range(len(e)))
    e = e.assign(y=e["x"] * 2 + 1, neg=-e["n"], c=3, seq=list(range(len(e))))
    assert f.column_names() == list(e.columns)
    assert rows_of(f) == approx_rows(rows_of_df(e))
    assert rows_of(f.head(5)) == approx_rows(rows_of_df(e.head(5)))
    assert rows_of(f.tail(5)) == approx_rows(rows_of_df(e.tail(5)))
    assert rows_of(f[3:9]) == approx_rows(rows_of_df(e.iloc[3:9]))
    assert tuple(py(v) for v in f[-1].values()) == approx_rows(rows_of_df(e.iloc[[-1]]))[0]
    assert f["y"].to_list() == approx_list(e["y"])


@pytest.mark.parametrize("parts", PARTS)
def test_filter_then_filter(data, df, parts):
    sf = frame(data, parts)
    f1 = sf[sf["x"] > 0]
    f2 = f1[f1["n"] > 0]
    f3 = f2[f2["k"] == "b"]
    e1 = df[pd_mask(df["x"] > 0)]
    e2 = e1[pd_mask(e1["n"] > 0)]
    e3 = e2[pd_mask(e2["k"] == "b")]
    assert (f1.num_rows(), f2.num_rows(), f3.num_rows()) == (len(e1), len(e2), len(e3))
    assert rows_of(f3) == approx_rows(rows_of_df(e3))
    f2["z"] = f2["n"] * 10
    assert f2["z"].to_list() == [int(v) * 10 for v in e2["n"]]
    assert f2["z"].sum() == int(e2["n"].sum()) * 10


def test_filter_by_independent_mask(data, df):
    sf = frame(data, 4)
    mask = fs.SArray([int(i % 3 == 0) for i in range(N)])
    assert rows_of(sf[mask]) == approx_rows(rows_of_df(df.iloc[::3]))


def test_filter_mask_length_mismatch(data):
    sf = frame(data, 4)
    with pytest.raises(LengthMismatchError):
        sf[fs.SArray([1, 0, 1])]


@pytest.mark.parametrize("parts", PARTS)
def test_filter_with_combined_masks(data, df, parts):
    sf = frame(data, parts)
    filtered = sf[(sf["x"] > 0) & (sf["k"] == "a") | (sf["n"] < -40)]
    condition = pd_mask(((df["x"] > 0) & (df["k"] == "a")) | (df["n"] < -40))
    present = df[["x", "k", "n"]].notna().all(axis=1).to_numpy()  # None in, None out: not kept
    expected = df[condition & present]
    assert rows_of(filtered) == approx_rows(rows_of_df(expected))


# ---------------------------------------------------------------------------------- apply


@pytest.mark.parametrize("parts", PARTS)
@pytest.mark.parametrize(
    "fn, dtype, expected_type",
    [
        (lambda r: r["id"] * 2, None, int),
        (lambda r: f"{r['k']}-{r['k2']}", None, str),
        (lambda r: None if r["x"] is None or r["n"] is None else r["x"] + r["n"], None, float),
        (lambda r: r["id"], float, float),
        (lambda r: [r["id"], r["k2"]], None, list),
    ],
    ids=["int", "str", "float-with-None", "dtype", "list"],
)
def test_apply_over_rows(data, df, parts, fn, dtype, expected_type):
    sf = frame(data, parts)
    result = sf.apply(fn, dtype=dtype)
    assert result.dtype is expected_type
    records = [dict(zip(data, values)) for values in zip(*data.values())]
    expected = [fn(r) for r in records]
    if expected_type is float:
        expected = [None if v is None else float(v) for v in expected]
    assert [py(v) for v in result] == approx_list(expected)
    sf["out"] = result
    assert sf["out"].dtype is expected_type


def test_apply_on_filtered_frame(data, df):
    sf = frame(data, 4)
    f = sf[sf["k"] == "c"]
    result = f.apply(lambda r: r["id"] + 1)
    assert result.to_list() == [int(i) + 1 for i in df[pd_mask(df["k"] == "c")]["id"]]


def test_apply_error_row_after_filter():
    # after a lazy filter the chunk lengths are unknown; the error says so rather than guess
    sf = fs.SFrame({"n": [1, 2], "s": ["1", "2"]}).append(fs.SFrame({"n": [3, 4], "s": ["x", "4"]}))
    f = sf[sf["n"] > 1]  # 'x' is row 0 of the second chunk
    with pytest.raises(ConversionError, match=r"row 0 of chunk 1 \(counted within the chunk"):
        f.apply(lambda r: r["s"], dtype=int).to_list()


def test_apply_error_names_row():
    sf = fs.SFrame({"n": [1, 2], "s": ["1", "2"]}).append(fs.SFrame({"n": [3, 4], "s": ["x", "4"]}))
    with pytest.raises(ConversionError, match=r"row 2.*'x'"):
        sf.apply(lambda r: r["s"], dtype=int).to_list()


# ---------------------------------------------------------------------------------- append


@pytest.mark.parametrize("parts", [(1, 1), (2, 3)], ids=["1+1", "2+3"])
def test_append(parts):
    d1, d2 = make_data(1, 300), make_data(2, 200)
    a, b = frame(d1, parts[0]), frame(d2, parts[1])
    both = a.append(b)
    expected = pd.concat([pandas_of(d1), pandas_of(d2)], ignore_index=True)
    assert both.num_rows() == 500
    assert both.column_types() == a.column_types()
    assert rows_of(both) == approx_rows(rows_of_df(expected))
    assert rows_of(a + b) == rows_of(both)
    assert a.num_rows() == 300 and b.num_rows() == 200  # inputs unchanged
    assert both["x"].mean() == pytest.approx(expected["x"].mean())


def test_append_with_columns_in_other_order():
    a = fs.SFrame({"i": [1, 2], "s": ["a", None]})
    b = fs.SFrame({"s": ["c"], "i": fs.SArray([None], dtype=int)})
    both = a.append(b)
    assert both.column_names() == ["i", "s"]
    assert rows_of(both) == [(1, "a"), (2, None), (None, "c")]


def test_append_to_and_from_empty():
    a = fs.SFrame({"i": [1, 2]})
    assert a.append(fs.SFrame())["i"].to_list() == [1, 2]
    assert fs.SFrame().append(a)["i"].to_list() == [1, 2]
    assert a.append(fs.SFrame({"i": fs.SArray([], dtype=int)}))["i"].to_list() == [1, 2]


def test_append_filtered_frames(data, df):
    sf = frame(data, 4)
    low, high = sf[sf["id"] < 100], sf[sf["id"] >= 1100]
    both = low.append(high)
    assert both.num_rows() == 200
    assert rows_of(both) == approx_rows(rows_of_df(pd.concat([df.iloc[:100], df.iloc[1100:]])))


@pytest.mark.parametrize(
    "other, match",
    [
        (fs.SFrame({"i": [1.5], "s": ["a"]}), "'i'.*int.*float"),
        (fs.SFrame({"i": [1], "s": [2]}), "'s'.*str.*int"),
        (fs.SFrame({"i": [1]}), "same columns"),
        (fs.SFrame({"i": [1], "s": ["a"], "t": [1]}), "same columns"),
    ],
    ids=["int-vs-float", "str-vs-int", "fewer-columns", "more-columns"],
)
def test_append_type_mismatch(other, match):
    with pytest.raises(SchemaError, match=match):
        fs.SFrame({"i": [1, 2], "s": ["a", "b"]}).append(other)


# ---------------------------------------------------------------------------------- sampling


@pytest.mark.parametrize("parts", PARTS)
@pytest.mark.parametrize("fraction", [0.2, 0.5, 0.8])
def test_random_split(data, parts, fraction):
    sf = frame(data, parts)
    first, second = sf.random_split(fraction, seed=42)
    ids1, ids2 = first["id"].to_list(), second["id"].to_list()
    assert not set(ids1) & set(ids2)
    assert sorted(ids1 + ids2) == list(range(N))
    assert ids1 == sorted(ids1) and ids2 == sorted(ids2)  # row order is kept
    tolerance = 5 * math.sqrt(N * fraction * (1 - fraction))
    assert abs(len(ids1) - fraction * N) < tolerance
    assert first.num_rows() + second.num_rows() == N
    # rows travel whole
    by_id = {r[0]: r for r in rows_of(sf)}
    assert all(by_id[r[0]] == r for r in rows_of(first) + rows_of(second))
    # deterministic for a seed, different for another
    again1, again2 = sf.random_split(fraction, seed=42)
    assert again1["id"].to_list() == ids1 and again2["id"].to_list() == ids2
    assert sf.random_split(fraction, seed=43)[0]["id"].to_list() != ids1


@pytest.mark.parametrize("parts", PARTS)
def test_sample(data, parts):
    sf = frame(data, parts)
    s = sf.sample(0.3, seed=7)
    ids = s["id"].to_list()
    assert set(ids) <= set(range(N)) and ids == sorted(ids)
    assert abs(len(ids) - 0.3 * N) < 5 * math.sqrt(N * 0.21)
    assert sf.sample(0.3, seed=7)["id"].to_list() == ids
    assert sf.sample(0.0, seed=1).num_rows() == 0
    assert sf.sample(1.0, seed=1).num_rows() == N
    by_id = {r[0]: r for r in rows_of(sf)}
    assert all(by_id[r[0]] == r for r in rows_of(s))


@pytest.mark.parametrize("fraction", [-0.1, 1.5])
def test_sample_fraction_out_of_range(data, fraction):
    sf = frame(data, 1)
    with pytest.raises(ValueError):
        sf.sample(fraction)
    with pytest.raises(ValueError):
        sf.random_split(fraction)


# ---------------------------------------------------------------------------------- sort

SORTS = [
    pytest.param("x", True, id="float-asc"),
    pytest.param("x", False, id="float-desc"),
    pytest.param("k", True, id="str-asc"),
    pytest.param("k", False, id="str-desc"),
    pytest.param("k2", False, id="int-none-desc"),
    pytest.param(["k", "n"], True, id="two-keys"),
    pytest.param([("k", True), ("x", False)], True, id="mixed-order"),
    pytest.param([("k2", False), ("k", True), ("n", False)], True, id="three-keys"),
    pytest.param("id", False, id="id-desc"),
]
ONE_CHUNK_SORTS = [
    pytest.param("x", False, id="float-desc"),
    pytest.param([("k", True), ("x", False)], True, id="mixed-order"),
]


def pandas_sort(df, keys, ascending):
    if isinstance(keys, str):
        return df.sort_values(keys, ascending=ascending, na_position="last", kind="stable"), [keys]
    names = [k[0] if isinstance(k, tuple) else k for k in keys]
    orders = [k[1] if isinstance(k, tuple) else ascending for k in keys]
    return df.sort_values(names, ascending=orders, na_position="last", kind="stable"), names


@pytest.mark.parametrize("parts", [pytest.param(4, id="4chunks")])
@pytest.mark.parametrize("keys, ascending", SORTS)
def test_sort_matches_pandas(data, df, parts, keys, ascending):
    sf = frame(data, parts)
    result = sf.sort(keys, ascending=ascending)
    expected, names = pandas_sort(df, keys, ascending)
    assert result.num_rows() == N
    assert result.column_names() == sf.column_names()
    assert result.column_types() == sf.column_types()
    assert rows_of(result, names) == rows_of_df(expected, names)  # keys in order
    assert sorted_rows(rows_of(result)) == sorted_rows(rows_of(sf))  # same rows
    assert sf["id"].to_list() == list(range(N))  # the input is unchanged


@pytest.mark.parametrize("keys, ascending", ONE_CHUNK_SORTS)
def test_sort_one_chunk(data, df, keys, ascending):
    test_sort_matches_pandas(data, df, 1, keys, ascending)


def test_sort_a_filtered_frame(data, df):
    sf = frame(data, 4)
    f = sf[sf["k"] == "a"]
    result = f.sort("x", ascending=False)
    expected = df[pd_mask(df["k"] == "a")].sort_values("x", ascending=False, na_position="last")
    assert rows_of(result, ["x"]) == rows_of_df(expected, ["x"])
    assert result.num_rows() == len(expected)


def test_sort_topk(data, df):
    sf = frame(data, 4)
    top = sf.topk("n", k=5)
    assert [r[0] for r in rows_of(top, ["n"])] == sorted(df["n"].dropna().astype(int), reverse=True)[:5]


def test_sort_by_unsupported_type():
    sf = fs.SFrame({"v": fs.SArray(np.ones((3, 2))), "l": [[1], [2], [3]]})
    for key in ("v", "l"):
        with pytest.raises(SchemaError, match=key):
            sf.sort(key)


# ---------------------------------------------------------------------------------- groupby

KINDS = ["COUNT", "SUM", "MEAN", "MIN", "MAX", "STD", "VAR"]


def pandas_groupby(df, keys, column):
    g = df.assign(_v=df[column].astype("float64")).groupby(keys, dropna=False)["_v"]
    table = pd.DataFrame({
        "COUNT": g.size(), "SUM": g.sum(), "MEAN": g.mean(), "MIN": g.min(), "MAX": g.max(),
        "STD": g.std(ddof=0), "VAR": g.var(ddof=0),
    })
    out = {}
    for key, row in table.iterrows():
        key = key if isinstance(key, tuple) else (key,)
        out[tuple(py(k) for k in key)] = {kind: py(row[kind]) for kind in KINDS}
    return out


@pytest.mark.parametrize("parts", PARTS)
@pytest.mark.parametrize("column", ["x", "n"])
@pytest.mark.parametrize("keys", ["k", "k2", ["k", "k2"], ["k2", "k"]], ids=str)
def test_groupby_every_aggregator(data, df, parts, keys, column):
    sf = frame(data, parts)
    ops = {
        "COUNT": agg.COUNT(), "SUM": agg.SUM(column), "MEAN": agg.MEAN(column), "MIN": agg.MIN(column),
        "MAX": agg.MAX(column), "STD": agg.STD(column), "VAR": agg.VAR(column),
    }
    result = sf.groupby(keys, ops)
    key_names = [keys] if isinstance(keys, str) else keys
    assert result.column_names() == key_names + KINDS
    value_type = sf[column].dtype
    assert result.column_types()[len(key_names):] == [int, value_type, float, value_type, value_type,
                                                      float, float]
    expected = pandas_groupby(df, key_names, column)
    got = {}
    for row in result:
        key = tuple(row[k] for k in key_names)
        assert key not in got  # one row per group
        got[key] = {kind: py(row[kind]) for kind in KINDS}
    assert set(got) == set(expected)
    for key, stats in expected.items():
        assert got[key]["COUNT"] == stats["COUNT"]
        for kind in KINDS[1:]:
            if stats[kind] is None:
                assert got[key][kind] is None, (key, kind)
            else:
                assert got[key][kind] == pytest.approx(stats[kind], rel=1e-9, abs=1e-9), (key, kind)


def test_groupby_group_with_only_missing_values():
    sf = fs.SFrame({"k": ["a", "a", "b", "b"], "x": [1.0, 2.0, None, None]})
    result = sf.groupby("k", {"c": agg.COUNT(), "s": agg.SUM("x"), "m": agg.MEAN("x"),
                              "lo": agg.MIN("x"), "hi": agg.MAX("x"), "sd": agg.STD("x"),
                              "v": agg.VAR("x")}).sort("k")
    assert rows_of(result) == [("a", 2, 3.0, 1.5, 1.0, 2.0, 0.5, 0.25),
                               ("b", 2, 0.0, None, None, None, None, None)]


def test_groupby_operation_forms():
    sf = fs.SFrame({"k": ["a", "b", "a"], "x": [1, 2, 3]})
    as_list = sf.groupby("k", [agg.COUNT(), agg.SUM("x")]).sort("k")
    as_args = sf.groupby("k", agg.COUNT(), agg.SUM("x")).sort("k")
    assert as_list.num_columns() == 3 and as_list.column_names()[0] == "k"
    assert rows_of(as_list) == rows_of(as_args) == [("a", 2, 4), ("b", 1, 2)]
    aliases = sf.groupby("k", {"avg": agg.AVG("x"), "sd": agg.STDV("x"), "var": agg.VARIANCE("x")})
    assert rows_of(aliases.sort("k")) == [("a", 2.0, 1.0, 1.0), ("b", 2.0, 0.0, 0.0)]


def test_groupby_on_a_filtered_frame(data, df):
    sf = frame(data, 4)
    f = sf[sf["x"] > 0]
    result = f.groupby("k", {"c": agg.COUNT(), "m": agg.MEAN("n")})
    e = df[pd_mask(df["x"] > 0)]
    expected = pandas_groupby(e, ["k"], "n")
    got = {(r["k"],): (r["c"], py(r["m"])) for r in result}
    assert set(got) == set(expected)
    for key, stats in expected.items():
        assert got[key][0] == stats["COUNT"]
        assert got[key][1] == pytest.approx(stats["MEAN"])


def test_groupby_int_sum_is_exact():
    sf = fs.SFrame({"k": [1, 1], "x": [2**53 + 1, 1]})
    assert sf.groupby("k", {"s": agg.SUM("x")})["s"].to_list() == [2**53 + 2]


@pytest.mark.parametrize(
    "keys, ops, match",
    [
        ("k", {"s": agg.SUM("s")}, "'s'"),
        ("v", {"c": agg.COUNT()}, "'v'"),
        ("k", {"s": "sum"}, "'s'"),
        ("k", "sum", "aggregate"),
    ],
    ids=["sum-of-str", "vector-key", "not-an-aggregator", "bad-operations"],
)
def test_groupby_errors(keys, ops, match):
    sf = fs.SFrame({"k": [1, 2], "s": ["a", "b"], "v": fs.SArray(np.ones((2, 2)))})
    with pytest.raises(SchemaError, match=match):
        sf.groupby(keys, ops)


# ---------------------------------------------------------------------------------- join


def join_data(seed, n, value_name):
    rng = np.random.default_rng(seed)
    return {
        "key": [int(v) for v in rng.integers(0, 60, n)],
        "kk": rng.choice(["p", "q"], n).tolist(),
        value_name: [None if rng.random() < 0.1 else round(float(v), 2) for v in rng.normal(size=n)],
        "v": [None if rng.random() < 0.1 else int(v) for v in rng.integers(0, 1000, n)],
        "tag": [None if rng.random() < 0.1 else f"t{v}" for v in rng.integers(0, 9, n)],
    }


@pytest.mark.parametrize("parts", [(1, 1), (3, 2)], ids=["1x1", "3x2chunks"])
@pytest.mark.parametrize("on", ["key", ["key", "kk"]], ids=["one-key", "two-keys"])
@pytest.mark.parametrize("how", ["inner", "left", "right", "outer"])
def test_join_matches_pandas_merge(how, on, parts):
    ld, rd = join_data(10, 240, "lx"), join_data(11, 150, "ry")
    left, right = frame(ld, parts[0]), frame(rd, parts[1])
    result = left.join(right, on=on, how=how)
    keys = [on] if isinstance(on, str) else on
    clash = {c: f"{c}.1" for c in rd if c not in keys and c in ld}
    expected = pandas_of(ld).merge(pandas_of(rd).rename(columns=clash), on=keys, how=how)
    expected_names = list(ld) + [clash.get(c, c) for c in rd if c not in keys]
    assert result.column_names() == expected_names
    types = left.column_types() + [t for c, t in zip(rd, right.column_types()) if c not in keys]
    assert result.column_types() == types
    assert result.num_rows() == len(expected)
    assert sorted_rows(rows_of(result)) == sorted_rows(rows_of_df(expected, expected_names))


def test_join_on_differently_named_keys():
    left = fs.SFrame({"id": [1, 2, 3], "a": ["x", "y", "z"]})
    right = fs.SFrame({"rid": [3, 1, 4], "b": [30, 10, 40]})
    result = left.join(right, on={"id": "rid"}, how="outer")
    assert result.column_names() == ["id", "a", "b"]
    assert sorted_rows(rows_of(result)) == sorted_rows(
        [(1, "x", 10), (2, "y", None), (3, "z", 30), (4, None, 40)])


def test_join_on_common_columns_by_default():
    left = fs.SFrame({"id": [1, 2], "a": [1.0, 2.0]})
    right = fs.SFrame({"id": [2, 1, 1], "b": ["two", "one", "uno"]})
    result = left.join(right)
    assert sorted_rows(rows_of(result)) == [(1, 1.0, "one"), (1, 1.0, "uno"), (2, 2.0, "two")]


@pytest.mark.parametrize(
    "right, kwargs, error",
    [
        (fs.SFrame({"id": [1.0]}), {"on": "id"}, SchemaError),
        (fs.SFrame({"other": [1]}), {}, SchemaError),
        (fs.SFrame({"id": [1]}), {"on": "id", "how": "cross"}, ValueError),
        (fs.SFrame({"id": [1]}), {"on": "nope"}, ColumnNotFoundError),
    ],
    ids=["key-types", "no-common-column", "bad-how", "missing-key"],
)
def test_join_errors(right, kwargs, error):
    with pytest.raises(error):
        fs.SFrame({"id": [1, 2], "a": [1, 2]}).join(right, **kwargs)


# ---------------------------------------------------------------------------------- missing values


@pytest.mark.parametrize("parts", PARTS)
@pytest.mark.parametrize("how", ["any", "all"])
@pytest.mark.parametrize("columns", [None, "x", ["x", "k"], ["k", "k2", "n"], ["id"]], ids=str)
def test_dropna(data, df, parts, how, columns):
    sf = frame(data, parts)
    result = sf.dropna(columns, how=how)
    subset = [columns] if isinstance(columns, str) else columns
    expected = df.dropna(subset=subset, how=how)
    assert result.num_rows() == len(expected)
    assert rows_of(result) == approx_rows(rows_of_df(expected))


def test_dropna_bad_how(data):
    with pytest.raises(ValueError):
        frame(data, 1).dropna(how="some")


@pytest.mark.parametrize("parts", PARTS)
@pytest.mark.parametrize("column, value", [("x", 0.0), ("n", 0), ("k", "zz"), ("k2", 9)])
def test_fillna(data, df, parts, column, value):
    sf = frame(data, parts)
    result = sf.fillna(column, value)
    expected = df.assign(**{column: df[column].fillna(value)})
    assert rows_of(result) == approx_rows(rows_of_df(expected))
    assert result[column].num_missing() == 0
    assert result.column_types() == sf.column_types()
    assert sf[column].num_missing() > 0  # not in place


# ---------------------------------------------------------------------------------- interop


def test_to_dataframe(data, df):
    out = frame(data, 4).to_dataframe()
    pd.testing.assert_frame_equal(out, df, check_dtype=True)
    assert str(fs.SFrame({"i": [1, 2]}).to_dataframe()["i"].dtype) == "int64"


def nested_frame_data():
    return {
        "i": [1, None, 3, 4],
        "f": [1.5, None, -2.0, 0.0],
        "s": ["a", None, "", "d"],
        "b": [b"x", None, b"", b"z"],
        "l": [[1, 2], None, [], [3]],
        "d": [{"a": 1}, None, {"a": 2}, {"a": 3}],
        "bool": [True, False, None, True],
    }


def test_pandas_round_trip():
    source = pd.DataFrame({
        "i": pd.array([1, None, 3, 4], dtype="Int64"),
        "i64": np.array([5, 6, 7, 8]),
        "f": [1.5, np.nan, -2.0, 0.0],
        "s_obj": pd.Series(["a", None, "", "d"], dtype=object),
        "s_str": pd.Series(["a", None, "c", "d"], dtype="string"),
        "b": pd.Series([b"x", None, b"", b"z"], dtype=object),
        "l": pd.Series([[1, 2], None, [], [3]], dtype=object),
        "d": pd.Series([{"a": 1}, None, {"a": 2}, {"a": 3}], dtype=object),
        "bool": [True, False, True, True],
    })
    sf = fs.SFrame(source)
    assert sf.column_types() == [int, int, float, str, str, bytes, list, dict, int]
    assert rows_of(sf) == rows_of_df(source)
    back = sf.to_dataframe()
    assert [str(t) for t in back.dtypes] == ["Int64", "int64", "float64"] + ["object"] * 5 + ["int64"]
    assert rows_of_df(back) == rows_of_df(source)
    assert rows_of(fs.SFrame(back)) == rows_of_df(source)


def test_pandas_round_trip_of_vectors():
    sf = fs.SFrame({"v": fs.SArray(np.arange(6.0).reshape(3, 2))})
    back = fs.SFrame(sf.to_dataframe())
    assert back.column_types() == [array.array]
    assert rows_of(back) == rows_of(sf)


def test_vectors_to_dataframe():
    data = np.arange(6.0).reshape(3, 2)
    out = fs.SFrame({"v": fs.SArray(data)}).to_dataframe()
    assert [list(v) for v in out["v"]] == data.tolist()


@pytest.mark.parametrize("route", ["pandas", "arrow"])
def test_round_trip_of_dicts_with_different_keys(route):
    sf = fs.SFrame({"d": [{"a": 1}, {"b": 2}, None]})
    back = fs.SFrame(sf.to_dataframe()) if route == "pandas" else fs.SFrame.from_arrow(sf.to_arrow())
    assert back["d"].to_list() == [{"a": 1}, {"b": 2}, None]


def test_arrow_round_trip():
    d = nested_frame_data()
    sf = fs.SFrame({**d, "v": fs.SArray([[1.0, 2.0], None, [3.0, 4.0], [0.0, 0.0]], dtype="vector")})
    table = sf.to_arrow()
    assert isinstance(table, pa.Table)
    assert table.column_names == sf.column_names()
    assert table.num_rows == 4
    assert pa.types.is_fixed_size_list(table.schema.field("v").type)
    assert table.column("i").null_count == 1
    for back in (fs.SFrame.from_arrow(table), fs.SFrame(table)):
        assert back.column_types() == sf.column_types()
        assert rows_of(back) == rows_of(sf)


def test_from_arrow_table():
    table = pa.table({"i": pa.array([1, None], pa.int32()), "f": pa.array([0.5, None], pa.float32()),
                      "s": pa.array(["a", None], pa.large_string()), "ok": pa.array([True, None])})
    sf = fs.SFrame.from_arrow(table)
    assert sf.column_types() == [int, float, str, int]
    assert rows_of(sf) == [(1, 0.5, "a", 1), (None, None, None, None)]


def test_to_numpy(data, df):
    sf = frame(data, 4)[["id", "k2", "x", "n"]]
    expected = df[["id", "k2", "x", "n"]].astype("float64").to_numpy()
    np.testing.assert_array_equal(sf.to_numpy(), expected)
    vectors = np.arange(8.0).reshape(4, 2)
    mixed = fs.SFrame({"a": [1, 2, None, 4], "v": fs.SArray(vectors)})
    np.testing.assert_array_equal(mixed.to_numpy(),
                                  np.column_stack([[1.0, 2.0, np.nan, 4.0], vectors]))
    with pytest.raises(SchemaError, match="'k'"):
        frame(data, 1).to_numpy()


@pytest.mark.parametrize("parts", PARTS)
def test_to_dask_dataframe(data, df, parts):
    sf = frame(data, parts)
    ddf = sf.to_dask_dataframe()
    assert ddf.npartitions == parts
    assert list(ddf.columns) == sf.column_names()
    out = ddf.compute().reset_index(drop=True)
    pd.testing.assert_frame_equal(out, df)
    assert ddf["x"].sum().compute() == pytest.approx(df["x"].sum())


@pytest.mark.parametrize("parts", PARTS)
def test_from_dask_dataframe_round_trip(data, df, parts):
    sf = frame(data, parts)
    back = fs.SFrame.from_dask_dataframe(sf.to_dask_dataframe())
    assert back.column_names() == sf.column_names()
    assert back.column_types() == sf.column_types()
    assert rows_of(back) == rows_of(sf)


def test_from_dask_dataframe_of_pandas():
    source = pd.DataFrame({"i": pd.array([1, None, 3, 4, 5, 6], dtype="Int64"),
                           "f": [1.0, np.nan, 3.0, 4.0, 5.0, 6.0], "j": np.arange(6)})
    sf = fs.SFrame.from_dask_dataframe(dd.from_pandas(source, npartitions=3))
    assert sf.column_types() == [int, float, int]
    assert rows_of(sf) == rows_of_df(source)


def test_from_dask_dataframe_strings_with_missing():
    source = pd.DataFrame({"s": ["a", None, "c", "d", "e", "f"]})
    sf = fs.SFrame.from_dask_dataframe(dd.from_pandas(source, npartitions=3))
    assert sf.column_types() == [str]
    assert sf["s"].to_list() == ["a", None, "c", "d", "e", "f"]


# ---------------------------------------------------------------------------------- rows and printing


@pytest.mark.parametrize("parts", PARTS)
def test_rows_head_tail_and_iteration(data, df, parts):
    sf = frame(data, parts)
    records = rows_of_df(df)
    assert rows_of(sf) == approx_rows(records)
    assert rows_of(sf.head(7)) == approx_rows(records[:7])
    assert rows_of(sf.tail(7)) == approx_rows(records[-7:])
    assert sf.head(N + 50).num_rows() == N
    assert rows_of(sf[295:305]) == approx_rows(records[295:305])
    for i in (0, 1, 299, 300, 301, N - 1, -1, -N):
        assert tuple(py(v) for v in sf[i].values()) == approx_rows([records[i]])[0]
        assert list(sf[i]) == sf.column_names()
    for bad in (N, -N - 1):
        with pytest.raises(IndexError):
            sf[bad]


def test_printing(data):
    sf = frame(data, 4)
    text = str(sf)
    assert text == repr(sf)
    for name in sf.column_names():
        assert name in text
    assert "[int]" in text and "[str]" in text and "[float]" in text
    assert f"[{N} rows x 5 columns]" in text
    assert "only the head" in text
    buf = io.StringIO()
    sf.print_rows(num_rows=3, output_file=buf)
    printed = buf.getvalue()
    assert f"[{N} rows x 5 columns]" in printed
    assert printed.count("\n| ") == 2 + 3  # header, types, three rows
    small = fs.SFrame({"a": [1, None], "b": ["x", "y"]})
    assert "[2 rows x 2 columns]" in str(small) and "None" in str(small)
    assert "only the head" not in str(small)
    assert "[0 rows x 0 columns]" in str(fs.SFrame())
    filtered = sf[sf["id"] < 25]
    assert "[25 rows x 5 columns]" in str(filtered)
