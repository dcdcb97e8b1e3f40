"""Per-image pixel operations on HWC uint8 arrays (Pillow for resampling).

Each takes the pixels and returns new pixels; randomness comes in as a NumPy
generator seeded per row by the caller, so results do not depend on chunking or threads.
"""

from __future__ import annotations

import numpy as np
from PIL import Image as PILImage

from framestream.errors import SchemaError

_RESAMPLE = {"nearest": PILImage.Resampling.NEAREST, "bilinear": PILImage.Resampling.BILINEAR,
             "bicubic": PILImage.Resampling.BICUBIC, "lanczos": PILImage.Resampling.LANCZOS}
_MODES = {1: "L", 3: "RGB", 4: "RGBA"}


_MASK = (1 << 64) - 1


class RowRandom:
    """A tiny counter-based generator keyed by (seed, epoch, row): SplitMix64.

    Creating a NumPy generator per row costs ~30 us; this costs ~1 us and gives the
    same guarantee that matters here: the draws depend only on the key, never on
    chunking, threads or the order rows are processed in.
    """

    __slots__ = ("_state",)

    def __init__(self, *key: int):
        state = 0x9E3779B97F4A7C15
        for k in key:
            state = _splitmix(state ^ (int(k) & _MASK))
        self._state = state

    def _next(self) -> int:
        self._state = (self._state + 0x9E3779B97F4A7C15) & _MASK
        return _splitmix(self._state)

    def random(self) -> float:
        """A float in [0, 1)."""
        return (self._next() >> 11) * (1.0 / (1 << 53))

    def integers(self, low: int, high: int) -> int:
        """An int in [low, high)."""
        return low + int(self.random() * (high - low))


def _splitmix(z: int) -> int:
    z = (z + 0x9E3779B97F4A7C15) & _MASK
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK
    return z ^ (z >> 31)


def parse_resample(name: str) -> PILImage.Resampling:
    try:
        return _RESAMPLE[name]
    except KeyError:
        raise SchemaError(f"resample must be one of {sorted(_RESAMPLE)}, not {name!r}") from None


def resize(pixels: np.ndarray, width: int, height: int, resample: PILImage.Resampling) -> np.ndarray:
    if pixels.shape[0] == height and pixels.shape[1] == width:
        return pixels
    c = pixels.shape[2]
    pil = PILImage.fromarray(pixels[:, :, 0] if c == 1 else pixels, mode=_MODES[c])
    out = np.asarray(pil.resize((width, height), resample))
    return out.reshape(height, width, c)


def center_crop(pixels: np.ndarray, width: int, height: int) -> np.ndarray:
    h, w = pixels.shape[:2]
    _check_crop(w, h, width, height)
    top, left = (h - height) // 2, (w - width) // 2
    return pixels[top : top + height, left : left + width]


def random_crop(pixels: np.ndarray, width: int, height: int, rng: RowRandom) -> np.ndarray:
    h, w = pixels.shape[:2]
    _check_crop(w, h, width, height)
    top = int(rng.integers(0, h - height + 1))
    left = int(rng.integers(0, w - width + 1))
    return pixels[top : top + height, left : left + width]


def _check_crop(w: int, h: int, width: int, height: int) -> None:
    if width > w or height > h:
        raise SchemaError(f"cannot crop {width}x{height} out of a {w}x{h} image; resize it first")


def flip_horizontal(pixels: np.ndarray) -> np.ndarray:
    return pixels[:, ::-1]


def to_channels(pixels: np.ndarray, channels: int) -> np.ndarray:
    """Grayscale (1), RGB (3) or RGBA (4), converted the way Pillow does (ITU-R 601 luma)."""
    c = pixels.shape[2]
    if c == channels:
        return pixels
    if channels not in _MODES:
        raise SchemaError(f"channels must be 1, 3 or 4, not {channels}")
    pil = PILImage.fromarray(pixels[:, :, 0] if c == 1 else pixels, mode=_MODES[c])
    out = np.asarray(pil.convert(_MODES[channels]))
    return out.reshape(pixels.shape[0], pixels.shape[1], channels)
