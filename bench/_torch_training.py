"""PyTorch's side of the training benchmark, run inside bench/.venv-torch.

argv[1]: JSON spec {"nets", "steps", "warmup", "batch", "threads"}. One step: zero_grad,
forward, cross-entropy, backward, SGD-momentum step (eager mode, the usual loop).
Prints one JSON line: ms per step for each network."""

from __future__ import annotations

import json
import sys

import torch
from _torch_nets import build
from _util import fixed_batch, time_steps


def ms_per_step(name: str, batch: int, steps: int, warmup: int) -> float:
    torch.manual_seed(0)
    model = build(name).train()
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.01, momentum=0.9)
    loss_fn = torch.nn.CrossEntropyLoss()
    x, y = (torch.from_numpy(a) for a in fixed_batch(batch))

    def step() -> None:
        opt.zero_grad()
        loss_fn(model(x), y).backward()
        opt.step()

    return 1e3 * time_steps(step, steps, warmup)


def main(spec: dict) -> None:
    torch.set_num_threads(spec["threads"])
    ms = {n: ms_per_step(n, spec["batch"], spec["steps"][n], spec["warmup"]) for n in spec["nets"]}
    print(json.dumps({"ms": ms, "version": f"PyTorch {torch.__version__}"}))


if __name__ == "__main__":
    main(json.loads(sys.argv[1]))
