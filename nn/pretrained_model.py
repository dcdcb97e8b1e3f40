"""``mx.pretrained_model``: download, list, load and remove pretrained models (issue 6).

GraphLab Create's module, on a local model store under ``$FRAMESTREAM_HOME/models``.
A model is a folder (metadata.json, labels.json, ``<prefix>-symbol.json``,
``<prefix>-<epoch>.params``) exchanged as a .tar.gz; see ``framestream.nn.pretrained``.

>>> from framestream import mx
>>> mx.pretrained_model.list_models()
[]
>>> mx.pretrained_model.DEFAULT_MODEL_LOCATION.endswith('models')
True
"""

from __future__ import annotations

from typing import Any

from framestream.errors import (
    ArchiveError,
    ChecksumError,
    DownloadError,
    InvalidModelError,
    ModelExistsError,
    ModelNotFoundError,
    ModelStoreError,
)
from framestream.nn.pretrained.classifier import ImageClassifier
from framestream.nn.pretrained.store import (
    IMAGE_CLASSIFIER,
    IMAGE_DETECTOR,
    ModelEntry,
    Package,
    default_location,
    download_model,
    list_models,
    load_model,
    load_path,
    package_model,
    remove_model,
    save_model,
)


class ModelTypeEnum:
    """The model types of metadata.json (GraphLab's names)."""

    IMAGE_CLASSIFIER = IMAGE_CLASSIFIER
    IMAGE_DETECTOR = IMAGE_DETECTOR


def __getattr__(name: str) -> Any:
    """``DEFAULT_MODEL_LOCATION`` follows ``$FRAMESTREAM_HOME`` at the time it is read;
    ``ImageDetector`` and ``visualize_detection`` are imported on first use."""
    if name == "DEFAULT_MODEL_LOCATION":
        return str(default_location())
    if name in ("ImageDetector", "visualize_detection"):
        from framestream.nn.pretrained import detector

        return getattr(detector, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# DEFAULT_MODEL_LOCATION, ImageDetector and visualize_detection are attributes too (__getattr__).
__all__ = [
    "IMAGE_CLASSIFIER", "IMAGE_DETECTOR", "ArchiveError", "ChecksumError",
    "DownloadError", "ImageClassifier", "InvalidModelError", "ModelEntry",
    "ModelExistsError", "ModelNotFoundError", "ModelStoreError", "ModelTypeEnum", "Package",
    "default_location", "download_model", "list_models", "load_model", "load_path",
    "package_model", "remove_model",
    "save_model",
]
