"""Histories go to an append-only log at each checkpoint, not whole into every state.json.

The log is rebuilt exactly on resume (non-finite values included), a cut or changed log
is refused naming the file, what a killed run appended after the mark is cut away,
checkpoints of the previous format (histories in state.json) still resume, and a
checkpoint's state.json does not grow with the run. kill -9 at any point: the chains of
tests/checkpoints/test_kill_resume.py (their histories are compared too).
"""

from __future__ import annotations

import json
import math
import os
import warnings

import keras
import numpy as np
import pytest

from trainkit import DataGenerator, TrainGenerator
from trainkit.callbacks import Callback
from trainkit.checkpoints import checkpoint_dirs, complete_checkpoints
from trainkit.checkpoints.history_log import (
    HISTORIES_FILE,
    HistoryLog,
    HistoryLogError,
    read_histories,
)
from trainkit.checkpoints.log_marks import TAIL, LinkedLogError

RNG = np.random.default_rng(0)
X = RNG.random((40, 4), dtype=np.float32)
Y = (X.sum(axis=1) > 2).astype("float32")
HISTORY_FIELDS = (
    "history", "val_history", "key_metric_history", "skipped_slices", "epoch_batches",
    "val_batches",
)  # fmt: skip


def same(first, second) -> bool:
    """Equal with every float's bits (-0.0 differs from 0.0), NaN equal to NaN (JSON keeps
    no NaN sign or payload: state.json never did either)."""

    def bits(value):
        if isinstance(value, float):
            return "nan" if math.isnan(value) else np.float64(value).tobytes().hex()
        if isinstance(value, dict):
            return {key: bits(item) for key, item in value.items()}
        if isinstance(value, list):
            return [bits(item) for item in value]
        return value

    return json.dumps(bits(first)) == json.dumps(bits(second))


# ------------------------------------------------------------------ the log alone


def test_the_log_rebuilds_histories_exactly_with_new_metrics_and_non_finite_values(tmp_path):
    log = HistoryLog(str(tmp_path))
    histories = {"history": {"loss": [0.5, math.nan]}, "key_metric_history": [math.inf]}
    first = log.append(log.entries(histories), "ckpt-000000002-1", iters_fit=2)
    histories["history"]["loss"] += [-math.inf, 0.1 + 0.2]
    histories["history"]["late"] = [math.nan, math.nan, math.nan, -0.0]  # added mid-run
    histories["key_metric_history"].append(5e-324)
    second = log.append(log.entries(histories), "ckpt-000000004-2", iters_fit=4)
    rebuilt = read_histories(str(tmp_path), second, "ckpt-000000004-2", 4)
    assert same(rebuilt, histories)
    assert list(rebuilt["history"]) == ["loss", "late"]  # the order of the histories
    earlier = read_histories(str(tmp_path), first)
    assert same(earlier, {"history": {"loss": [0.5, math.nan]}, "key_metric_history": [math.inf]})
    with open(log.path, encoding="utf-8") as file:
        lines = [json.loads(line) for line in file]  # strict JSON, one line per checkpoint
    assert lines[1]["history"]["loss"] == [2, [{"$float": "-inf"}, 0.30000000000000004]]


def test_each_checkpoint_appends_only_what_is_new(tmp_path):
    log = HistoryLog(str(tmp_path))
    history = {"history": {"loss": []}}
    sizes = []
    for iters in range(1, 301):
        history["history"]["loss"].append(iters / 7)
        if iters % 50 == 0:
            log.append(log.entries(history), f"ckpt-{iters:09d}-1", iters_fit=iters)
            sizes.append(os.path.getsize(log.path))
    appended = np.diff([0, *sizes])
    assert appended.max() - appended.min() < 50  # the same ~50 values each time


def test_a_history_that_got_shorter_is_logged_again_from_its_start(tmp_path):
    log = HistoryLog(str(tmp_path))
    histories = {"val_batches": [2, 4, 6]}
    log.append(log.entries(histories), "ckpt-000000006-1", iters_fit=6)
    histories["val_batches"] = [9]  # another state loaded
    mark = log.append(log.entries(histories), "ckpt-000000009-2", iters_fit=9)
    assert read_histories(str(tmp_path), mark) == {"val_batches": [9]}


def test_a_change_anywhere_before_the_mark_is_refused_not_only_in_its_last_64_kib(tmp_path):
    log = HistoryLog(str(tmp_path))
    values = {"history": {"loss": [0.25] * 20_000}}  # ~100 KB: more than the tail digest
    mark = log.append(log.entries(values), "ckpt-000000001-1", iters_fit=1)
    with open(log.path, "r+b") as file:
        at = file.read().index(b"0.25") + 2
        assert at < mark["bytes"] - TAIL  # before the part the tail digest covers
        file.seek(at)
        file.write(b"3")  # 0.35: still JSON, another value
    with pytest.raises(HistoryLogError, match=r"histories\.jsonl' was changed before"):
        read_histories(str(tmp_path), mark)


def test_a_line_from_another_checkpoint_at_the_mark_is_refused(tmp_path):
    log = HistoryLog(str(tmp_path))
    mark = log.append(log.entries({"epoch_batches": [3]}), "ckpt-000000003-1", iters_fit=3)
    with pytest.raises(HistoryLogError, match=r"line of checkpoint 'ckpt-000000003-1'"):
        read_histories(str(tmp_path), mark, "ckpt-000000003-2", 3)


def test_an_append_finds_the_log_changed_by_someone_else_and_refuses(tmp_path):
    log = HistoryLog(str(tmp_path))
    log.append(log.entries({"epoch_batches": [3]}), "ckpt-000000003-1", iters_fit=3)
    with open(log.path, "a", encoding="utf-8") as file:
        file.write("{}\n")
    with pytest.raises(
        checkpoint_dirs.CheckpointWriteError, match=r"histories\.jsonl' holds \d+ bytes"
    ):
        log.append(log.entries({"epoch_batches": [3, 6]}), "ckpt-000000006-2", iters_fit=6)


# ------------------------------------------------------------------ a trainer's run


def infinite(y_true, y_pred):
    """-inf for every sample: a metric whose history holds -inf."""
    return keras.ops.log(keras.ops.zeros_like(y_pred[:, 0]))


def undefined(y_true, y_pred):
    """NaN for every sample (0 * -inf)."""
    return keras.ops.zeros_like(y_pred[:, 0]) * infinite(y_true, y_pred)


class StopAt(Callback):
    """Stops the process (as a kill would) after iter `at`, right after its checkpoint."""

    def __init__(self, at: int | None):
        self.at = at

    def on_train_iter_end(self, iteration, logs=None):
        if self.trainer.iters_fit == self.at:
            raise KeyboardInterrupt


def trainer(logs_dir, resume=False, stop_at=None, **kwargs):
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1, activation="sigmoid")])
    model.compile(keras.optimizers.Adam(0.05), "binary_crossentropy",
                  metrics=["accuracy", infinite, undefined])  # fmt: skip
    datagen = DataGenerator(data=X[:24], labels=Y[:24], batch_size=4, shuffle=True, seed=2)
    val_datagen = DataGenerator(data=X[24:], labels=Y[24:], batch_size=8)
    options = {"epochs": 3, "checkpoint_freq": {"iter": 2}, "max_checkpoints": 3, **kwargs}
    return TrainGenerator(
        model, datagen, val_datagen, logs_dir=str(logs_dir), resume=resume, iter_verbosity=0,
        callbacks=[StopAt(stop_at)], **options,
    )  # fmt: skip


def histories(tg) -> dict:
    return {name: getattr(tg._state, name) for name in HISTORY_FIELDS}


def stopped(logs_dir, at, **kwargs):
    tg = trainer(logs_dir, stop_at=at, **kwargs)
    with pytest.raises(KeyboardInterrupt):
        tg.train()
    return tg


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    tg = trainer(tmp_path_factory.mktemp("reference"))
    tg.train()
    return tg


def test_histories_survive_a_resume_bitwise_non_finite_values_included(tmp_path, reference):
    history, val_history = reference.history, reference.val_history
    assert math.isinf(history["infinite"][0]) and math.isnan(history["undefined"][0])
    assert math.isnan(val_history["undefined"][0]) and reference.key_metric_history
    stopped(tmp_path, at=8)
    resumed = trainer(tmp_path, resume=True)
    batches = resumed.batches_fit
    assert batches >= 5 and same(resumed.history, {k: v[:batches] for k, v in history.items()})
    resumed.train()
    assert same(histories(resumed), histories(reference))
    assert resumed.best_key_metric == reference.best_key_metric
    weights = zip(resumed.model.get_weights(), reference.model.get_weights(), strict=True)
    assert all(np.array_equal(ours, theirs) for ours, theirs in weights)


def test_a_checkpoints_state_json_holds_the_logs_mark_not_the_histories(reference):
    newest = complete_checkpoints(reference.run_dir)[-1]
    _, state = checkpoint_dirs.read_checkpoint(newest)
    assert state["version"] == 2
    assert not set(HISTORY_FIELDS) & set(state["trainer"])
    assert state["histories"]["bytes"] == os.path.getsize(
        os.path.join(reference.run_dir, HISTORIES_FILE)
    )
    with open(os.path.join(reference.run_dir, HISTORIES_FILE), encoding="utf-8") as file:
        lines = [json.loads(line) for line in file]
    assert [line["iters_fit"] for line in lines] == list(range(2, 19, 2))  # every checkpoint
    assert lines[-1]["checkpoint"] == os.path.basename(newest)


def test_what_a_killed_run_appended_after_the_checkpoint_is_cut_on_resume(tmp_path, reference):
    tg = stopped(tmp_path, at=8)
    path = os.path.join(tg.run_dir, HISTORIES_FILE)
    size = os.path.getsize(path)
    with open(path, "ab") as file:
        file.write(b'{"checkpoint":"ckpt-000000010-6","iters_fit":10,"history":{"lo')  # torn
    resumed = trainer(tmp_path, resume=True)
    assert os.path.getsize(path) > size  # left as it is until the resumed run appends
    resumed.train()
    with open(path, encoding="utf-8") as file:
        [json.loads(line) for line in file]  # the torn line was cut before the first append
    assert same(histories(resumed), histories(reference))


def test_a_trainer_built_from_an_older_checkpoint_changes_nothing_until_it_writes_one(tmp_path):
    tg = stopped(tmp_path, at=10)
    path = os.path.join(tg.run_dir, HISTORIES_FILE)
    size, newest = os.path.getsize(path), complete_checkpoints(tg.run_dir)[-1]
    (older,) = [
        p for p in complete_checkpoints(tg.run_dir) if checkpoint_dirs.checkpoint_iters(p) == 4
    ]
    looked = trainer(tmp_path, resume=older)  # built to look at an older checkpoint only
    assert looked.iters_fit == 4 and os.path.getsize(path) == size
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        again = trainer(tmp_path, resume=True)
    assert again.iters_fit == checkpoint_dirs.checkpoint_iters(newest)
    assert not [w for w in caught if HISTORIES_FILE in str(w.message)]


def test_histories_replaced_by_load_state_dict_are_logged_whole(tmp_path):
    tg = stopped(tmp_path, at=6)
    state = tg.state_dict()
    state["history"]["loss"] = [123.0] * len(state["history"]["loss"])  # same length
    tg.load_state_dict(state)
    tg.checkpoint()
    resumed = trainer(tmp_path, resume=True)
    assert resumed.history["loss"] == [123.0] * len(state["history"]["loss"])


def test_a_cut_log_is_refused_naming_the_file_and_resume_falls_back_to_what_it_covers(tmp_path):
    tg = stopped(tmp_path, at=8)
    newest = complete_checkpoints(tg.run_dir)[-1]
    path = os.path.join(tg.run_dir, HISTORIES_FILE)
    with open(path, "rb") as file:
        lines = file.read().splitlines(keepends=True)
    with open(path, "wb") as file:
        file.write(b"".join(lines[:-1]))  # the newest checkpoint's line is lost
    with pytest.raises(ValueError, match=r"histories\.jsonl' was cut \(\d+ of the \d+ bytes"):
        trainer(tmp_path, resume=newest)
    with pytest.warns(UserWarning, match=r"histories\.jsonl' was cut.*Put the file back"):
        resumed = trainer(tmp_path, resume=True)
    assert resumed.iters_fit == checkpoint_dirs.checkpoint_iters(newest) - 2  # the one before it


def test_a_deleted_log_refuses_every_checkpoint_that_needs_it(tmp_path):
    tg = stopped(tmp_path, at=4)
    os.remove(os.path.join(tg.run_dir, HISTORIES_FILE))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(ValueError, match=r"none of its checkpoints is intact.*was deleted"):
            trainer(tmp_path, resume=True)


def test_a_log_that_is_a_symbolic_link_is_refused_never_read(tmp_path):
    tg = stopped(tmp_path, at=4)
    path = os.path.join(tg.run_dir, HISTORIES_FILE)
    os.rename(path, path + ".real")
    os.symlink(path + ".real", path)
    with pytest.raises(LinkedLogError, match=r"histories\.jsonl' is a symbolic link"):
        trainer(tmp_path, resume=True)


def as_previous_format(checkpoint: str, run_dir: str) -> str:
    """A copy of `checkpoint` written as trainkit wrote checkpoints before the histories
    log (state.json version 1, histories whole in "trainer"), the log removed."""
    arrays, state = checkpoint_dirs.read_checkpoint(checkpoint)
    mark = state.pop("histories")
    state["trainer"].update(read_histories(run_dir, mark))
    state["version"] = 1
    iters = checkpoint_dirs.checkpoint_iters(checkpoint)
    path = checkpoint_dirs.write_checkpoint(run_dir, iters_fit=iters, arrays=arrays, state=state)
    os.remove(os.path.join(run_dir, HISTORIES_FILE))
    return path


def test_a_checkpoint_of_the_previous_format_resumes_and_the_log_starts_from_it(
    tmp_path, reference
):
    tg = stopped(tmp_path, at=8)
    old = as_previous_format(complete_checkpoints(tg.run_dir)[-1], tg.run_dir)
    resumed = trainer(tmp_path, resume=old)
    batches = resumed.batches_fit
    assert same(resumed.history, {k: v[:batches] for k, v in reference.history.items()})
    resumed.train()
    assert same(histories(resumed), histories(reference))
    with open(os.path.join(resumed.run_dir, HISTORIES_FILE), encoding="utf-8") as file:
        first = json.loads(file.readline())
    assert first["iters_fit"] == checkpoint_dirs.checkpoint_iters(old) + 2
    assert first["history"]["loss"][0] == 0  # whole, from the first entry
    again = trainer(tmp_path, resume=complete_checkpoints(tg.run_dir)[-1])  # from the log
    again.train()
    assert same(histories(again), histories(reference))


def test_a_best_models_state_json_holds_its_histories_whole(tmp_path):
    tg = trainer(tmp_path, best_models_dir=str(tmp_path / "best"), epochs=1)
    tg.train()
    newest = sorted(os.listdir(tmp_path / "best"))[-1]
    with open(tmp_path / "best" / newest / checkpoint_dirs.STATE_FILE, encoding="utf-8") as file:
        state = checkpoint_dirs.loads_state(file.read())
    assert "histories" not in state
    assert same(state["trainer"]["history"], tg.history)
    assert state["trainer"]["key_metric_history"] == tg.key_metric_history


def test_state_json_does_not_grow_with_the_run(tmp_path):
    tg = trainer(tmp_path, epochs=6, max_checkpoints=40)
    tg.train()
    sizes = [os.path.getsize(os.path.join(p, checkpoint_dirs.STATE_FILE)) for p in
             complete_checkpoints(tg.run_dir)]  # fmt: skip
    assert len(sizes) == 18  # a checkpoint's histories would add ~150 bytes to the next
    assert max(sizes[6:]) - min(sizes[6:]) < 20  # only digits of counters change


def test_after_a_resume_from_an_older_checkpoint_the_abandoned_newer_ones_are_skipped(
    tmp_path, reference
):
    tg = stopped(tmp_path, at=10)  # checkpoints at iters 4, 6 and 8 kept
    (older,) = [
        p for p in complete_checkpoints(tg.run_dir) if checkpoint_dirs.checkpoint_iters(p) == 4
    ]
    stopped(tmp_path, at=8, resume=older)  # the log cut to iter 4's mark; a new iter 6
    with pytest.warns(UserWarning, match=r"ckpt-000000008-4.*histories\.jsonl' was (cut|changed)"):
        resumed = trainer(tmp_path, resume=True)  # not the abandoned iter 8
    assert resumed.iters_fit == 6
    resumed.train()
    assert same(histories(resumed), histories(reference))
