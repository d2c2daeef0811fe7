"""Runs with every saved setting away from its default, for the resume-without-re-passing tests.

`python tests/checkpoints/settings_case.py CASE MODE LOGS_DIR OUT_FILE`:

* MODE `full` trains CASE uninterrupted with its settings;
* `first` trains it with its settings and SIGKILLs itself after iter `KILL_AT`;
* `resume` builds a TrainGenerator from the model, the generators, `logs_dir` and
  `resume=<the run folder>` only (and the same callback list) and trains to the end.

Each writes the final weights to OUT_FILE and, to OUT_FILE.json, the histories and every
setting as the trainer reports it.
"""

from __future__ import annotations

import glob
import json
import os
import signal
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np

from trainkit import DataGenerator, TimeseriesPreprocessor, TrainGenerator
from trainkit._stable import describe
from trainkit.callbacks import Callback

KILL_AT = 9  # the checkpoint at iter 8 comes after a validation (at the end of batch 3)
SETTING_NAMES = (
    "epochs", "val_freq", "checkpoint_freq", "plot_history_freq", "iter_verbosity",
    "max_checkpoints", "key_metric", "max_is_best", "eval_fn", "input_as_labels",
    "reset_statefuls", "model_base_name", "model_configs", "seed", "val_metrics",
    "class_weights", "val_class_weights",
)  # fmt: skip


class KillAt(Callback):
    def __init__(self, iters: int | None):
        self.iters = iters

    def on_train_iter_end(self, iteration, logs=None):
        if self.iters is not None and self.trainer.iters_fit == self.iters:
            os.kill(os.getpid(), signal.SIGKILL)


def mlp_parts():
    """A classifier on 2 windows per batch, scored in predict mode with f1."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(48, 6, 2)).astype("float32")
    y = (x[:, :, 0].mean(axis=1) > 0).astype("int64")
    keras.utils.set_random_seed(1)
    model = keras.Sequential([
        keras.Input((3, 2)), keras.layers.Flatten(), keras.layers.Dense(8, activation="relu"),
        keras.layers.Dropout(0.2), keras.layers.Dense(1, activation="sigmoid"),
    ])  # fmt: skip
    model.compile(keras.optimizers.Adam(1e-2), "binary_crossentropy", metrics=["accuracy"])
    train = DataGenerator(data=x[:32], labels=y[:32], batch_size=8, shuffle=True, seed=2,
                          preprocessor=TimeseriesPreprocessor(3))  # fmt: skip
    val = DataGenerator(data=x[32:], labels=y[32:], batch_size=8,
                        preprocessor=TimeseriesPreprocessor(3))  # fmt: skip
    settings = dict(
        epochs=2, val_freq={"batch": 3}, checkpoint_freq={"iter": 2}, iter_verbosity=0,
        max_checkpoints=2, key_metric="f1", eval_fn="predict",
        val_metrics=["loss", "f1", "precision"], class_weights={0: 1, 1: 5},
        val_class_weights={0: 2, 1: 1}, model_base_name="mlp", seed=7,
        model_configs={"optimizer": keras.optimizers.Adam(1e-2), "act": keras.activations.relu},
        predict_threshold=0.4, loss_weighted_slices_range=(0.5, 1.5), progress_every=2,
        plot_history_freq={"val": 2},
    )  # fmt: skip
    return model, train, val, settings


def lstm_parts():
    """A stateful LSTM autoencoder on windows: input_as_labels and reset_statefuls."""
    rng = np.random.default_rng(1)
    x = rng.normal(size=(40, 6, 2)).astype("float32")
    keras.utils.set_random_seed(2)
    model = keras.Sequential([
        keras.Input((3, 2), batch_size=8),
        keras.layers.LSTM(4, stateful=True, return_sequences=True), keras.layers.Dense(2),
    ])  # fmt: skip
    model.compile(keras.optimizers.Adam(1e-2), "mse", metrics=["mae"])
    train = DataGenerator(data=x[:32], batch_size=8, shuffle=True, seed=4,
                          preprocessor=TimeseriesPreprocessor(3))  # fmt: skip
    val = DataGenerator(data=x[32:], batch_size=8, preprocessor=TimeseriesPreprocessor(3))
    settings = dict(
        epochs=2, val_freq={"batch": 3}, checkpoint_freq={"iter": 2}, iter_verbosity=0,
        key_metric="mae", val_metrics=["loss", "mae"], input_as_labels=True,
        reset_statefuls=True, model_base_name="lstm", tensorboard=False,
        defer_interrupts=False,
    )  # fmt: skip
    return model, train, val, settings


CASES = {"mlp": mlp_parts, "lstm": lstm_parts}


def run(case: str, mode: str, logs_dir: str, out_file: str) -> None:
    model, train, val, settings = CASES[case]()
    if mode == "resume":
        (run_dir,) = glob.glob(os.path.join(logs_dir, "M*"))
        tg = TrainGenerator(model, train, val, logs_dir=logs_dir, resume=run_dir,
                            callbacks=[KillAt(None)])  # fmt: skip
    else:
        kill = KILL_AT if mode == "first" else None
        tg = TrainGenerator(model, train, val, logs_dir=logs_dir, callbacks=[KillAt(kill)],
                            **settings)  # fmt: skip
    tg.train()
    np.savez(out_file, *tg.model.get_weights())
    reported = {name: describe(getattr(tg, name)) for name in SETTING_NAMES}
    reported["options"] = describe(dict(tg._options))
    for name in ("val_freq", "checkpoint_freq", "plot_history_freq"):  # Frequency or None
        frequency = getattr(tg, name)
        reported[name] = {frequency.unit: frequency.n} if frequency else None
    result = {"history": tg.history, "val_history": tg.val_history, "settings": reported}
    with open(out_file + ".json", "w") as file:
        json.dump(result, file)


if __name__ == "__main__":
    run(*sys.argv[1:])
