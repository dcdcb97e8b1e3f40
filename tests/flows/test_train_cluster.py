"""train with ``cluster``: epochs trained data-parallel on an embedded 2-worker LocalCluster,
checkpoints written by rank 0; a worker lost mid-epoch is retried from the last checkpoint."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from framestream.errors import ClusterError
from framestream.flows.config import ClusterConfig
from framestream.flows.train import train
from framestream.nn.distributed import worker_rank
from tests.flows.conftest import params_of
from tests.flows.test_train import small_config

pytestmark = pytest.mark.usefixtures("prefect_server")

TWO_WORKERS = ClusterConfig(n_workers=2)


@pytest.fixture(scope="module")
def on_cluster(fmnist, tmp_path_factory) -> str:
    """2 epochs on 2 workers with batch 50 each (shuffled, mirrored at random)."""
    out = tmp_path_factory.mktemp("cluster")
    return train(small_config(fmnist, out, num_epoch=2, batch_size=50, cluster=TWO_WORKERS))


def test_two_workers_train_like_one_process_with_the_whole_batch(fmnist, tmp_path, on_cluster):
    out = os.path.dirname(on_cluster)
    assert on_cluster.endswith("mlp-0002")
    for epoch in (1, 2):
        assert os.path.exists(f"{out}/mlp-000{epoch}.params")
        assert os.path.exists(f"{out}/mlp-000{epoch}.states")
    single = train(small_config(fmnist, tmp_path, num_epoch=2, batch_size=100))
    a, b = params_of(single), params_of(on_cluster)
    assert sorted(a) == sorted(b)
    for name in a:  # the same arithmetic up to float summation order
        assert np.abs(b[name] - a[name]).max() <= 1e-5 * np.abs(a[name]).max(), name
    ours = json.loads(Path(out, "history.json").read_text())["epochs"]
    theirs = json.loads((tmp_path / "history.json").read_text())["epochs"]
    assert [e["epoch"] for e in ours] == [0, 1]
    for got, expected in zip(ours, theirs):
        assert got["train"]["accuracy"] == pytest.approx(expected["train"]["accuracy"], abs=0.01)


class ExitOnRank1:
    def __call__(self, param):
        if worker_rank() == (1, 2) and param.nbatch == 3:
            os._exit(1)


def test_a_worker_lost_in_epoch_2_is_retried_from_checkpoint_1(fmnist, tmp_path, monkeypatch,
                                                               on_cluster):
    from framestream.nn.model import FeedForward

    plain, attempts = FeedForward.fit, []

    def kill_once_in_epoch_2(self, *args, **kwargs):
        attempts.append(self.begin_epoch)
        if attempts == [0, 1]:
            kwargs["batch_end_callback"] = [*kwargs["batch_end_callback"], ExitOnRank1()]
            with pytest.raises(ClusterError, match="rank 1"):
                plain(self, *args, **kwargs)
            raise ClusterError("worker lost (re-raised by the test)")
        return plain(self, *args, **kwargs)

    monkeypatch.setattr(FeedForward, "fit", kill_once_in_epoch_2)
    resumed = train(small_config(fmnist, tmp_path, num_epoch=2, batch_size=50,
                                 cluster=TWO_WORKERS))
    assert attempts[:3] == [0, 1, 1] and set(attempts[2:]) == {1}  # epoch 2 again, from 0001
    a, b = params_of(on_cluster), params_of(resumed)
    for name in a:
        np.testing.assert_array_equal(b[name], a[name], err_msg=name)


def test_a_gpu_cluster_without_dask_cuda_is_an_error_not_a_cpu_run(fmnist, tmp_path):
    try:
        import dask_cuda  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("dask-cuda is installed here")
    with pytest.raises(ClusterError, match=r"cluster.gpu is true but dask-cuda is not installed"):
        train(small_config(fmnist, tmp_path, num_epoch=1, cluster=ClusterConfig(gpu=True)))
    assert not list(tmp_path.glob("*.params"))


def test_the_cluster_config_reads_from_yaml():
    from framestream.flows.config import TrainConfig, load_config

    name, cfg = load_config("flow: train\ndata: d.sframe\noutput: out\n"
                            "cluster: {address: 'tcp://10.0.0.1:8786', n_workers: 8}\n")
    assert name == "train" and isinstance(cfg, TrainConfig)
    assert cfg.cluster == ClusterConfig("tcp://10.0.0.1:8786", n_workers=8)
    assert load_config("flow: train\ndata: d\noutput: o\n")[1].cluster is None
