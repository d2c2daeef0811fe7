"""The pause a checkpoint puts on training, synchronous and `async_checkpoints=True`.

For an MLP of about one million and one of about 25 million parameters (Adam, so the
checkpoint holds twice as many optimizer values as weights), a `TrainGenerator` with a
run folder writes checkpoints through the trainer's own path
(`Checkpoints.save(background=...)`, as `checkpoint_freq` does) and each is timed:

  sync pause      the whole checkpoint on the training thread (snapshot, Keras'
                  `model.save`, `arrays.npz`, `state.json`, manifest, rename, prune)
  async pause     what the training thread still waits for with async_checkpoints:
                  the snapshot to host memory and `model.save` (see docs/checkpoints.md
                  for why `model.keras` is saved there)
  background      the rest, written by the background thread while training goes on
                  (waited for before the next checkpoint)

Then what a run pays as it grows (issue 30's "checkpoints whose cost grows with the run"):

  RSS per checkpoint   growth of the process' resident memory per checkpoint over
                       `--grow` checkpoints of the 1M model, with and without
                       Keras' `model.save` (arrays, state.json and manifest only)
  state.json           its size and its encoding time for histories of N iters

Figures are medians over the rounds, in milliseconds, on this machine only.

Run: python benchmarks/bench_checkpoint_async.py [--rounds 5] [--grow 60]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import tempfile
import time
import warnings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np

from trainkit import DataGenerator, TrainGenerator
from trainkit.checkpoints import store
from trainkit.checkpoints.run_folder import RunFolder

MODELS = {"1M": ([1000], 1000), "25M": ([2500, 2500, 2500, 2500], 2500)}


def trainer(hidden: list[int], features: int, logs_dir: str, **options: bool) -> TrainGenerator:
    keras.utils.set_random_seed(0)
    layers = [keras.Input((features,))]
    layers += [keras.layers.Dense(units, activation="relu") for units in hidden]
    model = keras.Sequential([*layers, keras.layers.Dense(1)])
    model.compile(keras.optimizers.Adam(1e-3), "mse")
    data = np.zeros((8, features), dtype="float32")
    datagen = DataGenerator(data=data, labels=np.zeros((8, 1), "float32"), batch_size=8)
    tg = TrainGenerator(model, datagen, epochs=1, logs_dir=logs_dir, checkpoint_freq=None,
                        iter_verbosity=0, max_checkpoints=2, **options)  # fmt: skip
    tg.train()  # one step: the optimizer's slots exist
    return tg


def pauses(name: str, rounds: int) -> dict[str, float]:
    hidden, features = MODELS[name]
    figures: dict[str, list[float]] = {"sync": [], "async": [], "background": []}
    with tempfile.TemporaryDirectory() as root:
        sync = trainer(hidden, features, os.path.join(root, "sync"))
        background = trainer(hidden, features, os.path.join(root, "async"), async_checkpoints=True)
        for _ in range(rounds):  # interleaved: a slow moment hits both alike
            with sync._checkpoints.writing("train"):
                started = time.perf_counter()
                sync._checkpoints.save(background=True)  # async off: complete on return
                figures["sync"].append(time.perf_counter() - started)
            with background._checkpoints.writing("train"):
                started = time.perf_counter()
                background._checkpoints.save(background=True)
                figures["async"].append(time.perf_counter() - started)
                started = time.perf_counter()
                background._checkpoints.wait()
                figures["background"].append(time.perf_counter() - started)
        params = sync.model.count_params()
    result = {key: 1000 * statistics.median(values) for key, values in figures.items()}
    return {**result, "params": params}


def _rss_mb() -> float:
    with open("/proc/self/statm") as file:
        return int(file.read().split()[1]) * resource.getpagesize() / 1e6


def rss_growth(count: int) -> dict[str, float]:
    """KB of resident memory per checkpoint, with and without Keras' model.save."""
    hidden, features = MODELS["1M"]
    growth = {}
    with tempfile.TemporaryDirectory() as root:
        tg = trainer(hidden, features, os.path.join(root, "run"))
        arrays, state = tg._checkpoints.capture()
        for label, save_model in (("model.save", tg.model.save), ("arrays only", None)):
            run = RunFolder(tempfile.mkdtemp(dir=root))
            for iters in range(5):  # warm up allocators and Keras' saving code
                run.write(iters, arrays, state, save_model, max_checkpoints=2)
            before = _rss_mb()
            for iters in range(5, 5 + count):
                run.write(iters, arrays, state, save_model, max_checkpoints=2)
            growth[label] = 1000 * (_rss_mb() - before) / count
    return growth


def state_json(iters: int) -> tuple[float, float]:
    """`(KB, ms)` of state.json's histories after `iters` iters (3 metrics per batch)."""
    rng = np.random.default_rng(0)
    history = {name: rng.random(iters).tolist() for name in ("loss", "accuracy", "lr")}
    state = {"trainer": {"history": history, "iters_fit": iters}}
    started = time.perf_counter()
    text = store.dumps_state(state)
    return len(text.encode()) / 1000, 1000 * (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--grow", type=int, default=60)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    print("| model | params | sync pause | async pause | background write |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for name in MODELS:
        r = pauses(name, args.rounds)
        print(
            f"| {name} | {r['params']:,} | {r['sync']:.0f} ms | {r['async']:.0f} ms "
            f"({r['async'] / r['sync']:.2f}x) | {r['background']:.0f} ms |"
        )
    growth = rss_growth(args.grow)
    print(f"\nRSS per checkpoint over {args.grow} checkpoints of the 1M model:")
    for label, kb in growth.items():
        print(f"  {label}: {kb:+.0f} KB")
    print("\n| iters in the histories | state.json | encoding |")
    print("| ---: | ---: | ---: |")
    for iters in (600, 6000, 60000):
        size, elapsed = state_json(iters)
        print(f"| {iters:,} | {size:.0f} KB | {elapsed:.1f} ms |")


if __name__ == "__main__":
    main()
