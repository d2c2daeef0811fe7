# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Kill a training job with `kill -9` and resume it exactly
#
# A cluster preempts jobs, a machine runs out of memory, someone presses the wrong key:
# a training process can die at any instant without a chance to save anything. trainkit
# promises that a run killed anywhere and resumed with `resume=True` ends with weights
# **bitwise equal** to the run that never stopped, with the same histories.
#
# This notebook shows it on a real process:
#
# 1. a training job (a script, as a cluster would run it) starts in a subprocess,
#    writing a checkpoint every 8 iters;
# 2. once it is past a few checkpoints it is killed with `SIGKILL`: no handler runs,
#    nothing is flushed;
# 3. a new trainer, built the same way with `resume=True`, continues the run here;
# 4. `trainkit.testing.assert_resume_equivalent` checks the same setup stopped and
#    resumed at other iters, and its uninterrupted run has, array by array, the final
#    weights of the killed and resumed job.
#
# Run it as a script with `python examples/06_interrupt_and_resume.py`; with
# `TRAINKIT_EXAMPLES_SMALL=1` it trains on fewer digits and checks one cut point (what
# the tests run). Everything is written to `$TRAINKIT_EXAMPLES_OUT`, or a new temporary
# folder.

# %%
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import csv
import logging
import runpy
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

SMALL = os.environ.get("TRAINKIT_EXAMPLES_SMALL") == "1"
work = Path(os.environ.get("TRAINKIT_EXAMPLES_OUT") or tempfile.mkdtemp(prefix="trainkit-"))


def show(figure, path):
    """Save a matplotlib figure to `path`; display it in a notebook, print the path else."""
    figure.savefig(path, dpi=80)
    try:
        from IPython import get_ipython
        from IPython.display import Image, display
    except ImportError:
        get_ipython = None
    if get_ipython is None or get_ipython() is None:
        print(f"figure: {path}")
    else:
        display(Image(filename=str(path)))


# %% [markdown]
# ## The training job
#
# The job is an ordinary script: it builds the data, the model and the trainer in
# `make_trainer` and calls `train()`. `checkpoint_freq={'iter': 8}` checkpoints every 8
# iters, mid-epoch included. The model has a `Dropout` layer, whose random state is part
# of what must be restored for a bitwise resume.
#
# `StepTime` only makes each step take 50 ms longer, standing for a model that takes real time
# per step, so that the kill below lands in the middle of the run and not after it.

# %%
JOB = '''"""Train an MLP on sklearn's digits; `python job.py LOGS_DIR` runs it."""
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
from sklearn.datasets import load_digits

from trainkit import DataGenerator, TrainGenerator
from trainkit.callbacks import Callback

SAMPLES = int(os.environ.get("JOB_SAMPLES", "1500"))
EPOCHS = 3


def datagens():
    digits = load_digits()
    x = (digits.images.reshape(-1, 64) / 16.0).astype("float32")[:SAMPLES]
    y = digits.target[:SAMPLES]
    split = int(0.8 * len(x))
    # Batch sizes that divide the sets: every batch has one shape, traced once.
    train = DataGenerator(data=x[:split], labels=y[:split], batch_size=40,
                          shuffle="samples", seed=0)
    val = DataGenerator(data=x[split:], labels=y[split:], batch_size=60)
    return train, val


def build_model():
    model = keras.Sequential([
        keras.Input((64,)),
        keras.layers.Dense(32, activation="relu"),
        keras.layers.Dropout(0.2),
        keras.layers.Dense(10, activation="softmax"),
    ])
    model.compile(keras.optimizers.Adam(1e-2), "sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    return model


def make_trainer(logs_dir, resume=False, callbacks=None):
    keras.utils.set_random_seed(0)  # before building: the same initial weights each time
    train, val = datagens()
    return TrainGenerator(build_model(), train, val, epochs=EPOCHS, key_metric="accuracy",
                          checkpoint_freq={"iter": 8}, logs_dir=logs_dir, resume=resume,
                          callbacks=callbacks, iter_verbosity=0, model_base_name="digits")


class StepTime(Callback):
    """Makes each step last `seconds` longer (a stand-in for a bigger model)."""

    def __init__(self, seconds):
        self.seconds = seconds

    def on_train_iter_end(self, iteration, logs=None):
        time.sleep(self.seconds)


if __name__ == "__main__":
    make_trainer(sys.argv[1], callbacks=[StepTime(0.05)]).train()
'''
job_path = work / "job.py"
job_path.write_text(JOB)
samples = "600" if SMALL else "1500"
os.environ["JOB_SAMPLES"] = samples  # read by the job here and in the subprocess

# %% [markdown]
# ## Start it, and kill it
#
# The job runs in its own process. We watch its run folder and, once a checkpoint at
# iter 16 or later is complete and two more batches are in `metrics.csv` (so the process
# is between two checkpoints, with iters fit that no checkpoint holds yet), send
# `SIGKILL`.

# %%
logs_dir = work / "logs"
# The job's output goes to a file, read if it fails; closed once the job is dead.
job_log = open(work / "job.log", "w")  # noqa: SIM115
job = subprocess.Popen(
    [sys.executable, str(job_path), str(logs_dir)],
    stdout=job_log,
    stderr=subprocess.STDOUT,
)

# While the job imports TensorFlow, this process gets its own copy of the job's code.
job_code = runpy.run_path(str(job_path))
make_trainer = job_code["make_trainer"]
# Every trainer below builds a fresh model whose step TensorFlow traces anew: its
# "triggered tf.function retracing" warning counts those, and is expected here.
logging.getLogger("tensorflow").setLevel(logging.ERROR)

from trainkit.checkpoints import checkpoint_iters, latest_checkpoint


def wait_until(condition, what: str, timeout: float = 120.0):
    """Poll `condition()` until it returns something true; return that."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := condition():
            return result
        if job.poll() is not None:
            log = (work / "job.log").read_text()
            raise RuntimeError(f"the job ended before {what}:\n{log[-2000:]}")
        time.sleep(0.02)
    raise TimeoutError(f"no {what} within {timeout} s")


def checkpoint_at(iters: int) -> str | None:
    """The newest complete checkpoint in `logs_dir` if it is at `iters` or later."""
    for folder in logs_dir.glob("M*"):
        newest = latest_checkpoint(str(folder))
        if newest and checkpoint_iters(newest) >= iters:
            return newest
    return None


def train_rows(run_dir: Path) -> list[dict]:
    """The train rows of a run folder's `metrics.csv` (one per batch fit)."""
    with open(run_dir / "metrics.csv", newline="") as file:
        return [row for row in csv.DictReader(file) if row["kind"] == "train"]


checkpoint = wait_until(lambda: checkpoint_at(16), "a checkpoint at iter 16")
run_dir = Path(checkpoint).parent
# Two more batches fit: the kill lands between two checkpoints.
wait_until(lambda: len(train_rows(run_dir)) >= checkpoint_iters(checkpoint) + 2, "two batches")
os.kill(job.pid, signal.SIGKILL)
job.wait()
job_log.close()
print(f"job killed: return code {job.returncode} (-{int(signal.SIGKILL)} is SIGKILL)")
assert job.returncode == -signal.SIGKILL
print("run folder:", sorted(p.name for p in run_dir.iterdir()))

# %% [markdown]
# What the killed process left: complete checkpoints, and `metrics.csv` with a row for
# every batch it fit — more than its newest checkpoint holds. Those last batches are
# lost; the resume fits them again from the checkpoint and cuts `metrics.csv` back to
# the checkpoint's row count, so no row is written twice.

# %%
killed_rows = train_rows(run_dir)
newest = latest_checkpoint(str(run_dir))
print(f"batches in metrics.csv when killed: {len(killed_rows)}")
print(f"newest complete checkpoint: {Path(newest).name} (iter {checkpoint_iters(newest)})")
assert len(killed_rows) > checkpoint_iters(newest)

# %% [markdown]
# ## Resume with `resume=True`
#
# A new trainer, built exactly as the job builds it (same model code, same generators),
# with `resume=True`: it finds the newest run folder in `logs_dir` with a complete
# checkpoint, assigns every saved value into the fresh model (weights, optimizer slots,
# Dropout's random state), restores both generators' cursors and the RNGs, and trains
# to the end.

# %%
StepTime = job_code["StepTime"]
# The same callbacks as the job (their states are restored), here without the delay.
resumed = make_trainer(str(logs_dir), resume=True, callbacks=[StepTime(0.0)])
print(f"resumed at iter {resumed.iters_fit}, epoch {resumed.epoch}, run {resumed.run_dir}")
resumed.train()
print(f"done: {resumed.iters_fit} iters, {resumed.epoch} epochs")
assert len(train_rows(run_dir)) == resumed.batches_fit  # no duplicate rows

# %% [markdown]
# ## The proof: `assert_resume_equivalent`, and the same weights as a run that never stopped
#
# `trainkit.testing.assert_resume_equivalent(make_trainer, folder, cut_points=...)` is
# the check to run on your own setup. It trains the setup uninterrupted, then for each
# cut point checkpoints and stops right after that iter, builds everything anew with
# `resume=<that checkpoint>`, trains to the end, and raises `AssertionError` naming the
# cut point if a weight or a history differs from the uninterrupted run. Its
# `make_trainer(logs_dir, resume, callbacks)` must pass the three on to the
# `TrainGenerator`, as the job's does. Each cut point costs two runs: the small version
# checks one, in the middle of the run; the full one, three.
#
# Its first run is the uninterrupted run, so we keep the trainers it builds and compare
# the killed-and-resumed job with that run too, array by array.

# %%
from trainkit.testing import assert_resume_equivalent

built = []  # every trainer assert_resume_equivalent builds; the first is uninterrupted


def make_and_keep(logs_dir, resume, callbacks):
    trainer = make_trainer(logs_dir, resume, callbacks)
    built.append(trainer)
    return trainer


last_iter = resumed.iters_fit
cut_points = (last_iter // 2 + 1,) if SMALL else (3, last_iter // 2 + 1, last_iter - 1)
assert_resume_equivalent(make_and_keep, str(work / "check"), cut_points=cut_points)
print(f"assert_resume_equivalent: resumed after iters {cut_points} of {last_iter}: equal")

uninterrupted = built[0]
pairs = list(zip(uninterrupted.model.get_weights(), resumed.model.get_weights()))
equal = [np.array_equal(a, b) for a, b in pairs]
largest = max(float(np.max(np.abs(a - b))) for a, b in pairs)
print(f"killed job vs uninterrupted: weights bitwise equal: {all(equal)}", end=" ")
print(f"({sum(equal)}/{len(equal)} arrays, largest difference {largest})")
print(f"histories equal: {uninterrupted.history == resumed.history}")
print(f"validation histories equal: {uninterrupted.val_history == resumed.val_history}")
assert all(equal) and largest == 0.0
assert uninterrupted.history == resumed.history
assert uninterrupted.val_history == resumed.val_history

# %% [markdown]
# The loss of every batch: the killed process's batches (from its `metrics.csv`), the
# resumed run's (the checkpoint's history, then its own) and the uninterrupted run's lie
# on one another.

# %%
from matplotlib.figure import Figure

resume_iter = checkpoint_iters(newest)
fig = Figure(figsize=(8, 3.5), layout="constrained")
ax = fig.subplots()
ax.plot(uninterrupted.history["loss"], color="0.8", linewidth=6, label="uninterrupted")
ax.plot(resumed.history["loss"], color="tab:blue", label="killed, then resumed")
killed_loss = [float(row["loss"]) for row in killed_rows]
ax.plot(killed_loss, "x", color="tab:red", label="killed process (metrics.csv)")
ax.axvline(resume_iter - 0.5, color="tab:green", linestyle="--", label="resumed from here")
ax.axvline(len(killed_rows) - 0.5, color="tab:red", linestyle=":", label="SIGKILL")
ax.set(xlabel="batches fit", ylabel="train loss")
ax.set_title("Loss per batch: killed and resumed vs uninterrupted")
ax.legend()
show(fig, work / "loss_per_batch.png")

# %% [markdown]
# If your own setup fails `assert_resume_equivalent`, look for randomness trainkit cannot
# see (a TensorFlow op with its own `seed=` inside a custom layer, a global `random`
# call in a callback) or a generator built differently the second time;
# `docs/checkpoints.md` lists what a checkpoint holds and the limits.
