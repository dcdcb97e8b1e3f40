"""train: one task per epoch with checkpoints; a SIGKILL in epoch 3 of 4 resumes exactly."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from framestream.errors import ConfigError
from framestream.flows.config import InputConfig, SourceNotFoundError, TrainConfig, to_dict
from framestream.flows.train import build_symbol, train
from tests.flows.conftest import params_of

pytestmark = pytest.mark.usefixtures("prefect_server")

# The child runs the flow from a config file; its History callback (a batch-end callback of
# every epoch) is patched to announce batch 2 of epoch 3 and then hang there, so the
# parent's SIGKILL lands mid-epoch deterministically.
CHILD = textwrap.dedent("""
    import os, sys, time
    from pathlib import Path
    from framestream.nn import callback

    config, marker = sys.argv[1], Path(sys.argv[2])
    plain = callback.History.__call__

    def hang_in_epoch_3(self, param):
        plain(self, param)
        if param.epoch == 2 and param.nbatch == 2:
            marker.write_text(str(os.getpid()))
            time.sleep(120)

    callback.History.__call__ = hang_in_epoch_3

    if __name__ == "__main__":
        from framestream.flows import run
        print(run(config))
""")


def same_blas_threads() -> dict[str, str]:
    """The child's BLAS must use as many threads as ours: float sums, and so the parameters'
    last bits, depend on it (and an in-process Dask LocalCluster leaves OMP_NUM_THREADS=1
    and friends in os.environ for the processes started after it)."""
    from threadpoolctl import threadpool_info

    threads = max((p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"),
                  default=1)
    return {name: str(threads) for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                                            "MKL_NUM_THREADS")}


def small_config(data: str, output: Path, **changes) -> TrainConfig:
    settings = {"data": data, "output": str(output), "network": "mlp", "num_epoch": 4,
                "batch_size": 50, "learning_rate": 0.2, "initializer": "xavier",
                "shuffle": True, "input": InputConfig(scale=1 / 255, random_mirror=True),
                "experiment": "mlp", **changes}
    return TrainConfig(**settings)


def test_sigkill_in_epoch_3_of_4_resumes_to_the_same_parameters(fmnist, tmp_path, prefect_server):
    uninterrupted = train(small_config(fmnist, tmp_path / "a"))
    assert uninterrupted.endswith("mlp-0004")

    crashed = tmp_path / "b"
    config = tmp_path / "train.yaml"
    config.write_text(json.dumps({"flow": "train", **to_dict(small_config(fmnist, crashed))}))
    (tmp_path / "child.py").write_text(CHILD)
    marker = tmp_path / "in-epoch-3"
    env = {**os.environ, "PREFECT_API_URL": prefect_server, **same_blas_threads()}
    child = subprocess.Popen([sys.executable, str(tmp_path / "child.py"), str(config), str(marker)],
                             env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        while not marker.exists():
            if child.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the child never reached epoch 3:\n{child.communicate()[0].decode()}")
            time.sleep(0.05)
        os.kill(child.pid, signal.SIGKILL)
        assert child.wait(30) == -signal.SIGKILL
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert (crashed / "mlp-0002.params").exists() and (crashed / "mlp-0002.states").exists()
    assert not (crashed / "mlp-0003.params").exists()
    first_epochs = [(crashed / f"mlp-000{e}.params").stat().st_mtime_ns for e in (1, 2)]

    resumed = train(small_config(fmnist, crashed))
    assert resumed == str(crashed / "mlp-0004")
    assert [(crashed / f"mlp-000{e}.params").stat().st_mtime_ns for e in (1, 2)] == first_epochs
    a, b = params_of(uninterrupted), params_of(resumed)
    assert sorted(a) == sorted(b)
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)
    history = json.loads((crashed / "history.json").read_text())["epochs"]
    assert [e["epoch"] for e in history] == [0, 1, 2, 3]
    assert (crashed / "training_curves.png").stat().st_size > 1000


def test_rerun_is_cached_and_a_longer_run_continues(fmnist, tmp_path):
    cfg = small_config(fmnist, tmp_path, num_epoch=2, eval_data=fmnist)
    first = train(cfg)
    stamp = Path(f"{first}.params").stat().st_mtime_ns
    assert train(cfg) == first and Path(f"{first}.params").stat().st_mtime_ns == stamp
    longer = train(small_config(fmnist, tmp_path, num_epoch=3, eval_data=fmnist))
    assert longer.endswith("mlp-0003") and Path(f"{first}.params").stat().st_mtime_ns == stamp
    history = json.loads((tmp_path / "history.json").read_text())["epochs"]
    assert len(history) == 3 and history[-1]["eval"]["accuracy"] > 0.25  # chance: 0.1
    spec = json.loads((tmp_path / "mlp-input.json").read_text())
    assert spec["data_field"] == ["image"] and spec["input"]["scale"] == pytest.approx(1 / 255)
    # the checkpoint files gone: the epoch is trained again instead of trusting the cache
    Path(f"{longer}.params").unlink()
    assert train(small_config(fmnist, tmp_path, num_epoch=3, eval_data=fmnist)) == longer
    assert Path(f"{longer}.params").exists()


def test_networks_from_a_json_file_and_a_python_factory(fmnist, tmp_path):
    from framestream import mx

    mx.builtin_symbols.mlp.get_symbol(num_classes=10).save(str(tmp_path / "net.json"))
    factory = tmp_path / "nets.py"
    factory.write_text("from framestream import mx\n\ndef tiny(classes=10):\n"
                       "    data = mx.sym.Flatten(mx.sym.Variable('data'))\n"
                       "    fc = mx.sym.FullyConnected(data, num_hidden=classes, name='fc')\n"
                       "    return mx.sym.SoftmaxOutput(fc, name='softmax')\n")
    json_net = small_config(fmnist, tmp_path / "j", network=str(tmp_path / "net.json"))
    assert json.loads(build_symbol.fn(json_net))["nodes"][-1]["name"] == "softmax"
    cfg = small_config(fmnist, tmp_path / "f", network=f"{factory}:tiny",
                       network_args={"classes": 10}, num_epoch=1)
    checkpoint = train(cfg)
    assert sorted(params_of(checkpoint)) == ["fc_bias", "fc_weight"]


@pytest.mark.parametrize(("network", "error", "words"), [
    ("resnet-9000", ConfigError, "network: unknown network 'resnet-9000'; builtin networks: "),
    ("missing.json", SourceNotFoundError, "network: no symbol file missing.json"),
    ("no_such_module:f", ConfigError, "network: cannot import 'no_such_module'"),
    ("json:no_such_function", ConfigError, "network: 'json' has no function 'no_such_function'"),
])
def test_bad_network_names_are_named(fmnist, tmp_path, network, error, words):
    with pytest.raises(error) as info:
        build_symbol.fn(small_config(fmnist, tmp_path, network=network))
    assert words in str(info.value)
    if network == "resnet-9000":
        assert "guide_cnn" in str(info.value) and "lenet" in str(info.value)


def test_an_unknown_optimizer_is_named_before_training(fmnist, tmp_path):
    with pytest.raises(ConfigError, match=r"optimizer: unknown optimizer 'adamw'; known: .*sgd"):
        train(small_config(fmnist, tmp_path, optimizer="adamw"))
    assert not list(tmp_path.glob("*.params"))


def test_data_that_is_not_a_saved_sframe_is_named(tmp_path):
    with pytest.raises(SourceNotFoundError, match=r"data: .*nothing.sframe is not a saved SFrame"):
        train(small_config(str(tmp_path / "nothing.sframe"), tmp_path / "out"))


def test_a_failed_epoch_is_retried(fmnist, tmp_path, monkeypatch):
    import framestream.flows.train as train_module

    calls = []
    plain = train_module._iterators

    def flaky(config, symbol):
        calls.append(1)
        if len(calls) == 2:  # the second epoch's first attempt
            raise OSError("disk hiccup")
        return plain(config, symbol)

    monkeypatch.setattr(train_module, "_iterators", flaky)
    assert train(small_config(fmnist, tmp_path, num_epoch=2)).endswith("mlp-0002")
    assert len(calls) == 3
