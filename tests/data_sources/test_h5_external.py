"""HDF5 entries that read other files are refused unless the user opts in.

An external link, external storage or a virtual dataset inside an `.h5` makes h5py read
files outside it (anywhere the process may read); trainkit refuses them, naming the file,
the entry and what it would read, unless `TRAINKIT_ALLOW_EXTERNAL_H5=1`.
"""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from trainkit import DataGenerator
from trainkit.data.sources.formats import ExternalH5Error

X = np.arange(16 * 2, dtype=np.float32).reshape(16, 2)


@pytest.fixture
def outside(tmp_path):
    """Files outside the data folder that an HDF5 file may point at."""
    folder = tmp_path / "outside"
    folder.mkdir()
    with h5py.File(folder / "secret.h5", "w") as file:
        file["x"] = X + 100
    (X + 200).tofile(folder / "raw.bin")
    return folder


def external_link(file, outside):
    file["x"] = h5py.ExternalLink(str(outside / "secret.h5"), "/x")


def external_storage(file, outside):
    file.create_dataset("x", X.shape, X.dtype, external=[(str(outside / "raw.bin"), 0, X.nbytes)])


def virtual(file, outside):
    layout = h5py.VirtualLayout(X.shape, X.dtype)
    layout[:] = h5py.VirtualSource(str(outside / "secret.h5"), "x", X.shape)
    file.create_virtual_dataset("x", layout)


def soft_to_external(file, outside):
    group = file.create_group("g")
    group["far"] = h5py.ExternalLink(str(outside / "secret.h5"), "/x")
    file["x"] = h5py.SoftLink("/g/far")


KINDS = {
    "external link": (external_link, r"entry 'x' is an external link \('.*secret.h5:/x'\)"),
    "external storage": (external_storage, r"entry 'x' stores its bytes in external files"),
    "virtual dataset": (virtual, r"entry 'x' is a virtual dataset mapped from other files"),
    "soft link to an external link": (soft_to_external, r"entry 'x' is an external link"),
}


@pytest.mark.parametrize("kind", KINDS)
def test_an_hdf5_entry_reading_another_file_is_refused_unless_opted_in(
    tmp_path, outside, monkeypatch, kind
):
    make, message = KINDS[kind]
    data = tmp_path / "data"
    data.mkdir()
    with h5py.File(data / "x.h5", "w") as file:
        make(file, outside)
    monkeypatch.delenv("TRAINKIT_ALLOW_EXTERNAL_H5", raising=False)
    with pytest.raises(ExternalH5Error, match=rf"x.h5': {message}.*TRAINKIT_ALLOW_EXTERNAL_H5=1"):
        DataGenerator(str(data / "x.h5"), batch_size=8)
    np.save(tmp_path / "samples.npy", X)
    with pytest.raises(ExternalH5Error, match=message):  # as a labels file
        DataGenerator(str(tmp_path / "samples.npy"), str(data / "x.h5"), batch_size=8)
    monkeypatch.setenv("TRAINKIT_ALLOW_EXTERNAL_H5", "1")
    x, _ = DataGenerator(str(data / "x.h5"), batch_size=8).get()
    np.testing.assert_array_equal(x, X[:8] + (200 if kind == "external storage" else 100))


def test_a_set_file_with_an_external_entry_is_refused_in_a_folder_of_sets(tmp_path, outside):
    data = tmp_path / "sets"
    data.mkdir()
    for k in range(2):
        with h5py.File(data / f"set_{k}.h5", "w") as file:
            if k == 1:
                external_link(file, outside)
            else:
                file["x"] = X
    with pytest.raises(ExternalH5Error, match=r"set_1.h5': entry 'x' is an external link"):
        DataGenerator(str(data), batch_size=8)


def test_local_links_and_plain_datasets_are_served(tmp_path):
    with h5py.File(tmp_path / "x.h5", "w") as file:
        file["data/x"] = X
        file["x"] = h5py.SoftLink("/data/x")
    x, _ = DataGenerator(str(tmp_path / "x.h5"), batch_size=8).get()
    np.testing.assert_array_equal(x, X[:8])
