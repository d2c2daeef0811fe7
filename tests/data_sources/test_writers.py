"""`write_sets` writes numbered sets that DataGenerator(**keywords) serves back exactly."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from trainkit import DataGenerator, write_sets
from trainkit.data import write_sets as write_sets_from_data

X = np.arange(22 * 2, dtype="float32").reshape(22, 2)
Y = np.arange(22)


def served(dg: DataGenerator) -> tuple[np.ndarray, np.ndarray]:
    xs, ys = zip(*dg)
    return np.concatenate(xs), np.concatenate(ys)


@pytest.mark.parametrize("format", ["npy", "h5", "h5-single"])
def test_written_sets_read_back_in_order_with_the_remainder_in_the_last_set(format, tmp_path):
    keywords = write_sets(X, Y, tmp_path / "out", 5, format=format)
    assert set(keywords) == {"data_path", "labels_path"}  # only source keywords
    dg = DataGenerator(**keywords, batch_size=5)
    assert dg.source.set_sizes == [5, 5, 5, 5, 2]  # 22 = 4 * 5 + 2: nothing dropped or padded
    x, y = served(dg)
    np.testing.assert_array_equal(x, X)
    np.testing.assert_array_equal(y, Y)


@pytest.mark.parametrize("format", ["npy", "h5", "h5-single"])
def test_shuffled_sets_hold_the_seeded_permutation(format, tmp_path):
    keywords = write_sets(X, Y, tmp_path / "out", 4, format=format, shuffle=True, seed=7)
    x, y = served(DataGenerator(**keywords, batch_size=4))
    order = np.random.default_rng(7).permutation(len(X))
    np.testing.assert_array_equal(y, Y[order])
    np.testing.assert_array_equal(x, X[order])


def test_without_labels_only_data_path_is_returned(tmp_path):
    keywords = write_sets(X, None, tmp_path / "out", 8)
    assert set(keywords) == {"data_path"}
    assert DataGenerator(**keywords, batch_size=8).get()[1] is None


def test_input_is_read_by_rows_from_an_h5py_dataset_with_compression(tmp_path):
    with h5py.File(tmp_path / "in.h5", "w") as handle:
        handle["x"] = X
        keywords = write_sets(
            handle["x"], Y, tmp_path / "out", 6, format="h5", shuffle=True, compression="gzip"
        )
    with h5py.File(tmp_path / "out" / "data_0.h5", "r") as handle:
        assert handle["data"].compression == "gzip"
    x, y = served(DataGenerator(**keywords, batch_size=3))
    np.testing.assert_array_equal(x, X[y])


def test_write_sets_is_exported_from_trainkit_and_trainkit_data():
    assert write_sets is write_sets_from_data


@pytest.mark.parametrize(
    ("kwargs", "error", "pattern"),
    [
        ({"format": "parquet"}, ValueError, r"Received: format='parquet'"),
        ({"set_size": 0}, ValueError, r"Received: set_size=0"),
        ({"compression": "gzip"}, ValueError, r"HDF5 formats only.*Received: compression='gzip'"),
        ({"labels": Y[:3]}, ValueError, r"one row per sample \(22\)"),
        ({"data": np.float32(1)}, ValueError, r"at least one sample"),
        ({"shuffle": "yes"}, TypeError, r"Received: shuffle='yes'"),
    ],
)
def test_bad_writer_arguments_raise_naming_the_value(kwargs, error, pattern, tmp_path):
    arguments = {"data": X, "labels": Y, "out": tmp_path / "out", "set_size": 4, **kwargs}
    with pytest.raises(error, match=pattern):
        write_sets(**arguments)


def test_existing_files_are_never_overwritten(tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "data_0.npy").write_bytes(b"keep")
    with pytest.raises(ValueError, match=r"never overwrites files.*Received: out="):
        write_sets(X, Y, tmp_path / "out", 4)
    assert (tmp_path / "out" / "data_0.npy").read_bytes() == b"keep"
