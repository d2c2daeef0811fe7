"""One slice walk: a DeepTrain-style preprocessor is served the same bits by every server.

The preprocessor sets `slices_per_batch` inside `process()` at `slice_idx == 0`. The
synchronous generator, the prefetch thread at any depth, worker processes, the adaptive
default, the read-only views and `check_preprocessor` all walk it with the same routines
(`trainkit.data.preprocessors.base.serve_slice` and friends), so they agree slice for
slice, state dict for state dict; and a run killed with SIGKILL while prefetch runs ahead
resumes bitwise.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from deeptrain_style import EPOCHS, DeepTrainWindows, LateWindows, make, series
from processes import running

from trainkit import DataGenerator
from trainkit.data.adapters import EpochView
from trainkit.testing import check_preprocessor

SCRIPT = os.path.join(os.path.dirname(__file__), "deeptrain_style.py")
# Served the same, and never by falling back from prefetch ("diverged" warnings).
pytestmark = pytest.mark.filterwarnings("error::UserWarning")


def stream(dg, epochs=2):
    """Every slice with where it is, its description and the state dict after get()."""
    out = []
    for _ in range(epochs):
        while not dg.all_data_exhausted:
            x, y = dg.get()
            out.append(
                (dg.epoch, dg.set_name, dg.slice_idx, np.array(x), np.array(y),
                 dg.describe_slice(), dg.state_dict())
            )  # fmt: skip
            dg.update_state()
        dg.on_epoch_end()
    dg.close()
    return out


def assert_same(expected, actual):
    assert len(actual) == len(expected)
    for position, (a, b) in enumerate(zip(expected, actual)):
        assert a[:3] == b[:3], position
        assert a[3].dtype == b[3].dtype and np.array_equal(a[3], b[3]), position
        assert np.array_equal(a[4], b[4]), position
        assert a[5:] == b[5:], position


@pytest.fixture(scope="module")
def reference():
    return stream(make(prefetch=0))


def test_the_synchronous_generator_serves_every_window(reference):
    assert len(reference) == 2 * 10 * 4  # 2 epochs of 10 batches of 4 windows
    assert [entry[2] for entry in reference[:8]] == [0, 1, 2, 3] * 2


@pytest.mark.parametrize("prefetch", [2, 4, None])
def test_prefetch_serves_the_synchronous_stream_bitwise(reference, prefetch):
    assert_same(reference, stream(make(prefetch)))


def test_the_adaptive_default_running_ahead_serves_the_same_stream(reference):
    dg = make(None)
    dg._prefetch.running_ahead = True  # as after slow steps: the thread computes the slices
    assert_same(reference, stream(dg))


def test_worker_processes_serve_the_synchronous_stream_bitwise(reference):
    assert_same(reference, stream(make(4, workers=2)))
    # A preprocessor that sets the count only from a later batch on: the walk learns it
    # late, the consumer notices and walks again from its cursor.
    late = stream(make(0, preprocessor=LateWindows()))
    assert_same(late, stream(make(2, workers=2, preprocessor=LateWindows())))
    assert_same(late, stream(make(2, preprocessor=LateWindows())))


def test_the_views_and_check_preprocessor_walk_it_the_same_way(reference):
    view = EpochView(make(0))
    first_epoch = [entry for entry in reference if entry[0] == 0]
    served = list(view)
    assert len(served) == len(first_epoch)
    for (x, y), entry in zip(served, first_epoch):
        assert np.array_equal(x, entry[3]) and np.array_equal(y, entry[4])
    with pytest.raises(RuntimeError, match=r"count_slices\(\) said 1 .*process\(\) set"):
        view[0]  # the default count_slices() cannot know a count process() sets
    x, y = series()
    check_preprocessor(DeepTrainWindows, x[:4], y[:4])


def test_update_state_without_get_never_takes_a_count_computed_ahead():
    """Without get(), process() does not run, so the batch keeps on_batch_load()'s count."""
    streams = []
    for prefetch in (0, 2):
        dg = make(prefetch)
        dg.update_state()  # batch 0 ends after one slice: its count was never negotiated
        streams.append(stream(dg, epochs=1))
    assert_same(streams[0], streams[1])
    assert len(streams[0]) == 9 * 4


def _run(folder, prefetch, workers, kill_at=None):
    command = [sys.executable, SCRIPT, str(folder), str(prefetch), str(workers)]
    command += [] if kill_at is None else [str(kill_at)]
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )
    out, err = process.communicate(timeout=120)
    expected = 0 if kill_at is None else -signal.SIGKILL
    assert process.returncode == expected, err[-3000:]
    return json.loads(out.splitlines()[-1])["workers"] if kill_at is not None else []


def _chain(folder, prefetch, workers, kills):
    folder.mkdir()
    orphans = []
    for kill_at in kills:
        pids = _run(folder, prefetch, workers, kill_at)
        orphans += _alive_after(pids, seconds=5)
    _run(folder, prefetch, workers)
    return orphans


def _alive_after(pids, seconds):
    """The processes of `pids` still running `seconds` after their parent was killed."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        alive = [pid for pid in pids if running(pid)]
        if not alive:
            return []
        time.sleep(0.1)
    return alive


def test_a_run_killed_while_prefetch_runs_ahead_resumes_bitwise(tmp_path, reference):
    # Kills mid-batch (slice 6: batch 1, window 2), at a batch start and in epoch 2.
    kills = [6, 21, 45]
    with ThreadPoolExecutor(2) as pool:
        threads = pool.submit(_chain, tmp_path / "thread", 2, 0, kills)
        workers = pool.submit(_chain, tmp_path / "workers", 2, 2, kills[:2])
        assert threads.result() == []
        assert workers.result() == [], "worker processes outlived their killed parent"
    expected = stream(make(0), epochs=EPOCHS)
    for name in ("thread", "workers"):
        served = {}
        for path in sorted((tmp_path / name).glob("served-*.npz")):
            with np.load(path) as saved:
                for position, x in saved.items():
                    # A slice served again after a kill is the same slice, bitwise.
                    assert np.array_equal(x, expected[int(position)][3]), (name, position)
                    served[int(position)] = x
        assert sorted(served) == list(range(len(expected))), name


@pytest.mark.parametrize("workers", [1, 2])
def test_write_store_stores_every_window_the_generator_serves(tmp_path, reference, workers):
    from trainkit import write_store

    folder = write_store(make(prefetch=0), str(tmp_path / "store"), chunk_size=3, workers=workers)
    stored = DataGenerator(data_path=folder, prefetch=0)
    served = []
    while not stored.all_data_exhausted:
        x, y = stored.get()
        served.append((stored.set_name, stored.slice_idx, np.array(x), np.array(y)))
        stored.update_state()
    first_epoch = [entry for entry in reference if entry[0] == 0]
    assert len(served) == len(first_epoch) == 40  # 10 batches of 4 windows
    for got, want in zip(served, first_epoch, strict=True):
        assert got[:2] == want[1:3] and np.array_equal(got[2], want[3])
        assert np.array_equal(got[3], want[4])
