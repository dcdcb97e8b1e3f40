"""Fixtures of the flow tests: one Prefect test server for the session, small real data.

Prefect reads its settings when it is imported, so its home is pointed at a temporary
folder here, before any test module imports it.
"""

from __future__ import annotations

import os
import tempfile

os.environ.setdefault("PREFECT_HOME", tempfile.mkdtemp(prefix="framestream-prefect-"))

import numpy as np  # noqa: E402
import pytest  # noqa: E402

import framestream.flows  # noqa: E402, F401  (Prefect's environment defaults, before prefect)

ROWS = 600


@pytest.fixture(scope="session")
def prefect_server():
    """A Prefect test server (temporary SQLite) for the whole session, heartbeats off;
    yields its API URL (handed to the subprocess tests)."""
    from prefect.settings import (
        PREFECT_API_URL,
        PREFECT_FLOWS_HEARTBEAT_FREQUENCY,
        temporary_settings,
    )
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=60), \
            temporary_settings({PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
        yield PREFECT_API_URL.value()


@pytest.fixture(scope="session")
def session_home(tmp_path_factory):
    return tmp_path_factory.mktemp("session-home")


@pytest.fixture(scope="session")
def fmnist(session_home, tmp_path_factory) -> str:
    """The first 600 images of the Fashion-MNIST test set (``image``, ``label``), saved."""
    import framestream as fs

    old = os.environ.get("FRAMESTREAM_HOME")
    os.environ["FRAMESTREAM_HOME"] = str(session_home)
    try:
        frame = fs.datasets.fashion_mnist("test").head(ROWS)
        path = str(tmp_path_factory.mktemp("data") / "fmnist.sframe")
        frame.save(path)
    finally:
        if old is None:
            os.environ.pop("FRAMESTREAM_HOME", None)
        else:
            os.environ["FRAMESTREAM_HOME"] = old
    return path


@pytest.fixture(scope="session")
def checkpoint(fmnist, tmp_path_factory) -> str:
    """An MLP trained for one epoch on ``fmnist`` (pixels scaled to 0-1), saved as a
    checkpoint ``<dir>/mlp-0001`` with the input spec that ``train`` writes."""
    import framestream as fs
    from framestream import mx
    from framestream.flows._models import InputSpec
    from framestream.flows.config import InputConfig

    mx.random.seed(0)
    prefix = str(tmp_path_factory.mktemp("model") / "mlp")
    spec = InputSpec(("image",), InputConfig(scale=1 / 255))
    it = mx.io.SFrameImageIter(fs.SFrame(fmnist), data_field=["image"], label_field="label",
                               batch_size=50, label_name="softmax_label", scale=1 / 255)
    model = mx.model.FeedForward.create(mx.builtin_symbols.mlp.get_symbol(), X=it, num_epoch=1,
                                        learning_rate=0.5, initializer=mx.init.Xavier())
    model.save(prefix, 1)
    spec.save(prefix)
    return f"{prefix}-0001"


def params_of(checkpoint: str) -> dict[str, np.ndarray]:
    from framestream.nn.checkpoint import load_params

    arg, aux = load_params(f"{checkpoint}.params")
    return {k: v.asnumpy() for k, v in {**arg, **{f"aux:{n}": a for n, a in aux.items()}}.items()}
