"""Keras habits honoured or refused with the trainkit way: BackupAndRestore, the History
`train()` returns, ProgbarLogger, metric directions, `model.fit` keywords, SIGTERM."""

import os
import signal
import sys
import types

import keras
import numpy as np
import pytest
from training_helpers import (
    RaiseAt,
    RecordingCallback,
    dense_datagens,
    dense_model,
    train_through_failures,
    weights_equal,
)

from trainkit import TrainGenerator
from trainkit.callbacks import Callback
from trainkit.metrics import ALIASES, METRICS
from trainkit.training.construction.metric_directions import default_max_is_best
from trainkit.training.loop_state import LoopState
from trainkit.training.outputs import figures
from trainkit.training.outputs.progress import Progress, can_rewrite

EPOCHS = 3


def trainer(callbacks=(), epochs=EPOCHS, **kwargs):
    datagen, val_datagen = dense_datagens()
    kwargs.setdefault("iter_verbosity", 0)
    return TrainGenerator(
        dense_model(), datagen, val_datagen, epochs=epochs, callbacks=list(callbacks), **kwargs
    )


@pytest.fixture(scope="module")
def reference():
    tg = trainer()
    tg.train()
    return tg


# ------------------------------------------------------------ BackupAndRestore


def test_backup_and_restore_is_refused_pointing_to_resume(tmp_path):
    backup = keras.callbacks.BackupAndRestore(str(tmp_path / "backup"))
    with pytest.raises(ValueError, match=r"BackupAndRestore.*resume=True"):
        trainer([backup])


# ------------------------------------------------------------ the returned History


def test_train_returns_a_keras_history_with_one_value_per_epoch():
    recorder = RecordingCallback()
    tg = trainer([recorder])
    history = tg.train()
    assert isinstance(history, keras.callbacks.History)
    assert history.epoch == [0, 1, 2]
    epoch_logs = [logs for name, logs in recorder.logs if name == "on_epoch_end"]
    for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
        assert history.history[key] == [logs[key] for logs in epoch_logs]
    assert history.params == {"epochs": EPOCHS, "steps": len(tg.datagen), "verbose": 0}
    assert tg.model.history is history
    assert len(tg.history["loss"]) == tg.batches_fit  # per batch, alongside


def test_history_after_interrupts_holds_the_whole_run_as_if_uninterrupted(reference):
    tg = trainer([RaiseAt({4, 17, 30})])
    assert train_through_failures(tg) == 3
    history = tg.train()  # the run is over: returns at once, with the run's History
    assert history.epoch == [0, 1, 2]
    assert history.history["loss"] == reference.model.history.history["loss"]
    assert history.history["val_loss"] == reference.model.history.history["val_loss"]


def test_continuing_with_more_epochs_returns_a_new_history_of_those_epochs():
    tg = trainer(epochs=2)
    first = tg.train()
    tg.epochs = 4
    second = tg.train()
    assert first.epoch == [0, 1] and second.epoch == [2, 3]  # as fit(initial_epoch=2)
    assert len(first.history["loss"]) == 2 and len(second.history["loss"]) == 2
    assert second.params["epochs"] == 4


# ------------------------------------------------------------ ProgbarLogger


def test_progbar_logger_draws_with_the_real_verbosity_and_quiets_trainkits_own(capsys):
    progbar = keras.callbacks.ProgbarLogger()
    tg = trainer([progbar], epochs=2, iter_verbosity=1)
    tg.train()
    out = capsys.readouterr().out
    assert progbar.verbose == 1 and progbar.target == len(tg.datagen) and progbar.epochs == 2
    assert "Epoch 1/2" in out and "Epoch 2/2" in out
    assert "batch 1/" not in out and "done:" not in out  # trainkit's lines stay out


def test_progbar_logger_is_silent_with_iter_verbosity_0_as_keras_with_verbose_0(capsys):
    trainer([keras.callbacks.ProgbarLogger()], epochs=1).train()
    assert capsys.readouterr().out == ""


# ------------------------------------------------------------ key_metric direction


@pytest.mark.parametrize(
    ("name", "max_is_best"),
    [
        ("false_negatives", False), ("false_positives", False), ("mean_absolute_error", False),
        ("binary_crossentropy", False), ("true_positives", True), ("true_negatives", True),
        ("acc", True), ("sparse_categorical_accuracy", True), ("auc", True), ("r2", True),
        ("f1_macro", True), ("f1_weighted", True), ("precision_macro", True),
        ("recall_weighted", True), ("recall_at_precision", True), ("tpr", True), ("tnr", True),
    ],
)  # fmt: skip
def test_metric_directions_follow_keras(name, max_is_best):
    assert default_max_is_best(name) is max_is_best


def test_every_predict_mode_metric_has_a_known_direction():
    for name in [*METRICS, *ALIASES, "accuracy", "loss"]:
        default_max_is_best(name)  # raises for an unknown direction


def my_score(y_true, y_pred):
    return float(np.mean(np.argmax(y_pred, axis=-1) == np.ravel(y_true)))


def num_mistakes(y_true, y_pred):
    return float(np.sum(np.argmax(y_pred, axis=-1) != np.ravel(y_true)))


@pytest.mark.parametrize("metric", [my_score, num_mistakes])
def test_a_key_metric_of_unknown_direction_is_refused_unless_max_is_best_is_given(metric):
    name = metric.__name__
    kwargs = {"epochs": 0, "key_metric": name, "eval_fn": "predict", "val_metrics": [metric]}
    with pytest.raises(ValueError, match=rf"key_metric='{name}'.*max_is_best=True"):
        trainer(**kwargs)
    assert trainer(**kwargs, max_is_best=False).max_is_best is False


# ------------------------------------------------------------ model.fit keywords


@pytest.mark.parametrize(
    ("keyword", "says"),
    [
        ("validation_data", r"val_datagen="),
        ("validation_split", r"val_datagen="),
        ("validation_freq", r"val_freq="),
        ("initial_epoch", r"absolute total.*resume=True"),
        ("steps_per_epoch", r"len\(datagen\)"),
        ("shuffle", r"DataGenerator\(\.\.\., shuffle=True\)"),
        ("batch_size", r"DataGenerator\(\.\.\., batch_size="),
        ("verbose", r"iter_verbosity"),
        ("class_weight", r"class_weights="),
        ("sample_weight", r"class_weights=.*by their label's class.*\(x, y, sample_weight\)"),
    ],
)
def test_fit_keywords_are_answered_with_the_trainkit_way(keyword, says):
    x = np.zeros((50, 8), dtype="float32")
    with pytest.raises(ValueError, match=says) as raised:
        trainer(epochs=0, **{keyword: x})
    message = str(raised.value)
    assert "model.fit" in message and "Did you mean" not in message
    assert "shape (50, 8)" in message and "0., 0." not in message  # no array in a message


def test_other_typos_still_get_the_closest_name():
    with pytest.raises(ValueError, match="Did you mean 'val_freq'"):
        trainer(epochs=0, val_frq={"epoch": 1})


# ------------------------------------------------------------ SIGTERM


class SigtermAt(Callback):
    """Sends this process SIGTERM from a hook, as a cluster preempting the job does."""

    def __init__(self, hook, at):
        self.hook, self.at, self.ended = hook, at, False

    def on_train_iter_end(self, iteration, logs=None):
        if self.hook == "iter" and self.trainer.iters_fit == self.at:
            os.kill(os.getpid(), signal.SIGTERM)

    def on_epoch_end(self, epoch, logs=None):
        if self.hook == "epoch" and epoch == self.at:
            os.kill(os.getpid(), signal.SIGTERM)

    def on_train_end(self, logs=None):
        self.ended = True


def _not_deferred(signum, frame):
    raise AssertionError("SIGTERM reached the test: the trainer did not defer it")


@pytest.fixture
def sigterm_guard():
    """A failing handler outside train(), so a SIGTERM that is not deferred fails the test
    instead of killing pytest; the trainer must put it back after train()."""
    previous = signal.signal(signal.SIGTERM, _not_deferred)
    yield
    signal.signal(signal.SIGTERM, previous)


@pytest.mark.parametrize(("hook", "at"), [("iter", 5), ("epoch", 1)])
def test_sigterm_checkpoints_stops_and_resumes_bitwise(
    tmp_path, reference, sigterm_guard, hook, at
):
    sigterm = SigtermAt(hook, at)
    tg = trainer([sigterm], logs_dir=str(tmp_path))
    with pytest.warns(RuntimeWarning, match=r"SIGTERM.*checkpoint was written.*resume=True"):
        history = tg.train()
    assert isinstance(history, keras.callbacks.History) and not sigterm.ended
    stopped_at = tg.iters_fit
    assert stopped_at == (at if hook == "iter" else 2 * len(tg.datagen))
    assert 0 < stopped_at < reference.iters_fit

    resumed = trainer([SigtermAt(None, None)], logs_dir=str(tmp_path), resume=True)
    assert resumed.iters_fit == stopped_at and resumed.run_dir == tg.run_dir
    history = resumed.train()  # the epochs this trainer trained, as fit(initial_epoch=...)
    assert history.epoch == list(range(tg.epoch, EPOCHS))
    assert history.params == {"epochs": EPOCHS, "steps": len(tg.datagen), "verbose": 0}
    assert weights_equal(resumed.model, reference.model)
    assert resumed.history == reference.history
    assert resumed.val_history == reference.val_history


def test_sigterm_without_a_run_folder_stops_and_train_continues_in_process(
    reference, sigterm_guard
):
    sigterm = SigtermAt("iter", 3)
    tg = trainer([sigterm])
    with pytest.warns(RuntimeWarning, match="nothing was saved"):
        tg.train()
    assert tg.iters_fit == 3 and not sigterm.ended
    assert tg.train().epoch == [0, 1, 2]  # one History over both calls, as one fit
    assert sigterm.ended and weights_equal(tg.model, reference.model)
    assert tg.history == reference.history
    assert signal.getsignal(signal.SIGTERM) is _not_deferred  # the handler put back


# ------------------------------------------------------------ progress display


def test_a_rewritten_line_is_padded_over_the_previous_one(capsys):
    progress = Progress(1, state=LoopState(), settings=None, datagen=None)
    progress.in_place = True
    long_name = "set-" + "x" * 90  # longer than a terminal's 80 columns
    progress._print(f"epoch 1/1 batch 1/9 [{long_name}]", {"loss": 1.23456})
    progress._print("epoch 1/1 batch 2/9 [s]", {"loss": 1.0})
    progress._print("done:", {}, done=True)
    writes = capsys.readouterr().out.split("\r")[1:]
    assert len(writes[1]) >= len(writes[0])  # the shorter line covers the longer one
    assert len(writes[2].rstrip("\n")) >= len(writes[1].rstrip())


def test_a_notebook_kernel_counts_as_a_display_that_can_rewrite(monkeypatch):
    class NotATerminal:
        def isatty(self):
            return False

    assert not can_rewrite(NotATerminal())
    shell = types.SimpleNamespace(kernel=object())
    monkeypatch.setitem(sys.modules, "ipykernel", types.ModuleType("ipykernel"))
    fake_ipython = types.ModuleType("IPython")
    fake_ipython.get_ipython = lambda: shell
    monkeypatch.setitem(sys.modules, "IPython", fake_ipython)
    assert can_rewrite(NotATerminal())


# ------------------------------------------------------------ plots by default


def test_by_default_the_pictures_are_drawn_once_when_train_ends(tmp_path, monkeypatch):
    calls = []
    draw = figures.draw_history
    monkeypatch.setattr(
        figures, "draw_history", lambda at: calls.append(at.state.epoch) or draw(at)
    )
    tg = trainer(logs_dir=str(tmp_path))
    tg.train()
    assert calls == [EPOCHS]
    assert os.path.exists(os.path.join(tg.run_dir, figures.HISTORY_FILE))
