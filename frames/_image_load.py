"""``load_images``: a folder (or glob, or URL) of image files into an SFrame, streamed.

Files are read in batches by a thread pool and written chunk by chunk into a Zarr
store, so a folder of a million photos never sits in memory. Only headers are parsed
(plus a cheap truncation check): the encoded bytes are stored as they are.
"""

from __future__ import annotations

import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import fsspec
import numpy as np

from framestream.errors import FramestreamError
from framestream.frames import _store
from framestream.frames._chunking import chunk_rows_for
from framestream.frames._config import new_cache_path
from framestream.frames._store import ColumnSpec, FrameWriter
from framestream.frames._types import STR
from framestream.frames.image import IMAGE, Image, ImageError

_SUFFIXES = {"auto": (".jpg", ".jpeg", ".png"), "JPG": (".jpg", ".jpeg"), "JPEG": (".jpg", ".jpeg"), "PNG": (".png",)}
_BATCH = 256


def _list_files(url: str, formats: tuple[str, ...], recursive: bool) -> list[str]:
    filesystem, root = fsspec.core.url_to_fs(url)
    if any(ch in root for ch in "*?["):
        paths = filesystem.glob(root)
    elif filesystem.isdir(root):
        paths = filesystem.find(root) if recursive else [
            e["name"] for e in filesystem.ls(root, detail=True) if e.get("type") == "file"]
    elif filesystem.exists(root):
        paths = [root]
    else:
        raise FramestreamError(f"{url}: no such file or folder")
    found = sorted(p for p in paths if p.lower().endswith(formats) and not os.path.basename(p).startswith("."))
    remote = "://" in url and not url.startswith("file://")
    return [filesystem.unstrip_protocol(p) if remote else p for p in found]


def _read(path: str, format: str) -> Image:
    try:
        with fsspec.open(path, "rb") as f:
            data = f.read()
    except OSError as exc:
        raise ImageError(f"{path}: cannot read the file ({exc})") from None
    try:
        return Image(data, format=format)
    except ImageError as exc:
        raise ImageError(str(exc).replace("bytes:", f"{path}:", 1)) from None


def load_images(url: str | os.PathLike, format: str = "auto", with_path: bool = True, recursive: bool = True,
                ignore_failure: bool = True, random_order: bool = False, seed: int | None = None) -> Any:
    """An SFrame with columns ``path`` and ``image`` for every PNG / JPEG under ``url``.

    ``url`` is a file, a folder (searched recursively unless ``recursive=False``), a
    glob, or an fsspec URL. With ``ignore_failure=True`` unreadable, corrupt or
    truncated files are skipped and a warning names them; otherwise the first one
    raises an error naming its path. ``random_order=True`` shuffles the files.
    """
    from framestream.frames._lazy_store import open_frame

    key = format.upper() if format != "auto" else "auto"
    if key not in _SUFFIXES:
        raise ImageError(f"format must be 'auto', 'JPG' or 'PNG', not {format!r}")
    files = _list_files(os.fspath(url), _SUFFIXES[key], recursive)
    if random_order:
        np.random.default_rng(seed).shuffle(files)
    specs = ([ColumnSpec("path", STR, "c0")] if with_path else []) + [ColumnSpec("image", IMAGE, f"c{int(with_path)}")]
    target = new_cache_path("images")
    staged = _store.staging_dir(target)
    failed: list[tuple[str, str]] = []
    try:
        writer = FrameWriter(specs, chunk_rows_for(100_000), staged)
        with ThreadPoolExecutor(max(2, os.cpu_count() or 2)) as pool:
            for start in range(0, len(files), _BATCH):
                batch = files[start : start + _BATCH]
                results = list(pool.map(lambda p: _try_read(p, key), batch))
                kept = [(p, img) for p, (img, err) in zip(batch, results) if img is not None]
                for p, (_, err) in zip(batch, results):
                    if err is not None:
                        if not ignore_failure:
                            raise err
                        failed.append((p, str(err)))
                if kept:
                    paths = np.array([p for p, _ in kept], dtype=object)
                    images = np.empty(len(kept), dtype=object)
                    images[:] = [img for _, img in kept]
                    writer.append(([(paths, None)] if with_path else []) + [(images, None)])
        writer.commit()
        _store.commit_dir(staged, target, overwrite=False)
    except BaseException:
        import shutil

        shutil.rmtree(staged, ignore_errors=True)
        raise
    if failed:
        shown = "; ".join(f"{p} ({why.split(': ', 1)[-1]})" for p, why in failed[:5])
        more = f" and {len(failed) - 5} more" if len(failed) > 5 else ""
        warnings.warn(f"load_images skipped {len(failed)} unreadable images: {shown}{more}", stacklevel=2)
    return open_frame(target)


def _try_read(path: str, format: str) -> tuple[Image | None, Exception | None]:
    try:
        return _read(path, format), None
    except ImageError as exc:
        return None, exc
