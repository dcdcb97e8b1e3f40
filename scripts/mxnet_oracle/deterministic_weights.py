"""Deterministic parameters for a network, from each parameter's name and shape alone.

Shared by ``make_gluon_fixtures.py`` (MXNet's venv, numpy 1.23) and
``tests/nn/test_gluon_graphs.py`` (the project's venv, numpy 2): both sides rebuild the
same float32 values without exchanging a params file. Needs only numpy and zlib.

Every parameter gets its own generator, ``numpy.random.default_rng(zlib.crc32(name))``,
so the values do not depend on which other parameters a graph has or their order. By
the name's suffix:

* ``*weight`` (convolution, deconvolution, fully connected; ``*_alpha`` too):
  normal * sqrt(2 / fan_in), fan_in = prod(shape[1:]) (He scaling, so activations keep
  their size through deep ReLU stacks and the logits depend on every layer);
* ``*bias``, ``*beta``: normal * 0.05;
* ``*gamma``: uniform(0.8, 1.2);
* ``*running_mean`` / ``*moving_mean``: normal * 0.1;
* ``*running_var`` / ``*moving_var``: uniform(0.6, 1.4).

Any other name is an error: a rule that guessed would hide a graph that changed.
"""

from __future__ import annotations

import hashlib
import zlib
from collections.abc import Iterable

import numpy as np


def parameter(name: str, shape: Iterable[int]) -> np.ndarray:
    """The float32 value of parameter ``name`` with ``shape``."""
    shape = tuple(int(v) for v in shape)
    rng = np.random.default_rng(zlib.crc32(name.encode("utf-8")))
    if name.endswith(("running_mean", "moving_mean")):
        value = rng.standard_normal(shape) * 0.1
    elif name.endswith(("running_var", "moving_var")):
        value = rng.uniform(0.6, 1.4, shape)
    elif name.endswith("gamma"):
        value = rng.uniform(0.8, 1.2, shape)
    elif name.endswith(("bias", "beta")):
        value = rng.standard_normal(shape) * 0.05
    elif name.endswith(("weight", "alpha")):
        fan_in = int(np.prod(shape[1:])) if len(shape) > 1 else 1
        value = rng.standard_normal(shape) * np.sqrt(2.0 / max(fan_in, 1))
    else:
        raise ValueError(f"no rule for parameter {name!r} {shape}")
    return value.astype(np.float32)


def parameters(shapes: dict[str, Iterable[int]]) -> dict[str, np.ndarray]:
    """``{name: parameter(name, shape)}`` for every ``name -> shape`` given."""
    return {name: parameter(name, shape) for name, shape in shapes.items()}


def digest(values: dict[str, np.ndarray]) -> str:
    """SHA-256 over the names and float32 bytes in sorted name order: both venvs must agree."""
    h = hashlib.sha256()
    for name in sorted(values):
        h.update(name.encode("utf-8") + b"\0")
        h.update(np.ascontiguousarray(values[name], dtype="<f4").tobytes())
    return h.hexdigest()
