"""CIFAR-10 binary batches: round trip against the format's definition and one-line errors."""

import numpy as np
import pytest

from repdyn.bench.errors import DataError
from repdyn.tasks.cifar import CIFAR10_FILES, check_cifar10_folder, load_cifar10


def write_tiny_cifar(folder, n=3, seed=0):
    """The six binary batches, each n records of 1 label byte + 3072 pixel bytes (R, G, B planes)."""
    rng = np.random.default_rng(seed)
    data = {}
    for name in CIFAR10_FILES["train"] + CIFAR10_FILES["test"]:
        images = rng.integers(0, 256, size=(n, 3, 32, 32), dtype=np.uint8)
        labels = rng.integers(0, 10, size=n, dtype=np.uint8)
        (folder / name).write_bytes(b"".join(bytes([lab]) + img.tobytes() for lab, img in zip(labels, images,
                                                                                           strict=True)))
        data[name] = (images, labels)
    return data


def test_round_trip(tmp_path):
    data = write_tiny_cifar(tmp_path)
    x, y = load_cifar10(tmp_path, "train")
    assert x.shape == (15, 3072) and y.shape == (15,)
    images, labels = data["data_batch_2.bin"]
    assert np.allclose(x[3:6].numpy(), images.reshape(3, -1) / 255.0)
    assert y[3:6].tolist() == labels.tolist()
    x_test, _ = load_cifar10(tmp_path, "test")
    assert x_test.shape == (3, 3072)
    # The red plane comes first: pixel (0, 0, 0) of the first test image is byte 1 of the file.
    assert x_test[0, 0].item() == pytest.approx((tmp_path / "test_batch.bin").read_bytes()[1] / 255.0)


def test_nested_folder_is_found(tmp_path):
    nested = tmp_path / "cifar-10-batches-bin"
    nested.mkdir()
    write_tiny_cifar(nested, n=1)
    check_cifar10_folder(tmp_path)


def test_malformed_files_are_named(tmp_path):
    write_tiny_cifar(tmp_path)
    batch = tmp_path / "data_batch_3.bin"
    batch.write_bytes(batch.read_bytes()[:-5])
    with pytest.raises(DataError, match="data_batch_3.bin: .* not a whole number of 3073-byte"):
        load_cifar10(tmp_path, "train")
    test = tmp_path / "test_batch.bin"
    test.write_bytes(bytes([12]) + bytes(3072))
    with pytest.raises(DataError, match="test_batch.bin: label byte 12 outside 0..9"):
        load_cifar10(tmp_path, "test")
    test.unlink()
    with pytest.raises(DataError, match="has no test_batch.bin"):
        load_cifar10(tmp_path, "test")
    with pytest.raises(DataError, match="does not exist"):
        load_cifar10(tmp_path / "nope")
