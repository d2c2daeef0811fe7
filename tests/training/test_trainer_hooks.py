"""The hook order of the train loop, for trainkit callbacks and stock Keras callbacks."""

import os
import signal

import keras
import numpy as np
import pytest
from training_helpers import (
    RaiseAt,
    RecordingCallback,
    dense_datagens,
    dense_model,
    train_through_failures,
)

from trainkit import DataGenerator, TimeseriesPreprocessor, TrainGenerator
from trainkit.callbacks import Callback

# Two epochs of 2 train batches (4 + 2 series) cut into 2 windows each, and one
# validation batch of 2 windows after each epoch.
EXPECTED_TWO_EPOCHS = [
    ("on_train_begin",),
    ("on_epoch_begin", 0),
    ("on_train_batch_begin", 0),
    ("on_train_iter_end", 0),
    ("on_train_iter_end", 1),
    ("on_train_batch_end", 0),
    ("on_train_batch_begin", 1),
    ("on_train_iter_end", 0),
    ("on_train_iter_end", 1),
    ("on_train_batch_end", 1),
    ("on_val_begin",),
    ("on_val_batch_begin", 0),
    ("on_val_batch_end", 0),
    ("on_val_end",),
    ("on_epoch_end", 0),
    ("on_epoch_begin", 1),
    ("on_train_batch_begin", 0),
    ("on_train_iter_end", 0),
    ("on_train_iter_end", 1),
    ("on_train_batch_end", 0),
    ("on_train_batch_begin", 1),
    ("on_train_iter_end", 0),
    ("on_train_iter_end", 1),
    ("on_train_batch_end", 1),
    ("on_val_begin",),
    ("on_val_batch_begin", 0),
    ("on_val_batch_end", 0),
    ("on_val_end",),
    ("on_epoch_end", 1),
    ("on_train_end",),
]


def windowed_trainer(callbacks, epochs=2):
    rng = np.random.default_rng(0)
    x = rng.random((9, 8, 1), dtype=np.float32)
    y = x.mean(axis=(1, 2))[:, None]
    window = TimeseriesPreprocessor
    datagen = DataGenerator(
        data=x[:6], labels=y[:6], batch_size=4, shuffle=True, preprocessor=window(4)
    )
    val_datagen = DataGenerator(data=x[6:], labels=y[6:], batch_size=3, preprocessor=window(4))
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4, 1)), keras.layers.Flatten(), keras.layers.Dense(1)])
    model.compile("sgd", "mse")
    return TrainGenerator(
        model, datagen, val_datagen, epochs=epochs, callbacks=callbacks, iter_verbosity=0
    )


def test_hooks_of_a_two_epoch_run_with_validation_fire_in_the_documented_order():
    recorder = RecordingCallback()
    trainer = windowed_trainer([recorder])
    trainer.train()
    assert recorder.calls == EXPECTED_TWO_EPOCHS
    assert recorder.trainer is trainer


def test_the_first_epoch_calls_its_hooks_in_the_order_of_the_hook_table():
    from trainkit.training.loop_state import HOOK_ORDER

    first_epoch = EXPECTED_TWO_EPOCHS[: EXPECTED_TWO_EPOCHS.index(("on_epoch_end", 0)) + 1]
    first_seen = list(dict.fromkeys(call[0] for call in [*first_epoch, ("on_train_end",)]))
    assert first_seen == [hook for hook, _ in HOOK_ORDER if hook != "on_save"]


@pytest.mark.parametrize("points", [[1], [2, 5], [4, 11, 12, 13], [15, 25, 29], [30]])
def test_interrupts_from_callbacks_then_reentry_keep_the_hook_order(points):
    recorder = RecordingCallback()
    trainer = windowed_trainer([recorder, RaiseAt(points, KeyboardInterrupt)])
    failures = train_through_failures(trainer, expected=(KeyboardInterrupt,))
    assert failures == len(points)
    assert recorder.calls == EXPECTED_TWO_EPOCHS  # on_train_begin once, nothing repeated


class SigintAt(Callback):
    """Sends a real SIGINT to this process from `on_train_iter_end` number `at`."""

    def __init__(self, at):
        self.at, self.count, self.iters_when_sent = at, 0, None

    def on_train_iter_end(self, iteration, logs=None):
        self.count += 1
        if self.count == self.at:
            self.iters_when_sent = self.trainer.iters_fit
            os.kill(os.getpid(), signal.SIGINT)


def test_ctrl_c_is_deferred_to_the_slice_boundary_and_the_handler_is_restored():
    recorder, sigint = RecordingCallback(), SigintAt(3)
    trainer = windowed_trainer([recorder, sigint])
    handler_before = signal.getsignal(signal.SIGINT)
    with pytest.raises(KeyboardInterrupt):
        trainer.train()
    assert signal.getsignal(signal.SIGINT) is handler_before
    assert trainer.iters_fit == sigint.iters_when_sent  # the slice in flight was counted
    trainer.train()
    assert recorder.calls == EXPECTED_TWO_EPOCHS


def test_raising_epochs_continues_the_run_and_on_train_begin_fires_per_train_call():
    recorder = RecordingCallback()
    trainer = windowed_trainer([recorder], epochs=1)
    trainer.train()
    trainer.epochs = 2
    trainer.train()
    assert trainer.epoch == 2
    # A completed run ends with on_train_end; the next train() is a new run.
    first = [*EXPECTED_TWO_EPOCHS[:15], ("on_train_end",)]
    second = [("on_train_begin",), *EXPECTED_TWO_EPOCHS[15:]]
    assert recorder.calls == first + second


class KerasRecorder(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.calls = []

    def __getattribute__(self, name):
        if name.startswith("on_"):
            calls = object.__getattribute__(self, "calls")
            index = lambda args: [a for a in args[:1] if isinstance(a, int)]  # noqa: E731
            return lambda *args, **kwargs: calls.append((name, *index(args)))
        return object.__getattribute__(self, name)


def test_stock_keras_callbacks_are_driven_in_the_same_order_with_keras_names():
    recorder = KerasRecorder()
    windowed_trainer([recorder]).train()
    renamed = {
        "on_val_begin": "on_test_begin",
        "on_val_batch_begin": "on_test_batch_begin",
        "on_val_batch_end": "on_test_batch_end",
        "on_val_end": "on_test_end",
    }
    expected = [
        (renamed.get(name, name), *rest)
        for name, *rest in EXPECTED_TWO_EPOCHS
        if name != "on_train_iter_end"
    ]
    assert recorder.calls == expected


def keras_callback_run(callback, epochs=6, learning_rate=0.05):
    datagen, val_datagen = dense_datagens()
    model = dense_model(learning_rate=learning_rate)
    trainer = TrainGenerator(
        model, datagen, val_datagen, epochs=epochs, callbacks=[callback], iter_verbosity=0
    )
    trainer.train()
    return trainer


def test_early_stopping_on_val_loss_stops_the_run():
    stopper = keras.callbacks.EarlyStopping(monitor="val_loss", min_delta=100.0, patience=1)
    trainer = keras_callback_run(stopper)
    assert trainer.epoch == 2
    assert stopper.stopped_epoch == 1
    assert trainer.times_validated == 2


def test_reduce_lr_on_plateau_lowers_the_learning_rate():
    reducer = keras.callbacks.ReduceLROnPlateau(
        monitor="val_loss", min_delta=100.0, patience=1, factor=0.5, verbose=0
    )
    trainer = keras_callback_run(reducer, epochs=3)
    learning_rate = float(np.asarray(trainer.model.optimizer.learning_rate))
    assert learning_rate == pytest.approx(0.05 * 0.5 * 0.5)


def test_csv_logger_writes_one_row_per_epoch_with_val_metrics(tmp_path):
    path = tmp_path / "log.csv"
    keras_callback_run(keras.callbacks.CSVLogger(str(path)), epochs=3)
    lines = path.read_text().splitlines()
    assert lines[0].split(",") == ["epoch", "accuracy", "loss", "val_accuracy", "val_loss"]
    assert [line.split(",")[0] for line in lines[1:]] == ["0", "1", "2"]


def test_tensorboard_writes_event_files(tmp_path):
    pytest.importorskip("tensorboard", reason="keras' TensorBoard callback needs it")
    keras_callback_run(keras.callbacks.TensorBoard(str(tmp_path)), epochs=2)
    events = [name for _, _, files in os.walk(tmp_path) for name in files]
    assert any(name.startswith("events.out.tfevents") for name in events)
    assert {"train", "validation"} <= set(os.listdir(tmp_path))
