"""The ``preprocess`` flow: a source (CSV, image folder, Fashion-MNIST, MNIST, a saved SFrame)
-> the configured column transforms -> a saved SFrame.

Transforms stay lazy until the save, which streams chunk by chunk. A re-run with the same
config and unchanged source finds the stamp beside the output and returns at once.

>>> from framestream.flows.preprocess import preprocess   # doctest: +SKIP
>>> preprocess({'source': {'kind': 'fashion_mnist', 'split': 'test', 'limit': 1000},
...             'output': 'runs/fmnist-test.sframe'})     # doctest: +SKIP
'/.../runs/fmnist-test.sframe'
"""

from __future__ import annotations

import glob
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from framestream.flows._outputs import digest, is_current, source_identity, write_stamp
from framestream.flows.config import (
    PreprocessConfig,
    SourceConfig,
    SourceNotFoundError,
    TransformConfig,
    as_config,
    to_dict,
)


def check_source(source: SourceConfig, where: str = "source") -> None:
    """Raise ``SourceNotFoundError`` naming ``<where>.path`` when a local source is missing."""
    path = source.path
    if not path or "://" in path:
        return
    if source.kind == "images" and glob.has_magic(path):
        if not glob.glob(path, recursive=True):
            raise SourceNotFoundError(f"{where}.path: no file matches {path}")
        return
    if not Path(path).exists():
        raise SourceNotFoundError(f"{where}.path: {path} does not exist ({source.kind} source)")


@task(cache_policy=NO_CACHE)
def read_source(source: SourceConfig, where: str = "source") -> Any:
    """The source's rows as an SFrame (lazy where the source allows)."""
    import framestream as fs
    from framestream.frames.datasets import DatasetNotInstalled

    check_source(source, where)
    if source.kind == "csv":
        frame = fs.SFrame.read_csv(source.path, verbose=False)
    elif source.kind == "images":
        frame = fs.image_analysis.load_images(source.path, with_path=True)
        if source.label_from_folder:
            frame = _folder_labels(frame)
    elif source.kind == "sframe":
        frame = fs.SFrame(source.path)
    else:
        try:
            frame = (fs.datasets.fashion_mnist(source.split, directory=source.path)
                     if source.kind == "fashion_mnist" else fs.datasets.mnist())
        except DatasetNotInstalled as exc:
            raise SourceNotFoundError(f"{where}: {exc}") from exc
    if source.limit is not None:
        frame = frame.head(source.limit)
    return frame.copy()


def _folder_labels(frame: Any) -> Any:
    import numpy as np

    paths = frame["path"].to_numpy()
    names = np.array([Path(str(p)).parent.name for p in paths], dtype=object)
    classes = sorted(set(names.tolist()))
    index = {name: i for i, name in enumerate(classes)}
    frame["label"] = np.array([index[n] for n in names], dtype=np.int64)
    frame["label_name"] = names.astype(str)
    return frame


@task(cache_policy=NO_CACHE)
def apply_transforms(frame: Any, transforms: TransformConfig) -> Any:
    """The column transforms of ``transforms``, in their documented order (lazy)."""
    from framestream import image_analysis as ia

    t = transforms
    if t.select is not None:
        frame = frame[list(t.select)]
    if t.rename:
        frame = frame.rename(dict(t.rename))
    if t.dropna:
        frame = frame.dropna()
    if t.sample is not None:
        frame = frame.sample(t.sample, seed=t.seed)
    frame = frame.copy()
    for name in t.standardize:
        column = frame[name]
        frame[name] = (column - column.mean()) / column.std()
    if t.resize is not None:
        width, height = t.resize
        frame[t.image_column] = ia.resize(frame[t.image_column], width, height,
                                          channels=t.channels, decode=True)
    elif t.channels is not None:
        convert = ia.to_grayscale if t.channels == 1 else ia.to_rgb
        frame[t.image_column] = convert(frame[t.image_column])
    return frame


@task(cache_policy=NO_CACHE)
def save_frame(frame: Any, output: str) -> str:
    """Save ``frame`` at ``output`` (atomically replacing what was there); returns the path."""
    path = str(Path(output).absolute())
    frame.save(path, overwrite=True)
    return path


def preprocess_key(config: PreprocessConfig) -> str:
    return digest("preprocess", to_dict(config.source), to_dict(config.transforms),
                  source_identity(config.source.path))


@flow(name="preprocess", validate_parameters=False)
def preprocess(config: PreprocessConfig | dict | str) -> str:
    """Read the source, apply the transforms, save the result; returns the saved path."""
    cfg = as_config(config, PreprocessConfig)
    output = str(Path(cfg.output).absolute())
    key = preprocess_key(cfg)
    if is_current(output, key):
        get_run_logger().info("preprocess: %s is up to date", output)
        return output
    frame = read_source(cfg.source)
    frame = apply_transforms(frame, cfg.transforms)
    path = save_frame(frame, output)
    write_stamp(path, key)
    return path
