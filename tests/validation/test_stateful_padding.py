"""`pad_val_batches=True`: a stateful model scores every validation sample, exactly."""

import keras
import numpy as np
import pytest

from trainkit import DataGenerator, TrainGenerator
from trainkit.training.evaluation import padding

BATCH, TIMESTEPS = 8, 3
VAL_SAMPLES = 175  # 21 full batches of 8 and one of 7: drop_remainder would score 168


def series(n, seed):
    rng = np.random.default_rng(seed)
    x = rng.random((n, TIMESTEPS, 1), dtype=np.float32)
    return x, (x.sum(axis=(1, 2)) + 0.1 * rng.normal(size=n)).astype("float32")[:, None]


X_TRAIN, Y_TRAIN = series(16, seed=0)
X_VAL, Y_VAL = series(VAL_SAMPLES, seed=1)


def lstm(stateful=True):
    keras.utils.set_random_seed(0)
    shape = {"batch_shape": (BATCH, TIMESTEPS, 1)} if stateful else {"shape": (TIMESTEPS, 1)}
    model = keras.Sequential(
        [keras.Input(**shape), keras.layers.LSTM(2, stateful=stateful), keras.layers.Dense(1)]
    )
    model.compile(keras.optimizers.SGD(0.05), "mse", metrics=["mae"])
    return model


def val_datagen(**kwargs):
    return DataGenerator(data=X_VAL, labels=Y_VAL, batch_size=BATCH, **kwargs)


def trainer(model, val=None, **kwargs):
    train = DataGenerator(data=X_TRAIN, labels=Y_TRAIN, batch_size=BATCH)
    return TrainGenerator(
        model, train, val if val is not None else val_datagen(), reset_statefuls=True,
        iter_verbosity=0, **kwargs,
    )  # fmt: skip


def unpadded_reference(model):
    """The same weights without a fixed batch size, on all the validation samples."""
    plain = lstm(stateful=False)
    plain.set_weights(model.get_weights())
    predictions = plain.predict(X_VAL, batch_size=VAL_SAMPLES, verbose=0)
    errors = predictions - Y_VAL
    return predictions, {"mse": float(np.mean(errors**2)), "mae": float(np.mean(np.abs(errors)))}


def test_without_the_option_a_partial_validation_batch_is_refused_pointing_to_it():
    with pytest.raises(ValueError, match=r"partial batch of 7 samples.*pad_val_batches=True"):
        trainer(lstm())


def test_training_batches_must_still_be_full_with_the_option():
    train = DataGenerator(data=X_TRAIN[:12], labels=Y_TRAIN[:12], batch_size=BATCH)
    with pytest.raises(ValueError, match="`datagen` serves a partial batch of 4"):
        TrainGenerator(lstm(), train, val_datagen(), pad_val_batches=True, reset_statefuls=True)


def test_evaluate_mode_scores_every_sample_as_the_unpadded_data_would():
    model = lstm()
    tg = trainer(model, pad_val_batches=True)
    tg.train()
    _, expected = unpadded_reference(model)
    assert tg.val_history["loss"][0] == pytest.approx(expected["mse"], rel=1e-5)
    assert tg.val_history["mae"][0] == pytest.approx(expected["mae"], rel=1e-5)
    logs = tg.evaluate(val_datagen())
    assert logs["loss"] == pytest.approx(expected["mse"], rel=1e-5)
    assert logs["mae"] == pytest.approx(expected["mae"], rel=1e-5)


def test_predict_mode_scores_every_sample_and_predict_returns_each_once():
    model = lstm()
    tg = trainer(model, eval_fn="predict", val_metrics=["loss", "mse", "mae"], pad_val_batches=True)
    tg.train()
    predictions, expected = unpadded_reference(model)
    for name in ("mse", "mae"):
        assert tg.val_history[name][0] == pytest.approx(expected[name], rel=1e-5)
    assert tg.val_history["loss"][0] == pytest.approx(expected["mse"], rel=1e-5)
    result = tg.predict(val_datagen())
    assert len(result) == VAL_SAMPLES
    np.testing.assert_array_equal(result.sample_indices, np.arange(VAL_SAMPLES))
    np.testing.assert_allclose(result.predictions, predictions, rtol=1e-5, atol=1e-6)


class CustomTestStep(keras.Sequential):
    def test_step(self, data):
        return super().test_step(data)


def test_with_a_custom_test_step_padding_rows_weigh_zero_and_real_rows_are_scaled():
    calls = []

    def step(x, labels, weights=None):
        calls.append((x, labels, weights))
        return {"loss": 0.0}

    model = CustomTestStep([keras.Input(batch_shape=(BATCH, TIMESTEPS, 1)), keras.layers.Dense(1)])
    x, labels = X_VAL[:3], Y_VAL[:3]
    _, samples = padding.evaluate_slice(step, model, x, labels, np.array([1.0, 2.0, 3.0]), True)
    padded_x, padded_labels, weights = calls[0]
    assert samples == 3 and padded_x.shape == (BATCH, TIMESTEPS, 1) and len(padded_labels) == BATCH
    assert not padded_x[3:].any() and not padded_labels[3:].any()
    # sum(w * l) / 8 over the real rows equals sum(w_real * l) / 3: Keras' default loss.
    np.testing.assert_allclose(weights, [8 / 3, 16 / 3, 8.0, 0, 0, 0, 0, 0])


def test_a_model_without_a_fixed_batch_size_is_not_padded():
    assert padding.fixed_batch_size(lstm(stateful=False)) is None
    assert padding.padded_rows(lstm(stateful=False), X_VAL[:3], True) == 0
    assert padding.padded_rows(lstm(), X_VAL[:3], False) == 0
    assert padding.padded_rows(lstm(), X_VAL[:3], True) == BATCH - 3


def test_padding_a_custom_test_step_with_unweighted_metrics_is_refused_at_construction():
    model = CustomTestStep([keras.Input(batch_shape=(BATCH, TIMESTEPS, 1)), keras.layers.LSTM(
        2, stateful=True), keras.layers.Dense(1)])  # fmt: skip
    model.compile("sgd", "mse", metrics=["mae"])  # plain metrics ignore sample weights
    with pytest.raises(ValueError, match="weighted_metrics"):
        trainer(model, pad_val_batches=True)
    weighted = CustomTestStep([keras.Input(batch_shape=(BATCH, TIMESTEPS, 1)), keras.layers.LSTM(
        2, stateful=True), keras.layers.Dense(1)])  # fmt: skip
    weighted.compile("sgd", "mse", weighted_metrics=["mae"])
    trainer(weighted, pad_val_batches=True)  # weights reach weighted metrics: exact


def test_evaluate_and_predict_refuse_a_partial_batch_for_a_stateful_model_unless_padded():
    tg = trainer(lstm(), pad_val_batches=True)
    plain = trainer(lstm(), val=DataGenerator(data=X_VAL[:16], labels=Y_VAL[:16], batch_size=BATCH))
    for method in (plain.evaluate, plain.predict):
        with pytest.raises(ValueError, match="pad_val_batches=True"):
            method(val_datagen())
    assert len(tg.predict(val_datagen()).predictions) == VAL_SAMPLES
