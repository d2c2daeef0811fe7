"""Per-point segmentation of generated, ragged point clouds with augmentation and padding.

Run: `python examples/point_clouds.py [--small]` (no network needed; `--small` trains
a few seconds on fewer clouds). Each cloud has 40 to 120 points and two inputs,
`{'points': (n, 3) coordinates, 'features': (n, 1) intensity}`. Each point belongs to
one of three parts: the cone above the origin around the z axis (`z > r`, with `r` the
distance to the axis), the cone below it (`z < -r`) or the rest (`|z| < r`). Its
intensity hints at the part, noisily.

Training augments the coordinates with a rotation about the z axis, jitter and a
scale about the origin. None of them can change a label: the rotation keeps every
point's `z` and `r`, a positive scale keeps the sign of `|z| - r`, and no point lies
within 0.05 of a cone's surface (`||z| - r| >= 0.05`), which jitter clipped to 0.02 per
coordinate cannot cross (it moves `|z| - r` by at most 0.02 * (1 + sqrt(2)) < 0.05).
`PadPreprocessor` then pads the clouds to one length, with sample weights that are 0 on
the padding.

The model is applied to each point on its own (no pooling over points), so a point's
prediction does not depend on the padding or on the other clouds in its batch:
`tg.predict` on padded test batches, cut back to each cloud's length by the
preprocessor's `post_process`, equals the model called on each cloud alone.
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import math

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

MAX_POINTS = 120  # clouds have 40..MAX_POINTS points; also the pad length
MARGIN = 0.05  # no point lies closer to a cone's surface: jitter cannot change a label
PARTS = 3  # 0: outside the cones, 1: the cone above the origin, 2: the cone below


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


def build_model() -> keras.Model:
    # Shape (None, ...): any number of points, so one cloud alone fits the model too.
    points = keras.Input((None, 3), name="points")
    features = keras.Input((None, 1), name="features")
    h = keras.layers.Concatenate()([points, features])
    h = keras.layers.Dense(32, activation="relu")(h)  # Dense acts on the last axis: per point
    h = keras.layers.Dense(32, activation="relu")(h)
    outputs = keras.layers.Dense(PARTS, activation="softmax")(h)  # (clouds, points, 3)
    model = keras.Model({"points": points, "features": features}, outputs)
    # weighted_metrics: Keras passes the sample weights (0 on padding) to these only.
    model.compile(
        keras.optimizers.Adam(1e-2),
        "sparse_categorical_crossentropy",
        weighted_metrics=["accuracy"],
    )
    return model


def pad() -> PadPreprocessor:
    # A fixed length gives every batch one shape, so the compiled step is traced once
    # instead of once per batch's longest cloud.
    return PadPreprocessor(length=MAX_POINTS, keys=["points", "features"])


def augment_and_pad() -> Chain:
    # Augmenters first, so they see the real points only; keys= spares the intensities.
    return Chain(
        RandomRotationPreprocessor(axis="z", max_angle=math.pi, keys="points"),
        JitterPreprocessor(sigma=0.01, clip=0.02, keys="points"),
        RandomScalePreprocessor(low=0.8, high=1.2, keys="points"),
        pad(),
    )


def datagen(clouds: tuple[list, list, list], preprocessor, **kwargs) -> DataGenerator:
    points, features, labels = clouds
    return DataGenerator(
        data={"points": points, "features": features},
        labels=labels,
        preprocessor=preprocessor,
        **kwargs,
    )


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description="Segment generated point clouds per point.")
    parser.add_argument("--small", action="store_true", help="few clouds, a few seconds")
    args = parser.parse_args(argv)
    counts, epochs = ((48, 16, 12), 8) if args.small else ((480, 96, 96), 10)

    rng = np.random.default_rng(0)
    train, val, test = (make_clouds(count, rng) for count in counts)
    keras.utils.set_random_seed(0)  # before building: reproducible initial weights
    model = build_model()
    tg = TrainGenerator(
        model,
        datagen(train, augment_and_pad(), batch_size=8, shuffle="samples", seed=0),
        datagen(val, pad(), batch_size=16),
        epochs=epochs,
        key_metric="accuracy",
        iter_verbosity=0,
        logs_dir=None,
    )
    tg.train()
    val_accuracy = np.round(tg.val_history["accuracy"], 3).tolist()
    first, last = np.mean(tg.history["loss"][:3]), np.mean(tg.history["loss"][-3:])
    print(f"train loss, first 3 batches {first:.3f} -> last 3 {last:.3f}")
    print("val accuracy per epoch:", val_accuracy)

    # Test clouds are padded but not augmented; post_process cuts the padding off.
    # Not shuffled, so the rows come in the clouds' order (else: result.in_sample_order()).
    result = tg.predict(datagen(test, pad(), batch_size=5))
    per_cloud = result.predictions  # a list: one (n_i, 3) array per cloud
    points, features, labels = test
    lengths_match = [len(p) for p in per_cloud] == [len(c) for c in points]
    print(f"tg.predict: {len(per_cloud)} clouds, lengths {[len(p) for p in per_cloud][:6]} ...")
    print(f"lengths equal the clouds' own: {lengths_match}")

    # The model on each cloud alone: a batch of one, unpadded.
    alone = [
        model.predict({"points": p[None], "features": f[None]}, verbose=0)[0]
        for p, f in zip(points, features)
    ]
    difference = max(float(np.max(np.abs(a - b))) for a, b in zip(per_cloud, alone))
    # Equal up to rounding: a padded batch and a single cloud may differ in the last bits.
    print(f"max |tg.predict - model.predict(cloud alone)|: {difference:.2e}")
    decided = np.concatenate([p.argmax(axis=-1) for p in per_cloud])
    accuracy = float(np.mean(decided == np.concatenate(labels)))
    print(f"per-point test accuracy: {accuracy:.3f} over {len(decided)} points")
    if not lengths_match or difference > 1e-5 or accuracy < 0.9:
        raise SystemExit("point-cloud segmentation should reach 90% per-point accuracy")
    return {
        "tg": tg,
        "predictions": per_cloud,
        "alone": alone,
        "test": test,
        "accuracy": accuracy,
    }


if __name__ == "__main__":
    main()
