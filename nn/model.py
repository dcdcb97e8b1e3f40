"""``mx.model``: ``FeedForward`` (create, fit, predict, score, save, load), checkpoints, features.

``FeedForward`` holds a symbol, its parameters and the training settings; the per-batch
work lives in ``_training`` and the devices in ``_executor_group``.

>>> from framestream import mx
>>> import numpy as np
>>> net = mx.sym.LinearRegressionOutput(mx.sym.FullyConnected(mx.sym.Variable('data'),
...                                     num_hidden=1, name='fc'), name='lr')
>>> X = np.random.default_rng(0).normal(size=(100, 3)).astype('float32')
>>> model = mx.model.FeedForward.create(net, X=X, y=X @ [1.0, 2.0, 3.0], num_epoch=5,
...                                     learning_rate=0.1)
>>> model.predict(X[:2]).shape
(2, 1)
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from framestream.errors import NNError
from framestream.nn import initializer as init
from framestream.nn import metric as metric_module
from framestream.nn import optimizer as opt
from framestream.nn._executor_group import ExecutorGroup
from framestream.nn._inputs import as_data_iter
from framestream.nn._training import Callbacks, TrainingState, evaluate, load_state, run_epochs
from framestream.nn.checkpoint import load_checkpoint, load_params, save_checkpoint
from framestream.nn.context import Context, cpu
from framestream.nn.ndarray import NDArray, zeros


class FeedForward:
    """A feed-forward network and its parameters, trained with ``fit`` (MXNet's model API)."""

    def __init__(self, symbol: Any, ctx: Context | list[Context] | None = None, num_epoch: int | None = None,
                 epoch_size: int | None = None, optimizer: Any = "sgd",
                 initializer: Any = None, numpy_batch_size: int = 128,
                 arg_params: dict[str, Any] | None = None, aux_params: dict[str, Any] | None = None,
                 allow_extra_params: bool = False, begin_epoch: int = 0, **kwargs: Any):
        self.symbol = symbol
        self.ctx = [cpu()] if ctx is None else (list(ctx) if isinstance(ctx, list | tuple) else [ctx])
        self.num_epoch, self.epoch_size = num_epoch, epoch_size
        self.optimizer = optimizer
        self.initializer = initializer if initializer is not None else init.Uniform(0.01)
        self.numpy_batch_size = numpy_batch_size
        self.arg_params = dict(arg_params) if arg_params else None
        self.aux_params = dict(aux_params) if aux_params else None
        self.allow_extra_params = allow_extra_params
        self.begin_epoch = begin_epoch
        self.kwargs = dict(kwargs)
        self._resume: TrainingState | None = None
        self._data_field: list[str] | None = None  # an SFrame's data columns, remembered by fit
        self._predictor: tuple[tuple, ExecutorGroup] | None = None
        names = symbol.list_arguments()
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise NNError(f"the symbol has duplicate argument names: {', '.join(duplicates)}")

    # -- parameters ---------------------------------------------------------------------------
    def _init_params(self, input_shapes: dict[str, tuple], overwrite: bool = False) -> tuple[list, list]:
        """Infer parameter shapes from the input shapes; initialise those not given."""
        arg_shapes, _, aux_shapes = self.symbol.infer_shape(**input_shapes)
        if arg_shapes is None:
            partial = self.symbol.infer_shape_partial(**input_shapes)[0]
            missing = [n for n, s in zip(self.symbol.list_arguments(), partial) if s == ()]
            raise NNError(f"cannot infer the shapes of {', '.join(missing)} from the inputs "
                          f"{input_shapes}; check that data_name/label_name match the symbol")
        arg_names, aux_names = self.symbol.list_arguments(), self.symbol.list_auxiliary_states()
        param_names = [n for n in arg_names if n not in input_shapes]
        shapes = dict(zip(arg_names, arg_shapes))
        attrs = self.symbol.attr_dict()
        given_args, given_aux = self.arg_params or {}, self.aux_params or {}
        self._check_extra(given_args, param_names, "arg_params")
        self._check_extra(given_aux, aux_names, "aux_params")
        arg_params, aux_params = {}, {}
        for names, given, out, all_shapes in ((param_names, given_args, arg_params, shapes),
                                              (aux_names, given_aux, aux_params, dict(zip(aux_names, aux_shapes)))):
            for name in names:
                arr = zeros(all_shapes[name])
                if name in given and not overwrite:
                    value = given[name]
                    value = value.asnumpy() if isinstance(value, NDArray) else np.asarray(value)
                    if value.shape != arr.shape:
                        raise NNError(f"parameter {name} has shape {value.shape}; the symbol needs {arr.shape}")
                    arr[:] = value
                else:
                    self.initializer(init.InitDesc(name, attrs.get(name, {})), arr)
                out[name] = arr
        self.arg_params, self.aux_params = arg_params, aux_params
        return param_names, aux_names

    def _check_extra(self, given: dict, names: list[str], what: str) -> None:
        extra = sorted(set(given) - set(names))
        if extra and not self.allow_extra_params:
            raise NNError(f"{what} has {', '.join(extra)}, which the symbol does not use "
                          "(pass allow_extra_params=True to drop them)")

    # -- training ------------------------------------------------------------------------------
    def fit(self, X: Any, y: Any = None, eval_data: Any = None, eval_metric: Any = "acc",
            epoch_end_callback: Any = None, batch_end_callback: Any = None, kvstore: Any = "local",
            logger: logging.Logger | None = None, work_load_list: list[float] | None = None,
            monitor: Any = None, eval_batch_end_callback: Any = None, data_field: Any = None,
            cluster: Any = None, num_workers: int | None = None) -> FeedForward:
        """Train on ``X`` (a DataIter, numpy arrays with ``y``, or an SFrame) for ``num_epoch`` epochs.

        ``cluster`` (a ``distributed.Client``, a scheduler address or a Dask cluster object):
        train synchronously data-parallel on its workers (``num_workers`` of them; default
        all), one replica per worker; ``X`` must then read a saved SFrame and its batch size
        is each worker's. See ``framestream.nn.distributed``.
        """
        if self.num_epoch is None:
            raise NNError("fit needs num_epoch (give it to FeedForward or create)")
        _check_kvstore(kvstore, cluster)
        if data_field is None and isinstance(y, str):
            data_field = [c for c in X.column_names() if c != y]
        self._data_field = data_field or self._data_field
        train = as_data_iter(X, y, self.symbol, self.numpy_batch_size, is_train=True, data_field=data_field)
        evals = None
        if eval_data is not None:
            if isinstance(eval_data, tuple | list) and len(eval_data) == 2:
                eval_data = as_data_iter(eval_data[0], eval_data[1], self.symbol, self.numpy_batch_size,
                                         is_train=False, data_field=data_field)
            evals = as_data_iter(eval_data, None, self.symbol, self.numpy_batch_size, is_train=False,
                                 data_field=data_field)
        input_shapes = dict(train.provide_data + train.provide_label)
        param_names, _ = self._init_params(input_shapes)
        metric = metric_module.create(eval_metric)
        callbacks = Callbacks(epoch_end_callback, batch_end_callback, eval_batch_end_callback, monitor)
        if cluster is not None:
            from framestream.nn.distributed import fit_on_cluster

            fit_on_cluster(self, train, evals, metric, param_names, callbacks, cluster=cluster,
                           num_workers=num_workers, logger=logger, work_load_list=work_load_list)
        else:
            group = ExecutorGroup(self.symbol, self.ctx, train.provide_data, train.provide_label,
                                  param_names, for_training=True, work_load_list=work_load_list)
            optimizer = self._make_optimizer(train.batch_size, param_names)
            self._train(group, optimizer, train, evals, metric, callbacks, logger)
        self._resume = None
        self._predictor = None
        return self

    def _train(self, group: ExecutorGroup, optimizer: Any, train: Any, evals: Any, metric: Any,
               callbacks: Callbacks, logger: logging.Logger | None) -> None:
        """Load the parameters (and a resumed run's optimizer and random state) into ``group``
        and run the epochs: the part of ``fit`` that every data-parallel worker runs too."""
        updater = opt.get_updater(optimizer)
        group.set_params(self.arg_params, self.aux_params)
        if self._resume is not None and self._resume.epoch == self.begin_epoch:
            updater.set_states(self._resume.updater)
            group.set_random_states(self._resume.random)
        run_epochs(self, group, updater, train, evals, metric, callbacks.epoch_end,
                   callbacks.batch_end, callbacks.eval_batch_end, callbacks.monitor, logger)

    def _make_optimizer(self, batch_size: int, param_names: list[str]) -> Any:
        if not isinstance(self.optimizer, str):
            return self.optimizer
        kwargs = dict(self.kwargs)
        kwargs.setdefault("rescale_grad", 1.0 / batch_size)
        idx2name = dict(enumerate(param_names))
        return opt.create(self.optimizer, sym=self.symbol, param_idx2name=idx2name, **kwargs)

    # -- inference ------------------------------------------------------------------------------
    def _predictor_for(self, data: Any) -> ExecutorGroup:
        shapes = tuple(data.provide_data)
        if self._predictor is None or self._predictor[0] != shapes:
            if self.arg_params is None:
                self._init_params(dict(data.provide_data))
            group = ExecutorGroup(self.symbol, self.ctx[:1], list(data.provide_data), [], [],
                                  for_training=False)
            group.set_params(self.arg_params, self.aux_params)
            self._predictor = (shapes, group)
        return self._predictor[1]

    def predict(self, X: Any, num_batch: int | None = None, return_data: bool = False, reset: bool = True,
                data_field: Any = None) -> Any:
        """Outputs for every row of ``X`` (padding trimmed): one array, or a list for several outputs."""
        data = as_data_iter(X, None, self.symbol, self.numpy_batch_size, is_train=False,
                            data_field=data_field or self._data_field)
        if reset:
            data.reset()
        group = self._predictor_for(data)
        outputs: list[list[np.ndarray]] = []
        inputs: list[np.ndarray] = []
        labels: list[np.ndarray] = []
        for nbatch, batch in enumerate(data, start=1):
            group.load_batch(batch)
            group.forward(is_train=False)
            keep = data.batch_size - (batch.pad or 0)
            outputs.append([o[:keep] for o in group.outputs()])
            if return_data:
                inputs.append(_numpy(batch.data[0])[:keep])
                if batch.label:
                    labels.append(_numpy(batch.label[0])[:keep])
            if num_batch is not None and nbatch >= num_batch:
                break
        if not outputs:
            raise NNError("predict: the data yielded no batch")
        merged = [np.concatenate(parts) for parts in zip(*outputs)]
        result = merged[0] if len(merged) == 1 else merged
        if return_data:
            return result, np.concatenate(inputs), (np.concatenate(labels) if labels else None)
        return result

    def score(self, X: Any, eval_metric: Any = "acc", num_batch: int | None = None,
              batch_end_callback: Any = None, reset: bool = True, data_field: Any = None) -> float:
        """The metric over ``X`` (padding rows count, as in MXNet)."""
        data = as_data_iter(X, None, self.symbol, self.numpy_batch_size, is_train=False,
                            data_field=data_field or self._data_field)
        metric = metric_module.create(eval_metric)
        group = self._predictor_for(data)
        if not reset:
            raise NNError("score(reset=False) is not supported: the data is always scored from the start")
        values = evaluate(group, data, metric, 0, batch_end_callback, num_batch)
        return values[0][1]

    # -- files ----------------------------------------------------------------------------------------
    def save(self, prefix: str, epoch: int | None = None) -> None:
        """MXNet checkpoint files ``prefix-symbol.json`` and ``prefix-%04d.params``."""
        epoch = self.num_epoch if epoch is None else epoch
        if self.arg_params is None:
            raise NNError("save: the model has no parameters yet; fit it or give arg_params")
        save_checkpoint(prefix, epoch, self.symbol, self.arg_params, self.aux_params or {})

    @staticmethod
    def load(prefix: str, epoch: int, ctx: Any = None, **kwargs: Any) -> FeedForward:
        """A model from MXNet checkpoint files; ``fit`` continues at ``epoch`` (exactly, if a
        training state was saved beside the files)."""
        symbol, arg_params, aux_params = load_checkpoint(prefix, epoch)
        model = FeedForward(symbol, ctx=ctx, arg_params=arg_params, aux_params=aux_params,
                            begin_epoch=epoch, **kwargs)
        model._resume = load_state(prefix, epoch)
        return model

    @staticmethod
    def create(symbol: Any, X: Any, y: Any = None, ctx: Any = None, num_epoch: int | None = None,
               epoch_size: int | None = None, optimizer: Any = "sgd", initializer: Any = None,
               eval_data: Any = None, eval_metric: Any = "acc", epoch_end_callback: Any = None,
               batch_end_callback: Any = None, kvstore: Any = "local", logger: logging.Logger | None = None,
               work_load_list: list[float] | None = None, eval_batch_end_callback: Any = None,
               monitor: Any = None, data_field: Any = None, **kwargs: Any) -> FeedForward:
        """Build a model and ``fit`` it; ``kwargs`` (learning_rate, momentum, wd, ...) go to the optimizer."""
        model = FeedForward(symbol, ctx=ctx, num_epoch=num_epoch, epoch_size=epoch_size,
                            optimizer=optimizer, initializer=initializer, **kwargs)
        return model.fit(X, y, eval_data=eval_data, eval_metric=eval_metric,
                         epoch_end_callback=epoch_end_callback, batch_end_callback=batch_end_callback,
                         kvstore=kvstore, logger=logger, work_load_list=work_load_list, monitor=monitor,
                         eval_batch_end_callback=eval_batch_end_callback, data_field=data_field)

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_predictor"] = None
        return state


def _check_kvstore(kvstore: Any, cluster: Any) -> None:
    if kvstore in ("local", "device", None) or hasattr(kvstore, "push"):
        return
    if kvstore in ("dist_sync", "dist_device_sync") and cluster is not None:
        return
    raise NNError(f"kvstore={kvstore!r} is not supported here; 'local' (the default) sums gradients "
                  "over the contexts of this process, and fit(cluster=...) trains synchronously "
                  "over the workers of a Dask cluster (MXNet's 'dist_sync')")


def _numpy(value: Any) -> np.ndarray:
    return value.asnumpy() if isinstance(value, NDArray) else np.asarray(value)


from framestream.nn.features import extract_feature, extract_features, finetune, get_feature_symbol  # noqa: E402

__all__ = ["FeedForward", "extract_feature", "extract_features", "finetune", "get_feature_symbol",
           "load_checkpoint", "load_params", "save_checkpoint"]
