"""Tiny models and generators shared by the validation tests."""

from __future__ import annotations

import keras
import numpy as np

from trainkit import DataGenerator, TimeseriesPreprocessor


def binary_arrays(n=40, features=4, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, features)).astype("float32")
    y = (x[:, 0] + 0.5 * rng.normal(size=n) > 0).astype("float32")[:, None]
    return x, y


def binary_model(features=4, seed=0):
    """One sigmoid Dense unit: binary scores for f1, roc_auc, thresholds."""
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([keras.Input((features,)), keras.layers.Dense(1, "sigmoid")])
    model.compile(keras.optimizers.SGD(0.1), "binary_crossentropy", metrics=["accuracy"])
    return model


def sparse_model(features=4, classes=3, seed=0):
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([keras.Input((features,)), keras.layers.Dense(classes, "softmax")])
    model.compile(
        keras.optimizers.SGD(0.1), "sparse_categorical_crossentropy", metrics=["accuracy"]
    )
    return model


def window_model(window=4, seed=0):
    keras.utils.set_random_seed(seed)
    model = keras.Sequential(
        [keras.Input((window, 1)), keras.layers.Flatten(), keras.layers.Dense(1)]
    )
    model.compile(keras.optimizers.SGD(0.01), "mse")
    return model


def series(n=8, timesteps=12, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.random((n, timesteps, 1), dtype=np.float32)
    return x, x.mean(axis=(1, 2))[:, None].astype("float32")


def series_datagen(x, y, batch_size=4, window=4, **kwargs):
    return DataGenerator(
        data=x, labels=y, batch_size=batch_size, preprocessor=TimeseriesPreprocessor(window),
        **kwargs,
    )  # fmt: skip


class RecordingStep:
    """Wraps a compiled step and records the sample weights it receives."""

    def __init__(self, step):
        self.step, self.weights = step, []

    def __call__(self, x, y, sample_weight=None):
        self.weights.append(None if sample_weight is None else np.array(sample_weight))
        return self.step(x, y, sample_weight)
