"""Helpers for the pretrained-model tests: a real HTTP server, model folders, hostile archives."""

from __future__ import annotations

import io
import json
import os
import shutil
import tarfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np

import framestream as fs
from tests.nn.conftest import MXNET_FIXTURES as FIX

DIGITS = [str(i) for i in range(10)]


class _Handler(SimpleHTTPRequestHandler):
    """Serves the folder; ``/short/<file>`` announces the full length but sends half."""

    def log_message(self, format: str, *args: Any) -> None:  # keep test output clean
        pass

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        if not self.path.startswith("/short/"):
            return super().do_GET()
        data = (Path(self.directory) / self.path[len("/short/"):]).read_bytes()
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data[: len(data) // 2])
        self.wfile.flush()
        self.close_connection = True
        return None


@contextmanager
def http_server(directory: Path) -> Iterator[str]:
    """A real HTTP server on 127.0.0.1 (a free port) serving ``directory``; yields its base URL."""

    def handler(*args: Any, **kwargs: Any) -> _Handler:
        return _Handler(*args, directory=str(directory), **kwargs)

    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, name="test-http", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def lenet_folder(dest: Path, prefix: str = "lenet_digits", name: str = "mnist_lenet",
                 **metadata: Any) -> Path:
    """Apache MXNet's LeNet checkpoint files, as they are, plus metadata.json and labels.json.

    The digits in ``digits28_val.npz`` are multiples of 1/16, so images of ``16 * X`` (uint8)
    with ``scale = 1/16`` give the network exactly ``X``.
    """
    dest.mkdir(parents=True)
    shutil.copyfile(FIX / f"{prefix}-symbol.json", dest / f"{prefix}-symbol.json")
    shutil.copyfile(FIX / f"{prefix}-0001.params", dest / f"{prefix}-0001.params")
    meta = {"name": name, "version": "1.0", "model_type": "IMAGE_CLASSIFIER",
            "input_shape": [28, 28, 1], "mean_rgb": [0, 0, 0], "scale": 1 / 16, "mean_nd": None}
    meta.update(metadata)
    (dest / "metadata.json").write_text(json.dumps(meta))
    (dest / "labels.json").write_text(json.dumps(DIGITS))
    return dest


def digit_images() -> tuple[fs.SArray, np.ndarray]:
    """The 297 validation digits as 28x28 grey images (16 * X), and X itself."""
    X = np.load(FIX / "digits28_val.npz")["X"]
    return fs.SArray([fs.Image((x[0] * 16).astype(np.uint8)) for x in X]), X


def pack_folder(folder: Path, out: Path, arcname: str | None = None) -> Path:
    """A .tar.gz of ``folder`` (top folder ``arcname``; '' puts the files at the root)."""
    with tarfile.open(out, "w:gz") as tar:
        for path in sorted(folder.iterdir()):
            tar.add(path, arcname=f"{arcname}/{path.name}" if arcname else path.name)
    return out


def hostile_archive(out: Path, folder: Path, member: tarfile.TarInfo,
                    data: bytes | None = None) -> Path:
    """A good model archive with one extra ``member`` added (a link, a device, '../x' ...)."""
    with tarfile.open(out, "w:gz") as tar:
        for path in sorted(folder.iterdir()):
            tar.add(path, arcname=f"m/{path.name}")
        tar.addfile(member, io.BytesIO(data) if data is not None else None)
    return out


def store_listing(location: Path) -> list[str]:
    """Everything in the store folder, hidden entries included."""
    return sorted(os.listdir(location)) if location.exists() else []


def topk_probabilities(top: fs.SFrame, rows: int, labels: list[Any]) -> np.ndarray:
    """The (rows, classes) score matrix rebuilt from predict_topk's rows."""
    df = top.to_dataframe()
    probs = np.full((rows, len(labels)), np.nan)
    index = {label: i for i, label in enumerate(labels)}
    probs[df["row_id"].to_numpy(), [index[v] for v in df["label"]]] = df["score"].to_numpy()
    return probs
