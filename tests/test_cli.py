"""The ``framestream`` command line, run as users run it: ``python -m framestream ...``.

Bad input must come back as one line on stderr naming the thing at fault, with exit
status 2, and never a traceback.
"""

from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
COMMANDS = [[], ["demo"], ["tour"], ["run"], ["score"], ["models"], ["models", "list"],
            ["models", "download"], ["models", "remove"], ["serve"]]


HELLO_FLOW = '''\
from prefect import flow


@flow(name="hello")
def hello(config: str) -> str:
    return config
'''

HELLO_DEPLOYMENTS = '''\
deployments:
  - name: nightly
    entrypoint: flows/hello.py:hello
    parameters: {config: deploy/configs/nightly.yaml}
    schedules: [{cron: "0 2 * * *", timezone: UTC, active: true}]
  - name: hourly
    entrypoint: flows/hello.py:hello
    parameters: {config: deploy/configs/hourly.yaml}
    schedules: [{cron: "0 * * * *", timezone: UTC}]
'''


@pytest.fixture(scope="module")
def prefect_home(tmp_path_factory) -> Path:
    """One PREFECT_HOME for the module: its SQLite database is migrated once (~10 s)."""
    return tmp_path_factory.mktemp("prefect-home")


@pytest.fixture
def env(home, prefect_home):
    """The environment of a command: our FRAMESTREAM_HOME and PREFECT_HOME, no server URL."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(FRAMESTREAM_HOME=str(home), PREFECT_HOME=str(prefect_home),
               PREFECT_SERVER_ANALYTICS_ENABLED="false")
    env.pop("FRAMESTREAM_SCHEDULER", None)
    return env


def framestream(*args: str, env: dict[str, str],
                timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "framestream", *args], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout)


def assert_one_line_error(result: subprocess.CompletedProcess, *names: str) -> str:
    """Exit status 2 and a single stderr line that mentions each of ``names``."""
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    for name in names:
        assert name in lines[0], (name, lines[0])
    return lines[0]


def checkpoint(folder: Path) -> None:
    """The files of a checkpoint ``folder/cnn`` (contents do not matter to the checks)."""
    (folder / "cnn-symbol.json").write_text("{}")
    (folder / "cnn-0001.params").write_bytes(b"")


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_help_for_every_command(env):
    procs = {" ".join(cmd): subprocess.Popen(
        [sys.executable, "-m", "framestream", *cmd, "--help"], env=env, cwd=ROOT,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for cmd in COMMANDS}
    for name, proc in procs.items():
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, (name, err)
        assert out.startswith(f"usage: framestream {name}".rstrip()), (name, out)
        assert err == "", (name, err)


def test_top_level_help_lists_commands(env):
    out = framestream("--help", env=env).stdout
    for command in ("demo", "tour", "run", "score", "models", "serve"):
        assert f"    {command}" in out, out


def test_no_command_is_a_usage_error(env):
    result = framestream(env=env)
    assert result.returncode == 2
    assert "usage: framestream" in result.stderr


def test_run_missing_config_file(env, tmp_path):
    missing = tmp_path / "nope.yaml"
    assert_one_line_error(framestream("run", str(missing), env=env), str(missing))


def test_run_config_with_unknown_key_names_the_key(env, tmp_path):
    if importlib.util.find_spec("framestream.flows.config") is None:
        pytest.skip("framestream.flows.config is not written yet (flows of issue 7)")
    bad = tmp_path / "bad.yaml"
    bad.write_text((ROOT / "deploy" / "configs" / "nightly.yaml").read_text()
                   + "epochz: 3\n")
    line = assert_one_line_error(framestream("run", str(bad), env=env), "epochz")
    assert line.startswith("framestream run: error: ")


def test_models_list_on_an_empty_store(env, home):
    result = framestream("models", "list", env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == (f"no models installed in {home / 'models'}; install one "
                                     "with `framestream models download URL`")


def test_models_download_list_remove(env, home, tmp_path):
    from framestream import mx
    from tests.nn.pretrained_support import lenet_folder

    package = mx.pretrained_model.package_model(lenet_folder(tmp_path / "lenet"),
                                                tmp_path / "mnist_lenet-1.0.tar.gz")
    result = framestream("models", "download", package.path, "--sha256", package.sha256,
                         env=env)
    assert result.returncode == 0, result.stderr
    assert "installed mnist_lenet (IMAGE_CLASSIFIER, version 1.0)" in result.stdout

    listing = framestream("models", "list", env=env).stdout.splitlines()
    assert listing[0].split() == ["NAME", "TYPE", "VERSION"]
    assert listing[1].split() == ["mnist_lenet", "IMAGE_CLASSIFIER", "1.0"]

    again = framestream("models", "download", package.path, env=env)
    assert_one_line_error(again, "mnist_lenet")

    assert framestream("models", "remove", "mnist_lenet", env=env).returncode == 0
    assert not (home / "models" / "mnist_lenet").exists()


def test_models_download_bad_checksum(env, tmp_path):
    from framestream import mx
    from tests.nn.pretrained_support import lenet_folder

    package = mx.pretrained_model.package_model(lenet_folder(tmp_path / "lenet"),
                                                tmp_path / "mnist_lenet-1.0.tar.gz")
    result = framestream("models", "download", package.path, "--sha256", "0" * 64, env=env)
    line = assert_one_line_error(result)
    assert line.startswith("framestream models download: error:")


def test_models_remove_not_installed(env):
    line = assert_one_line_error(framestream("models", "remove", "nope", env=env), "'nope'")
    assert line.startswith("framestream models remove: error:")


def test_score_model_not_installed(env, tmp_path):
    sf = tmp_path / "in.sframe"
    sf.mkdir()
    result = framestream("score", "--model", "imagenet1k_inception_bn", "--input", str(sf),
                         "--output", str(tmp_path / "out"), env=env)
    assert_one_line_error(result, "'imagenet1k_inception_bn' is neither a checkpoint",
                          "framestream models download")


def test_score_unreachable_scheduler(env, tmp_path):
    checkpoint(tmp_path)
    sf = tmp_path / "in.sframe"
    sf.mkdir()
    address = f"tcp://127.0.0.1:{closed_port()}"
    result = framestream("score", "--model", str(tmp_path / "cnn"), "--input", str(sf),
                         "--output", str(tmp_path / "out"), "--scheduler", address, env=env)
    assert_one_line_error(result, f"cannot reach the Dask scheduler at {address}")


def test_score_scheduler_from_environment(env, tmp_path):
    checkpoint(tmp_path)
    sf = tmp_path / "in.sframe"
    sf.mkdir()
    env["FRAMESTREAM_SCHEDULER"] = address = f"127.0.0.1:{closed_port()}"
    result = framestream("score", "--model", str(tmp_path / "cnn"), "--input", str(sf),
                         "--output", str(tmp_path / "out"), env=env)
    assert_one_line_error(result, f"tcp://{address}")


def test_score_bad_scheduler_address(env, tmp_path):
    checkpoint(tmp_path)
    sf = tmp_path / "in.sframe"
    sf.mkdir()
    result = framestream("score", "--model", str(tmp_path / "cnn"), "--input", str(sf),
                         "--output", str(tmp_path / "out"), "--scheduler", "ucx://h", env=env)
    assert_one_line_error(result, "'ucx://h' is not tcp://HOST:PORT")


def test_score_missing_input(env, tmp_path):
    checkpoint(tmp_path)
    result = framestream("score", "--model", str(tmp_path / "cnn"), "--input",
                         str(tmp_path / "missing.sframe"), "--output", str(tmp_path / "o"),
                         env=env)
    assert_one_line_error(result, "--input", "missing.sframe")


def test_serve_without_a_server_says_how_to_start_one(env):
    result = framestream("serve", env=env)
    assert result.returncode != 0
    assert result.returncode == 1
    assert "prefect server start" in result.stderr
    assert "PREFECT_API_URL=http://127.0.0.1:4200/api" in result.stderr
    assert "Traceback" not in result.stderr


def test_serve_with_a_server_that_does_not_answer(env):
    env["PREFECT_API_URL"] = f"http://127.0.0.1:{closed_port()}/api"
    assert_one_line_error(framestream("serve", env=env), env["PREFECT_API_URL"],
                          "prefect server start")


def hello_project(folder: Path) -> Path:
    """A project whose deploy/prefect.yaml has two scheduled deployments of a tiny flow."""
    (folder / "flows").mkdir()
    (folder / "flows" / "hello.py").write_text(HELLO_FLOW)
    (folder / "deploy").mkdir()
    (folder / "deploy" / "prefect.yaml").write_text(HELLO_DEPLOYMENTS)
    return folder / "deploy" / "prefect.yaml"


def test_serve_dry_run_needs_no_server(env, tmp_path):
    result = framestream("serve", "--dry-run", "--file", str(hello_project(tmp_path)), env=env)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "nightly: flows/hello.py:hello {'config': 'deploy/configs/nightly.yaml'}"
    assert lines[1].startswith("  cron '0 2 * * *' (UTC); next: ")
    assert lines[2] == "hourly: flows/hello.py:hello {'config': 'deploy/configs/hourly.yaml'}"
    assert lines[3].startswith("  cron '0 * * * *' (UTC); next: ")


def test_serve_dry_run_checks_parameters(env, tmp_path):
    prefect_yaml = hello_project(tmp_path)
    prefect_yaml.write_text(HELLO_DEPLOYMENTS.replace("{config: deploy/configs/hourly.yaml}",
                                                      "{config: [1, 2]}"))
    line = assert_one_line_error(framestream("serve", "--dry-run", "--file", str(prefect_yaml),
                                             env=env), "'hourly'", "do not fit")
    assert "flows/hello.py:hello" in line


def test_serve_dry_run_unknown_entrypoint(env, tmp_path):
    prefect_yaml = hello_project(tmp_path)
    prefect_yaml.write_text(HELLO_DEPLOYMENTS.replace("flows/hello.py:hello", "flows/nope.py:x"))
    assert_one_line_error(framestream("serve", "--dry-run", "--file", str(prefect_yaml), env=env),
                          "cannot load flows/nope.py:x")


def test_serve_bad_deployment_file_names_the_key(env, tmp_path):
    bad = tmp_path / "prefect.yaml"
    bad.write_text("deployments:\n  - name: x\n    entrypoint: flows/etl.py:etl_train\n")
    assert_one_line_error(framestream("serve", "--file", str(bad), env=env), "`schedules`")


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_serve_registers_deployments_with_their_schedules(env, tmp_path):
    """Against a real `prefect server start`: both deployments, their cron schedules and
    scheduled runs appear; SIGTERM stops serve. (A stand-in flow that takes a config path,
    so this checks serve itself whatever the real flows accept.)"""
    import signal
    import time

    import httpx

    prefect_yaml = hello_project(tmp_path)
    port = closed_port()
    api = f"http://127.0.0.1:{port}/api"
    server = subprocess.Popen(
        [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port",
         str(port)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True)
    serve = None
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                httpx.get(f"{api}/health", timeout=2).raise_for_status()
                break
            except httpx.HTTPError:
                assert time.monotonic() < deadline, "prefect server did not start in 120 s"
                time.sleep(1)
        serve = subprocess.Popen(
            [sys.executable, "-m", "framestream", "serve", "--file", str(prefect_yaml)],
            env={**env, "PREFECT_API_URL": api},
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            start_new_session=True)
        found: dict[str, list[str]] = {}
        deadline = time.monotonic() + 120
        while len(found) < 2:
            assert serve.poll() is None, serve.stdout.read()
            assert time.monotonic() < deadline, "deployments not registered in 120 s"
            time.sleep(1)
            rows = httpx.post(f"{api}/deployments/filter", json={}, timeout=10).json()
            found = {d["name"]: [s["schedule"]["cron"] for s in d["schedules"]] for d in rows}
        assert found == {"nightly": ["0 2 * * *"], "hourly": ["0 * * * *"]}
        runs: list[dict] = []
        while not runs:  # the server's scheduler service creates them on its next loop
            assert time.monotonic() < deadline + 60, "no scheduled runs in 60 s"
            time.sleep(1)
            runs = httpx.post(f"{api}/flow_runs/filter", json={"limit": 50}, timeout=10).json()
        assert {r["state_type"] for r in runs} == {"SCHEDULED"}
        os.killpg(serve.pid, signal.SIGTERM)
        assert serve.wait(timeout=60) is not None
    finally:
        for proc in (serve, server):
            if proc is not None and proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)


@pytest.mark.parametrize(("model", "address", "names"), [
    ("imagenet1k_inception_bn", None, ["'imagenet1k_inception_bn' is neither a checkpoint"]),
    ("mnist_lenet", "tcp://127.0.0.1:{port}", ["cannot reach the Dask scheduler",
                                               "tcp://127.0.0.1:{port}"]),
])
def test_run_bad_input_inside_the_flow_is_one_line(env, home, tmp_path, model, address, names):
    """Errors raised inside the flows (not caught by the command's own checks) come out as
    one line too: Prefect's tracebacks of them are kept off the console."""
    for module in ("score", "config", "runtime"):
        if importlib.util.find_spec(f"framestream.flows.{module}") is None:
            pytest.skip(f"framestream.flows.{module} is not written yet (flows of issue 7)")
    import yaml

    import framestream as fs
    from framestream import mx
    from tests.nn.pretrained_support import digit_images, lenet_folder

    mx.pretrained_model.download_model(str(lenet_folder(tmp_path / "lenet")))
    fs.SFrame({"image": digit_images()[0]}).save(tmp_path / "digits.sframe")
    port = closed_port()
    config = {"flow": "score", "model": model, "data": str(tmp_path / "digits.sframe"),
              "output": str(tmp_path / "scores.sframe")}
    if address:
        config["cluster"] = {"address": address.format(port=port), "timeout": 2}
    (tmp_path / "score.yaml").write_text(yaml.safe_dump(config))
    result = framestream("run", str(tmp_path / "score.yaml"), env=env, timeout=300)
    line = assert_one_line_error(result, *(name.format(port=port) for name in names))
    assert line.startswith("framestream run: error: ")


def test_serve_dry_run_checks_the_real_deployments(env):
    """deploy/prefect.yaml: every flow loads and takes its config file as its parameter."""
    for module in ("etl", "score"):
        if importlib.util.find_spec(f"framestream.flows.{module}") is None:
            pytest.skip(f"framestream.flows.{module} is not written yet (flows of issue 7)")
    result = framestream("serve", "--dry-run", env=env)
    assert result.returncode == 0, result.stderr
    assert "nightly-etl-train: flows/etl.py:etl_train" in result.stdout
    assert "cron '0 2 * * *' (UTC); next: " in result.stdout
    assert "hourly-score: flows/score.py:score" in result.stdout
    assert "cron '0 * * * *' (UTC); next: " in result.stdout
