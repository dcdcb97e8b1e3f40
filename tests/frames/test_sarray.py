"""SArray: element-wise operations, missing values, conversions, reductions and access.

NumPy / pandas are the oracle. Every operation runs on a one-chunk SArray and on one
spread over several row chunks (built by appending frames, each its own chunk), and
missing values (None) go in everywhere.
"""

from __future__ import annotations

import array
import operator

import numpy as np
import pandas as pd
import pytest

import framestream as fs
from framestream.errors import (
    ConversionError,
    FramestreamError,
    LengthMismatchError,
    SchemaError,
)
from tests.frames.oracle import py

# ---------------------------------------------------------------------------------- helpers

ARITHMETIC = {
    "+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.truediv,
    "//": operator.floordiv, "%": operator.mod, "**": operator.pow,
}
COMPARISON = {
    "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge,
    "==": operator.eq, "!=": operator.ne,
}
LOGICAL = {"&": operator.and_, "|": operator.or_}
OPS = {**ARITHMETIC, **COMPARISON, **LOGICAL}
NP_LOGICAL = {"&": np.logical_and, "|": np.logical_or}

INTS = [7, -3, None, 2, 12, 5, -8, None, 1, 4, 9, -6]
INTS_B = [2, 5, 3, None, -4, 5, 3, 1, None, 7, -2, 8]
POS_INTS = [3, 1, None, 2, 5, 4, 7, None, 1, 2, 6, 3]
FLOATS = [1.5, -2.25, None, 3.0, 0.5, 10.0, -7.5, None, 2.0, 4.25, -0.75, 6.5]
FLOATS_B = [0.5, 4.0, -1.25, None, 2.5, 3.0, None, -6.0, 1.75, 2.0, 5.5, -3.5]
POS_FLOATS = [1.5, 2.25, None, 3.0, 0.5, 10.0, 7.5, None, 2.0, 4.25, 0.75, 6.5]
BITS = [1, 0, None, 1, 0, 1, 1, None, 0, 0, 1, 0]
BITS_B = [1, 1, 0, None, 0, 1, 0, 1, None, 0, 1, 1]
STRS = ["b", "a", None, "zz", "", "m", "b", None, "q", "aa", "c", "a"]
STRS_B = ["x", None, "y", "z", "w", "", "v", "u", None, "t", "s", "r"]


def chunked(values, parts=1, dtype=None):
    """An SArray of ``values`` spread over ``parts`` row chunks (frames appended)."""
    if dtype is None:
        dtype = fs.SArray(values).dtype
    if parts == 1:
        return fs.SArray(values, dtype=dtype)
    bounds = np.linspace(0, len(values), parts + 1).astype(int)
    frame = None
    for lo, hi in zip(bounds[:-1], bounds[1:]):
        piece = fs.SFrame({"x": fs.SArray(values[lo:hi], dtype=dtype)})
        frame = piece if frame is None else frame.append(piece)
    sa = frame["x"]
    assert sa._num_blocks() == parts
    return sa




def approx_list(values):
    """Expected values, floats compared approximately, None exactly."""
    out = []
    for v in values:
        v = py(v)
        out.append(pytest.approx(v, rel=1e-12, abs=1e-12) if isinstance(v, float) else v)
    return out


def kind_of(values):
    """'int', 'float' or 'str' for a list (or a scalar) of values."""
    items = values if isinstance(values, list) else [values]
    present = [v for v in items if v is not None]
    if any(isinstance(v, str) for v in present):
        return "str"
    if any(isinstance(v, float) for v in present):
        return "float"
    return "int"


def np_binary(left, symbol, right):
    """The oracle: NumPy on the present values, None wherever either side is missing."""
    n = len(left) if isinstance(left, list) else len(right)

    def prepare(v):
        if not isinstance(v, list):
            return v, np.zeros(n, dtype=bool)
        missing = np.array([x is None for x in v])
        kind = kind_of(v)
        if kind == "str":
            data = np.array(["" if x is None else x for x in v], dtype=object)
        else:
            data = np.array([1 if x is None else x for x in v],
                            dtype=np.float64 if kind == "float" else np.int64)
        return data, missing

    a, a_missing = prepare(left)
    b, b_missing = prepare(right)
    if symbol in ("/", "**"):
        a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    fn = NP_LOGICAL.get(symbol) or OPS[symbol]
    with np.errstate(all="ignore"):
        out = np.broadcast_to(np.asarray(fn(a, b)), (n,))
    if symbol in COMPARISON or symbol in LOGICAL:
        out = out.astype(np.int64)
    missing = a_missing | b_missing
    return [None if m else v for v, m in zip(out.tolist(), missing)]


def expected_type(left, symbol, right):
    if symbol in COMPARISON or symbol in LOGICAL:
        return int
    kinds = {kind_of(left), kind_of(right)}
    if "str" in kinds:
        return str
    if symbol in ("/", "**"):
        return float
    return int if kinds == {"int"} else float


def present(values):
    return [v for v in values if v is not None]


PARTS = [pytest.param(1, id="1chunk"), pytest.param(3, id="3chunks")]


# ---------------------------------------------------------------------------------- construction


@pytest.mark.parametrize(
    "values, dtype",
    [
        ([1, 2, None, 4], int),
        ([1, 2.5, None], float),  # ints widen to float
        ([1.0, float("nan"), 3.0], float),  # NaN is missing
        (["a", None, ""], str),
        ([b"a", None, b"bc"], bytes),
        ([[1, 2], None, [3]], list),
        ([{"a": 1}, None, {"b": [2]}], dict),
        ([True, False, None], int),
        ([None, None], float),
        ([], float),
    ],
)
def test_construction_infers_type(values, dtype):
    sa = fs.SArray(values)
    assert sa.dtype is dtype
    assert len(sa) == len(values) == sa.size()
    assert sa.to_list() == [py(int(v) if isinstance(v, bool) else v) for v in values]


def test_construction_from_numpy():
    ints = fs.SArray(np.array([1, 2, 3], dtype=np.int32))
    assert ints.dtype is int and ints.to_list() == [1, 2, 3]
    floats = fs.SArray(np.array([1.0, np.nan, 3.0]))
    assert floats.dtype is float and floats.to_list() == [1.0, None, 3.0]
    vectors = fs.SArray(np.arange(6.0).reshape(3, 2))
    assert vectors.dtype is array.array
    assert [list(v) for v in vectors] == [[0.0, 1.0], [2.0, 3.0], [4.0, 5.0]]


def test_construction_with_dtype_converts():
    assert fs.SArray([1, 2, None], dtype=float).to_list() == [1.0, 2.0, None]
    assert fs.SArray(["1", "2"], dtype=int).to_list() == [1, 2]
    assert fs.SArray([1, 2], dtype=str).to_list() == ["1", "2"]


def test_construction_mixed_types_is_schema_error():
    with pytest.raises(SchemaError, match="row 2"):
        fs.SArray([1, 2, "three"])


def test_construction_ignore_cast_failure():
    sa = fs.SArray(["1", "x", "3"], dtype=int, ignore_cast_failure=True)
    assert sa.to_list() == [1, None, 3]


def test_construction_from_nullable_int_series():
    sa = fs.SArray(pd.Series([1, None, 3], dtype="Int64"))
    assert sa.dtype is int
    assert sa.to_list() == [1, None, 3]


def test_from_const_and_from_sequence():
    assert fs.SArray.from_const(3, 4).to_list() == [3, 3, 3, 3]
    assert fs.SArray.from_const("a", 2).dtype is str
    assert fs.SArray.from_sequence(5).to_list() == [0, 1, 2, 3, 4]
    assert fs.SArray.from_sequence(2, 6).to_list() == [2, 3, 4, 5]


def test_truth_value_is_ambiguous():
    with pytest.raises(ValueError):
        bool(fs.SArray([1]))


def test_repr_shows_type_rows_and_values():
    text = repr(fs.SArray([1, None, 3]))
    assert "int" in text and "Rows: 3" in text and "None" in text


# ---------------------------------------------------------------------------------- arithmetic


def _scalar_cases():
    cases = []
    for sym in ["+", "-", "*", "/", "//", "%"]:
        cases += [
            (INTS, sym, 3), (INTS, sym, -2), (INTS, sym, 2.5),
            (FLOATS, sym, 3), (FLOATS, sym, -1.5),
            (10, sym, INTS), (-7, sym, INTS), (2.5, sym, FLOATS),
        ]
    cases += [
        (INTS, "**", 2), (FLOATS, "**", 2), (POS_FLOATS, "**", 0.5), (INTS, "**", 0),
        (2, "**", POS_INTS), (1.5, "**", FLOATS), (2.0, "**", INTS),
    ]
    return [pytest.param(a, s, b, id=f"{kind_of(a)}{s}{kind_of(b)}-{i}") for i, (a, s, b) in enumerate(cases)]


def _run(left, symbol, right, parts):
    a = chunked(left, parts) if isinstance(left, list) else left
    b = chunked(right, parts) if isinstance(right, list) else right
    return OPS[symbol](a, b)


@pytest.mark.parametrize("parts", PARTS)
@pytest.mark.parametrize("left, symbol, right", _scalar_cases())
def test_arithmetic_with_scalar(left, symbol, right, parts):
    result = _run(left, symbol, right, parts)
    assert result.dtype is expected_type(left, symbol, right)
    assert result.to_list() == approx_list(np_binary(left, symbol, right))


@pytest.mark.parametrize("left, right", [(INTS, -1), (2, INTS)], ids=["sa**-1", "2**sa"])
def test_int_power_negative_exponent_gives_float(left, right):
    result = _run(left, "**", right, 1)
    assert result.dtype is float
    assert result.to_list() == approx_list(np_binary(left, "**", right))


def _array_cases():
    cases = []
    for sym in ["+", "-", "*", "/", "//", "%"]:
        cases += [(INTS, sym, INTS_B), (INTS, sym, FLOATS_B), (FLOATS, sym, FLOATS_B)]
    cases += [(POS_FLOATS, "**", INTS_B), (INTS, "**", POS_INTS)]
    cases += [(INTS, s, INTS_B) for s in COMPARISON] + [(FLOATS, s, INTS_B) for s in COMPARISON]
    cases += [(STRS, s, STRS_B) for s in COMPARISON]
    cases += [(BITS, "&", BITS_B), (BITS, "|", BITS_B), (FLOATS, "&", BITS_B)]
    cases += [(STRS, "+", STRS_B)]
    return [pytest.param(a, s, b, id=f"{kind_of(a)}{s}{kind_of(b)}-{i}") for i, (a, s, b) in enumerate(cases)]


@pytest.mark.parametrize("parts", [pytest.param((1, 1), id="1+1"), pytest.param((3, 2), id="3+2chunks")])
@pytest.mark.parametrize("left, symbol, right", _array_cases())
def test_sarray_op_sarray(left, symbol, right, parts):
    a, b = chunked(left, parts[0]), chunked(right, parts[1])
    result = OPS[symbol](a, b)
    assert result.dtype is expected_type(left, symbol, right)
    assert result.to_list() == approx_list(np_binary(left, symbol, right))


@pytest.mark.parametrize("parts", PARTS)
@pytest.mark.parametrize(
    "left, symbol, right",
    [(INTS, "<", 4), (INTS, "<=", 4), (FLOATS, ">", 0.5), (FLOATS, ">=", 3), (INTS, "==", 2),
     (INTS, "!=", 2), (FLOATS, "==", 2), (4, "<", INTS), (0.5, ">=", FLOATS),
     (STRS, "<", "m"), (STRS, ">=", "b"), (STRS, "==", "b"), (STRS, "!=", "")],
)
def test_comparison_with_scalar_returns_int_01(left, symbol, right, parts):
    result = _run(left, symbol, right, parts)
    assert result.dtype is int
    expected = np_binary(left, symbol, right)
    assert result.to_list() == expected
    assert set(present(result.to_list())) <= {0, 1}


@pytest.mark.parametrize("parts", PARTS)
@pytest.mark.parametrize(
    "left, symbol, right",
    [(BITS, "&", 1), (BITS, "&", 0), (BITS, "|", 0), (BITS, "|", 1), (1, "&", BITS), (0, "|", BITS),
     (FLOATS, "&", 1), (INTS, "|", 0)],
)
def test_logical_with_scalar(left, symbol, right, parts):
    result = _run(left, symbol, right, parts)
    assert result.dtype is int
    assert result.to_list() == np_binary(left, symbol, right)


@pytest.mark.parametrize("parts", PARTS)
@pytest.mark.parametrize("values", [INTS, FLOATS, BITS], ids=["int", "float", "bits"])
def test_unary_operators(values, parts):
    sa = chunked(values, parts)
    data = np.array([0 if v is None else v for v in values])
    missing = [v is None for v in values]

    def masked(arr):
        return [None if m else v for v, m in zip(arr.tolist(), missing)]

    neg, absolute, inverted = -sa, abs(sa), ~sa
    assert neg.dtype is sa.dtype and absolute.dtype is sa.dtype and inverted.dtype is int
    assert neg.to_list() == approx_list(masked(np.negative(data)))
    assert absolute.to_list() == approx_list(masked(np.abs(data)))
    assert inverted.to_list() == masked((data == 0).astype(np.int64))


VEC_A = np.random.default_rng(3).normal(size=(12, 3))
VEC_B = np.random.default_rng(4).uniform(0.5, 2.0, size=(12, 3))


@pytest.mark.parametrize("parts", PARTS)
@pytest.mark.parametrize(
    "make, oracle",
    [
        (lambda a, b: a + 1.5, lambda a, b: a + 1.5),
        (lambda a, b: a * 2, lambda a, b: a * 2),
        (lambda a, b: 3 - a, lambda a, b: 3 - a),
        (lambda a, b: a / 4, lambda a, b: a / 4),
        (lambda a, b: 1 / b, lambda a, b: 1 / b),
        (lambda a, b: a + b, lambda a, b: a + b),
        (lambda a, b: a - b, lambda a, b: a - b),
        (lambda a, b: a * b, lambda a, b: a * b),
        (lambda a, b: a / b, lambda a, b: a / b),
        (lambda a, b: -a, lambda a, b: -a),
        (lambda a, b: abs(a), lambda a, b: np.abs(a)),
    ],
    ids=["v+s", "v*s", "s-v", "v/s", "s/v", "v+v", "v-v", "v*v", "v/v", "neg", "abs"],
)
def test_vector_arithmetic_per_component(make, oracle, parts):
    a, b = chunked(VEC_A, parts), chunked(VEC_B, 2 if parts > 1 else 1)
    result = make(a, b)
    assert result.dtype is array.array
    np.testing.assert_allclose(result.to_numpy(), oracle(VEC_A, VEC_B))


def test_vector_with_numeric_column_broadcasts_per_row():
    result = fs.SArray(VEC_A) * fs.SArray(list(range(12)))
    np.testing.assert_allclose(result.to_numpy(), VEC_A * np.arange(12)[:, None])


@pytest.mark.parametrize("parts", PARTS)
def test_string_concatenation_with_scalar(parts):
    sa = chunked(STRS, parts)
    assert (sa + "!").to_list() == [None if s is None else s + "!" for s in STRS]
    assert ("<" + sa).to_list() == [None if s is None else "<" + s for s in STRS]
    assert (sa + "!").dtype is str


@pytest.mark.parametrize(
    "make",
    [
        lambda: fs.SArray(["a"]) - "b",
        lambda: fs.SArray(["a"]) + 1,
        lambda: 1 + fs.SArray(["a"]),
        lambda: fs.SArray(["a"]) * 2,
        lambda: fs.SArray(["a"]) / 2,
        lambda: fs.SArray(["a"]) < 1,
        lambda: fs.SArray([1]) + "a",
        lambda: fs.SArray([1]) > "a",
        lambda: fs.SArray(["a"]) & 1,
        lambda: fs.SArray([1]) + None,
        lambda: -fs.SArray(["a"]),
        lambda: abs(fs.SArray(["a"])),
        lambda: ~fs.SArray(["a"]),
        lambda: fs.SArray([[1], [2]]) * 2,
        lambda: fs.SArray([{"a": 1}]) + 1,
    ],
    ids=["str-str", "str+int", "int+str(r)", "str*int", "str/int", "str<int", "int+str", "int>str",
         "str&int", "int+None", "neg-str", "abs-str", "inv-str", "list*int", "dict+int"],
)
def test_bad_type_combinations_raise_schema_error(make):
    with pytest.raises(SchemaError):
        make()


@pytest.mark.parametrize("symbol", ["+", "-", "*", "/", "<", "==", "&"])
@pytest.mark.parametrize("parts", [pytest.param((1, 1), id="1+1"), pytest.param((3, 2), id="3+2chunks")])
def test_length_mismatch(symbol, parts):
    a = chunked(list(range(1, 10)), parts[0])
    b = chunked(list(range(1, 7)), parts[1])
    with pytest.raises(LengthMismatchError) as info:
        OPS[symbol](a, b)
    assert "9" in str(info.value) and "6" in str(info.value)
    assert isinstance(info.value, ValueError) and isinstance(info.value, FramestreamError)


# ---------------------------------------------------------------------------------- missing values


MISSING_CASES = [
    pytest.param(INTS, id="int"),
    pytest.param(FLOATS, id="float"),
    pytest.param(STRS, id="str"),
    pytest.param([1, 2, 3, 4, 5, 6], id="int-complete"),
    pytest.param([None] * 6, id="all-missing"),
]


@pytest.mark.parametrize("parts", PARTS)
@pytest.mark.parametrize("values", MISSING_CASES)
def test_num_missing_and_dropna(values, parts):
    sa = chunked(values, parts)
    expected_missing = int(pd.Series(values, dtype=object).isna().sum())
    assert sa.num_missing() == expected_missing == sa.countna()
    dropped = sa.dropna()
    assert dropped.to_list() == present(values)
    assert len(dropped) == len(values) - expected_missing
    assert dropped.num_missing() == 0
    assert dropped.dtype is sa.dtype


@pytest.mark.parametrize("parts", PARTS)
@pytest.mark.parametrize(
    "values, fill, expected_type",
    [(INTS, 0, int), (INTS, 3.0, int), (FLOATS, -1.0, float), (FLOATS, 2, float), (STRS, "zz", str),
     ([1, 2, 3], 9, int)],
)
def test_fillna(values, fill, expected_type, parts):
    sa = chunked(values, parts)
    filled = sa.fillna(fill)
    expected = pd.Series(values, dtype=object).fillna(expected_type(fill)).tolist()
    assert filled.to_list() == approx_list(expected)
    assert filled.num_missing() == 0
    assert filled.dtype is expected_type


def test_fillna_with_unconvertible_value():
    with pytest.raises(ConversionError):
        fs.SArray([1, None]).fillna(2.5)


@pytest.mark.parametrize("parts", PARTS)
@pytest.mark.parametrize(
    "values, lookup",
    [(INTS, [2, 7, 100]), (INTS, []), (FLOATS, [3.0, -7.5]), (STRS, ["a", "b", "nope"]),
     (STRS, ["", "zz"])],
)
def test_is_in(values, lookup, parts):
    sa = chunked(values, parts)
    series = pd.Series(present(values))
    hits = iter(series.isin(lookup).astype(int).tolist())
    expected = [None if v is None else next(hits) for v in values]
    assert sa.is_in(lookup).to_list() == expected
    assert sa.is_in(fs.SArray(lookup, dtype=sa.dtype)).to_list() == expected
    assert sa.is_in(lookup).dtype is int


def test_is_in_int_column_float_lookup():
    assert fs.SArray([1, 2, 3]).is_in([2.0, 3.5]).to_list() == [0, 1, 0]


@pytest.mark.parametrize("parts", PARTS)
@pytest.mark.parametrize(
    "values",
    [pytest.param(INTS + INTS, id="int"), pytest.param(FLOATS + [1.5, 1.5], id="float"),
     pytest.param(STRS + STRS, id="str"), pytest.param([1, 1, 1], id="constant")],
)
def test_unique(values, parts):
    sa = chunked(values, parts)
    result = sa.unique()
    expected = [py(v) for v in pd.unique(pd.Series(values, dtype=object))]
    assert result.dtype is sa.dtype
    assert len(result) == len(expected)
    assert sorted(result.to_list(), key=repr) == sorted(expected, key=repr)


def test_unique_of_vector_is_schema_error():
    with pytest.raises(SchemaError):
        fs.SArray(np.ones((3, 2))).unique()


# ---------------------------------------------------------------------------------- astype


@pytest.mark.parametrize("parts", PARTS)
@pytest.mark.parametrize(
    "values, dtype, expected",
    [
        (INTS, float, [None if v is None else float(v) for v in INTS]),
        (FLOATS, int, [None if v is None else int(np.trunc(v)) for v in FLOATS]),
        (INTS, str, [None if v is None else str(v) for v in INTS]),
        (FLOATS, str, [None if v is None else str(v) for v in FLOATS]),
        (["1", "-2", None, " 3", "40"], int, [1, -2, None, 3, 40]),
        (["1.5", "-2", None, "1e3", " 4 "], float, [1.5, -2.0, None, 1000.0, 4.0]),
        (STRS, bytes, [None if v is None else v.encode() for v in STRS]),
        (INTS, int, INTS),
    ],
    ids=["int->float", "float->int", "int->str", "float->str", "str->int", "str->float", "str->bytes",
         "int->int"],
)
def test_astype(values, dtype, expected, parts):
    sa = chunked(values, parts)
    result = sa.astype(dtype)
    assert result.dtype is dtype
    assert result.to_list() == approx_list(expected)
    assert result.num_missing() == sum(v is None for v in values)


@pytest.mark.parametrize("parts", PARTS)
def test_astype_failure_names_row_and_value(parts):
    values = ["1", "2", None, "4", "5", "x7", "8", "9", "10"]
    sa = chunked(values, parts)
    with pytest.raises(ConversionError) as info:
        sa.astype(int).to_list()
    message = str(info.value)
    assert "row 5" in message and "'x7'" in message and "int" in message
    assert isinstance(info.value, ValueError)


def test_astype_failure_names_the_column_of_a_frame():
    sf = fs.SFrame({"n": [1, 2, 3], "code": ["1", "two", "3"]})
    with pytest.raises(ConversionError, match=r"row 1 of column 'code'.*'two'"):
        sf["code"].astype(int).to_list()


def test_astype_failure_row_after_filter():
    # after a lazy filter the chunk lengths are unknown; the error counts within the chunk
    col = chunked(["1", "2", "3", "4", "x", "6"], 3)
    col = col[fs.SArray([0, 1, 1, 1, 1, 1])]  # 3 chunks of 2: 'x' is row 0 of chunk 2
    with pytest.raises(ConversionError, match=r"row 0 of chunk 2 \(counted within the chunk"):
        col.astype(int).to_list()


@pytest.mark.parametrize("parts", PARTS)
@pytest.mark.parametrize(
    "values, dtype, expected",
    [
        (["1", "x", None, "4"], int, [1, None, None, 4]),
        (["1.5", "nope", "3"], float, [1.5, None, 3.0]),
        (["[1, 2]", "oops", None], list, [[1, 2], None, None]),
    ],
)
def test_astype_undefined_on_failure(values, dtype, expected, parts):
    parts = min(parts, len(values))
    result = chunked(values, parts).astype(dtype, undefined_on_failure=True)
    assert result.dtype is dtype
    assert result.to_list() == expected


# ---------------------------------------------------------------------------------- apply


@pytest.mark.parametrize("parts", PARTS)
@pytest.mark.parametrize(
    "values, fn, dtype, expected_dtype",
    [
        (INTS, lambda x: x * 2, None, int),
        (INTS, lambda x: x / 2, None, float),
        (INTS, lambda x: x, float, float),
        (INTS, str, None, str),
        (STRS, len, None, int),
        (STRS, lambda s: s.upper(), str, str),
        (FLOATS, lambda x: None if x > 2 else x, None, float),
        (INTS, lambda x: [x] * 2, None, list),
        (INTS, lambda x: {"v": x}, None, dict),
        (INTS, lambda x: [x, x * 0.5], "vector", array.array),
    ],
    ids=["int*2", "int/2", "dtype=float", "str()", "len", "upper", "to-None", "list", "dict", "vector"],
)
def test_apply(values, fn, dtype, expected_dtype, parts):
    result = chunked(values, parts).apply(fn, dtype=dtype)
    assert result.dtype is expected_dtype
    expected = [None if v is None else fn(v) for v in values]
    if expected_dtype is array.array:
        got = [None if v is None else list(v) for v in result]
        assert got == expected
    else:
        assert result.to_list() == approx_list(expected)


@pytest.mark.parametrize("parts", PARTS)
def test_apply_without_skip_na_sees_missing(parts):
    result = chunked(INTS, parts).apply(lambda x: -1 if x is None else x + 1, skip_na=False)
    assert result.to_list() == [-1 if v is None else v + 1 for v in INTS]
    assert result.num_missing() == 0


def test_apply_on_vector_column():
    data = np.arange(12.0).reshape(4, 3)
    result = fs.SArray(data).apply(lambda v: float(sum(v)))
    assert result.dtype is float
    assert result.to_list() == approx_list(data.sum(axis=1).tolist())


def test_apply_result_that_does_not_fit_dtype():
    with pytest.raises(ConversionError, match="row 1"):
        fs.SArray([1, 2, 3]).apply(lambda x: "bad" if x == 2 else x, dtype=int).to_list()


# ---------------------------------------------------------------------------------- reductions

rng = np.random.default_rng(1234)
RANDOM_FLOATS = [None if rng.random() < 0.1 else float(v) for v in rng.normal(5.0, 3.0, 500)]
RANDOM_INTS = [None if rng.random() < 0.1 else int(v) for v in rng.integers(-1000, 1000, 500)]

REDUCTION_CASES = [
    pytest.param(INTS, id="int"),
    pytest.param(FLOATS, id="float"),
    pytest.param(RANDOM_FLOATS, id="random-float"),
    pytest.param(RANDOM_INTS, id="random-int"),
    pytest.param([0, 1, None, 0, 3, 0, -2, None, 0], id="zeros"),
    pytest.param([2**53 + 1, 2**53 + 3, None, 5, 2**60, -7], id="big-int"),
    pytest.param([4.0, 4.0, 4.0], id="constant"),
]


@pytest.mark.parametrize("parts", PARTS)
@pytest.mark.parametrize("values", REDUCTION_CASES)
def test_reductions_match_numpy(values, parts):
    sa = chunked(values, parts)
    data = np.array(present(values), dtype=np.float64)
    is_int = kind_of(values) == "int"
    total = sa.sum()
    if is_int:
        assert type(total) is int and total == sum(present(values))  # exact, no float rounding
        assert type(sa.min()) is int and type(sa.max()) is int
    else:
        assert total == pytest.approx(data.sum(), rel=1e-12)
    assert sa.min() == min(present(values))
    assert sa.max() == max(present(values))
    assert sa.mean() == pytest.approx(np.mean(data), rel=1e-12)
    assert sa.var() == pytest.approx(np.var(data), rel=1e-9, abs=1e-12)  # population (ddof=0)
    assert sa.std() == pytest.approx(np.std(data), rel=1e-9, abs=1e-12)
    assert sa.var(ddof=1) == pytest.approx(np.var(data, ddof=1), rel=1e-9, abs=1e-12)
    assert sa.std(ddof=1) == pytest.approx(np.std(data, ddof=1), rel=1e-9, abs=1e-12)
    assert sa.nnz() == np.count_nonzero(data)
    assert sa.num_missing() == len(values) - len(data)
    assert sa.any() is bool(np.count_nonzero(data))
    assert sa.all() is bool(np.count_nonzero(data) == len(data))


@pytest.mark.parametrize("parts", PARTS)
@pytest.mark.parametrize("values", REDUCTION_CASES[:5])
def test_summary_is_one_pass_of_every_statistic(values, parts):
    sa = chunked(values, parts)
    data = np.array(present(values), dtype=np.float64)
    s = sa.summary()
    assert s["count"] == len(data)
    assert s["num_missing"] == len(values) - len(data)
    assert s["nnz"] == np.count_nonzero(data)
    assert s["sum"] == pytest.approx(data.sum())
    assert s["mean"] == pytest.approx(data.mean())
    assert s["var"] == pytest.approx(data.var())
    assert s["std"] == pytest.approx(data.std())
    assert s["min"] == data.min() and s["max"] == data.max()


def test_large_int_sum_is_exact():
    values = [2**53, 1, 1, 2**62, -(2**61)]
    assert fs.SArray(values).sum() == sum(values)
    assert chunked(values, 3).sum() == sum(values)


def test_large_int_min_max_are_exact():
    values = [2**53 + 1, 2**53 + 3, None]
    sa = fs.SArray(values)
    assert sa.min() == 2**53 + 1
    assert sa.max() == 2**53 + 3


def test_reductions_of_all_missing_column():
    sa = fs.SArray([None, None, None], dtype=float)
    assert sa.mean() is None and sa.std() is None and sa.var() is None
    assert sa.min() is None and sa.max() is None
    assert sa.sum() == 0 and sa.nnz() == 0
    assert sa.summary()["count"] == 0


@pytest.mark.parametrize("dtype", [int, float])
def test_reductions_of_empty_column(dtype):
    sa = fs.SArray([], dtype=dtype)
    assert sa.sum() == 0
    assert sa.mean() is None and sa.min() is None and sa.max() is None


@pytest.mark.parametrize("method", ["sum", "mean", "std", "var", "min", "max", "summary"])
def test_numeric_reductions_of_strings_are_schema_errors(method):
    with pytest.raises(SchemaError):
        getattr(fs.SArray(["a", "b"]), method)()


@pytest.mark.parametrize("parts", PARTS)
def test_nnz_of_strings_counts_non_empty(parts):
    assert chunked(STRS, parts).nnz() == sum(1 for s in STRS if s)


@pytest.mark.parametrize("parts", PARTS)
def test_vector_reductions_per_component(parts):
    data = np.random.default_rng(7).normal(size=(60, 3))
    data[5] = 0.0
    sa = chunked(data, parts)
    assert sa.dtype is array.array
    np.testing.assert_allclose(sa.mean(), data.mean(axis=0))
    np.testing.assert_allclose(sa.sum(), data.sum(axis=0))
    np.testing.assert_allclose(sa.min(), data.min(axis=0))
    np.testing.assert_allclose(sa.max(), data.max(axis=0))
    np.testing.assert_allclose(sa.var(), data.var(axis=0))
    np.testing.assert_allclose(sa.std(), data.std(axis=0))
    assert sa.nnz() == np.count_nonzero(data)


def test_vector_mean_skips_missing_rows():
    sa = fs.SArray([[1.0, 2.0], None, [3.0, 6.0]], dtype="vector")
    assert sa.num_missing() == 1
    np.testing.assert_allclose(sa.mean(), [2.0, 4.0])


# ---------------------------------------------------------------------------------- access

ACCESS = [7, None, -3, 4, 4, None, 12, 0, 5, 9, 1]


@pytest.mark.parametrize("parts", PARTS)
def test_integer_indexing(parts):
    sa = chunked(ACCESS, parts)
    n = len(ACCESS)
    for i in range(-n, n):
        assert sa[i] == ACCESS[i]
    for bad in (n, -n - 1):
        with pytest.raises(IndexError):
            sa[bad]


@pytest.mark.parametrize("parts", PARTS)
@pytest.mark.parametrize(
    "key",
    [slice(2, 5), slice(None, 3), slice(-3, None), slice(None, None, 2), slice(1, -1), slice(5, 2),
     slice(3, 100), slice(-100, 2), slice(1, None, 3),
     slice(None, None, -1),
     pytest.param(slice(8, 2, -2), id="8:2:-2")],
    ids=str,
)
def test_slicing_matches_python(key, parts):
    sa = chunked(ACCESS, parts)
    sliced = sa[key]
    assert sliced.to_list() == ACCESS[key]
    assert len(sliced) == len(ACCESS[key])
    assert sliced.dtype is int


@pytest.mark.parametrize("parts", PARTS)
@pytest.mark.parametrize("n", [0, 1, 3, 100])
def test_head_and_tail(n, parts):
    sa = chunked(ACCESS, parts)
    assert sa.head(n).to_list() == ACCESS[:n]
    assert sa.tail(n).to_list() == (ACCESS[-n:] if n else [])


@pytest.mark.parametrize("parts", PARTS)
@pytest.mark.parametrize("values", [ACCESS, FLOATS, STRS, [[1], None, [2, 3]], [{"a": 1}, None]])
def test_iteration_and_to_list(values, parts):
    parts = min(parts, len(values))
    sa = chunked(values, parts)
    assert list(sa) == values
    assert sa.to_list() == values


def test_to_numpy():
    np.testing.assert_array_equal(fs.SArray([1, 2, 3]).to_numpy(), np.array([1, 2, 3]))
    assert fs.SArray([1, 2, 3]).to_numpy().dtype == np.int64
    with_missing = chunked(ACCESS, 3).to_numpy()
    assert with_missing.dtype == np.float64
    np.testing.assert_array_equal(with_missing, np.array([np.nan if v is None else v for v in ACCESS]))
    np.testing.assert_array_equal(fs.SArray(FLOATS).to_numpy(),
                                  np.array([np.nan if v is None else v for v in FLOATS]))
    strings = fs.SArray(["a", None, "c"]).to_numpy()
    assert strings.tolist() == ["a", None, "c"]
    vectors = np.arange(6.0).reshape(3, 2)
    np.testing.assert_array_equal(fs.SArray(vectors).to_numpy(), vectors)
    np.testing.assert_array_equal(np.asarray(fs.SArray([1.5, 2.5])), np.array([1.5, 2.5]))


def test_indexing_returns_python_str():
    sa = fs.SArray(["a", "b"])
    assert type(sa[1]) is str


def test_indexing_list_column():
    sa = fs.SArray([[1, 2], [3], None])
    assert sa[0] == [1, 2]
    assert sa[-1] is None


def test_indexing_vector_and_dict_columns():
    assert list(fs.SArray(np.arange(6.0).reshape(3, 2))[1]) == [2.0, 3.0]
    assert fs.SArray([{"a": 1}, {"b": 2}])[1] == {"b": 2}


def test_bad_index_type():
    with pytest.raises(TypeError):
        fs.SArray([1, 2])["a"]


@pytest.mark.parametrize("parts", PARTS)
def test_filter_by_mask(parts):
    sa = chunked(ACCESS, parts)
    assert sa[sa > 4].to_list() == [v for v in ACCESS if v is not None and v > 4]
    assert sa[sa > 4].sum() == sum(v for v in ACCESS if v is not None and v > 4)
    other_chunking = fs.SArray([i % 2 for i in range(len(ACCESS))])
    assert sa[other_chunking].to_list() == ACCESS[1::2]
    filtered = sa[sa >= 0]
    assert filtered[filtered < 8].to_list() == [v for v in ACCESS if v is not None and 0 <= v < 8]


def test_filter_mask_length_mismatch():
    with pytest.raises(LengthMismatchError):
        fs.SArray([1, 2, 3])[fs.SArray([1, 0])]


def test_filter_with_string_mask_is_schema_error():
    with pytest.raises(SchemaError):
        fs.SArray([1, 2])[fs.SArray(["a", "b"])].to_list()
