"""Checkpoint folders: written aside, never half-read, pruned with care, errors explained."""

import os

import numpy as np
import pytest

from trainkit.checkpoints import (
    CheckpointWriteError,
    clean_incomplete,
    complete_checkpoints,
    create_run_folder,
    find_resumable_run,
    latest_checkpoint,
    prune_checkpoints,
    read_checkpoint,
    run_name,
    write_checkpoint,
)


def write(run_dir, iters, value=0.0):
    return write_checkpoint(
        run_dir, iters_fit=iters, arrays={"a": np.full(3, value)}, state={"iters": iters}
    )


def test_a_checkpoint_round_trips_its_arrays_and_state(tmp_path):
    path = write(str(tmp_path), 7, 1.5)
    arrays, state = read_checkpoint(path)
    np.testing.assert_array_equal(arrays["a"], np.full(3, 1.5))
    assert state == {"iters": 7}
    assert latest_checkpoint(str(tmp_path)) == path


def test_a_half_written_checkpoint_is_cleaned_up_and_a_damaged_one_is_kept(tmp_path):
    good = write(str(tmp_path), 1)
    os.makedirs(tmp_path / ".tmp-ckpt-000000002-2")  # killed before the rename
    os.makedirs(tmp_path / "ckpt-000000003-3")  # no state.json, no manifest: damaged
    assert latest_checkpoint(str(tmp_path)) == good
    removed = clean_incomplete(str(tmp_path))
    assert [os.path.basename(p) for p in removed] == [".tmp-ckpt-000000002-2"]
    assert sorted(os.listdir(tmp_path)) == [os.path.basename(good), "ckpt-000000003-3"]


def test_a_write_error_leaves_the_previous_checkpoint_intact(tmp_path):
    good = write(str(tmp_path), 1, 1.0)

    def failing_model_save(path):
        with open(path, "wb") as file:
            file.write(b"partial")
        raise OSError(28, "No space left on device")

    with pytest.raises(
        CheckpointWriteError, match=r"No space left on device.*previous checkpoints are intact"
    ):
        write_checkpoint(
            str(tmp_path), iters_fit=2, arrays={}, state={}, save_model=failing_model_save
        )
    assert complete_checkpoints(str(tmp_path)) == [good]
    assert os.listdir(tmp_path) == [os.path.basename(good)]
    np.testing.assert_array_equal(read_checkpoint(good)[0]["a"], np.ones(3))


def test_a_file_size_limit_fails_cleanly(tmp_path):
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    good = write(str(tmp_path), 1)
    resource.setrlimit(resource.RLIMIT_FSIZE, (4096, hard))
    import signal

    previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    try:
        with pytest.raises(CheckpointWriteError):
            write_checkpoint(
                str(tmp_path), iters_fit=2, arrays={"big": np.zeros(100_000)}, state={}
            )
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, previous)
    assert complete_checkpoints(str(tmp_path)) == [good]


def test_pruning_keeps_the_newest_and_the_protected(tmp_path):
    paths = [write(str(tmp_path), k) for k in range(6)]
    removed = prune_checkpoints(str(tmp_path), keep=2, protect=[paths[1]])
    assert complete_checkpoints(str(tmp_path)) == [paths[1], paths[5]]
    assert sorted(removed) == sorted([paths[0], paths[2], paths[3], paths[4]])
    prune_checkpoints(str(tmp_path), keep=0)
    assert complete_checkpoints(str(tmp_path)) == [paths[5]]


def test_run_folders_are_numbered_descriptive_and_never_reused(tmp_path):
    first = create_run_folder(str(tmp_path), "mlp", {"units": 32, "lr": 0.001})
    second = create_run_folder(str(tmp_path), "mlp", {"units": 32, "lr": 0.001})
    assert os.path.basename(first) == "M1__mlp-units=32-lr=0.001"
    assert os.path.basename(second) == "M2__mlp-units=32-lr=0.001"
    assert run_name(3, "my model", {"shape": (2, 3)}) == "M3__my_model-shape=2x3"


def test_the_newest_run_with_a_complete_checkpoint_of_that_model_is_found(tmp_path):
    logs = str(tmp_path)
    one = create_run_folder(logs, "mlp", None)
    write(one, 1)
    create_run_folder(logs, "mlp", None)  # M2 crashed before any checkpoint
    other = create_run_folder(logs, "cnn", None)
    write(other, 1)
    assert find_resumable_run(logs, "mlp") == one
    assert find_resumable_run(logs, "cnn") == other
    assert find_resumable_run(logs, "rnn") is None


def test_after_a_fallback_the_checkpoint_just_written_survives_pruning(tmp_path):
    from trainkit.checkpoints import RunFolder, latest_checkpoint

    run = RunFolder(str(tmp_path))
    arrays, state = {"a": np.zeros(3)}, {"iters": 0}
    run.write(2, arrays, state, None, max_checkpoints=5)
    damaged = run.write(4, arrays, state, None, max_checkpoints=5)
    arrays_file = os.path.join(damaged, "arrays.npz")
    with open(arrays_file, "rb") as file:
        data = bytearray(file.read())
    data[len(data) // 2] ^= 0xFF  # a bit flip keeps the size: still "complete"
    with open(arrays_file, "wb") as file:
        file.write(bytes(data))
    newest = run.write(3, arrays, state, None, max_checkpoints=1)  # resumed from iter 2
    assert os.path.isdir(newest) and os.path.isdir(damaged)  # damaged ones are never deleted
    assert latest_checkpoint(str(tmp_path)) == newest
