"""``mx.optimizer``: weight updates, with MXNet's learning-rate and weight-decay rules.

Every update is written once against the weight's array module (NumPy or CuPy) and
changes ``weight.data`` in place; optimizer states live on the weight's device. The
``Updater`` is what the training loop calls per parameter; its ``get_states`` /
``set_states`` carry the states (and, on request, the optimizer with its update counts and
scheduler) as NumPy copies, so a run saved on a GPU resumes on a CPU and resuming gives
the same bits as never having stopped.

Formulas follow MXNet (``g`` is ``clip(rescale_grad * grad, clip_gradient)``): SGD, NAG,
AdaGrad and AdaDelta as in the dato-era/1.x Python code, Adam as in the pre-``adam_update``
Python code (decoupled weight decay after the step), RMSProp as 1.x's
``rmsprop_update`` / ``rmspropalex_update`` kernels (weight decay inside the clipped gradient).
"""

from __future__ import annotations

import io
import math
import pickle
import sys
import warnings
from typing import Any

import numpy as np

from framestream.nn.context import Context, array_module, context_of, to_device
from framestream.nn.lr_scheduler import LRScheduler
from framestream.nn.ndarray import NDArray, zeros

__all__ = [
    "NAG", "SGD", "AdaDelta", "AdaGrad", "Adam", "Optimizer", "RMSProp", "Test", "Updater",
    "ccSGD", "create", "get_updater", "register",
]


class Optimizer:
    """Base class: learning rate, weight decay, gradient rescaling and clipping, a registry.

    ``sym`` supplies per-parameter ``lr_mult`` / ``wd_mult`` attributes; ``param_idx2name``
    maps update indexes to parameter names, and when given, every parameter whose name does
    not end in ``_weight`` or ``_gamma`` gets no weight decay (biases, BN betas).

    >>> opt = create('sgd', learning_rate=0.1, param_idx2name={0: 'fc_weight', 1: 'fc_bias'}, wd=0.1)
    >>> opt._get_wd(0), opt._get_wd(1)
    (0.1, 0.0)
    """

    opt_registry: dict[str, type[Optimizer]] = {}

    def __init__(self, rescale_grad: float = 1.0, param_idx2name: dict[int, str] | None = None,
                 wd: float = 0.0, clip_gradient: float | None = None, learning_rate: float = 0.01,
                 lr_scheduler: LRScheduler | None = None, sym: Any = None,
                 begin_num_update: int = 0):
        if clip_gradient is not None and clip_gradient <= 0:
            raise ValueError(f"{type(self).__name__}: clip_gradient must be positive or None, "
                             f"got {clip_gradient}")
        if param_idx2name is not None and not isinstance(param_idx2name, dict):
            raise TypeError(f"{type(self).__name__}: param_idx2name must be a dict of update "
                            f"index to parameter name, got {type(param_idx2name).__name__}")
        self.rescale_grad = rescale_grad
        self.lr = learning_rate
        self.lr_scheduler = lr_scheduler
        if lr_scheduler is not None:
            lr_scheduler.base_lr = learning_rate
        self.wd = wd
        self.clip_gradient = clip_gradient
        self.begin_num_update = begin_num_update
        self.num_update = begin_num_update
        self._index_update_count: dict[Any, int] = {}
        self.idx2name = dict(param_idx2name or {})
        # Only plain data is kept from the symbol, so the optimizer pickles with the states.
        self.sym_info = (sym.attr_dict(), sym.list_arguments()) if sym is not None else ()
        self.lr_mult: dict[Any, float] = {}
        self.wd_mult: dict[Any, float] = {}
        self.set_lr_mult({})
        self.set_wd_mult({})

    # -- registry ----------------------------------------------------------------------------
    @staticmethod
    def register(klass: type[Optimizer]) -> type[Optimizer]:
        """Class decorator: make ``klass`` available to ``create`` under its lower-cased name."""
        if not (isinstance(klass, type) and issubclass(klass, Optimizer)):
            raise TypeError(f"Optimizer.register needs an Optimizer subclass, got {klass!r}")
        name = klass.__name__.lower()
        old = Optimizer.opt_registry.get(name)
        if old is not None and old is not klass:
            warnings.warn(f"optimizer {klass.__module__}.{klass.__name__} overrides "
                          f"{old.__module__}.{old.__name__}", stacklevel=2)
        Optimizer.opt_registry[name] = klass
        return klass

    @staticmethod
    def create_optimizer(name: str, **kwargs: Any) -> Optimizer:
        """An optimizer by registered name, case-insensitive: ``create('Adam', learning_rate=.1)``."""
        klass = Optimizer.opt_registry.get(str(name).lower())
        if klass is None:
            raise ValueError(f"Cannot find optimizer {name!r}; registered optimizers are "
                             f"{', '.join(sorted(Optimizer.opt_registry))}")
        return klass(**kwargs)

    # -- per-parameter rates -----------------------------------------------------------------
    @property
    def learning_rate(self) -> float:
        if self.lr_scheduler is not None:
            return self.lr_scheduler(self.num_update)
        return self.lr

    def set_learning_rate(self, lr: float) -> None:
        if self.lr_scheduler is not None:
            raise UserWarning("set_learning_rate: this optimizer has an lr_scheduler, which "
                              "owns the learning rate")
        self.lr = lr

    def set_lr_mult(self, args_lr_mult: dict[Any, float]) -> None:
        """Learning-rate multipliers by name or index, over the symbol's ``lr_mult`` attributes."""
        self.lr_mult = self._symbol_mults("__lr_mult__")
        self.lr_mult.update(args_lr_mult)

    def set_wd_mult(self, args_wd_mult: dict[Any, float]) -> None:
        """Weight-decay multipliers: 0 for non-weights (when names are known), then the
        symbol's ``wd_mult`` attributes, then ``args_wd_mult``."""
        self.wd_mult = {n: 0.0 for n in self.idx2name.values()
                        if not (n.endswith("_weight") or n.endswith("_gamma"))}
        self.wd_mult.update(self._symbol_mults("__wd_mult__"))
        self.wd_mult.update(args_wd_mult)

    def _symbol_mults(self, key: str) -> dict[Any, float]:
        if not self.sym_info:
            return {}
        attrs, arg_names = self.sym_info
        return {n: float(attrs[n][key]) for n in arg_names if key in attrs.get(n, {})}

    def _update_count(self, index: Any) -> None:
        count = self._index_update_count.get(index, self.begin_num_update) + 1
        self._index_update_count[index] = count
        self.num_update = max(count, self.num_update)

    def _get_lr(self, index: Any) -> float:
        lr = self.lr_scheduler(self.num_update) if self.lr_scheduler is not None else self.lr
        if index in self.lr_mult:
            return lr * self.lr_mult[index]
        if index in self.idx2name:
            return lr * self.lr_mult.get(self.idx2name[index], 1.0)
        return lr

    def _get_wd(self, index: Any) -> float:
        if index in self.wd_mult:
            return self.wd * self.wd_mult[index]
        if index in self.idx2name:
            return self.wd * self.wd_mult.get(self.idx2name[index], 1.0)
        return self.wd

    # -- updates -----------------------------------------------------------------------------
    def create_state(self, index: Any, weight: NDArray) -> Any:
        """Extra per-weight state (momentum, moments); None when the optimizer needs none."""
        return None

    def update(self, index: Any, weight: NDArray, grad: NDArray, state: Any) -> None:
        """Change ``weight`` in place from ``grad`` and ``state``."""
        raise NotImplementedError(f"{type(self).__name__} does not implement update()")

    def _begin(self, index: Any, weight: Any, grad: Any,
               decay_in_grad: bool = False) -> tuple[Any, Any, Any, float, float]:
        """Count the update, then ``(xp, w, g, lr, wd)`` with ``g = clip(rescale_grad*grad)``.

        ``decay_in_grad`` adds ``wd*w`` before clipping, as 1.x's RMSProp kernels do.
        """
        self._update_count(index)
        lr, wd = self._get_lr(index), self._get_wd(index)
        w = _raw(weight)
        xp = array_module(w)
        g = _raw(grad)
        if array_module(g) is not xp:
            g = to_device(g, _context(weight))
        g = g * self.rescale_grad
        if decay_in_grad:
            g = g + wd * w
        if self.clip_gradient is not None:
            g = xp.clip(g, -self.clip_gradient, self.clip_gradient)
        return xp, w, g, lr, wd


register = Optimizer.register
create = Optimizer.create_optimizer


def _raw(value: Any) -> Any:
    return value.data if isinstance(value, NDArray) else value


def _context(weight: Any) -> Context:
    return weight.context if isinstance(weight, NDArray) else context_of(weight)


def _zeros_like(weight: Any) -> NDArray:
    return zeros(weight.shape, _context(weight), dtype=_raw(weight).dtype)


@register
class SGD(Optimizer):
    """SGD with momentum: ``mom = momentum*mom - lr*(g + wd*w); w += mom``.

    Without momentum (no state): ``w -= lr*(g + wd*w)``.
    """

    def __init__(self, momentum: float = 0.0, **kwargs: Any):
        super().__init__(**kwargs)
        self.momentum = momentum

    def create_state(self, index: Any, weight: NDArray) -> NDArray | None:
        return None if self.momentum == 0.0 else _zeros_like(weight)

    def update(self, index: Any, weight: NDArray, grad: NDArray, state: Any) -> None:
        with _context(weight).device():
            _, w, g, lr, wd = self._begin(index, weight, grad)
            if state is None:
                w -= lr * (g + wd * w)
                return
            mom = _raw(state)
            mom *= self.momentum
            mom -= lr * (g + wd * w)
            w += mom


@register
class ccSGD(SGD):  # noqa: N801  (MXNet's name)
    """MXNet's C++ SGD, kept so ``optimizer='ccsgd'`` works: the same update as ``SGD``."""


@register
class NAG(SGD):
    """Nesterov momentum: ``mom = momentum*mom + (g + wd*w); w -= lr*((g + wd*w) + momentum*mom)``."""

    def update(self, index: Any, weight: NDArray, grad: NDArray, state: Any) -> None:
        with _context(weight).device():
            _, w, g, lr, wd = self._begin(index, weight, grad)
            g = g + wd * w
            if state is None:
                w -= lr * g
                return
            mom = _raw(state)
            mom *= self.momentum
            mom += g
            w -= lr * (g + self.momentum * mom)


@register
class Adam(Optimizer):
    """Adam with bias correction: ``lr_t = lr*sqrt(1-beta2^t)/(1-beta1^t)`` for the weight's
    ``t``-th update; ``w -= lr_t*m/(sqrt(v)+epsilon)``, then ``w -= lr_t*wd*w``."""

    def __init__(self, learning_rate: float = 0.001, beta1: float = 0.9, beta2: float = 0.999,
                 epsilon: float = 1e-8, **kwargs: Any):
        super().__init__(learning_rate=learning_rate, **kwargs)
        self.beta1, self.beta2, self.epsilon = beta1, beta2, epsilon

    def create_state(self, index: Any, weight: NDArray) -> tuple[NDArray, NDArray]:
        return _zeros_like(weight), _zeros_like(weight)  # mean, variance

    def update(self, index: Any, weight: NDArray, grad: NDArray, state: Any) -> None:
        with _context(weight).device():
            xp, w, g, lr, wd = self._begin(index, weight, grad)
            mean, var = _raw(state[0]), _raw(state[1])
            t = self._index_update_count[index]
            lr *= math.sqrt(1.0 - self.beta2**t) / (1.0 - self.beta1**t)
            mean *= self.beta1
            mean += (1.0 - self.beta1) * g
            var *= self.beta2
            var += (1.0 - self.beta2) * g * g
            w -= lr * mean / (xp.sqrt(var) + self.epsilon)
            if wd > 0.0:
                w -= (lr * wd) * w


@register
class AdaGrad(Optimizer):
    """AdaGrad: ``history += g^2; w -= lr*(g/sqrt(history + eps) + wd*w)``."""

    def __init__(self, eps: float = 1e-7, **kwargs: Any):
        super().__init__(**kwargs)
        self.float_stable_eps = eps

    def create_state(self, index: Any, weight: NDArray) -> NDArray:
        return _zeros_like(weight)  # history

    def update(self, index: Any, weight: NDArray, grad: NDArray, state: Any) -> None:
        with _context(weight).device():
            xp, w, g, lr, wd = self._begin(index, weight, grad)
            history = _raw(state)
            history += g * g
            w -= lr * (g / xp.sqrt(history + self.float_stable_eps) + wd * w)


@register
class RMSProp(Optimizer):
    """RMSProp as MXNet 1.x: Tieleman & Hinton, or Graves's centered form when ``centered``.

    With ``G = clip(rescale_grad*grad + wd*w, clip_gradient)`` and ``n = (1-gamma1)*G^2 +
    gamma1*n``: plain ``w -= lr*G/sqrt(n + epsilon)``; centered also keeps ``gbar =
    (1-gamma1)*G + gamma1*gbar`` and ``delta = gamma2*delta - lr*G/sqrt(n - gbar^2 + epsilon)``,
    ``w += delta``. ``clip_weights`` bounds the weights afterwards.
    """

    def __init__(self, learning_rate: float = 0.001, gamma1: float = 0.9, gamma2: float = 0.9,
                 epsilon: float = 1e-8, centered: bool = False, clip_weights: float | None = None,
                 **kwargs: Any):
        super().__init__(learning_rate=learning_rate, **kwargs)
        self.gamma1, self.gamma2, self.epsilon = gamma1, gamma2, epsilon
        self.centered, self.clip_weights = centered, clip_weights

    def create_state(self, index: Any, weight: NDArray) -> tuple[NDArray, ...]:
        if self.centered:
            return _zeros_like(weight), _zeros_like(weight), _zeros_like(weight)  # n, gbar, delta
        return (_zeros_like(weight),)  # n

    def update(self, index: Any, weight: NDArray, grad: NDArray, state: Any) -> None:
        with _context(weight).device():
            xp, w, g, lr, _ = self._begin(index, weight, grad, decay_in_grad=True)
            n = _raw(state[0])
            n *= self.gamma1
            n += (1.0 - self.gamma1) * g * g
            if not self.centered:
                w -= lr * (g / xp.sqrt(n + self.epsilon))
            else:
                gbar, delta = _raw(state[1]), _raw(state[2])
                gbar *= self.gamma1
                gbar += (1.0 - self.gamma1) * g
                delta *= self.gamma2
                delta -= lr * (g / xp.sqrt(n - gbar * gbar + self.epsilon))
                w += delta
            if self.clip_weights is not None:
                xp.clip(w, -self.clip_weights, self.clip_weights, out=w)


@register
class AdaDelta(Optimizer):
    """AdaDelta (the learning rate is unused): ``acc_g = rho*acc_g + (1-rho)*g^2``;
    ``delta = sqrt(acc_delta + eps)/sqrt(acc_g + eps)*g``; ``acc_delta = rho*acc_delta +
    (1-rho)*delta^2``; ``w -= delta + wd*w``."""

    def __init__(self, rho: float = 0.90, epsilon: float = 1e-5, **kwargs: Any):
        super().__init__(**kwargs)
        self.rho, self.epsilon = rho, epsilon

    def create_state(self, index: Any, weight: NDArray) -> tuple[NDArray, NDArray]:
        return _zeros_like(weight), _zeros_like(weight)  # accumulated g, accumulated delta

    def update(self, index: Any, weight: NDArray, grad: NDArray, state: Any) -> None:
        with _context(weight).device():
            xp, w, g, _, wd = self._begin(index, weight, grad)
            acc_g, acc_delta = _raw(state[0]), _raw(state[1])
            acc_g *= self.rho
            acc_g += (1.0 - self.rho) * g * g
            delta = xp.sqrt(acc_delta + self.epsilon) / xp.sqrt(acc_g + self.epsilon) * g
            acc_delta *= self.rho
            acc_delta += (1.0 - self.rho) * delta * delta
            w -= delta + wd * w


@register
class Test(Optimizer):
    """For tests, as MXNet's: ``w += rescale_grad*grad`` and the state mirrors the weight."""

    def create_state(self, index: Any, weight: NDArray) -> NDArray:
        return _zeros_like(weight)

    def update(self, index: Any, weight: NDArray, grad: NDArray, state: Any) -> None:
        w = _raw(weight)
        w += _raw(grad) * self.rescale_grad
        _raw(state)[...] = w


# -- the updater ---------------------------------------------------------------------------


class Updater:
    """``updater(index, grad, weight)``: create the weight's state on first use, then update.

    >>> import numpy as np
    >>> from framestream.nn import ndarray as nd
    >>> updater = get_updater(create('sgd', learning_rate=0.5, momentum=0.9))
    >>> w = nd.array(np.ones(2, np.float32))
    >>> updater(0, nd.array(np.ones(2, np.float32)), w)
    >>> w.asnumpy()
    array([0.5, 0.5], dtype=float32)
    """

    def __init__(self, optimizer: Optimizer):
        self.optimizer = optimizer
        self.states: dict[Any, Any] = {}
        self.states_synced: dict[Any, bool] = {}

    def __call__(self, index: Any, grad: NDArray, weight: NDArray) -> None:
        if index not in self.states:
            self.states[index] = self.optimizer.create_state(index, weight)
        elif not self.states_synced.get(index, True):
            self.states[index] = _to_context(self.states[index], _context(weight))
        self.states_synced[index] = True
        self.optimizer.update(index, weight, grad, self.states[index])

    def get_states(self, dump_optimizer: bool = False) -> bytes:
        """Pickled NumPy copies of the states; with ``dump_optimizer``, also the optimizer
        (update counts, scheduler position), which an exact resume needs."""
        states = {k: _to_numpy(v) for k, v in self.states.items()}
        return pickle.dumps((states, self.optimizer) if dump_optimizer else states,
                            protocol=pickle.HIGHEST_PROTOCOL)

    def set_states(self, states: bytes) -> None:
        """Restore what ``get_states`` wrote; each state moves to its weight's device on the
        weight's next update. Only NumPy arrays and optimizer/scheduler classes are unpickled."""
        loaded = _StateUnpickler(io.BytesIO(states)).load()
        if isinstance(loaded, tuple) and len(loaded) == 2 and isinstance(loaded[1], Optimizer):
            loaded, self.optimizer = loaded
        if not isinstance(loaded, dict):
            raise ValueError(f"set_states: expected the bytes of Updater.get_states, which hold a "
                             f"dict of states, got {type(loaded).__name__}")
        self.states = loaded
        self.states_synced = dict.fromkeys(loaded, False)


def get_updater(optimizer: Optimizer) -> Updater:
    """The callable the training loop (or a kvstore) applies to each ``(index, grad, weight)``."""
    return Updater(optimizer)


def _to_numpy(state: Any) -> Any:
    if isinstance(state, NDArray):
        return state.asnumpy()
    if isinstance(state, tuple | list):
        return type(state)(_to_numpy(s) for s in state)
    if hasattr(state, "get") and hasattr(state, "shape"):  # a raw CuPy array
        return state.get()
    return state


def _to_context(state: Any, ctx: Context) -> Any:
    if isinstance(state, NDArray):
        return state.as_in_context(ctx)
    if isinstance(state, np.ndarray):
        with ctx.device():
            return NDArray(ctx.xp.array(to_device(state, ctx), copy=True), ctx)
    if isinstance(state, tuple | list):
        return type(state)(_to_context(s, ctx) for s in state)
    return state


_NUMPY_NAMES = {"_reconstruct", "ndarray", "dtype", "scalar", "_frombuffer"}


class _StateUnpickler(pickle.Unpickler):
    """Unpickle arrays, and optimizers or schedulers whose modules are already imported."""

    def find_class(self, module: str, name: str) -> Any:
        if module.split(".")[0] == "numpy" and name in _NUMPY_NAMES:
            return super().find_class(module, name)
        if module.startswith("numpy.dtypes"):
            return super().find_class(module, name)
        found = getattr(sys.modules.get(module), name, None)
        if isinstance(found, type) and issubclass(found, Optimizer | LRScheduler):
            return found
        raise pickle.UnpicklingError(f"set_states: refusing to load {module}.{name}; optimizer "
                                     "states hold only arrays, optimizers and lr schedulers")
