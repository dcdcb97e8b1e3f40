"""framestream's side of the training benchmark, run as a subprocess like the peers.

argv[1]: JSON spec {"nets", "steps" (per net), "warmup", "batch"}. One step: forward,
backward, and the SGD-momentum update of every parameter through ``get_updater``.
Prints one JSON line: ms per step for each network."""

from __future__ import annotations

import json
import sys

from _fs_nets import bind
from _util import fixed_batch, time_steps

from framestream import mx


def ms_per_step(name: str, batch: int, steps: int, warmup: int) -> float:
    ex = bind(name, batch, train=True)
    label = next(k for k in ex.arg_dict if k.endswith("_label"))
    names = list(ex.grad_dict)
    x, y = fixed_batch(batch)
    y = y.astype("float32")
    updater = mx.optimizer.get_updater(mx.optimizer.SGD(learning_rate=0.01, momentum=0.9, rescale_grad=1 / batch))

    def step() -> None:
        ex.forward(is_train=True, data=x, **{label: y})
        ex.backward()
        for i, name_ in enumerate(names):
            updater(i, ex.grad_dict[name_], ex.arg_dict[name_])

    return 1e3 * time_steps(step, steps, warmup)


def main(spec: dict) -> None:
    ms = {n: ms_per_step(n, spec["batch"], spec["steps"][n], spec["warmup"]) for n in spec["nets"]}
    print(json.dumps({"ms": ms}))


if __name__ == "__main__":
    main(json.loads(sys.argv[1]))
