# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # A stateful LSTM on windows: `TimeseriesPreprocessor`, `reset_statefuls`, `start_increments`
#
# Each sample is a noisy sine wave of 40 steps; its label says whether its frequency is
# high. A `TimeseriesPreprocessor` cuts every batch into windows of 10 steps, fit one
# after another by a **stateful** LSTM: the state left by window k is where window k+1
# starts, so the model reads the whole series in pieces. `reset_statefuls=True` zeroes
# the states after the last window of each batch (never between windows), so the next
# batch, other series, starts fresh.
#
# `start_increments=[0, 5]` shifts the windows by 5 steps every other epoch: epoch 0 fits
# `[0, 10), [10, 20), [20, 30), [30, 40)`, epoch 1 `[5, 15), [15, 25), [25, 35)`. The run
# folder's provenance log records which window of which rows every iter fit; the figure
# at the end is drawn from it.
#
# With `TRAINKIT_EXAMPLES_SMALL=1` it trains fewer epochs; run folders go to
# `$TRAINKIT_EXAMPLES_OUT` or a new temporary folder.

# %%
import json
import os
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
from matplotlib.figure import Figure

from trainkit import DataGenerator, TimeseriesPreprocessor, TrainGenerator

SMALL = os.environ.get("TRAINKIT_EXAMPLES_SMALL") == "1"
OUT = Path(os.environ.get("TRAINKIT_EXAMPLES_OUT") or tempfile.mkdtemp(prefix="trainkit-"))
STEPS, WINDOW, BATCH = 40, 10, 32


def show(picture):
    """Show a PNG file in a notebook; print its path when run as a script."""
    try:
        from IPython import get_ipython
        from IPython.display import Image, display
    except ImportError:
        get_ipython = None
    if get_ipython is None or get_ipython() is None:
        print(f"figure: {picture}")
    else:
        display(Image(filename=str(picture)))


# %% [markdown]
# ## The series


# %%
def make_series(count, seed):
    """`count` noisy sine waves `(count, STEPS, 1)` and labels: 1 where the frequency is high."""
    rng = np.random.default_rng(seed)
    high = rng.integers(0, 2, count)
    frequency = np.where(high == 1, rng.uniform(0.25, 0.35, count), rng.uniform(0.05, 0.12, count))
    phase = rng.uniform(0, 2 * np.pi, count)
    t = np.arange(STEPS)
    waves = np.sin(frequency[:, None] * 2 * np.pi * t / 2 + phase[:, None])
    waves += 0.2 * rng.standard_normal(waves.shape)
    return waves[..., None].astype("float32"), high.astype("float32")


x_train, y_train = make_series(128 if SMALL else 1024, seed=0)
x_val, y_val = make_series(64 if SMALL else 256, seed=1)

C = {
    "datagen": {
        "data": x_train,
        "labels": y_train,
        "batch_size": BATCH,
        "shuffle": True,
        "seed": 0,
        "preprocessor": TimeseriesPreprocessor(WINDOW, start_increments=[0, 5]),
    },
    "val_datagen": {
        "data": x_val,
        "labels": y_val,
        "batch_size": BATCH,
        "preprocessor": TimeseriesPreprocessor(WINDOW),
    },
    "traingen": {
        "epochs": 4 if SMALL else 12,
        "reset_statefuls": True,
        "checkpoint_freq": None,  # no checkpoints: not what this example is about
        "key_metric": "accuracy",
        "logs_dir": str(OUT / "logs"),
        "model_base_name": "stateful_lstm",
        "iter_verbosity": 0,
    },
}
datagen = DataGenerator(**C["datagen"])
x, y = datagen.get()
print(f"batch {datagen.set_name!r}: {datagen.slices_per_batch} windows, the first {x.shape}")
assert datagen.slices_per_batch == STEPS // WINDOW and x.shape == (BATCH, WINDOW, 1)


# %% [markdown]
# ## The model
#
# A stateful layer needs a fixed batch size: every batch here has 32 series (a stateful
# model fed a partial batch is refused at construction, suggesting `drop_remainder=True`).


# %%
def make_model(units=8):
    model = keras.Sequential(
        [
            keras.Input((WINDOW, 1), batch_size=BATCH),
            keras.layers.LSTM(units, stateful=True),
            keras.layers.Dense(1, activation="sigmoid"),
        ]
    )
    model.compile(keras.optimizers.Adam(2e-2), "binary_crossentropy", metrics=["accuracy"])
    return model


keras.utils.set_random_seed(0)
tg = TrainGenerator(make_model(), datagen, DataGenerator(**C["val_datagen"]), **C["traingen"])
tg.train()
print(f"epochs={tg.epoch} iters_fit={tg.iters_fit} batches_fit={tg.batches_fit}")
print("val accuracy per epoch:", np.round(tg.val_history["accuracy"], 3).tolist())
assert tg.best_key_metric > 0.7, tg.best_key_metric

# %% [markdown]
# After the last window of the last batch the states were reset: they are zero.

# %%
lstm = tg.model.layers[0]
assert all(not np.any(keras.ops.convert_to_numpy(state)) for state in lstm.states)

# %% [markdown]
# ## Which windows were fit when
#
# One JSON line per iter in `provenance.jsonl`: `epoch`, the batch's `set_name`, the
# global rows fit (`ranges`), the window's `slice_idx` and, from the preprocessor,
# `window = [start, stop)`. Every epoch fit the windows its increment says, batch after
# batch:

# %%
provenance = Path(tg.run_dir) / "provenance.jsonl"
records = [json.loads(line) for line in provenance.read_text().splitlines()]
print(*records[:5], sep="\n")

batches_per_epoch = len(datagen)
for epoch in range(tg.epoch):
    increment = [0, 5][epoch % 2]
    windows = [tuple(r["window"]) for r in records if r["epoch"] == epoch]
    starts = range(increment, STEPS - WINDOW + 1, WINDOW)
    expected = [(start, start + WINDOW) for start in starts] * batches_per_epoch
    assert windows == expected, (epoch, windows)
assert len(records) == tg.iters_fit

# %%
# The picture: the first 3 batches of epochs 0 and 1, one row per iter.
batch_number, shown = {}, []  # batch_number: the epoch's batch count so far
for record in records:
    if record["slice_idx"] == 0:
        batch_number[record["epoch"]] = batch_number.get(record["epoch"], -1) + 1
    if record["epoch"] < 2 and batch_number[record["epoch"]] < 3:
        shown.append(record)

figure = Figure(figsize=(8, 4.5))
ax = figure.add_subplot()
colors = ["tab:blue", "tab:orange"]
for row, record in enumerate(shown):
    start, stop = record["window"]
    ax.barh(row, stop - start, left=start, height=0.7, color=colors[record["epoch"]])
    ax.text(stop + 0.3, row, f"slice {record['slice_idx']}", va="center", fontsize=7)
    if record["slice_idx"] == 0:  # a new batch: name it
        label = f"epoch {record['epoch']}, batch '{record['set_name']}'"
        ax.text(-0.5, row, label, ha="right", va="center", fontsize=7)
    if row and record["epoch"] != shown[row - 1]["epoch"]:
        ax.axhline(row - 0.5, color="gray", linestyle="--", linewidth=0.8)
ax.set_yticks(range(len(shown)), [f"iter {record['iter']}" for record in shown], fontsize=7)
ax.set_xlim(-14, STEPS + 4)
ax.set_xticks(range(0, STEPS + 1, 5))
ax.invert_yaxis()
ax.set_xlabel("timestep: the window fit")
ax.set_title("provenance.jsonl: the first 3 batches of epochs 0 (increment 0) and 1 (increment 5)")
figure.tight_layout()
figure.savefig(OUT / "windows.png")
show(OUT / "windows.png")
