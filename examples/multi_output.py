"""A model with two outputs on scikit-learn's bundled digits: the digit and its parity.

Run: `python examples/multi_output.py [--small]` (no network needed; `--small` trains
fewer epochs). One input, `{'pixels': (64,)}`, and two outputs: `'digit'`, a 10-class
softmax, and `'parity'`, a sigmoid that says whether the digit is odd. Labels are a
dict with the same keys.

Validation runs in predict mode, which scores the whole validation set with NumPy and
scikit-learn: `val_metrics` entries that start with an output's name score that output
(`'digit_accuracy'`, `'parity_f1'`, `'parity_roc_auc'`); `'loss'` is the total compiled
loss. `key_metric='digit_accuracy'` picks the best epoch.

Afterwards `tg.predict` runs a shuffled test generator; `in_sample_order()` puts the rows
back in the test arrays' order, where they equal `model.predict` on the arrays.
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
from sklearn.datasets import load_digits

from trainkit import DataGenerator, TrainGenerator

VAL_METRICS = ["loss", "digit_accuracy", "parity_accuracy", "parity_f1", "parity_roc_auc"]


def build_model() -> keras.Model:
    pixels = keras.Input((64,), name="pixels")
    h = keras.layers.Dense(64, activation="relu")(pixels)
    outputs = {
        "digit": keras.layers.Dense(10, activation="softmax", name="digit")(h),
        "parity": keras.layers.Dense(1, activation="sigmoid", name="parity")(h),
    }
    model = keras.Model({"pixels": pixels}, outputs)
    model.compile(
        keras.optimizers.Adam(3e-3),
        loss={"digit": "sparse_categorical_crossentropy", "parity": "binary_crossentropy"},
    )
    return model


def split(x: np.ndarray, y: np.ndarray, rows: slice) -> tuple[dict, dict]:
    """Inputs and labels of `rows` as the model's dicts (labels keyed by output)."""
    return {"pixels": x[rows]}, {"digit": y[rows], "parity": (y[rows] % 2).astype("float32")}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description="Two outputs on sklearn's digits.")
    parser.add_argument("--small", action="store_true", help="fewer epochs, a few seconds")
    args = parser.parse_args(argv)
    epochs = 5 if args.small else 12

    digits = load_digits()
    x = (digits.images.reshape(len(digits.images), 64) / 16.0).astype("float32")
    y = digits.target
    train, val, test = (
        split(x, y, rows) for rows in (slice(1200), slice(1200, 1500), slice(1500, None))
    )

    keras.utils.set_random_seed(0)  # before building: reproducible initial weights
    model = build_model()
    tg = TrainGenerator(
        model,
        DataGenerator(data=train[0], labels=train[1], batch_size=32, shuffle=True, seed=0),
        DataGenerator(data=val[0], labels=val[1], batch_size=100),
        epochs=epochs,
        eval_fn="predict",
        val_metrics=VAL_METRICS,
        key_metric="digit_accuracy",  # max_is_best=True follows from the name
        iter_verbosity=0,
        logs_dir=None,
    )
    tg.train()
    for name in VAL_METRICS:
        print(f"val {name:<15}", np.round(tg.val_history[name], 3).tolist())
    print(f"best val digit_accuracy: {tg.best_key_metric:.3f}")

    test_x, test_y = test
    shuffled = DataGenerator(data=test_x, labels=test_y, batch_size=50, shuffle="samples", seed=1)
    result = tg.predict(shuffled)  # rows in serving order: shuffled
    print("first sample indices served:", result.sample_indices[:8].tolist())
    ordered = result.in_sample_order()  # rows back in the test arrays' order
    expected = model.predict(test_x, batch_size=50, verbose=0)  # {'digit': ..., 'parity': ...}
    difference = max(
        float(np.max(np.abs(ordered.predictions[key] - expected[key]))) for key in expected
    )
    print(f"max |tg.predict (in sample order) - model.predict|: {difference:.2e}")
    labels_line_up = all(np.array_equal(ordered.labels[key], test_y[key]) for key in test_y)
    print(f"labels line up with the test arrays: {labels_line_up}")
    digit = float(np.mean(ordered.predictions["digit"].argmax(axis=1) == test_y["digit"]))
    parity = float(np.mean((ordered.predictions["parity"][:, 0] > 0.5) == test_y["parity"]))
    print(f"test accuracy: digit {digit:.3f}, parity {parity:.3f}")
    if difference > 1e-5 or not labels_line_up or digit < 0.8 or parity < 0.8:
        raise SystemExit("two outputs on digits should each reach 80% test accuracy")
    return {"tg": tg, "result": result, "ordered": ordered, "expected": expected, "test": test}


if __name__ == "__main__":
    main()
