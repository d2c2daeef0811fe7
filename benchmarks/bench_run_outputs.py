"""What the run folder's outputs cost a small run: with and without `logs_dir`.

A small run (MLP 16 -> 16 -> 3, 512 samples in batches of 32, 10 epochs, validation
every epoch) is trained, each round, by these runners in turn:

  (a) logs_dir=None: nothing written
  (b) logs_dir, defaults: a checkpoint per epoch, metrics.csv, provenance, and
      history.png + report drawn once, when train() ends
  (c) as (b), with plot_history_freq={'epoch': 1} (the pictures redrawn every epoch,
      the default before)
  (d) as (b), with checkpoint_freq=None: the logs and the final pictures only

Each runner's best round is reported, and the cost of one history.png and of one
report (txt + png) drawn from the finished run.

Run: python benchmarks/bench_run_outputs.py [--rounds 3] [--epochs 10]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Callable
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np

from trainkit import DataGenerator, TrainGenerator
from trainkit.training.construction import wiring
from trainkit.training.outputs import figures

SAMPLES, VAL_SAMPLES, FEATURES, BATCH_SIZE = 512, 128, 16, 32


def make_model() -> keras.Model:
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((FEATURES,)),
            keras.layers.Dense(16, activation="relu"),
            keras.layers.Dense(3),
        ]
    )
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    model.compile("adam", loss, metrics=["accuracy"])
    return model


def make_trainer(epochs: int, logs_dir: str | None, **options: Any) -> TrainGenerator:
    rng = np.random.default_rng(0)
    x = rng.random((SAMPLES + VAL_SAMPLES, FEATURES), dtype=np.float32)
    y = rng.integers(0, 3, SAMPLES + VAL_SAMPLES)
    datagen = DataGenerator(
        data=x[:SAMPLES], labels=y[:SAMPLES], batch_size=BATCH_SIZE, shuffle=True, seed=0
    )
    val_datagen = DataGenerator(data=x[SAMPLES:], labels=y[SAMPLES:], batch_size=64)
    return TrainGenerator(
        make_model(), datagen, val_datagen, epochs=epochs, iter_verbosity=0,
        logs_dir=logs_dir, **options,
    )  # fmt: skip


RUNNERS: dict[str, dict[str, Any] | None] = {
    "(a) logs_dir=None": None,
    "(b) logs_dir, defaults": {},
    "(c) logs_dir, plot_history_freq={'epoch': 1}": {"plot_history_freq": {"epoch": 1}},
    "(d) logs_dir, checkpoint_freq=None": {"checkpoint_freq": None},
}


def timed_run(epochs: int, options: dict[str, Any] | None) -> tuple[float, Any]:
    """Seconds of `train()`, and (with a run folder) the drawing costs after it."""
    with tempfile.TemporaryDirectory() as folder:
        trainer = make_trainer(epochs, None if options is None else folder, **(options or {}))
        started = time.perf_counter()
        trainer.train()
        elapsed = time.perf_counter() - started
        return elapsed, None if options is None else _drawing_costs(trainer)


def _drawing_costs(trainer: TrainGenerator) -> tuple[float, float]:
    inputs = wiring.figure_inputs(trainer)

    def cost(draw: Callable[[figures.FigureInputs], Any]) -> float:
        started = time.perf_counter()
        draw(inputs)
        return time.perf_counter() - started

    return cost(figures.draw_history), cost(figures.write_report)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=10)
    args = parser.parse_args()
    timed_run(1, {})  # warm up TensorFlow, matplotlib and the fonts
    best = {name: float("inf") for name in RUNNERS}
    drawing: list[tuple[float, float]] = []
    for _ in range(args.rounds):
        for name, options in RUNNERS.items():
            elapsed, costs = timed_run(args.epochs, options)
            best[name] = min(best[name], elapsed)
            drawing += [costs] if costs is not None else []
    base = best["(a) logs_dir=None"]
    print(f"{args.epochs} epochs x {SAMPLES // BATCH_SIZE} batches, best of {args.rounds}:")
    for name, seconds in best.items():
        print(f"  {name:<48} {seconds:6.2f} s  x{seconds / base:.2f}")
    history_png = min(cost[0] for cost in drawing)
    report = min(cost[1] for cost in drawing)
    print(f"  one history.png: {history_png:.3f} s, one report (txt + png): {report:.3f} s")


if __name__ == "__main__":
    main()
