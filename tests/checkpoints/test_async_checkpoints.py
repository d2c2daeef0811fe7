"""async_checkpoints=True: checkpoints written in a background thread, bitwise as sync ones.

Each test slows the background write down (a sleep before `arrays.npz`), so training
really goes on while a checkpoint is written: a write that read the live model instead
of the snapshot, two writes at once, or a best model marked while a write runs would
show. Killed mid-write and resumed: tests/checkpoints/test_kill_resume.py (`mlp-async`).
"""

from __future__ import annotations

import glob
import os
import threading
import time

import keras
import numpy as np
import pytest
from resume_cases import mlp_case

from trainkit import DataGenerator, TrainGenerator
from trainkit.callbacks import Callback
from trainkit.checkpoints import CheckpointWriteError, checkpoint_dirs, verify_checkpoint


class SavedPaths(Callback):
    def __init__(self):
        self.paths: list[str] = []

    def on_save(self, path):
        self.paths.append(os.path.basename(path))


@pytest.fixture
def slow_writes(monkeypatch):
    """Background writes take 30 ms more; records how many run at once, at most."""
    original, active, lock = checkpoint_dirs._write_npz, [0], threading.Lock()
    most = {"at_once": 0, "writes": 0}

    def slow(path, arrays):
        with lock:
            active[0] += 1
            most["writes"] += 1
            most["at_once"] = max(most["at_once"], active[0])
        time.sleep(0.03)
        try:
            original(path, arrays)
        finally:
            with lock:
                active[0] -= 1

    monkeypatch.setattr(checkpoint_dirs, "_write_npz", slow)
    return most


def _train(logs_dir, **options):
    saved = SavedPaths()
    tg = mlp_case(str(logs_dir), [saved], best_models_dir=str(logs_dir / "best"), **options)
    tg.train()
    return tg, saved.paths


def _checkpoints(tg):
    found = {}
    for path in checkpoint_dirs.checkpoint_folders(tg.run_dir):
        arrays, state = checkpoint_dirs.read_checkpoint(path)
        model = keras.models.load_model(os.path.join(path, checkpoint_dirs.MODEL_FILE))
        found[os.path.basename(path)] = (arrays, state, model.get_weights())
    return found


def test_async_checkpoints_end_bitwise_equal_to_sync_ones_and_hold_the_same_arrays(
    tmp_path, slow_writes
):
    sync, sync_saved = _train(tmp_path / "sync")
    background, background_saved = _train(tmp_path / "async", async_checkpoints=True)
    for ours, theirs in zip(background.model.get_weights(), sync.model.get_weights(), strict=True):
        assert np.array_equal(ours, theirs)
    assert background.history == sync.history
    assert background_saved == sync_saved  # on_save: every checkpoint, in order
    expected, found = _checkpoints(sync), _checkpoints(background)
    assert sorted(found) == sorted(expected) and len(found) == 2  # max_checkpoints=2
    for name, (arrays, state, model_weights) in found.items():
        sync_arrays, sync_state, sync_model_weights = expected[name]
        assert arrays.keys() == sync_arrays.keys()
        for key in arrays:
            assert np.array_equal(arrays[key], sync_arrays[key]), (name, key)
        for ours, theirs in zip(model_weights, sync_model_weights, strict=True):
            assert np.array_equal(ours, theirs), name  # model.keras: the model at the point
        keys = ("trainer", "datagen", "rng", "best_checkpoint", "log_rows", "callbacks")
        for key in (*keys, "histories"):
            assert state[key] == sync_state[key], (name, key)
    logs = [os.path.join(tg.run_dir, "histories.jsonl") for tg in (background, sync)]
    assert _bytes(logs[0]) == _bytes(logs[1])  # appended in the background write, the same
    assert sorted(os.listdir(tmp_path / "async" / "best")) == sorted(
        os.listdir(tmp_path / "sync" / "best")
    )


def _bytes(path):
    with open(path, "rb") as file:
        return file.read()


def test_background_writes_never_overlap_and_train_returns_with_the_last_one_complete(
    tmp_path, slow_writes
):
    tg, saved = _train(tmp_path, async_checkpoints=True)
    assert slow_writes["writes"] == 4 and slow_writes["at_once"] == 1  # 18 iters, every 4
    assert tg._checkpoints.pending is None and not tg._checkpoints.lock.is_held
    assert glob.glob(os.path.join(tg.run_dir, ".tmp-*")) == []
    newest = checkpoint_dirs.checkpoint_folders(tg.run_dir)[-1]
    assert os.path.basename(newest) == saved[-1] == "ckpt-000000016-4"
    assert verify_checkpoint(newest) == []
    tg.epochs += 1
    tg.train()  # checkpoints at iters 20 and 24, the last still running at the end
    path = tg.checkpoint()  # waits, then writes one more, complete when it returns
    assert verify_checkpoint(path) == [] and tg._checkpoints.pending is None
    assert saved[-2:] == ["ckpt-000000024-6", os.path.basename(path)]


@pytest.mark.parametrize(
    ("failing", "raised_at", "named"),
    [(2, 12, "ckpt-000000008-2"), (4, 18, "ckpt-000000016-4")],
    ids=["raised-at-the-next-checkpoint", "raised-when-train-ends"],
)
def test_a_failed_background_write_is_raised_naming_its_checkpoint(
    tmp_path, monkeypatch, failing, raised_at, named
):
    original, calls = checkpoint_dirs._write_npz, [0]

    def fail_once(path, arrays):
        calls[0] += 1
        if calls[0] == failing:
            raise OSError(28, "No space left on device")
        original(path, arrays)

    monkeypatch.setattr(checkpoint_dirs, "_write_npz", fail_once)
    tg = mlp_case(str(tmp_path), [], async_checkpoints=True)
    with pytest.raises(CheckpointWriteError, match=named + r".*No space left on device"):
        tg.train()
    assert tg.iters_fit == raised_at
    assert glob.glob(os.path.join(tg.run_dir, ".tmp-*")) == []
    assert not tg._checkpoints.lock.is_held


def test_train_waits_for_a_write_begun_at_its_last_iter_before_it_returns(tmp_path, slow_writes):
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile("sgd", "mse")
    data = np.arange(24, dtype="float32").reshape(8, 3) / 24
    saved = SavedPaths()
    tg = TrainGenerator(
        model, DataGenerator(data=data, labels=data[:, :1], batch_size=4), epochs=2,
        logs_dir=str(tmp_path), checkpoint_freq={"iter": 4}, callbacks=[saved],
        iter_verbosity=0, async_checkpoints=True,
    )  # fmt: skip
    tg.train()  # no validation after the last checkpoint: only the end of train() waits
    assert saved.paths == ["ckpt-000000004-1"]
    assert tg._checkpoints.pending is None and not tg._checkpoints.lock.is_held
    assert [
        os.path.basename(p) for p in checkpoint_dirs.complete_checkpoints(tg.run_dir)
    ] == saved.paths
