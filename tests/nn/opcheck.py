"""Table-driven operator checks: inferred shapes, a NumPy reference and finite differences.

A ``Case`` names an operator, its parameters and its inputs. ``check_case`` then
1. infers shapes from the inputs and checks them against what ``forward`` computes,
2. compares the forward outputs with the case's ``reference`` (plain NumPy, float64),
3. checks ``backward`` against central finite differences in float64 for every input
   listed in ``grad_inputs`` (default: every argument), with a random head gradient, or,
   for loss layers, against the gradient of the case's ``loss`` function.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from framestream.nn.ops import Runtime, lookup


@dataclass
class Case:
    op: str
    params: dict[str, Any]
    inputs: dict[str, Any]  # name -> shape tuple (random normal values) or an array
    id: str = ""
    reference: Callable[..., list[np.ndarray]] | None = None  # (**inputs) -> outputs
    grad_inputs: list[str] | None = None  # inputs to check by finite differences
    loss: Callable[..., float] | None = None  # loss layers: (**inputs) -> scalar loss
    is_train: bool = True
    rtol: float = 1e-6
    atol: float = 1e-7
    eps: float = 1e-6
    seed: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        return self.id or f"{self.op}{self.params}"


def make_inputs(case: Case) -> list[np.ndarray]:
    rng = np.random.default_rng(case.seed)
    op = lookup(case.op)(node="t", **case.params)
    arrays = []
    for name in op.inputs():
        value = case.inputs[name]
        if isinstance(value, tuple):
            value = rng.standard_normal(value)
        arrays.append(np.array(value, dtype=np.float64))
    return arrays


def forward(op, arrays, is_train, seed=0):
    rt = Runtime(np, seed=seed)
    copies = [a.copy() for a in arrays]
    outs, state = op.forward(np, copies, is_train, rt)
    return outs, state, copies, rt


def check_case(case: Case) -> None:
    op = lookup(case.op)(node="t", **case.params)
    arrays = make_inputs(case)
    names = op.inputs()

    in_shapes = [a.shape for a in arrays]
    _, out_shapes = op.infer_shape([s if n in case.inputs else None for n, s in zip(names, in_shapes)])
    outs, state, used, rt = forward(op, arrays, case.is_train, case.seed)
    assert len(outs) == len(op.outputs()), f"{case}: {len(outs)} outputs, declared {op.outputs()}"
    for out, shape in zip(outs, out_shapes):
        assert tuple(out.shape) == tuple(shape), f"{case}: computed {out.shape}, inferred {shape}"
        assert out.dtype == np.float64, f"{case}: output dtype {out.dtype} (input was float64)"

    if case.reference is not None:
        expected = case.reference(**dict(zip(names, arrays)))
        for got, want in zip(outs, expected):
            np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-8, err_msg=f"{case}: forward")

    check = case.grad_inputs if case.grad_inputs is not None else op.arguments()
    if not check:
        return
    rng = np.random.default_rng(case.seed + 1)
    heads = [rng.standard_normal(o.shape) for o in outs]
    grads = op.backward(np, [h.copy() for h in heads], used, outs, state, rt)
    assert len(grads) == len(op.arguments()), f"{case}: {len(grads)} gradients for {op.arguments()}"

    def objective(values):
        if case.loss is not None:
            return case.loss(**dict(zip(names, values)))
        o, *_ = forward(op, values, case.is_train, case.seed)
        return sum(float((a * h).sum()) for a, h in zip(o, heads))

    for name in check:
        i = names.index(name)
        numeric = np.zeros_like(arrays[i])
        flat = numeric.reshape(-1)
        for j in range(arrays[i].size):
            plus = [a.copy() for a in arrays]
            minus = [a.copy() for a in arrays]
            plus[i].reshape(-1)[j] += case.eps
            minus[i].reshape(-1)[j] -= case.eps
            flat[j] = (objective(plus) - objective(minus)) / (2 * case.eps)
        assert grads[i] is not None, f"{case}: no gradient for {name}"
        assert grads[i].shape == arrays[i].shape, f"{case}: gradient of {name} has shape {grads[i].shape}"
        np.testing.assert_allclose(grads[i], numeric, rtol=case.rtol, atol=case.atol,
                                   err_msg=f"{case}: gradient of {name}")
