"""End to end from files on disk: TrainGenerator against `model.fit` fed by Keras' best.

The workload of `bench_overlap.py` (the same `SpectrumPreprocessor`, the same MLP), read
from a directory of numbered `.npy` sets written with `trainkit.data.write_sets` (one
set = one batch of 256 signals; `labels.npy` beside them). The files are read back from
the page cache after the warm-up round: what is measured is the pipeline, not the disk.

Runners, interleaved round by round, each one's best round (one epoch) reported:

  * TrainGenerator over `DataGenerator(data_path=..., prefetch=2)`.
  * `model.fit` on `tf.data.Dataset.from_generator` over the set files, the
    preprocessing in `map(tf.numpy_function(...), num_parallel_calls=AUTOTUNE)`, then
    `prefetch(AUTOTUNE)`.
  * `model.fit` on `tf.data.Dataset.range(sets)` mapped in parallel to "load set i and
    preprocess it" (`np.load` + the same `process()` in one `tf.numpy_function`).
  * `model.fit` on a `keras.utils.PyDataset` whose item i loads set i and preprocesses
    it, `workers=2` (threads).

The baseline is the fastest of the three `model.fit` runners in the same run.
TensorFlow's threads are the same for every runner (default: TensorFlow's own choice,
one per core; `--intra`/`--inter` set them; `run_all.py` runs both the default and 1 + 1).
Target: TrainGenerator >= 1.2x the baseline.

Run: python benchmarks/bench_end_to_end.py [--quick] [--intra N --inter N]
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
import tensorflow as tf
from bench_overlap import (
    BATCH_SIZE,
    FEATURES,
    SIGNAL_LENGTH,
    SpectrumPreprocessor,
    make_data,
    make_model,
    set_tf_threads,
)
from common import Row, interleaved_best, one_more_epoch, ratio_rows, table

from trainkit import DataGenerator, TrainGenerator, write_sets

PREFETCH = 2
WORKERS = 2
TARGET = 1.2
TRAINKIT = f"TrainGenerator, prefetch={PREFETCH}"


class SetFiles:
    """The set files `write_sets` wrote, in set order, and every label."""

    def __init__(self, keywords: dict[str, str]) -> None:
        files = Path(keywords["data_path"]).glob("data_*.npy")
        self.paths = sorted(files, key=lambda path: int(path.stem.split("_")[1]))
        self.labels = np.load(keywords["labels_path"])
        self.preprocessor = SpectrumPreprocessor()

    def __len__(self) -> int:
        return len(self.paths)

    def raw(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        start = index * BATCH_SIZE
        return np.load(self.paths[index]), self.labels[start : start + BATCH_SIZE]

    def processed(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        return self.preprocessor.process(*self.raw(index))


def train_generator(keywords: dict[str, str], files: SetFiles):
    datagen = DataGenerator(
        keywords["data_path"], keywords["labels_path"], batch_size=BATCH_SIZE,
        preprocessor=SpectrumPreprocessor(), prefetch=PREFETCH,
    )  # fmt: skip
    trainer = TrainGenerator(make_model(), datagen, epochs=0, iter_verbosity=0)
    return one_more_epoch(trainer)


def keras_fit(dataset: Any, steps: int):
    model = make_model()

    def run_epoch() -> int:
        model.fit(dataset, epochs=1, verbose=0, shuffle=False)
        return steps

    return run_epoch


_SIGNATURE = (
    tf.TensorSpec((None, SIGNAL_LENGTH), tf.float32),
    tf.TensorSpec((None,), tf.int64),
)


def _numpy_map(function: Any, *args: Any) -> tuple[Any, Any]:
    """`function` (NumPy in, `(features, labels)` out) as a tf.data map with known shapes."""
    x, y = tf.numpy_function(function, list(args), (tf.float32, tf.int64))
    return tf.ensure_shape(x, (None, FEATURES)), tf.ensure_shape(y, (None,))


def tf_data_from_generator(keywords: dict[str, str], files: SetFiles):
    def sets():
        for index in range(len(files)):
            yield files.raw(index)

    dataset = (
        tf.data.Dataset.from_generator(sets, output_signature=_SIGNATURE)
        .apply(tf.data.experimental.assert_cardinality(len(files)))
        .map(lambda x, y: _numpy_map(files.preprocessor.process, x, y), tf.data.AUTOTUNE)
        .prefetch(tf.data.AUTOTUNE)
    )
    return keras_fit(dataset, len(files))


def tf_data_parallel_reads(keywords: dict[str, str], files: SetFiles):
    dataset = (
        tf.data.Dataset.range(len(files))
        .map(lambda index: _numpy_map(files.processed, index), tf.data.AUTOTUNE)
        .prefetch(tf.data.AUTOTUNE)
    )
    return keras_fit(dataset, len(files))


class SetFilesDataset(keras.utils.PyDataset):
    """Item i: set file i loaded and preprocessed."""

    def __init__(self, files: SetFiles, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.files = files

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        return self.files.processed(index)


def py_dataset(keywords: dict[str, str], files: SetFiles):
    dataset = SetFilesDataset(files, workers=WORKERS, use_multiprocessing=False)
    return keras_fit(dataset, len(files))


RUNNERS = {
    TRAINKIT: train_generator,
    "model.fit, tf.data from_generator + parallel map": tf_data_from_generator,
    "model.fit, tf.data range + parallel map(load + process)": tf_data_parallel_reads,
    f"model.fit, PyDataset workers={WORKERS} (threads)": py_dataset,
}


def rows(quick: bool, intra: int | None = None, inter: int | None = None) -> list[Row]:
    """One epoch per round from `.npy` set files, each runner's best; baseline: Keras' best."""
    threads = set_tf_threads(intra, inter)
    x, y = make_data(batches=24 if quick else 64)
    with tempfile.TemporaryDirectory(prefix="trainkit-bench-") as folder:
        keywords = write_sets(x, y, Path(folder, "sets"), set_size=BATCH_SIZE)
        files = SetFiles(keywords)
        runners = {name: make(keywords, files) for name, make in RUNNERS.items()}
        rates = interleaved_best(runners, rounds=4 if quick else 6)
    baseline = max((name for name in rates if name != TRAINKIT), key=rates.__getitem__)
    bench = f"end to end, .npy files ({threads})"
    return ratio_rows(bench, rates, baseline, "steps/s", targets={TRAINKIT: TARGET})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer batches and rounds")
    parser.add_argument("--intra", type=int, help="TensorFlow intra-op threads")
    parser.add_argument("--inter", type=int, help="TensorFlow inter-op threads")
    args = parser.parse_args()
    print(table(rows(args.quick, args.intra, args.inter)))


if __name__ == "__main__":
    main()
