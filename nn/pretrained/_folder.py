"""The model folder: what a pretrained model is on disk, read, checked and written here only.

Layout (GraphLab Create's, kept so that its tarballs install unchanged)::

    <name>/
      metadata.json             {"name": str, "version": str | number,
                                 "model_type": "IMAGE_CLASSIFIER" | "IMAGE_DETECTOR",
                                 "input_shape": [H, W, C],      # classifiers; C is 1, 3 or 4
                                 "mean_rgb": [r, g, b],         # subtracted from the pixels
                                 "scale": s | null,             # then multiplied (null: 1)
                                 "mean_nd": "<file>" | null,    # optional mean image file:
                                                                # nd.save({"mean_img": (C, H, W)})
                                 "data_name": "data", "label_name": "softmax_label",  # optional
                                 ...}                           # other keys kept as they are
      labels.json               ["label of class 0", "label of class 1", ...]
      <prefix>-symbol.json      the network, in any MXNet JSON generation
      <prefix>-<epoch>.params   its parameters: "arg:"/"aux:" keys, or Gluon's bare names

Reading checks the files and the metadata without loading the arrays (``read_folder``);
``load_arrays`` then loads the network, its parameters and the mean image, and checks that
every parameter the network needs is there.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from framestream.errors import InvalidModelError
from framestream.nn import ndarray
from framestream.nn import symbol as sym
from framestream.nn._inputs import input_names
from framestream.nn.checkpoint import save_checkpoint
from framestream.nn.ndarray import NDArray

IMAGE_CLASSIFIER = "IMAGE_CLASSIFIER"
IMAGE_DETECTOR = "IMAGE_DETECTOR"
MODEL_TYPES = (IMAGE_CLASSIFIER, IMAGE_DETECTOR)
METADATA, LABELS = "metadata.json", "labels.json"
LAYOUT = ("a model folder holds metadata.json, labels.json, <prefix>-symbol.json and "
          "<prefix>-<epoch>.params")
_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.+-]{0,199}$")
_PARAMS = re.compile(r"^(?P<prefix>.+)-(?P<epoch>\d+)\.params$")


@dataclass(frozen=True)
class ModelFolder:
    """A checked model folder: its metadata and labels read, its two network files found."""

    path: Path
    metadata: dict[str, Any]
    labels: list[Any]
    prefix: str  # file prefix inside ``path``
    epoch: int
    params_name: str  # as found ("-0001", or GraphLab-era "-1")

    @property
    def symbol_file(self) -> Path:
        return self.path / f"{self.prefix}-symbol.json"

    @property
    def params_file(self) -> Path:
        return self.path / self.params_name


def check_name(name: Any, where: str) -> str:
    """A model name that is safe as a folder name (it comes from a downloaded file)."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise InvalidModelError(
            f"{where}: name {name!r} is not a valid model name (1-200 letters, digits, '_', '-', "
            "'.' or '+', not starting with '.' or '-')")
    return name


def read_folder(path: str | Path, default_name: str | None = None) -> ModelFolder:
    """Check a model folder's files and metadata; the error names the folder and the file."""
    path = Path(path)
    if not path.is_dir():
        raise InvalidModelError(f"{path}: not a folder; {LAYOUT}")
    metadata = check_metadata(_read_json(path, METADATA), path, default_name)
    labels = _check_labels(_read_json(path, LABELS), path / LABELS)
    prefix, epoch, params_name = _network_files(path)
    return ModelFolder(path, metadata, labels, prefix, epoch, params_name)


def _read_json(folder: Path, name: str) -> Any:
    file = folder / name
    if not file.is_file():
        raise InvalidModelError(f"{folder}: {name} is missing; {LAYOUT}")
    try:
        return json.loads(file.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidModelError(f"{file}: not valid JSON ({exc})") from None


def _numbers(value: Any, n: int) -> bool:
    return (isinstance(value, list | tuple) and len(value) == n
            and all(isinstance(v, int | float) and not isinstance(v, bool) for v in value))


def check_metadata(meta: Any, folder: Path, default_name: str | None = None) -> dict[str, Any]:
    """The metadata with every field GraphLab's loader relied on checked (a copy)."""
    where = folder / METADATA
    if not isinstance(meta, dict):
        raise InvalidModelError(f"{where}: expected a JSON object, got {type(meta).__name__}")
    meta = dict(meta)
    if "name" not in meta:
        meta["name"] = default_name or folder.name
    check_name(meta["name"], str(where))
    missing = [k for k in ("version", "model_type", "mean_rgb", "scale") if k not in meta]
    if meta.get("model_type") == IMAGE_CLASSIFIER and "input_shape" not in meta:
        missing.append("input_shape")
    if missing:
        raise InvalidModelError(f"{where}: missing field(s) {', '.join(missing)}")
    version = meta["version"]
    if isinstance(version, bool) or not isinstance(version, str | int | float):
        raise InvalidModelError(f"{where}: version must be a string or a number, not {version!r}")
    if meta["model_type"] not in MODEL_TYPES:
        raise InvalidModelError(f"{where}: model_type {meta['model_type']!r} is not one of "
                                f"{', '.join(MODEL_TYPES)}")
    shape = meta.get("input_shape")
    needed = meta["model_type"] == IMAGE_CLASSIFIER
    valid = (_numbers(shape, 3) and all(isinstance(v, int) and v > 0 for v in shape)
             and shape[2] in (1, 3, 4))
    if (shape is not None or needed) and not valid:
        raise InvalidModelError(f"{where}: input_shape must be [height, width, channels] with 1, 3 "
                                f"or 4 channels, not {shape!r}")
    if not _numbers(meta["mean_rgb"], 3):
        raise InvalidModelError(f"{where}: mean_rgb must be three numbers, "
                                f"not {meta['mean_rgb']!r}")
    scale = meta["scale"]
    if scale is not None and (not _numbers([scale], 1) or scale <= 0):
        raise InvalidModelError(f"{where}: scale must be a positive number or null, not {scale!r}")
    mean_nd = meta.get("mean_nd")
    if mean_nd is not None:
        if not isinstance(mean_nd, str) or Path(mean_nd).name != mean_nd or mean_nd.startswith("."):
            raise InvalidModelError(f"{where}: mean_nd must name a file in the model folder, "
                                    f"not {mean_nd!r}")
        if not (folder / mean_nd).is_file():
            raise InvalidModelError(f"{folder}: the mean image {mean_nd} named by metadata.json "
                                    "is missing")
    for key in ("data_name", "label_name"):
        if meta.get(key) is not None and not isinstance(meta[key], str):
            raise InvalidModelError(f"{where}: {key} must be a string, not {meta[key]!r}")
    return meta


def _check_labels(labels: Any, where: Path) -> list[Any]:
    """``labels.json``: a list, or an object keyed "0".."K-1" (index -> label)."""
    if isinstance(labels, dict):
        try:
            keyed = {int(k): v for k, v in labels.items()}
        except ValueError:
            raise InvalidModelError(f"{where}: an object of labels must be keyed by class index "
                                    "('0', '1', ...)") from None
        if sorted(keyed) != list(range(len(keyed))):
            raise InvalidModelError(f"{where}: class indices must run 0..{len(keyed) - 1} "
                                    "without gaps")
        labels = [keyed[i] for i in range(len(keyed))]
    if not isinstance(labels, list) or not labels:
        raise InvalidModelError(f"{where}: expected a non-empty list of labels (index -> label)")
    bad = [v for v in labels if isinstance(v, bool) or not isinstance(v, str | int)]
    if bad:
        raise InvalidModelError(f"{where}: labels must be strings or integers, not {bad[0]!r}")
    return labels


def _network_files(folder: Path) -> tuple[str, int, str]:
    """(prefix, epoch, params file) of the one ``<prefix>-symbol.json`` and
    ``<prefix>-<epoch>.params`` of the folder."""
    names = sorted(p.name for p in folder.iterdir() if p.is_file())
    symbols = [n[: -len("-symbol.json")] for n in names if n.endswith("-symbol.json")]
    params = [m for m in map(_PARAMS.match, names) if m]
    if len(params) > 1:
        raise InvalidModelError(f"{folder}: {len(params)} parameter files "
                                f"({', '.join(m.group(0) for m in params)}); {LAYOUT}, one of each")
    if len(symbols) > 1:
        raise InvalidModelError(f"{folder}: {len(symbols)} network files "
                                f"({', '.join(s + '-symbol.json' for s in symbols)}); {LAYOUT}, "
                                "one of each")
    if not params:
        prefix = symbols[0] if symbols else "<prefix>"
        raise InvalidModelError(f"{folder}: the parameter file {prefix}-<epoch>.params is "
                                f"missing; {LAYOUT}")
    prefix, epoch = params[0].group("prefix"), int(params[0].group("epoch"))
    if not symbols:
        raise InvalidModelError(f"{folder}: the network file {prefix}-symbol.json is missing; "
                                f"{LAYOUT}")
    if symbols[0] != prefix:
        raise InvalidModelError(f"{folder}: the network file {symbols[0]}-symbol.json and the "
                                f"parameter file {params[0].group(0)} have different prefixes")
    return prefix, epoch, params[0].group(0)


# ------------------------------------------------------------------------------------------------
# Loading the arrays


def load_arrays(folder: ModelFolder) -> tuple[Any, dict[str, NDArray], dict[str, NDArray],
                                              np.ndarray | None]:
    """(symbol, arg_params, aux_params, mean image (H, W, C) or None), checked together."""
    try:
        symbol = sym.load(str(folder.symbol_file))
    except Exception as exc:
        raise InvalidModelError(f"{folder.symbol_file}: cannot read the network ({exc})") from None
    try:
        loaded = ndarray.load(folder.params_file)
    except Exception as exc:
        raise InvalidModelError(f"{folder.params_file}: cannot read the parameters "
                                f"({exc})") from None
    if not isinstance(loaded, dict):
        raise InvalidModelError(f"{folder.params_file}: the arrays have no names, so they cannot "
                                "be matched to the network")
    arg_params, aux_params = _split_params(loaded, set(symbol.list_auxiliary_states()))
    _check_params(symbol, folder, arg_params, aux_params)
    return symbol, arg_params, aux_params, _mean_image(folder)


def _split_params(loaded: dict[str, NDArray], aux_names: set[str]) -> tuple[dict, dict]:
    """Checkpoint keys ``arg:x`` / ``aux:x``; bare names (Gluon's save_parameters) by role."""
    arg, aux = {}, {}
    for key, value in loaded.items():
        kind, sep, name = key.partition(":")
        if sep and kind in ("arg", "aux"):
            (arg if kind == "arg" else aux)[name] = value
        else:
            (aux if key in aux_names else arg)[key] = value
    return arg, aux


def data_and_label_names(symbol: Any, metadata: dict[str, Any]) -> tuple[str, set[str]]:
    """The network's input name and the names of its label arguments (not parameters)."""
    data_name = metadata.get("data_name") or input_names(symbol)[0]
    arguments = symbol.list_arguments()
    labels = {a for a in arguments if a.endswith("_label")}
    if metadata.get("label_name"):
        labels.add(metadata["label_name"])
    return data_name, labels & set(arguments)


def _check_params(symbol: Any, folder: ModelFolder, arg_params: dict, aux_params: dict) -> None:
    data_name, labels = data_and_label_names(symbol, folder.metadata)
    arguments = symbol.list_arguments()
    if data_name not in arguments:
        raise InvalidModelError(f"{folder.path / METADATA}: data_name {data_name!r} is not an "
                                f"input of the network; its arguments are {', '.join(arguments)}")
    inputs = {data_name, *labels}
    if folder.metadata["model_type"] == IMAGE_DETECTOR:
        inputs.add("im_info")  # Faster R-CNN's second input: [height, width, scale]
    missing = [a for a in arguments if a not in inputs and a not in arg_params]
    missing += [a for a in symbol.list_auxiliary_states() if a not in aux_params]
    if missing:
        more = f" and {len(missing) - 8} more" if len(missing) > 8 else ""
        shown = ", ".join(missing[:8]) + more
        raise InvalidModelError(f"{folder.params_file}: no values for {shown}, which the network "
                                f"in {folder.symbol_file.name} needs")


def _mean_image(folder: ModelFolder) -> np.ndarray | None:
    """The mean image as (H, W, C) float32 (stored (C, H, W) under the key ``mean_img``)."""
    name = folder.metadata.get("mean_nd")
    if name is None:
        return None
    file = folder.path / name
    try:
        loaded = ndarray.load(file)
    except Exception as exc:
        raise InvalidModelError(f"{file}: cannot read the mean image ({exc})") from None
    if isinstance(loaded, dict):
        value = loaded.get("mean_img", next(iter(loaded.values())) if len(loaded) == 1 else None)
    else:
        value = loaded[0] if len(loaded) == 1 else None
    if value is None:
        raise InvalidModelError(f"{file}: expected one array (key 'mean_img'), found "
                                f"{len(loaded)}")
    mean = value.asnumpy().astype(np.float32)
    shape = folder.metadata.get("input_shape")
    if mean.ndim != 3 or (shape and mean.shape != (shape[2], shape[0], shape[1])):
        want = f"(C, H, W) = {(shape[2], shape[0], shape[1])}" if shape else "(C, H, W)"
        raise InvalidModelError(f"{file}: the mean image has shape {mean.shape}; expected {want}")
    return np.ascontiguousarray(mean.transpose(1, 2, 0))


# ------------------------------------------------------------------------------------------------
# Writing


def write_folder(path: Path, symbol: Any, arg_params: dict[str, Any], aux_params: dict[str, Any],
                 labels: list[Any], metadata: dict[str, Any], mean_nd: Any = None,
                 prefix: str | None = None, epoch: int = 0) -> None:
    """Write a model folder's files into the existing, empty folder ``path``."""
    metadata = dict(metadata)
    prefix = prefix or metadata["name"]
    if mean_nd is not None:
        mean = np.asarray(mean_nd, dtype=np.float32)
        if mean.ndim != 3:
            raise InvalidModelError(f"mean_nd must be an (H, W, C) image, not shape {mean.shape}")
        ndarray.save(path / "mean.nd", {"mean_img": ndarray.array(mean.transpose(2, 0, 1))})
        metadata["mean_nd"] = "mean.nd"
    metadata.setdefault("mean_nd", None)
    (path / METADATA).write_text(json.dumps(metadata, indent=2) + "\n", encoding="utf-8")
    (path / LABELS).write_text(json.dumps(list(labels), indent=1) + "\n", encoding="utf-8")
    save_checkpoint(str(path / prefix), int(epoch), symbol, dict(arg_params),
                    dict(aux_params or {}))
