"""Networks, devices, data iterators and predictors: the model side of the flows.

Nothing here imports Prefect: predictors travel to Dask workers (pickled once per worker by
``_partitions``) and run there.
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import json
import pkgutil
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from framestream.errors import ConfigError
from framestream.flows.config import InputConfig, SourceNotFoundError

_CHECKPOINT = re.compile(r"^(?P<prefix>.+)-(?P<epoch>\d{4,})$")


class ModelNotInstalledError(ConfigError):
    """A model name that is neither a checkpoint nor an installed pretrained model."""


# -- networks --------------------------------------------------------------------------------


def guide_cnn(num_classes: int = 10, pooling: str = "valid") -> Any:
    """The user guide's CNN ("Train your own CNN for image classification"): two blocks of
    3x3/2 convolution (32 filters), BatchNorm, ReLU and 2x2/2 max pooling, then the
    classifier ``fc2`` and the loss ``sm``."""
    from framestream.nn import symbol as sym

    net = sym.Variable("data")
    for k in (1, 2):
        net = sym.Convolution(data=net, name=f"conv{k}", num_filter=32, kernel=(3, 3),
                              stride=(2, 2))
        net = sym.BatchNorm(data=net, name=f"bn{k}")
        net = sym.Activation(data=net, name=f"relu{k}", act_type="relu")
        net = sym.Pooling(data=net, name=f"mp{k}", kernel=(2, 2), stride=(2, 2), pool_type="max",
                          pooling_convention=pooling)
    net = sym.Flatten(data=net, name="flatten")
    net = sym.FullyConnected(data=net, name="fc2", num_hidden=num_classes)
    return sym.SoftmaxOutput(data=net, name="sm")


def builtin_networks() -> list[str]:
    """The names ``network`` accepts besides files and factories."""
    from framestream.nn import builtin_symbols

    names = {m.name.removeprefix("symbol_") for m in pkgutil.iter_modules(builtin_symbols.__path__)
             if not m.name.startswith("_")}
    return sorted(names | {"guide_cnn"})


def build_network(spec: str, args: dict[str, Any]) -> Any:
    """A Symbol from ``network`` (see ``FitConfig``); errors name the key ``network``."""
    from framestream.nn import symbol as sym
    from framestream.nn.symbol import Symbol

    if spec == "guide_cnn":
        net = guide_cnn(**args)
    elif spec.endswith(".json"):
        if not Path(spec).is_file():
            raise SourceNotFoundError(f"network: no symbol file {spec}")
        net = sym.load(spec)
    elif ":" in spec:
        net = _factory(spec)(**args)
    else:
        net = _builtin(spec).get_symbol(**args)
    if not isinstance(net, Symbol):
        raise ConfigError(f"network: {spec!r} gave a {type(net).__name__}, not an mx.sym.Symbol")
    return net


def _builtin(name: str) -> Any:
    for module in (name, f"symbol_{name}"):
        if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", module) is None:
            break
        try:
            return importlib.import_module(f"framestream.nn.builtin_symbols.{module}")
        except ModuleNotFoundError as exc:
            if exc.name != f"framestream.nn.builtin_symbols.{module}":
                raise
    raise ConfigError(f"network: unknown network {name!r}; builtin networks: "
                      f"{', '.join(builtin_networks())} (or a *.json symbol file, or "
                      "'module:function')")


def _factory(spec: str) -> Any:
    where, _, name = spec.rpartition(":")
    if where.endswith(".py"):
        if not Path(where).is_file():
            raise SourceNotFoundError(f"network: no Python file {where}")
        name_of_module = f"_framestream_net_{Path(where).stem}"
        loader = importlib.util.spec_from_file_location(name_of_module, where)
        module = importlib.util.module_from_spec(loader)
        loader.loader.exec_module(module)
    else:
        try:
            module = importlib.import_module(where)
        except ImportError as exc:
            raise ConfigError(f"network: cannot import {where!r} ({exc})") from None
    fn = getattr(module, name, None)
    if not callable(fn):
        raise ConfigError(f"network: {where!r} has no function {name!r}")
    return fn


# -- devices ----------------------------------------------------------------------------------


def parse_device(text: str) -> list[Any]:
    """``'cpu'``, ``'gpu'``, ``'gpu:1'`` or ``'gpu:0,1'`` as a list of ``mx.Context``.

    >>> parse_device('gpu:0,1')
    [gpu(0), gpu(1)]
    """
    from framestream.nn.context import cpu, gpu

    kind, _, ids = text.partition(":")
    if kind == "cpu" and not ids:
        return [cpu()]
    if kind == "gpu":
        try:
            numbers = [int(i) for i in ids.split(",")] if ids else [0]
        except ValueError:
            numbers = []
        if numbers and min(numbers) >= 0:
            return [gpu(i) for i in numbers]
    raise ValueError(f"expected 'cpu', 'gpu', 'gpu:<n>' or 'gpu:<n>,<m>', got {text!r}")


# -- what a network reads -------------------------------------------------------------------------


@dataclass(frozen=True)
class InputSpec:
    """The columns a model reads and how; ``train`` saves it as ``<prefix>-input.json`` so
    that scoring feeds the model as it was trained (augmentation off)."""

    data_field: tuple[str, ...] = ("image",)
    input: InputConfig = dataclasses.field(default_factory=InputConfig)

    def save(self, prefix: str) -> None:
        from framestream.flows.config import to_dict

        path = Path(f"{prefix}-input.json")
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(json.dumps(to_dict(self), indent=2))
        tmp.replace(path)

    @staticmethod
    def load(prefix: str) -> InputSpec | None:
        path = Path(f"{prefix}-input.json")
        if not path.is_file():
            return None
        raw = json.loads(path.read_text())
        return InputSpec(tuple(raw["data_field"]), InputConfig(**raw["input"]))


def is_image_column(frame: Any, column: str) -> bool:
    from framestream.frames import Image

    return frame[column].dtype is Image


def data_iter(frame: Any, fields: tuple[str, ...], options: InputConfig, batch_size: int,
              data_name: str = "data", label_field: str | None = None,
              label_name: str = "softmax_label", train: bool = False, shuffle: bool = False,
              seed: int = 0) -> Any:
    """An ``mx.io`` iterator over ``frame``: ``SFrameImageIter`` for one image column (with
    ``options``; augmentation only if ``train``), else ``SFrameIter``."""
    from framestream.nn import io

    common = {"label_field": label_field, "batch_size": max(1, min(batch_size, len(frame))),
              "data_name": data_name, "label_name": label_name, "shuffle": shuffle, "seed": seed}
    if len(fields) == 1 and is_image_column(frame, fields[0]):
        return io.SFrameImageIter(frame, data_field=list(fields), **common,
                                  **options.iter_options(train))
    return io.SFrameIter(frame, data_field=list(fields), **common)


# -- models to score with --------------------------------------------------------------------


def checkpoint_of(model: str) -> tuple[str, int] | None:
    """``(prefix, epoch)`` when ``model`` names a checkpoint: ``prefix-0004`` or ``prefix``
    (its latest epoch); None when no such files exist.

    >>> checkpoint_of('no/such/model-0002') is None
    True
    """
    match = _CHECKPOINT.match(model)
    if match and Path(f"{match['prefix']}-symbol.json").is_file() \
            and Path(f"{model}.params").is_file():
        return match["prefix"], int(match["epoch"])
    if Path(f"{model}-symbol.json").is_file():
        files = Path(model).parent.glob(f"{Path(model).name}-*.params")
        epochs = sorted(int(m["epoch"]) for p in files
                        if (m := _CHECKPOINT.match(str(p)[: -len(".params")]))
                        and Path(m["prefix"]) == Path(model))
        if epochs:
            return model, epochs[-1]
    return None


def load_predictor(model: str, data_field: tuple[str, ...] | None, options: InputConfig | None,
                   batch_size: int, device: str) -> Predictor:
    """A picklable predictor for a checkpoint or an installed pretrained model."""
    found = checkpoint_of(model)
    if found is not None:
        from framestream.nn.checkpoint import load_checkpoint

        prefix, epoch = found
        symbol, arg, aux = load_checkpoint(prefix, epoch)
        spec = InputSpec.load(prefix) or InputSpec()
        return Predictor(symbol.tojson(), _numpy(arg), _numpy(aux),
                         data_field or spec.data_field, options or spec.input, batch_size, device,
                         name=f"{prefix}-{epoch:04d}")
    if any(sep in model for sep in ("/", "\\")) or model.endswith((".params", ".json")):
        raise SourceNotFoundError(f"model: no checkpoint {model} (expected {model}-symbol.json "
                                  "and <prefix>-NNNN.params)")
    from framestream.nn import pretrained_model

    try:
        classifier = pretrained_model.load_model(model)
    except pretrained_model.ModelNotFoundError as exc:
        raise ModelNotInstalledError(f"model: {model!r} is neither a checkpoint nor an installed "
                                     f"pretrained model ({exc})") from exc
    meta = classifier.metadata
    return Predictor(classifier.symbol.tojson(), _numpy(classifier.arg_params),
                     _numpy(classifier.aux_params), data_field or ("image",),
                     options or InputConfig(), batch_size, device, name=model,
                     labels=classifier.labels, metadata=meta)


def _numpy(params: dict[str, Any]) -> dict[str, np.ndarray]:
    return {k: (v.asnumpy() if hasattr(v, "asnumpy") else np.asarray(v)) for k, v in params.items()}


class Predictor:
    """A network and its parameters as plain arrays, run on a slice of a frame.

    ``labels``/``metadata`` make it a pretrained image classifier (its own resizing and
    normalisation, predictions as label values); otherwise rows are fed as ``data_field`` /
    ``options`` say and predictions are class indices (or the value, for one output).
    """

    def __init__(self, symbol_json: str, arg_params: dict[str, np.ndarray],
                 aux_params: dict[str, np.ndarray], data_field: tuple[str, ...],
                 options: InputConfig, batch_size: int, device: str, name: str,
                 labels: list[Any] | None = None, metadata: dict[str, Any] | None = None):
        self.symbol_json, self.arg_params, self.aux_params = symbol_json, arg_params, aux_params
        self.data_field, self.options, self.batch_size = tuple(data_field), options, batch_size
        self.device, self.name = device, name
        self.labels, self.metadata = labels, metadata
        self._built: Any = None

    def __getstate__(self) -> dict[str, Any]:
        return dict(self.__dict__, _built=None)

    def _model(self) -> Any:
        if self._built is None:
            from framestream.nn import symbol as sym

            symbol = sym.load_json(self.symbol_json)
            ctx = parse_device(self.device)
            if self.labels is not None:
                from framestream.nn.pretrained_model import ImageClassifier

                self._built = ImageClassifier(symbol, self.arg_params, self.aux_params,
                                              self.labels, self.metadata or {}, ctx=ctx)
            else:
                from framestream.nn.model import FeedForward

                self._built = FeedForward(symbol, ctx=ctx, arg_params=self.arg_params,
                                          aux_params=self.aux_params, allow_extra_params=True,
                                          numpy_batch_size=self.batch_size)
        return self._built

    def _iter(self, frame: Any) -> Any:
        from framestream.nn._inputs import input_names

        data_name, _ = input_names(self._model().symbol)
        return data_iter(frame, self.data_field, self.options, self.batch_size, data_name=data_name)

    def predict(self, frame: Any) -> tuple[np.ndarray, np.ndarray | None]:
        """``(prediction per row, class scores per row or None)``."""
        model = self._model()
        if self.labels is not None:
            vectors = model.predict(frame[list(self.data_field)], output_type="probability_vector",
                                    batch_size=self.batch_size)
            scores = np.asarray(vectors.to_numpy(), dtype=np.float32).reshape(len(frame), -1)
            labels = np.asarray(self.labels, dtype=object)
            return _plain_labels(labels[np.argmax(scores, axis=1)]), scores
        out = model.predict(self._iter(frame))
        out = np.asarray(out[0] if isinstance(out, list) else out).reshape(len(frame), -1)
        if out.shape[1] == 1:
            return out[:, 0].astype(np.float64), None
        return np.argmax(out, axis=1).astype(np.int64), out.astype(np.float32)

    def features(self, frame: Any, layer: str | None) -> np.ndarray:
        """The output of ``layer`` (default: the classifier's input), one flat row per row."""
        model = self._model()
        if self.labels is not None:
            values = model.extract_features(frame[list(self.data_field)], layer=layer,
                                            batch_size=self.batch_size).to_numpy()
        else:
            from framestream.nn.features import extract_features

            values = extract_features(model, self._iter(frame), top_layer=layer)
        return np.asarray(values, dtype=np.float32).reshape(len(frame), -1)


def _plain_labels(values: np.ndarray) -> np.ndarray:
    if all(isinstance(v, int | np.integer) for v in values):
        return values.astype(np.int64)
    return values.astype(str)
