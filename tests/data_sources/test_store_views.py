"""Views of an offline store: a read-time preprocessor, and a subset of x's members.

`DataGenerator(data_path=store, preprocessor=...)` transforms each stored slice as it is
read, drawing from the slice's rng key `(seed, epoch, batch, slice_idx)`;
`DataGenerator(data_path=store, keys=[...])` serves only the named members of a stored
dict x. Both are part of the fingerprint, and both resume bitwise, under SIGKILL too.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import numpy as np
import pytest

from tests.data_sources.test_offline_store import assert_same, slices
from trainkit import (
    DataGenerator,
    JitterPreprocessor,
    Preprocessor,
    TimeseriesPreprocessor,
    write_store,
)
from trainkit.data.plan import slice_key
from trainkit.testing import assert_resumes_identically

POINTS = np.arange(24 * 5 * 3, dtype=np.float32).reshape(24, 5, 3)
DATA = {"points": POINTS, "features": POINTS[:, :, 0] * 10}
LABELS = np.arange(24, dtype=np.int64)


class TwoWindows(Preprocessor):
    """Two slices per batch: the store's S = 2."""

    def on_batch_load(self, batch, labels):
        self.slices_per_batch = 2

    def process(self, batch, labels):
        half = {
            key: value[:, self.slice_idx * 2 : self.slice_idx * 2 + 3]
            for key, value in batch.items()
        }
        return half, labels


class SlicesInProcess(Preprocessor):
    """Sets slices_per_batch in process(), as DeepTrain's preprocessors do."""

    def process(self, batch, labels):
        self.slices_per_batch = 2
        return batch, labels


class WeightedWindows(TwoWindows):
    """TwoWindows with per-sample weights, stored with the slices."""

    def process(self, batch, labels):
        x, y = super().process(batch, labels)
        return x, y, np.linspace(0.5, 1, len(y)).astype(np.float32)


def store(tmp_path, weighted=False):
    """A store of 6 batches of 4 samples, 2 slices each, in chunks of 2 batches."""
    folder = tmp_path / ("weighted" if weighted else "store")
    pre = WeightedWindows() if weighted else TwoWindows()
    dg = DataGenerator(data=DATA, labels=LABELS, batch_size=4, preprocessor=pre)
    return str(write_store(dg, folder, chunk_size=2, progress=False))


def view(folder, sigma=0.5, keys=("points",), **kwargs):
    pre = JitterPreprocessor(sigma, keys=["points"]) if sigma else None
    return DataGenerator(
        folder, preprocessor=pre, keys=None if keys is None else list(keys), **kwargs
    )


# ------------------------------------------------------------------ read-time preprocessor
def test_each_slice_is_augmented_with_its_own_slice_key_every_epoch(tmp_path):
    folder = store(tmp_path)
    stored = slices(DataGenerator(folder))
    dg = view(folder, keys=None, shuffle=False, seed=5)
    epochs = []
    for _ in range(2):
        epochs.append(slices(dg))
        dg.on_epoch_end()
    assert len(epochs[0]) == len(stored) == 12  # 6 stored batches of 2 slices: no re-slicing
    for epoch, served in enumerate(epochs):
        for position, (plain, augmented) in enumerate(zip(stored, served)):
            jitter = JitterPreprocessor(0.5, keys=["points"])
            jitter.set_rng_key(slice_key(5, epoch, position // 2, position % 2))
            expected, _ = jitter.process(plain[3], plain[4])
            np.testing.assert_array_equal(augmented[3]["points"], expected["points"])
            np.testing.assert_array_equal(augmented[3]["features"], plain[3]["features"])
            np.testing.assert_array_equal(augmented[4], plain[4])
            assert augmented[:3] == plain[:3]  # set name, slice_idx, description
    assert not np.array_equal(epochs[0][0][3]["points"], epochs[1][0][3]["points"])


def test_stored_sample_weights_are_kept_and_prediction_drops_the_augmentation(tmp_path):
    folder = store(tmp_path, weighted=True)
    stored = slices(DataGenerator(folder))
    served = slices(view(folder, keys=None))
    np.testing.assert_array_equal(served[0][5], stored[0][5])
    assert not np.array_equal(served[0][3]["points"], stored[0][3]["points"])
    assert_same(stored, slices(view(folder, keys=None).for_prediction()))


def test_a_slicing_preprocessor_is_refused_at_construction_or_at_its_first_slice(tmp_path):
    plain = write_store(DataGenerator(data=POINTS, batch_size=4), tmp_path / "plain", chunk_size=2,
                        progress=False)  # fmt: skip
    windows = TimeseriesPreprocessor(window_size=1)
    with pytest.raises(ValueError, match=r"TimeseriesPreprocessor set slices_per_batch=5 in "
                       r"count_slices\(\).*must not slice"):  # fmt: skip
        DataGenerator(plain, preprocessor=windows)
    dg = DataGenerator(store(tmp_path), preprocessor=SlicesInProcess())
    with pytest.raises(ValueError, match=r"SlicesInProcess set slices_per_batch=2 in "
                       r"process\(\).*write_store"):  # fmt: skip
        dg.get()


def test_a_store_still_refuses_labels_and_sample_shuffling(tmp_path):
    folder = store(tmp_path)
    with pytest.raises(ValueError, match=r"offline store.*`labels`"):
        DataGenerator(folder, labels=LABELS, preprocessor=JitterPreprocessor())
    with pytest.raises(ValueError, match=r"shuffle='samples'"):
        view(folder, shuffle="samples")


# ------------------------------------------------------------------ member subsets
def test_keys_serve_only_the_named_members_in_their_order(tmp_path):
    folder = store(tmp_path)
    whole = slices(DataGenerator(folder))
    for keys in (["features"], ["features", "points"]):
        served = slices(DataGenerator(folder, keys=keys))
        assert [list(s[3]) for s in served] == [keys] * len(whole)
        for part, full in zip(served, whole):
            for key in keys:
                np.testing.assert_array_equal(part[3][key], full[3][key])
            np.testing.assert_array_equal(part[4], full[4])


@pytest.mark.parametrize(
    ("keys", "error", "message"),
    [
        (
            ["point"],
            ValueError,
            r"\['point'\].*holds the members \['points', 'features'\]\. Did you mean 'points'",
        ),
        ([], ValueError, r"at least one stored member"),
        (["points", "points"], ValueError, r"each once"),
        ("points", TypeError, r"`keys` must be a list"),
    ],
)
def test_keys_the_store_cannot_serve_are_refused(tmp_path, keys, error, message):
    with pytest.raises(error, match=message):
        DataGenerator(store(tmp_path), keys=keys)


def test_keys_need_a_store_whose_x_is_a_dict(tmp_path):
    plain = write_store(DataGenerator(data=POINTS, batch_size=4), tmp_path / "plain", chunk_size=2,
                        progress=False)  # fmt: skip
    with pytest.raises(ValueError, match=r"x of offline store .* is not a dict"):
        DataGenerator(plain, keys=["points"])
    with pytest.raises(ValueError, match=r"keys= selects members of an offline store"):
        DataGenerator(data=DATA, keys=["points"])


# ------------------------------------------------------------------ fingerprint and resume
@pytest.mark.parametrize(
    ("other", "named"),
    [
        (dict(sigma=0.25), r"preprocessor\.preprocessor\.sigma"),
        (dict(sigma=0), r"preprocessor\.preprocessor"),
        (dict(keys=None), r"data\.keys"),
        (dict(keys=("features", "points")), r"data\.keys"),
    ],
)
def test_a_state_is_refused_by_another_preprocessor_or_subset(tmp_path, other, named):
    folder = store(tmp_path)
    dg = view(folder)
    dg.get()
    with pytest.raises(ValueError, match=named):
        view(folder, **other).load_state_dict(dg.state_dict())


def test_an_augmented_subset_resumes_identically_at_every_slice(tmp_path):
    folder = store(tmp_path)
    assert_resumes_identically(lambda: view(folder, shuffle=True, seed=3), epochs=2)


KILLED = """
import json, os, signal, sys
import numpy as np
from tests.data_sources.test_store_views import view
folder, run, kill_at = sys.argv[1], sys.argv[2], int(sys.argv[3])
state_path = os.path.join(run, "state.json")
dg, position = view(folder, shuffle=True, seed=3, prefetch=2), 0
if os.path.exists(state_path):
    saved = json.load(open(state_path))
    dg.load_state_dict(saved["generator"])
    position = saved["position"]
while not (dg.all_data_exhausted and dg.epoch == 1):
    if dg.all_data_exhausted:
        dg.on_epoch_end()
    x, _ = dg.get()
    np.save(os.path.join(run, f"{position}.npy"), x["points"])
    if position == kill_at:
        os.kill(os.getpid(), signal.SIGKILL)
    dg.update_state()
    position += 1
    with open(state_path + ".tmp", "w") as file:
        json.dump({"generator": dg.state_dict(), "position": position}, file)
    os.replace(state_path + ".tmp", state_path)
"""


def test_an_augmented_subset_killed_mid_epoch_resumes_bitwise(tmp_path):
    folder = store(tmp_path)
    dg, expected = view(folder, shuffle=True, seed=3), []
    for _ in range(2):
        expected += [x["points"] for x, _ in dg]
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    for kill_at in (5, 16, -1):  # mid-epoch 0, mid-epoch 1, then to the end
        done = subprocess.run([sys.executable, "-c", KILLED, folder, str(tmp_path), str(kill_at)],
                              cwd=root, capture_output=True, text=True, timeout=120)  # fmt: skip
        assert done.returncode == (-signal.SIGKILL if kill_at >= 0 else 0), done.stderr
    state = json.loads((tmp_path / "state.json").read_text())
    assert state["position"] == len(expected) == 24
    for position, points in enumerate(expected):
        np.testing.assert_array_equal(np.load(tmp_path / f"{position}.npy"), points)
