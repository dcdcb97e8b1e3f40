"""The Batcher's tail rules and the in-memory ArrayStream, checked against plain NumPy on iris."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_iris

from framestream.errors import LengthMismatchError, SchemaError
from framestream.pipeline import ArrayStream, Batcher, Block, named_arrays

IRIS = load_iris()
X, Y = IRIS.data.astype(np.float32), IRIS.target.astype(np.float32)  # 150 rows


def _rows(n: int, start: int = 0) -> Block:
    return Block((np.arange(start, start + n, dtype=np.float64),), np.arange(start, start + n))


# (handle, rows, batch size, expected batches per pass as (row numbers, pad)), three passes
CASES = [
    ("pad", 10, 4, [[([0, 1, 2, 3], 0), ([4, 5, 6, 7], 0), ([8, 9, 0, 1], 2)]] * 3),
    ("pad", 3, 8, [[([0, 1, 2, 0, 1, 2, 0, 1], 5)]] * 3),
    ("discard", 10, 4, [[([0, 1, 2, 3], 0), ([4, 5, 6, 7], 0)]] * 3),
    ("discard", 3, 4, [[]] * 3),
    ("roll_over", 10, 4, [
        [([0, 1, 2, 3], 0), ([4, 5, 6, 7], 0)],
        [([8, 9, 0, 1], 0), ([2, 3, 4, 5], 0), ([6, 7, 8, 9], 0)],
        [([0, 1, 2, 3], 0), ([4, 5, 6, 7], 0)],
    ]),
    ("roll_over", 3, 4, [[], [([0, 1, 2, 0], 0)], [([1, 2, 0, 1], 0)]]),
]


@pytest.mark.parametrize(("handle", "n", "bs", "passes"), CASES)
def test_tail_rules_over_three_passes(handle, n, bs, passes):
    batcher = Batcher(bs, handle)
    for expected in passes:
        # the pass arrives in uneven blocks, so batches straddle block edges
        blocks = [_rows(min(3, n - s), s) for s in range(0, n, 3)]
        got = [(rb.rows.index.tolist(), rb.pad) for rb in batcher.run(blocks)]
        assert got == expected


def test_batch_numbers_count_up_and_columns_follow_the_rows():
    batches = list(Batcher(4, "pad").run([_rows(3), _rows(6, 3)]))
    assert [rb.number for rb in batches] == [0, 1, 2]
    for rb in batches:
        np.testing.assert_array_equal(rb.rows.columns[0], rb.rows.index.astype(np.float64))


def test_abandoned_pass_loses_the_roll_over_rows():
    batcher = Batcher(4, "roll_over")
    list(batcher.run([_rows(6)]))
    assert len(batcher.carry) == 2
    partial = batcher.run([_rows(6)])
    next(partial)
    partial.close()
    assert batcher.carry is None


def test_array_stream_matches_numpy_slices():
    s = ArrayStream(X, Y, batch_size=32)
    batches = list(s.batches(0))
    assert len(batches) == 5 and [b.pad for b in batches] == [0, 0, 0, 0, 10]
    for k, b in enumerate(batches[:4]):
        np.testing.assert_array_equal(b.data[0], X[32 * k : 32 * (k + 1)])
        np.testing.assert_array_equal(b.label[0], Y[32 * k : 32 * (k + 1)])
    last = batches[-1]
    np.testing.assert_array_equal(last.data[0], np.concatenate([X[128:], X[:10]]))
    assert last.data[0].dtype == np.float32
    assert last.index.tolist() == [*range(128, 150), *range(10)]
    assert s.provide_data[0].shape == (32, 4) and s.provide_label[0].shape == (32,)


def test_array_stream_shuffle_is_seeded_and_new_every_epoch():
    a = ArrayStream(X, Y, batch_size=50, shuffle=True, seed=3)
    b = ArrayStream(X, Y, batch_size=50, shuffle=True, seed=3)
    orders = [np.concatenate([x.index for x in a.batches(e)]) for e in range(3)]
    again = [np.concatenate([x.index for x in b.batches(e)]) for e in range(3)]
    for o, p in zip(orders, again):
        np.testing.assert_array_equal(o, p)
        assert sorted(o.tolist()) == list(range(150))
    assert not np.array_equal(orders[0], orders[1]) and not np.array_equal(orders[1], orders[2])
    other_seed = ArrayStream(X, batch_size=50, shuffle=True, seed=4)
    other = np.concatenate([x.index for x in other_seed.batches(0)])
    assert not np.array_equal(orders[0], other)
    for x in a.batches(1):  # rows and labels stay together under the shuffle
        np.testing.assert_array_equal(x.data[0], X[x.index])
        np.testing.assert_array_equal(x.label[0], Y[x.index])


def test_array_stream_roll_over_visits_every_row_and_drop_carry_forgets():
    s = ArrayStream(X, batch_size=40, shuffle=True, seed=0, last_batch_handle="roll_over")
    seen = [np.concatenate([b.index for b in s.batches(e)]) for e in range(4)]
    assert [len(x) for x in seen] == [120, 160, 160, 160]  # 30 rows carried each time
    assert all(b.pad == 0 for b in s.batches(4))
    s.drop_carry()
    assert sum(len(b.index) for b in s.batches(5)) == 120


def test_names_of_several_inputs():
    assert [n for n, _ in named_arrays(X, "data")] == ["data"]
    assert [n for n, _ in named_arrays([X, X[:, :2]], "data")] == ["_0_data", "_1_data"]
    assert [n for n, _ in named_arrays({"b": X, "a": Y}, "data")] == ["b", "a"]
    assert named_arrays(None, "softmax_label") == []
    s = ArrayStream({"x": X, "y2": X[:, :2]}, {"lab": Y}, batch_size=10)
    assert [(f.name, f.shape) for f in s.provide_data] == [("x", (10, 4)), ("y2", (10, 2))]
    assert [(f.name, f.shape) for f in s.provide_label] == [("lab", (10,))]


def test_array_stream_input_errors():
    with pytest.raises(LengthMismatchError, match=r"'data' has 150, 'softmax_label' has 149"):
        ArrayStream(X, Y[:-1])
    with pytest.raises(SchemaError, match="needs data"):
        ArrayStream(None)
    with pytest.raises(SchemaError, match="'data' cannot be read as a float32 array"):
        ArrayStream(np.array(["a", "b"]))
    with pytest.raises(ValueError, match="last_batch_handle must be one of"):
        ArrayStream(X, last_batch_handle="wrap")
    with pytest.raises(ValueError, match="batch_size must be a positive int"):
        ArrayStream(X, batch_size=0)
