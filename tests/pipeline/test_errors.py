"""Every bad input to an SFrame stream: the exception type, and a message naming the column,
the row where there is one, and the rule."""

from __future__ import annotations

import numpy as np
import pytest

import framestream as fs
from framestream.errors import ColumnNotFoundError, ConversionError, SchemaError
from framestream.frames.image import ImageError
from framestream.pipeline import ImageOptions, SFrameStream


def _img(h: int, w: int, c: int = 1) -> fs.Image:
    return fs.Image(np.zeros((h, w, c), np.uint8))


def _table() -> fs.SFrame:
    return fs.SFrame({"x": [1.0, 2.0, 3.0], "n": [1, 2, 3], "name": ["a", "b", "c"],
                      "v": [[1.0, 2.0], [3.0, 4.0], [5.0]], "y": [0.0, None, 1.0],
                      "image": [_img(8, 8)] * 3})


def _drain(sf, data, label=None, **kw):
    """Make the stream and run one pass (checks made as chunks are read raise here)."""
    return list(SFrameStream(sf, data, label, batch_size=2, **kw).batches(0))


CONSTRUCTION = [
    ("label not numeric", ["x"], "name", SchemaError,
     r"label column 'name' is str; label_field must be an int or float column"),
    ("missing data field", ["x", "z"], None, ColumnNotFoundError,
     r"data_field 'z' is not a column of the frame; "
     r"its columns are \['x', 'n', 'name', 'v', 'y', 'image'\]"),
    ("missing label field", "x", "target", ColumnNotFoundError,
     r"label_field 'target' is not a column"),
    ("image mixed", ["image", "x"], None, SchemaError,
     r"image column 'image' cannot be mixed with other data columns \(\['x'\]\)"),
    ("str data", ["x", "name"], None, SchemaError,
     r"data column 'name' is str; data columns must be int, float or vector"),
    ("empty field list", [], None, SchemaError, r"data_field must be a column name or a list"),
]


@pytest.mark.parametrize(("data", "label", "error", "message"), [c[1:] for c in CONSTRUCTION],
                         ids=[c[0] for c in CONSTRUCTION])
def test_checked_when_the_stream_is_made(data, label, error, message):
    with pytest.raises(error, match=message):
        SFrameStream(_table(), data, label)


def test_vector_of_varying_length_names_the_row():
    with pytest.raises(SchemaError, match=r"row 2 of vector column 'v' has length 1 but row 0 "
                                          r"has 2; vectors fed to a network must all have"):
        _drain(_table(), ["x", "v"])


def test_missing_values_name_column_and_row():
    with pytest.raises(ConversionError,
                       match=r"row 1 of column 'y' is missing \(None\).*sf.dropna\('y'\)"):
        _drain(_table(), "x", "y")
    holes = fs.SFrame({"image": [_img(8, 8), _img(8, 8), None]})
    with pytest.raises(ConversionError, match=r"row 2 of column 'image' is missing"):
        _drain(holes, "image")
    with pytest.raises(ConversionError, match=r"row 0 of column 'image' is missing"):
        SFrameStream(holes[2:], "image")


def test_images_of_other_sizes_name_the_row_and_both_sizes():
    sf = fs.SFrame({"image": [_img(8, 8), _img(8, 8), _img(8, 8), _img(8, 10)]})
    with pytest.raises(SchemaError, match=r"row 3 of image column 'image' is 10x8x1 \(width x "
                                          r"height x channels\) but the first image is "
                                          r"8x8x1.*resize=\(8, 8\)"):
        _drain(sf, "image")
    grey_then_rgb = fs.SFrame({"image": [_img(8, 8), _img(8, 8, 3)]})
    with pytest.raises(SchemaError,
                       match=r"row 1 of image column 'image' is 8x8x3 .* first image is 8x8x1; "
                             r"images must share one size: pass data_shape=\(1, 8, 8\)"):
        _drain(grey_then_rgb, "image")
    assert len(_drain(sf, "image", image=ImageOptions(resize=(8, 8)))) == 2  # resize fixes it


def test_image_option_errors():
    sf = fs.SFrame({"image": [_img(8, 8)] * 2, "x": [1.0, 2.0]})
    with pytest.raises(SchemaError,
                       match=r"mean_nd has shape \(8, 8, 3\) but .* \(H, W, C\) = \(8, 8, 1\)"):
        SFrameStream(sf, "image", image=ImageOptions(mean_nd=np.zeros((8, 8, 3))))
    with pytest.raises(SchemaError, match=r"row 0 of image column 'image' is 8x8 after "
                                          r"resizing, too small to crop data_shape \(1, 10, 10\)"):
        _drain(sf, "image", image=ImageOptions(data_shape=(1, 10, 10)))
    with pytest.raises(ValueError, match="random_crop=True needs data_shape"):
        SFrameStream(sf, "image", image=ImageOptions(random_crop=True))
    with pytest.raises(ValueError, match="resize must be"):
        SFrameStream(sf, "image", image=ImageOptions(resize=(3, 4, 5)))
    with pytest.raises(SchemaError,
                       match=r"data_field 'x' is float; this iterator needs one image column"):
        SFrameStream(sf, "x", require_image=True, who="SFrameImageIter")


def test_undecodable_image_names_the_row():
    good = fs.Image(np.zeros((4, 4, 3), np.uint8))
    png = fs.Image._from_parts(b"\x89PNG\r\n\x1a\n broken", 4, 4, 3, "PNG")
    with pytest.raises(ImageError, match=r"row 1 of 'image': cannot decode the image"):
        _drain(fs.SFrame({"image": [good, png]}), "image")


def test_parameter_errors():
    sf = _table()
    with pytest.raises(ValueError, match="part_index must be in"):
        SFrameStream(sf, "x", part_index=2, num_parts=2)
    with pytest.raises(ValueError, match="window must be at least 1"):
        SFrameStream(sf, "x", window=0)
    with pytest.raises(ValueError, match="last_batch_handle must be one of"):
        SFrameStream(sf, "x", last_batch_handle="keep")
    with pytest.raises(SchemaError, match="expected an SFrame or the path of a saved one"):
        SFrameStream(42, "x")
