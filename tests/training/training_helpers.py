"""Tiny models, data and callbacks shared by the training tests."""

from __future__ import annotations

import keras
import numpy as np

from trainkit import DataGenerator, TimeseriesPreprocessor
from trainkit.callbacks import Callback

HOOKS = (
    "on_train_begin",
    "on_train_end",
    "on_epoch_begin",
    "on_epoch_end",
    "on_train_batch_begin",
    "on_train_iter_end",
    "on_train_batch_end",
    "on_val_begin",
    "on_val_batch_begin",
    "on_val_batch_end",
    "on_val_end",
)


def dense_arrays(n=30, features=8, classes=3, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.random((n, features), dtype=np.float32)
    return x, rng.integers(0, classes, n)


def dense_model(features=8, classes=3, seed=0, learning_rate=0.05, optimizer="adam"):
    """One Dense layer; its initial weights depend only on `seed`."""
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([keras.Input((features,)), keras.layers.Dense(classes)])
    config = {"learning_rate": learning_rate}
    opt = keras.optimizers.get({"class_name": optimizer, "config": config})
    model.compile(
        opt, keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"]
    )
    return model


def dropout_model(seed=0):
    """Dense 8 -> 16 (ReLU) -> Dropout(0.3) -> 3 logits; Adam, sparse cross-entropy."""
    keras.utils.set_random_seed(seed)
    model = keras.Sequential(
        [
            keras.Input((8,)),
            keras.layers.Dense(16, activation="relu"),
            keras.layers.Dropout(0.3),
            keras.layers.Dense(3),
        ]
    )
    model.compile(
        keras.optimizers.Adam(0.02),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    return model


def dense_datagens(n=30, val_n=10, batch_size=8, shuffle=True, seed=0, **kwargs):
    x, y = dense_arrays(n + val_n, seed=seed)
    datagen = DataGenerator(
        data=x[:n], labels=y[:n], batch_size=batch_size, shuffle=shuffle, seed=seed, **kwargs
    )
    val_datagen = DataGenerator(data=x[n:], labels=y[n:], batch_size=4, **kwargs)
    return datagen, val_datagen


def series_arrays(n=8, timesteps=12, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.random((n, timesteps, 1), dtype=np.float32)
    return x, x.mean(axis=(1, 2))[:, None].astype("float32")


def lstm_model(batch_size=4, window=4, seed=0, stateful=True, bidirectional=False):
    """A small (optionally stateful) LSTM on windows, inside a nested sub-model."""
    keras.utils.set_random_seed(seed)
    inputs = keras.Input(batch_shape=(batch_size, window, 1))
    rnn = keras.layers.LSTM(3, stateful=stateful)
    if bidirectional:
        rnn = keras.layers.Bidirectional(rnn)
    inner = keras.Model(inputs, rnn(inputs), name="encoder")
    outer_inputs = keras.Input(batch_shape=(batch_size, window, 1))
    outputs = keras.layers.Dense(1)(inner(outer_inputs))
    model = keras.Model(outer_inputs, outputs)
    model.compile(keras.optimizers.Adam(0.01), "mse")
    return model


def window_dense_model(window=4, seed=0):
    """Flatten + one Dense over a window: the cheapest model for sliced data."""
    keras.utils.set_random_seed(seed)
    model = keras.Sequential(
        [keras.Input((window, 1)), keras.layers.Flatten(), keras.layers.Dense(1)]
    )
    model.compile(keras.optimizers.SGD(0.01), "mse")
    return model


def series_datagen(n=8, batch_size=4, window=4, shuffle=True, seed=0, **kwargs):
    x, y = series_arrays(n, seed=seed)
    return DataGenerator(
        data=x,
        labels=y,
        batch_size=batch_size,
        shuffle=shuffle,
        seed=seed,
        preprocessor=TimeseriesPreprocessor(window),
        **kwargs,
    )


class RecordingCallback(Callback):
    """Records every hook as a tuple: (name,) or (name, index)."""

    def __init__(self):
        self.calls = []
        self.logs = []

    def _record(self, name, index=None, logs=None):
        self.calls.append((name,) if index is None else (name, index))
        self.logs.append((name, dict(logs or {})))


def _make_hook(name, indexed):
    if indexed:

        def hook(self, index, logs=None):
            self._record(name, index, logs)
    else:

        def hook(self, logs=None):
            self._record(name, None, logs)

    return hook


_UNINDEXED = ("on_train_begin", "on_train_end", "on_val_begin", "on_val_end")
for _name in HOOKS:
    setattr(RecordingCallback, _name, _make_hook(_name, _name not in _UNINDEXED))


class RaiseAt(Callback):
    """Raises `error` from the hook calls whose running count is in `points`."""

    def __init__(self, points, error=RuntimeError):
        self.points = set(points)
        self.error = error
        self.count = 0

    def _maybe_raise(self, *args):
        self.count += 1
        if self.count in self.points:
            raise self.error(f"planned failure at hook call {self.count}")


for _name in HOOKS:
    setattr(RaiseAt, _name, lambda self, *args, **kwargs: self._maybe_raise())


def weights_equal(model_a, model_b):
    return all(
        np.array_equal(a, b)
        for a, b in zip(model_a.get_weights(), model_b.get_weights(), strict=True)
    )


def train_through_failures(trainer, expected=(Exception,), max_attempts=200):
    """Call `train()` until it returns; returns how many calls raised."""
    failures = 0
    for _ in range(max_attempts):
        try:
            trainer.train()
            return failures
        except expected:
            failures += 1
    raise AssertionError("train() kept failing")
