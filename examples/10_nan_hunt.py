# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # NaN hunt: find the poisoned sample, repair it, resume
#
# One sample with a NaN in it can spoil a run: the first step that reads it can turn
# weights into NaN. Keras' `TerminateOnNaN` watches the loss, stops after the harm is
# done, and leaves you to guess which data did it. Worse, the loss may not even show it:
# on Intel CPUs TensorFlow's oneDNN kernels fuse MatMul with ReLU and turn a NaN input
# into 0, so the loss stays finite while the weights fill with NaN.
#
# trainkit checks the data instead. Before each slice is fit, its inputs, labels and
# sample weights are checked for NaN and inf on the host, so whatever the CPU, with
# `on_nonfinite='raise'` (the default) a poisoned slice raises
# `trainkit.NonFiniteLossError` *before its step*, naming the batch, the slice, the
# global indices of its samples and which of them hold NaN or inf; the weights are
# untouched.
#
# This notebook poisons one training digit, lets the run find it, finds the bad row,
# trains past it with `on_nonfinite='skip'`, repairs the sample and resumes from the last
# checkpoint, then shows what happens without the check: the NaN reaches the weights,
# and trainkit refuses to checkpoint them. `introspect_freq` logs gradient norms and
# weight health during the run, for the plots at the end.
#
# Run it as a script with `python examples/10_nan_hunt.py`; with
# `TRAINKIT_EXAMPLES_SMALL=1` it trains fewer epochs (what the tests run). Run folders
# go to `$TRAINKIT_EXAMPLES_OUT`, or a new temporary folder.

# %%
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import csv
import logging
import tempfile
import warnings
from pathlib import Path

import keras
import numpy as np
from sklearn.datasets import load_digits

import trainkit
from trainkit import DataGenerator, TrainGenerator
from trainkit.checkpoints import complete_checkpoints, read_checkpoint
from trainkit.introspection import draw_gradient_norms, read_introspection, weight_health

# Each trainer below traces its own step; TensorFlow would warn about "retracing".
logging.getLogger("tensorflow").setLevel(logging.ERROR)
SMALL = os.environ.get("TRAINKIT_EXAMPLES_SMALL") == "1"
OUT = Path(os.environ.get("TRAINKIT_EXAMPLES_OUT") or tempfile.mkdtemp(prefix="trainkit-"))


def show(figure, path):
    """Save a matplotlib figure to `path` (None: `path` is a PNG already); display it."""
    if figure is not None:
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
# ## A poisoned sample
#
# 1,200 digits train in 20 batches of 60, shuffled; 297 validate. Digit 1,000 gets one
# NaN pixel, as a broken sensor or a division by zero in a preprocessing script would
# leave it.

# %%
digits = load_digits()
clean = (digits.images.reshape(len(digits.images), 64) / 16.0).astype("float32")[:1200]
labels = digits.target[:1200]
POISONED = 1000
x = clean.copy()
x[POISONED, 27] = np.nan
print("non-finite values in x:", int((~np.isfinite(x)).sum()), "in sample", POISONED)

val_datagen = DataGenerator(
    data=(digits.images.reshape(-1, 64) / 16.0).astype("float32")[1500:],
    labels=digits.target[1500:],
    batch_size=99,
)


def build_model() -> keras.Model:
    model = keras.Sequential(
        [
            keras.Input((64,)),
            keras.layers.Dense(32, activation="relu", name="hidden"),
            keras.layers.Dense(10, activation="softmax", name="digit"),
        ],
        # A fixed name keeps variable paths ('mlp/hidden/kernel') the same in every
        # model built in this process, so records before and after a resume match.
        name="mlp",
    )
    model.compile(keras.optimizers.Adam(1e-2), "sparse_categorical_crossentropy")
    return model


def make_trainer(data: np.ndarray, logs: str = "logs", **kwargs) -> TrainGenerator:
    keras.utils.set_random_seed(0)  # before building: reproducible initial weights
    settings = {
        "epochs": 2 if SMALL else 6,
        "checkpoint_freq": {"iter": 4},
        "introspect_freq": {"iter": 2},  # gradient norms and weight health, every 2 iters
        "on_nonfinite": "raise",  # the default, written out
        **kwargs,
    }
    return TrainGenerator(
        build_model(),
        DataGenerator(data=data, labels=labels, batch_size=60, shuffle=True, seed=0),
        val_datagen,
        logs_dir=str(OUT / logs),
        iter_verbosity=0,
        model_base_name="digits",
        **settings,
    )


# %% [markdown]
# ## The run finds it, before the step
#
# The error's message says where the loop stood and which samples are bad; the same is
# in its attributes. `before_step` is True: the slice was refused before it was fit. The
# batches before the bad slice were counted and checkpointed as usual; the bad slice
# was not, and the generator stays at it.

# %%
tg = make_trainer(x)
try:
    tg.train()
except trainkit.NonFiniteLossError as caught:
    error = caught
    print(f"{type(error).__name__}: {error}")
else:
    raise AssertionError("the poisoned sample went unnoticed")
print()
print(f"set_name={error.set_name!r} slice_idx={error.slice_idx} epoch={error.epoch}")
print(f"iters_fit={error.iters_fit} bad_inputs={error.bad_inputs} bad_labels={error.bad_labels}")
print(f"before_step={error.before_step}")
assert error.before_step and error.bad_inputs == [POISONED] and error.bad_labels == []
assert POISONED in error.sample_indices and tg.iters_fit == error.iters_fit

# %% [markdown]
# ## No damage
#
# The step never ran, so the weights are as the last good slice left them:
# `weight_health` counts the non-finite entries of each variable, and finds none.
# `tg.checkpoint()` would save them.

# %%
health = weight_health(tg.model)
for path, each in health.items():
    print(f"{path:<16} nonfinite={each['nonfinite']}")
assert sum(each["nonfinite"] for each in health.values()) == 0

# %% [markdown]
# The generator stays at the bad slice, so plain NumPy finds the bad row in it:

# %%
bad_x, bad_y = tg.datagen.get()
rows = np.flatnonzero(~np.isfinite(bad_x).all(axis=1))
print(f"rows of the slice with NaN or inf: {rows.tolist()}")
print(f"their global indices: {[error.sample_indices[row] for row in rows]}")
print(f"non-finite columns of that row: {np.flatnonzero(~np.isfinite(bad_x[rows[0]])).tolist()}")
assert [error.sample_indices[row] for row in rows] == [POISONED]

# %% [markdown]
# ## Or train past it: `on_nonfinite='skip'`
#
# When a few bad samples should not stop a long run, `on_nonfinite='skip'` leaves a bad
# slice out (weights unchanged), warns, and trains on. The skipped slices are named in
# `tg.skipped_slices`, in the run's `provenance.jsonl` (records with `"skipped"`) and in
# `metrics.csv` (rows of kind `skipped`); a resumed run skips the same slices.
# The poisoned digit is in one slice per epoch.

# %%
with warnings.catch_warnings(record=True) as caught_warnings:
    warnings.simplefilter("always")
    skipping = make_trainer(x, logs="logs-skip", on_nonfinite="skip")
    skipping.train()
skip_warnings = [w for w in caught_warnings if "left out" in str(w.message)]
print(f"done: epoch {skipping.epoch}, iters_fit {skipping.iters_fit}", end=", ")
print(f"warnings {len(skip_warnings)}")
for skipped in skipping.skipped_slices:
    print(
        f"skipped: epoch {skipped['epoch']} set_name={skipped['set_name']!r} "
        f"slice_idx={skipped['slice_idx']} holds {POISONED}: {POISONED in skipped['samples']}"
    )
with open(Path(skipping.run_dir) / "metrics.csv", newline="") as file:
    kinds = [row["kind"] for row in csv.DictReader(file)]
print(f"metrics.csv rows of kind 'skipped': {kinds.count('skipped')}")
epochs = 2 if SMALL else 6
assert len(skipping.skipped_slices) == len(skip_warnings) == kinds.count("skipped") == epochs
assert skipping.iters_fit == epochs * 19  # 20 slices an epoch, one left out
assert sum(each["nonfinite"] for each in weight_health(skipping.model).values()) == 0

# %% [markdown]
# ## Repaired, resumed
#
# The repaired array has the same shape and dtype, so the generator's fingerprint (sizes
# and settings, not contents) matches the checkpoint's, and `resume=True` continues from
# the newest checkpoint before the error (in the first run's `logs_dir`). The slices fit
# between it and the error are fit again, and the poisoned slice now serves the repaired
# sample.

# %%
x_repaired = x.copy()
x_repaired[POISONED] = clean[POISONED]  # repaired; the array keeps its shape and dtype
resumed = make_trainer(x_repaired, resume=True)
print(f"resumed from the checkpoint at iter {resumed.iters_fit}")
resumed.train()
print(f"done: epoch {resumed.epoch}, iters_fit {resumed.iters_fit}")
print(f"loss of the last 3 batches: {np.round(resumed.history['loss'][-3:], 3).tolist()}")
print(f"val loss per epoch: {np.round(resumed.val_history['loss'], 3).tolist()}")
assert np.isfinite(resumed.history["loss"]).all()
nonfinite = sum(h["nonfinite"] for h in weight_health(resumed.model).values())
print(f"non-finite weights now: {nonfinite}")
assert nonfinite == 0

# %% [markdown]
# ## Without the check
#
# The check costs one pass over the bytes the step reads anyway; the rare option
# `check_finite_data=False` turns it off (and `on_nonfinite='ignore'` never checks). Then
# the NaN reaches the step: the loss may come out NaN or finite depending on the CPU's
# kernels, but either way the gradient carries the NaN into the weights. The last line
# of defence holds on every CPU: no checkpoint is written from non-finite weights, the
# run stops with `trainkit.NonFiniteWeightsError`, and the checkpoints written before it
# stay intact, finite, and the ones to resume from.

# %%
unchecked = make_trainer(x, logs="logs-unchecked", check_finite_data=False, on_nonfinite="ignore")
try:
    unchecked.train()
except trainkit.NonFiniteWeightsError as refused:
    print(f"{type(refused).__name__}: {str(refused).split(':')[0]}")
else:
    raise AssertionError("a checkpoint of NaN weights was written")
nonfinite_now = sum(h["nonfinite"] for h in weight_health(unchecked.model).values())
print(f"the model's weights hold NaN or inf: {nonfinite_now > 0}")
assert nonfinite_now > 0

kept = complete_checkpoints(unchecked.run_dir)
finite = all(
    np.isfinite(array).all()
    for folder in kept
    for array in read_checkpoint(folder)[0].values()
    if array.dtype.kind == "f"
)
print(f"checkpoints kept: {len(kept)}, every one finite: {finite}")
assert kept and finite

# %% [markdown]
# ## Introspection plots
#
# `introspection.jsonl` holds a record every 2 iters: the gradient norm of every
# trainable variable and the health of every weight (a resumed run drops the records a
# failed or killed run wrote after its last checkpoint). Left: `draw_gradient_norms`, the
# global gradient norm and the largest per-variable one. Right: the spread (std) of each
# kernel's weights as training moves them.

# %%
from matplotlib.figure import Figure

records = read_introspection(resumed.run_dir)
print(f"{len(records)} introspection records, iters {records[0]['iter']}..{records[-1]['iter']}")
fig = Figure(figsize=(10, 3.8), layout="constrained")
left, right = fig.subplots(1, 2)
draw_gradient_norms(left, records)
left.set_title("gradient norms")
iters = [record["iter"] for record in records]
for variable in ("mlp/hidden/kernel", "mlp/digit/kernel"):
    right.plot(iters, [r["weight_health"][variable]["std"] for r in records], label=variable)
right.set(xlabel="iters fit", ylabel="std of the weights", title="weight health")
right.legend()
show(fig, OUT / "introspection.png")

# %% [markdown]
# The run's own `history.png` gains the same gradient-norm panel below the loss, and the
# report (`report.txt`, `report.png`) an Introspection section:

# %%
report = (Path(resumed.run_dir) / "report.txt").read_text()
section = report[report.index("Introspection") :].split("\n\n")[0]
print(section)
assert "non-finite weights   : 0" in section
show(None, Path(resumed.run_dir) / "history.png")

# %% [markdown]
# When the data is finite but the loss is not, the error (raised after the step) says
# so: the model itself diverged (a learning rate too high, an exploding gradient that the
# gradient-norm panel shows rising before it). `on_nonfinite='stop'` ends the run with
# the same message as a warning, in `tg.nonfinite_message` and in the report, instead of
# raising; `'skip'` undoes such a step in the graph and leaves the slice out; `'ignore'`
# trains on, as Keras does (and `NonFiniteWeightsError` still guards the checkpoints).
