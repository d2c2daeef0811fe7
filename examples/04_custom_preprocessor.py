# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Writing your own Preprocessor
#
# A `Preprocessor` turns each loaded batch into one or more slices; the `DataGenerator`
# calls its hooks in a fixed order (`on_batch_load`, then per slice `process` and
# `update_state`). Two of them here:
#
# * `SplitBatch(parts)` cuts every batch into `parts` slices of consecutive samples: it
#   says how many slices a batch yields in `on_batch_load`, and `process` returns the
#   slice `slice_idx`.
# * `RandomErase(size, value)` fills one random square per image with `value`, drawing only from
#   `self.rng`, which the generator derives from `(seed, epoch, batch, slice)` before
#   every `process()`: the same slice gets the same squares in any process, on resume,
#   with prefetch.
#
# `trainkit.testing.check_preprocessor` checks both against the protocol, and catches
# the usual mistake, drawing from `np.random`. No model is trained here, so TensorFlow
# is never imported.

# %%
import os
import tempfile
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from sklearn.datasets import load_digits

from trainkit import Chain, DataGenerator, Preprocessor
from trainkit.testing import assert_resumes_identically, check_preprocessor

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
# ## A preprocessor that cuts a batch into slices
#
# The generator has set `slice_idx=0` before `on_batch_load`, and advances it in the
# default `update_state()`; the batch ends after `slices_per_batch` slices.


# %%
class SplitBatch(Preprocessor):
    """Serves each batch as `parts` slices of consecutive samples."""

    def __init__(self, parts):
        super().__init__()
        if not isinstance(parts, int) or parts < 1:
            raise ValueError(f"`parts` must be a positive int. Received: parts={parts!r}")
        self.parts = parts

    def on_batch_load(self, batch, labels):
        if len(batch) % self.parts:
            raise ValueError(
                f"SplitBatch({self.parts}) cannot cut a batch of {len(batch)} samples into "
                "equal slices: pick a batch_size that is a multiple of `parts`."
            )
        self.slices_per_batch = self.parts

    def process(self, batch, labels):
        size = len(batch) // self.parts
        rows = slice(self.slice_idx * size, (self.slice_idx + 1) * size)
        return batch[rows], None if labels is None else labels[rows]

    def get_config(self):  # settings that change the data: part of the generator's fingerprint
        return {"class": "SplitBatch", "parts": self.parts}


# %% [markdown]
# ## A preprocessor with randomness from `self.rng`
#
# `describe_slice()` tells the provenance log what the slice got (JSON).


# %%
class RandomErase(Preprocessor):
    """Fills one random `size` x `size` square of every image with `value`."""

    def __init__(self, size, value=0.5):
        super().__init__()
        self.size = size
        self.value = value
        self.corners = []

    def process(self, batch, labels):
        count, width, height = batch.shape[:3]
        rows = self.rng.integers(0, width - self.size + 1, count)
        columns = self.rng.integers(0, height - self.size + 1, count)
        erased = batch.copy()  # never change the loaded batch: process() may run twice
        for image, row, column in zip(erased, rows, columns):
            image[row : row + self.size, column : column + self.size] = self.value
        self.corners = np.stack([rows, columns], axis=1).tolist()
        return erased, labels

    def describe_slice(self):
        return {"erased_corners": self.corners}

    def get_config(self):
        return {"class": "RandomErase", "size": self.size, "value": self.value}


# %% [markdown]
# ## Checking them
#
# `check_preprocessor(make, batch, labels)` drives fresh instances through two epochs of
# the calling sequence: the batch ends after its slices, `process()` gives the same
# result when called twice for a slice and under other global seeds, and a preprocessor
# restored from `state_dict()` at any slice serves the same remaining slices. It raises
# with the fix if not; here it returns quietly.

# %%
digits = load_digits()
images = (digits.images / 16.0).astype("float32")  # (1797, 8, 8)
batch, labels = images[:64], digits.target[:64]

check_preprocessor(lambda: SplitBatch(4), batch, labels)
check_preprocessor(lambda: RandomErase(3), batch, labels)
check_preprocessor(lambda: Chain(SplitBatch(4), RandomErase(3)), batch, labels)
print("SplitBatch, RandomErase and their Chain pass check_preprocessor")


# %% [markdown]
# The usual mistake, drawing from NumPy's global generator, makes slices that a resumed
# run cannot serve again. `check_preprocessor` says so, and how to fix it:


# %%
class GlobalNoise(Preprocessor):
    def process(self, batch, labels):
        return batch + 0.1 * np.random.standard_normal(batch.shape), labels


try:
    check_preprocessor(GlobalNoise, batch, labels)
except AssertionError as error:
    message = str(error)
print(message)
assert "self.rng" in message

# %% [markdown]
# ## In a DataGenerator
#
# `Chain(SplitBatch(4), RandomErase(3))`: the splitter governs slicing, the eraser
# transforms each slice. Batches of 64 become 4 slices of 16; `set_name` names the batch,
# `slice_idx` the slice.

# %%
C = {
    "datagen": {
        "data": images[:512],
        "labels": digits.target[:512],
        "batch_size": 64,
        "shuffle": True,
        "seed": 0,
        "preprocessor": Chain(SplitBatch(4), RandomErase(3)),
    },
}
datagen = DataGenerator(**C["datagen"])
first_batch = []
while not first_batch or not datagen.batch_exhausted:  # the slices of the first batch
    x, y = datagen.get()
    corners = datagen.describe_slice()["erased_corners"]  # what this slice got
    print(f"set_name={datagen.set_name!r} slice_idx={datagen.slice_idx} x={x.shape}", end=" ")
    print(f"labels={y[:6].tolist()}... first erased corners={corners[:2]}")
    first_batch.append(x)
    datagen.update_state()
assert datagen.slices_per_batch == 4 and [len(x) for x in first_batch] == [16] * 4

# %% [markdown]
# The same generator restored from its `state_dict()` at any point serves exactly the
# same slices, erased squares included (`assert_resumes_identically` walks two epochs,
# cutting at several points):

# %%
assert_resumes_identically(lambda: DataGenerator(**C["datagen"]), epochs=2)
print("resumes identically")

# %%
# One picture: a row per slice, its first 8 images side by side (1 pixel of white between).
rows = [np.hstack([np.pad(image, 1) for image in x[:8]]) for x in first_batch]
figure = Figure(figsize=(8, 4))
ax = figure.add_subplot()
ax.imshow(np.vstack(rows), cmap="gray_r", vmin=0, vmax=1)
ax.set_xticks([]), ax.set_yticks([5 + 10 * k for k in range(4)], [f"slice {k}" for k in range(4)])
ax.set_title("the first batch: 4 slices of 16 (8 shown each), one gray square per image")
figure.savefig(OUT / "slices.png")
show(OUT / "slices.png")
