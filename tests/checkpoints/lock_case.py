"""A tiny run for the run-folder lock tests, in a subprocess.

`python tests/checkpoints/lock_case.py LOGS_DIR MODE [FLAG_DIR]`

* `train FLAG_DIR`: a new run; after iter 3 it writes `FLAG_DIR/waiting` (its pid) and
  waits for `FLAG_DIR/go`, then trains to the end.
* `die FLAG_DIR`: a new run, checkpointed; after iter 3 it writes `FLAG_DIR/waiting`
  and SIGKILLs itself while `train()` holds the lock.
* `resume [FLAG_DIR]`: `resume=True`, trains to the end; with FLAG_DIR, waits for
  `FLAG_DIR/try` before building the trainer (so it imports while the test prepares).

On success it prints one JSON line: `{"iters_fit": ..., "batches_fit": ...}`.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np

from trainkit import DataGenerator, TrainGenerator
from trainkit.callbacks import Callback

EPOCHS = 2
WAIT_AT = 3  # iters_fit when the first process stops to wait (epoch 0 of 6 batches)


def build_model():
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    model.compile(keras.optimizers.SGD(0.01), "mse")
    return model


def datagen():
    rng = np.random.default_rng(0)
    x = rng.random((24, 4), dtype=np.float32)
    return DataGenerator(data=x, labels=x.sum(axis=1), batch_size=4, shuffle=True, seed=1)


def _wait_for(path: str) -> None:
    deadline = time.monotonic() + 120
    while not os.path.exists(path):
        if time.monotonic() > deadline:
            raise TimeoutError(f"the test never wrote {path}")
        time.sleep(0.02)


class WaitAt(Callback):
    """At iter `WAIT_AT`: tell the test (a file with the pid), then wait or die."""

    def __init__(self, flag_dir: str, die: bool):
        self.flag_dir, self.die = flag_dir, die

    def on_train_iter_end(self, iteration, logs=None):
        if self.trainer.iters_fit != WAIT_AT:
            return
        with open(os.path.join(self.flag_dir, "waiting"), "w") as file:
            file.write(str(os.getpid()))
        if self.die:
            os.kill(os.getpid(), signal.SIGKILL)
        _wait_for(os.path.join(self.flag_dir, "go"))


def main(logs_dir: str, mode: str, flag_dir: str | None = None) -> None:
    callbacks = []
    if flag_dir is not None and mode == "resume":
        _wait_for(os.path.join(flag_dir, "try"))
    elif flag_dir is not None:
        callbacks = [WaitAt(flag_dir, die=mode == "die")]
    tg = TrainGenerator(
        build_model(), datagen(), epochs=EPOCHS, logs_dir=logs_dir, resume=mode == "resume",
        val_freq=None, checkpoint_freq={"batch": 1}, iter_verbosity=0, callbacks=callbacks,
    )  # fmt: skip
    tg.train()
    print(json.dumps({"iters_fit": tg.iters_fit, "batches_fit": tg.batches_fit}))


if __name__ == "__main__":
    main(*sys.argv[1:])
