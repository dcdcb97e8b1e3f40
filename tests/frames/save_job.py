"""Child process for the crash test: save a large frame over ``path`` (and get killed)."""

from __future__ import annotations

import sys

import numpy as np


def main(path: str) -> None:
    import framestream as fs

    rng = np.random.default_rng(1)
    n = 2_000_000
    sf = fs.SFrame({"a": rng.normal(size=n), "b": rng.integers(0, 10, n), "c": [f"s{i}" for i in range(n)]})
    print("saving", flush=True)
    sf.save(path, overwrite=True)
    print("saved", flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
