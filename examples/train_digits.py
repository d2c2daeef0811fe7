"""Train a small classifier on scikit-learn's bundled digits with TrainGenerator.

Run: `python examples/train_digits.py [--epochs 8]` (no network needed). Each 8x8 image
is flattened to 64 features; 1,500 digits train, the rest validate. The run is
interrupted on purpose midway (as Ctrl-C would) and continued with `train()`, then
the trainer's counters and histories are printed.
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
from sklearn.datasets import load_digits

from trainkit import DataGenerator, TrainGenerator
from trainkit.callbacks import Callback


class InterruptOnce(Callback):
    """Raises KeyboardInterrupt once, after batch `at` of the run, to show recovery."""

    def __init__(self, at: int):
        self.at = at

    def on_train_batch_end(self, batch, logs=None):
        if self.trainer.batches_fit == self.at:
            raise KeyboardInterrupt(f"simulated Ctrl-C after batch {self.at}")


def build_model() -> keras.Model:
    model = keras.Sequential(
        [
            keras.Input((64,)),
            keras.layers.Dense(32, activation="relu"),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    model.compile(
        keras.optimizers.Adam(1e-2), "sparse_categorical_crossentropy", metrics=["accuracy"]
    )
    return model


def main() -> None:
    parser = argparse.ArgumentParser(description="Train an MLP on sklearn's digits.")
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument(
        "--logs-dir", default="logs", help="run folders go here ('' for none); default: logs"
    )
    args = parser.parse_args()

    digits = load_digits()
    x = (digits.images.reshape(len(digits.images), 64) / 16.0).astype("float32")
    y = digits.target
    datagen = DataGenerator(data=x[:1500], labels=y[:1500], batch_size=64, shuffle=True, seed=0)
    val_datagen = DataGenerator(data=x[1500:], labels=y[1500:], batch_size=100)

    keras.utils.set_random_seed(0)  # before building: reproducible initial weights
    trainer = TrainGenerator(
        build_model(),
        datagen,
        val_datagen,
        epochs=args.epochs,
        key_metric="accuracy",  # max_is_best=True follows from the name
        callbacks=[InterruptOnce(at=30), keras.callbacks.EarlyStopping("val_loss", patience=3)],
        progress_every=12,
        logs_dir=args.logs_dir or None,  # run folder: checkpoints, history.png, report, logs
        model_base_name="digits_mlp",
        model_configs={"units": 32, "lr": 0.01},
    )
    try:
        trainer.train()
    except KeyboardInterrupt as error:
        print(
            f"\n-- interrupted: {error}; epoch={trainer.epoch} batches_fit="
            f"{trainer.batches_fit} set_name={datagen.set_name!r}; continuing --\n"
        )
        trainer.train()  # continues exactly where it stopped

    accuracy = trainer.val_history["accuracy"]
    print(
        f"\nepochs={trainer.epoch} iters_fit={trainer.iters_fit} "
        f"batches_fit={trainer.batches_fit} times_validated={trainer.times_validated}"
    )
    print("val accuracy per epoch:", np.round(accuracy, 3).tolist())
    print(f"best val accuracy: {trainer.best_key_metric:.3f}")
    final = trainer.evaluate(val_datagen)
    print(f"evaluate(val_datagen): loss={final['loss']:.4f} accuracy={final['accuracy']:.3f}")
    if trainer.run_dir is not None:
        print(f"run folder {trainer.run_dir}: {', '.join(sorted(os.listdir(trainer.run_dir)))}")
    if trainer.best_key_metric < 0.85:
        raise SystemExit("digits should reach at least 85% validation accuracy")


if __name__ == "__main__":
    main()
