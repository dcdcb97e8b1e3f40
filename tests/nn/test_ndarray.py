"""mx.nd: the thin NDArray, constructors, imperative operators and MXNet's files."""

from __future__ import annotations

import numpy as np
import pytest

from framestream import mx
from framestream.nn._ndarray_file import ParamsFileError


def test_ndarray_basics():
    a = mx.nd.array([[1, 2, 3], [4, 5, 6]])
    assert a.shape == (2, 3) and a.dtype == np.float32 and a.context == mx.cpu()
    assert isinstance(a.asnumpy(), np.ndarray)
    np.testing.assert_array_equal(np.asarray(a), [[1, 2, 3], [4, 5, 6]])
    b = (a + 1) * 2 - a / 2
    np.testing.assert_allclose(b.asnumpy(), (a.asnumpy() + 1) * 2 - a.asnumpy() / 2)
    a[0] = 0
    assert a.asnumpy()[0].tolist() == [0, 0, 0]
    a[:] = np.ones((2, 3))
    assert a.asnumpy().sum() == 6
    c = a.copyto(mx.cpu(1))
    assert c.context == mx.cpu(1) and c.data is not a.data
    target = mx.nd.zeros((2, 3))
    a.copyto(target)
    assert target.asnumpy().sum() == 6
    with pytest.raises(ValueError, match=r"copyto: shapes differ, \(2, 3\) into \(3,\)"):
        a.copyto(mx.nd.zeros(3))
    assert mx.nd.array([7.0]).asscalar() == 7.0
    assert "<NDArray 2x3 @cpu(0)>" in repr(a)
    assert mx.nd.ones((2, 2), dtype=np.float64).dtype == np.float64
    assert mx.nd.full((2,), 3.5).asnumpy().tolist() == [3.5, 3.5]
    assert mx.nd.concatenate([a, a]).shape == (4, 3)


def test_imperative_operators():
    x = mx.nd.array(np.arange(6).reshape(2, 3))
    w = mx.nd.array(np.ones((4, 3)))
    b = mx.nd.zeros(4)
    out = mx.nd.FullyConnected(data=x, weight=w, bias=b, num_hidden=4)
    np.testing.assert_allclose(out.asnumpy(), np.arange(6).reshape(2, 3).sum(axis=1, keepdims=True) * np.ones(4))
    probs = mx.nd.softmax(x)
    np.testing.assert_allclose(probs.asnumpy().sum(axis=1), 1.0, rtol=1e-6)
    with pytest.raises(AttributeError, match="no attribute or operator 'NoSuchOp'"):
        _ = mx.nd.NoSuchOp


def test_save_load_round_trip(tmp_path):
    path = tmp_path / "arrays.params"
    data = {"arg:w": mx.nd.array(np.random.rand(3, 4)), "aux:m": mx.nd.array([1, 2], dtype=np.int32)}
    mx.nd.save(path, data)
    back = mx.nd.load(path)
    assert set(back) == set(data)
    np.testing.assert_array_equal(back["arg:w"].asnumpy(), data["arg:w"].asnumpy())
    assert back["aux:m"].dtype == np.int32
    mx.nd.save(path, [mx.nd.ones(2), mx.nd.zeros(3)])
    assert [a.shape for a in mx.nd.load(path)] == [(2,), (3,)]


def test_truncated_or_foreign_files_name_the_offset(tmp_path):
    path = tmp_path / "a.params"
    mx.nd.save(path, {"w": mx.nd.ones((10, 10))})
    raw = path.read_bytes()
    (tmp_path / "cut.params").write_bytes(raw[:100])
    with pytest.raises(ParamsFileError, match=r"cut.params: truncated at byte offset 64 while reading array 0"):
        mx.nd.load(tmp_path / "cut.params")
    (tmp_path / "text.params").write_bytes(b"this is not a params file at all")
    with pytest.raises(ParamsFileError, match=r"not an MXNet NDArray file .* at byte offset 0"):
        mx.nd.load(tmp_path / "text.params")
