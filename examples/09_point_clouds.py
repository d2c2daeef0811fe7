# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Ragged point clouds: two inputs, augmentation, padding, predictions per cloud
#
# Point clouds differ in their number of points, so a batch of them is ragged: a list of
# arrays of different lengths, not one tensor. This notebook segments generated clouds
# point by point:
#
# * each cloud has 40 to 120 points and two inputs, `{'points': (n, 3) coordinates,
#   'features': (n, 1) intensity}`; each point belongs to one of three parts: the cone
#   above the origin around the z axis (`z > r`, with `r` the distance to the axis), the
#   cone below it (`z < -r`), or the rest (`|z| < r`); its intensity hints at the part,
#   noisily;
# * training augments the coordinates (rotation about z, jitter, scale), then
#   `PadPreprocessor` pads the clouds to one length, with sample weights that are 0 on
#   the padding;
# * `tg.predict` on padded test batches returns each cloud's predictions at the cloud's
#   own length (the preprocessor's `post_process` cuts the padding off), equal to the
#   model applied to that cloud alone.
#
# Run it as a script with `python examples/09_point_clouds.py`; with
# `TRAINKIT_EXAMPLES_SMALL=1` it trains on fewer clouds (what the tests run).

# %%
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import math
import tempfile
from pathlib import Path

import keras
import numpy as np

from trainkit import (
    Chain,
    DataGenerator,
    JitterPreprocessor,
    PadPreprocessor,
    RandomRotationPreprocessor,
    RandomScalePreprocessor,
    TrainGenerator,
)

SMALL = os.environ.get("TRAINKIT_EXAMPLES_SMALL") == "1"
OUT = Path(os.environ.get("TRAINKIT_EXAMPLES_OUT") or tempfile.mkdtemp(prefix="trainkit-"))


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
# ## The clouds
#
# No point lies within 0.05 of a cone's surface (`||z| - r| >= 0.05`). That margin is
# what keeps the augmentation honest: a rotation about z keeps every point's `z` and
# `r`, a positive scale keeps the sign of `|z| - r`, and jitter clipped to 0.02 per
# coordinate moves `|z| - r` by at most `0.02 * (1 + sqrt(2)) < 0.05`, so no augmented
# point changes part.

# %%
MAX_POINTS = 120  # clouds have 40..MAX_POINTS points; also the pad length
MARGIN = 0.05  # no point lies closer to a cone's surface: jitter cannot change a label
PARTS = ["outside the cones", "upper cone", "lower cone"]


def make_clouds(count: int, rng: np.random.Generator) -> tuple[list, list, list]:
    """`count` clouds: coordinates (n, 3), intensities (n, 1), part labels (n,)."""
    points, features, labels = [], [], []
    for _ in range(count):
        n = int(rng.integers(40, MAX_POINTS + 1))
        xyz = rng.uniform(-1.0, 1.0, (4 * n, 3))
        z, r = xyz[:, 2], np.hypot(xyz[:, 0], xyz[:, 1])
        xyz = xyz[np.abs(np.abs(z) - r) >= MARGIN][:n]
        z, r = xyz[:, 2], np.hypot(xyz[:, 0], xyz[:, 1])
        part = np.select([z > r, z < -r], [1, 2], 0)
        intensity = np.array([0.5, 0.8, 0.2])[part] + rng.normal(0.0, 0.3, n)
        points.append(xyz.astype("float32"))
        features.append(intensity[:, None].astype("float32"))
        labels.append(part.astype("int64"))
    return points, features, labels


counts = (48, 16, 12) if SMALL else (480, 96, 96)
rng = np.random.default_rng(0)
train, val, test = (make_clouds(count, rng) for count in counts)
print("train clouds:", len(train[0]), "points per cloud:", [len(p) for p in train[0][:8]], "...")

# %% [markdown]
# ## The model
#
# The model is applied to each point on its own (`Dense` acts on the last axis; no
# pooling over points), so a point's prediction depends neither on the padding nor on
# the other clouds in its batch. Its inputs have shape `(None, ...)`: any number of
# points, so one cloud alone fits it too. `weighted_metrics`: Keras passes the sample
# weights (0 on padding) to those metrics only, so the accuracy counts real points.


# %%
def build_model() -> keras.Model:
    points = keras.Input((None, 3), name="points")
    features = keras.Input((None, 1), name="features")
    h = keras.layers.Concatenate()([points, features])
    h = keras.layers.Dense(32, activation="relu")(h)
    h = keras.layers.Dense(32, activation="relu")(h)
    outputs = keras.layers.Dense(len(PARTS), activation="softmax")(h)  # (clouds, points, 3)
    model = keras.Model({"points": points, "features": features}, outputs)
    model.compile(
        keras.optimizers.Adam(1e-2),
        "sparse_categorical_crossentropy",
        weighted_metrics=["accuracy"],
    )
    return model


# %% [markdown]
# ## Augment, then pad
#
# `Chain` runs the augmenters first, so they see the real points only; `keys="points"`
# spares the intensities. Every augmenter draws per cloud from the `rng` the generator
# derives from `(seed, epoch, batch, slice)`, so a resumed run augments exactly as the
# uninterrupted one would. The fixed pad length gives every batch one shape, so the
# compiled step is traced once instead of once per batch's longest cloud.


# %%
def pad() -> PadPreprocessor:
    return PadPreprocessor(length=MAX_POINTS, keys=["points", "features"])


def augment_and_pad() -> Chain:
    return Chain(
        RandomRotationPreprocessor(axis="z", max_angle=math.pi, keys="points"),
        JitterPreprocessor(sigma=0.01, clip=0.02, keys="points"),
        RandomScalePreprocessor(low=0.8, high=1.2, keys="points"),
        pad(),
    )


def datagen(clouds: tuple[list, list, list], preprocessor, **kwargs) -> DataGenerator:
    points, features, labels = clouds
    return DataGenerator(
        data={"points": points, "features": features},  # two inputs, named as the model's
        labels=labels,  # one array of part labels per cloud
        preprocessor=preprocessor,
        **kwargs,
    )


train_datagen = datagen(train, augment_and_pad(), batch_size=8, shuffle="samples", seed=0)
x, y, weights = train_datagen.get()  # the current slice, without moving the cursor
print("one training slice:", {key: value.shape for key, value in x.items()}, "labels", y.shape)
print("sample weights of its first cloud: 1 on", int(weights[0].sum()), "points, 0 after")

# %% [markdown]
# ## Train

# %%
keras.utils.set_random_seed(0)  # before building: reproducible initial weights
model = build_model()
tg = TrainGenerator(
    model,
    train_datagen,
    datagen(val, pad(), batch_size=16),
    epochs=8 if SMALL else 10,
    key_metric="accuracy",
    iter_verbosity=0,
)
tg.train()
first, last = np.mean(tg.history["loss"][:3]), np.mean(tg.history["loss"][-3:])
print(f"train loss, first 3 batches {first:.3f} -> last 3 {last:.3f}")
print("val accuracy per epoch:", np.round(tg.val_history["accuracy"], 3).tolist())
assert last < 0.5 * first and tg.val_history["accuracy"][-1] > 0.9

# %% [markdown]
# ## Predictions back at each cloud's length
#
# The test clouds are padded but not augmented. `tg.predict` passes each slice's outputs
# through `PadPreprocessor.post_process`, which cuts them back to each cloud's length:
# `result.predictions` is a list with one `(n_i, 3)` array per cloud. The generator is
# not shuffled, so the rows come in the clouds' order (else: `result.in_sample_order()`).

# %%
result = tg.predict(datagen(test, pad(), batch_size=4))
per_cloud = result.predictions
points, features, labels = test
lengths = [len(p) for p in per_cloud]
print(f"tg.predict: {len(per_cloud)} clouds, lengths {lengths[:6]} ...")
print(f"lengths equal the clouds' own: {lengths == [len(c) for c in points]}")
assert lengths == [len(c) for c in points]

# The model on each cloud alone: a batch of one, unpadded.
alone = [
    keras.ops.convert_to_numpy(model({"points": p[None], "features": f[None]}))[0]
    for p, f in zip(points, features)
]
difference = max(float(np.max(np.abs(a - b))) for a, b in zip(per_cloud, alone))
print(f"max |tg.predict - model(cloud alone)|: {difference:.2e}")
assert difference < 1e-5  # equal up to rounding: padded batches may differ in the last bits

decided = np.concatenate([p.argmax(axis=-1) for p in per_cloud])
accuracy = float(np.mean(decided == np.concatenate(labels)))
print(f"per-point test accuracy: {accuracy:.3f} over {len(decided)} points")
assert accuracy > 0.9

# %% [markdown]
# ## What the model sees
#
# Seen from the side, each point at its distance `r` from the z axis and its height `z`,
# the parts are the regions above `z = r` and below `z = -r`: the model's decisions on
# a few test clouds follow those two lines, and its few mistakes lie close to them.

# %%
from matplotlib.figure import Figure

shown = slice(0, 4)
xyz = np.concatenate(points[shown])
r, z = np.hypot(xyz[:, 0], xyz[:, 1]), xyz[:, 2]
truth = np.concatenate(labels[shown])
predicted = np.concatenate([p.argmax(axis=-1) for p in per_cloud[shown]])
fig = Figure(figsize=(9, 4), layout="constrained")
for ax, parts, title in zip(
    fig.subplots(1, 2, sharey=True), (truth, predicted), ("true", "predicted")
):
    for part, name in enumerate(PARTS):
        ax.scatter(r[parts == part], z[parts == part], s=8, label=name)
    wrong = truth != predicted
    if title == "predicted" and wrong.any():
        ax.scatter(r[wrong], z[wrong], s=40, facecolors="none", edgecolors="k", label="wrong")
    ax.plot([0, 1.42], [0, 1.42], "k--", linewidth=0.8)
    ax.plot([0, 1.42], [0, -1.42], "k--", linewidth=0.8)
    ax.set(xlabel="r (distance to the z axis)", title=f"{title} parts, 4 test clouds")
fig.axes[0].set_ylabel("z")
fig.legend(*fig.axes[1].get_legend_handles_labels(), loc="outside right center")
show(fig, OUT / "point_parts.png")
