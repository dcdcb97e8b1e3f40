"""SFrameStream on real tables: contents against NumPy, shuffling, sharding, the chunk window,
and the background thread (errors, shutdown)."""

from __future__ import annotations

import gc
import threading
import time

import numpy as np
import pytest

import framestream as fs
from framestream.errors import ConversionError
from framestream.frames import _store
from framestream.pipeline import SFrameStream, plan_units
from tests.pipeline.conftest import save_chunked

FIELDS = ["age", "sex", "bmi", "blood"]


def _index(stream: SFrameStream, epoch: int) -> np.ndarray:
    return np.concatenate([b.index[: len(b.index) - b.pad] for b in stream.batches(epoch)])


def test_numeric_columns_concatenated_per_row_like_numpy(diabetes):
    sf, x, y = diabetes
    assert len(sf._rows.chunks) == 2
    s = SFrameStream(sf, FIELDS, "target", batch_size=100)
    assert [(f.name, f.shape) for f in s.provide_data + s.provide_label] == [
        ("data", (100, 10)), ("softmax_label", (100,))]
    batches = list(s.batches(0))
    assert [b.pad for b in batches] == [0, 0, 0, 0, 58]
    data = np.concatenate([b.data[0] for b in batches])
    labels = np.concatenate([b.label[0] for b in batches])
    np.testing.assert_array_equal(data[:442], x)
    np.testing.assert_array_equal(labels[:442], y)
    np.testing.assert_array_equal(data[442:], x[:58])  # the last batch wraps to the first rows
    assert data.dtype == np.float32 and labels.dtype == np.float32


def test_in_memory_frame_and_path_give_the_same_batches(diabetes, tmp_path):
    sf, x, _ = diabetes
    in_memory = fs.SFrame({c: sf[c].materialize() for c in [*FIELDS, "target"]})
    a = [b.data[0] for b in SFrameStream(in_memory, FIELDS, batch_size=64, prefetch=0).batches(0)]
    sf.save(str(tmp_path / "copy"))
    b = [b.data[0] for b in SFrameStream(str(tmp_path / "copy"), FIELDS, batch_size=64).batches(0)]
    for p, q in zip(a, b, strict=True):
        np.testing.assert_array_equal(p, q)


def test_list_column_and_tensor_column():
    lists = fs.SFrame({"v": [[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]], "k": [7, 8, 9]})
    s = SFrameStream(lists, ["k", "v"], batch_size=3)
    got = next(iter(s.batches(0))).data[0]
    np.testing.assert_array_equal(got, [[7, 1, 2], [8, 3, 4], [9, 5, 6]])
    images = fs.SFrame({"image": [fs.Image(np.full((2, 3, 1), i, np.uint8)) for i in range(4)]})
    tensor = fs.SFrame({"t": fs.image_analysis.to_tensor(images["image"])})
    s = SFrameStream(tensor, "t", batch_size=2)
    assert s.provide_data[0].shape == (2, 1, 2, 3)
    assert next(iter(s.batches(0))).data[0][1].tolist() == [[[1, 1, 1], [1, 1, 1]]]


def test_shuffle_is_seeded_per_epoch_and_visits_every_row(diabetes):
    sf = diabetes[0]
    kw = dict(batch_size=32, shuffle=True, seed=11, window=1)
    s = SFrameStream(sf, FIELDS, "target", **kw)
    t = SFrameStream(sf, FIELDS, "target", num_threads=1, **kw)
    e0, e1 = _index(s, 0), _index(s, 1)
    np.testing.assert_array_equal(e0, _index(t, 0))  # same seed and epoch, other thread count
    np.testing.assert_array_equal(e1, _index(s, 1))
    assert sorted(e0.tolist()) == sorted(e1.tolist()) == list(range(442))
    assert not np.array_equal(e0, e1)
    other_seed = SFrameStream(sf, FIELDS, batch_size=32, shuffle=True, seed=12)
    assert not np.array_equal(e0, _index(other_seed, 0))
    first = next(iter(s.batches(0)))  # rows and labels are shuffled together
    np.testing.assert_array_equal(first.data[0], diabetes[1][first.index])
    np.testing.assert_array_equal(first.label[0], diabetes[2][first.index])


@pytest.mark.parametrize(("chunks", "parts"),
                         [((256, 186), 3), ((256, 186), 5), ((442,), 4), ((5,), 8)])
def test_parts_cover_every_row_exactly_once(chunks, parts):
    units = [plan_units(chunks, p, parts) for p in range(parts)]
    rows = sorted(r for us in units for u in us for r in range(u.first_row, u.first_row + len(u)))
    assert rows == list(range(sum(chunks)))
    sizes = [sum(len(u) for u in us) for us in units]
    assert max(sizes) - min(sizes) <= 1


def test_sharded_streams_cover_the_frame(diabetes):
    sf = diabetes[0]
    parts = [SFrameStream(sf, FIELDS, batch_size=50, part_index=p, num_parts=3, shuffle=True,
                          seed=1) for p in range(3)]
    seen = np.concatenate([_index(s, 0) for s in parts])
    assert sorted(seen.tolist()) == list(range(442))
    assert sorted(s.num_rows for s in parts) == [147, 147, 148]


def test_saved_frame_streams_through_a_bounded_window(digits, tmp_path, monkeypatch):
    reads: list[tuple[str, int]] = []
    real = _store.read_block

    def counting(path, uuid, spec, part, start, stop):
        reads.append((spec.name, start))
        return real(path, uuid, spec, part, start, stop)

    monkeypatch.setattr(_store, "read_block", counting)
    sf = fs.load_sframe(digits._source)  # opened after the patch, so its graph calls `counting`
    assert len(sf._rows.chunks) == 8
    s = SFrameStream(sf, "image", "label", batch_size=32, window=1, shuffle=True, seed=0,
                     prefetch=1)
    reads.clear()  # making the stream read the first image's header
    batches = s.batches(0)
    next(batches)
    time.sleep(0.2)  # let the background thread run as far ahead as it may
    assert len({start for _, start in reads}) <= 3  # not the whole frame
    rest = list(batches)
    assert len(rest) == 56
    assert sorted(reads) == sorted((c, 256 * k) for c in ("image", "label") for k in range(8))
    assert s.reader.reads == 8 and s.reader.peak <= 2 and s.reader.held == 0


def test_window_bounds_chunks_held_at_once(digits):
    for window in (1, 3):
        s = SFrameStream(digits, "image", batch_size=10, window=window, shuffle=True, seed=5,
                         prefetch=8)
        assert sum(1 for _ in s.batches(0)) == 180
        assert s.reader.peak <= 2 * window and s.reader.reads == 8


def test_tail_rules_on_a_stream(diabetes):
    sf = diabetes[0]
    expected = {"pad": ([9, 9], [8, 8]), "discard": ([8, 8], [0, 0]), "roll_over": ([8, 9], [0, 0])}
    for handle, (counts, pads) in expected.items():
        s = SFrameStream(sf, FIELDS, batch_size=50, last_batch_handle=handle)
        got = [list(s.batches(e)) for e in range(2)]
        assert [len(g) for g in got] == counts
        assert [g[-1].pad for g in got] == pads
    s = SFrameStream(sf, FIELDS, batch_size=50, last_batch_handle="roll_over")
    list(s.batches(0))
    first = next(iter(s.batches(1)))
    assert first.index.tolist() == [*range(400, 442), *range(8)]


def test_errors_in_the_thread_reach_the_consumer(diabetes, tmp_path):
    _, x, _ = diabetes
    bmi = [float(v) for v in x[:, 2]]
    bmi[300] = None  # in the second chunk
    sf = save_chunked(fs.SFrame({"bmi": bmi}), tmp_path / "holes")
    s = SFrameStream(sf, "bmi", batch_size=100, window=1)
    batches = s.batches(0)
    assert next(batches).data[0].shape == (100, 1)
    with pytest.raises(ConversionError, match=r"row 300 of column 'bmi' is missing \(None\)"):
        list(batches)
    assert not batches.running


def _prefetch_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("framestream-prefetch")]


def test_close_and_garbage_collection_stop_the_thread(digits):
    before = len(_prefetch_threads())
    s = SFrameStream(digits, "image", batch_size=8, prefetch=2)
    batches = s.batches(0)
    next(batches)
    batches.close()
    assert not batches.running and s.reader.held == 0
    batches = s.batches(1)
    next(batches)
    del batches
    gc.collect()
    deadline = time.monotonic() + 5
    while len(_prefetch_threads()) > before and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(_prefetch_threads()) == before
    s.close()
