"""Training setups for the resume tests, runnable in a subprocess that may be killed.

`python tests/checkpoints/resume_cases.py CASE LOGS_DIR OUT_FILE [KILL]` trains CASE in
LOGS_DIR (resuming the newest run there if any) and writes the final weights and
histories to OUT_FILE. KILL makes the process SIGKILL itself at one point:
`iter:N` after fitting iter N, `step:N` while the train step of iter N runs (a timer
thread kills the process about a millisecond into the step), `val:V:B` at validation
batch B of validation V (0-based),
`ckpt:N` in the middle of writing the N-th checkpoint of this process (1-based; with
`async_checkpoints` in the background thread, while training goes on), `hist:N` in the
middle of appending the N-th checkpoint's line to the histories log (before its
state.json).
"""

from __future__ import annotations

import json
import os
import signal
import sys
import warnings
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np

from trainkit import DataGenerator, RandomCropPreprocessor, TimeseriesPreprocessor, TrainGenerator
from trainkit.callbacks import Callback
from trainkit.checkpoints import checkpoint_dirs, history_log
from trainkit.training.slices import steps

EPOCHS = 3
# The generators' prefetch: the default unless the test asks otherwise (its references
# run synchronously, the killed runs with the default prefetch).
PREFETCH = (
    int(os.environ["TRAINKIT_CASE_PREFETCH"]) if "TRAINKIT_CASE_PREFETCH" in os.environ else None
)


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


class KillAt(Callback):
    def __init__(self, spec: str):
        self.kind, *numbers = spec.split(":")
        self.numbers = [int(n) for n in numbers]

    def on_train_iter_end(self, iteration, logs=None):
        if self.kind == "iter" and self.trainer.iters_fit == self.numbers[0]:
            _die()

    def on_val_batch_end(self, batch, logs=None):
        if self.kind == "val" and [self.trainer.times_validated, batch] == self.numbers:
            _die()


def kill_during_checkpoint_write(n: int) -> None:
    writes = {"count": 0}
    original = checkpoint_dirs._write_json

    def half_then_die(path, state):
        writes["count"] += 1
        if writes["count"] == n:
            with open(path, "w") as file:
                file.write(json.dumps(state)[:100])
            _die()
        original(path, state)

    checkpoint_dirs._write_json = half_then_die


def kill_during_history_append(n: int) -> None:
    appends = {"count": 0}

    class HalfThenDie(history_log.RecordFile):
        def append(self, record: bytes) -> None:
            appends["count"] += 1
            if appends["count"] == n:
                super().append(record[: len(record) // 2])
                _die()
            super().append(record)

    history_log.RecordFile = HalfThenDie  # type: ignore[misc]


class KillDuringStep:
    """Wraps the trainer's compiled train step; kills the process while iter `n` runs."""

    def __init__(self, step, trainer, n: int):
        self.step, self.trainer, self.n = step, trainer, n

    def __call__(self, *args):
        if self.trainer.iters_fit == self.n - 1:
            import threading

            threading.Timer(0.001, _die).start()
            result = self.step(*args)
            threading.Event().wait(5)  # the timer fires during or right after the step
            return result
        return self.step(*args)


def mlp_case(
    logs_dir: str,
    callbacks: list,
    steps_per_execution: int = 1,
    cropped: bool = False,
    **options: Any,
) -> TrainGenerator:
    rng = np.random.default_rng(0)
    images = rng.random((64, 6, 6, 1), dtype=np.float32)
    labels = (images[:, 2:4, 2:4].mean(axis=(1, 2, 3)) > 0.5).astype("float32")
    if options.get("on_nonfinite") == "skip":
        images[5, 2, 2, 0] = np.nan  # inside every 4x4 crop: its slice is skipped each epoch
    keras.utils.set_random_seed(1)
    model = keras.Sequential([
        keras.Input((4, 4, 1)), keras.layers.Flatten(), keras.layers.Dense(16, activation="relu"),
        keras.layers.Dropout(0.3), keras.layers.Dense(1, activation="sigmoid"),
    ])  # fmt: skip
    model.compile(keras.optimizers.Adam(1e-2), "binary_crossentropy", metrics=["accuracy"])
    if cropped:  # cropped beforehand and served as they are (the default prefetch)
        images = np.ascontiguousarray(images[:, 1:5, 1:5])
        train = DataGenerator(data=images[:48], labels=labels[:48], batch_size=8, shuffle=True,
                              seed=3)  # fmt: skip
        val = DataGenerator(data=images[48:], labels=labels[48:], batch_size=8)
    else:
        crop = RandomCropPreprocessor(4)
        train = DataGenerator(data=images[:48], labels=labels[:48], batch_size=8, shuffle=True,
                              seed=3, preprocessor=crop, prefetch=PREFETCH)  # fmt: skip
        val = DataGenerator(data=images[48:], labels=labels[48:], batch_size=8,
                            preprocessor=RandomCropPreprocessor(4), prefetch=PREFETCH)  # fmt: skip
    return TrainGenerator(model, train, val, epochs=EPOCHS, logs_dir=logs_dir, resume=True,
                          checkpoint_freq={"iter": 4}, callbacks=callbacks, iter_verbosity=0,
                          max_checkpoints=2, steps_per_execution=steps_per_execution,
                          **options)  # fmt: skip


def lstm_case(logs_dir: str, callbacks: list) -> TrainGenerator:
    rng = np.random.default_rng(1)
    series = rng.normal(size=(32, 12, 2)).astype("float32")
    targets = series[:, :, 0].mean(axis=1, keepdims=True)
    keras.utils.set_random_seed(2)
    model = keras.Sequential([
        keras.Input((4, 2), batch_size=8), keras.layers.LSTM(6, stateful=True),
        keras.layers.Dense(1),
    ])  # fmt: skip
    model.compile(keras.optimizers.Adam(1e-2), "mse")
    windows = TimeseriesPreprocessor(4)  # 3 slices per batch
    train = DataGenerator(data=series[:24], labels=targets[:24], batch_size=8, shuffle=True,
                          seed=5, preprocessor=windows, prefetch=PREFETCH)  # fmt: skip
    val = DataGenerator(data=series[24:], labels=targets[24:], batch_size=8,
                        preprocessor=TimeseriesPreprocessor(4), prefetch=PREFETCH)  # fmt: skip
    return TrainGenerator(model, train, val, epochs=EPOCHS, logs_dir=logs_dir, resume=True,
                          reset_statefuls=True, checkpoint_freq={"iter": 2}, callbacks=callbacks,
                          iter_verbosity=0)  # fmt: skip


def mlp_fused_case(logs_dir: str, callbacks: list) -> TrainGenerator:
    """The mlp case with 8 slices per compiled call (groups end at each checkpoint)."""
    return mlp_case(logs_dir, callbacks, steps_per_execution=8)


def mlp_plain_case(logs_dir: str, callbacks: list) -> TrainGenerator:
    """The mlp case on arrays cropped beforehand, served as they are, one slice per call."""
    return mlp_case(logs_dir, callbacks, cropped=True)


def mlp_whole_case(logs_dir: str, callbacks: list) -> TrainGenerator:
    """`mlp_plain_case` with 8 slices per call: a fused group's whole in-memory batches
    are served at once (`DataGenerator._serve_whole_batches`)."""
    return mlp_case(logs_dir, callbacks, steps_per_execution=8, cropped=True)


def mlp_skip_case(logs_dir: str, callbacks: list) -> TrainGenerator:
    """The mlp case with a NaN pixel in one sample, left out by on_nonfinite='skip'."""
    return mlp_case(logs_dir, callbacks, on_nonfinite="skip")


def mlp_async_case(logs_dir: str, callbacks: list) -> TrainGenerator:
    """The mlp case with checkpoints written in a background thread (async_checkpoints)."""
    return mlp_case(logs_dir, callbacks, async_checkpoints=True)


def mlp_written_case(logs_dir: str, callbacks: list) -> TrainGenerator:
    """`mlp_plain_case` with 4 slices per call: full groups (iters 9-12 timed in the loop,
    13-16 written out and checkpointed at 16) run their steps written out. Each process
    that runs a written-out group leaves a file LOGS_DIR + '.written-out'."""
    steps.UNROLL_STEP_SECONDS = 10.0  # written out whatever this machine's load
    unrolled_rows = steps.FusedSteps._unrolled_rows

    def marked(fused: Any, *args: Any) -> Any:
        rows = unrolled_rows(fused, *args)
        if rows is not None:
            open(logs_dir.rstrip(os.sep) + ".written-out", "a").close()
        return rows

    steps.FusedSteps._unrolled_rows = marked  # type: ignore[method-assign]
    return mlp_case(logs_dir, callbacks, steps_per_execution=4, cropped=True)


CASES = {
    "mlp": mlp_case, "lstm": lstm_case, "mlp-fused": mlp_fused_case, "mlp-skip": mlp_skip_case,
    "mlp-async": mlp_async_case, "mlp-plain": mlp_plain_case, "mlp-whole": mlp_whole_case,
    "mlp-written": mlp_written_case,
}  # fmt: skip


def run(case: str, logs_dir: str, out_file: str, kill: str | None = None) -> None:
    # The same callbacks in every process, so their states are restored on resume.
    hook_kill = kill and kill.split(":")[0] in ("iter", "val")
    callbacks = [KillAt(kill if hook_kill else "none")]
    if kill and kill.startswith("ckpt:"):
        kill_during_checkpoint_write(int(kill.split(":")[1]))
    if kill and kill.startswith("hist:"):
        kill_during_history_append(int(kill.split(":")[1]))
    tg = CASES[case](logs_dir, callbacks)
    if kill and kill.startswith("step:"):
        tg._train_step = KillDuringStep(tg._train_step, tg, int(kill.split(":")[1]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # on_nonfinite='skip' warns per skipped slice
        tg.train()
    weights = {f"w{k}": w for k, w in enumerate(tg.model.get_weights())}
    np.savez(out_file, **weights)
    with open(out_file + ".json", "w") as file:
        json.dump(
            {
                "history": tg.history, "val_history": tg.val_history, "run_dir": tg.run_dir,
                "skipped": tg.skipped_slices, "key_metric_history": tg.key_metric_history,
                "best_key_metric": tg.best_key_metric, "epoch_batches": tg._state.epoch_batches,
                "val_batches": tg._state.val_batches,
            },
            file,
        )  # fmt: skip


if __name__ == "__main__":
    run(*sys.argv[1:])
