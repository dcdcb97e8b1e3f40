"""``mx.lr_scheduler``: the learning rate as a function of the update count.

The optimizer calls ``scheduler(num_update)`` before every weight update and sets
``scheduler.base_lr`` to its own ``learning_rate`` when it is built, as MXNet does. The
schedulers keep their position (``count``, ``base_lr``) as plain attributes so that
``Updater.get_states(dump_optimizer=True)`` pickles them and training resumes exactly.
"""

from __future__ import annotations

import logging

__all__ = ["FactorScheduler", "LRScheduler", "MultiFactorScheduler"]

logger = logging.getLogger("framestream.nn")


class LRScheduler:
    """Base class: a constant ``base_lr``; subclasses change it as updates go by.

    >>> LRScheduler(base_lr=0.1)(1000)
    0.1
    """

    def __init__(self, base_lr: float = 0.01):
        self.base_lr = base_lr

    def __call__(self, num_update: int) -> float:
        return self.base_lr


def _check_factor(factor: float) -> None:
    if factor > 1.0:
        raise ValueError(f"lr_scheduler: factor must be no more than 1 so that the learning rate "
                         f"decreases, got factor={factor}")


class FactorScheduler(LRScheduler):
    """Multiply the rate by ``factor`` each time ``step`` more updates have gone by.

    One step per call, as in the MXNet this reimplements: when ``num_update`` exceeds
    ``count + step``, the rate is multiplied once and ``count`` advances by ``step``. The rate
    never falls below ``stop_factor_lr``.

    >>> s = FactorScheduler(step=2, factor=0.5, base_lr=1.0)
    >>> [s(n) for n in range(1, 7)]
    [1.0, 1.0, 0.5, 0.5, 0.25, 0.25]
    """

    def __init__(self, step: int, factor: float = 1, stop_factor_lr: float = 1e-8,
                 base_lr: float = 0.01):
        super().__init__(base_lr)
        if step < 1:
            raise ValueError(f"FactorScheduler: step must be at least 1 update, got step={step}")
        _check_factor(factor)
        self.step = step
        self.factor = factor
        self.stop_factor_lr = stop_factor_lr
        self.count = 0

    def __call__(self, num_update: int) -> float:
        if num_update > self.count + self.step:
            self.count += self.step
            self.base_lr *= self.factor
            if self.base_lr < self.stop_factor_lr:
                self.base_lr = self.stop_factor_lr
                logger.info("Update[%d]: now learning rate arrived at %0.5e, will not change in "
                            "the future", num_update, self.base_lr)
            else:
                logger.info("Update[%d]: Change learning rate to %0.5e", num_update, self.base_lr)
        return self.base_lr


class MultiFactorScheduler(LRScheduler):
    """Multiply the rate by ``factor`` as ``num_update`` passes each entry of ``step``.

    ``step`` is an increasing list of update counts; one step is taken per call.

    >>> s = MultiFactorScheduler(step=[2, 4], factor=0.1, base_lr=1.0)
    >>> [round(s(n), 6) for n in range(1, 7)]
    [1.0, 1.0, 0.1, 0.1, 0.01, 0.01]
    """

    def __init__(self, step: list[int], factor: float = 1, base_lr: float = 0.01):
        super().__init__(base_lr)
        if not isinstance(step, list | tuple) or len(step) < 1:
            raise ValueError(f"MultiFactorScheduler: step must be a non-empty list of update "
                             f"counts, got {step!r}")
        for i, value in enumerate(step):
            if value < 1:
                raise ValueError(f"MultiFactorScheduler: every step must be at least 1 update, "
                                 f"got step[{i}]={value}")
            if i and value <= step[i - 1]:
                raise ValueError(f"MultiFactorScheduler: step must be increasing, got "
                                 f"step[{i - 1}]={step[i - 1]} then step[{i}]={value}")
        _check_factor(factor)
        self.step = list(step)
        self.factor = factor
        self.cur_step_ind = 0
        self.count = 0

    def __call__(self, num_update: int) -> float:
        if self.cur_step_ind < len(self.step) and num_update > self.step[self.cur_step_ind]:
            self.count = self.step[self.cur_step_ind]
            self.cur_step_ind += 1
            self.base_lr *= self.factor
            logger.info("Update[%d]: Change learning rate to %0.5e", num_update, self.base_lr)
        return self.base_lr
