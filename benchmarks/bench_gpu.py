"""Steps per second on a GPU: TrainGenerator (one slice per call and fused) against the
bare concrete loop and `model.fit`, for a model big enough to matter and a tiny one.

On a GPU a small model's step takes a fraction of a millisecond, so the Python around
each step (and a device-to-host copy of its values) decides the throughput; a larger
model hides it. Two models, each on in-memory batches:

  * "1M": an MLP 1024 -> 768 -> 384 -> 10 (about 1.1M parameters), batch 256
  * "tiny": an MLP 64 -> 32 -> 10, batch 64 (Python dominates)

Runners, interleaved round by round (best round kept, `common.interleaved_best`):
the bare concrete loop (the model's `train_step` as one concrete `tf.function`, logs read
each step), `model.fit`, `model.fit(steps_per_execution=32)`, TrainGenerator with default
settings, and TrainGenerator with `steps_per_execution=32`.

Without a GPU it says so and exits (CPU figures: `bench_train_loop.py`).

Run: python benchmarks/bench_gpu.py [--batches 300] [--rounds 5]
"""

from __future__ import annotations

import argparse
import os
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
import tensorflow as tf
from common import Row, interleaved_best, one_more_epoch, ratio_rows, table

from trainkit import DataGenerator, TrainGenerator

MODELS = {"1M": ((1024, 768, 384), 256), "tiny": ((64, 32), 64)}
FUSED = 32


def make_model(widths: tuple[int, ...], steps_per_execution: int = 1) -> keras.Model:
    keras.utils.set_random_seed(0)
    layers = [keras.Input((widths[0],))]
    layers += [keras.layers.Dense(width, activation="relu") for width in widths[1:]]
    model = keras.Sequential([*layers, keras.layers.Dense(10, activation="softmax")])
    model.compile(
        "adam", "sparse_categorical_crossentropy", steps_per_execution=steps_per_execution
    )
    return model


def runners(widths: tuple[int, ...], batch: int, x: np.ndarray, y: np.ndarray) -> dict[str, Any]:
    steps = len(x) // batch
    slices = [
        (x[i * batch : (i + 1) * batch], y[i * batch : (i + 1) * batch]) for i in range(steps)
    ]

    def bare() -> Any:
        model = make_model(widths)
        spec = (tf.TensorSpec((batch, widths[0]), tf.float32), tf.TensorSpec((batch,), tf.int64))
        function = tf.function(model.train_step).get_concrete_function(spec)

        def run() -> int:
            for pair in slices:
                {name: float(value) for name, value in function(pair).items()}
            return steps

        return run

    def fit(spe: int) -> Any:
        model = make_model(widths, spe)

        def run() -> int:
            model.fit(x, y, batch_size=batch, epochs=1, verbose=0, shuffle=False)
            return steps

        return run

    def trainkit(spe: int) -> Any:
        datagen = DataGenerator(data=x, labels=y, batch_size=batch)
        tg = TrainGenerator(
            make_model(widths), datagen, epochs=0, iter_verbosity=0, steps_per_execution=spe
        )
        return one_more_epoch(tg)

    return {
        "bare concrete loop": bare(),
        "model.fit": fit(1),
        f"model.fit, spe={FUSED}": fit(FUSED),
        "TrainGenerator, defaults": trainkit(1),
        f"TrainGenerator, spe={FUSED}": trainkit(FUSED),
    }


def rows(batches: int, rounds: int) -> list[Row]:
    out: list[Row] = []
    rng = np.random.default_rng(0)
    for name, (widths, batch) in MODELS.items():
        x = rng.random((batches * batch, widths[0]), dtype=np.float32)
        y = rng.integers(0, 10, len(x))
        rates = interleaved_best(runners(widths, batch, x, y), rounds)
        out += ratio_rows(f"GPU, {name} MLP, batch {batch}", rates, "bare concrete loop", "steps/s")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        print("No GPU: nothing measured (CPU figures come from bench_train_loop.py).")
        return
    details = tf.config.experimental.get_device_details(gpus[0])
    print(f"GPU: {details.get('device_name', gpus[0].name)}")
    print(table(rows(args.batches, args.rounds)))


if __name__ == "__main__":
    main()
