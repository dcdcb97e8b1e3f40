"""Turn what users pass as training or prediction data into a DataIter.

``X`` may be a DataIter, numpy arrays (or NDArrays) with ``y``, or an SFrame whose label
column ``y`` names (the other columns, or ``data_field``, are the data). The data and
label names come from the symbol, so a LinearRegressionOutput named 'lr' gets 'lr_label'.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from framestream.errors import NNError
from framestream.nn.ndarray import NDArray


def input_names(symbol: Any) -> tuple[str, str | None]:
    """(data name, label name) for a symbol: 'data' and its one ``*_label`` argument."""
    arguments = symbol.list_arguments()
    data_name = "data" if "data" in arguments else arguments[0]
    labels = [a for a in arguments if a.endswith("_label")]
    return data_name, (labels[0] if len(labels) == 1 else None)


def as_data_iter(X: Any, y: Any, symbol: Any, batch_size: int, is_train: bool, data_field: Any = None) -> Any:
    from framestream.frames import SFrame
    from framestream.nn import io

    if hasattr(X, "provide_data"):
        if y is not None:
            raise NNError("y must be None when X is a DataIter (the iterator carries the labels)")
        return X
    data_name, label_name = input_names(symbol)
    if isinstance(X, SFrame):
        return _sframe_iter(X, y, data_field, data_name, label_name, batch_size, is_train, io)
    if isinstance(X, NDArray):
        X = X.asnumpy()
    X = np.asarray(X)
    if X.ndim == 0 or len(X) == 0:
        raise NNError(f"X must be a non-empty array of samples, got shape {X.shape}")
    if y is not None:
        y = y.asnumpy() if isinstance(y, NDArray) else np.asarray(y)
        if y.ndim == 2 and y.shape[1] == 1:
            y = y.reshape(-1)
        if len(y) != len(X):
            raise NNError(f"X has {len(X)} rows but y has {len(y)}")
    elif is_train:
        raise NNError("training on a numpy array needs y (the labels)")
    labels = {label_name or "softmax_label": y} if y is not None else None
    return io.NDArrayIter({data_name: X}, labels, batch_size=min(len(X), batch_size), shuffle=is_train,
                          last_batch_handle="roll_over" if is_train else "pad")


def _sframe_iter(sf: Any, y: Any, data_field: Any, data_name: str, label_name: str | None,
                 batch_size: int, is_train: bool, io: Any) -> Any:
    if y is not None and not isinstance(y, str):
        raise NNError("with an SFrame, y names the label column (a string)")
    fields = data_field or [c for c in sf.column_names() if c != y]
    fields = [fields] if isinstance(fields, str) else list(fields)
    from framestream.frames import Image

    is_image = len(fields) == 1 and fields[0] in sf.column_names() and sf[fields[0]].dtype is Image
    cls = io.SFrameImageIter if is_image else io.SFrameIter
    return cls(sf, data_field=fields, label_field=y, batch_size=min(len(sf), batch_size),
               data_name=data_name, label_name=label_name or "softmax_label")
