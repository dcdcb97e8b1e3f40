"""The model store: download over HTTP / file:// / paths, checksums, safe extraction, atomic
installs, listing, loading, removal, and every bad input the issue names.

The model used is Apache MXNet's own LeNet checkpoint (tests/nn/fixtures/mxnet), packaged
with metadata.json and labels.json; after each failure the store must list exactly what
it listed before, with no temporary entry left behind.
"""

from __future__ import annotations

import doctest
import hashlib
import json
import subprocess
import sys
import tarfile

import numpy as np
import pytest

from framestream import mx
from framestream.nn.pretrained import _archive, store
from tests.nn.conftest import MXNET_FIXTURES as FIX
from tests.nn.pretrained_support import (
    DIGITS,
    digit_images,
    hostile_archive,
    http_server,
    lenet_folder,
    pack_folder,
    store_listing,
    topk_probabilities,
)

pm = mx.pretrained_model


@pytest.fixture
def lenet(tmp_path):
    """(model folder, its .tar.gz, the archive's sha256), in a folder served over HTTP."""
    folder = lenet_folder(tmp_path / "src" / "mnist_lenet")
    pkg = pm.package_model(folder, tmp_path / "www" / "mnist_lenet-1.0.tar.gz")
    return folder, tmp_path / "www" / "mnist_lenet-1.0.tar.gz", pkg.sha256


@pytest.fixture
def location(home):
    return home / "models"


def sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def assert_store_unchanged(location, before):
    assert store_listing(location) == before, "a failed install left something in the store"


# ----------------------------------------------------------------------------- the happy path


@pytest.mark.parametrize("prefix", ["lenet_digits", "lenet_digits_legacy"])
def test_lenet_over_http_with_checksum_reproduces_mxnet(tmp_path, location, ctx, prefix):
    folder = lenet_folder(tmp_path / "src" / "mnist_lenet", prefix=prefix)
    pkg = pm.package_model(folder, tmp_path / "www" / "mnist_lenet-1.0.tar.gz")
    assert pkg.sha256 == sha256(tmp_path / "www" / "mnist_lenet-1.0.tar.gz")
    with http_server(tmp_path / "www") as url:
        entry = pm.download_model(f"{url}/mnist_lenet-1.0.tar.gz", sha256=pkg.sha256.upper())
    assert entry == pm.ModelEntry("mnist_lenet", "IMAGE_CLASSIFIER", "1.0")
    assert pm.list_models() == [entry]
    assert store_listing(location) == ["mnist_lenet"]
    assert str(location) == pm.DEFAULT_MODEL_LOCATION

    model = pm.load_model("mnist_lenet", ctx=ctx)
    assert isinstance(model, pm.ImageClassifier)
    assert (model.name, model.version, model.input_shape, model.labels) == (
        "mnist_lenet", "1.0", (28, 28, 1), DIGITS)
    images, X = digit_images()
    expected = np.load(FIX / "lenet_digits_expected.npz")
    top = model.predict_topk(images, k=10, batch_size=64)
    assert top.column_names() == ["row_id", "label", "score", "rank"]
    probs = topk_probabilities(top, len(X), DIGITS)
    np.testing.assert_allclose(probs, expected["probs"], rtol=1e-5, atol=1e-5)
    best = top[top["rank"] == 1]
    np.testing.assert_array_equal(best["label"].to_numpy().astype(int), expected["argmax"])
    features = np.stack([np.asarray(v) for v in model.extract_features(images, batch_size=100)])
    np.testing.assert_allclose(features, expected["tanh3_output"], rtol=1e-5, atol=1e-5)


def test_file_url_path_and_folder_sources(lenet, tmp_path, location):
    folder, archive, digest = lenet
    assert pm.download_model(archive.as_uri(), sha256=digest).name == "mnist_lenet"
    pm.remove_model("mnist_lenet")
    assert pm.list_models() == []
    assert pm.download_model(str(archive)).name == "mnist_lenet"
    other = tmp_path / "elsewhere"
    assert pm.download_model(folder, location=other).name == "mnist_lenet"
    assert [m.name for m in pm.list_models(other)] == ["mnist_lenet"]
    assert store_listing(location) == ["mnist_lenet"]


def test_archive_with_files_at_its_root_and_name_from_the_url(lenet, tmp_path, location):
    folder, _, _ = lenet
    meta = json.loads((folder / "metadata.json").read_text())
    del meta["name"]
    (folder / "metadata.json").write_text(json.dumps(meta))
    archive = pack_folder(folder, tmp_path / "www" / "digits_net-2.1.tar.gz", arcname="")
    with http_server(tmp_path / "www") as url:
        entry = pm.download_model(f"{url}/digits_net-2.1.tar.gz", sha256=sha256(archive))
    assert entry.name == "digits_net"  # GraphLab's rule: the file name up to the first '-'
    installed = json.loads((location / "digits_net" / "metadata.json").read_text())
    assert installed["name"] == "digits_net"
    assert pm.load_model("digits_net").name == "digits_net"


def test_overwrite_keeps_the_old_model_until_the_new_one_is_ready(lenet, tmp_path, location):
    folder, archive, digest = lenet
    pm.download_model(archive, sha256=digest)
    with pytest.raises(FileExistsError, match="already installed.*overwrite=True"):
        pm.download_model(archive)
    meta = json.loads((folder / "metadata.json").read_text())
    (folder / "metadata.json").write_text(json.dumps(dict(meta, version="2.0")))
    newer = pm.package_model(folder, tmp_path / "v2.tar.gz")
    before = store_listing(location)
    with pytest.raises(pm.ChecksumError):
        pm.download_model(newer.path, overwrite=True, sha256=digest)
    assert_store_unchanged(location, before)
    assert pm.list_models()[0].version == "1.0"
    assert pm.download_model(newer.path, overwrite=True, sha256=newer.sha256).version == "2.0"
    assert pm.list_models() == [pm.ModelEntry("mnist_lenet", "IMAGE_CLASSIFIER", "2.0")]
    assert store_listing(location) == ["mnist_lenet"]


def test_remove_model_and_unknown_names_list_the_installed_ones(lenet, location):
    _, archive, _ = lenet
    with pytest.raises(KeyError, match=r"'resnet' is not installed .*installed: none"):
        pm.load_model("resnet")
    pm.download_model(archive)
    listed = r"'resnet' is not installed .*installed: mnist_lenet"
    with pytest.raises(pm.ModelNotFoundError, match=listed):
        pm.load_model("resnet")
    for bad in ("..", "../mnist_lenet", ".hidden"):
        with pytest.raises(KeyError, match="installed: mnist_lenet"):
            pm.load_model(bad)
    pm.remove_model("mnist_lenet")
    assert store_listing(location) == []
    with pytest.raises(KeyError, match="installed: none"):
        pm.remove_model("mnist_lenet")


def test_progress_bar_when_asked(lenet, capsys):
    _, archive, _ = lenet
    pm.download_model(archive, progress=True)
    assert "mnist_lenet-1.0.tar.gz" in capsys.readouterr().err


def test_stale_temporary_entries_of_dead_processes_are_swept(lenet, location):
    _, archive, _ = lenet
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()
    location.mkdir(parents=True)
    (location / f".download-{dead}-abc").write_bytes(b"partial")
    (location / f".extract-{dead}-abc").mkdir()
    assert pm.list_models() == []
    pm.download_model(archive)
    assert store_listing(location) == ["mnist_lenet"]


@pytest.mark.parametrize("where", ["fetch", "extract", "check"])
def test_interrupted_install_leaves_the_old_model_and_nothing_else(lenet, location, where):
    _, archive, _ = lenet
    pm.download_model(archive)
    before = store_listing(location)
    real_fetch = _archive.fetch

    def interrupted(*args, **kwargs):
        if where == "fetch":
            real_fetch(*args, **kwargs)  # the whole file is there, then the user presses ^C
        raise KeyboardInterrupt

    target = {"fetch": (_archive, "fetch"), "extract": (_archive, "extract"),
              "check": (store, "load_arrays")}[where]
    with pytest.MonkeyPatch.context() as mp, pytest.raises(KeyboardInterrupt):
        mp.setattr(*target, interrupted)
        pm.download_model(archive, overwrite=True)
    assert_store_unchanged(location, before)
    assert pm.load_model("mnist_lenet").version == "1.0"


# ----------------------------------------------------------------------------- bad input


def test_wrong_checksum(lenet, tmp_path, location):
    _, archive, digest = lenet
    wrong = "0" * 64
    mismatch = f"SHA-256 mismatch: expected {wrong}, got {digest}"
    with http_server(archive.parent) as url, pytest.raises(pm.ChecksumError, match=mismatch):
        pm.download_model(f"{url}/{archive.name}", sha256=wrong)
    assert_store_unchanged(location, [])


def test_truncated_archive_names_the_url(lenet, tmp_path, location):
    _, archive, _ = lenet
    data = archive.read_bytes()
    for cut in (len(data) // 2, len(data) - 30, len(data) - 8, len(data) - 1, 100):
        (tmp_path / "www" / "cut.tar.gz").write_bytes(data[:cut])
        with http_server(tmp_path / "www") as url, pytest.raises(pm.ArchiveError) as err:
            pm.download_model(f"{url}/cut.tar.gz")
        named = f"{url}/cut.tar.gz: not a readable tar archive, or truncated or corrupt"
        assert named in str(err.value)
        assert_store_unchanged(location, [])
    (tmp_path / "www" / "junk.tar.gz").write_bytes(b"not an archive at all" * 10)
    with pytest.raises(pm.ArchiveError, match="junk.tar.gz: not a readable tar archive"):
        pm.download_model(tmp_path / "www" / "junk.tar.gz")
    assert_store_unchanged(location, [])


def test_interrupted_transfer_and_http_errors(lenet, location):
    _, archive, _ = lenet
    with http_server(archive.parent) as url:
        with pytest.raises(pm.DownloadError, match=f"{url}/short/{archive.name}: the transfer"):
            pm.download_model(f"{url}/short/{archive.name}")
        with pytest.raises(pm.DownloadError, match="HTTP 404"):
            pm.download_model(f"{url}/missing-1.0.tar.gz")
    with pytest.raises(pm.DownloadError, match="unsupported URL scheme 'ftp'"):
        pm.download_model("ftp://example.org/m.tar.gz")
    with pytest.raises(OSError, match="cannot open"):
        pm.download_model(archive.parent / "nothing.tar.gz")
    assert_store_unchanged(location, [])


def _member(name, kind, **attrs):
    info = tarfile.TarInfo(name)
    info.type = kind
    for key, value in attrs.items():
        setattr(info, key, value)
    return info


@pytest.mark.parametrize("member, data, message", [
    (_member("m/../../evil.txt", tarfile.REGTYPE, size=4), b"evil", r"points outside .*'\.\.'"),
    (_member("../evil.txt", tarfile.REGTYPE, size=4), b"evil", r"points outside"),
    (_member("/tmp/evil.txt", tarfile.REGTYPE, size=4), b"evil", "absolute path"),
    (_member("m/link", tarfile.SYMTYPE, linkname="/etc/passwd"), None, "is a symbolic link"),
    (_member("m/hard", tarfile.LNKTYPE, linkname="m/labels.json"), None, "is a hard link"),
    (_member("m/null", tarfile.CHRTYPE, devmajor=1, devminor=3), None, "is a device"),
    (_member("m/disk", tarfile.BLKTYPE, devmajor=8, devminor=0), None, "is a device"),
    (_member("m/pipe", tarfile.FIFOTYPE), None, "is a FIFO"),
    (_member("m/labels.json", tarfile.REGTYPE, size=2), b"[]", "appears twice"),
], ids=["dotdot-inside", "dotdot", "absolute", "symlink", "hardlink", "chardev", "blockdev",
        "fifo", "duplicate"])
def test_hostile_archives_are_refused(lenet, tmp_path, location, member, data, message):
    folder, _, _ = lenet
    archive = hostile_archive(tmp_path / "bad.tar.gz", folder, member, data)
    with pytest.raises(pm.ArchiveError, match=message):
        pm.download_model(archive, sha256=sha256(archive))
    assert_store_unchanged(location, [])
    assert not (tmp_path / "evil.txt").exists() and not (location.parent / "evil.txt").exists()


@pytest.mark.parametrize("missing, message", [
    ("metadata.json", "metadata.json is missing"),
    ("labels.json", "labels.json is missing"),
    ("lenet_digits-symbol.json", "the network file lenet_digits-symbol.json is missing"),
    ("lenet_digits-0001.params", r"the parameter file lenet_digits-<epoch>.params is missing"),
])
def test_model_folder_missing_a_file(lenet, tmp_path, location, missing, message):
    folder, _, _ = lenet
    (folder / missing).unlink()
    archive = pack_folder(folder, tmp_path / "incomplete-1.0.tar.gz", arcname="mnist_lenet")
    with pytest.raises(pm.InvalidModelError, match=message):
        pm.download_model(archive)
    assert_store_unchanged(location, [])
    with pytest.raises(pm.InvalidModelError, match=message):
        pm.package_model(folder, tmp_path / "again.tar.gz")
    assert not (tmp_path / "again.tar.gz").exists()


@pytest.mark.parametrize("change, message", [
    ({"model_type": "IMAGE_SEGMENTER"}, "model_type 'IMAGE_SEGMENTER' is not one of"),
    ({"input_shape": None}, "input_shape must be"),
    ({"input_shape": [28, 28]}, "input_shape must be"),
    ({"mean_rgb": [0, 0]}, "mean_rgb must be three numbers"),
    ({"scale": "1/255"}, "scale must be a positive number"),
    ({"name": "../../evil"}, "not a valid model name"),
    ({"mean_nd": "mean.nd"}, "the mean image mean.nd named by metadata.json is missing"),
    ({"data_name": "pixels"}, "data_name 'pixels' is not an input of the network"),
    ({"version": None, "scale": None}, "version must be a string or a number"),
])
def test_bad_metadata_is_refused_with_the_field(lenet, tmp_path, location, change, message):
    folder, _, _ = lenet
    meta = json.loads((folder / "metadata.json").read_text())
    (folder / "metadata.json").write_text(json.dumps(dict(meta, **change)))
    with pytest.raises(pm.InvalidModelError, match=message):
        pm.download_model(folder)
    assert_store_unchanged(location, [])


def test_missing_field_bad_labels_and_incomplete_parameters(lenet, tmp_path, location):
    folder, _, _ = lenet
    good_meta = (folder / "metadata.json").read_text()
    meta = json.loads(good_meta)
    del meta["scale"]
    (folder / "metadata.json").write_text(json.dumps(meta))
    with pytest.raises(pm.InvalidModelError, match=r"missing field\(s\) scale"):
        pm.download_model(folder)
    (folder / "metadata.json").write_text(good_meta)
    (folder / "labels.json").write_text("{not json")
    with pytest.raises(pm.InvalidModelError, match="labels.json: not valid JSON"):
        pm.download_model(folder)
    (folder / "labels.json").write_text(json.dumps(DIGITS[:9]))
    with pytest.raises(ValueError, match="10 outputs per image but there are 9 labels"):
        pm.download_model(folder)
    (folder / "labels.json").write_text(json.dumps(DIGITS))
    params = mx.nd.load(str(folder / "lenet_digits-0001.params"))
    del params["arg:fc2_weight"]
    mx.nd.save(str(folder / "lenet_digits-0001.params"), params)
    with pytest.raises(pm.InvalidModelError, match="no values for fc2_weight"):
        pm.download_model(folder)
    (folder / "lenet_digits-0001.params").write_bytes(b"\x00" * 40)
    with pytest.raises(pm.InvalidModelError, match="lenet_digits-0001.params: cannot read"):
        pm.download_model(folder)
    (folder / "lenet_digits-0002.params").write_bytes(b"")
    with pytest.raises(pm.InvalidModelError, match="2 parameter files"):
        pm.download_model(folder)
    assert_store_unchanged(location, [])


def test_archive_without_a_model_folder(tmp_path, location):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "readme.txt").write_text("hi")
    with tarfile.open(tmp_path / "x.tar.gz", "w:gz") as tar:
        for name in ("a", "b", "readme.txt"):
            tar.add(tmp_path / name, arcname=name)
    holds = "metadata.json is missing: the archive holds a, b"
    with pytest.raises(pm.InvalidModelError, match=holds):
        pm.download_model(tmp_path / "x.tar.gz")
    assert_store_unchanged(location, [])


def test_list_models_skips_unreadable_folders(lenet, location, caplog):
    _, archive, _ = lenet
    pm.download_model(archive)
    (location / "broken").mkdir()
    (location / "broken" / "metadata.json").write_text("{")
    assert [m.name for m in pm.list_models()] == ["mnist_lenet"]
    assert "broken" in caplog.text


def test_doctests():
    from framestream.nn import pretrained_model
    from framestream.nn.pretrained import _folder, classifier

    for module in (pretrained_model, store, classifier, _folder):
        assert doctest.testmod(module).failed == 0, module.__name__


def test_gluon_style_bare_parameter_names_and_a_query_string(lenet, tmp_path, location):
    """Gluon's save_parameters writes names without 'arg:'/'aux:'; URLs may carry a query."""
    folder, _, _ = lenet
    params = mx.nd.load(str(folder / "lenet_digits-0001.params"))
    mx.nd.save(str(folder / "lenet_digits-0001.params"),
               {k.split(":", 1)[1]: v for k, v in params.items()})
    archive = pack_folder(folder, tmp_path / "www" / "gluon_lenet-3.tar.gz", arcname="x")
    meta = json.loads((folder / "metadata.json").read_text())
    assert meta["name"] == "mnist_lenet"
    with http_server(tmp_path / "www") as url:
        entry = pm.download_model(f"{url}/gluon_lenet-3.tar.gz?token=a-b", sha256=sha256(archive))
    assert entry.name == "mnist_lenet"  # metadata's name wins over the file name
    images, _ = digit_images()
    expected = np.load(FIX / "lenet_digits_expected.npz")["argmax"]
    labels = pm.load_model("mnist_lenet").predict(images)
    np.testing.assert_array_equal(labels.to_numpy().astype(int), expected)


def test_save_model_checks_what_it_writes(tmp_path):
    symbol, arg, aux = mx.model.load_checkpoint(str(FIX / "lenet_digits"), 1)
    model = mx.model.FeedForward(symbol, arg_params=arg, aux_params=aux)
    with pytest.raises(pm.InvalidModelError, match="needs input_shape"):
        pm.save_model(tmp_path / "m", model, labels=DIGITS)
    with pytest.raises(pm.InvalidModelError, match="10 outputs per image but there are 2 labels"):
        pm.save_model(tmp_path / "m", model, labels=["a", "b"], input_shape=(28, 28, 1))
    with pytest.raises(pm.InvalidModelError, match="not a valid model name"):
        pm.save_model(tmp_path / "m", model, labels=DIGITS, input_shape=(28, 28, 1), name="a/b")
    assert sorted(p.name for p in tmp_path.iterdir()) == []
    saved = pm.save_model(tmp_path / "m", model, labels=DIGITS, input_shape=(28, 28, 1))
    assert sorted(p.name for p in saved.iterdir()) == [
        "labels.json", "m-0000.params", "m-symbol.json", "metadata.json"]
    with pytest.raises(FileExistsError):
        pm.save_model(tmp_path / "m", model, labels=DIGITS, input_shape=(28, 28, 1))
    again = pm.save_model(tmp_path / "m", model, labels=DIGITS, input_shape=(28, 28, 1),
                          version="2", overwrite=True)
    assert pm.load_path(again).version == "2"
