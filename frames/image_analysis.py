"""Image columns: loading folders of images, and lazy, seeded transforms.

Every transform returns a new lazy SArray. Images are decoded once, by the first
transform, in a thread pool per chunk (Pillow releases the GIL); later transforms work
on raw pixels. Random crops and flips draw from a generator seeded by (seed, epoch,
row), so the same seed gives the same pixels whatever the chunking or thread count,
and a new ``epoch`` re-draws them.

>>> import numpy as np, framestream as fs
>>> from framestream import image_analysis as ia
>>> imgs = fs.SArray([fs.Image(np.full((8, 10, 3), 200, np.uint8))])
>>> ia.to_tensor(ia.center_crop(imgs, 4, 4), scale=1 / 255).element_shape
(3, 4, 4)
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import dask.array as da
import numpy as np

from framestream.errors import SchemaError
from framestream.frames import _image_ops as ops
from framestream.frames._blocks import block_first_row, row_at
from framestream.frames._image_load import load_images
from framestream.frames.image import IMAGE, Image, ImageError
from framestream.frames.sarray import SArray

__all__ = ["load_images", "resize", "center_crop", "random_crop", "flip", "random_flip", "to_grayscale",
           "to_rgb", "to_tensor", "to_uint8_tensor", "mean_image"]

_THREADS = max(1, min(8, os.cpu_count() or 1))
_POOL: ThreadPoolExecutor | None = None


def _pool() -> ThreadPoolExecutor:
    global _POOL
    if _POOL is None:
        _POOL = ThreadPoolExecutor(_THREADS, thread_name_prefix="framestream-image")
    return _POOL


def _images(sa: Any) -> SArray:
    if isinstance(sa, Image):
        sa = SArray([sa])
    if not isinstance(sa, SArray) or sa._logical is not IMAGE:
        kind = sa._logical.name if isinstance(sa, SArray) else type(sa).__name__
        raise SchemaError(f"expected an image SArray (or an Image), got {kind}")
    return sa


Step = tuple  # (pixel function, seed or None, epoch)
_POOL_MIN_PIXELS = 64 * 64  # smaller images are cheaper to process than to hand to a thread


def _salt(fn: Callable) -> int:
    """A stable number for a transform's kind (its function's qualified name)."""
    import zlib

    return zlib.crc32(getattr(fn, "__qualname__", "step").encode())


def _chain(sa: SArray) -> tuple[SArray, list[Step]]:
    """The stored column and the pending pixel steps behind a transformed image column."""
    return getattr(sa, "_image_chain", None) or (sa, [])


def _run_steps(images: np.ndarray, steps: list[Step], name: str, block_info: Any,
               emit: Callable[[int, np.ndarray, Image], Any]) -> list[Any]:
    """Decode each image once, apply every step, and hand the pixels to ``emit``."""
    first = block_first_row(block_info)
    chunk = block_info[0]["chunk-location"][0] if block_info else 0

    def one(i: int) -> Any:
        img = images[i]
        if img is None:
            return None
        try:
            pixels = img.pixels()
            for fn, seed, epoch in steps:
                rng = None
                if seed is not None:
                    # keyed by (seed, epoch, kind of step, row), or (..., chunk, row in chunk) after
                    # a filter: a crop and a flip with one seed draw independently, and a chain
                    # gives the same pixels as the same steps applied one at a time
                    row = [chunk, i] if isinstance(first, str) else [first + i]
                    rng = ops.RowRandom(seed, epoch, _salt(fn), *row)
                pixels = fn(pixels, rng, img)
            return emit(i, pixels, img)
        except ImageError as exc:
            raise ImageError(f"row {row_at(first, i)} of {name!r}: {exc}") from None
        except SchemaError as exc:
            raise SchemaError(f"row {row_at(first, i)} of {name!r}: {exc}") from None
        except (OSError, ValueError, SyntaxError) as exc:
            raise ImageError(f"row {row_at(first, i)} of {name!r}: cannot decode the image ({exc})") from None

    big = any(img is not None and img.width * img.height >= _POOL_MIN_PIXELS for img in images[:1])
    return list(_pool().map(one, range(len(images)))) if big else [one(i) for i in range(len(images))]


def _map(sa: SArray, fn: Callable[[np.ndarray, ops.RowRandom | None, Any], np.ndarray],
         seed: int | None = None, epoch: int = 0) -> SArray:
    """A lazy pixel transform; consecutive transforms fuse into one pass (one decode per image)."""
    sa = _images(sa)
    source, steps = _chain(sa)
    steps = [*steps, (fn, seed, epoch)]
    name = getattr(source, "_name", "") or "image"

    def block(images: np.ndarray, block_info: Any = None) -> np.ndarray:
        out = np.empty(len(images), dtype=object)
        out[:] = _run_steps(images, steps, name, block_info, lambda i, pixels, img: Image(pixels))
        return out

    data = source._data.map_blocks(block, dtype=object, meta=np.empty(0, dtype=object))
    result = SArray._make(IMAGE, data, source._valid, source._rows)
    result._image_chain = (source, steps)
    return result


def resize(images: Any, width: int, height: int, channels: int | None = None, decode: bool = False,
           resample: str = "bilinear") -> Any:
    """Images resized to ``width`` x ``height`` (and ``channels`` if given).

    ``decode=False`` (Turi's default) re-encodes each result as its source format;
    ``decode=True`` keeps raw pixels, larger but faster to read again. An ``Image``
    in gives an ``Image`` out.
    """
    method = ops.parse_resample(resample)

    def fn(pixels: np.ndarray, rng: Any, img: Image) -> np.ndarray:
        out = ops.resize(pixels, width, height, method)
        return out if channels is None else ops.to_channels(out, channels)

    single = isinstance(images, Image)
    result = _map(images, fn)
    if not decode:
        result = _reencode(result, images if not single else SArray([images]))
    return result[0] if single else result


def _reencode(resized: SArray, source: SArray) -> SArray:
    def block(new: np.ndarray, old: np.ndarray) -> np.ndarray:
        out = np.empty(len(new), dtype=object)
        for i, (n, o) in enumerate(zip(new, old)):
            if n is None or o is None or o.format == "RAW":
                out[i] = n
            else:  # JPEG holds grey and RGB only: alpha goes to PNG
                out[i] = _encode(n, "PNG" if o.format == "JPEG" and n.channels == 4 else o.format)
        return out

    data = da.map_blocks(block, resized._data, _images(source)._data, dtype=object, meta=np.empty(0, dtype=object))
    return SArray._make(IMAGE, data, resized._valid, resized._rows)


def _encode(img: Image, format: str) -> Image:
    import io

    buf = io.BytesIO()
    img.to_pil().save(buf, format=format, **({"quality": 95} if format == "JPEG" else {}))
    return Image._from_parts(buf.getvalue(), img.width, img.height, img.channels, format)


def center_crop(images: Any, width: int, height: int) -> SArray:
    """The central ``width`` x ``height`` region of every image."""
    return _map(images, lambda p, rng, img: ops.center_crop(p, width, height))


def random_crop(images: Any, width: int, height: int, seed: int = 0, epoch: int = 0) -> SArray:
    """A ``width`` x ``height`` region at a random place, drawn per row from (seed, epoch, row)."""
    return _map(images, lambda p, rng, img: ops.random_crop(p, width, height, rng), seed=seed, epoch=epoch)


def flip(images: Any) -> SArray:
    """Every image mirrored left to right."""
    return _map(images, lambda p, rng, img: ops.flip_horizontal(p))


def random_flip(images: Any, seed: int = 0, probability: float = 0.5, epoch: int = 0) -> SArray:
    """Each image mirrored left to right with ``probability``, drawn per row."""
    def fn(p: np.ndarray, rng: ops.RowRandom, img: Image) -> np.ndarray:
        return ops.flip_horizontal(p) if rng.random() < probability else p

    return _map(images, fn, seed=seed, epoch=epoch)


def to_grayscale(images: Any) -> SArray:
    return _map(images, lambda p, rng, img: ops.to_channels(p, 1))


def to_rgb(images: Any) -> SArray:
    return _map(images, lambda p, rng, img: ops.to_channels(p, 3))


def _first_shape(sa: SArray) -> tuple[int, int, int]:
    first = next((img for img in sa.head(64) if img is not None), None)
    if first is None:
        raise SchemaError("cannot make a tensor column: the first images are all missing")
    return first.height, first.width, first.channels


def _tensor(images: Any, convert: Callable[[np.ndarray], np.ndarray], dtype: Any) -> SArray:
    sa = _images(images)
    h, w, c = _first_shape(sa)
    source, steps = _chain(sa)
    name = getattr(source, "_name", "") or "image"

    def block(imgs: np.ndarray, block_info: Any = None) -> np.ndarray:
        first = block_first_row(block_info)
        out = np.zeros((len(imgs), c * h * w), dtype=dtype)

        def emit(i: int, pixels: np.ndarray, img: Image) -> None:
            if pixels.shape != (h, w, c):
                ph, pw, pc = pixels.shape
                raise SchemaError(
                    f"row {row_at(first, i)} of {name!r} is {pw}x{ph}x{pc} but the first image is {w}x{h}x{c}; "
                    f"images must share one size to form a tensor: resize first, "
                    f"e.g. fs.image_analysis.resize(images, {w}, {h}, channels={c})")
            out[i] = convert(pixels.transpose(2, 0, 1)).ravel()

        _run_steps(imgs, steps, name, block_info, emit)
        return out

    data = source._data.map_blocks(block, new_axis=1, chunks=(source._data.chunks[0], (c * h * w,)), dtype=dtype)
    from framestream.frames._types import VECTOR

    out = SArray._make(VECTOR, data, source._valid, source._rows)
    out._element_shape = (c, h, w)
    return out


def to_tensor(images: Any, mean: Any = None, scale: float = 1.0, dtype: Any = np.float32) -> SArray:
    """A fixed-shape float tensor column: each row is one image as (C, H, W).

    ``(pixels - mean) * scale``, where ``mean`` is None, one number, one number per
    channel, or a (C, H, W) mean image (see ``mean_image``). ``element_shape`` gives
    (C, H, W) and ``to_numpy()`` an (N, C, H, W) array; rows are stored flat. Images
    must share one size (resize first).
    """
    sa = _images(images)
    h, w, c = _first_shape(sa)
    if mean is None:
        mean_arr = np.zeros((1, 1, 1), dtype=np.float32)
    else:
        mean_arr = np.asarray(mean, dtype=np.float32)
        if mean_arr.ndim == 1:
            if len(mean_arr) not in (1, c):
                raise SchemaError(f"mean has {len(mean_arr)} values but the images have {c} channels")
            mean_arr = mean_arr.reshape(-1, 1, 1)
        elif mean_arr.shape != (c, h, w) and mean_arr.ndim != 0:
            raise SchemaError(f"a mean image must have shape {(c, h, w)} (C, H, W), got {mean_arr.shape}")
    scale = np.float32(scale)

    def convert(chw: np.ndarray) -> np.ndarray:
        return (chw.astype(np.float32) - mean_arr) * scale

    return _tensor(sa, convert, dtype)


def to_uint8_tensor(images: Any) -> SArray:
    """Decoded pixels as a uint8 (C, H, W) tensor column: the fastest column to train from."""
    return _tensor(images, lambda chw: chw, np.uint8)


def mean_image(images: Any) -> np.ndarray:
    """The per-pixel mean of a column of same-size images, as a (C, H, W) float32 array."""
    tensors = to_uint8_tensor(images)
    return np.asarray(tensors.mean(), dtype=np.float32).reshape(tensors.element_shape)
