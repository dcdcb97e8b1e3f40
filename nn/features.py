"""Features from a trained model and fine-tuning to a new head (GraphLab's additions to mx.model)."""

from __future__ import annotations

from typing import Any

import numpy as np

from framestream.errors import LayerNotFoundError
from framestream.nn import initializer as init


def _candidates(symbol: Any) -> list[str]:
    """Layer outputs from the top down, as GraphLab listed them."""
    return [n for n in reversed(symbol.get_internals().list_outputs()) if n.endswith("output")]


def get_feature_symbol(model: Any, top_layer: str | None = None) -> Any:
    """The network up to ``top_layer`` (default: the input of the last classifier layer)."""
    outputs = _candidates(model.symbol)
    if top_layer is None:
        if len(outputs) < 3:
            raise LayerNotFoundError(f"the network has too few layers ({', '.join(outputs)}) to pick the "
                                     "one before the classifier; give top_layer")
        top_layer = outputs[2]
    if top_layer not in outputs:
        raise LayerNotFoundError(f"top_layer {top_layer!r} is not a layer of this network; candidates: "
                                 f"{', '.join(outputs)}")
    return model.symbol.get_internals()[top_layer]


def extract_features(model: Any, data: Any, top_layer: str | None = None, **kwargs: Any) -> np.ndarray:
    """The outputs of ``top_layer`` for every row of ``data`` (padding trimmed)."""
    from framestream.nn.model import FeedForward

    symbol = get_feature_symbol(model, top_layer)
    features = FeedForward(symbol, ctx=model.ctx, arg_params=model.arg_params, aux_params=model.aux_params,
                           allow_extra_params=True, numpy_batch_size=model.numpy_batch_size)
    return features.predict(data, **kwargs)


extract_feature = extract_features  # the name in GraphLab's code; the guide says extract_features


def finetune(symbol: Any, model: Any, **kwargs: Any) -> Any:
    """Train ``symbol`` starting from ``model``'s weights wherever the names match.

    New layers start from ``Uniform(0.001)``; BatchNorm statistics are carried over too.
    The keyword arguments are those of ``FeedForward.create``.
    """
    from framestream.nn.model import FeedForward

    kwargs.setdefault("ctx", model.ctx)
    initializer = init.Load({k: v for k, v in (model.arg_params or {}).items()},
                            default_init=init.Uniform(0.001))
    wanted = set(symbol.list_auxiliary_states())
    aux = {k: v for k, v in (model.aux_params or {}).items() if k in wanted}
    create_args = {k: kwargs.pop(k) for k in list(kwargs) if k in _CREATE_ONLY}
    fresh = FeedForward(symbol, initializer=initializer, aux_params=aux or None, allow_extra_params=True,
                        ctx=kwargs.pop("ctx"), num_epoch=kwargs.pop("num_epoch", None),
                        epoch_size=kwargs.pop("epoch_size", None), optimizer=kwargs.pop("optimizer", "sgd"),
                        **kwargs)
    return fresh.fit(**create_args)


_CREATE_ONLY = {"X", "y", "eval_data", "eval_metric", "epoch_end_callback", "batch_end_callback", "kvstore",
                "logger", "work_load_list", "monitor", "eval_batch_end_callback", "data_field"}
