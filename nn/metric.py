"""``mx.metric``: evaluation metrics accumulated batch by batch, as MXNet computes them.

A metric keeps ``sum_metric`` and ``num_inst`` and reports their ratio. Accuracy-like
metrics count samples; the regression metrics and F1 average one value per batch, as the
MXNet this reimplements does (so a short last batch weighs as much as a full one). Inputs
are lists of NDArrays, or of NumPy/CuPy arrays; everything is computed on the host.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy

from framestream.errors import ShapeInferenceError
from framestream.nn.context import to_numpy
from framestream.nn.ndarray import NDArray

__all__ = [
    "MAE", "MSE", "RMSE", "Accuracy", "CompositeEvalMetric", "CrossEntropy", "CustomMetric",
    "EvalMetric", "F1", "TopKAccuracy", "check_label_shapes", "create", "np",
]


def _host(value: Any) -> numpy.ndarray:
    return value.asnumpy() if isinstance(value, NDArray) else numpy.asarray(to_numpy(value))


def _as_list(value: Any) -> list:
    return list(value) if isinstance(value, list | tuple) else [value]


def check_label_shapes(labels: Any, preds: Any, shape: bool = False) -> None:
    """Raise if the number of labels and predictions (or, with ``shape``, their shapes) differ."""
    if shape:
        got_labels, got_preds = tuple(labels.shape), tuple(preds.shape)
        what = "shape"
    else:
        got_labels, got_preds = len(labels), len(preds)
        what = "number"
    if got_labels != got_preds:
        raise ShapeInferenceError(f"metric: {what} of labels {got_labels} does not match {what} "
                                  f"of predictions {got_preds}")


class EvalMetric:
    """Base class: ``update(labels, preds)`` per batch, ``get()`` the ``(name, value)``.

    ``num`` makes a metric with several values, named ``<name>_0``, ``<name>_1``, ...
    """

    def __init__(self, name: str, num: int | None = None):
        self.name = str(name)
        self.num = num
        self.reset()

    def update(self, labels: Sequence[Any], preds: Sequence[Any]) -> None:
        raise NotImplementedError(f"{type(self).__name__} does not implement update()")

    def reset(self) -> None:
        if self.num is None:
            self.num_inst: Any = 0
            self.sum_metric: Any = 0.0
        else:
            self.num_inst = [0] * self.num
            self.sum_metric = [0.0] * self.num

    def get(self) -> tuple[Any, Any]:
        """``(name, sum_metric / num_inst)``, NaN before any update."""
        if self.num is None:
            value = self.sum_metric / self.num_inst if self.num_inst else float("nan")
            return self.name, float(value)
        names = [f"{self.name}_{i}" for i in range(self.num)]
        values = [float(s / n) if n else float("nan")
                  for s, n in zip(self.sum_metric, self.num_inst)]
        return names, values

    def get_name_value(self) -> list[tuple[str, float]]:
        names, values = self.get()
        return list(zip(_as_list(names), _as_list(values)))

    def __str__(self) -> str:
        return f"EvalMetric: {dict(self.get_name_value())}"

    def _pairs(self, labels: Any, preds: Any) -> list[tuple[numpy.ndarray, numpy.ndarray]]:
        labels, preds = _as_list(labels), _as_list(preds)
        check_label_shapes(labels, preds)
        return [(_host(label), _host(pred)) for label, pred in zip(labels, preds)]


class CompositeEvalMetric(EvalMetric):
    """Several metrics updated together; ``get`` returns lists of names and values."""

    def __init__(self, metrics: list[Any] | None = None, name: str = "composite"):
        self.metrics = [create(m) for m in metrics or []]
        super().__init__(name)

    def add(self, metric: Any) -> None:
        self.metrics.append(create(metric))

    def get_metric(self, index: int) -> EvalMetric:
        if not 0 <= index < len(self.metrics):
            raise IndexError(f"metric index {index} is out of range 0 to {len(self.metrics) - 1}")
        return self.metrics[index]

    def update(self, labels: Sequence[Any], preds: Sequence[Any]) -> None:
        for metric in self.metrics:
            metric.update(labels, preds)

    def reset(self) -> None:
        for metric in getattr(self, "metrics", []):
            metric.reset()

    def get(self) -> tuple[list[str], list[float]]:
        names: list[str] = []
        values: list[float] = []
        for metric in self.metrics:
            name, value = metric.get()
            names.extend(_as_list(name))
            values.extend(_as_list(value))
        return names, values


class Accuracy(EvalMetric):
    """Share of samples whose arg-max over ``axis`` equals the integer label."""

    def __init__(self, axis: int = 1, name: str = "accuracy"):
        super().__init__(name)
        self.axis = axis

    def update(self, labels: Sequence[Any], preds: Sequence[Any]) -> None:
        for label, pred in self._pairs(labels, preds):
            if pred.shape != label.shape and pred.ndim > self.axis:
                pred = numpy.argmax(pred, axis=self.axis)
            pred, label = pred.astype("int64").ravel(), label.astype("int64").ravel()
            if pred.size != label.size:
                raise ShapeInferenceError(f"{self.name}: {label.size} labels but {pred.size} "
                                          f"predicted classes (shapes {label.shape}, {pred.shape})")
            self.sum_metric += int((pred == label).sum())
            self.num_inst += pred.size


class TopKAccuracy(EvalMetric):
    """Share of samples whose label is among the ``top_k`` highest scores."""

    def __init__(self, top_k: int = 1, name: str = "top_k_accuracy"):
        if int(top_k) < 1:
            raise ValueError(f"TopKAccuracy: top_k must be at least 1, got {top_k}")
        self.top_k = int(top_k)
        super().__init__(f"{name}_{self.top_k}")

    def update(self, labels: Sequence[Any], preds: Sequence[Any]) -> None:
        for label, pred in self._pairs(labels, preds):
            if pred.ndim > 2:
                raise ShapeInferenceError(f"{self.name}: predictions must be (batch, classes), "
                                          f"got shape {pred.shape}")
            label = label.astype("int64").ravel()
            if pred.shape[0] != label.size:
                raise ShapeInferenceError(f"{self.name}: labels of shape {label.shape} do not "
                                          f"match predictions of shape {pred.shape}")
            if pred.ndim == 1:
                self.sum_metric += int((pred.astype("int64") == label).sum())
            else:
                order = numpy.argsort(pred.astype("float32"), axis=1)
                top = order[:, -min(self.top_k, pred.shape[1]):]
                self.sum_metric += int((top == label[:, None]).any(axis=1).sum())
            self.num_inst += label.size


class F1(EvalMetric):
    """Binary F1 of the arg-max class against labels in {0, 1}, per batch, averaged."""

    def __init__(self, name: str = "f1"):
        super().__init__(name)

    def update(self, labels: Sequence[Any], preds: Sequence[Any]) -> None:
        for label, pred in self._pairs(labels, preds):
            label = label.astype("int64").ravel()
            if pred.ndim != 2 or pred.shape[0] != label.size:
                raise ShapeInferenceError(f"{self.name}: predictions must be (batch, 2) for "
                                          f"labels of shape {label.shape}, got {pred.shape}")
            if len(numpy.unique(label)) > 2:
                raise ValueError(f"{self.name}: F1 supports binary classification only, labels "
                                 f"hold {sorted(numpy.unique(label).tolist())}")
            predicted = numpy.argmax(pred, axis=1)
            tp = float(((predicted == 1) & (label == 1)).sum())
            fp = float(((predicted == 1) & (label == 0)).sum())
            fn = float(((predicted == 0) & (label == 1)).sum())
            precision = tp / (tp + fp) if tp + fp > 0 else 0.0
            recall = tp / (tp + fn) if tp + fn > 0 else 0.0
            both = precision + recall
            self.sum_metric += 2 * precision * recall / both if both > 0 else 0.0
            self.num_inst += 1


class _Regression(EvalMetric):
    """Per-batch mean error averaged over batches; a 1-D label is read as a column."""

    def _error(self, diff: numpy.ndarray) -> float:
        raise NotImplementedError

    def update(self, labels: Sequence[Any], preds: Sequence[Any]) -> None:
        for label, pred in self._pairs(labels, preds):
            if label.ndim == 1:
                label = label.reshape(label.shape[0], 1)
            if pred.ndim == 1:
                pred = pred.reshape(pred.shape[0], 1)
            if label.shape != pred.shape:
                if label.size != pred.size or label.shape[0] != pred.shape[0]:
                    raise ShapeInferenceError(f"{self.name}: labels of shape {label.shape} do "
                                              f"not match predictions of shape {pred.shape}")
                label = label.reshape(pred.shape)
            self.sum_metric += self._error(label.astype("float64") - pred.astype("float64"))
            self.num_inst += 1


class MAE(_Regression):
    """Mean absolute error."""

    def __init__(self, name: str = "mae"):
        super().__init__(name)

    def _error(self, diff: numpy.ndarray) -> float:
        return float(numpy.abs(diff).mean())


class MSE(_Regression):
    """Mean squared error."""

    def __init__(self, name: str = "mse"):
        super().__init__(name)

    def _error(self, diff: numpy.ndarray) -> float:
        return float((diff**2).mean())


class RMSE(_Regression):
    """Root mean squared error (of each batch, then averaged over batches)."""

    def __init__(self, name: str = "rmse"):
        super().__init__(name)

    def _error(self, diff: numpy.ndarray) -> float:
        return float(numpy.sqrt((diff**2).mean()))


class CrossEntropy(EvalMetric):
    """Mean of ``-log(p[label] + eps)`` over samples, for probabilities (batch, classes)."""

    def __init__(self, eps: float = 1e-12, name: str = "cross-entropy"):
        super().__init__(name)
        self.eps = eps

    def update(self, labels: Sequence[Any], preds: Sequence[Any]) -> None:
        for label, pred in self._pairs(labels, preds):
            label = label.ravel()
            if pred.ndim != 2 or pred.shape[0] != label.shape[0]:
                raise ShapeInferenceError(f"{self.name}: predictions must be (batch, classes) "
                                          f"for labels of shape {label.shape}, got {pred.shape}")
            ids = label.astype("int64")
            if ids.size and (ids.min() < 0 or ids.max() >= pred.shape[1]):
                raise ValueError(f"{self.name}: labels must be class ids in [0, {pred.shape[1]}) "
                                 f"for predictions of shape {pred.shape}, got {ids.min()} to "
                                 f"{ids.max()}")
            prob = pred[numpy.arange(label.shape[0]), ids]
            self.sum_metric += float((-numpy.log(prob.astype("float64") + self.eps)).sum())
            self.num_inst += label.shape[0]


class CustomMetric(EvalMetric):
    """A metric from ``feval(label, pred)`` on NumPy arrays, returning a value per batch or
    ``(sum, count)``. A two-column prediction keeps column 1 only (the positive class), as in
    MXNet; a one-column prediction (``LogisticRegressionOutput``) is passed as a vector, and a
    one-column label with it, so ``label == (pred > 0.5)`` compares row by row."""

    def __init__(self, feval: Callable[[Any, Any], Any], name: str | None = None,
                 allow_extra_outputs: bool = False):
        if name is None:
            name = getattr(feval, "__name__", "custom")
            if "<" in name:
                name = f"custom({name})"
        super().__init__(name)
        self._feval = feval
        self._allow_extra_outputs = allow_extra_outputs

    def update(self, labels: Sequence[Any], preds: Sequence[Any]) -> None:
        labels, preds = _as_list(labels), _as_list(preds)
        if not self._allow_extra_outputs:
            check_label_shapes(labels, preds)
        for label, pred in zip(labels, preds):
            label, pred = _host(label), _host(pred)
            if pred.ndim == 2 and pred.shape[1] == 2:
                pred = pred[:, 1]
            elif pred.ndim == 2 and pred.shape[1] == 1:
                pred = pred[:, 0]
                if label.ndim == 2 and label.shape[1] == 1:
                    label = label[:, 0]
            result = self._feval(label, pred)
            if isinstance(result, tuple):
                total, count = result
                self.sum_metric += total
                self.num_inst += count
            else:
                self.sum_metric += result
                self.num_inst += 1


def np(numpy_feval: Callable[[Any, Any], Any], name: str | None = None,
       allow_extra_outputs: bool = False) -> CustomMetric:
    """A ``CustomMetric`` from a NumPy function ``feval(label, pred)``.

    >>> import numpy
    >>> def binary_acc(label, pred):
    ...     return int(label[0]) == int(pred[0] >= 0.5)
    >>> metric = np(binary_acc)
    >>> metric.update([numpy.array([1.0])], [numpy.array([[0.7]])])
    >>> metric.get()
    ('binary_acc', 1.0)
    """
    def feval(label: Any, pred: Any) -> Any:
        return numpy_feval(label, pred)

    feval.__name__ = getattr(numpy_feval, "__name__", "custom")
    return CustomMetric(feval, name, allow_extra_outputs)


_METRICS: dict[str, type[EvalMetric]] = {
    "acc": Accuracy, "accuracy": Accuracy, "ce": CrossEntropy, "cross-entropy": CrossEntropy,
    "f1": F1, "mae": MAE, "mse": MSE, "rmse": RMSE, "top_k_accuracy": TopKAccuracy,
}


def create(metric: Any, **kwargs: Any) -> EvalMetric:
    """A metric from a name (``'acc'``, ``'rmse'``, ``'top_k_accuracy'`` with ``top_k=5``...),
    a function ``feval(label, pred)``, a list (a composite) or a metric itself.

    >>> create('acc').name, create('top_k_accuracy', top_k=5).name
    ('accuracy', 'top_k_accuracy_5')
    """
    if isinstance(metric, EvalMetric):
        return metric
    if isinstance(metric, list | tuple):
        return CompositeEvalMetric([create(m, **kwargs) for m in metric])
    if callable(metric):
        return CustomMetric(metric)
    if isinstance(metric, str) and metric.lower() in _METRICS:
        return _METRICS[metric.lower()](**kwargs)
    raise ValueError(f"metric must be an EvalMetric, a function feval(label, pred), a list, or "
                     f"one of {', '.join(sorted(_METRICS))}; got {metric!r}")
