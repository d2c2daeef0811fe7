"""What a checkpoint's manifest and its verification cost, per checkpoint.

For a tiny MLP and a model of about one million parameters (both compiled with Adam and
trained one step, so the optimizer's slots exist), a real checkpoint is written with
`checkpoint_dirs.write_checkpoint` (`model.keras`, `arrays.npz`, `state.json`) and timed:

  write      the whole write, manifest included
  manifest   of which: hashing the files and writing manifest.json
  verify     `verify_checkpoint` (sizes and SHA-256 of every file; what pruning pays for
             each checkpoint it deletes)
  read       `read_checkpoint` (verified: reads each file once, hashes, parses)
  plain      the same files read without verification (`json.load` + `np.load`), the
             baseline `read` is compared with

Each figure is the median over the rounds, in milliseconds.

Run: python benchmarks/bench_checkpoint_verify.py [--rounds 15]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np

from trainkit.checkpoints import checkpoint_dirs, model_state


def make_model(hidden: list[int], features: int) -> keras.Model:
    keras.utils.set_random_seed(0)
    layers = [keras.Input((features,))]
    layers += [keras.layers.Dense(units, activation="relu") for units in hidden]
    model = keras.Sequential([*layers, keras.layers.Dense(1)])
    model.compile(keras.optimizers.Adam(1e-3), "mse")
    x = np.zeros((8, features), dtype="float32")
    model.fit(x, np.zeros((8, 1), dtype="float32"), verbose=0)
    return model


def _timed(function: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    result = function()
    return (time.perf_counter() - start) * 1000, result


def _plain_read(path: str) -> None:
    with open(os.path.join(path, checkpoint_dirs.STATE_FILE), encoding="utf-8") as file:
        json.load(file)
    with np.load(os.path.join(path, checkpoint_dirs.ARRAYS_FILE)) as data:
        {key: data[key] for key in data.files}


def _round(
    run_dir: str,
    iters: int,
    model: keras.Model,
    arrays: dict[str, np.ndarray],
    state: dict[str, Any],
    figures: dict[str, list[float]],
) -> int:
    """Write one checkpoint, verify and read it; return its size in bytes."""

    def write() -> str:
        return checkpoint_dirs.write_checkpoint(
            run_dir, iters_fit=iters, arrays=arrays, state=state, save_model=model.save
        )

    elapsed, path = _timed(write)
    figures["write"].append(elapsed)
    figures["verify"].append(_timed(lambda: checkpoint_dirs.verify_checkpoint(path))[0])
    figures["read"].append(_timed(lambda: checkpoint_dirs.read_checkpoint(path))[0])
    figures["plain"].append(_timed(lambda: _plain_read(path))[0])
    return sum(os.path.getsize(os.path.join(path, name)) for name in os.listdir(path))


def measure(model: keras.Model, rounds: int) -> dict[str, float]:
    arrays, paths = model_state.capture(model)
    state = {"version": 1, "model_paths": paths, "trainer": {"iters_fit": 1}}
    figures: dict[str, list[float]] = {
        k: [] for k in ("write", "manifest", "verify", "read", "plain")
    }
    original = checkpoint_dirs._write_manifest

    def timed_manifest(folder: str, name: str) -> None:
        figures["manifest"].append(_timed(lambda: original(folder, name))[0])

    checkpoint_dirs._write_manifest = timed_manifest
    try:
        with tempfile.TemporaryDirectory() as run_dir:
            for iters in range(rounds):
                size = _round(run_dir, iters, model, arrays, state, figures)
    finally:
        checkpoint_dirs._write_manifest = original
    result = {name: statistics.median(values) for name, values in figures.items()}
    result["MB"] = size / 1e6
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    models = {
        "tiny MLP (4-4-1)": make_model([4], 4),
        "1M-parameter MLP (1000-1000-1)": make_model([1000], 1000),
    }
    print("| model | params | MB on disk | write | manifest | verify | read | plain read |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name, model in models.items():
        r = measure(model, args.rounds)
        print(
            f"| {name} | {model.count_params():,} | {r['MB']:.2f} | {r['write']:.1f} | "
            f"{r['manifest']:.2f} | {r['verify']:.2f} | {r['read']:.2f} | {r['plain']:.2f} |"
        )


if __name__ == "__main__":
    main()
