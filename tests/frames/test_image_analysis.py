"""``fs.image_analysis``: loading folders, globs and URLs of images, and the lazy, seeded
transforms, checked against Pillow / NumPy."""

from __future__ import annotations

import functools
import http.server
import io
import re
import shutil
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import sklearn
from PIL import Image as PILImage

import framestream as fs
from framestream import image_analysis as ia
from framestream.errors import FramestreamError, SchemaError
from framestream.frames.image import ImageError

PHOTOS = Path(sklearn.__file__).parent / "datasets" / "images"
BILINEAR = PILImage.Resampling.BILINEAR
MODES = {1: "L", 3: "RGB", 4: "RGBA"}


def _pixels(h: int, w: int, c: int | None = 3, seed: int = 0) -> np.ndarray:
    shape = (h, w) if c is None else (h, w, c)
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def _png(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    PILImage.fromarray(a).save(buf, format="PNG")
    return buf.getvalue()


def _pil(img: fs.Image) -> PILImage.Image:
    """The oracle's view of an image: Pillow decoding its bytes, or its raw pixels."""
    if img.format == "RAW":
        p = img.pixels()
        return PILImage.fromarray(p[:, :, 0] if img.channels == 1 else p)
    with io.BytesIO(img._data) as buf, PILImage.open(buf) as pil:
        pil.load()
        return pil.convert(MODES[img.channels])


def _hwc(pil: PILImage.Image) -> np.ndarray:
    a = np.asarray(pil)
    return a[:, :, None] if a.ndim == 2 else a


def _saved(img: fs.Image, path: Path) -> bytes:
    img.save(path)
    return path.read_bytes()


def _frame_in_chunks(images: list, size: int) -> fs.SFrame:
    """One image column built from several SFrames appended together: one chunk each."""
    parts = [fs.SFrame({"image": fs.SArray(images[i : i + size], dtype=fs.Image)})
             for i in range(0, len(images), size)]
    sf = parts[0]
    for part in parts[1:]:
        sf = sf.append(part)
    return sf


def _all_pixels(sa: fs.SArray) -> list[np.ndarray | None]:
    return [None if v is None else v.pixels() for v in sa.to_list()]


def _position_image(h: int, w: int, tag: int) -> np.ndarray:
    """An RGB image whose red is the row, green the column and blue a tag."""
    a = np.zeros((h, w, 3), dtype=np.uint8)
    a[:, :, 0] = np.arange(h)[:, None]
    a[:, :, 1] = np.arange(w)[None, :]
    a[:, :, 2] = tag
    return a


@functools.cache
def _digits() -> tuple[np.ndarray, ...]:
    """The first three of ``fs.datasets.digits()`` as 8x8 grey pixels."""
    return tuple(d.pixel_data for d in fs.datasets.digits()["image"].head(3).to_list())


# ---------------------------------------------------------------------------------- fixtures


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A tree of real photos and PNGs, plus files that are not images."""
    root = tmp_path / "photos"
    (root / "digits").mkdir(parents=True)
    (root / "sub" / "deeper").mkdir(parents=True)
    shutil.copy(PHOTOS / "china.jpg", root / "china.jpg")
    shutil.copy(PHOTOS / "flower.jpg", root / "sub" / "flower.JPEG")
    PILImage.fromarray(_pixels(20, 30, seed=1)).save(root / "a.png")
    for i, d in enumerate(_digits()):
        PILImage.fromarray(d).save(root / "digits" / f"d{i}.png")
    PILImage.fromarray(_pixels(12, 10, 4, seed=2)).save(root / "sub" / "deeper" / "rgba.png")
    (root / "notes.txt").write_text("not an image")
    (root / ".hidden.png").write_bytes(b"hidden junk: never listed")
    return root


ALL = ["a.png", "china.jpg", "digits/d0.png", "digits/d1.png", "digits/d2.png", "sub/deeper/rgba.png",
       "sub/flower.JPEG"]


def _rel(sf: fs.SFrame, root: Path) -> list[str]:
    return [str(Path(p).relative_to(root)) for p in sf["path"].to_list()]


@pytest.fixture
def http_root(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    root = tmp_path / "www"
    root.mkdir()

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", root
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture
def photos() -> fs.SArray:
    return ia.load_images(str(PHOTOS), recursive=False)["image"]


# ---------------------------------------------------------------------------------- load_images


def test_a_folder_is_searched_recursively_in_sorted_order(folder: Path) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        sf = ia.load_images(str(folder))
    assert not [w for w in caught if issubclass(w.category, UserWarning)]  # .hidden.png is not read
    assert sf.column_names() == ["path", "image"]
    assert sf.column_types() == [str, fs.Image]
    assert _rel(sf, folder) == ALL
    images = sf["image"].to_list()
    shapes = [(i.width, i.height, i.channels, i.format) for i in images]
    assert shapes == [(30, 20, 3, "PNG"), (640, 427, 3, "JPEG"), (8, 8, 1, "PNG"), (8, 8, 1, "PNG"),
                      (8, 8, 1, "PNG"), (10, 12, 4, "PNG"), (640, 427, 3, "JPEG")]


def test_loaded_bytes_are_kept_as_they_are(folder: Path, tmp_path: Path) -> None:
    sf = ia.load_images(str(folder))
    images = dict(zip(_rel(sf, folder), sf["image"].to_list()))
    for name in ALL:
        suffix = Path(name).suffix.lower()
        assert _saved(images[name], tmp_path / f"out{suffix}") == (folder / name).read_bytes(), name
    np.testing.assert_array_equal(images["a.png"].pixel_data, _pixels(20, 30, seed=1))
    np.testing.assert_array_equal(images["digits/d1.png"].pixel_data, _digits()[1])


def test_saved_and_reopened_loaded_frames_keep_the_bytes(folder: Path, tmp_path: Path) -> None:
    ia.load_images(str(folder)).save(tmp_path / "saved")
    back = fs.load_sframe(str(tmp_path / "saved"))
    for path, img in zip(back["path"].to_list(), back["image"].to_list()):
        suffix = Path(path).suffix.lower()
        assert _saved(img, tmp_path / f"check{suffix}") == Path(path).read_bytes()


def test_non_recursive_reads_only_the_folder_itself(folder: Path) -> None:
    assert _rel(ia.load_images(str(folder), recursive=False), folder) == ["a.png", "china.jpg"]


@pytest.mark.parametrize("pattern, expected", [
    ("*.png", ["a.png"]),
    ("**/*.png", ["a.png", "digits/d0.png", "digits/d1.png", "digits/d2.png", "sub/deeper/rgba.png"]),
    ("digits/d[02].png", ["digits/d0.png", "digits/d2.png"]),
    ("sub/*", ["sub/flower.JPEG"]),
    ("nothing*.png", []),
])
def test_globs(folder: Path, pattern: str, expected: list[str]) -> None:
    sf = ia.load_images(str(folder / pattern))
    assert _rel(sf, folder) == expected
    assert len(sf) == len(expected)


@pytest.mark.parametrize("fmt, expected", [
    ("PNG", ["a.png", "digits/d0.png", "digits/d1.png", "digits/d2.png", "sub/deeper/rgba.png"]),
    ("png", ["a.png", "digits/d0.png", "digits/d1.png", "digits/d2.png", "sub/deeper/rgba.png"]),
    ("JPG", ["china.jpg", "sub/flower.JPEG"]),
    ("jpeg", ["china.jpg", "sub/flower.JPEG"]),
    ("auto", ALL),
])
def test_format_selects_files(folder: Path, fmt: str, expected: list[str]) -> None:
    sf = ia.load_images(str(folder), format=fmt)
    assert _rel(sf, folder) == expected
    if fmt != "auto":
        assert {i.format for i in sf["image"].to_list()} == {"PNG" if fmt.upper() == "PNG" else "JPEG"}


def test_an_unknown_format_is_refused(folder: Path) -> None:
    with pytest.raises(ImageError, match=r"format must be 'auto', 'JPG' or 'PNG', not 'GIF'"):
        ia.load_images(str(folder), format="GIF")


def test_a_jpeg_named_png_is_a_failure_with_format_png(folder: Path) -> None:
    shutil.copy(PHOTOS / "china.jpg", folder / "fake.png")
    with pytest.raises(ImageError, match=rf"^{re.escape(str(folder / 'fake.png'))}: asked for format PNG but the bytes are JPEG"):
        ia.load_images(str(folder), format="PNG", ignore_failure=False)


def test_a_single_file_and_a_path_object(folder: Path) -> None:
    sf = ia.load_images(folder / "china.jpg")
    assert sf["path"].to_list() == [str(folder / "china.jpg")]
    assert sf["image"][0].format == "JPEG"


def test_with_path_false_gives_only_the_image_column(folder: Path) -> None:
    sf = ia.load_images(str(folder), with_path=False)
    assert sf.column_names() == ["image"] and len(sf) == len(ALL)
    assert sf["image"][1].width == 640  # still sorted: china.jpg second


def test_random_order_is_a_seeded_permutation(folder: Path) -> None:
    first = ia.load_images(str(folder), random_order=True, seed=7)
    again = ia.load_images(str(folder), random_order=True, seed=7)
    other = ia.load_images(str(folder), random_order=True, seed=8)
    order = _rel(first, folder)
    assert order == _rel(again, folder)
    assert sorted(order) == ALL and order != ALL
    assert _rel(other, folder) != order
    # the images follow their paths
    for path, img in zip(first["path"].to_list(), first["image"].to_list()):
        assert img == fs.Image(path)


def test_an_empty_folder_gives_an_empty_frame(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    sf = ia.load_images(str(tmp_path / "empty"))
    assert len(sf) == 0 and sf.column_names() == ["path", "image"]


def test_a_missing_folder_is_an_error_naming_it(tmp_path: Path) -> None:
    with pytest.raises(FramestreamError, match=rf"{re.escape(str(tmp_path / 'missing'))}: no such file or folder"):
        ia.load_images(str(tmp_path / "missing"))


BAD_KINDS = ["corrupt", "truncated jpeg", "truncated png", "dangling link"]


def _add_bad_files(folder: Path, kinds: list[str] = BAD_KINDS) -> dict[str, Path]:
    """Files among the good ones that cannot be read: garbage, cut files, a dangling link."""
    jpeg = (PHOTOS / "china.jpg").read_bytes()
    png = _png(_pixels(40, 40, seed=5))
    paths = {"corrupt": folder / "corrupt.png", "truncated jpeg": folder / "digits" / "cut.jpg",
             "truncated png": folder / "sub" / "cut.png", "dangling link": folder / "link.jpg"}
    writers = {
        "corrupt": lambda p: p.write_bytes(b"this is not a png"),
        "truncated jpeg": lambda p: p.write_bytes(jpeg[: len(jpeg) // 2]),
        "truncated png": lambda p: p.write_bytes(png[:-12]),
        "dangling link": lambda p: p.symlink_to(folder / "gone.jpg"),
    }
    for kind in kinds:
        writers[kind](paths[kind])
    return {kind: paths[kind] for kind in kinds}


def test_ignore_failure_skips_bad_files_with_a_warning_naming_them(folder: Path) -> None:
    bad = _add_bad_files(folder)
    with pytest.warns(UserWarning, match=r"load_images skipped 4 unreadable images") as record:
        sf = ia.load_images(str(folder))
    assert _rel(sf, folder) == ALL
    message = str(record[0].message)
    for path in bad.values():
        assert str(path) in message
    assert "truncated JPEG" in message and "truncated PNG" in message
    assert record[0].filename == __file__  # the warning points at the caller


def test_more_than_five_failures_are_summarised(folder: Path) -> None:
    for i in range(8):
        (folder / f"bad{i}.png").write_bytes(b"x" * (i + 1))
    with pytest.warns(UserWarning, match=r"skipped 8 unreadable images: .*bad0.png.* and 3 more"):
        sf = ia.load_images(str(folder))
    assert len(sf) == len(ALL)


@pytest.mark.parametrize("kind", BAD_KINDS)
def test_without_ignore_failure_a_bad_file_raises_naming_it(folder: Path, kind: str) -> None:
    path = _add_bad_files(folder, [kind])[kind]
    with pytest.raises(ImageError) as info:
        ia.load_images(str(folder), ignore_failure=False)
    message = str(info.value)
    assert message.startswith(f"{path}: ")
    expected = {"corrupt": "not a readable", "truncated jpeg": "truncated JPEG",
                "truncated png": "truncated PNG", "dangling link": "cannot read"}[kind]
    assert expected in message


def test_without_ignore_failure_the_first_bad_file_in_order_raises(folder: Path) -> None:
    bad = _add_bad_files(folder)
    with pytest.raises(ImageError, match=rf"^{re.escape(str(bad['corrupt']))}: "):  # corrupt.png sorts first
        ia.load_images(str(folder), ignore_failure=False)


def test_a_failed_load_leaves_no_frame_behind(folder: Path, home: Path) -> None:
    (folder / "bad.png").write_bytes(b"junk")
    with pytest.raises(ImageError):
        ia.load_images(str(folder), ignore_failure=False)
    cache = home / "cache" / "frames"
    assert not cache.exists() or not [p for p in cache.iterdir()]


def test_non_recursive_ignores_sub_folders_named_like_images(folder: Path) -> None:
    (folder / "album.png").mkdir()
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        sf = ia.load_images(str(folder), recursive=False)
    assert _rel(sf, folder) == ["a.png", "china.jpg"]


def test_many_files_cross_batch_and_chunk_boundaries(tmp_path: Path) -> None:
    root = tmp_path / "many"
    root.mkdir()
    arrays = [_position_image(6, 7, i % 256) for i in range(300)]
    for i, a in enumerate(arrays):
        PILImage.fromarray(a).save(root / f"img{i:04d}.png", compress_level=0)
    sf = ia.load_images(str(root))
    assert len(sf) == 300 and sf["image"]._num_blocks() >= 2
    got = sf["image"].to_list()
    assert all(np.array_equal(g.pixels(), a) for g, a in zip(got, arrays))
    # seeded crops do not depend on how the rows are chunked
    one_chunk = fs.SArray([fs.Image(a) for a in arrays])
    assert one_chunk._num_blocks() == 1
    crops = _all_pixels(ia.random_crop(sf["image"], 3, 4, seed=11))
    same = _all_pixels(ia.random_crop(one_chunk, 3, 4, seed=11))
    assert all(np.array_equal(x, y) for x, y in zip(crops, same))


def test_a_url_from_a_local_http_server(http_root) -> None:
    url, root = http_root
    shutil.copy(PHOTOS / "china.jpg", root / "china.jpg")
    sf = ia.load_images(f"{url}/china.jpg")
    assert sf["path"].to_list() == [f"{url}/china.jpg"]
    img = sf["image"][0]
    assert (img.width, img.height, img.format) == (640, 427, "JPEG")
    assert img.size == (PHOTOS / "china.jpg").stat().st_size
    assert img == fs.Image(PHOTOS / "china.jpg")


def test_a_folder_url_is_listed_recursively(http_root) -> None:
    url, root = http_root
    (root / "sub").mkdir()
    PILImage.fromarray(_pixels(5, 6, seed=3)).save(root / "a.png")
    PILImage.fromarray(_pixels(7, 8, seed=4)).save(root / "sub" / "b.png")
    (root / "sub" / "c.txt").write_text("skip")
    sf = ia.load_images(f"{url}/")
    assert sf["path"].to_list() == [f"{url}/a.png", f"{url}/sub/b.png"]
    np.testing.assert_array_equal(sf["image"][1].pixels(), _pixels(7, 8, seed=4))


def test_a_missing_url_is_an_error_naming_it(http_root) -> None:
    url, _ = http_root
    with pytest.raises(FramestreamError, match=rf"{re.escape(str(url))}/missing.jpg: no such file or folder"):
        ia.load_images(f"{url}/missing.jpg")


def test_a_corrupt_file_over_http_is_skipped_with_its_url(http_root) -> None:
    url, root = http_root
    PILImage.fromarray(_pixels(5, 6)).save(root / "ok.png")
    (root / "bad.png").write_bytes(b"nope")
    with pytest.warns(UserWarning, match=rf"skipped 1 unreadable images: {re.escape(str(url))}/bad.png"):
        sf = ia.load_images(f"{url}/")
    assert sf["path"].to_list() == [f"{url}/ok.png"]


# ---------------------------------------------------------------------------------- resize


def _sample_column() -> tuple[fs.SArray, list[fs.Image | None]]:
    """JPEG photo, PNG RGB, PNG grey, RAW RGBA, RAW grey and a missing value."""
    images = [
        fs.Image(PHOTOS / "flower.jpg"),
        fs.Image(_png(_pixels(30, 40, seed=1))),
        fs.Image(_png(_pixels(25, 20, None, seed=2))),
        fs.Image(_pixels(16, 18, 4, seed=3)),
        None,
        fs.Image(_pixels(9, 11, None, seed=4)),
    ]
    return fs.SArray(images), images


def test_resize_decoded_equals_pillow_bilinear() -> None:
    sa, images = _sample_column()
    out = ia.resize(sa, 13, 9, decode=True).to_list()
    assert out[4] is None
    for src, got in zip(images, out):
        if src is None:
            continue
        assert (got.width, got.height, got.channels, got.format) == (13, 9, src.channels, "RAW")
        np.testing.assert_array_equal(got.pixels(), _hwc(_pil(src).resize((13, 9), BILINEAR)))


def test_resize_without_decode_keeps_the_source_format() -> None:
    sa, images = _sample_column()
    out = ia.resize(sa, 13, 9).to_list()
    assert [None if o is None else o.format for o in out] == ["JPEG", "PNG", "PNG", "RAW", None, "RAW"]
    for src, got in zip(images, out):
        if src is None:
            continue
        assert (got.width, got.height, got.channels) == (13, 9, src.channels)
        expected = _hwc(_pil(src).resize((13, 9), BILINEAR))
        if got.format == "JPEG":  # lossy: close, not equal
            assert np.abs(got.pixels().astype(int) - expected).mean() < 8
        else:
            np.testing.assert_array_equal(got.pixels(), expected)


def test_resize_of_a_loaded_photo_column(photos: fs.SArray) -> None:
    out = ia.resize(photos, 64, 48, decode=True)
    for name, got in zip(["china.jpg", "flower.jpg"], out.to_list()):
        with PILImage.open(PHOTOS / name) as pil:
            np.testing.assert_array_equal(got.pixels(), np.asarray(pil.resize((64, 48), BILINEAR)))


@pytest.mark.parametrize("decode, fmt", [(False, "JPEG"), (True, "RAW")])
def test_an_image_in_gives_an_image_out(decode: bool, fmt: str) -> None:
    src = fs.Image(PHOTOS / "china.jpg")
    out = ia.resize(src, 32, 20, decode=decode)
    assert isinstance(out, fs.Image)
    assert (out.width, out.height, out.channels, out.format) == (32, 20, 3, fmt)
    raw = fs.Image(_pixels(10, 10))
    out = ia.resize(raw, 5, 5, decode=decode)
    assert isinstance(out, fs.Image) and out.format == "RAW"
    np.testing.assert_array_equal(out.pixels(), np.asarray(raw.to_pil().resize((5, 5), BILINEAR)))


@pytest.mark.parametrize("channels", [1, 3, 4])
def test_resize_with_channels_equals_pillow_resize_then_convert(channels: int) -> None:
    srcs = [fs.Image(_png(_pixels(30, 40, seed=1))), fs.Image(_pixels(16, 18, 4, seed=3)),
            fs.Image(_pixels(9, 11, None, seed=4))]
    out = ia.resize(fs.SArray(srcs), 12, 10, channels=channels, decode=True).to_list()
    for src, got in zip(srcs, out):
        expected = _hwc(_pil(src).resize((12, 10), BILINEAR).convert(MODES[channels]))
        assert got.channels == channels
        np.testing.assert_array_equal(got.pixels(), expected)


def test_resize_to_grey_keeps_a_jpeg_a_jpeg(photos: fs.SArray) -> None:
    out = ia.resize(photos, 32, 32, channels=1).to_list()
    assert [(o.channels, o.format) for o in out] == [(1, "JPEG"), (1, "JPEG")]
    assert out[0].pixel_data.shape == (32, 32)


def test_resize_a_jpeg_to_four_channels_without_decode(photos: fs.SArray) -> None:
    out = ia.resize(photos, 16, 16, channels=4).to_list()
    assert [(o.width, o.height, o.channels) for o in out] == [(16, 16, 4), (16, 16, 4)]


@pytest.mark.parametrize("name, method", [("nearest", PILImage.Resampling.NEAREST),
                                          ("bicubic", PILImage.Resampling.BICUBIC),
                                          ("lanczos", PILImage.Resampling.LANCZOS)])
def test_other_resampling_methods(name: str, method) -> None:
    a = _pixels(20, 24, seed=6)
    got = ia.resize(fs.Image(a), 7, 9, decode=True, resample=name)
    np.testing.assert_array_equal(got.pixels(), np.asarray(PILImage.fromarray(a).resize((7, 9), method)))


def test_resize_to_the_same_size_keeps_the_pixels() -> None:
    a = _pixels(8, 9, seed=8)
    np.testing.assert_array_equal(ia.resize(fs.Image(a), 9, 8, decode=True).pixels(), a)


def test_resize_argument_errors() -> None:
    sa, _ = _sample_column()
    with pytest.raises(SchemaError, match=r"resample must be one of .*not 'cubic'"):
        ia.resize(sa, 4, 4, resample="cubic")
    with pytest.raises(SchemaError, match=r"channels must be 1, 3 or 4, not 2"):
        ia.resize(sa, 4, 4, channels=2, decode=True).to_list()


# ---------------------------------------------------------------------------------- crops and flips


def test_center_crop_equals_the_central_region() -> None:
    sa, images = _sample_column()
    out = ia.center_crop(sa, 6, 5).to_list()
    assert out[4] is None
    for src, got in zip(images, out):
        if src is None:
            continue
        p = src.pixels()
        top, left = (p.shape[0] - 5) // 2, (p.shape[1] - 6) // 2
        assert (got.width, got.height, got.channels, got.format) == (6, 5, src.channels, "RAW")
        np.testing.assert_array_equal(got.pixels(), p[top : top + 5, left : left + 6])
        box = (left, top, left + 6, top + 5)
        np.testing.assert_array_equal(got.pixels(), _hwc(_pil(src).crop(box)))


def test_center_crop_of_the_whole_image_is_the_image() -> None:
    a = _pixels(7, 9)
    np.testing.assert_array_equal(ia.center_crop(fs.Image(a), 9, 7)[0].pixels(), a)


@pytest.mark.parametrize("crop", [
    lambda sa: ia.center_crop(sa, 25, 10),
    lambda sa: ia.center_crop(sa, 10, 35),
    lambda sa: ia.random_crop(sa, 25, 25, seed=1),
], ids=["center-wide", "center-tall", "random"])
def test_cropping_more_than_the_image_is_a_schema_error(crop) -> None:
    sa = fs.SArray([fs.Image(_pixels(40, 40)), fs.Image(_pixels(30, 20))])
    with pytest.raises(SchemaError, match=r"cannot crop \d+x\d+ out of a 20x30 image; resize it first"):
        crop(sa).to_list()


def test_a_crop_error_names_the_row_and_column() -> None:
    sf = fs.SFrame({"photo": fs.SArray([fs.Image(_pixels(40, 40)), fs.Image(_pixels(30, 20))])})
    with pytest.raises(SchemaError, match=r"row 1 of 'photo'"):
        ia.center_crop(sf["photo"], 25, 25).to_list()


def _position_images(n: int, h: int = 30, w: int = 40) -> list[np.ndarray]:
    return [_position_image(h, w, i % 256) for i in range(n)]


def test_random_crops_are_inside_the_image_and_vary() -> None:
    arrays = _position_images(60)
    out = _all_pixels(ia.random_crop(fs.SArray([fs.Image(a) for a in arrays]), 11, 7, seed=3))
    corners = set()
    for src, got in zip(arrays, out):
        assert got.shape == (7, 11, 3)
        top, left = int(got[0, 0, 0]), int(got[0, 0, 1])
        assert 0 <= top <= 30 - 7 and 0 <= left <= 40 - 11
        np.testing.assert_array_equal(got, src[top : top + 7, left : left + 11])
        corners.add((top, left))
    assert len(corners) > 20


def test_random_crop_is_seeded_and_independent_of_chunking() -> None:
    arrays = _position_images(23)
    images = [fs.Image(a) for a in arrays]
    images[5] = None
    one = fs.SArray(images, dtype=fs.Image)
    many = _frame_in_chunks(images, 4)["image"]
    assert one._num_blocks() == 1 and many._num_blocks() == 6
    a = _all_pixels(ia.random_crop(one, 9, 6, seed=42))
    b = _all_pixels(ia.random_crop(many, 9, 6, seed=42))
    c = _all_pixels(ia.random_crop(many, 9, 6, seed=42))
    assert a[5] is None and b[5] is None
    pairs = [(x, y, z) for x, y, z in zip(a, b, c) if x is not None]
    assert all(np.array_equal(x, y) and np.array_equal(y, z) for x, y, z in pairs)


def test_random_crop_redraws_with_another_epoch_or_seed() -> None:
    sa = fs.SArray([fs.Image(a) for a in _position_images(30)])
    base = _all_pixels(ia.random_crop(sa, 9, 6, seed=42))
    again = _all_pixels(ia.random_crop(sa, 9, 6, seed=42, epoch=0))
    epoch1 = _all_pixels(ia.random_crop(sa, 9, 6, seed=42, epoch=1))
    epoch1_again = _all_pixels(ia.random_crop(sa, 9, 6, seed=42, epoch=1))
    seed2 = _all_pixels(ia.random_crop(sa, 9, 6, seed=43))
    assert all(np.array_equal(x, y) for x, y in zip(base, again))
    assert all(np.array_equal(x, y) for x, y in zip(epoch1, epoch1_again))
    assert sum(not np.array_equal(x, y) for x, y in zip(base, epoch1)) > 20
    assert sum(not np.array_equal(x, y) for x, y in zip(base, seed2)) > 20


def _asymmetric(n: int) -> list[np.ndarray]:
    return [_position_image(3, 5, i) for i in range(n)]


def _flipped(sources: list[np.ndarray], out: list[np.ndarray]) -> list[bool]:
    flags = []
    for src, got in zip(sources, out):
        if np.array_equal(got, src):
            flags.append(False)
        else:
            np.testing.assert_array_equal(got, src[:, ::-1])  # either unchanged or mirrored
            flags.append(True)
    return flags


def test_flip_mirrors_left_to_right() -> None:
    sa, images = _sample_column()
    out = ia.flip(sa).to_list()
    assert out[4] is None
    for src, got in zip(images, out):
        if src is None:
            continue
        assert got.format == "RAW" and got.channels == src.channels
        np.testing.assert_array_equal(got.pixels(), src.pixels()[:, ::-1])
        np.testing.assert_array_equal(got.pixels(), _hwc(_pil(src).transpose(PILImage.Transpose.FLIP_LEFT_RIGHT)))


def test_random_flip_is_seeded_and_independent_of_chunking() -> None:
    arrays = _asymmetric(40)
    images = [fs.Image(a) for a in arrays]
    one = fs.SArray(images)
    many = _frame_in_chunks(images, 7)["image"]
    assert many._num_blocks() == 6
    a = _flipped(arrays, _all_pixels(ia.random_flip(one, seed=5)))
    b = _flipped(arrays, _all_pixels(ia.random_flip(many, seed=5)))
    assert a == b and 0 < sum(a) < 40
    other_epoch = _flipped(arrays, _all_pixels(ia.random_flip(one, seed=5, epoch=1)))
    assert other_epoch != a


@pytest.mark.parametrize("probability, low, high", [(0.0, 0, 0), (1.0, 400, 400), (0.5, 160, 240),
                                                    (0.2, 50, 110)])
def test_random_flip_probability_is_roughly_respected(probability: float, low: int, high: int) -> None:
    src = _position_image(3, 5, 0)
    sa = fs.SArray([fs.Image(src)] * 400)
    out = _all_pixels(ia.random_flip(sa, seed=9, probability=probability))
    assert low <= sum(_flipped([src] * 400, out)) <= high


def test_a_chain_of_transforms_equals_applying_them_one_by_one() -> None:
    sa = fs.SArray([fs.Image(a) for a in _position_images(50)])
    chained = ia.center_crop(ia.random_flip(ia.random_crop(sa, 20, 16, seed=3), seed=4), 10, 8)
    step1 = fs.SArray([fs.Image(p) for p in _all_pixels(ia.random_crop(sa, 20, 16, seed=3))])
    step2 = fs.SArray([fs.Image(p) for p in _all_pixels(ia.random_flip(step1, seed=4))])
    step3 = _all_pixels(ia.center_crop(step2, 10, 8))
    assert all(np.array_equal(x, y) for x, y in zip(_all_pixels(chained), step3))


def test_chained_random_transforms_with_default_seeds_draw_independently() -> None:
    sources = _position_images(400)
    crops = _all_pixels(ia.random_crop(fs.SArray([fs.Image(a) for a in sources]), 20, 20))
    flipped = _all_pixels(ia.random_flip(ia.random_crop(fs.SArray([fs.Image(a) for a in sources]), 20, 20)))
    tops = np.array([c[0, 0, 0] for c in crops])
    flips = np.array([not np.array_equal(c, f) for c, f in zip(crops, flipped)])
    upper, lower = flips[tops < 5].mean(), flips[tops >= 5].mean()
    assert 0.3 < upper < 0.7 and 0.3 < lower < 0.7


# ---------------------------------------------------------------------------------- colour


@pytest.mark.parametrize("fn, channels", [(ia.to_grayscale, 1), (ia.to_rgb, 3)])
def test_to_grayscale_and_to_rgb_equal_pillow_convert(fn, channels: int) -> None:
    sa, images = _sample_column()
    out = fn(sa).to_list()
    assert out[4] is None
    for src, got in zip(images, out):
        if src is None:
            continue
        assert got.channels == channels and got.format == "RAW"
        np.testing.assert_array_equal(got.pixels(), _hwc(_pil(src).convert(MODES[channels])))
    assert out[0].pixel_data.ndim == (2 if channels == 1 else 3)


def test_grey_of_grey_and_rgb_of_rgb_change_nothing() -> None:
    grey, rgb = _pixels(4, 5, None), _pixels(4, 5)
    np.testing.assert_array_equal(ia.to_grayscale(fs.Image(grey))[0].pixel_data, grey)
    np.testing.assert_array_equal(ia.to_rgb(fs.Image(rgb))[0].pixels(), rgb)


# ---------------------------------------------------------------------------------- tensors


def _same_size_column() -> tuple[fs.SArray, list[np.ndarray]]:
    arrays = [_pixels(6, 8, seed=i) for i in range(5)]
    return fs.SArray([fs.Image(_png(a)) if i % 2 else fs.Image(a) for i, a in enumerate(arrays)]), arrays


def _chw(arrays: list[np.ndarray]) -> np.ndarray:
    return np.stack([a.transpose(2, 0, 1) for a in arrays]).astype(np.float32)


def test_to_tensor_shape_element_shape_and_values() -> None:
    sa, arrays = _same_size_column()
    t = ia.to_tensor(sa)
    assert t.element_shape == (3, 6, 8)
    got = t.to_numpy()  # a tensor column comes back as (N, C, H, W)
    assert got.shape == (5, 3, 6, 8) and got.dtype == np.float32
    np.testing.assert_array_equal(got, _chw(arrays))
    assert t._data.shape == (5, 3 * 6 * 8)  # stored as one flat row per image


def test_to_tensor_with_a_scalar_mean_and_scale() -> None:
    sa, arrays = _same_size_column()
    got = ia.to_tensor(sa, mean=127.5, scale=1 / 127.5).to_numpy()
    expected = (_chw(arrays) - np.float32(127.5)) * np.float32(1 / 127.5)
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-6)


def test_to_tensor_with_a_per_channel_mean_is_in_chw_order() -> None:
    sa, arrays = _same_size_column()
    mean = [10.0, 100.0, 200.0]
    got = ia.to_tensor(sa, mean=mean, scale=0.5).to_numpy().reshape(5, 3, 6, 8)
    expected = (_chw(arrays) - np.array(mean, np.float32)[:, None, None]) * np.float32(0.5)
    np.testing.assert_allclose(got, expected, rtol=1e-6)
    np.testing.assert_allclose(got[2, 1, 4, 5], (arrays[2][4, 5, 1] - 100.0) * 0.5)


def test_to_tensor_with_a_mean_image() -> None:
    sa, arrays = _same_size_column()
    mean = ia.mean_image(sa)
    assert mean.shape == (3, 6, 8) and mean.dtype == np.float32
    np.testing.assert_allclose(mean, _chw(arrays).mean(axis=0), rtol=1e-6)
    got = ia.to_tensor(sa, mean=mean, scale=2.0).to_numpy()
    np.testing.assert_allclose(got, (_chw(arrays) - mean) * 2.0, rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(got.reshape(5, 3, 6, 8).mean(axis=0), 0.0, atol=1e-4)


def test_to_tensor_of_grey_images_and_other_dtypes() -> None:
    arrays = [_pixels(4, 5, None, seed=i) for i in range(3)]
    sa = fs.SArray([fs.Image(a) for a in arrays])
    t = ia.to_tensor(sa, mean=[1.0], dtype=np.float64)
    assert t.element_shape == (1, 4, 5)
    got = t.to_numpy()
    assert got.dtype == np.float64
    np.testing.assert_array_equal(got, np.stack(arrays)[:, None].astype(np.float64) - 1.0)


def test_to_tensor_leaves_missing_images_missing() -> None:
    arrays = [_pixels(3, 3, seed=i) for i in range(3)]
    t = ia.to_tensor(fs.SArray([fs.Image(arrays[0]), None, fs.Image(arrays[2])]))
    assert t.num_missing() == 1
    got = t.to_numpy()
    assert np.isnan(got[1]).all()
    np.testing.assert_array_equal(got[[0, 2]], _chw([arrays[0], arrays[2]]))
    np.testing.assert_allclose(ia.mean_image(fs.SArray([fs.Image(arrays[0]), None, fs.Image(arrays[2])])),
                               _chw([arrays[0], arrays[2]]).mean(axis=0))


def test_to_uint8_tensor() -> None:
    sa, arrays = _same_size_column()
    t = ia.to_uint8_tensor(sa)
    assert t.element_shape == (3, 6, 8)
    got = t.to_numpy()
    assert got.dtype == np.uint8
    np.testing.assert_array_equal(got, np.stack([a.transpose(2, 0, 1) for a in arrays]))


def test_a_pipeline_of_transforms_into_a_tensor(photos: fs.SArray) -> None:
    t = ia.to_tensor(ia.random_crop(ia.resize(photos, 40, 30), 24, 24, seed=1), scale=1 / 255)
    got = t.to_numpy()
    assert t.element_shape == (3, 24, 24) and got.shape == (2, 3, 24, 24)
    assert got.min() >= 0.0 and got.max() <= 1.0


@pytest.mark.parametrize("mean, match", [
    ([1.0, 2.0], r"mean has 2 values but the images have 3 channels"),
    (np.zeros((3, 5, 5)), r"a mean image must have shape \(3, 6, 8\) \(C, H, W\), got \(3, 5, 5\)"),
    (np.zeros((6, 8)), r"a mean image must have shape \(3, 6, 8\).*got \(6, 8\)"),
    (np.zeros((6, 8, 3)), r"a mean image must have shape \(3, 6, 8\).*got \(6, 8, 3\)"),
])
def test_a_mean_of_the_wrong_shape_is_refused(mean, match: str) -> None:
    sa, _ = _same_size_column()
    with pytest.raises(SchemaError, match=match):
        ia.to_tensor(sa, mean=mean)


def test_images_of_different_sizes_cannot_form_a_tensor() -> None:
    images = [fs.Image(_pixels(6, 8, seed=i)) for i in range(12)]
    images[9] = fs.Image(_pixels(7, 8, seed=9))
    sf = _frame_in_chunks(images, 4).rename({"image": "pic"})
    t = ia.to_tensor(sf["pic"])  # lazy: the error comes when the rows are computed
    with pytest.raises(SchemaError) as info:
        t.to_numpy()
    message = str(info.value)
    assert "row 9 of 'pic' is 8x7x3 but the first image is 8x6x3" in message
    assert "resize" in message and "fs.image_analysis.resize(images, 8, 6, channels=3)" in message
    with pytest.raises(SchemaError, match="row 9"):
        ia.to_uint8_tensor(sf["pic"]).to_numpy()
    with pytest.raises(SchemaError, match="row 9"):
        ia.mean_image(sf["pic"])
    # resizing first fixes it
    fixed = ia.to_tensor(ia.resize(sf["pic"], 8, 6, decode=True)).to_numpy()
    assert fixed.shape == (12, 3, 6, 8)


def test_a_tensor_of_only_missing_images_is_refused() -> None:
    with pytest.raises(SchemaError, match="first images are all missing"):
        ia.to_tensor(fs.SArray([None, None], dtype=fs.Image))


def test_a_tensor_column_saved_alone_keeps_its_element_shape(tmp_path: Path) -> None:
    sa, arrays = _same_size_column()
    t = ia.to_tensor(sa, scale=1 / 255)
    fs.SFrame({"t": t}).save(tmp_path / "t")
    back = fs.load_sframe(str(tmp_path / "t"))["t"]
    assert back.element_shape == (3, 6, 8)
    np.testing.assert_allclose(back.to_numpy(), _chw(arrays) / 255, rtol=1e-6)
    u = ia.to_uint8_tensor(sa)
    fs.SFrame({"u": u, "n": list(range(5))}).save(tmp_path / "u")
    reopened = fs.load_sframe(str(tmp_path / "u"))["u"]
    assert reopened.element_shape == (3, 6, 8)
    np.testing.assert_array_equal(reopened.to_numpy(), u.to_numpy())


def test_a_tensor_column_added_to_a_frame_keeps_its_element_shape(tmp_path: Path) -> None:
    sa, _ = _same_size_column()
    sf = fs.SFrame({"image": sa, "label": list(range(5))})
    sf["t"] = ia.to_tensor(sf["image"])
    assert sf["t"].element_shape == (3, 6, 8)
    sf.save(tmp_path / "f")
    assert fs.load_sframe(str(tmp_path / "f"))["t"].element_shape == (3, 6, 8)


# ---------------------------------------------------------------------------------- misc


TRANSFORMS = {
    "resize": lambda sa: ia.resize(sa, 4, 4),
    "center_crop": lambda sa: ia.center_crop(sa, 2, 2),
    "random_crop": lambda sa: ia.random_crop(sa, 2, 2),
    "flip": ia.flip,
    "random_flip": ia.random_flip,
    "to_grayscale": ia.to_grayscale,
    "to_rgb": ia.to_rgb,
    "to_tensor": ia.to_tensor,
    "to_uint8_tensor": ia.to_uint8_tensor,
    "mean_image": ia.mean_image,
}


@pytest.mark.parametrize("name", list(TRANSFORMS))
@pytest.mark.parametrize("column, kind", [(fs.SArray([1, 2]), "int"), (fs.SArray(["a"]), "str"),
                                          (np.zeros((2, 2, 3), np.uint8), "ndarray")])
def test_transforms_refuse_a_non_image_column(name: str, column, kind: str) -> None:
    with pytest.raises(SchemaError, match=rf"expected an image SArray \(or an Image\), got {kind}"):
        TRANSFORMS[name](column)


def test_transforms_take_a_single_image() -> None:
    a = _pixels(6, 6)
    out = ia.center_crop(fs.Image(a), 2, 2)
    assert isinstance(out, fs.SArray) and len(out) == 1
    np.testing.assert_array_equal(out[0].pixels(), a[2:4, 2:4])
    assert ia.to_tensor(fs.Image(a)).element_shape == (3, 6, 6)


def test_transforms_are_lazy_and_a_transformed_frame_saves(tmp_path: Path, folder: Path) -> None:
    sf = ia.load_images(str(folder), format="PNG")
    sf["small"] = ia.resize(sf["image"], 5, 4, channels=3)
    sf["crop"] = ia.center_crop(sf["small"], 3, 3)
    sf.save(tmp_path / "out")
    back = fs.load_sframe(str(tmp_path / "out"))
    assert back.column_names() == ["path", "image", "small", "crop"]
    for src, small, crop in zip(back["image"].to_list(), back["small"].to_list(), back["crop"].to_list()):
        expected = _hwc(_pil(src).resize((5, 4), BILINEAR).convert("RGB"))
        assert small.format == "PNG"
        np.testing.assert_array_equal(small.pixels(), expected)
        np.testing.assert_array_equal(crop.pixels(), expected[0:3, 1:4])
