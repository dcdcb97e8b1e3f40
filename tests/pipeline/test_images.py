"""Image streams on Fashion-MNIST, digits and photos, against NumPy and frames' own image ops."""

from __future__ import annotations

import numpy as np
import pytest

import framestream as fs
from framestream.frames import _image_ops as ops
from framestream.pipeline import ImageOptions, SFrameStream
from framestream.pipeline._random import row_uniforms, salt


def _stream(sf, **kw) -> SFrameStream:
    fields = ImageOptions.__dataclass_fields__
    image = ImageOptions(**{k: kw.pop(k) for k in list(kw) if k in fields})
    label, batch_size = kw.pop("label", None), kw.pop("batch_size", 50)
    return SFrameStream(sf, "image", label, batch_size, image=image, **kw)


def _all(stream: SFrameStream, epoch: int = 0) -> tuple[np.ndarray, np.ndarray]:
    batches = list(stream.batches(epoch))
    return np.concatenate([b.data[0] for b in batches]), np.concatenate([b.index for b in batches])


def test_raw_pixels_and_labels_match_the_idx_files(fashion_test, fashion_pixels):
    images, labels = fashion_pixels
    sf = fashion_test[:300]
    s = _stream(sf, label="label", batch_size=128)
    assert s.provide_data[0].shape == (128, 1, 28, 28)
    batches = list(s.batches(0))
    data = np.concatenate([b.data[0] for b in batches])[:300]
    np.testing.assert_array_equal(data, images[:300, None].astype(np.float32))
    np.testing.assert_array_equal(np.concatenate([b.label[0] for b in batches])[:300], labels[:300])
    assert batches[-1].pad == 84


def test_mean_and_scale(fashion_test, fashion_pixels):
    sf, raw = fashion_test[:100], fashion_pixels[0][:100, None].astype(np.float32)
    data, _ = _all(_stream(sf, mean=(33.0, 1.0, 2.0), scale=1 / 255))
    np.testing.assert_allclose(data, (raw - 33.0) / 255, rtol=1e-6, atol=1e-6)
    mean_nd = raw.mean(axis=0).transpose(1, 2, 0)  # (H, W, C), as GraphLab takes it
    data, _ = _all(_stream(sf, mean_nd=mean_nd, scale=2.0))
    np.testing.assert_allclose(data, (raw - mean_nd.transpose(2, 0, 1)) * 2.0, rtol=1e-6)


def test_random_crop_and_mirror_are_per_image_seeded_and_redrawn_each_epoch(digits):
    pixels = np.stack([img.pixels() for img in digits["image"]])  # (N, 8, 8, 1)
    s = _stream(digits, data_shape=(1, 6, 6), random_crop=True, random_mirror=True, seed=9,
                shuffle=True, batch_size=64)
    for epoch in (0, 1):
        data, rows = _all(s, epoch)
        again, rows_again = _all(s, epoch)
        np.testing.assert_array_equal(data, again)
        np.testing.assert_array_equal(rows, rows_again)
        mirrored = row_uniforms((9, epoch, salt("random_mirror")), rows, 1)[:, 0] < 0.5
        for i in range(0, len(rows), 37):  # the oracle: frames' per-image ops with the same draws
            rng = ops.RowRandom(9, epoch, salt("random_crop"), int(rows[i]))
            want = ops.random_crop(pixels[rows[i]], 6, 6, rng)
            want = ops.flip_horizontal(want) if mirrored[i] else want
            np.testing.assert_array_equal(data[i], want.transpose(2, 0, 1))
        assert 0.4 < mirrored.mean() < 0.6  # per image, not per batch
    by_row = [d[np.argsort(r)] for d, r in (_all(s, 0), _all(s, 1))]
    assert not np.array_equal(by_row[0], by_row[1])  # each epoch draws anew


def test_centre_crop_after_resize_of_jpeg_photos():
    photos = fs.datasets.sample_photos()  # two 640x427 RGB JPEGs
    data, _ = _all(_stream(photos, resize=64, data_shape=(3, 64, 64), batch_size=2))
    for i, img in enumerate(photos["image"]):
        # the shorter side (427) to 64, so 640 -> 96
        resized = ops.resize(img.pixels(), 96, 64, ops.parse_resample("bilinear"))
        want = ops.center_crop(resized, 64, 64)
        np.testing.assert_array_equal(data[i], want.transpose(2, 0, 1))


def test_resize_to_exact_size_and_channel_conversion(digits):
    data, rows = _all(_stream(digits[:20], resize=(12, 10), batch_size=20))
    assert data.shape == (20, 1, 12, 10)
    img = digits["image"][int(rows[3])]
    want = ops.resize(img.pixels(), 10, 12, ops.parse_resample("bilinear"))
    np.testing.assert_array_equal(data[3], want.transpose(2, 0, 1))
    rgb, _ = _all(_stream(digits[:4], data_shape=(3, 8, 8), batch_size=4))
    assert rgb.shape == (4, 3, 8, 8)
    np.testing.assert_array_equal(rgb[:, 0], rgb[:, 2])


def test_graphlab_random_flip_mirrors_whole_batches(digits):
    plain, _ = _all(_stream(digits, batch_size=50))
    flipped, _ = _all(_stream(digits, batch_size=50, random_flip=True, seed=4))
    kinds = []
    for k in range(0, len(plain), 50):
        p, f = plain[k : k + 50], flipped[k : k + 50]
        if np.array_equal(p, f):
            kinds.append("kept")
        else:
            np.testing.assert_array_equal(f, p[:, :, :, ::-1])
            kinds.append("mirrored")
    assert {"kept", "mirrored"} == set(kinds)


def test_shuffled_image_batches_follow_their_rows(fashion_test, fashion_pixels):
    images, labels = fashion_pixels
    s = _stream(fashion_test[:1000], label="label", batch_size=100, shuffle=True, seed=2)
    for b in s.batches(3):
        np.testing.assert_array_equal(b.data[0][:, 0], images[b.index])
        np.testing.assert_array_equal(b.label[0], labels[b.index])


def test_row_uniforms_equal_frames_row_random():
    rows = np.array([0, 1, 17, 2**40])
    u = row_uniforms((5, 2, salt("x")), rows, 3)
    for i, r in enumerate(rows):
        rng = ops.RowRandom(5, 2, salt("x"), int(r))
        assert u[i].tolist() == [rng.random() for _ in range(3)]


@pytest.mark.parametrize("threads", [1, 3])
def test_results_do_not_depend_on_threads(digits, threads):
    kw = dict(data_shape=(1, 7, 7), random_crop=True, random_mirror=True, seed=1)
    ref, _ = _all(_stream(digits, num_threads=2, **kw))
    got, _ = _all(_stream(digits, num_threads=threads, **kw))
    np.testing.assert_array_equal(ref, got)
