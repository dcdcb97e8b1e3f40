"""``fs.Image``: construction from every source, pixels, saving, equality, pickling, image
columns on disk (encoded bytes kept as they are) and bad input."""

from __future__ import annotations

import io
import pickle
import re
from pathlib import Path

import numpy as np
import pytest
import sklearn
from PIL import Image as PILImage

import framestream as fs
from framestream.errors import ConversionError, SchemaError
from framestream.frames.image import ImageError

PHOTOS = Path(sklearn.__file__).parent / "datasets" / "images"
CHINA = PHOTOS / "china.jpg"
MODES = {1: "L", 3: "RGB", 4: "RGBA"}


def _pixels(h: int, w: int, c: int | None = 3, seed: int = 0) -> np.ndarray:
    shape = (h, w) if c is None else (h, w, c)
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def _encode(image: np.ndarray | PILImage.Image, fmt: str, **options) -> bytes:
    pil = image if isinstance(image, PILImage.Image) else PILImage.fromarray(image)
    buf = io.BytesIO()
    pil.save(buf, format=fmt, **options)
    return buf.getvalue()


def _decoded(data: bytes, mode: str) -> np.ndarray:
    with PILImage.open(io.BytesIO(data)) as pil:
        return np.asarray(pil.convert(mode))


def _saved_bytes(img: fs.Image, path: Path) -> bytes:
    """The bytes ``img.save`` writes for a file of the image's own format."""
    img.save(path)
    return path.read_bytes()


# ---------------------------------------------------------------------------------- numpy


def test_from_an_hwc_uint8_array() -> None:
    a = _pixels(5, 7)
    img = fs.Image(a)
    assert (img.width, img.height, img.channels, img.format) == (7, 5, 3, "RAW")
    assert img.size == a.nbytes
    assert img.pixel_data.shape == (5, 7, 3) and img.pixel_data.dtype == np.uint8
    np.testing.assert_array_equal(img.pixel_data, a)
    np.testing.assert_array_equal(img.pixels(), a)
    assert repr(img) == "Image(width=7, height=5, channels=3, format='RAW')"


def test_from_an_hw_array_is_grey_and_pixel_data_is_hw() -> None:
    a = _pixels(4, 6, None)
    img = fs.Image(a)
    assert (img.width, img.height, img.channels, img.format) == (6, 4, 1, "RAW")
    assert img.pixel_data.shape == (4, 6)
    np.testing.assert_array_equal(img.pixel_data, a)
    assert img.pixels().shape == (4, 6, 1)
    np.testing.assert_array_equal(img.pixels()[:, :, 0], a)


@pytest.mark.parametrize("channels", [1, 3, 4])
def test_hwc_arrays_with_1_3_and_4_channels(channels: int) -> None:
    a = _pixels(3, 5, channels, seed=channels)
    img = fs.Image(a)
    assert img.channels == channels
    np.testing.assert_array_equal(img.pixels(), a)
    assert img.pixel_data.shape == ((3, 5) if channels == 1 else (3, 5, channels))


def test_a_non_contiguous_array_is_copied_correctly() -> None:
    a = _pixels(6, 8)
    view = a[::2, ::-1]
    np.testing.assert_array_equal(fs.Image(view).pixels(), view)


def test_float_arrays_in_0_1_are_scaled_to_0_255() -> None:
    a = np.array([[0.0, 0.25, 0.5, 1.0]])
    img = fs.Image(a)
    assert img.format == "RAW" and img.channels == 1
    np.testing.assert_array_equal(img.pixel_data, [[0, 64, 128, 255]])


def test_float_arrays_above_1_are_rounded_and_clipped() -> None:
    a = np.array([[[0.0, 12.4, 12.6], [-5.0, 254.5, 300.0]]])  # 1 x 2 x 3
    np.testing.assert_array_equal(fs.Image(a).pixels(), [[[0, 12, 13], [0, 254, 255]]])


def test_integer_arrays_of_other_dtypes_are_clipped_to_uint8() -> None:
    a = np.array([[-3, 0, 17, 255, 256, 1000]], dtype=np.int64)
    img = fs.Image(a)
    assert img.pixel_data.dtype == np.uint8
    np.testing.assert_array_equal(img.pixel_data, [[0, 0, 17, 255, 255, 255]])


@pytest.mark.parametrize("shape", [(2, 2, 2), (2, 2, 5), (4,), (2, 2, 3, 1)])
def test_arrays_of_unsupported_shape_are_rejected(shape) -> None:
    with pytest.raises(ImageError, match=r"1, 3 or 4 channels.*shape"):
        fs.Image(np.zeros(shape, dtype=np.uint8))


def test_unsupported_source_types_are_rejected() -> None:
    with pytest.raises(ImageError, match="not int"):
        fs.Image(12)
    with pytest.raises(ImageError, match="not list"):
        fs.Image([[1, 2], [3, 4]])


def test_image_error_is_a_schema_error_and_a_value_error() -> None:
    assert issubclass(ImageError, SchemaError) and issubclass(ImageError, ValueError)


def test_the_empty_image_and_copies() -> None:
    empty = fs.Image()
    assert (empty.width, empty.height, empty.channels, empty.format, empty.size) == (0, 0, 0, "RAW", 0)
    a = _pixels(3, 4)
    img = fs.Image(_encode(a, "PNG"))
    copy = fs.Image(img)
    assert copy == img and copy.format == "PNG" and copy.size == img.size


# ---------------------------------------------------------------------------------- PIL


def _pil_in_mode(mode: str) -> PILImage.Image:
    rgb = PILImage.fromarray(_pixels(6, 9, seed=3))
    if mode == "I;16":  # 16-bit grey with values that fit in 8 bits
        return PILImage.fromarray(_pixels(6, 9, None, seed=4).astype(np.uint16))
    if mode == "LA":
        return PILImage.merge("LA", (rgb.convert("L"), PILImage.fromarray(_pixels(6, 9, None, seed=5))))
    return rgb.convert(mode)


@pytest.mark.parametrize("mode, channels, as_mode", [
    ("L", 1, "L"), ("RGB", 3, "RGB"), ("RGBA", 4, "RGBA"), ("P", 3, "RGB"), ("LA", 4, "RGBA"),
    ("I;16", 1, "L"), ("CMYK", 3, "RGB"), ("1", 1, "L"),
])
def test_from_pil_images_of_each_mode(mode: str, channels: int, as_mode: str) -> None:
    pil = _pil_in_mode(mode)
    assert pil.mode == mode
    img = fs.Image(pil)
    assert (img.width, img.height, img.channels, img.format) == (9, 6, channels, "RAW")
    expected = np.asarray(pil.convert(as_mode))
    np.testing.assert_array_equal(img.pixel_data, expected)
    assert img.pixel_data.shape == ((6, 9) if channels == 1 else (6, 9, channels))


def test_a_16_bit_grey_pil_image_keeps_its_values_when_they_fit_in_8_bits() -> None:
    a = np.array([[0, 1, 100, 255]], dtype=np.uint16)
    np.testing.assert_array_equal(fs.Image(PILImage.fromarray(a)).pixel_data, [[0, 1, 100, 255]])


@pytest.mark.parametrize("channels", [1, 3, 4])
def test_to_pil_round_trips(channels: int) -> None:
    a = _pixels(5, 4, channels, seed=channels)
    pil = fs.Image(a).to_pil()
    assert pil.mode == MODES[channels] and pil.size == (4, 5)
    np.testing.assert_array_equal(np.asarray(pil).reshape(5, 4, channels), a)
    assert fs.Image(pil) == fs.Image(a)


def test_to_pil_of_an_encoded_image_decodes_it() -> None:
    img = fs.Image(CHINA)
    pil = img.to_pil()
    with PILImage.open(CHINA) as ref:
        np.testing.assert_array_equal(np.asarray(pil), np.asarray(ref.convert("RGB")))


# ---------------------------------------------------------------------------------- encoded


@pytest.mark.parametrize("as_path", [str, Path])
def test_from_a_jpeg_file_path(as_path) -> None:
    img = fs.Image(as_path(CHINA))
    assert (img.width, img.height, img.channels, img.format) == (640, 427, 3, "JPEG")
    assert img.size == CHINA.stat().st_size
    with PILImage.open(CHINA) as ref:
        np.testing.assert_array_equal(img.pixel_data, np.asarray(ref))


def test_from_a_png_file_path(tmp_path: Path) -> None:
    a = _pixels(10, 12, 4)
    path = tmp_path / "a.png"
    PILImage.fromarray(a).save(path)
    img = fs.Image(path)
    assert (img.width, img.height, img.channels, img.format) == (12, 10, 4, "PNG")
    np.testing.assert_array_equal(img.pixel_data, a)


@pytest.mark.parametrize("wrap", [bytes, bytearray, memoryview])
def test_from_encoded_bytes_of_any_buffer_type(wrap) -> None:
    a = _pixels(8, 5)
    png = _encode(a, "PNG")
    img = fs.Image(wrap(png))
    assert (img.width, img.height, img.channels, img.format, img.size) == (5, 8, 3, "PNG", len(png))
    np.testing.assert_array_equal(img.pixel_data, a)
    jpeg = _encode(a, "JPEG", quality=90)
    j = fs.Image(wrap(jpeg))
    assert (j.width, j.height, j.channels, j.format) == (5, 8, 3, "JPEG")
    np.testing.assert_array_equal(j.pixel_data, _decoded(jpeg, "RGB"))


@pytest.mark.parametrize("mode, fmt, channels", [
    ("L", "PNG", 1), ("LA", "PNG", 4), ("P", "PNG", 3), ("RGBA", "PNG", 4), ("1", "PNG", 1),
    ("I;16", "PNG", 1), ("L", "JPEG", 1), ("CMYK", "JPEG", 3), ("RGB", "JPEG", 3),
])
def test_encoded_images_of_each_mode(mode: str, fmt: str, channels: int) -> None:
    data = _encode(_pil_in_mode(mode), fmt)
    img = fs.Image(data)
    assert (img.width, img.height, img.channels, img.format) == (9, 6, channels, fmt)
    np.testing.assert_array_equal(img.pixel_data, _decoded(data, MODES[channels]))
    assert img.pixel_data.shape == ((6, 9) if channels == 1 else (6, 9, channels))
    assert img.pixels().shape == (6, 9, channels)


@pytest.mark.parametrize("fmt, names", [
    ("PNG", ["auto", "PNG", "png", "Png"]),
    ("JPEG", ["auto", "JPEG", "jpeg", "JPG", "jpg"]),
])
def test_matching_format_names_are_accepted(fmt: str, names: list[str]) -> None:
    data = _encode(_pixels(4, 4), fmt)
    for name in names:
        assert fs.Image(data, format=name).format == fmt


def test_the_pixels_of_an_encoded_image_are_decoded_on_demand() -> None:
    a = _pixels(16, 16)
    img = fs.Image(_encode(a, "PNG"))
    first = img.pixels()
    np.testing.assert_array_equal(first, a)
    np.testing.assert_array_equal(img.pixels(), first)  # decoding twice gives the same pixels


# ---------------------------------------------------------------------------------- save


@pytest.mark.parametrize("suffix", ["jpg", "jpeg", "JPG", "JPEG"])
def test_saving_a_jpeg_as_jpeg_writes_the_original_bytes(tmp_path: Path, suffix: str) -> None:
    out = tmp_path / f"copy.{suffix}"
    fs.Image(CHINA).save(out)
    assert out.read_bytes() == CHINA.read_bytes()


def test_saving_a_png_as_png_writes_the_original_bytes(tmp_path: Path) -> None:
    png = _encode(_pixels(9, 7, 4), "PNG", compress_level=1)
    out = tmp_path / "copy.PNG"
    fs.Image(png).save(str(out))
    assert out.read_bytes() == png


def test_saving_with_another_suffix_re_encodes(tmp_path: Path) -> None:
    jpeg = fs.Image(CHINA)
    jpeg.save(tmp_path / "china.png")
    with PILImage.open(tmp_path / "china.png") as pil:
        assert pil.format == "PNG"
        np.testing.assert_array_equal(np.asarray(pil), jpeg.pixel_data)  # PNG is lossless

    a = _pixels(20, 30)
    fs.Image(_encode(a, "PNG")).save(tmp_path / "a.jpg")
    with PILImage.open(tmp_path / "a.jpg") as pil:
        assert pil.format == "JPEG" and pil.size == (30, 20) and pil.mode == "RGB"


@pytest.mark.parametrize("channels", [1, 3, 4])
def test_saving_raw_pixels_encodes_them_losslessly_as_png(tmp_path: Path, channels: int) -> None:
    a = _pixels(6, 5, channels)
    fs.Image(a).save(tmp_path / "raw.png")
    with PILImage.open(tmp_path / "raw.png") as pil:
        assert pil.format == "PNG" and pil.mode == MODES[channels]
        np.testing.assert_array_equal(np.asarray(pil).reshape(a.shape), a)
    assert fs.Image(tmp_path / "raw.png") == fs.Image(a)


# ---------------------------------------------------------------------------------- equality, pickling


def test_equality_compares_pixels_across_formats() -> None:
    a = _pixels(6, 7)
    raw, png = fs.Image(a), fs.Image(_encode(a, "PNG"))
    assert raw == png and png == raw
    assert raw != fs.Image(_pixels(6, 7, seed=9))
    assert raw != fs.Image(a[:, :6])  # another size
    assert fs.Image(a[:, :, 0]) != fs.Image(np.dstack([a[:, :, 0]] * 3))  # another channel count
    jpeg = fs.Image(_encode(a, "JPEG"))
    assert jpeg == fs.Image(jpeg.pixels())  # equal to its decoded pixels
    assert (raw == 3) is False and (raw != "x") is True


def test_images_are_not_hashable() -> None:
    with pytest.raises(TypeError):
        hash(fs.Image(_pixels(2, 2)))


@pytest.mark.parametrize("kind", ["raw", "grey", "png", "jpeg"])
def test_pickling_round_trips(tmp_path: Path, kind: str) -> None:
    a = _pixels(5, 6)
    img = {"raw": fs.Image(a), "grey": fs.Image(a[:, :, 1]), "png": fs.Image(_encode(a, "PNG")),
           "jpeg": fs.Image(CHINA)}[kind]
    back = pickle.loads(pickle.dumps(img))
    assert isinstance(back, fs.Image)
    assert (back.width, back.height, back.channels, back.format, back.size) == \
           (img.width, img.height, img.channels, img.format, img.size)
    assert back == img
    if kind == "jpeg":  # the encoded bytes travel unchanged
        assert _saved_bytes(back, tmp_path / "b.jpg") == CHINA.read_bytes()


# ---------------------------------------------------------------------------------- columns


def _mixed_images() -> tuple[list[fs.Image | None], bytes, bytes, np.ndarray]:
    a = _pixels(5, 7, seed=11)
    png = _encode(_pixels(9, 4, 4, seed=12), "PNG")
    jpeg = CHINA.read_bytes()
    return [fs.Image(jpeg), None, fs.Image(png), fs.Image(a), None, fs.Image(a[:, :, 0])], png, jpeg, a


def test_an_sarray_of_images_with_missing_values() -> None:
    images, *_ = _mixed_images()
    sa = fs.SArray(images)
    assert sa.dtype is fs.Image and len(sa) == 6 and sa.num_missing() == 2
    values = sa.to_list()
    assert [v is None for v in values] == [False, True, False, False, True, False]
    assert values[0] == images[0] and values[3] == images[3]
    assert sa[2].format == "PNG" and sa[-1].channels == 1
    assert sa.apply(lambda im: im.width, dtype=int).to_list() == [640, None, 4, 7, None, 7]
    assert len(sa.dropna()) == 4


def test_an_sarray_of_encoded_bytes_with_dtype_image() -> None:
    png = _encode(_pixels(3, 3), "PNG")
    sa = fs.SArray([png, None, CHINA.read_bytes()], dtype=fs.Image)
    assert sa.dtype is fs.Image
    assert [None if v is None else v.format for v in sa.to_list()] == ["PNG", None, "JPEG"]
    with pytest.raises(ConversionError, match=r"row 1.*cannot convert.*image.*not a readable"):
        fs.SArray([png, b"junk"], dtype=fs.Image)


def test_all_missing_image_column() -> None:
    sa = fs.SArray([None, None], dtype=fs.Image)
    assert sa.dtype is fs.Image and sa.to_list() == [None, None] and sa.num_missing() == 2


def test_png_and_jpeg_bytes_survive_a_save_and_reopen_unchanged(tmp_path: Path) -> None:
    images, png, jpeg, a = _mixed_images()
    sf = fs.SFrame({"image": fs.SArray(images), "k": list(range(6))})
    sf.save(tmp_path / "frame")
    back = fs.load_sframe(str(tmp_path / "frame"))
    assert back.column_names() == ["image", "k"]
    assert back.column_types() == [fs.Image, int]
    assert back["image"].num_missing() == 2
    got = back["image"].to_list()
    assert [g is None for g in got] == [False, True, False, False, True, False]
    assert got[0].format == "JPEG" and got[0].size == len(jpeg)
    assert _saved_bytes(got[0], tmp_path / "out.jpg") == jpeg
    assert got[2].format == "PNG" and got[2].size == len(png)
    assert _saved_bytes(got[2], tmp_path / "out.png") == png
    assert got[3].format == "RAW" and got[3] == fs.Image(a)
    np.testing.assert_array_equal(got[3].pixels(), a)
    assert got[5].channels == 1 and got[5].pixel_data.shape == (5, 7)
    # saved again from the reopened frame: still the same bytes
    back.save(tmp_path / "again")
    again = fs.load_sframe(str(tmp_path / "again"))["image"]
    assert _saved_bytes(again[0], tmp_path / "again.jpg") == jpeg
    assert _saved_bytes(again[2], tmp_path / "again.png") == png


def test_sizes_and_formats_are_known_after_reopening_without_decoding(tmp_path: Path) -> None:
    images, *_ = _mixed_images()
    fs.SFrame({"image": fs.SArray(images)}).save(tmp_path / "f")
    got = fs.load_sframe(str(tmp_path / "f"))["image"].to_list()
    shapes = [None if g is None else (g.width, g.height, g.channels, g.format) for g in got]
    assert shapes == [(640, 427, 3, "JPEG"), None, (4, 9, 4, "PNG"), (7, 5, 3, "RAW"), None, (7, 5, 1, "RAW")]


def test_filtering_slicing_and_head_of_an_image_frame(tmp_path: Path) -> None:
    images, *_ = _mixed_images()
    sf = fs.SFrame({"image": fs.SArray(images), "k": list(range(6))})
    sf.save(tmp_path / "f")
    sf = fs.load_sframe(str(tmp_path / "f"))
    kept = sf[sf["k"] >= 2]["image"].to_list()
    assert [None if v is None else v.format for v in kept] == ["PNG", "RAW", None, "RAW"]
    assert sf[0:1]["image"][0] == images[0]
    assert sf.head(3)["image"].to_list()[2] == images[2]
    assert "Image(width=640" in repr(sf)


def test_an_empty_image_survives_a_save_and_reopen(tmp_path: Path) -> None:
    fs.SFrame({"image": fs.SArray([fs.Image(), fs.Image(_pixels(2, 2))])}).save(tmp_path / "f")
    got = fs.load_sframe(str(tmp_path / "f"))["image"].to_list()
    assert got[0] is not None and got[0].size == 0


# ---------------------------------------------------------------------------------- bad input


def _png_bytes() -> bytes:
    return _encode(_pixels(64, 64), "PNG", compress_level=0)


def _cuts() -> list[tuple[str, bytes]]:
    jpeg, png = CHINA.read_bytes(), _png_bytes()
    return [
        ("jpeg half", jpeg[: len(jpeg) // 2]),
        ("jpeg without end marker", jpeg[:-2]),
        ("jpeg cut in its header", jpeg[:300]),
        ("png without IEND", png[:-12]),
        ("png half", png[: len(png) // 2]),
        ("png cut in its header", png[:30]),
    ]


CUTS = _cuts()


@pytest.mark.parametrize("data", [b"", b"not an image", bytes(range(256)) * 4], ids=["empty", "text", "noise"])
def test_corrupt_bytes_are_an_image_error_that_says_bytes(data: bytes) -> None:
    with pytest.raises(ImageError, match=r"^bytes: not a readable PNG or JPEG image"):
        fs.Image(data)


def test_a_png_with_a_damaged_header_checksum_is_rejected() -> None:
    png = bytearray(_png_bytes())
    png[20] ^= 0xFF  # inside IHDR: its CRC no longer matches
    with pytest.raises(ImageError, match=r"^bytes: "):
        fs.Image(bytes(png))


@pytest.mark.parametrize("label, data", CUTS, ids=[c[0] for c in CUTS])
def test_truncated_bytes_are_an_image_error(label: str, data: bytes) -> None:
    with pytest.raises(ImageError, match=r"^bytes: (truncated (JPEG|PNG)|not a readable)"):
        fs.Image(data)


@pytest.mark.parametrize("label, data", CUTS, ids=[c[0] for c in CUTS])
def test_truncated_files_are_an_image_error_naming_the_path(tmp_path: Path, label: str, data: bytes) -> None:
    path = tmp_path / ("cut.jpg" if label.startswith("jpeg") else "cut.png")
    path.write_bytes(data)
    with pytest.raises(ImageError) as info:
        fs.Image(str(path))
    assert str(info.value).startswith(f"{path}: ")
    assert "truncated" in str(info.value) or "not a readable" in str(info.value)


def test_truncation_messages_say_what_is_missing() -> None:
    jpeg, png = CHINA.read_bytes(), _png_bytes()
    with pytest.raises(ImageError, match=r"truncated JPEG \(no end-of-image marker after the last scan\)"):
        fs.Image(jpeg[:-2])
    with pytest.raises(ImageError, match=r"truncated PNG \(no IEND chunk after the image data\)"):
        fs.Image(png[:-12])


def test_a_corrupt_file_names_the_path(tmp_path: Path) -> None:
    path = tmp_path / "junk.png"
    path.write_bytes(b"\x89PNG but not really")
    with pytest.raises(ImageError, match=rf"^{re.escape(str(path))}: not a readable PNG or JPEG image"):
        fs.Image(path)


@pytest.mark.parametrize("what", ["missing", "folder"])
def test_an_unreadable_path_is_an_image_error_naming_it(tmp_path: Path, what: str) -> None:
    path = tmp_path / "nope.jpg"
    if what == "folder":
        path.mkdir()
    with pytest.raises(ImageError, match=rf"^{re.escape(str(path))}: cannot read the image file") as info:
        fs.Image(str(path))
    assert ("No such file" if what == "missing" else "directory") in str(info.value)


def test_a_wrong_format_is_an_image_error_naming_path_or_bytes(tmp_path: Path) -> None:
    png = _png_bytes()
    with pytest.raises(ImageError, match=r"^bytes: asked for format JPEG but the bytes are PNG"):
        fs.Image(png, format="JPEG")
    with pytest.raises(ImageError, match=r"^bytes: asked for format png but the bytes are JPEG"):
        fs.Image(CHINA.read_bytes(), format="png")
    path = tmp_path / "really-a-png.jpg"
    path.write_bytes(png)
    with pytest.raises(ImageError, match=rf"^{re.escape(str(path))}: asked for format JPG but the bytes are PNG"):
        fs.Image(path, format="JPG")


@pytest.mark.parametrize("fmt", ["GIF", "BMP", "TIFF"])
def test_formats_other_than_png_and_jpeg_are_rejected(tmp_path: Path, fmt: str) -> None:
    data = _encode(_pixels(4, 4), fmt)
    with pytest.raises(ImageError, match=rf"^bytes: unsupported image format {fmt}"):
        fs.Image(data)
    path = tmp_path / f"a.{fmt.lower()}"
    path.write_bytes(data)
    with pytest.raises(ImageError, match=rf"^{re.escape(str(path))}: unsupported image format {fmt}"):
        fs.Image(path)


def test_a_complete_jpeg_with_trailing_bytes_is_accepted() -> None:
    data = CHINA.read_bytes() + b"\x00" * 100
    with PILImage.open(io.BytesIO(data)) as pil:  # Pillow reads it in full
        expected = np.asarray(pil)
    np.testing.assert_array_equal(fs.Image(data).pixel_data, expected)


def test_raw_stack_is_every_image_pixels_in_one_array_or_none():
    import numpy as np

    from framestream.frames.image import Image, raw_stack

    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, size=(3, 4, 5, 3), dtype=np.uint8)
    images = [Image(p) for p in pixels]
    np.testing.assert_array_equal(raw_stack(images, 4, 5, 3), pixels)
    assert raw_stack(images, 5, 4, 3) is None  # another size
    assert raw_stack([*images, Image(pixels[0][:, :4])], 4, 5, 3) is None  # one differs
    assert raw_stack([*images, None], 4, 5, 3) is None  # a missing value
    assert raw_stack([], 4, 5, 3) is None
