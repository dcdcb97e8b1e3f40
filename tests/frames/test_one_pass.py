"""Several statistics, and a save of a transformed frame, read each stored chunk once."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest

import framestream as fs
from framestream.frames import _store


@pytest.fixture
def counted_reads(monkeypatch: pytest.MonkeyPatch) -> Counter:
    reads: Counter = Counter()
    original = _store.read_block

    def counting(path, frame_uuid, spec, part, start, stop):
        reads[(spec.name, part, start)] += 1
        return original(path, frame_uuid, spec, part, start, stop)

    monkeypatch.setattr(_store, "read_block", counting)
    return reads


@pytest.fixture
def stored(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    rng = np.random.default_rng(0)
    parts = [fs.SFrame({"a": rng.normal(size=1000), "b": rng.integers(0, 9, 1000),
                        "c": [None if i % 7 == 0 else float(i) for i in range(1000)]}) for _ in range(5)]
    sf = parts[0]
    for p in parts[1:]:
        sf = sf.append(p)
    sf.save(tmp_path / "f")
    return tmp_path / "f"


def test_summary_of_three_columns_reads_every_chunk_once(stored: Path, counted_reads: Counter) -> None:
    sf = fs.SFrame(str(stored))
    assert sf._rows.nblocks == 5
    sf["d"] = sf["a"] * 2 + sf["b"]
    stats = sf.summary(["a", "d", "c"])
    assert set(counted_reads.values()) == {1}
    assert {name for name, _, _ in counted_reads} == {"a", "b", "c"}
    assert len(counted_reads) == 5 * 4  # a, b, c values and c's validity mask
    a = fs.SFrame(str(stored))["a"].to_numpy()
    assert stats["a"]["mean"] == pytest.approx(a.mean()) and stats["a"]["std"] == pytest.approx(a.std())
    assert stats["c"]["num_missing"] == 5 * 143


def test_filtered_save_reads_every_chunk_once(stored: Path, tmp_path: Path, counted_reads: Counter) -> None:
    sf = fs.SFrame(str(stored))
    kept = sf[sf["a"] > 0]
    kept["e"] = kept["a"] + kept["b"]
    kept.save(tmp_path / "g")
    assert set(counted_reads.values()) == {1}
    back = fs.SFrame(str(tmp_path / "g"))
    assert back["a"].min() > 0 and back.num_rows() == int((fs.SFrame(str(stored))["a"].to_numpy() > 0).sum())
