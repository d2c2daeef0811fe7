"""Loader speed: batches per second from `.npy` files, DataGenerator against the limits.

Two layouts of the same float32 samples (784 per sample, 128 per set):

* a directory of 64 `.npy` sets, batch = set: the limit is a bare `np.load` loop;
* one large `.npy` file: the limit is a bare slice loop over `np.load(mmap_mode='r')`,
  with a fresh map each epoch (as a new run would start; a map kept open across epochs
  would also keep the whole file resident, which trainkit does not).

Every runner reads one value per 4 KiB page of each batch, so mapped data is really read.
Contenders: the DataGenerator (`get()` + `update_state()`, default preprocessor; the
default `prefetch` (adaptive: a loop with no work between slices is served
synchronously), `prefetch=0` and `prefetch=2` (always on the thread)), `tf.data`
(`from_generator`; `from_tensor_slices` on the memmap, which copies the whole array into
a tensor when built, not timed), a `keras.utils.PyDataset` with two worker threads
iterated through Keras' own adapter (what `model.fit` iterates), and DeepTrain-style
reads (each set loaded whole, then sliced).

A third group gives the generator's own cost per slice: in-memory arrays (64,000 x 32
float32, batch = set = 64), `get()` + `update_state()` against plain NumPy slicing of
the same batches; the runner names carry the microseconds per slice.

Run: `.venv/bin/python benchmarks/bench_loader.py [--quick]`
"""

from __future__ import annotations

import argparse
import functools
import os
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
from common import Row, interleaved_best, ratio_rows, table

from trainkit import DataGenerator

SET_SIZE, FEATURES, SETS = 128, 784, 64
# The DataGenerators compared, by `prefetch` (None: the default).
PREFETCHES = {
    0: "DataGenerator prefetch=0",
    None: "DataGenerator default prefetch",
    2: "DataGenerator prefetch=2 (always ahead)",
}


def touch(batch: Any) -> float:
    """Read one value per 4 KiB page of the batch."""
    return float(np.asarray(batch).reshape(-1)[::1024].sum())


def walk(batches: Iterable[Any]) -> int:
    count = 0
    for batch in batches:
        touch(batch[0] if isinstance(batch, tuple) else batch)
        count += 1
    return count


def write_data(folder: Path, large_sets: int) -> tuple[list[str], str]:
    rng = np.random.default_rng(0)
    paths = []
    for k in range(SETS):
        path = folder / f"data_{k}.npy"
        np.save(path, rng.random((SET_SIZE, FEATURES), dtype=np.float32))
        paths.append(str(path))
    big = folder / "one" / "big.npy"
    big.parent.mkdir()
    memmap = np.lib.format.open_memmap(
        big, mode="w+", dtype=np.float32, shape=(large_sets * SET_SIZE, FEATURES)
    )
    for k in range(large_sets):
        memmap[k * SET_SIZE : (k + 1) * SET_SIZE] = rng.random(
            (SET_SIZE, FEATURES), dtype=np.float32
        )
    memmap.flush()
    del memmap
    return paths, str(big)


def datagen_epoch(dg: DataGenerator) -> int:
    count = 0
    while not dg.all_data_exhausted:
        touch(dg.get()[0])
        dg.update_state()
        count += 1
    dg.on_epoch_end()
    return count


def repeat(run: Callable[[], int], epochs: int) -> Callable[[], int]:
    return lambda: sum(run() for _ in range(epochs))


def py_dataset_epoch(make: Callable[[], Any]) -> Callable[[], int]:
    from keras.src.trainers.data_adapters.py_dataset_adapter import PyDatasetAdapter

    def run() -> int:
        adapter = PyDatasetAdapter(make(), shuffle=False)
        count = walk(item[0].numpy() for item in adapter.get_tf_dataset())
        adapter.on_epoch_end()
        return count

    return run


def directory_runners(paths: list[str], folder: str) -> dict[str, Callable[[], int]]:
    import keras
    import tensorflow as tf

    spec = tf.TensorSpec((None, FEATURES), tf.float32)

    class Sets(keras.utils.PyDataset):  # type: ignore[misc]
        def __len__(self) -> int:
            return len(paths)

        def __getitem__(self, index: int) -> Any:
            return np.load(paths[index])

    def bare() -> int:
        return walk(np.load(p) for p in paths)

    def deeptrain() -> int:
        count = 0
        for path in paths:
            whole = np.load(path)  # the set, then its batches sliced from it
            for start in range(0, len(whole), SET_SIZE):
                touch(whole[start : start + SET_SIZE])
                count += 1
        return count

    dataset = tf.data.Dataset.from_generator(
        lambda: (np.load(p) for p in paths), output_signature=spec
    )
    dgs = {n: DataGenerator(folder, batch_size=SET_SIZE, prefetch=n) for n in PREFETCHES}
    return {
        "bare np.load loop": bare,
        **{name: functools.partial(datagen_epoch, dgs[n]) for n, name in PREFETCHES.items()},
        "tf.data from_generator(np.load)": lambda: walk(x.numpy() for x in dataset),
        "PyDataset workers=2 (Keras adapter)": py_dataset_epoch(lambda: Sets(workers=2)),
        "DeepTrain-style whole-set reads": deeptrain,
    }


def file_runners(path: str) -> dict[str, Callable[[], int]]:
    import keras
    import tensorflow as tf

    memmap = np.load(path, mmap_mode="r")
    batches = len(memmap) // SET_SIZE
    spec = tf.TensorSpec((None, FEATURES), tf.float32)

    def slices(array: np.ndarray) -> Iterable[np.ndarray]:
        return (array[k * SET_SIZE : (k + 1) * SET_SIZE] for k in range(batches))

    class Rows(keras.utils.PyDataset):  # type: ignore[misc]
        def __init__(self, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.array = np.load(path, mmap_mode="r")

        def __len__(self) -> int:
            return batches

        def __getitem__(self, index: int) -> Any:
            return np.array(self.array[index * SET_SIZE : (index + 1) * SET_SIZE])

    generator = tf.data.Dataset.from_generator(
        lambda: slices(np.load(path, mmap_mode="r")), output_signature=spec
    )
    tensor_slices = tf.data.Dataset.from_tensor_slices(memmap).batch(SET_SIZE)
    dgs = {n: DataGenerator(path, batch_size=SET_SIZE, prefetch=n) for n in PREFETCHES}
    return {
        "bare slice loop (fresh map)": lambda: walk(slices(np.load(path, mmap_mode="r"))),
        **{name: functools.partial(datagen_epoch, dgs[n]) for n, name in PREFETCHES.items()},
        "tf.data from_generator(memmap slices)": lambda: walk(x.numpy() for x in generator),
        "tf.data from_tensor_slices(memmap)": lambda: walk(x.numpy() for x in tensor_slices),
        "PyDataset workers=2 (Keras adapter)": py_dataset_epoch(lambda: Rows(workers=2)),
    }


def rows(quick: bool) -> list[Row]:
    epochs, rounds, large_sets = (3, 3, 256) if quick else (10, 7, 2048)
    with tempfile.TemporaryDirectory() as tmp:
        paths, big = write_data(Path(tmp), large_sets)
        size = f"{large_sets * SET_SIZE * FEATURES * 4 >> 20} MiB"
        out = []
        for bench, runners, baseline, target in (
            (
                f"loader: directory ({SETS} sets)",
                directory_runners(paths, tmp),
                "bare np.load loop",
                0.95,
            ),
            (f"loader: one .npy ({size})", file_runners(big), "bare slice loop (fresh map)", 0.9),
        ):
            epochs_each = epochs if "directory" in bench else max(1, epochs // 3)
            rates = interleaved_best(
                {name: repeat(run, epochs_each) for name, run in runners.items()}, rounds
            )
            targets = {PREFETCHES[None]: target, PREFETCHES[0]: target}
            out += ratio_rows(bench, rates, baseline, "batches/s", targets)
    return out + per_slice_rows(rounds)


def per_slice_rows(rounds: int) -> list[Row]:
    """The generator's own cost per slice on in-memory arrays, against NumPy slicing."""
    rng = np.random.default_rng(0)
    x = rng.random((64_000, 32), dtype=np.float32)
    y = rng.integers(0, 10, len(x))

    def numpy_epoch() -> int:
        count = 0
        for start in range(0, len(x), 64):
            x[start : start + 64], y[start : start + 64]
            count += 1
        return count

    dgs = {n: DataGenerator(data=x, labels=y, batch_size=64, prefetch=n) for n in PREFETCHES}
    runners = {"NumPy slicing": numpy_epoch}
    runners.update(
        {name: functools.partial(slices_epoch, dgs[n]) for n, name in PREFETCHES.items()}
    )
    rates = interleaved_best({name: repeat(run, 3) for name, run in runners.items()}, rounds)
    named = {f"{name}: {1e6 / rate:.1f} µs/slice": rate for name, rate in rates.items()}
    return ratio_rows(
        "generator per slice (arrays, batch = set)", named, next(iter(named)), "slices/s"
    )


def slices_epoch(dg: DataGenerator) -> int:
    count = 0
    while not dg.all_data_exhausted:
        dg.get()
        dg.update_state()
        count += 1
    dg.on_epoch_end()
    return count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller data, fewer rounds")
    args = parser.parse_args()
    print(table(rows(args.quick)))


if __name__ == "__main__":
    main()
