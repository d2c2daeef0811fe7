# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Quick start: a digits classifier configured with dicts
#
# An experiment script of this kind keeps its whole configuration in one dict `C`:
# `C['datagen']` and `C['val_datagen']` are the keywords of the two `DataGenerator`s,
# `C['model']` those of the function that builds the model, and `C['traingen']` those of
# the `TrainGenerator`. Changing an experiment means changing a value in `C`.
#
# The data is scikit-learn's bundled digits (1,797 images of 8x8 pixels; no network
# needed): 1,500 train in 25 batches of 60, the other 297 validate in 3 batches of 99
# (one batch size each: every new size is one more trace of the compiled step). The run
# leaves a run folder with checkpoints, `metrics.csv`, `history.png` and the report, then
# a second trainer continues it from its last checkpoint.
#
# Run it as a script with `python examples/01_quick_start.py`; with
# `TRAINKIT_EXAMPLES_SMALL=1` it trains fewer epochs (what the tests run). Run folders go
# to `$TRAINKIT_EXAMPLES_OUT`, or a new temporary folder. `bash dev/demo.sh` runs it at
# full size with its run folders in the checkout's `logs/`.

# %%
import os
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
from sklearn.datasets import load_digits

from trainkit import DataGenerator, TrainGenerator

SMALL = os.environ.get("TRAINKIT_EXAMPLES_SMALL") == "1"
OUT = Path(os.environ.get("TRAINKIT_EXAMPLES_OUT") or tempfile.mkdtemp(prefix="trainkit-"))


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
# ## The data and the configuration

# %%
digits = load_digits()
x = (digits.images.reshape(len(digits.images), 64) / 16.0).astype("float32")
y = digits.target

C = {
    "datagen": {
        "data": x[:1500],
        "labels": y[:1500],
        "batch_size": 60,
        "shuffle": True,  # a new set order every epoch, from (seed, epoch)
        "seed": 0,
    },
    "val_datagen": {"data": x[1500:], "labels": y[1500:], "batch_size": 99},  # 3 batches
    "model": {"units": 32, "learning_rate": 1e-2},
    "traingen": {
        "epochs": 3 if SMALL else 12,
        "key_metric": "accuracy",  # the best model is the one with the highest accuracy
        "val_freq": {"epoch": 1},
        "checkpoint_freq": {"epoch": 1},
        "max_checkpoints": 2,
        "logs_dir": str(OUT),  # run folders go here
        "model_base_name": "digits_mlp",
        "progress_every": 8,  # one progress line per 8 batches
    },
}


def make_model(units, learning_rate):
    model = keras.Sequential(
        [
            keras.Input((64,)),
            keras.layers.Dense(units, activation="relu"),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    model.compile(
        keras.optimizers.Adam(learning_rate),
        "sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model


# %% [markdown]
# ## Training with validation after every epoch
#
# `model_configs=C['model']` names the run folder after the model's settings.

# %%
keras.utils.set_random_seed(0)  # before building: reproducible initial weights
tg = TrainGenerator(
    make_model(**C["model"]),
    DataGenerator(**C["datagen"]),
    DataGenerator(**C["val_datagen"]),
    model_configs=C["model"],
    **C["traingen"],
)
tg.train()

# %% [markdown]
# Every counter is public: epochs done, slices fit (one slice per batch here), batches
# fit and validations run. `history` holds one value per train batch, `val_history`
# one per validation.

# %%
batches_per_epoch = len(tg.datagen)  # 1500 / 60 = 25
epochs = C["traingen"]["epochs"]
print(f"epoch={tg.epoch} iters_fit={tg.iters_fit} batches_fit={tg.batches_fit}")
print("val accuracy per epoch:", np.round(tg.val_history["accuracy"], 3).tolist())
print(f"best val accuracy: {tg.best_key_metric:.3f}")
assert batches_per_epoch == 25
assert tg.epoch == epochs and tg.batches_fit == epochs * batches_per_epoch
assert len(tg.history["loss"]) == tg.batches_fit and tg.times_validated == epochs
assert tg.best_key_metric == max(tg.val_history["accuracy"])
assert tg.best_key_metric > (0.8 if SMALL else 0.88), tg.best_key_metric

# %% [markdown]
# ## The run folder
#
# One checkpoint per epoch (the oldest pruned beyond `max_checkpoints`, never the best),
# `metrics.csv` with a row per batch and per validation, `provenance.jsonl` with what
# was fit at every iter, and the pictures.

# %%
run_dir = Path(tg.run_dir)
print(f"run folder: {run_dir}")
for entry in sorted(run_dir.iterdir()):
    print("   ", entry.name)
checkpoints = sorted(path.name for path in run_dir.glob("ckpt-*"))
assert len(checkpoints) == 2, checkpoints
assert (run_dir / "history.png").exists() and (run_dir / "report.txt").exists()

# %% [markdown]
# `history.png`: train loss and accuracy per batch, validation per epoch (epoch ends
# dashed, the best accuracy circled).

# %%
show(run_dir / "history.png")

# %% [markdown]
# ## Continuing from the last checkpoint
#
# A new process would rebuild the model and the generators from the same `C` and pass
# `resume=True`: the newest run of `digits_mlp` in `logs_dir` continues where its last
# checkpoint left it, in the same folder. Here it trains one more epoch.

# %%
resumed = TrainGenerator(
    make_model(**C["model"]),
    DataGenerator(**C["datagen"]),
    DataGenerator(**C["val_datagen"]),
    model_configs=C["model"],
    **{**C["traingen"], "epochs": epochs + 1},
    resume=True,
)
assert resumed.epoch == epochs  # restored, before training
resumed.train()
print(f"continued in {resumed.run_dir}: epoch={resumed.epoch} batches_fit={resumed.batches_fit}")
assert resumed.run_dir == tg.run_dir
assert resumed.batches_fit == (epochs + 1) * batches_per_epoch
assert resumed.history["loss"][: tg.batches_fit] == tg.history["loss"]

# %%
print(f"history plot: {run_dir / 'history.png'}")
print(f"report:       {run_dir / 'report.txt'} and {run_dir / 'report.png'}")
