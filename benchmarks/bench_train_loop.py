"""Steps per second of trainkit's loop against the ways Keras can be driven.

Tiny MLP (64 -> 32 -> 10), batch 64, in-memory arrays, everything warmed up first.

  (a) bare loop:      a Python loop calling the model's compiled `train_function`
  (b) model.fit:      one `fit` call per epoch
  (c) train_on_batch: a Python loop of `model.train_on_batch` (DeepTrain's approach)
  (d) TrainGenerator: `train()` over a DataGenerator, no validation, iter_verbosity=0
  (e) bare loop calling trainkit's own compiled step (metric reset inside the graph,
      values copied to Python each step): (d) / (e) is the cost of the bookkeeping

The four runners are interleaved over several rounds and each one's best round is
reported, because ratios on shared machines drift between runs. Target: (d) >= 0.85 (a).

Run: python benchmarks/bench_train_loop.py [--batches 200] [--rounds 5]
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np

from trainkit import DataGenerator, TrainGenerator

BATCH_SIZE = 64


def make_model() -> keras.Model:
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((64,)),
            keras.layers.Dense(32, activation="relu"),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def bare_loop(x: np.ndarray, y: np.ndarray):
    model = make_model()
    model.fit(x[:BATCH_SIZE], y[:BATCH_SIZE], batch_size=BATCH_SIZE, verbose=0)  # builds
    model.make_train_function()
    train_function = model.train_function

    def run_epoch() -> int:
        steps = len(x) // BATCH_SIZE
        for i in range(steps):
            sl = slice(i * BATCH_SIZE, (i + 1) * BATCH_SIZE)
            train_function([(x[sl], y[sl])])
        return steps

    return run_epoch


def keras_fit(x: np.ndarray, y: np.ndarray):
    model = make_model()

    def run_epoch() -> int:
        model.fit(x, y, batch_size=BATCH_SIZE, epochs=1, verbose=0, shuffle=False)
        return len(x) // BATCH_SIZE

    return run_epoch


def train_on_batch_loop(x: np.ndarray, y: np.ndarray):
    model = make_model()

    def run_epoch() -> int:
        steps = len(x) // BATCH_SIZE
        for i in range(steps):
            sl = slice(i * BATCH_SIZE, (i + 1) * BATCH_SIZE)
            model.train_on_batch(x[sl], y[sl])
        return steps

    return run_epoch


def train_generator(x: np.ndarray, y: np.ndarray):
    model = make_model()
    datagen = DataGenerator(data=x, labels=y, batch_size=BATCH_SIZE)
    trainer = TrainGenerator(model, datagen, epochs=0, iter_verbosity=0)

    def run_epoch() -> int:
        before = trainer.iters_fit
        trainer.epochs += 1
        trainer.train()
        return trainer.iters_fit - before

    return run_epoch


def bare_loop_trainkit_step(x: np.ndarray, y: np.ndarray):
    """(a) again, but calling trainkit's compiled step: isolates the loop's bookkeeping."""
    from trainkit.training.steps import CompiledStep

    step = CompiledStep(make_model(), "train")

    def run_epoch() -> int:
        steps = len(x) // BATCH_SIZE
        for i in range(steps):
            sl = slice(i * BATCH_SIZE, (i + 1) * BATCH_SIZE)
            step(x[sl], y[sl])
        return steps

    return run_epoch


RUNNERS = {
    "(a) bare loop": bare_loop,
    "(b) model.fit": keras_fit,
    "(c) train_on_batch": train_on_batch_loop,
    "(d) TrainGenerator": train_generator,
    "(e) bare, trainkit step": bare_loop_trainkit_step,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=200, help="batches per round")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    x = rng.random((args.batches * BATCH_SIZE, 64), dtype=np.float32)
    y = rng.integers(0, 10, len(x))
    runs = {name: make(x, y) for name, make in RUNNERS.items()}
    for run in runs.values():  # warm-up: tracing, first allocations
        run()

    best = {name: 0.0 for name in runs}
    steps = {name: 0 for name in runs}
    for _ in range(args.rounds):
        for name, run in runs.items():
            start = time.perf_counter()
            count = run()
            rate = count / (time.perf_counter() - start)
            best[name] = max(best[name], rate)
            steps[name] += count

    bare = best["(a) bare loop"]
    print(f"steps/s, best of {args.rounds} rounds of {args.batches} batches (batch {BATCH_SIZE})")
    for name in runs:
        print(
            f"{name:22s} {best[name]:8.0f} steps/s  {best[name] / bare:5.2f}x (a)  "
            f"[{steps[name]} steps timed]"
        )
    for name in ("(b) model.fit", "(c) train_on_batch"):
        print(f"(a) / {name[4:]:16s} {bare / best[name]:5.2f}")
    ratio = best["(d) TrainGenerator"] / bare
    print(f"(d) / (a) = {ratio:.3f}  target >= 0.85: {'met' if ratio >= 0.85 else 'MISSED'}")
    bookkeeping = best["(d) TrainGenerator"] / best["(e) bare, trainkit step"]
    print(f"(d) / (e) = {bookkeeping:.3f}  (loop bookkeeping + DataGenerator cost)")


if __name__ == "__main__":
    main()
