"""Damaged checkpoints are caught, warned about, kept, and skipped for the newest intact one.

A reference run trains a tiny model once with a checkpoint every 2 iters (module
fixture). Each test copies its run folder, damages real files of the newest checkpoint
(iter 8), resumes and trains to the end: the resume falls back to iter 6 and ends with
weights bitwise equal to the reference, and the damaged folder is left as it was.
"""

from __future__ import annotations

import os
import re
import shutil
import warnings

import keras
import numpy as np
import pytest

from trainkit import DataGenerator, TrainGenerator
from trainkit.checkpoints import (
    MANIFEST_FILE,
    CheckpointDamagedError,
    CheckpointWriteError,
    checkpoint_dirs,
    checkpoint_folders,
    complete_checkpoints,
    prune_checkpoints,
    read_checkpoint,
    verify_checkpoint,
    write_checkpoint,
)

RNG = np.random.default_rng(0)
X = RNG.random((32, 4), dtype=np.float32)
Y = (X.sum(axis=1) > 2).astype("float32")
NEWEST, FALLBACK, OLDER = "ckpt-000000008-4", "ckpt-000000006-3", "ckpt-000000004-2"
RUN = "M1__model"


def trainer(logs_dir, resume=False):
    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        keras.Input((4,)), keras.layers.Dense(4, activation="relu"), keras.layers.Dropout(0.2),
        keras.layers.Dense(1, activation="sigmoid"),
    ])  # fmt: skip
    model.compile(keras.optimizers.Adam(1e-2), "binary_crossentropy")
    datagen = DataGenerator(data=X, labels=Y, batch_size=8, shuffle=True, seed=1)
    return TrainGenerator(model, datagen, epochs=2, logs_dir=str(logs_dir), resume=resume,
                          checkpoint_freq={"iter": 2}, iter_verbosity=0)  # fmt: skip


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    logs = tmp_path_factory.mktemp("reference") / "logs"
    tg = trainer(logs)
    tg.train()
    assert [os.path.basename(p) for p in checkpoint_folders(tg.run_dir)][-2:] == [FALLBACK, NEWEST]
    return str(logs), tg.model.get_weights()


@pytest.fixture
def logs(reference, tmp_path):
    """A copy of the reference logs_dir to damage."""
    copy = str(tmp_path / "logs")
    shutil.copytree(reference[0], copy)
    return copy


def _path(logs, *parts):
    return os.path.join(logs, RUN, *parts)


def _truncate(path):
    with open(path, "r+b") as file:
        file.truncate(os.path.getsize(path) // 2)


def _flip_bit(path):
    with open(path, "r+b") as file:
        data = bytearray(file.read())
        data[len(data) // 2] ^= 0x04
        file.seek(0)
        file.write(data)


def _change_digit(path):
    with open(path, encoding="utf-8") as file:
        text = file.read()
    changed = re.sub(r'"iters_fit": 8,', '"iters_fit": 9,', text, count=1)
    assert changed != text
    with open(path, "w", encoding="utf-8") as file:
        file.write(changed)


def _from_older(name):
    def damage(path):
        shutil.copyfile(os.path.join(os.path.dirname(os.path.dirname(path)), OLDER, name), path)

    return damage


DAMAGE = {
    # case: (file damaged, damage, what the warning says is wrong)
    "state.json truncated": ("state.json", _truncate, r"state\.json has \d+ bytes"),
    "state.json bit flipped": ("state.json", _flip_bit, r"state\.json does not match its SHA"),
    "state.json deleted": ("state.json", os.remove, r"state\.json is missing"),
    "iters_fit digit changed": ("state.json", _change_digit, r"state\.json does not match"),
    "arrays.npz truncated": ("arrays.npz", _truncate, r"arrays\.npz has \d+ bytes"),
    "arrays.npz bit flipped": ("arrays.npz", _flip_bit, r"arrays\.npz does not match its SHA"),
    "arrays.npz deleted": ("arrays.npz", os.remove, r"arrays\.npz is missing"),
    "arrays.npz of another checkpoint": (
        "arrays.npz",
        _from_older("arrays.npz"),
        r"arrays\.npz (does not match|has)",
    ),
    "model.keras bit flipped": ("model.keras", _flip_bit, r"model\.keras does not match"),
    "model.keras deleted": ("model.keras", os.remove, r"model\.keras is missing"),
    "manifest deleted (the format before manifests)": (MANIFEST_FILE, os.remove, r"no manifest"),
}


def _snapshot(folder):
    files = {}
    for name in sorted(os.listdir(folder)):
        with open(os.path.join(folder, name), "rb") as file:
            files[name] = file.read()
    return files


def _resume_and_finish(logs, resume, problem):
    newest = _path(logs, NEWEST)
    with pytest.warns(UserWarning, match=rf"{NEWEST}.*{problem}") as caught:
        tg = trainer(logs, resume=resume)
    damage_warnings = [w for w in caught if NEWEST in str(w.message)]
    assert len(damage_warnings) == 1, [str(w.message) for w in caught]
    assert "left in place" in str(damage_warnings[0].message)
    assert tg.iters_fit == 6 and tg.run_dir == _path(logs)
    tg.train()
    assert os.path.isdir(newest)  # never deleted
    return tg


@pytest.mark.parametrize("case", sorted(DAMAGE))
def test_damage_to_the_newest_checkpoint_is_warned_and_resume_falls_back_bitwise(
    reference, logs, case
):
    name, damage, problem = DAMAGE[case]
    newest = _path(logs, NEWEST)
    damage(os.path.join(newest, name))
    damaged = _snapshot(newest)
    assert verify_checkpoint(newest)
    tg = _resume_and_finish(logs, True, problem)
    assert all(
        np.array_equal(a, b) for a, b in zip(tg.model.get_weights(), reference[1], strict=True)
    )
    assert _snapshot(newest) == damaged  # left exactly as it was


def test_resume_with_the_run_folder_falls_back_the_same_way(reference, logs):
    _flip_bit(_path(logs, NEWEST, "arrays.npz"))
    tg = _resume_and_finish(logs, _path(logs), "arrays.npz does not match")
    assert all(
        np.array_equal(a, b) for a, b in zip(tg.model.get_weights(), reference[1], strict=True)
    )


def test_state_that_disagrees_with_its_folder_is_caught_even_under_a_matching_manifest(logs):
    newest = _path(logs, NEWEST)
    _change_digit(os.path.join(newest, "state.json"))
    os.remove(os.path.join(newest, MANIFEST_FILE))
    checkpoint_dirs._write_manifest(
        newest, NEWEST
    )  # as if the manifest were written after the change
    assert verify_checkpoint(newest) == []
    _resume_and_finish(logs, True, r"records iters_fit=9, its folder 8")


def test_arrays_missing_a_model_variable_are_caught_even_under_a_matching_manifest(logs):
    newest = _path(logs, NEWEST)
    arrays, _ = read_checkpoint(newest)
    del arrays["model/0"]
    np.savez(os.path.join(newest, "arrays.npz"), **arrays)
    os.remove(os.path.join(newest, MANIFEST_FILE))
    checkpoint_dirs._write_manifest(newest, NEWEST)
    _resume_and_finish(logs, True, r"arrays\.npz lacks 1 arrays, e\.g\. \['model/0'\]")


def test_a_damaged_checkpoint_folder_passed_to_resume_is_refused_naming_its_run_folder(logs):
    newest = _path(logs, NEWEST)
    _truncate(os.path.join(newest, "state.json"))
    with pytest.raises(ValueError, match=r"names a damaged checkpoint: state\.json has") as info:
        trainer(logs, resume=newest)
    assert f"resume={_path(logs)!r}" in str(info.value)
    assert os.path.isdir(newest)


def test_with_every_checkpoint_damaged_resume_refuses_naming_them_and_deletes_nothing(logs):
    for folder in checkpoint_folders(_path(logs)):
        _flip_bit(os.path.join(folder, "state.json"))
    before = sorted(os.listdir(_path(logs)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(ValueError, match=r"none of its checkpoints is intact") as info:
            trainer(logs, resume=True)
    message = str(info.value)
    assert all(name in message for name in before if name.startswith("ckpt-"))
    assert "Nothing was deleted" in message and "resume=False" in message
    assert sorted(os.listdir(_path(logs))) == before
    assert len(os.listdir(logs)) == 1  # no new run was started instead


LOG_FILES = ("metrics.csv", "provenance.jsonl")


def _text(path):
    with open(path, encoding="utf-8") as file:
        return file.read()


def test_torn_last_lines_in_the_logs_never_fail_a_resume(reference, logs):
    """A kill in the middle of appending leaves half a line; the resume cuts it off."""
    reference_logs = [_text(_path(reference[0], name)) for name in LOG_FILES]
    with open(_path(logs, "metrics.csv"), "ab") as file:
        file.write('train,1,9,9,"caf\u00e9'.encode()[:-1])  # torn inside a 2-byte character
    with open(_path(logs, "provenance.jsonl"), "ab") as file:
        file.write(b'{"iter":9,"epoch":1,"set_na')
    tg = trainer(logs, resume=_path(logs, FALLBACK))
    tg.train()
    assert all(
        np.array_equal(a, b) for a, b in zip(tg.model.get_weights(), reference[1], strict=True)
    )
    assert [_text(_path(logs, name)) for name in LOG_FILES] == reference_logs


# ------------------------------------------------------------------ checkpoint folders alone


def write(run_dir, iters, value=0.0):
    return write_checkpoint(
        run_dir, iters_fit=iters, arrays={"a": np.full(3, value)}, state={"iters": iters}
    )


def test_an_intact_checkpoint_verifies_and_its_manifest_lists_every_file(tmp_path):
    path = write_checkpoint(
        str(tmp_path), iters_fit=3, arrays={"a": np.ones(2)}, state={},
        save_model=lambda p: open(p, "wb").close(),
    )  # fmt: skip
    assert verify_checkpoint(path) == []
    names = sorted(os.listdir(path))
    assert names == ["arrays.npz", "manifest.json", "model.keras", "state.json"]
    assert checkpoint_dirs._read_manifest(path)[0].keys() == {
        "arrays.npz",
        "model.keras",
        "state.json",
    }


def test_reading_a_damaged_checkpoint_raises_naming_it_and_every_problem(tmp_path):
    path = write(str(tmp_path), 1)
    _flip_bit(os.path.join(path, "state.json"))
    os.remove(os.path.join(path, "arrays.npz"))
    with pytest.raises(CheckpointDamagedError, match=re.escape(path)) as info:
        read_checkpoint(path)
    assert info.value.problems == [
        "arrays.npz is missing",
        "state.json does not match its SHA-256 digest in the manifest (its bytes changed)",
    ]


def test_a_checkpoint_copied_under_another_name_is_damaged(tmp_path):
    path = write(str(tmp_path), 1)
    copy = os.path.join(str(tmp_path), "ckpt-000000005-9")
    shutil.copytree(path, copy)
    assert verify_checkpoint(copy) == ["manifest.json belongs to checkpoint 'ckpt-000000001-1'"]


def test_pruning_never_deletes_a_damaged_checkpoint_nor_counts_it(tmp_path):
    run = str(tmp_path)
    paths = [write(run, k) for k in range(5)]
    _flip_bit(os.path.join(paths[0], "arrays.npz"))  # same size: found when due for deletion
    _truncate(os.path.join(paths[2], "arrays.npz"))  # not complete: never counted
    assert complete_checkpoints(run) == [paths[0], paths[1], paths[3], paths[4]]
    removed = prune_checkpoints(run, keep=2)
    assert removed == [paths[1]]
    assert checkpoint_folders(run) == [paths[0], paths[2], paths[3], paths[4]]


def test_any_error_while_writing_is_wrapped_and_leaves_nothing_behind(tmp_path):
    good = write(str(tmp_path), 1, 1.0)
    with pytest.raises(CheckpointWriteError, match=r"ckpt-000000002-2.*TypeError.*JSON") as info:
        write_checkpoint(str(tmp_path), iters_fit=2, arrays={}, state={"x": object()})
    assert isinstance(info.value.__cause__, TypeError)
    assert "Received: TypeError" in str(info.value)

    def failing_save(path):
        raise RuntimeError("the model could not be serialized")

    with pytest.raises(CheckpointWriteError, match=r"RuntimeError: the model could not"):
        write_checkpoint(str(tmp_path), iters_fit=2, arrays={}, state={}, save_model=failing_save)
    assert os.listdir(tmp_path) == [os.path.basename(good)]
    assert verify_checkpoint(good) == []


def test_an_interrupt_while_writing_leaves_no_temporary_folder(tmp_path):
    def interrupted_save(path):
        open(path, "wb").close()
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_checkpoint(
            str(tmp_path), iters_fit=1, arrays={}, state={}, save_model=interrupted_save
        )
    assert os.listdir(tmp_path) == []
