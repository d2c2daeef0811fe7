"""The two graphs of a fused group: the loop inside the graph, and the steps written out.

For models from a tiny MLP to a small CNN, a group of 32 same-shaped slices is fit by
trainkit's `FusedSteps` both ways, each on its own copy of the model (same initial
weights): with the loop inside the graph (`tf.range`, the default executor), and with
the steps written out and run by TensorFlow's single-threaded executor. Reported per
model: the step's ops, µs per step of each graph (best of `--rounds` calls, after the
traces), their ratio (above 1: written out is faster), the written-out graph's trace and
first call in seconds, and which graph `FusedSteps` chooses for itself (it times the
loop on the second group of a length, and writes the steps out where a step took at
most `UNROLL_STEP_SECONDS`).

Run: python benchmarks/bench_fused_graphs.py [--rounds 5]
"""

from __future__ import annotations

import argparse
import os
import time
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
from common import Row, table

from trainkit.training.slices import steps

GROUP = 32
# name: (input shape, hidden widths or None for the CNN, batch size)
MODELS: dict[str, tuple[tuple[int, ...], list[int] | None, int]] = {
    "MLP 64-32-10, batch 64": ((64,), [32], 64),
    "MLP 128-128-128-10, batch 128": ((128,), [128, 128], 128),
    "MLP 256-256-256-10, batch 128": ((256,), [256, 256], 128),
    "MLP 256-512-512-10, batch 256": ((256,), [512, 512], 256),
    "CNN 28x28 (16, 32 filters), batch 64": ((28, 28, 1), None, 64),
}


def make_model(shape: tuple[int, ...], hidden: list[int] | None) -> keras.Model:
    keras.utils.set_random_seed(0)
    if hidden is None:
        layers: list[Any] = [
            keras.layers.Conv2D(16, 3, activation="relu"),
            keras.layers.MaxPooling2D(),
            keras.layers.Conv2D(32, 3, activation="relu"),
            keras.layers.GlobalAveragePooling2D(),
        ]
    else:
        layers = [keras.layers.Dense(width, activation="relu") for width in hidden]
    model = keras.Sequential([keras.Input(shape), *layers, keras.layers.Dense(10, "softmax")])
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def fused_for(shape: tuple[int, ...], hidden: list[int] | None, batch: int):
    """A fresh model's `FusedSteps` and a group of `GROUP` slices for it."""
    rng = np.random.default_rng(0)
    x = rng.random((batch * GROUP, *shape), dtype=np.float32)
    y = rng.integers(0, 10, len(x))
    group = [(x[i * batch : (i + 1) * batch], y[i * batch : (i + 1) * batch]) for i in range(GROUP)]
    single = steps.CompiledStep(make_model(shape, hidden), "train")
    single(*group[0])  # traced, optimizer built
    return steps.FusedSteps(single), group


def best_seconds(call: Any, rounds: int) -> float:
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        call()
        best = min(best, time.perf_counter() - start)
    return best


def measure(name: str, rounds: int) -> list[Row]:
    shape, hidden, batch = MODELS[name]
    loop, group = fused_for(shape, hidden, batch)
    loop(group)  # traced
    looped = best_seconds(lambda: loop(group), rounds) / GROUP
    written, group = fused_for(shape, hidden, batch)
    key = (*steps.signature_key(group[0]), GROUP)
    written._loop_seconds[key] = 0.0  # as if timed fast: written out from the next call
    start = time.perf_counter()
    written(group, unroll=True)
    first = time.perf_counter() - start
    out = best_seconds(lambda: written(group, unroll=True), rounds) / GROUP
    chooser, group = fused_for(shape, hidden, batch)
    for _ in range(3):  # the loop's two groups, then its choice
        chooser(group, unroll=True)
    chosen = "written out" if chooser._unrolled.get(key) is not None else "loop"
    ops = len(loop.single._function.get_concrete_function(group[0]).graph.get_operations())
    bench = f"fused graphs: {name} ({ops} ops a step, {GROUP} per call)"
    return [
        Row(bench, "loop inside the graph, µs per step", looped * 1e6, "µs"),
        Row(bench, "written out, single-threaded, µs per step", out * 1e6, "µs"),
        Row(bench, f"written out / loop (FusedSteps chooses: {chosen})", looped / out, "x"),
        Row(bench, "written out: trace and first call", first, "s"),
    ]


def rows(quick: bool) -> list[Row]:
    return [row for name in MODELS for row in measure(name, 3 if quick else 5)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    print(table([row for name in MODELS for row in measure(name, args.rounds)]))


if __name__ == "__main__":
    main()
