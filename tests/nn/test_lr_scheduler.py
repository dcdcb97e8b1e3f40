"""Learning-rate schedules: MXNet's one-step-per-call rules, the floor, and bad settings."""

from __future__ import annotations

import doctest

import pytest

from framestream import mx
from framestream.nn import lr_scheduler


def test_doctests():
    assert doctest.testmod(lr_scheduler).failed == 0


@pytest.mark.parametrize(("scheduler", "calls", "expected"), [
    (lambda: mx.lr_scheduler.LRScheduler(base_lr=0.3), [1, 100, 10**6], [0.3, 0.3, 0.3]),
    (lambda: mx.lr_scheduler.FactorScheduler(3, 0.1, base_lr=1.0),
     [1, 3, 4, 6, 7, 10], [1.0, 1.0, 0.1, 0.1, 0.01, 0.001]),
    # One step per call: a jump from 1 to 100 updates lowers the rate once, not 33 times.
    (lambda: mx.lr_scheduler.FactorScheduler(3, 0.5, base_lr=1.0), [1, 100, 100],
     [1.0, 0.5, 0.25]),
    (lambda: mx.lr_scheduler.FactorScheduler(1, 0.1, stop_factor_lr=1e-3, base_lr=1.0),
     [2, 3, 4, 5, 6], [0.1, 0.01, 1e-3, 1e-3, 1e-3]),
    (lambda: mx.lr_scheduler.MultiFactorScheduler([2, 5], 0.1, base_lr=1.0),
     [1, 2, 3, 5, 6, 100], [1.0, 1.0, 0.1, 0.1, 0.01, 0.01]),
], ids=["constant", "factor", "factor-jump", "factor-floor", "multifactor"])
def test_schedules(scheduler, calls, expected):
    s = scheduler()
    assert [s(n) for n in calls] == pytest.approx(expected)


@pytest.mark.parametrize(("build", "message"), [
    (lambda: mx.lr_scheduler.FactorScheduler(0), "step must be at least 1"),
    (lambda: mx.lr_scheduler.FactorScheduler(5, factor=1.5), "factor must be no more than 1"),
    (lambda: mx.lr_scheduler.MultiFactorScheduler([3, 3]), r"increasing.*step\[0\]=3"),
    (lambda: mx.lr_scheduler.MultiFactorScheduler([0, 3]), "at least 1"),
    (lambda: mx.lr_scheduler.MultiFactorScheduler([]), "non-empty list"),
    (lambda: mx.lr_scheduler.MultiFactorScheduler([2], factor=2), "factor"),
])
def test_bad_settings_say_what_is_wrong(build, message):
    with pytest.raises(ValueError, match=message):
        build()


def test_optimizer_drives_the_schedule():
    sched = mx.lr_scheduler.MultiFactorScheduler([1, 2], factor=0.5)
    opt = mx.optimizer.SGD(learning_rate=0.8, lr_scheduler=sched)
    w = mx.nd.zeros((1,))
    seen = []
    for _ in range(4):
        opt.update(0, w, mx.nd.ones((1,)), None)
        seen.append(opt.learning_rate)
    assert seen == pytest.approx([0.8, 0.4, 0.2, 0.2])
    assert w.asnumpy()[0] == pytest.approx(-(0.8 + 0.4 + 0.2 + 0.2))
