"""The compiled CPU kernels against the NumPy path they replace (which CuPy runs).

Each case binds one small network twice, once with the kernels and once with them
switched off, and compares outputs, every gradient and BatchNorm's moving statistics.
The finite-difference tests in test_ops_* check the compiled path's maths on their own.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest

from framestream import mx
from framestream.nn.ops import _cpu_kernels as kernels

pytestmark = pytest.mark.skipif(kernels.numba is None, reason="numba is not installed")


def _conv(**kw):
    return lambda d: mx.sym.Convolution(data=d, name="op", **kw)


def _pool(**kw):
    return lambda d: mx.sym.Pooling(data=d, name="op", **kw)


def _bn(**kw):
    return lambda d: mx.sym.BatchNorm(data=d, name="op", **kw)


CASES = {
    "conv-3x3-stride2": ((4, 3, 13, 11), _conv(num_filter=5, kernel=(3, 3), stride=(2, 2))),
    "conv-pad-dilate": ((3, 4, 9, 10), _conv(num_filter=6, kernel=(3, 2), pad=(2, 1), dilate=(2, 1))),
    "conv-groups-nobias": ((2, 6, 8, 8), _conv(num_filter=4, kernel=(3, 3), num_group=2, no_bias=True)),
    "conv-depthwise": ((2, 4, 7, 7), _conv(num_filter=4, kernel=(3, 3), num_group=4, pad=(1, 1))),
    "conv-1x1": ((3, 5, 6, 6), _conv(num_filter=7, kernel=(1, 1))),
    "pool-max-valid": ((3, 4, 9, 9), _pool(kernel=(2, 2), stride=(2, 2), pool_type="max")),
    "pool-max-full": ((3, 4, 13, 13), _pool(kernel=(2, 2), stride=(2, 2), pool_type="max",
                                           pooling_convention="full")),
    "pool-max-pad-overlap": ((2, 3, 8, 7), _pool(kernel=(3, 3), stride=(2, 1), pad=(1, 1),
                                                 pool_type="max")),
    "bn-4d": ((6, 3, 5, 4), _bn(fix_gamma=False)),
    "bn-fix-gamma": ((6, 3, 5, 4), _bn()),
    "bn-2d": ((8, 5), _bn(fix_gamma=False, eps=1e-5)),
    "bn-global-stats": ((6, 3, 5, 4), _bn(fix_gamma=False, use_global_stats=True)),
    **{f"act-{kind}": ((4, 3, 5, 5), lambda d, kind=kind: mx.sym.Activation(data=d, act_type=kind))
       for kind in ("relu", "tanh", "sigmoid")},
}


def _run(shape, build, dtype, compiled, monkeypatch, ties=False):
    monkeypatch.setattr(kernels, "_DISABLED", not compiled)
    net = mx.sym.MakeLoss(mx.sym.sum(build(mx.sym.Variable("data")) * mx.sym.Variable("w")))
    ex = net.simple_bind(mx.cpu(), type_dict={"data": dtype, "w": dtype}, data=shape)
    rng = np.random.default_rng(7)
    for name, arr in ex.arg_dict.items():
        value = rng.normal(size=arr.shape)
        if ties and name == "data":  # repeated values: the first maximum must win, as MXNet
            value = np.round(value)
        arr[:] = value.astype(dtype)
    for arr in ex.aux_dict.values():
        arr[:] = rng.uniform(0.5, 1.5, size=arr.shape).astype(dtype)
    ex.forward(is_train=True)
    ex.backward()
    out = {"out": ex.outputs[0].asnumpy()}
    out.update({f"grad:{k}": v.asnumpy() for k, v in ex.grad_dict.items()})
    out.update({f"aux:{k}": v.asnumpy() for k, v in ex.aux_dict.items()})
    return out


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", sorted(CASES))
def test_compiled_path_matches_numpy_path(case, dtype, monkeypatch):
    shape, build = CASES[case]
    ties = case.startswith("pool")
    fast = _run(shape, build, dtype, True, monkeypatch, ties)
    slow = _run(shape, build, dtype, False, monkeypatch, ties)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    assert fast.keys() == slow.keys()
    for key in fast:
        np.testing.assert_allclose(fast[key], slow[key], rtol=tol, atol=tol, err_msg=f"{case} {key}")


def test_kernels_are_safe_from_many_threads_at_once():
    """Dask runs tasks in threads: concurrent kernel launches must not interfere."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 8, 30, 30)).astype(np.float32)  # big enough to split over the pool
    expected = kernels.im2col(x, (3, 3), (1, 1), (1, 1), (28, 28))
    results, errors = [], []

    def work():
        try:
            results.append(kernels.im2col(x, (3, 3), (1, 1), (1, 1), (28, 28)))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert all(np.array_equal(r, expected) for r in results)


def test_col2im_is_the_adjoint_of_im2col():
    """<im2col(x), c> == <x, col2im(c)> for random x and c: the pair is exact transposes."""
    rng = np.random.default_rng(1)
    x = rng.normal(size=(3, 2, 9, 8))
    cols = kernels.im2col(x, (3, 2), (2, 1), (1, 2), (4, 6))
    c = rng.normal(size=cols.shape)
    back = kernels.col2im(c, x.shape, (3, 2), (2, 1), (1, 2), (4, 6))
    assert np.isclose((cols * c).sum(), (x * back).sum(), rtol=1e-12)


def test_a_forked_child_gets_a_working_pool():
    """multiprocessing's default on Linux is fork: the parent's pool threads do not survive
    it, so a child must not wait on them (it would hang)."""
    import multiprocessing

    x = np.random.default_rng(2).normal(size=(64, 8, 30, 30)).astype(np.float32)
    expected = kernels.im2col(x, (3, 3), (1, 1), (1, 1), (28, 28))  # the parent's pool is up
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(1) as pool:
        got = pool.apply_async(kernels.im2col, (x, (3, 3), (1, 1), (1, 1), (28, 28))).get(timeout=60)
    assert np.array_equal(got, expected)


def test_columns_too_big_to_keep_are_rebuilt_in_backward(monkeypatch):
    """A big layer's im2col columns are not held from forward to backward; the gradients
    are the same whether they were kept or rebuilt."""
    from framestream.nn.ops import conv

    shape, build = CASES["conv-pad-dilate"]
    kept = _run(shape, build, np.float64, True, monkeypatch)
    monkeypatch.setattr(conv, "KEEP_COLUMNS_BYTES", 0)
    rebuilt = _run(shape, build, np.float64, True, monkeypatch)
    for key in kept:
        np.testing.assert_array_equal(kept[key], rebuilt[key], err_msg=key)
