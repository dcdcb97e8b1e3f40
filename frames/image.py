"""``fs.Image``: one image, kept as its encoded bytes (PNG, JPEG) or as raw pixels.

An encoded image is never re-encoded on ingest; its width, height and channels are
read from the header, so knowing an image's size costs no decode. ``pixel_data``
decodes (Pillow releases the GIL, so threads decode in parallel).

>>> import numpy as np, framestream as fs
>>> img = fs.Image(np.zeros((4, 6, 3), dtype=np.uint8))
>>> (img.height, img.width, img.channels, img.format)
(4, 6, 3, 'RAW')
"""

from __future__ import annotations

import io
import os
import re
from typing import Any

import numpy as np
from PIL import Image as PILImage
from PIL import UnidentifiedImageError

from framestream.errors import SchemaError
from framestream.frames._types import LogicalType, register_type

FORMAT_CODES = {"JPEG": 0, "PNG": 1, "RAW": 2}
FORMATS = {v: k for k, v in FORMAT_CODES.items()}
_MODES = {1: "L", 3: "RGB", 4: "RGBA"}


class ImageError(SchemaError, ValueError):
    """Bytes that are not a readable image, or pixels of an unsupported layout."""


class Image:
    """An image: encoded bytes or raw HWC uint8 pixels, plus its shape.

    Parameters
    ----------
    path : a file path, encoded bytes, a numpy array (HWC or HW uint8), or a PIL image.
    format : 'auto', 'JPEG' ('JPG') or 'PNG' (checked against the bytes).
    """

    __slots__ = ("_data", "_width", "_height", "_channels", "_format")

    def __init__(self, path: Any = None, format: str = "auto"):
        if path is None:
            self._set(b"", 0, 0, 0, "RAW")
        elif isinstance(path, Image):
            self._set(path._data, path._width, path._height, path._channels, path._format)
        elif isinstance(path, np.ndarray):
            self._from_array(path)
        elif isinstance(path, PILImage.Image):
            self._from_array(np.asarray(path.convert(_supported_mode(path.mode))))
        elif isinstance(path, bytes | bytearray | memoryview):
            self._from_encoded(bytes(path), format, where="bytes")
        elif isinstance(path, str | os.PathLike):
            try:
                with open(path, "rb") as f:
                    data = f.read()
            except OSError as exc:
                raise ImageError(f"{path}: cannot read the image file ({exc.strerror})") from None
            self._from_encoded(data, format, where=os.fspath(path))
        else:
            raise ImageError(f"an Image is made from a path, bytes, a numpy array or a PIL image, not {type(path).__name__}")

    @classmethod
    def _from_parts(cls, data: bytes, width: int, height: int, channels: int, format: str) -> Image:
        img = cls.__new__(cls)
        img._set(data, width, height, channels, format)
        return img

    def _set(self, data: bytes, width: int, height: int, channels: int, format: str) -> None:
        self._data, self._width, self._height, self._channels, self._format = data, width, height, channels, format

    def _from_array(self, array: np.ndarray) -> None:
        if array.ndim == 2:
            array = array[:, :, None]
        if array.ndim != 3 or array.shape[2] not in _MODES:
            raise ImageError(f"pixels must be HW or HWC with 1, 3 or 4 channels, got shape {array.shape}")
        if array.dtype != np.uint8:
            if array.dtype.kind == "f" and array.size and array.max() <= 1.0:
                array = array * 255.0
            array = np.clip(np.rint(array), 0, 255).astype(np.uint8)
        h, w, c = array.shape
        self._set(np.ascontiguousarray(array).tobytes(), w, h, c, "RAW")

    def _from_encoded(self, data: bytes, format: str, where: str) -> None:
        try:
            with PILImage.open(io.BytesIO(data)) as pil:
                found = pil.format
                width, height = pil.size
                mode = "RGBA" if pil.mode == "P" and "transparency" in pil.info else pil.mode
                channels = len(_supported_mode(mode, where))
        except (UnidentifiedImageError, OSError, SyntaxError) as exc:
            reason = re.sub(r"<_io\.BytesIO object at 0x[0-9a-f]+>", "the bytes", str(exc))
            raise ImageError(f"{where}: not a readable PNG or JPEG image ({reason})") from None
        if found not in ("JPEG", "PNG"):
            raise ImageError(f"{where}: unsupported image format {found}; PNG and JPEG are supported")
        wanted = {"JPG": "JPEG"}.get(format.upper(), format.upper())
        if wanted != "AUTO" and wanted != found:
            raise ImageError(f"{where}: asked for format {format} but the bytes are {found}")
        check_complete(data, found, where)
        self._set(data, width, height, channels, found)

    # ------------------------------------------------------------------ properties

    @property
    def width(self) -> int:
        return self._width

    @property
    def height(self) -> int:
        return self._height

    @property
    def channels(self) -> int:
        return self._channels

    @property
    def format(self) -> str:
        return self._format

    @property
    def size(self) -> int:
        """Bytes held (encoded or raw)."""
        return len(self._data)

    @property
    def pixel_data(self) -> np.ndarray:
        """The decoded pixels: HWC uint8 (HW when there is one channel, as in Turi)."""
        pixels = self.pixels()
        return pixels[:, :, 0] if self._channels == 1 else pixels

    def pixels(self) -> np.ndarray:
        """The decoded pixels, always HWC uint8."""
        if self._format == "RAW":
            return np.frombuffer(self._data, dtype=np.uint8).reshape(self._height, self._width, self._channels)
        with PILImage.open(io.BytesIO(self._data)) as pil:
            pil.load()
            mode = _MODES[self._channels]
            array = np.asarray(pil if pil.mode == mode else pil.convert(mode))
        return array.reshape(self._height, self._width, self._channels)

    def to_pil(self) -> PILImage.Image:
        pixels = self.pixels()
        return PILImage.fromarray(pixels[:, :, 0] if self._channels == 1 else pixels, mode=_MODES[self._channels])

    def save(self, path: str | os.PathLike) -> None:
        """Write the image; encoded bytes are written as they are when the suffix matches."""
        suffix = os.fspath(path).lower().rsplit(".", 1)[-1]
        same = {"jpg": "JPEG", "jpeg": "JPEG", "png": "PNG"}.get(suffix) == self._format
        if same:
            with open(path, "wb") as f:
                f.write(self._data)
        else:
            self.to_pil().save(path)

    def show(self) -> None:
        self.to_pil().show()

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Image):
            return NotImplemented
        if (self._width, self._height, self._channels) != (other._width, other._height, other._channels):
            return False
        if self._format == other._format and self._data == other._data:
            return True
        return bool(np.array_equal(self.pixels(), other.pixels()))

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Image(width={self._width}, height={self._height}, channels={self._channels}, format={self._format!r})"

    def __reduce__(self):
        return (Image._from_parts, (self._data, self._width, self._height, self._channels, self._format))


def raw_stack(images: Any, height: int, width: int, channels: int) -> np.ndarray | None:
    """(N, H, W, C) uint8 pixels of many images in one copy, when every one is RAW of that
    size (Fashion-MNIST, say); None otherwise, for a per-image decode. Batch readers use it
    so a batch does not wrap each image's bytes in an array of its own."""
    if not len(images) or not all(
            img is not None and img._format == "RAW" and img._height == height
            and img._width == width and img._channels == channels for img in images):
        return None
    data = b"".join(img._data for img in images)
    return np.frombuffer(data, dtype=np.uint8).reshape(len(images), height, width, channels)


def _supported_mode(mode: str, where: str = "image") -> str:
    if mode in ("L", "RGB", "RGBA"):
        return mode
    if mode in ("1", "P", "I", "I;16", "I;16B", "F", "LA", "PA"):
        return {"LA": "RGBA", "PA": "RGBA", "P": "RGB"}.get(mode, "L")
    if mode in ("CMYK", "YCbCr", "LAB", "HSV"):
        return "RGB"
    raise ImageError(f"{where}: unsupported image mode {mode}")


def check_complete(data: bytes, format: str, where: str) -> None:
    """Catch truncated files cheaply: a JPEG's end-of-image marker comes after its last
    scan, a PNG's IEND chunk after its last image data (trailing bytes are allowed)."""
    if format == "JPEG" and data.rfind(b"\xff\xd9") < data.rfind(b"\xff\xda"):
        raise ImageError(f"{where}: truncated JPEG (no end-of-image marker after the last scan)")
    if format == "PNG" and data.rfind(b"IEND") < data.rfind(b"IDAT"):
        raise ImageError(f"{where}: truncated PNG (no IEND chunk after the image data)")


IMAGE = LogicalType("image", Image, "varlen", np.dtype(object), None)
register_type(IMAGE, Image)
