"""Every layout round-trips: files -> DataGenerator -> the exact samples and labels back."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from tests.data_sources.layouts import LAYOUTS, NUM_SAMPLES, build
from trainkit import DataGenerator

# name -> DataGenerator keywords; sets hold 2 samples each.
MODES: dict[str, dict[str, Any]] = {
    "combine": {"batch_size": 4},
    "split": {"batch_size": 1},
    "sample_level": {"batch_size": 3},
    "sample_level_remainder": {"batch_size": 5},
    "shuffle_sets": {"batch_size": 4, "shuffle": True, "seed": 3},
    "shuffle_samples": {"batch_size": 5, "shuffle": "samples", "seed": 3},
    "group_batches": {"batch_size": 1, "shuffle": True, "shuffle_group_batches": True},
    "group_samples": {"batch_size": 4, "shuffle_group_samples": True},
    "superbatch_drop": {"batch_size": 5, "superbatch": True, "drop_remainder": True},
}
ORDERED = {"combine", "split", "sample_level", "sample_level_remainder"}


def serve_epoch(dg: DataGenerator) -> list[tuple[Any, Any]]:
    return [(np.array(x), np.array(y)) for x, y in dg]


@pytest.mark.parametrize("mode", list(MODES))
@pytest.mark.parametrize("layout", LAYOUTS, ids=lambda f: f.__name__)
def test_every_layout_serves_exact_samples_and_labels_in_every_batching_mode(
    layout, mode, tmp_path
):
    keywords, x_expected, y_expected = build(layout, tmp_path)
    dg = DataGenerator(**keywords, **MODES[mode])
    served = serve_epoch(dg)
    plan = dg.plan(0)
    assert len(served) == len(plan)
    for (x, y), batch in zip(served, plan):  # each batch holds its planned rows, labels paired
        rows = batch.rows()
        np.testing.assert_array_equal(x, x_expected[rows])
        np.testing.assert_array_equal(y, y_expected[rows])
        np.testing.assert_array_equal(x[:, 0], np.asarray(y).reshape(-1))
    seen = np.sort(np.concatenate([np.asarray(y).reshape(-1) for _, y in served]))
    if dg.drop_remainder:
        assert len(seen) == NUM_SAMPLES - NUM_SAMPLES % dg.batch_size
        assert len(np.unique(seen)) == len(seen)
    else:
        np.testing.assert_array_equal(seen, np.arange(NUM_SAMPLES))  # every sample once
    if mode in ORDERED:  # the documented order: sets in numeric order, samples in file order
        np.testing.assert_array_equal(np.concatenate([x for x, _ in served]), x_expected)


def test_set_nums_are_the_number_that_varies_in_numeric_order(tmp_path):
    for k in (10, 2, 1):
        np.save(tmp_path / f"batch32_{k}.npy", np.full((2, 1), k))
    dg = DataGenerator(tmp_path, batch_size=2)
    assert dg.set_nums_original == ["1", "2", "10"]
    assert [int(x[0, 0]) for x, _ in dg] == [1, 2, 10]


def test_zero_padded_set_numbers_keep_their_spelling_and_sort_by_value(tmp_path):
    for k in (7, 10, 8):
        np.save(tmp_path / f"data_{k:03d}.npy", np.full((1, 1), k))
    dg = DataGenerator(tmp_path, batch_size=1)
    assert dg.set_nums_original == ["007", "008", "010"]


def test_explicit_set_nums_keep_the_given_order(tmp_path):
    for k in range(4):
        np.save(tmp_path / f"data{k}.npy", np.full((2, 1), k))
    dg = DataGenerator(tmp_path, batch_size=2, set_nums=[3, "1"])
    assert [int(x[0, 0]) for x, _ in dg] == [3, 1]


@pytest.mark.parametrize("name", ["labels.h5", "labels.npy", "labels.csv", "Label_file.npy"])
def test_a_labels_file_in_the_data_folder_is_not_a_set(tmp_path, name):
    for k in range(3):
        np.save(tmp_path / f"data{k}.npy", np.zeros((2, 1)))
    (tmp_path / name).write_bytes(b"")  # never opened: skipped by name
    assert DataGenerator(tmp_path, batch_size=2).set_nums_original == ["0", "1", "2"]


def test_unsupported_files_beside_the_sets_are_ignored(tmp_path):
    for k in range(2):
        np.save(tmp_path / f"data{k}.npy", np.zeros((2, 1)))
    (tmp_path / "README.txt").write_text("notes")
    (tmp_path / ".hidden.npy").write_bytes(b"junk")
    assert DataGenerator(tmp_path, batch_size=2).set_nums_original == ["0", "1"]


def test_without_labels_get_returns_x_and_none(tmp_path):
    for k in range(2):
        np.save(tmp_path / f"data{k}.npy", np.zeros((2, 1)))
    x, y = DataGenerator(tmp_path, batch_size=2).get()
    assert y is None and x.shape == (2, 1)


def test_split_batches_read_each_set_file_once(tmp_path):
    calls: list[str] = []

    def loader(path: str, set_num: str) -> np.ndarray:
        calls.append(set_num)
        return np.full((4, 1), int(set_num))

    for k in range(3):
        (tmp_path / f"s{k}.raw").write_bytes(b"")
    dg = DataGenerator(tmp_path, batch_size=1, loader=loader)
    calls.clear()  # opening loads each set once to learn its size
    assert len(list(dg)) == 12
    assert calls == ["0", "1", "2"]


def test_served_arrays_are_read_only_so_the_cache_cannot_be_corrupted(tmp_path):
    np.save(tmp_path / "data0.npy", np.zeros((4, 1)))
    x, _ = DataGenerator(tmp_path, batch_size=2).get()
    with pytest.raises(ValueError):
        x[0, 0] = 1.0


def test_integer_csv_labels_keyed_by_column_allow_shorter_columns(tmp_path):
    np.save(tmp_path / "data0.npy", np.arange(3).reshape(3, 1))
    np.save(tmp_path / "data1.npy", np.arange(3, 5).reshape(2, 1))
    (tmp_path / "labels.csv").write_text("0,1\n0,3\n1,4\n2,\n")
    dg = DataGenerator(tmp_path, tmp_path / "labels.csv", batch_size=5)
    _, y = dg.get()
    np.testing.assert_array_equal(y, [0, 1, 2, 3, 4])
    assert y.dtype == np.int64


def test_names_that_only_start_with_label_letters_are_data(tmp_path):
    for k in range(2):
        np.save(tmp_path / f"labeled_images_{k}.npy", np.zeros((2, 1)))
    assert DataGenerator(tmp_path, batch_size=2).set_nums_original == ["0", "1"]
