"""Where flows run: Prefect's environment defaults, quiet settings, the Dask cluster."""

from __future__ import annotations

import os
import time

import pytest

from framestream.errors import ClusterError
from framestream.flows.config import ClusterConfig
from framestream.flows.runtime import dask_client, prefect_defaults, quiet_flow_settings

PREFECT_VARS = ("PREFECT_API_URL", "PREFECT_HOME", "PREFECT_SERVER_ANALYTICS_ENABLED",
                "PREFECT_LOGGING_LEVEL", "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS")


def test_prefect_defaults_without_a_server(monkeypatch, home):
    for name in PREFECT_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PREFECT_LOGGING_LEVEL", "DEBUG")  # what a user set is kept
    prefect_defaults()
    assert os.environ["PREFECT_HOME"] == str(home / "prefect") and (home / "prefect").is_dir()
    assert os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] == "false"
    assert os.environ["PREFECT_LOGGING_LEVEL"] == "DEBUG"
    assert os.environ["PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"] == "60"


def test_prefect_defaults_with_a_server_leave_its_home_alone(monkeypatch, home):
    for name in PREFECT_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:4200/api")
    prefect_defaults()
    assert "PREFECT_HOME" not in os.environ and not (home / "prefect").exists()


def test_quiet_flow_settings_turn_the_heartbeat_off():
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY

    with quiet_flow_settings():
        assert PREFECT_FLOWS_HEARTBEAT_FREQUENCY.value() is None


@pytest.mark.parametrize("address", ["tcp://127.0.0.1:9", "not an address"])
def test_an_unreachable_scheduler_is_named(address):
    started = time.monotonic()
    with pytest.raises(ClusterError, match=f"cannot reach the Dask scheduler at '{address}'"), \
            dask_client(ClusterConfig(address, timeout=1)):
        pass
    assert time.monotonic() - started < 10


def test_gpu_without_dask_cuda_falls_back_to_cpu_with_a_warning():
    try:
        import dask_cuda  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("dask-cuda is installed here; the fallback is for machines without it")
    with pytest.warns(RuntimeWarning, match="dask-cuda is not installed"), \
            dask_client(ClusterConfig(gpu=True, n_workers=1)) as client:
        assert client.submit(sum, [1, 2]).result() == 3
        assert len(client.scheduler_info()["workers"]) == 1
