# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # An autoencoder on random crops: `RandomCropPreprocessor` and `input_as_labels`
#
# The images are scikit-learn's bundled digits, 8x8 pixels (no network needed). Every
# batch is cropped to 6x6 by a `RandomCropPreprocessor`: one window per batch, shared by
# its samples, its offsets drawn from the generator's seed, the epoch and the batch. An
# autoencoder learns to reproduce its input, so the generators serve no labels and
# `input_as_labels=True` makes the (cropped) input the target, in training and
# validation alike.
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
from sklearn.datasets import load_digits

from trainkit import DataGenerator, RandomCropPreprocessor, TrainGenerator

SMALL = os.environ.get("TRAINKIT_EXAMPLES_SMALL") == "1"
OUT = Path(os.environ.get("TRAINKIT_EXAMPLES_OUT") or tempfile.mkdtemp(prefix="trainkit-"))
CROP = 6


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
# ## Images, crops and the generators
#
# `RandomCropPreprocessor` crops axes 1 and 2 of `(samples, width, height, channels)`.
# 1,500 digits train in batches of 60; the other 297 validate in batches of 99.

# %%
images = (load_digits().images / 16.0).astype("float32")[..., None]  # (1797, 8, 8, 1)
C = {
    "datagen": {
        "data": images[:1500],
        "batch_size": 60,
        "shuffle": True,
        "seed": 0,
        "preprocessor": RandomCropPreprocessor(CROP),
    },
    "val_datagen": {
        "data": images[1500:],
        "batch_size": 99,
        "seed": 1,
        "preprocessor": RandomCropPreprocessor(CROP),
    },
    "traingen": {
        "epochs": 6 if SMALL else 30,
        "input_as_labels": True,  # the target is the input slice itself
        "checkpoint_freq": None,  # no checkpoints: not what this example is about
        "logs_dir": str(OUT / "logs"),
        "model_base_name": "digits_autoencoder",
        "iter_verbosity": 0,
    },
}
datagen = DataGenerator(**C["datagen"])
x, y = datagen.get()  # the current slice: a 6x6 crop of the first batch, no labels
print(f"batch {datagen.set_name!r}: slice {x.shape}, labels {y}, {datagen.describe_slice()}")
assert x.shape == (60, CROP, CROP, 1) and y is None


# %% [markdown]
# ## The model: 36 pixels through a bottleneck of 12


# %%
def make_autoencoder(bottleneck=12):
    model = keras.Sequential(
        [
            keras.Input((CROP, CROP, 1)),
            keras.layers.Flatten(),
            keras.layers.Dense(bottleneck, activation="relu"),
            keras.layers.Dense(CROP * CROP, activation="sigmoid"),
            keras.layers.Reshape((CROP, CROP, 1)),
        ]
    )
    model.compile(keras.optimizers.Adam(1e-2), "mse")
    return model


keras.utils.set_random_seed(0)
tg = TrainGenerator(make_autoencoder(), datagen, DataGenerator(**C["val_datagen"]), **C["traingen"])
tg.train()
print(f"epochs={tg.epoch} batches_fit={tg.batches_fit}")
print("val loss per epoch:", np.round(tg.val_history["loss"], 4).tolist())
assert tg.val_history["loss"][-1] < tg.val_history["loss"][0]

# %% [markdown]
# ## Which crop each iter fit
#
# The run folder's `provenance.jsonl` has one JSON line per iter; the preprocessor's part
# is `crop`, the batch window's offsets. Over the batches, the offsets cover every valid
# position, 0 to 8 - 6 = 2 on each axis, edges included.

# %%
provenance = Path(tg.run_dir) / "provenance.jsonl"
records = [json.loads(line) for line in provenance.read_text().splitlines()]
offsets = np.array([record["crop"]["batch"] for record in records])
print("first records:", *records[:2], sep="\n  ")
print("offsets seen:", sorted({tuple(offset) for offset in offsets.tolist()}))
assert len(records) == tg.iters_fit
assert offsets.min() == 0 and offsets.max() == 8 - CROP

# %% [markdown]
# ## Reconstructions
#
# `tg.predict` runs the validation generator once; with `input_as_labels` its `labels`
# are the crops the model was asked to reproduce. The model does better than the best
# constant guess, the mean crop.

# %%
result = tg.predict(DataGenerator(**C["val_datagen"]))
crops, reconstructions = result.labels, result.predictions
model_mse = float(np.mean((reconstructions - crops) ** 2))
mean_mse = float(np.mean((crops.mean(axis=0) - crops) ** 2))
print(f"reconstruction mse {model_mse:.4f}; the mean crop's {mean_mse:.4f}")
assert model_mse < 0.7 * mean_mse

# One picture: crops above, outputs below (1 pixel of white between the images).
rows = [np.hstack([np.pad(image[..., 0], 1) for image in p[:10]]) for p in (crops, reconstructions)]
figure = Figure(figsize=(8, 2.2))
ax = figure.add_subplot()
ax.imshow(np.clip(np.vstack(rows), 0, 1), cmap="gray_r", vmin=0, vmax=1)
ax.set_xticks([]), ax.set_yticks([4, 12], ["crop", "output"])
ax.set_title("validation crops and the autoencoder's reconstructions")
figure.savefig(OUT / "reconstructions.png")
show(OUT / "reconstructions.png")
