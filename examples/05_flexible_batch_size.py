# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # One set of files, any batch size
#
# Data on disk is often stored in sets of a fixed size, one file each. The batch size
# you train with need not be that size: a `DataGenerator` over the same files combines
# sets when the batch size is a multiple of the set size, splits them when it is a
# fraction, and cuts at the sample level otherwise. The batch's `set_name` says which:
# `'0+1'`, `'0-a'`, `'0[96:128]+1[0:64]'`.
#
# `dg.plan(epoch)` gives an epoch's batches, names and sample ranges without loading
# anything. No model is trained here, so TensorFlow is never imported. The files go to
# `$TRAINKIT_EXAMPLES_OUT` or a new temporary folder.

# %%
import os
import tempfile
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from sklearn.datasets import load_digits

from trainkit import DataGenerator, write_sets

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
# ## The files: 12 sets of 128 digits
#
# `write_sets` writes numbered set files and returns the keywords that read them back.

# %%
digits = load_digits()
x = (digits.images[:1536] / 16.0).astype("float32")
y = digits.target[:1536]
source = write_sets(x, y, OUT / "sets", set_size=128, format="npy")
print(source)
print(sorted(path.name for path in (OUT / "sets").iterdir()))
assert len(list((OUT / "sets").glob("data_*.npy"))) == 12

# %% [markdown]
# ## Three batch sizes over the same files

# %%
C = {
    "combine": {**source, "batch_size": 256},  # 2 sets per batch
    "split": {**source, "batch_size": 64},  # half a set per batch
    "samples": {**source, "batch_size": 96},  # neither: cut at the sample level
}
datagens = {name: DataGenerator(**config) for name, config in C.items()}
for name, datagen in datagens.items():
    names = [batch.set_name for batch in datagen.plan(0)]
    print(f"batch_size={datagen.batch_size:3d} ({name}): {len(datagen)} batches: {names[:5]} ...")

plans = {name: datagen.plan(0) for name, datagen in datagens.items()}
assert [b.set_name for b in plans["combine"][:2]] == ["0+1", "2+3"]
assert [b.set_name for b in plans["split"][:3]] == ["0-a", "0-b", "1-a"]
assert [b.set_name for b in plans["samples"][:2]] == ["0[0:96]", "0[96:128]+1[0:64]"]

# %% [markdown]
# A batch of the plan says where its samples come from: `pieces` as
# `(set_num, start, stop)` within each set, `ranges` in global rows.

# %%
batch = plans["samples"][1]
print(f"set_name={batch.set_name!r} size={batch.size} pieces={batch.pieces}")
print(f"ranges={batch.ranges}")

# %% [markdown]
# Every sample is served once per epoch, whatever the batch size, and what is served is
# what the plan says: each batch's labels are the labels of its rows.

# %%
for name, datagen in datagens.items():
    rows = np.concatenate([np.arange(start, stop) for b in plans[name] for start, stop in b.ranges])
    assert np.array_equal(np.sort(rows), np.arange(1536)), name
    for planned in plans[name]:
        _, labels = datagen.get()
        assert datagen.set_name == planned.set_name
        expected = np.concatenate([y[start:stop] for start, stop in planned.ranges])
        assert np.array_equal(labels, expected), (name, planned.set_name)
        datagen.update_state()
    assert datagen.all_data_exhausted
print("every batch size serves all 1,536 samples once, labels aligned with their rows")

# %% [markdown]
# ## Shuffling keeps the layout
#
# `shuffle=True` shuffles the set order every epoch (from the seed and the epoch), and
# the batches follow: with batches of 64 both halves of a set stay together.

# %%
shuffled = DataGenerator(**source, batch_size=64, shuffle=True, seed=0)
for epoch in range(2):
    print(f"epoch {epoch}:", [b.set_name for b in shuffled.plan(epoch)][:8], "...")
assert [b.set_name for b in shuffled.plan(0)] != [b.set_name for b in shuffled.plan(1)]

# %% [markdown]
# ## The picture: where each batch size cuts the sets
#
# Each row is one batch size; each colored segment one batch of epoch 0 (served left to
# right), laid over the 1,536 samples of the files; the dotted lines are the set files'
# boundaries.

# %%
figure = Figure(figsize=(9, 3.2))
ax = figure.add_subplot()
for row, (name, plan) in enumerate(plans.items()):
    for index, planned in enumerate(plan):
        for start, stop in planned.ranges:
            color = "tab:blue" if index % 2 == 0 else "tab:orange"
            ax.barh(row, stop - start, left=start, height=0.5, color=color, edgecolor="white")
        center, name = planned.ranges[0][0] + planned.size / 2, planned.set_name
        if len(name) <= 5 and (len(plan) <= 12 or index < 4):  # fits inside the bar
            ax.text(center, row, name, ha="center", va="center", fontsize=7)
        elif len(name) > 5 and index < 3:  # long names: above and below the bar in turn
            offset = -0.4 if index % 2 == 0 else 0.4
            ax.text(center, row + offset, name, ha="center", va="center", fontsize=7)
for boundary in range(0, 1537, 128):
    ax.axvline(boundary, color="gray", linestyle=":", linewidth=0.8)
labels = [f"{datagens[name].batch_size} ({name})" for name in plans]
ax.set_yticks(range(len(plans)), labels)
ax.invert_yaxis()
ax.set_xlim(0, 1536)
ax.set_xlabel("sample (sets of 128 on disk)")
ax.set_ylabel("batch_size")
figure.tight_layout()
figure.savefig(OUT / "batches.png")
show(OUT / "batches.png")
