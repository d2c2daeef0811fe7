"""Input that used to change silently is read exactly, refused, or skipped with a warning."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from tests.data_sources.test_bad_input import GARBAGE
from trainkit import DataGenerator


def snapshot(folder: Path) -> dict[str, object]:
    """Bytes and mtimes of the files, targets of the links (broken ones included)."""
    return {
        entry.name: os.readlink(entry)
        if entry.is_symlink()
        else (entry.read_bytes(), entry.stat().st_mtime_ns)
        for entry in folder.iterdir()
    }


def npy_sets(folder: Path, count: int = 3) -> Path:
    for k in range(count):
        np.save(folder / f"data{k}.npy", np.full((2, 1), float(k)))
    return folder


def test_a_csv_with_a_byte_order_mark_keeps_its_first_row(tmp_path):
    path = tmp_path / "x.csv"
    path.write_bytes(b"\xef\xbb\xbf1,2\n3,4\n")
    dg = DataGenerator(data_path=path, batch_size=2)
    np.testing.assert_array_equal(dg.get()[0], [[1, 2], [3, 4]])


def test_a_csv_header_after_a_byte_order_mark_is_still_a_header(tmp_path):
    path = tmp_path / "x.csv"
    path.write_bytes(b"\xef\xbb\xbfa,b\n3,4\n")
    np.testing.assert_array_equal(DataGenerator(data_path=path, batch_size=1).get()[0], [[3, 4]])


def test_integers_of_a_csv_up_to_the_int64_limit_are_read_exactly(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text("9007199254740993\n9223372036854775807\n")
    x = DataGenerator(data_path=path, batch_size=2).get()[0]
    assert x.dtype == np.int64 and x[:, 0].tolist() == [2**53 + 1, 2**63 - 1]


def dangling(folder: Path) -> str:
    os.symlink(folder / "gone.npy", folder / "data3.npy")
    return r"'data3\.npy' \(its target '.*gone\.npy' is missing\)"


def looping(folder: Path) -> str:
    os.symlink(folder / "data4.npy", folder / "data3.npy")
    os.symlink(folder / "data3.npy", folder / "data4.npy")
    return r"'data3\.npy' \(a link loop\), 'data4\.npy' \(a link loop\)"


@pytest.mark.parametrize("make_link", [dangling, looping])
def test_set_files_behind_broken_links_are_skipped_with_a_warning_naming_them(make_link, tmp_path):
    npy_sets(tmp_path)
    pattern = make_link(tmp_path)
    before = snapshot(tmp_path)
    with pytest.warns(UserWarning, match=r"skipping \d symbolic link\(s\) .*" + pattern) as seen:
        dg = DataGenerator(data_path=tmp_path, batch_size=2)
    assert len(seen) == 1
    assert dg.set_nums_original == ["0", "1", "2"]
    assert snapshot(tmp_path) == before


def test_a_broken_link_with_another_extension_is_ignored_without_a_warning(tmp_path, recwarn):
    npy_sets(tmp_path)
    os.symlink(tmp_path / "gone.txt", tmp_path / "notes.txt")
    DataGenerator(data_path=tmp_path, batch_size=2)
    assert not recwarn.list


def test_an_empty_set_is_skipped_with_a_warning_naming_its_file(tmp_path):
    npy_sets(tmp_path)
    np.save(tmp_path / "data3.npy", np.zeros((0, 1)))
    with pytest.warns(UserWarning, match=r"skipping 1 set\(s\) that hold no samples: .*data3\.npy"):
        dg = DataGenerator(data_path=tmp_path, batch_size=2)
    assert [batch.set_name for batch in dg.plan(0)] == ["0", "1", "2"]


def test_an_unlistable_folder_raises_permission_error_saying_so(tmp_path, monkeypatch):
    npy_sets(tmp_path)
    real_listdir = os.listdir

    def listdir(path):
        if os.fspath(path) == os.fspath(tmp_path):
            raise PermissionError(13, "Permission denied")
        return real_listdir(path)

    monkeypatch.setattr(os, "listdir", listdir)
    with pytest.raises(PermissionError, match=r"cannot be listed: permission denied.*chmod"):
        DataGenerator(data_path=tmp_path, batch_size=2)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_an_unreadable_set_file_raises_permission_error_not_corrupt_file(tmp_path):
    npy_sets(tmp_path)
    (tmp_path / "data1.npy").chmod(0)
    with pytest.raises(PermissionError, match=r"data1\.npy': permission denied"):
        DataGenerator(data_path=tmp_path, batch_size=2)


@pytest.mark.parametrize("name", ["x.npy", "x.h5", "x.npz"])
def test_corrupt_file_messages_read_as_plain_english(name, tmp_path):
    (tmp_path / name).write_bytes(GARBAGE)
    with pytest.raises(ValueError) as info:
        DataGenerator(data_path=tmp_path / name, batch_size=2)
    message = str(info.value)
    assert "Could not read" in message
    assert "a a " not in message and "an an " not in message and "file file" not in message


@pytest.mark.parametrize("seed", [0, 2**63 - 1])
def test_seeds_over_the_whole_int64_range_are_accepted(seed):
    DataGenerator(data=np.zeros((2, 1)), batch_size=1, seed=seed, shuffle=True).get()
