"""Ragged point clouds through the whole trainer: padding changes nothing, and
`tg.predict` gives each cloud back at its own length, equal to the model on that cloud."""

import keras
import numpy as np
import pytest

from trainkit import (
    Chain,
    DataGenerator,
    JitterPreprocessor,
    PadPreprocessor,
    RandomRotationPreprocessor,
    TrainGenerator,
)

LENGTH = 12  # one padded length: one traced step


def clouds(n=24, seed=0):
    rng = np.random.default_rng(seed)
    points = [rng.normal(size=(k, 3)).astype("float32") for k in rng.integers(4, LENGTH, n)]
    features = [rng.random((len(p), 1), dtype=np.float32) for p in points]
    # One label per point, (k, 1), kept by rotation about z: the loss is per point.
    labels = [(p[:, 2:] > 0).astype("float32") for p in points]
    return {"points": points, "features": features}, labels


def per_point_model(seed=0):
    keras.utils.set_random_seed(seed)
    points = keras.Input((None, 3), name="points")
    features = keras.Input((None, 1), name="features")
    hidden = keras.layers.Dense(8, activation="relu")(
        keras.layers.Concatenate()([points, features])
    )
    outputs = keras.layers.Dense(1, activation="sigmoid")(hidden)
    model = keras.Model({"points": points, "features": features}, outputs)
    model.compile(keras.optimizers.Adam(0.05), "binary_crossentropy")
    return model


def trainer(pad_value, augment=True, **kwargs):
    x, y = clouds()
    pad = PadPreprocessor(pad_value=pad_value, length=LENGTH)
    steps = [RandomRotationPreprocessor("z", np.pi, keys=["points"])] if augment else []
    if augment:
        steps.append(JitterPreprocessor(0.01, 0.03, keys=["points"]))
    datagen = DataGenerator(
        data=x, labels=y, batch_size=6, shuffle="samples", seed=1,
        preprocessor=Chain(*steps, pad) if steps else pad,
    )  # fmt: skip
    return TrainGenerator(
        per_point_model(), datagen, epochs=3, iter_verbosity=0, checkpoint_freq=None, **kwargs
    )


@pytest.fixture(scope="module")
def trained():
    tg = trainer(0.0)
    tg.train()
    return tg


def test_two_pad_values_train_the_same_weights(trained):
    other = trainer(-7.5, steps_per_execution=4)
    other.train()
    for a, b in zip(trained.model.get_weights(), other.model.get_weights(), strict=True):
        assert np.array_equal(a, b)
    assert trained.history["loss"][-1] < trained.history["loss"][0]


def test_predict_gives_each_cloud_at_its_length_equal_to_the_model_alone(trained):
    x, y = clouds(n=10, seed=5)
    test = DataGenerator(data=x, labels=y, batch_size=4, shuffle="samples", seed=2,
                         preprocessor=PadPreprocessor(length=LENGTH))  # fmt: skip
    result = trained.predict(test).in_sample_order()
    assert len(result.predictions) == 10
    for k, cloud in enumerate(result.predictions):
        assert cloud.shape == (len(x["points"][k]), 1)
        alone = trained.model.predict_on_batch(
            {"points": x["points"][k][None], "features": x["features"][k][None]}
        )[0]
        np.testing.assert_allclose(cloud, alone, rtol=1e-5, atol=1e-6)
