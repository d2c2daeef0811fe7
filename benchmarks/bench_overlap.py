"""Background prefetch: preprocessing overlapped with the model step.

A workload whose NumPy preprocessing costs about as much as the model step: each batch
of 256 signals of 1,280 float32 samples becomes 512 log-magnitude spectrum features
(`np.fft.rfft`, `np.abs`, `np.sort`, `np.log1p`: NumPy work that releases the GIL), fed
to an MLP 512 -> 256 -> 256 -> 10 trained with Adam. TensorFlow gets one intra-op and
one inter-op thread, set explicitly, so that on a 2-core machine the step holds one core
and the background preprocessing can use the other.

Runners, interleaved round by round, each one's best round reported:

  * TrainGenerator over a DataGenerator with `prefetch=0` (synchronous): the baseline.
  * the same with the default `prefetch` (adaptive: it runs ahead once it has seen that
    a slice and the step each take long enough for overlap to pay), and with `prefetch=2`
    (always ahead).
  * a reference for what any background thread gets on this machine at this moment: a
    plain `threading.Thread` feeding a `queue.Queue(2)` with the same `process()`
    calls while the main thread runs trainkit's compiled step. When it falls short of
    the target too, the cores are busy with something else, not with trainkit.
  * the reference's loop with a DataGenerator (default prefetch) in place of the thread
    and the queue: what the hand-off costs against a plain thread, compared like for
    like. (Inside TrainGenerator the trainer's own per-step work shares the main thread
    with the step; the TrainGenerator rows against the reference include it.)
  * measured apart, in the same rounds: the preprocessing alone (a DataGenerator walked
    without a model) and the model step alone (trainkit's compiled step on slices
    computed beforehand). Full overlap can at best speed the loop up by
    (preprocess + step) / max(preprocess, step) <= 2; the "limit" row is the serial
    rate times that.

Targets: the default >= 1.8x prefetch=0, and the DataGenerator in the reference's loop
>= 0.95x the plain-thread reference.

Run: python benchmarks/bench_overlap.py [--quick]
"""

from __future__ import annotations

import argparse
import os
import queue
import threading

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
import tensorflow as tf
from common import Row, interleaved_best, one_more_epoch, ratio_rows, table

from trainkit import DataGenerator, Preprocessor, TrainGenerator
from trainkit.training.slices.steps import CompiledStep

BATCH_SIZE = 256
SIGNAL_LENGTH = 1280
FEATURES = 512
CLASSES = 10
PREFETCH = 2
TARGET = 1.8  # the default against prefetch=0
REFERENCE_TARGET = 0.95  # the default against a plain thread and queue
REFERENCE = f"reference: plain thread + queue.Queue({PREFETCH}), compiled step"


class SpectrumPreprocessor(Preprocessor):
    """Each signal's windowed log-magnitude spectrum, bins sorted, standardized per signal.

    About 10 ms per batch of 256 on one core. Every NumPy call works on the whole batch at
    once and releases the GIL, so a background thread computing the next slice runs
    alongside the model step.
    """

    def __init__(self) -> None:
        super().__init__()
        self.window = np.hanning(SIGNAL_LENGTH).astype(np.float32)

    def process(self, batch: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        magnitude = np.abs(np.fft.rfft(batch * self.window, axis=1))[:, :FEATURES]
        features = np.log1p(np.sort(magnitude, axis=1))
        features -= features.mean(axis=1, keepdims=True)
        features /= features.std(axis=1, keepdims=True) + 1e-6
        return features.astype(np.float32), labels


def set_tf_threads(intra: int | None, inter: int | None) -> str:
    """Give TensorFlow `intra` + `inter` op threads (None: its default); returns what it has.

    Call it before TensorFlow runs anything: once its runtime started the setting cannot
    change, and the text then says what it kept (0 is TensorFlow's "one per core").
    """
    try:
        if intra is not None:
            tf.config.threading.set_intra_op_parallelism_threads(intra)
        if inter is not None:
            tf.config.threading.set_inter_op_parallelism_threads(inter)
    except RuntimeError:
        pass
    intra_now = tf.config.threading.get_intra_op_parallelism_threads()
    inter_now = tf.config.threading.get_inter_op_parallelism_threads()
    return f"TF threads intra={intra_now or 'auto'} inter={inter_now or 'auto'}"


def make_model() -> keras.Model:
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((FEATURES,)),
            keras.layers.Dense(256, activation="relu"),
            keras.layers.Dense(256, activation="relu"),
            keras.layers.Dense(CLASSES),
        ]
    )
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    model.compile("adam", loss, metrics=["accuracy"])
    return model


def make_data(batches: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((batches * BATCH_SIZE, SIGNAL_LENGTH), dtype=np.float32)
    return x, rng.integers(0, CLASSES, len(x))


def train_generator(x: np.ndarray, y: np.ndarray, prefetch: int | None):
    datagen = DataGenerator(
        data=x, labels=y, batch_size=BATCH_SIZE, preprocessor=SpectrumPreprocessor(),
        prefetch=prefetch,
    )  # fmt: skip
    trainer = TrainGenerator(make_model(), datagen, epochs=0, iter_verbosity=0)
    return one_more_epoch(trainer)


def preprocessing_alone(x: np.ndarray, y: np.ndarray):
    datagen = DataGenerator(
        data=x, labels=y, batch_size=BATCH_SIZE, preprocessor=SpectrumPreprocessor(), prefetch=0
    )

    def run_epoch() -> int:
        return sum(1 for _ in datagen)  # iterating starts the next epoch when needed

    return run_epoch


def step_alone(x: np.ndarray, y: np.ndarray):
    pre = SpectrumPreprocessor()
    starts = range(0, len(x), BATCH_SIZE)
    slices = [pre.process(x[a : a + BATCH_SIZE], y[a : a + BATCH_SIZE]) for a in starts]
    step = CompiledStep(make_model(), "train")

    def run_epoch() -> int:
        for features, labels in slices:
            step(features, labels)
        return len(slices)

    return run_epoch


def datagen_and_step(x: np.ndarray, y: np.ndarray, prefetch: int | None):
    """The reference's loop with a DataGenerator in place of the thread and the queue."""
    datagen = DataGenerator(
        data=x, labels=y, batch_size=BATCH_SIZE, preprocessor=SpectrumPreprocessor(),
        prefetch=prefetch,
    )  # fmt: skip
    step = CompiledStep(make_model(), "train")

    def run_epoch() -> int:
        count = 0
        for features, labels in datagen:  # iterating starts the next epoch when needed
            step(features, labels)
            count += 1
        return count

    return run_epoch


def thread_and_queue(x: np.ndarray, y: np.ndarray):
    pre = SpectrumPreprocessor()
    starts = range(0, len(x), BATCH_SIZE)
    step = CompiledStep(make_model(), "train")

    def produce(slices: queue.Queue) -> None:
        for a in starts:
            slices.put(pre.process(x[a : a + BATCH_SIZE], y[a : a + BATCH_SIZE]))

    def run_epoch() -> int:
        slices: queue.Queue = queue.Queue(maxsize=PREFETCH)
        producer = threading.Thread(target=produce, args=(slices,), daemon=True)
        producer.start()
        for _ in starts:
            step(*slices.get())
        producer.join()
        return len(starts)

    return run_epoch


def rows(quick: bool) -> list[Row]:
    """Steps per second with and without prefetch, and the limit full overlap would reach."""
    threads = set_tf_threads(1, 1)
    x, y = make_data(batches=16 if quick else 40)
    serial, default = "TrainGenerator, prefetch=0", "TrainGenerator, default prefetch"
    always = f"TrainGenerator, prefetch={PREFETCH}"
    same_loop = "DataGenerator default prefetch, compiled step (the reference's loop)"
    runners = {
        serial: train_generator(x, y, prefetch=0),
        default: train_generator(x, y, prefetch=None),
        always: train_generator(x, y, prefetch=PREFETCH),
        REFERENCE: thread_and_queue(x, y),
        same_loop: datagen_and_step(x, y, prefetch=None),
        "preprocess": preprocessing_alone(x, y),
        "step": step_alone(x, y),
    }
    rates = interleaved_best(runners, rounds=5 if quick else 8)
    preprocess_ms, step_ms = 1e3 / rates.pop("preprocess"), 1e3 / rates.pop("step")
    # Measured apart, each runs with warm caches and a little faster than inside the
    # loop: the limit is their proportion, applied to the loop's own serial rate.
    limit = (preprocess_ms + step_ms) / max(preprocess_ms, step_ms)
    name = f"limit: (preprocess {preprocess_ms:.1f} + step {step_ms:.1f} ms) / max of the two"
    rates[name] = rates[serial] * limit
    bench = f"overlap ({threads})"
    same = rates.pop(same_loop)
    rows = ratio_rows(bench, rates, serial, "steps/s", targets={default: TARGET})
    # Against the plain thread: the same loop (the hand-off alone), and inside the trainer
    # (whose own per-step work then shares the main thread with the step).
    against_thread = {
        REFERENCE: rates[REFERENCE], same_loop: same, default: rates[default],
        always: rates[always],
    }  # fmt: skip
    return rows + ratio_rows(
        f"{bench} vs plain thread", against_thread, REFERENCE, "steps/s",
        targets={same_loop: REFERENCE_TARGET},
    )  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer batches and rounds")
    args = parser.parse_args()
    print(table(rows(args.quick)))


if __name__ == "__main__":
    main()
