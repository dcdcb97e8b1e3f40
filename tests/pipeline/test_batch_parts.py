"""part_by='batch': the parts' k-th batches side by side are a single reader's k-th batch of
num_parts x batch_size rows (shuffle, windows and filler included), for data-parallel training."""

from __future__ import annotations

import numpy as np
import pytest

from framestream.pipeline import SFrameStream

FIELDS = ["age", "sex", "bmi", "blood"]


def _side_by_side(parts: list[SFrameStream], epoch: int) -> list[tuple]:
    passes = [list(p.batches(epoch)) for p in parts]
    assert len({len(bs) for bs in passes}) == 1, "every part has as many batches"
    return [(np.concatenate([b.data[0] for b in group]), np.concatenate([b.index for b in group]),
             sum(b.pad for b in group)) for group in zip(*passes)]


CASES = [  # (frame, num_parts, batch_size, shuffle, window, last_batch_handle)
    ("diabetes", 2, 50, False, 2, "pad"),
    ("diabetes", 3, 40, True, 1, "pad"),
    ("diabetes", 2, 300, True, 2, "pad"),  # one global batch, longer than the frame
    ("digits", 2, 100, True, 3, "pad"),
    ("digits", 3, 64, False, 2, "discard"),
    ("digits", 4, 128, True, 2, "discard"),
]


@pytest.mark.parametrize(("frame", "parts", "batch", "shuffle", "window", "handle"), CASES)
def test_parts_side_by_side_are_the_single_readers_batches(request, frame, parts, batch, shuffle,
                                                           window, handle):
    sf = request.getfixturevalue(frame)
    sf = sf[0] if isinstance(sf, tuple) else sf
    fields = FIELDS if frame == "diabetes" else ["image"]
    common = {"shuffle": shuffle, "seed": 7, "window": window, "last_batch_handle": handle}
    whole = SFrameStream(sf, fields, batch_size=parts * batch, **common)
    split = [SFrameStream(sf, fields, batch_size=batch, part_index=p, num_parts=parts,
                          part_by="batch", **common) for p in range(parts)]
    for epoch in (0, 1):
        expected = list(whole.batches(epoch))
        got = _side_by_side(split, epoch)
        assert len(got) == len(expected)
        for (data, index, pad), b in zip(got, expected):
            np.testing.assert_array_equal(index, b.index)
            np.testing.assert_array_equal(data, b.data[0])
            assert pad == b.pad
    assert {s.num_rows for s in split} == {len(expected) * batch}


def test_unshuffled_parts_read_only_their_chunks(digits):
    # chunks of 256 rows (the last one shorter): with batch 256 each part owns whole chunks
    reads = []
    split = [SFrameStream(digits, ["image"], batch_size=256, part_index=p, num_parts=2,
                          part_by="batch", last_batch_handle="discard") for p in range(2)]
    for s in split:
        list(s.batches(0))
        reads.append(s.reader.reads)
    assert reads == [3, 3]  # 1,797 rows: 3 global batches of 512 = chunks 0-5, 3 each; 6-7 dropped


def test_bad_part_by_and_roll_over_are_refused(diabetes):
    with pytest.raises(ValueError, match="part_by must be 'rows' or 'batch'"):
        SFrameStream(diabetes[0], FIELDS, part_by="interleaved")
    with pytest.raises(ValueError, match="'roll_over'"):
        SFrameStream(diabetes[0], FIELDS, batch_size=10, num_parts=2, part_by="batch",
                     last_batch_handle="roll_over")
