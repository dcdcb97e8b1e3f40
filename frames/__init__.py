"""frames: an out-of-core SFrame on Zarr v3 with lazy Dask transforms.

The lowest layer: it knows nothing of pipeline, nn or flows.
"""

from framestream.frames import aggregate
from framestream.frames.image import Image
from framestream.frames.sarray import SArray
from framestream.frames.sframe import SFrame

__all__ = ["Image", "SArray", "SFrame", "aggregate", "load_sframe"]


def load_sframe(path: str) -> SFrame:
    """Open a saved SFrame lazily (Turi's ``load_sframe``)."""
    return SFrame(path)
