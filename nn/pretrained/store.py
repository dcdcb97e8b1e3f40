"""The local model store: install, list, load and remove pretrained models.

A store is a folder (default ``$FRAMESTREAM_HOME/models``) holding one model folder per
name (see ``_folder`` for the layout). Installation never leaves a half-installed model:

1. the archive is streamed to a hidden temporary file in the store, its SHA-256 computed
   on the way and compared with the one given;
2. it is extracted, member by member after checking every header, into a hidden folder;
3. the folder is checked: files, metadata, and the network against its parameters;
4. only then is it renamed into place; with ``overwrite=True`` the old model is swapped
   out in one atomic exchange (Linux ``renameat2``), so readers see the old model or the
   new one, never neither.

Any failure, ``KeyboardInterrupt`` included, removes the temporary entries; those left by
a killed process (named with its pid) are swept by the next install. Hidden entries are
never listed as models.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import shutil
import tempfile
import urllib.parse
import uuid
from collections import namedtuple
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil

from framestream.errors import (
    ChecksumError,
    InvalidModelError,
    ModelExistsError,
    ModelNotFoundError,
    NNError,
)
from framestream.frames._config import home
from framestream.frames._store import _exchange
from framestream.nn.pretrained import _archive
from framestream.nn.pretrained._folder import (
    IMAGE_CLASSIFIER,
    IMAGE_DETECTOR,
    METADATA,
    ModelFolder,
    check_name,
    load_arrays,
    read_folder,
    write_folder,
)

LOG = logging.getLogger("framestream.nn.pretrained")

ModelEntry = namedtuple("ModelEntry", ["name", "type", "version"])
Package = namedtuple("Package", ["path", "sha256"])

__all__ = ["IMAGE_CLASSIFIER", "IMAGE_DETECTOR", "ModelEntry", "Package", "default_location",
           "download_model", "list_models", "load_model", "load_path", "package_model",
           "remove_model", "save_model"]


def default_location() -> Path:
    """``$FRAMESTREAM_HOME/models``, read when called (so a changed environment is seen)."""
    return home() / "models"


def _location(location: str | os.PathLike | None) -> Path:
    return Path(location).expanduser() if location is not None else default_location()


def _hidden(location: Path, kind: str) -> Path:
    """A temporary entry in the store: hidden, and named with our pid for the sweep."""
    return location / f".{kind}-{os.getpid()}-{uuid.uuid4().hex[:12]}"


def _sweep(location: Path) -> None:
    """Remove temporary entries left by processes that no longer run."""
    for entry in location.iterdir():
        match = re.match(r"^\.(download|extract|staging|removing|old)-(\d+)-", entry.name)
        if match and not psutil.pid_exists(int(match.group(2))):
            _remove(entry)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


# ------------------------------------------------------------------------------------------------
# Listing


def list_models(location: str | os.PathLike | None = None) -> list[ModelEntry]:
    """The models installed in ``location``, sorted by name.

    Parameters
    ----------
    location : str, optional
        The store folder; default ``$FRAMESTREAM_HOME/models``.

    Returns
    -------
    list of ModelEntry
        ``(name, type, version)`` per model; folders whose metadata cannot be read are
        skipped with a warning.

    Examples
    --------
    >>> from framestream import mx
    >>> mx.pretrained_model.list_models()
    []
    """
    root = _location(location)
    if not root.is_dir():
        return []
    entries = []
    for folder in sorted(root.iterdir()):
        if folder.name.startswith(".") or not folder.is_dir():
            continue
        try:
            meta = json.loads((folder / METADATA).read_text(encoding="utf-8"))
            entries.append(ModelEntry(meta.get("name", folder.name), meta["model_type"],
                                      meta["version"]))
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            LOG.warning("skipping %s: cannot read its metadata.json (%s)", folder, exc)
    return entries


# ------------------------------------------------------------------------------------------------
# Installing


def _name_from_source(source: str) -> str:
    """GraphLab's rule: the file name up to the first '-' (``mnist_lenet-1.0.tar.gz``)."""
    if _archive.is_url(source):
        source = urllib.parse.urlparse(source).path  # no query string or fragment
    base = re.split(r"[/\\]", source.rstrip("/\\"))[-1]
    base = re.sub(r"\.(tar\.gz|tgz|tar\.bz2|tar\.xz|tar)$", "", base)
    return base.split("-")[0]


def _model_root(extracted: Path, label: str) -> Path:
    """The extracted model folder: the archive's root, or its single top folder."""
    if (extracted / METADATA).is_file():
        return extracted
    entries = [p for p in extracted.iterdir()]
    if len(entries) == 1 and entries[0].is_dir():
        return entries[0]
    names = ", ".join(sorted(p.name for p in entries)[:10])
    raise InvalidModelError(f"{label}: metadata.json is missing: the archive holds {names}, "
                            "not a model folder (metadata.json, labels.json, <prefix>-symbol.json, "
                            "<prefix>-<epoch>.params) at its root or in one top folder")


@contextlib.contextmanager
def _renamed_errors(temporary: Path, shown: str) -> Iterator[None]:
    """Errors about a temporary folder name what the user gave instead (a URL, a path)."""
    try:
        yield
    except InvalidModelError as exc:
        raise InvalidModelError(str(exc).replace(str(temporary), shown)) from None


def _commit(staged: Path, target: Path, overwrite: bool) -> None:
    """Move a checked model folder to ``target``; with ``overwrite``, swap atomically."""
    if target.exists() and not overwrite:
        raise ModelExistsError(f"model {target.name!r} is already installed at {target}; pass "
                               "overwrite=True to replace it, or remove_model() it first")
    if not target.exists():
        try:
            os.rename(staged, target)
            return
        except OSError:
            if not target.exists():
                raise
            if not overwrite:
                raise ModelExistsError(f"model {target.name!r} was installed at {target} by "
                                       "another process meanwhile") from None
    if _exchange(staged, target):  # staged now holds the old model
        _remove(staged)
        return
    old = _hidden(target.parent, "old")
    os.rename(target, old)
    os.rename(staged, target)
    _remove(old)


def _install_folder(root: Path, location: Path, overwrite: bool, default_name: str,
                    label: str) -> ModelEntry:
    """Check the extracted folder ``root`` (inside a hidden entry) and move it into place."""
    folder = read_folder(root, default_name=default_name)
    _build(folder, None)  # a corrupt or inconsistent model fails now, not at load time
    meta_file = root / METADATA
    on_disk = json.loads(meta_file.read_text(encoding="utf-8"))
    if on_disk.get("name") != folder.metadata["name"]:  # GraphLab's fallback: record the name
        on_disk["name"] = folder.metadata["name"]
        meta_file.write_text(json.dumps(on_disk, indent=2) + "\n", encoding="utf-8")
    name = folder.metadata["name"]
    _commit(root, location / name, overwrite)
    LOG.info("installed model %s (version %s) from %s in %s", name, folder.metadata["version"],
             label, location)
    return ModelEntry(name, folder.metadata["model_type"], folder.metadata["version"])


def download_model(url_or_path: str | os.PathLike, location: str | os.PathLike | None = None,
                   overwrite: bool = False, sha256: str | None = None,
                   progress: bool | None = None) -> ModelEntry:
    """Download a model archive (.tar.gz) and install it in the store, atomically.

    Parameters
    ----------
    url_or_path : str
        An ``http(s)://`` URL, a ``file://`` URL, the path of an archive, or the path of a
        model folder (copied).
    location : str, optional
        The store folder; default ``$FRAMESTREAM_HOME/models``.
    overwrite : bool
        Replace an installed model of the same name (the old one stays until the new one
        is complete). Otherwise a ``ModelExistsError`` (a ``FileExistsError``) is raised.
    sha256 : str, optional
        The archive's expected SHA-256 (hex); a mismatch raises ``ChecksumError``.
    progress : bool, optional
        Show a progress bar; default: only on a terminal.

    Returns
    -------
    ModelEntry
        ``(name, type, version)``; the name is metadata.json's ``name``, or else the file
        name up to its first '-' (GraphLab's rule).

    Examples
    --------
    >>> from framestream import mx
    >>> mx.pretrained_model.download_model(  # doctest: +SKIP
    ...     'https://example.org/models/mnist_lenet-1.0.tar.gz', sha256='9f86d0...')
    ModelEntry(name='mnist_lenet', type='IMAGE_CLASSIFIER', version='1.0')
    """
    source = os.fspath(url_or_path)
    root = _location(location)
    root.mkdir(parents=True, exist_ok=True)
    _sweep(root)
    default_name = _name_from_source(source)
    local = _archive.local_path(source)
    extracted = _hidden(root, "extract")
    download = _hidden(root, "download")
    try:
        extracted.mkdir()
        if local is not None and local.is_dir():
            if sha256 is not None:
                raise ChecksumError(f"{source}: sha256 checks an archive; this is a folder")
            _archive.copy_folder(local, extracted)
        else:
            digest = _archive.fetch(source, download, progress)
            if sha256 is not None and digest != sha256.strip().lower():
                raise ChecksumError(f"{source}: SHA-256 mismatch: expected {sha256.strip().lower()}"
                                    f", got {digest}; the download was discarded")
            _archive.extract(download, extracted, source)
            download.unlink()
        with _renamed_errors(extracted, source):
            return _install_folder(_model_root(extracted, source), root, overwrite, default_name,
                                   source)
    finally:
        _remove(download)
        _remove(extracted)


# ------------------------------------------------------------------------------------------------
# Loading and removing


def _installed(name: str, location: str | os.PathLike | None) -> Path:
    root = _location(location)
    plain = isinstance(name, str) and re.fullmatch(r"[^./\\][^/\\]*", name) is not None
    if not plain or not (root / name / METADATA).is_file():
        names = [m.name for m in list_models(root)]
        shown = ", ".join(names) if names else "none"
        raise ModelNotFoundError(f"model {name!r} is not installed in {root}; installed: {shown}"
                                 " (download_model installs more)")
    return root / name


def load_model(name: str, ctx: Any = None, location: str | os.PathLike | None = None) -> Any:
    """Load an installed model by name: an ``ImageClassifier`` or an ``ImageDetector``.

    Parameters
    ----------
    name : str
        The model's name, as ``list_models`` shows it.
    ctx : Context or list of Context, optional
        Where to run it; default ``mx.cpu()``. A list splits each batch across devices.
    location : str, optional
        The store folder; default ``$FRAMESTREAM_HOME/models``.

    Raises
    ------
    ModelNotFoundError
        (a ``KeyError``) when ``name`` is not installed; the message lists what is.

    Examples
    --------
    >>> from framestream import mx
    >>> mx.pretrained_model.load_model('mnist_lenet', ctx=mx.gpu(0))  # doctest: +SKIP
    ImageClassifier: mnist_lenet (version 1.0)
    """
    return load_path(_installed(name, location), ctx)


def load_path(path: str | os.PathLike, ctx: Any = None) -> Any:
    """Load a model folder by path (for models outside a store); see ``load_model``.

    ``metadata['mean_nd']`` is handed to the model as the (H, W, C) mean image, or None.

    Examples
    --------
    >>> from framestream import mx
    >>> mx.pretrained_model.load_path('~/models/mnist_lenet')  # doctest: +SKIP
    """
    return _build(read_folder(Path(path).expanduser()), ctx)


def _build(folder: ModelFolder, ctx: Any) -> Any:
    """The model object for a checked folder; its consistency errors name the folder."""
    symbol, arg_params, aux_params, mean = load_arrays(folder)
    metadata = dict(folder.metadata, mean_nd=mean)
    if metadata["model_type"] == IMAGE_CLASSIFIER:
        from framestream.nn.pretrained.classifier import ImageClassifier as cls
    else:
        from framestream.nn.pretrained.detector import ImageDetector as cls
    try:
        return cls(symbol, arg_params, aux_params, folder.labels, metadata, ctx=ctx)
    except (ValueError, TypeError, NNError) as exc:
        raise InvalidModelError(f"{folder.path}: {exc}") from None


def remove_model(name: str, location: str | os.PathLike | None = None) -> None:
    """Uninstall a model: it disappears from the store in one rename, then is deleted.

    Examples
    --------
    >>> from framestream import mx
    >>> mx.pretrained_model.remove_model('mnist_lenet')  # doctest: +SKIP
    """
    folder = _installed(name, location)
    trash = _hidden(folder.parent, "removing")
    os.rename(folder, trash)
    _remove(trash)


# ------------------------------------------------------------------------------------------------
# Writing models and archives


def _parts_of(model: Any) -> tuple[Any, dict, dict]:
    """(symbol, arg_params, aux_params) of a FeedForward or a loaded pretrained model."""
    symbol = getattr(model, "symbol", None)
    arg_params = getattr(model, "arg_params", None)
    if symbol is None or arg_params is None:
        raise TypeError(f"expected a trained FeedForward or a pretrained model, not "
                        f"{type(model).__name__} (it needs symbol and arg_params)")
    return symbol, dict(arg_params), dict(getattr(model, "aux_params", None) or {})


def save_model(path: str | os.PathLike, model: Any, labels: list[Any] | None = None,
               name: str | None = None, input_shape: tuple[int, int, int] | None = None,
               version: str = "1.0", model_type: str = IMAGE_CLASSIFIER,
               mean_rgb: tuple[float, float, float] = (0.0, 0.0, 0.0), scale: float | None = 1.0,
               mean_nd: Any = None, overwrite: bool = False, prefix: str | None = None,
               epoch: int = 0, **extra: Any) -> Path:
    """Write a model folder from a trained ``FeedForward`` (or re-save a loaded model).

    Parameters
    ----------
    path : str
        The folder to create; written beside itself and renamed into place.
    model : FeedForward, ImageClassifier or ImageDetector
        The network and its parameters. A loaded model brings its labels and metadata;
        the keyword arguments given override them.
    labels : list
        Class index -> label (str or int).
    name : str
        The model's name; default: the folder's name.
    input_shape : (height, width, channels)
        What images are resized and converted to.
    mean_rgb, scale, mean_nd
        Normalisation ``(pixels - mean) * scale``; ``mean_nd`` an (H, W, C) mean image.
    **extra
        Further metadata (``data_name``, ``label_name``, detectors' ``target_size`` ...).

    Returns
    -------
    pathlib.Path
        The folder written.

    Examples
    --------
    >>> from framestream import mx
    >>> mx.pretrained_model.save_model('fmnist_cnn', model, labels=classes,  # doctest: +SKIP
    ...                                input_shape=(28, 28, 1), scale=1 / 255)
    PosixPath('fmnist_cnn')
    """
    target = Path(path).expanduser()
    symbol, arg_params, aux_params = _parts_of(model)
    metadata: dict[str, Any] = {"version": version, "model_type": model_type,
                                "mean_rgb": list(mean_rgb), "scale": scale,
                                "name": name or target.name, "input_shape": input_shape}
    if hasattr(model, "metadata") and hasattr(model, "labels"):  # a loaded model: keep its own
        own = {k: v for k, v in model.metadata.items() if k != "mean_nd"}
        given = {k: v for k, v in (("name", name), ("input_shape", input_shape)) if v is not None}
        metadata.update(own, **given)
        labels = model.labels if labels is None else labels
        mean_nd = model.metadata.get("mean_nd") if mean_nd is None else mean_nd
    metadata.update(extra)
    metadata["name"] = check_name(metadata.get("name") or target.name, "save_model")
    if metadata.get("input_shape") is not None:
        metadata["input_shape"] = [int(v) for v in metadata["input_shape"]]
    if labels is None:
        raise InvalidModelError("save_model needs labels (class index -> label)")
    if metadata.get("model_type") == IMAGE_CLASSIFIER and metadata.get("input_shape") is None:
        raise InvalidModelError("save_model needs input_shape=(height, width, channels) for an "
                                "IMAGE_CLASSIFIER: images are resized to it")
    if target.exists() and not overwrite:
        raise ModelExistsError(f"{target} already exists; pass overwrite=True to replace it")
    target.parent.mkdir(parents=True, exist_ok=True)
    staged = Path(tempfile.mkdtemp(prefix=f".{target.name}.staging-", dir=target.parent))
    try:
        write_folder(staged, symbol, arg_params, aux_params, list(labels), metadata, mean_nd,
                     prefix, epoch)
        with _renamed_errors(staged, str(target)):
            _build(read_folder(staged), None)
        _commit(staged, target, overwrite)
    finally:
        _remove(staged)
    return target


def package_model(folder_or_model: Any, path: str | os.PathLike, overwrite: bool = False,
                  **save_args: Any) -> Package:
    """Pack a model folder (or a model, saved first) as a .tar.gz that ``download_model`` installs.

    Parameters
    ----------
    folder_or_model : str, Path, FeedForward, ImageClassifier or ImageDetector
        A model folder (checked first), or a model: then ``save_args`` go to ``save_model``.
    path : str
        The archive to write, e.g. ``'fmnist_cnn-1.0.tar.gz'``.

    Returns
    -------
    Package
        ``(path, sha256)``: publish the checksum with the archive.

    Examples
    --------
    >>> from framestream import mx
    >>> pkg = mx.pretrained_model.package_model(  # doctest: +SKIP
    ...     'fmnist_cnn', 'fmnist_cnn-1.0.tar.gz')
    >>> mx.pretrained_model.download_model(pkg.path, sha256=pkg.sha256)  # doctest: +SKIP
    """
    out = Path(path).expanduser()
    if out.exists() and not overwrite:
        raise FileExistsError(f"{out} already exists; pass overwrite=True to replace it")
    if isinstance(folder_or_model, str | os.PathLike):
        folder = read_folder(Path(folder_or_model).expanduser())
        _build(folder, None)
        return Package(str(out), _archive.pack(folder.path, folder.metadata["name"], out))
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".package-", dir=out.parent) as tmp:
        saved = save_model(Path(tmp) / "model", folder_or_model, **save_args)
        folder = read_folder(saved)
        return Package(str(out), _archive.pack(saved, folder.metadata["name"], out))
