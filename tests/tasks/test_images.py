"""Image loaders: bundled digits, and MNIST IDX files checked against a hand-built file."""

import numpy as np
import pytest

from repdyn.bench.errors import DataError
from repdyn.tasks.images import load_digits, load_mnist, read_idx


def test_digits_are_bundled_and_scaled():
    x, y = load_digits()
    assert x.shape == (1797, 64) and y.shape == (1797,)
    assert float(x.min()) == 0.0 and float(x.max()) == 1.0
    assert sorted(set(y.tolist())) == list(range(10))


@pytest.mark.parametrize("gz", [False, True])
def test_mnist_idx_round_trip(tiny_mnist, gz):
    folder, data = tiny_mnist(gz=gz)
    x, y = load_mnist(folder, "train")
    images, labels = data["train"]
    assert x.shape == (6, 784)
    assert np.allclose(x.numpy(), images.reshape(6, -1) / 255.0)
    assert y.tolist() == labels.tolist()
    assert load_mnist(folder, "test")[0].shape == (4, 784)


def test_idx_wider_types(tmp_path):
    array = np.arange(6, dtype=">i4").reshape(2, 3)
    path = tmp_path / "ints.idx"
    path.write_bytes(b"\x00\x00\x0c\x02" + (2).to_bytes(4, "big") + (3).to_bytes(4, "big") + array.tobytes())
    assert read_idx(path).tolist() == [[0, 1, 2], [3, 4, 5]]


def test_malformed_mnist_files_are_named(tiny_mnist):
    tmp_path, _ = tiny_mnist()
    labels = tmp_path / "train-labels-idx1-ubyte"
    labels.write_bytes(labels.read_bytes()[:-2])
    with pytest.raises(DataError, match="train-labels-idx1-ubyte: IDX header declares shape"):
        load_mnist(tmp_path, "train")
    (tmp_path / "t10k-images-idx3-ubyte").write_bytes(b"PK\x03\x04junk")
    with pytest.raises(DataError, match="t10k-images-idx3-ubyte: not an IDX file"):
        load_mnist(tmp_path, "test")
    (tmp_path / "t10k-images-idx3-ubyte").unlink()
    with pytest.raises(DataError, match="has no t10k-images-idx3-ubyte"):
        load_mnist(tmp_path, "test")


def test_read_idx_rejects_bad_gzip(tmp_path):
    path = tmp_path / "x.gz"
    path.write_bytes(b"\x1f\x8b" + b"\x00" * 10)
    with pytest.raises(DataError, match="corrupt gzip"):
        read_idx(path)
