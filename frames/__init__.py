"""frames: an out-of-core SFrame on Zarr v3 with lazy Dask transforms.

The lowest layer: it knows nothing of pipeline, nn or flows.
"""

from framestream.frames import _memory

_memory.install()

from framestream.frames import aggregate  # noqa: E402
from framestream.frames.image import Image  # noqa: E402
from framestream.frames.sarray import SArray  # noqa: E402
from framestream.frames.sframe import SFrame  # noqa: E402

__all__ = ["Image", "SArray", "SFrame", "aggregate", "load_sframe"]


def load_sframe(path: str) -> SFrame:
    """Open a saved SFrame lazily (Turi's ``load_sframe``)."""
    return SFrame(path)
