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
# One sample with a NaN in it is enough to turn a loss into NaN, and the first NaN step
# turns every weight into NaN. Keras' `TerminateOnNaN` stops the run and leaves you to
# guess which data did it. trainkit knows which slice it was fitting: with
# `on_nonfinite='raise'` (the default) the first non-finite loss raises
# `trainkit.NonFiniteLossError`, naming the batch, the slice and the global indices of
# its samples, and which of them hold NaN or inf.
#
# This notebook poisons one training digit, lets the run find it, looks at the damage
# with `trainkit.introspection` (weight health, layer outputs, gradient norms), repairs
# the sample and resumes from the last checkpoint; `introspect_freq` logs gradient norms
# and weight health during the run, for the plots at the end.
#
# Run it as a script with `python examples/10_nan_hunt.py`; with
# `TRAINKIT_EXAMPLES_SMALL=1` it trains fewer epochs (what the tests run). Run folders
# go to `$TRAINKIT_EXAMPLES_OUT`, or a new temporary folder.

# %%
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tempfile
from pathlib import Path

import keras
import numpy as np
from sklearn.datasets import load_digits

import trainkit
from trainkit import DataGenerator, TrainGenerator
from trainkit.introspection import (
    draw_gradient_norms,
    gradient_norms,
    layer_outputs,
    read_introspection,
    weight_health,
)

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


def make_trainer(data: np.ndarray, **kwargs) -> TrainGenerator:
    keras.utils.set_random_seed(0)  # before building: reproducible initial weights
    return TrainGenerator(
        build_model(),
        DataGenerator(data=data, labels=labels, batch_size=60, shuffle=True, seed=0),
        val_datagen,
        epochs=2 if SMALL else 6,
        logs_dir=str(OUT / "logs"),
        checkpoint_freq={"iter": 4},
        introspect_freq={"iter": 2},  # gradient norms and weight health, every 2 iters
        on_nonfinite="raise",  # the default, written out
        iter_verbosity=0,
        model_base_name="digits",
        **kwargs,
    )


# %% [markdown]
# ## The run finds it
#
# The error's message says where the loop stood and which samples are bad; the same is
# in its attributes. The batches before the bad slice were counted and checkpointed as
# usual; the bad slice was not, and the generator stays at it.

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
assert error.bad_inputs == [POISONED] and error.bad_labels == []
assert POISONED in error.sample_indices and tg.iters_fit == error.iters_fit

# %% [markdown]
# ## The damage
#
# The step on the bad slice did run: the NaN reached the loss, the gradients and, through
# the optimizer, every weight. `weight_health` counts the non-finite entries of each
# variable, and `tg.checkpoint()` refuses to save such weights.

# %%
for path, health in weight_health(tg.model).items():
    print(f"{path:<16} nonfinite={health['nonfinite']:>5}  mean={health['mean']}")
try:
    tg.checkpoint()
except Exception as refused:
    first_sentence = str(refused).split(". ")[0]
    print(f"\ntg.checkpoint(): {type(refused).__name__}: {first_sentence}.")
else:
    raise AssertionError("a checkpoint of NaN weights was written")

# %% [markdown]
# With healthy weights (the last checkpoint's, below) the bad slice shows where the NaN
# goes: `layer_outputs` gives each layer's activations for the slice's 60 samples, and
# only the poisoned one is non-finite, from the first layer on; `gradient_norms` of the
# slice are NaN for every variable, since the loss is a mean over the slice.

# %%
bad_x, bad_y = tg.datagen.get()  # the generator stays at the bad slice
row = list(error.sample_indices).index(POISONED)

x_repaired = x.copy()
x_repaired[POISONED] = clean[POISONED]  # repaired; the array keeps its shape and dtype
resumed = make_trainer(x_repaired, resume=True)
print(f"resumed from the checkpoint at iter {resumed.iters_fit}")

for name, output in layer_outputs(resumed.model, bad_x).items():
    rows = np.flatnonzero(~np.isfinite(output).all(axis=1))
    print(f"layer {name!r}: non-finite rows {rows.tolist()} (the poisoned sample is row {row})")
bad_norms = gradient_norms(resumed.model, bad_x, bad_y)
print("gradient norms of the bad slice:", bad_norms)
assert all(np.isnan(norm) for norm in bad_norms.values())

# %% [markdown]
# ## Repaired, resumed
#
# The repaired array has the same shape and dtype, so the generator's fingerprint (sizes
# and settings, not contents) matches the checkpoint's, and `resume=True` continues from
# the newest checkpoint before the error. The slices fit between it and the error are
# fit again, and the poisoned slice now serves the repaired sample.

# %%
resumed.train()
print(f"done: epoch {resumed.epoch}, iters_fit {resumed.iters_fit}")
print(f"loss of the last 3 batches: {np.round(resumed.history['loss'][-3:], 3).tolist()}")
print(f"val loss per epoch: {np.round(resumed.val_history['loss'], 3).tolist()}")
assert np.isfinite(resumed.history["loss"]).all()
nonfinite = sum(h["nonfinite"] for h in weight_health(resumed.model).values())
print(f"non-finite weights now: {nonfinite}")
assert nonfinite == 0

# %% [markdown]
# ## Introspection plots
#
# `introspection.jsonl` holds a record every 2 iters: the gradient norm of every
# trainable variable and the health of every weight (a resumed run drops the records a
# failed or killed run wrote after its last checkpoint). Left: `draw_gradient_norms`, the
# global gradient norm and the largest per-variable one, with the bad slice's norms
# (computed above with the checkpoint's weights) added at its iter, drawn as a crimson
# line since a log axis cannot show NaN. Right: the spread (std) of each kernel's
# weights as training moves them.

# %%
from matplotlib.figure import Figure

records = read_introspection(resumed.run_dir)
print(f"{len(records)} introspection records, iters {records[0]['iter']}..{records[-1]['iter']}")
bad_record = {"iter": error.iters_fit + 1, "gradient_norms": bad_norms}
fig = Figure(figsize=(10, 3.8), layout="constrained")
left, right = fig.subplots(1, 2)
draw_gradient_norms(left, [*records, bad_record])
left.set_title("gradient norms (crimson: the poisoned slice)")
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
# When the loss is non-finite but no input or label is, the message says so: the model
# itself diverged (a learning rate too high, an exploding gradient that the
# gradient-norm panel shows rising before it). `on_nonfinite='stop'` ends the run with
# the same message as a warning, in `tg.nonfinite_message` and in the report, instead
# of raising; `'ignore'` trains on, as Keras does.
