"""Callbacks: Speedometer and log_train_metric logging, the tqdm ProgressBar,
do_checkpoint's MXNet files, and History's loss, records, JSON and PNG."""

from __future__ import annotations

import doctest
import io
import json
import logging
import math
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from framestream import mx
from framestream.nn import callback as callback_module
from framestream.nn.callback import BatchEndParam, batch_loss


def nd(x):
    return mx.nd.array(np.asarray(x, dtype=np.float32))


def filled_metric(value=1.0):
    metric = mx.metric.MAE()
    metric.update([nd([0.0])], [nd([value])])
    return metric


def test_doctests():
    assert doctest.testmod(callback_module).failed == 0


def test_speedometer_logs_then_resets(caplog, monkeypatch):
    clock = iter([100.0, 102.0, 104.0])
    monkeypatch.setattr(callback_module, "time", SimpleNamespace(time=lambda: next(clock)))
    speed = mx.callback.Speedometer(batch_size=10, frequent=2)
    metric = filled_metric(0.5)
    with caplog.at_level(logging.INFO, logger="framestream.nn"):
        for nbatch in (1, 2, 3):
            speed(BatchEndParam(epoch=3, nbatch=nbatch, eval_metric=metric, locals=None))
    (record,) = caplog.records
    assert record.name == "framestream.nn"
    assert record.getMessage() == "Epoch[3] Batch [2-2]\tSpeed: 5.00 samples/sec\tmae=0.500000"
    assert math.isnan(metric.get()[1])  # auto_reset


def test_speedometer_keeps_metric_without_auto_reset_and_logs_without_metric(caplog):
    keep = mx.callback.Speedometer(batch_size=4, frequent=1, auto_reset=False)
    metric = filled_metric()
    with caplog.at_level(logging.INFO, logger="framestream.nn"):
        keep(BatchEndParam(0, 1, metric, None))
        keep(BatchEndParam(0, 2, metric, None))
        bare = mx.callback.Speedometer(4, 1)
        bare(BatchEndParam(0, 1, None, None))
        bare(BatchEndParam(0, 2, None, None))
    messages = [r.getMessage() for r in caplog.records]
    assert messages[0].startswith("Epoch[0] Batch [1-2]\tSpeed:")
    assert messages[1].startswith("Iter[0] Batch [2]\tSpeed:")
    assert metric.get()[1] == 1.0


def test_log_train_metric(caplog):
    metric = filled_metric(2.0)
    cb = mx.callback.log_train_metric(period=2, auto_reset=True)
    with caplog.at_level(logging.INFO, logger="framestream.nn"):
        cb(BatchEndParam(1, 1, metric, None))
        cb(BatchEndParam(1, 2, metric, None))
    assert [r.getMessage() for r in caplog.records] == ["Iter[1] Batch[2] Train-mae=2.000000"]
    assert math.isnan(metric.get()[1])


def test_progress_bar_draws_with_tqdm_when_forced():
    stream = io.StringIO()
    bar = mx.callback.ProgressBar(total=4, length=60, file=stream, force=True)
    metric = filled_metric(0.25)
    for epoch in range(2):
        for nbatch in range(1, 5):
            bar(BatchEndParam(epoch, nbatch, metric, None))
    text = stream.getvalue()
    assert "Epoch 0" in text and "Epoch 1" in text
    assert "4/4" in text and "mae=0.25" in text
    assert bar._bar is None  # closed after the last batch


def test_progress_bar_is_silent_off_a_terminal():
    stream = io.StringIO()
    bar = mx.callback.ProgressBar(total=3, file=stream)
    for nbatch in range(1, 6):  # more batches than announced: no error, no output
        bar(BatchEndParam(0, nbatch, None, None))
    assert stream.getvalue() == ""


def test_do_checkpoint_writes_mxnet_files(tmp_path):
    data = mx.sym.Variable("data")
    net = mx.sym.FullyConnected(data=data, num_hidden=2, name="fc")
    arg = {"fc_weight": nd(np.arange(6).reshape(2, 3)), "fc_bias": nd([1, 2])}
    prefix = str(tmp_path / "model")
    save = mx.callback.do_checkpoint(prefix, period=2)
    assert (save.prefix, save.period) == (prefix, 2)
    for epoch in range(4):
        save(epoch, net, arg, {})
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "model-0002.params", "model-0004.params", "model-symbol.json"]
    sym, loaded, aux = mx.model.load_checkpoint(prefix, 4)
    assert sym.list_arguments() == ["data", "fc_weight", "fc_bias"] and aux == {}
    assert np.array_equal(loaded["fc_weight"].asnumpy(), arg["fc_weight"].asnumpy())
    mx.callback.do_checkpoint(prefix)(0, net, arg, {})
    assert (tmp_path / "model-0001.params").exists()


@pytest.mark.parametrize(("label", "pred", "expected"), [
    ([0, 2], [[0.5, 0.25, 0.25], [0.1, 0.1, 0.8]], -(math.log(0.5) + math.log(0.8))),
    ([[1.0], [3.0]], [[2.0], [3.0]], 1.0),  # regression: squared error per sample, summed
    ([1.0, 3.0], [[2.0], [5.0]], 5.0),
    ([[0.0, 1.0], [1.0, 0.0]], [[0.5, 0.5], [0.5, 0.5]], 0.5),  # one-hot labels: mse
], ids=["ce", "mse-column", "mse-1d-label", "one-hot"])
def test_batch_loss(label, pred, expected):
    total, count = batch_loss(nd(label), nd(pred))
    assert count == 2 and total == pytest.approx(expected, rel=1e-6)


def test_batch_loss_gives_up_on_incomparable_outputs():
    assert batch_loss(nd([0, 1]), nd([[2.0, -1.0], [0.5, 0.5]])) is None  # scores, not probs
    assert batch_loss(nd([0, 1, 1]), nd([[0.5], [0.5]])) is None


def test_history_records_epochs_json_and_png(tmp_path):
    history = mx.callback.History()
    probs = [[0.8, 0.2], [0.4, 0.6]]
    for epoch, scale in enumerate([1.0, 2.0, 4.0]):
        for nbatch in (1, 2):
            history(BatchEndParam(epoch, nbatch, None, {
                "labels": [nd([0, 1])],
                "preds": [nd(np.array(probs) ** scale / (np.array(probs) ** scale).sum(1)[:, None])],
            }))
        history.on_epoch_end(epoch, [("accuracy", 0.5 + 0.1 * epoch)],
                             {"accuracy": 0.4 + 0.1 * epoch} if epoch != 1 else None)
    assert [e["epoch"] for e in history.epochs] == [0, 1, 2]
    first = history.epochs[0]
    assert first["loss"] == pytest.approx(-(math.log(0.8) + math.log(0.6)) / 2)
    assert first["samples"] == 4 and first["time"] >= 0
    assert first["train"] == {"accuracy": 0.5} and first["eval"] == {"accuracy": 0.4}
    assert history.epochs[1]["eval"] == {}
    assert history.epochs[2]["loss"] < first["loss"]

    saved = json.loads(history.save_json(tmp_path / "history.json").read_text())
    assert saved == json.loads(json.dumps(history.to_dict()))
    assert saved["epochs"][2]["train"]["accuracy"] == pytest.approx(0.7)

    png = history.plot(tmp_path / "history.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert 2_000 < png.stat().st_size < 500_000
    with Image.open(png) as image:
        image.verify()
    with Image.open(png) as image:
        assert image.format == "PNG" and image.size == (760, 500)  # loss + accuracy panels
        colors = image.convert("RGB").getcolors(maxcolors=1 << 16)
        assert len(colors) > 10  # lines, text and grid, not a blank canvas
    assert sorted(p.name for p in tmp_path.iterdir()) == ["history.json", "history.png"]


def test_history_closes_epochs_the_loop_did_not_and_json_has_no_nan(tmp_path):
    history = mx.callback.History()
    history(BatchEndParam(0, 1, None, {"labels": [nd([1.0])], "preds": [nd([[3.0]])]}))
    history(BatchEndParam(1, 1, None, {"labels": [nd([1.0])], "preds": [nd([[1.0]])]}))
    history.on_epoch_end(1, {"mse": float("nan")}, None)
    history.on_epoch_end(0, None, {"mse": 2.0})  # late hook for an epoch already closed
    assert [(e["epoch"], e["loss"]) for e in history.epochs] == [(0, 4.0), (1, 0.0)]
    assert history.to_dict()["epochs"][1]["train"] == {"mse": None}
    history.save_json(tmp_path / "h.json")
    assert "NaN" not in (tmp_path / "h.json").read_text()
    history.plot(tmp_path / "h.png")
    with Image.open(tmp_path / "h.png") as image:
        assert image.size == (760, 500)


def test_history_plot_needs_an_epoch(tmp_path):
    with pytest.raises(ValueError, match="nothing to draw"):
        mx.callback.History().plot(tmp_path / "empty.png")
    assert list(tmp_path.iterdir()) == []
