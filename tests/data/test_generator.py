"""The DataGenerator state machine: get/update_state/on_epoch_end, iteration, sources."""

import json

import h5py
import numpy as np
import pytest

from trainkit import DataGenerator, TimeseriesPreprocessor


def arrays(n=10, features=3):
    x = np.arange(n * features, dtype="float32").reshape(n, features)
    return x, np.arange(n)


def served(dg):
    """One epoch of (set_name, labels) as the generator serves it."""
    return [(dg.set_name, y.tolist()) for _, y in dg]


def test_get_twice_without_update_state_returns_the_same_slice():
    x, y = arrays()
    dg = DataGenerator(data=x, labels=y, batch_size=4)
    first = dg.get()
    assert dg.get() is first
    dg.update_state()
    assert not np.array_equal(dg.get()[1], first[1])


def test_state_flags_follow_the_contract_through_an_epoch():
    x, y = arrays(8)
    dg = DataGenerator(data=x, labels=y, batch_size=4, preprocessor=TimeseriesPreprocessor(1))
    x3 = np.zeros((8, 2, 1))
    dg = DataGenerator(data=x3, labels=y, batch_size=4, preprocessor=TimeseriesPreprocessor(1))
    assert (dg.batch_loaded, dg.slice_idx, dg.all_data_exhausted) == (False, 0, False)
    dg.get()
    assert (dg.batch_loaded, dg.batch_exhausted, dg.slices_per_batch) == (True, False, 2)
    dg.update_state()
    assert (dg.slice_idx, dg.batch_exhausted) == (1, False)
    dg.update_state()
    assert dg.batch_exhausted and not dg.batch_loaded and dg.set_name == "0"
    assert not dg.all_data_exhausted
    dg.update_state()
    dg.update_state()
    assert dg.all_data_exhausted and dg.set_name == "1"
    with pytest.raises(RuntimeError, match="on_epoch_end"):
        dg.get()
    assert dg.on_epoch_end() == 1
    assert (dg.epoch, dg.all_data_exhausted, dg.set_name) == (1, False, "0")


def test_iteration_walks_the_rest_of_the_epoch_then_starts_the_next():
    x, y = arrays(10)
    dg = DataGenerator(data=x, labels=y, batch_size=4)
    dg.get()
    dg.update_state()
    assert [name for name, _ in served(dg)] == ["1", "2"]
    assert dg.all_data_exhausted
    assert [name for name, _ in served(dg)] == ["0", "1", "2"]
    assert dg.epoch == 1


def test_every_sample_is_served_once_per_epoch_with_its_label():
    x, y = arrays(23)
    dg = DataGenerator(data=x, labels=y, batch_size=5, shuffle="samples", seed=4)
    for _ in range(3):
        batches = list(dg)
        xs = np.concatenate([b[0] for b in batches])
        ys = np.concatenate([b[1] for b in batches])
        assert sorted(ys.tolist()) == list(range(23))
        np.testing.assert_array_equal(xs, x[ys])


def test_len_counts_batches_and_set_nums_to_process_shrinks():
    x, y = arrays(10)
    dg = DataGenerator(data=x, labels=y, batch_size=4)
    assert len(dg) == 3
    assert dg.set_nums_original == ["0", "1", "2"]
    assert dg.set_nums_to_process == ["0", "1", "2"]
    dg.get()
    dg.update_state()
    assert dg.set_nums_to_process == ["1", "2"]
    assert len(DataGenerator(data=x, batch_size=4, drop_remainder=True)) == 2


def test_without_labels_get_returns_none_for_labels():
    x, _ = arrays()
    assert DataGenerator(data=x, batch_size=4).get()[1] is None


def test_served_slices_are_read_only_so_the_users_array_is_never_modified():
    x, y = arrays()
    before = x.copy()
    batch, _ = DataGenerator(data=x, labels=y, batch_size=5).get()
    with pytest.raises(ValueError, match="read-only"):
        batch += 1
    np.testing.assert_array_equal(x, before)


def test_set_nums_select_and_order_sets():
    x, y = arrays(12)
    dg = DataGenerator(data=x, labels=y, batch_size=4, set_nums=[2, "0"])
    assert [ys for _, ys in served(dg)] == [[8, 9, 10, 11], [0, 1, 2, 3]]


def test_memmap_npy_file_and_h5py_dataset_serve_the_same_batches(tmp_path):
    x, y = arrays(11)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", y)
    memmap = np.lib.format.open_memmap(tmp_path / "m.npy", mode="w+", dtype=x.dtype, shape=x.shape)
    memmap[:] = x
    with h5py.File(tmp_path / "d.h5", "w") as f:
        f["x"] = x
    reference = [
        (a.tolist(), b.tolist())
        for a, b in DataGenerator(data=x, labels=y, batch_size=3, shuffle="samples")
    ]
    with h5py.File(tmp_path / "d.h5", "r") as f:
        for kwargs in (
            {"data": memmap},
            {"data_path": str(tmp_path / "x.npy")},
            {"data_path": tmp_path / "x.npy"},
            {"data": f["x"]},
        ):
            dg = DataGenerator(
                **kwargs, labels_path=str(tmp_path / "y.npy"), batch_size=3, shuffle="samples"
            )
            assert [(np.asarray(a).tolist(), b.tolist()) for a, b in dg] == reference


def test_one_npy_file_is_memory_mapped_not_read_whole(tmp_path):
    np.save(tmp_path / "x.npy", np.zeros((100, 4)))
    dg = DataGenerator(data_path=str(tmp_path / "x.npy"), batch_size=10)
    assert isinstance(dg.source.array, np.memmap)


def test_superbatch_reads_everything_into_memory_once(tmp_path):
    x, y = arrays(9)
    np.save(tmp_path / "x.npy", x)
    dg = DataGenerator(data_path=str(tmp_path / "x.npy"), labels=y, batch_size=3, superbatch=True)
    assert not isinstance(dg.source.array, np.memmap)
    assert [b.tolist() for _, b in dg] == [[0, 1, 2], [3, 4, 5], [6, 7, 8]]


def test_state_dict_is_small_json_and_restores_the_cursor():
    x, y = arrays(40)
    dg = DataGenerator(data=x, labels=y, batch_size=4, shuffle=True, seed=2)
    for _ in range(3):
        dg.get()
        dg.update_state()
    state = json.loads(json.dumps(dg.state_dict()))
    assert len(json.dumps(state)) < 2000
    restored = DataGenerator(data=x, labels=y, batch_size=4, shuffle=True, seed=2)
    restored.load_state_dict(state)
    assert restored.set_nums_to_process == dg.set_nums_to_process
    np.testing.assert_array_equal(restored.get()[1], dg.get()[1])


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"batch_size": 5}, "batch_size"),
        ({"seed": 3}, "seed"),
        ({"shuffle": "samples"}, "shuffle"),
        ({"drop_remainder": True}, "drop_remainder"),
        ({"preprocessor": TimeseriesPreprocessor(1)}, "preprocessor"),
        ({"labels": np.arange(40) * 2}, None),
        ({"data": np.zeros((41, 2), dtype="float32"), "labels": np.arange(41)}, "num_samples"),
        ({"data": np.zeros((40, 3), dtype="float64")}, "dtype"),
        ({"set_nums": [1, 0]}, "set_nums"),
        ({"shard": (0, 2)}, "shard_count"),
    ],
)
def test_a_state_dict_from_other_data_or_settings_is_refused_naming_what_differs(change, named):
    base = {"data": np.zeros((40, 2), dtype="float32"), "labels": np.arange(40), "batch_size": 4}
    state = DataGenerator(**base).state_dict()
    other = DataGenerator(**{**base, **change})
    if named is None:  # same shapes, other values: fingerprints take no content hashes
        other.load_state_dict(state)
        return
    with pytest.raises(ValueError, match=named):
        other.load_state_dict(state)


def test_prefetch_is_accepted_and_serves_the_same_stream():
    x, y = arrays(10)
    plain = [b.tolist() for _, b in DataGenerator(data=x, labels=y, batch_size=3, shuffle=True)]
    ahead = [
        b.tolist()
        for _, b in DataGenerator(data=x, labels=y, batch_size=3, shuffle=True, prefetch=2)
    ]
    assert plain == ahead


def test_on_epoch_end_before_the_epoch_is_exhausted_starts_the_next_epoch():
    x, y = arrays(10)
    dg = DataGenerator(data=x, labels=y, batch_size=4)
    dg.get()
    assert dg.on_epoch_end() == 1
    assert [name for name, _ in served(dg)] == ["0", "1", "2"]


def test_changing_a_returned_state_dict_leaves_the_generator_alone():
    x = np.arange(40, dtype=np.float32).reshape(20, 2)
    dg = DataGenerator(data=x, batch_size=4)
    state = dg.state_dict()
    state["fingerprint"]["set_nums"].append("99")
    assert dg.state_dict()["fingerprint"]["set_nums"] == ["0", "1", "2", "3", "4"]
    dg.load_state_dict(dg.state_dict())  # its own state still loads
