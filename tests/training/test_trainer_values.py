"""What the trainer reports: each batch's own values, sample-weighted epoch and
validation means, the key metric and its best value."""

import math

import keras
import numpy as np
import pytest
from training_helpers import (
    RecordingCallback,
    dense_arrays,
    dense_model,
    series_datagen,
    window_dense_model,
)

from trainkit import DataGenerator, TimeseriesPreprocessor, TrainGenerator
from trainkit.training.construction.metric_directions import default_max_is_best


def frozen_dense_run(batch_size=8, n=30, val_n=10, **kwargs):
    """A run with learning rate 0: every value can be recomputed with model.evaluate."""
    x, y = dense_arrays(n + val_n)
    model = dense_model(optimizer="sgd", learning_rate=0.0)
    datagen = DataGenerator(data=x[:n], labels=y[:n], batch_size=batch_size)
    val_datagen = DataGenerator(data=x[n:], labels=y[n:], batch_size=4)
    recorder = RecordingCallback()
    kwargs.setdefault("iter_verbosity", 0)
    trainer = TrainGenerator(model, datagen, val_datagen, callbacks=[recorder], **kwargs)
    trainer.train()
    return trainer, recorder, (x[:n], y[:n]), (x[n:], y[n:])


@pytest.fixture(scope="module")
def frozen_run():
    return frozen_dense_run(epochs=2)


def evaluate(model, x, y, **kwargs):
    return model.evaluate(x, y, verbose=0, return_dict=True, **kwargs)


def test_history_holds_each_batch_own_value_not_a_running_mean(frozen_run):
    trainer, _, (x, y), _ = frozen_run
    expected = [evaluate(trainer.model, x[i : i + 8], y[i : i + 8]) for i in range(0, 30, 8)]
    assert len(trainer.history["loss"]) == 8  # 4 batches (8, 8, 8, 6) x 2 epochs
    for name in ("loss", "accuracy"):
        assert trainer.history[name] == pytest.approx([e[name] for e in expected] * 2, rel=1e-5)


def test_epoch_logs_are_sample_weighted_means_with_this_epochs_val_values(frozen_run):
    trainer, recorder, (x, y), (val_x, val_y) = frozen_run
    epoch_logs = [logs for name, logs in recorder.logs if name == "on_epoch_end"]
    train, val = evaluate(trainer.model, x, y), evaluate(trainer.model, val_x, val_y)
    assert epoch_logs[0] == pytest.approx(
        {"loss": train["loss"], "accuracy": train["accuracy"],
         "val_loss": val["loss"], "val_accuracy": val["accuracy"]},
        rel=1e-5,
    )  # fmt: skip


def test_validation_reports_the_sample_weighted_mean_like_model_evaluate(frozen_run):
    trainer, recorder, _, (val_x, val_y) = frozen_run
    expected = evaluate(trainer.model, val_x, val_y, batch_size=4)  # batches 4, 4, 2
    assert trainer.val_history["loss"] == pytest.approx([expected["loss"]] * 2, rel=1e-5)
    assert trainer.val_history["accuracy"] == pytest.approx([expected["accuracy"]] * 2)
    assert trainer.times_validated == 2 and trainer.batches_validated == 6
    val_end = [logs for name, logs in recorder.logs if name == "on_val_end"]
    assert val_end[0] == pytest.approx(expected, rel=1e-5)
    assert trainer.evaluate(trainer.val_datagen) == pytest.approx(expected, rel=1e-5)


def test_a_batch_value_is_the_sample_weighted_mean_over_its_slices():
    rng = np.random.default_rng(1)
    x = rng.random((6, 8, 1), dtype=np.float32)
    y = rng.random((6, 1), dtype=np.float32)
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4, 1)), keras.layers.Flatten(), keras.layers.Dense(1)])
    model.compile(keras.optimizers.SGD(0.0), "mse")
    datagen = DataGenerator(data=x, labels=y, batch_size=4, preprocessor=TimeseriesPreprocessor(4))
    trainer = TrainGenerator(model, datagen, iter_verbosity=0)
    trainer.train()
    expected = [
        np.mean([evaluate(model, x[rows, w : w + 4], y[rows])["loss"] for w in (0, 4)])
        for rows in (slice(0, 4), slice(4, 6))
    ]
    assert trainer.iters_fit == 4 and trainer.batches_fit == 2
    assert trainer.history["loss"] == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize(
    ("key_metric", "max_is_best"),
    [
        ("loss", False), ("val_loss", False), ("categorical_crossentropy", False),
        ("mean_squared_error", False), ("mae", False), ("mse", False), ("rmse", False),
        ("mape", False), ("msle", False), ("kld", False), ("hinge", False),
        ("logcosh", False), ("poisson", False),
        ("accuracy", True), ("f1", True), ("auc", True), ("precision", True),
    ],
)  # fmt: skip
def test_max_is_best_default_follows_the_metric_name(key_metric, max_is_best):
    assert default_max_is_best(key_metric) is max_is_best


def test_best_key_metric_starts_at_the_worst_infinity_and_tracks_the_best():
    for key_metric, start, pick in (("loss", math.inf, min), ("accuracy", -math.inf, max)):
        trainer, *_ = frozen_dense_run(epochs=0, key_metric=key_metric)
        assert trainer.best_key_metric == start
        trainer.epochs = 3
        trainer.train()
        assert trainer.key_metric_history == trainer.val_history[key_metric]
        assert trainer.best_key_metric == pick(trainer.key_metric_history)


def test_an_unknown_key_metric_is_refused_before_training():
    with pytest.raises(ValueError, match=r"key_metric='f1' is not among .*'loss', 'accuracy'"):
        frozen_dense_run(epochs=1, key_metric="f1")


def test_input_as_labels_fits_the_inputs_as_targets():
    x, _ = dense_arrays(16)
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(8)])
    model.compile(keras.optimizers.SGD(0.0), "mse")
    trainer = TrainGenerator(
        model, DataGenerator(data=x, batch_size=8), input_as_labels=True, iter_verbosity=0
    )
    trainer.train()
    assert trainer.history["loss"] == pytest.approx(
        [evaluate(model, x[:8], x[:8])["loss"], evaluate(model, x[8:], x[8:])["loss"]], rel=1e-5
    )


def test_progress_prints_one_line_per_batch_when_not_a_terminal(capsys):
    frozen_dense_run(epochs=1, iter_verbosity=1)
    lines = capsys.readouterr().out.splitlines()
    assert sum(line.startswith("epoch 1/1 batch") for line in lines) == 4
    assert any(line.startswith("validation 1") for line in lines)


class ValidationPoints(RecordingCallback):
    def on_val_begin(self, logs=None):
        self.calls.append((self.trainer.iters_fit, self.trainer.batches_fit))


@pytest.mark.parametrize(
    ("val_freq", "epochs", "points"),
    [
        # 2 batches of 3 slices per epoch: batch ends at iters 3, 6, 9, 12.
        ({"iter": 2}, 2, [(3, 1), (6, 2), (9, 3), (12, 4)]),
        ({"iter": 4}, 2, [(6, 2), (9, 3), (12, 4)]),
        ({"iter": 5}, 2, [(6, 2), (12, 4)]),
        ({"batch": 3}, 2, [(9, 3)]),
        ({"epoch": 2}, 3, [(12, 4)]),
        (None, 2, []),
    ],
)
def test_validation_fires_at_batch_ends_at_or_after_each_multiple(val_freq, epochs, points):
    probe = ValidationPoints()
    trainer = TrainGenerator(
        window_dense_model(), series_datagen(), series_datagen(), epochs=epochs,
        val_freq=val_freq, callbacks=[probe], iter_verbosity=0,
    )  # fmt: skip
    trainer.train()
    assert [c for c in probe.calls if isinstance(c[0], int)] == points
    assert trainer.times_validated == len(points)
