"""The executor: plan a bound symbol once, then only compute forward and backward.

Planning fixes the node order, every entry's shape, which intermediate arrays can be
dropped after their last use (inference), and which nodes the backward pass must visit
(those on a path to an argument whose ``grad_req`` is not ``null``). Computation then
runs on the context's array module (NumPy for ``cpu()``, CuPy for ``gpu(i)``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from framestream.errors import MissingArgumentError, NNError, ShapeInferenceError
from framestream.nn import _graph, random
from framestream.nn.context import Context, current_context
from framestream.nn.ndarray import NDArray, zeros
from framestream.nn.ops import Runtime
from framestream.nn.ops import _cpu_kernels as kernels

Key = tuple[int, int]
GRAD_REQS = ("write", "add", "null")


@dataclass
class _Step:
    node: _graph.Node
    in_keys: list[Key]
    out_keys: list[Key]
    needs_grad: list[bool]  # per argument input: does a gradient have to flow there?
    free_after: list[Key]  # entries whose last reader is this step (dropped in inference)


class Executor:
    """A symbol bound to arrays on one device. Build with ``symbol.bind`` / ``simple_bind``."""

    def __init__(self, symbol: Any, ctx: Context | None, args: Any, args_grad: Any = None,
                 grad_req: Any = "write", aux_states: Any = None):
        self._symbol = symbol
        self._ctx = ctx = ctx or current_context()
        order = _graph.topo_order(symbol._outputs)
        arg_nodes, aux_nodes = _graph.variable_roles(order)
        self._arg_names = [n.name for n in arg_nodes]
        self._aux_names = [n.name for n in aux_nodes]
        self.arg_dict = _as_dict(args, self._arg_names, "args", ctx, required=True)
        self.aux_dict = _as_dict(aux_states, self._aux_names, "aux_states", ctx, required=True)
        grads = _as_dict(args_grad, self._arg_names, "args_grad", ctx, required=False)
        self._grad_req = _grad_reqs(grad_req, self._arg_names)
        for name in self._arg_names:
            if name not in grads:
                self._grad_req[name] = "null"
        self.grad_dict = {k: v for k, v in grads.items() if self._grad_req[k] != "null"}
        self._order, self._arg_nodes, self._aux_nodes = order, arg_nodes, aux_nodes
        self._plan()
        self._runtime = Runtime(ctx.xp, seed=random.next_seed())
        self._monitor: Callable[[str, NDArray], None] | None = None
        self._values: dict[Key, Any] = {}
        self._states: dict[int, Any] | None = None
        self.outputs = [zeros(s, ctx, dtype=self._dtypes.get(k)) for s, k in
                        zip(self._out_shapes, self._head_keys)]

    # -- construction ----------------------------------------------------------------------
    @classmethod
    def simple(cls, symbol: Any, ctx: Context | None, grad_req: Any, type_dict: dict,
               shapes: dict) -> Executor:
        ctx = ctx or current_context()
        arg_shapes, _, aux_shapes = symbol.infer_shape_partial(**shapes)
        names, aux_names = symbol.list_arguments(), symbol.list_auxiliary_states()
        missing = [n for n, s in zip(names + aux_names, arg_shapes + aux_shapes) if s == ()]
        if missing:
            raise MissingArgumentError(
                f"simple_bind: cannot infer the shape of {', '.join(missing)} from the shapes given "
                f"({', '.join(f'{k}={tuple(v)}' for k, v in shapes.items()) or 'none'}); give their shapes")
        types = symbol.infer_type(**type_dict)[0] if type_dict else None
        arg_types = types or [np.float32] * len(names)
        aux_types = (symbol.infer_type(**type_dict)[2] if type_dict else None) or [np.float32] * len(aux_names)
        reqs = _grad_reqs(grad_req, names)
        args = {n: zeros(s, ctx, t) for n, s, t in zip(names, arg_shapes, arg_types)}
        grads = {n: zeros(s, ctx, t) for n, s, t in zip(names, arg_shapes, arg_types) if reqs[n] != "null"}
        aux = {n: zeros(s, ctx, t) for n, s, t in zip(aux_names, aux_shapes, aux_types)}
        return cls(symbol, ctx, args, grads, reqs, aux)

    def _plan(self) -> None:
        given = {n: self.arg_dict[n].shape for n in self._arg_names}
        given.update({n: self.aux_dict[n].shape for n in self._aux_names})
        shapes = _graph.infer_shapes(self._order, given)
        dtypes = _graph.infer_types(self._order, {n: self.arg_dict[n]._data.dtype for n in self._arg_names})
        for node in self._order:
            for i in range(len(node.output_names())):
                if (id(node), i) not in shapes:
                    raise ShapeInferenceError(f"cannot infer the shape of output {i} of '{node.name}'")
        self._shapes, self._dtypes = shapes, dtypes
        self._head_keys = [(id(n), i) for n, i in self._symbol._outputs]
        self._out_shapes = [shapes[k] for k in self._head_keys]

        needs: dict[int, bool] = {}
        for node in self._order:
            if node.is_variable:
                needs[id(node)] = self._grad_req.get(node.name, "null") != "null"
            else:
                n_args = len(node.op.arguments())
                needs[id(node)] = any(needs[id(src)] for src, _ in node.inputs[:n_args])
        last_reader: dict[Key, int] = {}
        steps = []
        for node in self._order:
            if node.is_variable:
                continue
            n_args = len(node.op.arguments())
            in_keys = [(id(src), idx) for src, idx in node.inputs]
            for key in in_keys:
                last_reader[key] = len(steps)
            steps.append(_Step(node, in_keys, [(id(node), i) for i in range(len(node.output_names()))],
                               [needs[id(src)] for src, _ in node.inputs[:n_args]], []))
        variables = {(id(n), 0) for n in self._order if n.is_variable}
        keep = set(self._head_keys) | variables
        for key, index in last_reader.items():
            if key not in keep:
                steps[index].free_after.append(key)
        self._steps = steps
        self._uses_cpu_pool = any(s.node.op.uses_cpu_pool for s in steps)
        self._backward_steps = [s for s in reversed(steps) if any(s.needs_grad)]

    # -- running -------------------------------------------------------------------------------
    def forward(self, is_train: bool = False, **kwargs: Any) -> list[NDArray]:
        """Compute the outputs; ``kwargs`` copy new values into arguments first."""
        for name, value in kwargs.items():
            if name not in self.arg_dict:
                raise MissingArgumentError(f"forward: {name!r} is not an argument; arguments are "
                                           f"{', '.join(self._arg_names)}")
            target = self.arg_dict[name]
            value = value.data if isinstance(value, NDArray) else value
            if tuple(value.shape) != target.shape:
                raise ShapeInferenceError(f"forward: {name} has shape {tuple(value.shape)}, "
                                          f"bound as {target.shape}; use reshape() for a new shape")
            target[:] = value
        xp = self._ctx.xp
        values: dict[Key, Any] = {}
        for node in self._arg_nodes:
            values[(id(node), 0)] = self.arg_dict[node.name]._data
        for node in self._aux_nodes:
            values[(id(node), 0)] = self.aux_dict[node.name]._data
        states: dict[int, Any] = {}
        # What backward needs is kept when it can be asked for: after a training forward, or
        # after an inference forward of an executor that has gradients (MXNet allows both).
        # A prediction executor (no gradients) drops each intermediate after its last use.
        keep = is_train or bool(self._backward_steps)
        with self._ctx.device(), self._threads():
            for step in self._steps:
                outs, state = step.node.op.forward(xp, [values[k] for k in step.in_keys], is_train,
                                                   self._runtime)
                for key, out in zip(step.out_keys, outs):
                    if tuple(out.shape) != self._shapes[key]:
                        raise ShapeInferenceError(
                            f"{step.node.op.op_name} '{step.node.name}' computed shape {tuple(out.shape)}, "
                            f"planned {self._shapes[key]}")
                    values[key] = out
                if keep:
                    states[id(step.node)] = state
                if self._monitor is not None:
                    for name, key in zip(step.node.output_names(), step.out_keys):
                        self._monitor(name, NDArray(values[key], self._ctx))
                if not keep:
                    for key in step.free_after:
                        values.pop(key, None)
        for out, key in zip(self.outputs, self._head_keys):
            out._data = values[key]
        self._values, self._states = (values, states) if keep else ({}, None)
        return self.outputs

    def backward(self, out_grads: Any = None, is_train: bool = True) -> None:
        """Gradients into ``grad_dict`` by ``grad_req``, for the last forward pass."""
        if self._states is None:
            raise NNError("backward needs a forward pass first, on an executor bound with gradients "
                          "(grad_req other than 'null')")
        xp = self._ctx.xp
        if isinstance(out_grads, NDArray):
            out_grads = [out_grads]
        grads: dict[Key, Any] = {}
        with self._ctx.device(), self._threads():
            for i, key in enumerate(self._head_keys):
                given = None if out_grads is None else out_grads[i]
                if given is None:
                    head = xp.ones(self._shapes[key], dtype=self._values[key].dtype)
                else:
                    head = given.data if isinstance(given, NDArray) else xp.asarray(given)
                    if tuple(head.shape) != self._shapes[key]:
                        raise ShapeInferenceError(f"backward: out_grads[{i}] has shape {tuple(head.shape)}, "
                                                  f"output is {self._shapes[key]}")
                _accumulate(grads, key, head)
            for step in self._backward_steps:
                op = step.node.op
                if not op.is_loss and not any(k in grads for k in step.out_keys):
                    continue
                outs = [self._values[k] for k in step.out_keys]
                ogs = [grads.pop(k, None) for k in step.out_keys]
                ogs = [xp.zeros_like(o) if g is None else g for g, o in zip(ogs, outs)]
                self._runtime.needs_grad = step.needs_grad
                in_grads = op.backward(xp, ogs, [self._values[k] for k in step.in_keys], outs,
                                       self._states[id(step.node)], self._runtime)
                for key, grad, need in zip(step.in_keys, in_grads, step.needs_grad):
                    if need and grad is not None:
                        _accumulate(grads, key, grad)
            self._runtime.needs_grad = None
            for node in self._arg_nodes:
                req = self._grad_req[node.name]
                if req == "null":
                    continue
                target = self.grad_dict[node.name]._data
                grad = grads.get((id(node), 0))
                if req == "write":
                    if grad is None:
                        target[...] = 0
                    else:
                        target[...] = grad
                elif grad is not None:
                    target += grad

    def _threads(self) -> contextlib.AbstractContextManager:
        """On the CPU, when compiled kernels split over the pool, BLAS runs single-threaded and
        big products split over the same pool; an MLP keeps BLAS's own threads."""
        if self._ctx.device_type == "cpu" and self._uses_cpu_pool:
            return kernels.single_threaded_blas()
        return contextlib.nullcontext()

    # -- views ---------------------------------------------------------------------------------
    @property
    def ctx(self) -> Context:
        return self._ctx

    @property
    def arg_arrays(self) -> list[NDArray]:
        return [self.arg_dict[n] for n in self._arg_names]

    @property
    def grad_arrays(self) -> list[NDArray | None]:
        return [self.grad_dict.get(n) for n in self._arg_names]

    @property
    def aux_arrays(self) -> list[NDArray]:
        return [self.aux_dict[n] for n in self._aux_names]

    @property
    def output_dict(self) -> dict[str, NDArray]:
        return dict(zip(self._symbol.list_outputs(), self.outputs))

    @property
    def grad_req(self) -> dict[str, str]:
        return dict(self._grad_req)

    def set_monitor_callback(self, callback: Callable[[str, NDArray], None], monitor_all: bool = False) -> None:
        """Call ``callback(output_name, array)`` after every node's forward."""
        self._monitor = callback

    def copy_params_from(self, arg_params: dict[str, Any], aux_params: dict[str, Any] | None = None,
                         allow_extra_params: bool = False) -> None:
        """Copy parameter values in by name; shapes must match the bound arrays."""
        for source, target, kind in ((arg_params, self.arg_dict, "argument"),
                                     (aux_params or {}, self.aux_dict, "auxiliary state")):
            for name, value in source.items():
                if name not in target:
                    if allow_extra_params:
                        continue
                    raise NNError(f"copy_params_from: {name!r} is not an {kind} of the symbol "
                                  "(pass allow_extra_params=True to skip it)")
                shape = tuple(value.shape)
                if shape != target[name].shape:
                    raise ShapeInferenceError(f"copy_params_from: {kind} {name} has shape {shape}, "
                                              f"the executor expects {target[name].shape}")
                target[name][:] = value.data if isinstance(value, NDArray) else value

    def reshape(self, partial_shaping: bool = False, allow_up_sizing: bool = False, **shapes: Any) -> Executor:
        """A new executor for new input shapes, sharing every array whose shape is unchanged."""
        arg_shapes, _, aux_shapes = self._symbol.infer_shape(**shapes)
        if arg_shapes is None:
            raise MissingArgumentError(f"reshape: shapes {shapes} do not determine every argument")

        def share(names, old, new_shapes):
            return {n: (old[n] if old[n].shape == tuple(s) else zeros(s, self._ctx, old[n]._data.dtype))
                    for n, s in zip(names, new_shapes)}

        args = share(self._arg_names, self.arg_dict, arg_shapes)
        grads = share([n for n in self._arg_names if n in self.grad_dict], self.grad_dict,
                      [s for n, s in zip(self._arg_names, arg_shapes) if n in self.grad_dict])
        aux = share(self._aux_names, self.aux_dict, aux_shapes)
        return Executor(self._symbol, self._ctx, args, grads, self._grad_req, aux)

    def debug_str(self) -> str:
        lines = [f"Executor on {self._ctx}: {len(self._steps)} operators"]
        for step in self._steps:
            shapes = ", ".join(str(self._shapes[k]) for k in step.out_keys)
            lines.append(f"  {step.node.op.op_name:<22} {step.node.name:<24} -> {shapes}")
        return "\n".join(lines)


def _accumulate(grads: dict[Key, Any], key: Key, value: Any) -> None:
    if key in grads:
        grads[key] = grads[key] + value
    else:
        grads[key] = value


def _as_dict(values: Any, names: list[str], what: str, ctx: Context, required: bool) -> dict[str, NDArray]:
    if values is None:
        values = {}
    if isinstance(values, list | tuple):
        if len(values) != len(names):
            raise MissingArgumentError(f"bind: {what} has {len(values)} arrays for {len(names)} names "
                                       f"({', '.join(names)})")
        values = {n: v for n, v in zip(names, values) if v is not None}
    out = {}
    for name in names:
        if name not in values:
            if required:
                raise MissingArgumentError(f"bind: no array given in {what} for {name!r}")
            continue
        value = values[name]
        if not isinstance(value, NDArray):
            from framestream.nn.ndarray import array

            value = array(value, ctx)
        elif value.context != ctx:
            raise NNError(f"bind: {what}[{name!r}] is on {value.context}, the executor on {ctx}")
        out[name] = value
    extra = set(values) - set(names)
    if extra and what != "args_grad":
        raise MissingArgumentError(f"bind: {what} has arrays for {', '.join(sorted(extra))}, "
                                   f"which the symbol does not have")
    return out


def _grad_reqs(grad_req: Any, names: list[str]) -> dict[str, str]:
    if isinstance(grad_req, str):
        reqs = dict.fromkeys(names, grad_req)
    elif isinstance(grad_req, list | tuple):
        reqs = dict(zip(names, grad_req))
    else:
        reqs = {n: grad_req.get(n, "null") for n in names}
    for name, req in reqs.items():
        if req not in GRAD_REQS:
            raise NNError(f"grad_req for {name!r} is {req!r}; expected one of {', '.join(GRAD_REQS)}")
    return reqs
