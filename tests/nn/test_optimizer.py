"""Optimizers against direct NumPy transcriptions of MXNet's formulas, the registry, the
lr/wd multiplier rules, and exact resume through Updater.get_states / set_states."""

from __future__ import annotations

import math
import os
import pickle
import warnings

import numpy as np
import pytest

from framestream import mx
from framestream.nn.optimizer import Optimizer, Updater

# -- NumPy transcriptions (float64) of the update rules ----------------------------------------


def clip(g, c):
    return g if c is None else np.clip(g, -c, c)


def ref_sgd(w, g, s, t, lr, wd, c, momentum=0.0):
    g = clip(g, c)
    if momentum == 0.0:
        return w - lr * (g + wd * w), s
    mom = momentum * s.get("mom", 0.0) - lr * (g + wd * w)
    return w + mom, {"mom": mom}


def ref_nag(w, g, s, t, lr, wd, c, momentum=0.0):
    g = clip(g, c) + wd * w
    if momentum == 0.0:
        return w - lr * g, s
    mom = momentum * s.get("mom", 0.0) + g
    return w - lr * (g + momentum * mom), {"mom": mom}


def ref_adam(w, g, s, t, lr, wd, c, beta1=0.9, beta2=0.999, epsilon=1e-8):
    g = clip(g, c)
    m = beta1 * s.get("m", 0.0) + (1 - beta1) * g
    v = beta2 * s.get("v", 0.0) + (1 - beta2) * g * g
    lr_t = lr * math.sqrt(1 - beta2**t) / (1 - beta1**t)
    w = w - lr_t * m / (np.sqrt(v) + epsilon)
    return w - lr_t * wd * w, {"m": m, "v": v}


def ref_adagrad(w, g, s, t, lr, wd, c, eps=1e-7):
    g = clip(g, c)
    h = s.get("h", 0.0) + g * g
    return w - lr * (g / np.sqrt(h + eps) + wd * w), {"h": h}


def ref_rmsprop(w, g, s, t, lr, wd, c, gamma1=0.9, gamma2=0.9, epsilon=1e-8, centered=False,
                clip_weights=None):
    g = clip(g + wd * w, c)  # 1.x: decay inside the clipped gradient
    n = (1 - gamma1) * g * g + gamma1 * s.get("n", 0.0)
    if not centered:
        w = w - lr * g / np.sqrt(n + epsilon)
        s = {"n": n}
    else:
        gbar = (1 - gamma1) * g + gamma1 * s.get("gbar", 0.0)
        delta = gamma2 * s.get("delta", 0.0) - lr * g / np.sqrt(n - gbar * gbar + epsilon)
        w = w + delta
        s = {"n": n, "gbar": gbar, "delta": delta}
    return (w if clip_weights is None else np.clip(w, -clip_weights, clip_weights)), s


def ref_adadelta(w, g, s, t, lr, wd, c, rho=0.9, epsilon=1e-5):
    g = clip(g, c)
    acc_g = rho * s.get("acc_g", 0.0) + (1 - rho) * g * g
    acc_d = s.get("acc_d", 0.0)
    delta = np.sqrt(acc_d + epsilon) / np.sqrt(acc_g + epsilon) * g
    acc_d = rho * acc_d + (1 - rho) * delta * delta
    return w - (delta + wd * w), {"acc_g": acc_g, "acc_d": acc_d}


REFERENCES = {"sgd": ref_sgd, "nag": ref_nag, "adam": ref_adam, "adagrad": ref_adagrad,
              "rmsprop": ref_rmsprop, "adadelta": ref_adadelta}

CASES = [
    ("sgd", {}),
    ("sgd", {"momentum": 0.9}),
    ("nag", {}),
    ("nag", {"momentum": 0.9}),
    ("adam", {}),
    ("adam", {"beta1": 0.8, "beta2": 0.99, "epsilon": 1e-6}),
    ("adagrad", {"eps": 1e-6}),
    ("rmsprop", {}),
    ("rmsprop", {"gamma1": 0.95, "clip_weights": 0.6}),
    ("rmsprop", {"centered": True, "gamma1": 0.95, "gamma2": 0.8, "epsilon": 1e-4}),
    ("adadelta", {"rho": 0.8}),
]
IDS = [f"{name}-{'-'.join(f'{k}={v}' for k, v in params.items()) or 'default'}"
       for name, params in CASES]
NAMES = {0: "fc_weight", 1: "fc_bias", 2: "bn_gamma"}
STEPS, BASE_LR, WD, RESCALE, CLIP = 6, 0.1, 0.05, 0.5, 0.8


def make_optimizer(name, params, scheduler=True):
    kwargs = dict(params, wd=WD, rescale_grad=RESCALE, clip_gradient=CLIP,
                  param_idx2name=dict(NAMES))
    if name != "adadelta":
        kwargs["learning_rate"] = BASE_LR
    if scheduler:
        kwargs["lr_scheduler"] = mx.lr_scheduler.FactorScheduler(step=2, factor=0.5)
    opt = mx.optimizer.create(name, **kwargs)
    opt.set_lr_mult({"fc_weight": 2.0})
    opt.set_wd_mult({"bn_gamma": 0.5})
    return opt


def data(seed=0):
    rng = np.random.default_rng(seed)
    weights = [rng.standard_normal((3, 4)) for _ in NAMES]
    grads = [[rng.standard_normal((3, 4)) * 2.0 for _ in NAMES] for _ in range(STEPS)]
    return weights, grads


@pytest.mark.parametrize(("name", "params"), CASES, ids=IDS)
def test_update_matches_numpy_transcription(ctx, name, params):
    weights, grads = data()
    opt = make_optimizer(name, params)
    updater = mx.optimizer.get_updater(opt)
    arrays = [mx.nd.array(w.astype(np.float32), ctx) for w in weights]
    expected, states = [w.copy() for w in weights], [{} for _ in NAMES]
    lr_mult = {0: 2.0, 1: 1.0, 2: 1.0}
    wd_mult = {0: 1.0, 1: 0.0, 2: 0.5}  # fc_bias: no decay (not _weight/_gamma); gamma: set
    for step in range(1, STEPS + 1):
        lr = (BASE_LR if name != "adadelta" else 0.01) * 0.5 ** ((step - 1) // 2)
        for i in NAMES:
            grad = grads[step - 1][i]
            updater(i, mx.nd.array(grad.astype(np.float32), ctx), arrays[i])
            expected[i], states[i] = REFERENCES[name](
                expected[i], grad.astype(np.float32).astype(np.float64) * RESCALE, states[i], step,
                lr * lr_mult[i], WD * wd_mult[i], CLIP, **params)
    assert opt.num_update == STEPS
    for i in NAMES:
        assert arrays[i].context == ctx
        np.testing.assert_allclose(arrays[i].asnumpy(), expected[i], rtol=2e-5, atol=2e-6,
                                   err_msg=f"{name} {NAMES[i]}")


@pytest.mark.parametrize(("name", "params"), CASES, ids=IDS)
def test_resume_from_states_is_bit_identical(ctx, name, params):
    weights, grads = data(1)

    def run(updater, arrays, steps):
        for step in steps:
            for i in NAMES:
                updater(i, mx.nd.array(grads[step][i].astype(np.float32), ctx), arrays[i])

    arrays = [mx.nd.array(w.astype(np.float32), ctx) for w in weights]
    straight = mx.optimizer.get_updater(make_optimizer(name, params))
    run(straight, arrays, range(3))
    saved = straight.get_states(dump_optimizer=True)
    snapshot = [a.asnumpy() for a in arrays]
    run(straight, arrays, range(3, STEPS))

    resumed = mx.optimizer.get_updater(make_optimizer(name, params))
    resumed.set_states(saved)
    assert all(not synced for synced in resumed.states_synced.values())
    again = [mx.nd.array(s, ctx) for s in snapshot]
    run(resumed, again, range(3, STEPS))
    for i in NAMES:
        assert np.array_equal(arrays[i].asnumpy(), again[i].asnumpy()), NAMES[i]
    assert resumed.optimizer.num_update == straight.optimizer.num_update == STEPS


def test_states_are_numpy_copies_and_return_to_the_weights_device(ctx):
    updater = mx.optimizer.get_updater(mx.optimizer.create("adam"))
    weight = mx.nd.ones((2, 2), ctx)
    updater(0, mx.nd.ones((2, 2), ctx), weight)
    states = pickle.loads(updater.get_states())
    assert set(states) == {0} and all(type(s) is np.ndarray for s in states[0])
    fresh = Updater(mx.optimizer.create("adam"))
    fresh.set_states(updater.get_states())
    fresh(0, mx.nd.ones((2, 2), ctx), mx.nd.ones((2, 2), ctx))
    assert all(s.context == ctx for s in fresh.states[0])


def test_set_states_refuses_anything_but_arrays_and_optimizers():
    with pytest.raises(pickle.UnpicklingError, match="refusing"):
        Updater(mx.optimizer.create("sgd")).set_states(pickle.dumps({0: os.system}))
    with pytest.raises(ValueError, match="get_states"):
        Updater(mx.optimizer.create("sgd")).set_states(pickle.dumps([1, 2]))


def test_registry_is_case_insensitive_and_extensible():
    assert type(mx.optimizer.create("AdaGrad")) is mx.optimizer.AdaGrad
    assert isinstance(mx.optimizer.create("ccsgd"), mx.optimizer.SGD)
    assert mx.optimizer.create("SGD", momentum=0.9).momentum == 0.9
    with pytest.raises(ValueError, match="Cannot find optimizer 'nope'.*adam"):
        mx.optimizer.create("nope")

    @mx.optimizer.register
    class HalfStep(Optimizer):
        def update(self, index, weight, grad, state):
            weight.data[...] -= 0.5 * grad.data

    try:
        w = mx.nd.ones((2,))
        mx.optimizer.get_updater(mx.optimizer.create("halfstep"))(0, mx.nd.ones((2,)), w)
        assert w.asnumpy().tolist() == [0.5, 0.5]
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            Optimizer.register(type("HalfStep", (Optimizer,), {}))
        assert "overrides" in str(caught[0].message)
    finally:
        Optimizer.opt_registry.pop("halfstep", None)


def test_multipliers_come_from_the_symbol_and_names():
    weight = mx.sym.Variable("fc_weight", lr_mult=2.0, wd_mult=0.5)
    net = mx.sym.FullyConnected(data=mx.sym.Variable("data"), weight=weight, num_hidden=2,
                                name="fc")
    net = mx.sym.BatchNorm(data=net, name="bn")
    names = dict(enumerate(net.list_arguments()))
    opt = mx.optimizer.SGD(learning_rate=0.1, wd=0.01, sym=net, param_idx2name=names)
    index = {n: i for i, n in names.items()}
    assert opt._get_lr(index["fc_weight"]) == pytest.approx(0.2)
    assert opt._get_wd(index["fc_weight"]) == pytest.approx(0.005)
    assert opt._get_wd(index["bn_gamma"]) == pytest.approx(0.01)
    assert opt._get_wd(index["fc_bias"]) == opt._get_wd(index["bn_beta"]) == 0.0
    opt.set_wd_mult({"fc_bias": 1.0})
    assert opt._get_wd(index["fc_bias"]) == pytest.approx(0.01)
    assert opt._get_wd(index["fc_weight"]) == pytest.approx(0.005)  # symbol attr kept
    opt.set_lr_mult({index["bn_beta"]: 3.0})  # by index, for old code
    assert opt._get_lr(index["bn_beta"]) == pytest.approx(0.3)
    assert mx.optimizer.SGD(wd=0.1)._get_wd(7) == 0.1  # no names: decay everything


def test_scheduler_base_lr_and_begin_num_update():
    sched = mx.lr_scheduler.FactorScheduler(step=10, factor=0.5)
    opt = mx.optimizer.SGD(learning_rate=0.4, lr_scheduler=sched, begin_num_update=100)
    assert sched.base_lr == 0.4
    w = mx.nd.ones((1,))
    opt.update(0, w, mx.nd.ones((1,)), None)
    assert opt.num_update == 101 and opt._index_update_count == {0: 101}
    assert sched.base_lr == 0.2  # one step per call, as MXNet's scheduler
    with pytest.raises(UserWarning, match="lr_scheduler"):
        opt.set_learning_rate(0.1)


def test_bad_settings_and_grad_untouched():
    with pytest.raises(ValueError, match="clip_gradient"):
        mx.optimizer.SGD(clip_gradient=0)
    with pytest.raises(TypeError, match="param_idx2name"):
        mx.optimizer.SGD(param_idx2name=["a"])
    grad = mx.nd.array(np.full((2,), 3.0, np.float32))
    mx.optimizer.AdaDelta(rescale_grad=0.5).update(0, mx.nd.ones((2,)), grad,
                                                   mx.optimizer.AdaDelta().create_state(
                                                       0, mx.nd.ones((2,))))
    assert grad.asnumpy().tolist() == [3.0, 3.0]  # MXNet's AdaDelta rescaled it in place


def test_test_optimizer_and_raw_arrays():
    opt = mx.optimizer.create("test", rescale_grad=2.0)
    weight, state = np.ones(3, np.float32), None
    state = opt.create_state(0, mx.nd.array(weight))
    w = mx.nd.array(weight)
    opt.update(0, w, mx.nd.ones((3,)), state)
    assert w.asnumpy().tolist() == [3.0] * 3 == state.asnumpy().tolist()
    raw = np.ones(2, np.float32)
    mx.optimizer.SGD(learning_rate=0.5).update(0, raw, np.ones(2, np.float32), None)
    assert raw.tolist() == [0.5, 0.5]
