# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Ragged point clouds: classify and segment, padded per batch and per member, predicted per cloud
#
# Point clouds differ in their number of points, so a batch of them is ragged: a list of
# arrays of different lengths, not one tensor. This notebook trains one model with two
# outputs on generated clouds, VL3D's classify-and-segment job:
#
# * each cloud has 40 to 120 points, `{'points': (n, 3) coordinates, 'features': (n, 1)
#   intensity}`, and a coarse "shadow" of itself, every 4th point: `{'shadow_points':
#   (m, 3), 'shadow_features': (m, 1)}` with `m = ceil(n / 4)` (VL3D feeds its models
#   one such cloud per depth); each point belongs to one of three parts: the cone
#   above the origin around the z axis (`z > r`, with `r` the distance to the axis), the
#   cone below it (`z < -r`), or the rest (`|z| < r`); its intensity hints at the part,
#   noisily;
# * the model answers per point of the full cloud (`seg`: the point's part) and per
#   cloud, from the means over the cloud and over its shadow (`cls`: the part that holds
#   half the cloud's points), `{"cls": (clouds, 3), "seg": (clouds, points, 3)}`;
# * training augments the coordinates (rotation about z, jitter, scale), then one
#   `PadPreprocessor(groups=...)` pads each batch's clouds to their longest cloud and
#   their shadows, in a group of their own, to their longest shadow, with sample
#   weights that are 0 on the padded points;
# * `tg.predict` on `test_datagen.for_prediction()` (sample order, augmenters dropped,
#   padding kept) returns one `cls` row per cloud and each cloud's `seg` at the cloud's
#   own length, equal to the model applied to that cloud alone.
#
# Run it as a script with `python examples/09_point_clouds.py`; with
# `TRAINKIT_EXAMPLES_SMALL=1` it trains on fewer clouds (what the tests run). It writes
# to `$TRAINKIT_EXAMPLES_OUT`, or a new temporary folder.

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
OUT.mkdir(parents=True, exist_ok=True)


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
# A cloud of class `c` has half its points in part `c` and a quarter in each other part.
# No point lies within 0.05 of a cone's surface (`||z| - r| >= 0.05`). That margin is
# what keeps the augmentation honest: a rotation about z keeps every point's `z` and
# `r`, a positive scale keeps the sign of `|z| - r`, and jitter clipped to 0.02 per
# coordinate moves `|z| - r` by at most `0.02 * (1 + sqrt(2)) < 0.05`, so no augmented
# point changes part, and no augmented cloud changes class.

# %%
MAX_POINTS = 120  # clouds have 40..MAX_POINTS points
MARGIN = 0.05  # no point lies closer to a cone's surface: jitter cannot change a label
PARTS = ["outside the cones", "upper cone", "lower cone"]
SHADOW_STEP = 4  # the shadow cloud keeps every 4th point: ceil(n / 4) of n


def make_cloud(kind: int, n: int, rng: np.random.Generator) -> tuple:
    """n points, half of them in part `kind`: coordinates (n, 3), intensity (n, 1), parts (n,)."""
    counts = np.full(len(PARTS), n // 4)
    counts[kind] = n - counts.sum() + counts[kind]
    xyz = rng.uniform(-1.0, 1.0, (30 * n, 3))  # enough of every part to choose from
    z, r = xyz[:, 2], np.hypot(xyz[:, 0], xyz[:, 1])
    part = np.select([z > r, z < -r], [1, 2], 0)
    part[np.abs(np.abs(z) - r) < MARGIN] = -1  # too close to a surface: never chosen
    chosen = np.concatenate([np.flatnonzero(part == p)[:count] for p, count in enumerate(counts)])
    chosen = rng.permutation(chosen)
    intensity = np.array([0.5, 0.8, 0.2])[part[chosen]] + rng.normal(0.0, 0.3, n)
    return xyz[chosen].astype("float32"), intensity[:, None].astype("float32"), part[chosen]


def make_clouds(count: int, rng: np.random.Generator) -> dict:
    """`count` clouds: their inputs (every point, and every 4th: the shadow), and labels
    per cloud (`cls`) and per point of the full cloud (`seg`)."""
    kinds = rng.integers(0, len(PARTS), count)
    clouds = [make_cloud(kind, int(rng.integers(40, MAX_POINTS + 1)), rng) for kind in kinds]
    points, features, parts = zip(*clouds)
    return {
        "points": list(points),
        "features": list(features),
        "shadow_points": [p[::SHADOW_STEP] for p in points],
        "shadow_features": [f[::SHADOW_STEP] for f in features],
        "cls": kinds,
        "seg": list(parts),
    }


counts = (48, 16, 12) if SMALL else (480, 96, 96)
rng = np.random.default_rng(0)
train, val, test = (make_clouds(count, rng) for count in counts)
print(
    "train clouds:",
    len(train["points"]),
    "points per cloud:",
    [len(p) for p in train["points"][:8]],
    "...",
)
print("their shadows' points:", [len(p) for p in train["shadow_points"][:8]], "...")
print("their classes:", train["cls"][:8].tolist(), "...")

# %% [markdown]
# ## The model
#
# The per-point part comes from layers applied to each point of the full cloud on its
# own (`Dense` acts on the last axis), so a point's answer depends neither on the padding
# nor on the other clouds of its batch. The per-cloud class pools twice: over the
# cloud's points and over its shadow's, which the same per-point layers (shared weights)
# embed. The two are padded to different lengths, and neither pooling may see its
# padding: `Masking` marks the rows that are all zero (the padding; no real point is
# exactly zero in its four values), `Dense` carries each input's own mask along, and
# `GlobalAveragePooling1D` averages over the real points only, of the cloud and of the
# shadow; `cls` reads the two means side by side.
# The inputs have shape `(None, ...)`: any number of points, so one cloud alone fits the
# model too.
#
# `weighted_metrics`: Keras passes the sample weights (per point for `seg`, 0 on the
# padding; per cloud for `cls`) to those metrics only, so `seg_accuracy` counts real
# points.


# %%
def build_model() -> keras.Model:
    inputs = {
        "points": keras.Input((None, 3), name="points"),
        "features": keras.Input((None, 1), name="features"),
        "shadow_points": keras.Input((None, 3), name="shadow_points"),
        "shadow_features": keras.Input((None, 1), name="shadow_features"),
    }
    per_point = [keras.layers.Dense(32, activation="relu") for _ in range(2)]  # shared

    def embed(points: str, features: str):
        """Each point's features, masked where its row is padding (all zero)."""
        h = keras.layers.Concatenate()([inputs[points], inputs[features]])
        h = keras.layers.Masking(mask_value=0.0)(h)
        for layer in per_point:
            h = layer(h)
        return h

    cloud = embed("points", "features")
    shadow = embed("shadow_points", "shadow_features")  # its own length, its own mask
    seg = keras.layers.Dense(len(PARTS), activation="softmax", name="seg")(cloud)
    pool = keras.layers.GlobalAveragePooling1D()  # the mean over the real rows of its input
    pooled = keras.layers.Concatenate()([pool(cloud), pool(shadow)])
    cls = keras.layers.Dense(len(PARTS), activation="softmax", name="cls")(pooled)
    model = keras.Model(inputs, {"cls": cls, "seg": seg})
    loss = "sparse_categorical_crossentropy"
    model.compile(
        keras.optimizers.Adam(1e-2),
        {"cls": loss, "seg": loss},
        weighted_metrics={"cls": ["accuracy"], "seg": ["accuracy"]},
    )
    return model


# %% [markdown]
# ## Augment, then pad each member group to its own longest sample
#
# `Chain` runs the augmenters first, so they see the real points only; `keys=` names the
# coordinates and spares the intensities. Rotation and scale turn and stretch a cloud and
# its shadow alike (one draw per cloud for every member); jitter moves every point on its
# own. Every augmenter draws per cloud from the `rng` the generator derives from
# `(seed, epoch, batch, slice)`, so a resumed run augments exactly as the uninterrupted
# one would.
#
# A cloud and its shadow have different lengths, so one `PadPreprocessor` pads them in
# two groups (`groups=`), each to its own batch's longest sample (the default: no
# `length=`) with its own mask: the points, their intensities and the per-point labels
# `seg` to the longest cloud; the shadow's two members to the longest shadow. The
# per-cloud labels `cls` stay as they are; the sample weights follow the labels: the
# points' mask for `seg`, 1 per cloud for `cls`. `'outputs'` names what `post_process`
# cuts with each group's lengths when predicting: `seg` with the points', nothing with
# the shadow's. (Batches then differ in length: the compiled step, a `tf.function` with
# `reduce_retracing`, is traced for the first lengths, once more for any lengths at the
# second, and never again.)


# %%
COORDINATES = ["points", "shadow_points"]
INPUTS = ["points", "features", "shadow_points", "shadow_features"]


def pad() -> PadPreprocessor:
    return PadPreprocessor(
        groups=[
            {"batch": ["points", "features"], "labels": ["seg"], "outputs": ["seg"]},
            {"batch": ["shadow_points", "shadow_features"], "outputs": False},
        ]
    )


def augment_and_pad() -> Chain:
    return Chain(
        RandomRotationPreprocessor(axis="z", max_angle=math.pi, keys=COORDINATES),
        JitterPreprocessor(sigma=0.01, clip=0.02, keys=COORDINATES),
        RandomScalePreprocessor(low=0.8, high=1.2, keys=COORDINATES),
        pad(),
    )


def datagen(clouds: dict, preprocessor, **kwargs) -> DataGenerator:
    return DataGenerator(
        data={key: clouds[key] for key in INPUTS},  # the model's inputs
        labels={"cls": clouds["cls"], "seg": clouds["seg"]},  # one per cloud; one per point
        preprocessor=preprocessor,
        **kwargs,
    )


def shapes(structure: dict) -> dict:
    return {key: value.shape for key, value in structure.items()}


train_datagen = datagen(train, augment_and_pad(), batch_size=8, shuffle="samples", seed=0)
x, y, weights = train_datagen.get()  # the current slice, without moving the cursor
print("one training slice:", shapes(x))
print("its labels:", shapes(y), "weights:", shapes(weights))
shortest = int(weights["seg"].sum(axis=1).min())  # real points of the slice's shortest cloud
padded = weights["seg"].shape[1]
print(f"seg weights of its shortest cloud: 1 on {shortest} points, 0 on {padded - shortest}")
real_shadow = np.any(x["shadow_points"] != 0, axis=-1).sum(axis=1)  # rows before the padding
print(
    f"padded to: points {padded} (its longest cloud), shadow {x['shadow_points'].shape[1]} "
    f"(its longest shadow, {int(real_shadow.max())} points)"
)

# %% [markdown]
# ## Train
#
# Validation pads its batches alike (no augmentation); evaluate mode weighs every real
# point once in `seg_accuracy` and every cloud once in `cls_accuracy`, as `model.evaluate`
# does.

# %%
keras.utils.set_random_seed(0)  # before building: reproducible initial weights
model = build_model()
tg = TrainGenerator(
    model,
    train_datagen,
    datagen(val, pad(), batch_size=16),
    epochs=8 if SMALL else 10,
    key_metric="seg_accuracy",
    iter_verbosity=0,
)
tg.train()
first, last = np.mean(tg.history["loss"][:3]), np.mean(tg.history["loss"][-3:])
print(f"train loss, first 3 batches {first:.2f} -> last 3 {last:.2f}")
for name in ("cls_accuracy", "seg_accuracy"):
    print(f"val {name} per epoch:", np.round(tg.val_history[name], 2).tolist())
assert last < 0.5 * first
assert tg.val_history["seg_accuracy"][-1] > 0.9 and tg.val_history["cls_accuracy"][-1] > 0.8

# %% [markdown]
# ## Predictions, one per cloud and one per point at each cloud's length
#
# `test_datagen` is built by the training recipe: it shuffles and augments, so
# predicting on it would give rows in another order each epoch and augmented clouds
# (`tg.predict` warns and names the fix). `test_datagen.for_prediction()` serves the same
# clouds in sample order with each preprocessor's prediction form: the random augmenters
# drop out and the padding stays. `tg.predict` passes each slice's outputs through
# `PadPreprocessor.post_process`, which cuts `seg` (its labels were padded) back to each
# cloud's length and leaves `cls` whole: `result.predictions["seg"]` is a list with one
# `(n_i, 3)` array per cloud, `result.predictions["cls"]` one `(clouds, 3)` array.

# %%
test_datagen = datagen(test, augment_and_pad(), batch_size=4, shuffle="samples", seed=1)
view = test_datagen.for_prediction()
print("for_prediction():", f"shuffle={view.shuffle},", type(view.preprocessor).__name__)
result = tg.predict(view)
per_cloud, per_point = result.predictions["cls"], result.predictions["seg"]
lengths = [len(p) for p in per_point]
print(f"tg.predict: cls {per_cloud.shape}, seg {len(per_point)} clouds, lengths {lengths[:6]} ...")
print(f"lengths equal the clouds' own: {lengths == [len(c) for c in test['points']]}")
assert lengths == [len(c) for c in test["points"]]

# The model on each cloud alone: a batch of one, unpadded, not augmented, with the
# shadow taken here once more (every 4th point).
alone = [
    model.predict_on_batch(
        {
            "points": p[None],
            "features": f[None],
            "shadow_points": p[None, ::SHADOW_STEP],
            "shadow_features": f[None, ::SHADOW_STEP],
        }
    )
    for p, f in zip(test["points"], test["features"])
]
cls_difference = max(float(np.max(np.abs(a["cls"][0] - b))) for a, b in zip(alone, per_cloud))
seg_difference = max(float(np.max(np.abs(a["seg"][0] - b))) for a, b in zip(alone, per_point))
# Equal up to rounding: a padded batch may sum in another order than one cloud alone.
print(f"cls and seg equal the model on each cloud alone within 1e-5: "
      f"{max(cls_difference, seg_difference) < 1e-5}")  # fmt: skip
assert max(cls_difference, seg_difference) < 1e-5

cls_accuracy = float(np.mean(per_cloud.argmax(axis=-1) == test["cls"]))
decided = np.concatenate([p.argmax(axis=-1) for p in per_point])
seg_accuracy = float(np.mean(decided == np.concatenate(test["seg"])))
print(f"test accuracy: per cloud {cls_accuracy:.2f} over {len(per_cloud)} clouds, "
      f"per point {seg_accuracy:.2f} over {len(decided)} points")  # fmt: skip
assert cls_accuracy > 0.8 and seg_accuracy > 0.9

# Kept for tests/examples/test_09_point_clouds.py, which checks them once more.
model.save(OUT / "model.keras")
np.savez(
    OUT / "test_predictions.npz",
    cloud_lengths=[len(c) for c in test["points"]],
    points=np.concatenate(test["points"]),
    features=np.concatenate(test["features"]),
    cls_labels=test["cls"],
    seg_labels=np.concatenate(test["seg"]),
    cls=per_cloud,
    seg_lengths=lengths,
    seg=np.concatenate(per_point),
)

# %% [markdown]
# ## What the model sees
#
# Seen from the side, each point at its distance `r` from the z axis and its height `z`,
# the parts are the regions above `z = r` and below `z = -r`: the model's decisions on
# a few test clouds follow those two lines, and what it gets wrong lies close to them.

# %%
from matplotlib.figure import Figure

shown = slice(0, 4)
xyz = np.concatenate(test["points"][shown])
r, z = np.hypot(xyz[:, 0], xyz[:, 1]), xyz[:, 2]
truth = np.concatenate(test["seg"][shown])
predicted = np.concatenate([p.argmax(axis=-1) for p in per_point[shown]])
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
