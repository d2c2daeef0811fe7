"""DeepTrain's `image/val` layout: a folder of some sets with a labels.h5 keyed by every set
of the dataset, and set files of compressed bytes that need a loader."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from trainkit import DataGenerator


def val_folder(tmp_path, sets=(3, 5), keys=range(8)):
    """Set files for `sets` only, labels.h5 with a key for every set in `keys`."""
    for k in sets:
        np.save(tmp_path / f"16batch__{k}.npy", np.full((4, 2), k, "float32"))
    with h5py.File(tmp_path / "labels.h5", "w") as handle:
        for k in keys:
            handle[str(k)] = np.full(4, 10 * k, "int64")
    return tmp_path


def test_labels_keyed_by_more_sets_pair_each_set_with_its_own_key_and_warn(tmp_path):
    folder = val_folder(tmp_path)
    with pytest.warns(UserWarning, match=r"6 keys that match no set.*'0', '1', '2', '4', '6'"):
        dg = DataGenerator(data_path=folder, labels_path=folder / "labels.h5", batch_size=4)
    assert dg.set_nums_original == ["3", "5"]
    for x, y in dg:
        np.testing.assert_array_equal(y, 10 * x[:, 0].astype("int64"))


def test_a_set_without_its_key_is_still_refused(tmp_path):
    folder = val_folder(tmp_path, sets=(3, 9))
    with pytest.raises(ValueError, match=r"sets \['9'\] have no labels"):
        DataGenerator(data_path=folder, labels_path=folder / "labels.h5", batch_size=4)


def test_set_files_of_compressed_bytes_name_the_loader(tmp_path):
    blob = np.frombuffer(b"\x04\x22\x4d\x18" + bytes(996), dtype="S1000")
    for k in range(2):
        np.save(tmp_path / f"16batch__{k}.npy", blob)
    with pytest.raises(ValueError, match=r"look like compressed .*bytes.*Pass `loader=`"):
        DataGenerator(data_path=tmp_path, batch_size=4)
