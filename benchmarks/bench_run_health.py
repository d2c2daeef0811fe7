"""What run health costs: the host data check per slice, and on_nonfinite='skip'.

Tiny MLP (64 -> 32 -> 10), batch 64, in-memory arrays, everything warmed up first.

  (a) the data check alone: `data_is_finite((x, y))` on one slice, in µs, against
      (b) one compiled train step on the same slice (trainkit's `CompiledStep`);
      target: (a) <= 2% of (b)
  (c) TrainGenerator with the check (the default) against (d) `check_finite_data=False`
  (e) TrainGenerator with on_nonfinite='skip' (each step copies the weights and the
      optimizer's variables in the graph, to undo a non-finite step) against (c)

Run: python benchmarks/bench_run_health.py [--batches 200] [--rounds 5]
"""

from __future__ import annotations

import argparse
import os
import time
import warnings
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
from common import Row, interleaved_best, one_more_epoch, table

from trainkit import DataGenerator, TrainGenerator
from trainkit.training.slices.health import data_is_finite
from trainkit.training.slices.steps import CompiledStep

BATCH_SIZE = 64
TARGET = 0.02


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


def microseconds(function: Any, repeats: int) -> float:
    """The best of 5 runs of `repeats` calls, in µs per call."""
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(repeats):
            function()
        best = min(best, (time.perf_counter() - start) / repeats)
    return best * 1e6


def trainer(x: np.ndarray, y: np.ndarray, **kwargs: Any) -> Any:
    datagen = DataGenerator(data=x, labels=y, batch_size=BATCH_SIZE, prefetch=0)
    tg = TrainGenerator(make_model(), datagen, epochs=1, iter_verbosity=0, **kwargs)
    tg.train()  # traced and warmed up
    return one_more_epoch(tg)


def rows(quick: bool = True, batches: int | None = None, rounds: int | None = None) -> list[Row]:
    batches = batches or (60 if quick else 200)
    rounds = rounds or (3 if quick else 5)
    rng = np.random.default_rng(0)
    x = rng.random((batches * BATCH_SIZE, 64), dtype=np.float32)
    y = rng.integers(0, 10, len(x))
    bench = f"run health (MLP 64-32-10, batch {BATCH_SIZE})"

    slice_x, slice_y = x[:BATCH_SIZE], y[:BATCH_SIZE]
    step = CompiledStep(make_model(), "train")
    step(slice_x, slice_y)
    step(slice_x, slice_y)
    check_us = microseconds(lambda: data_is_finite((slice_x, slice_y)), 2000)
    step_us = microseconds(lambda: step(slice_x, slice_y), 200)
    share = check_us / step_us
    out = [
        Row(bench, "compiled train step, per slice", step_us, "µs", None),
        Row(
            bench, "host data check, per slice", check_us, "µs", share,
            f"<= {TARGET:.2f}x", share <= TARGET,
        ),
    ]  # fmt: skip

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        runners = {
            "checked": trainer(x, y),
            "unchecked": trainer(x, y, check_finite_data=False),
            "skip": trainer(x, y, on_nonfinite="skip"),
        }
        best = interleaved_best(runners, rounds)
    out += [
        Row(bench, "TrainGenerator, check_finite_data=False", best["unchecked"], "steps/s"),
        Row(
            bench, "TrainGenerator, data checked (default)", best["checked"], "steps/s",
            best["checked"] / best["unchecked"],
        ),
        Row(
            bench, "TrainGenerator, on_nonfinite='skip'", best["skip"], "steps/s",
            best["skip"] / best["checked"],
        ),
    ]  # fmt: skip
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="the suite's sizes")
    args = parser.parse_args()
    if args.quick:
        print(table(rows(quick=True)))
    else:
        print(table(rows(quick=False, batches=args.batches, rounds=args.rounds)))


if __name__ == "__main__":
    main()
