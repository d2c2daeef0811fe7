"""Model state: every value needed to continue bitwise, restored by assignment."""

import keras
import numpy as np
import pytest

from trainkit.checkpoints import model_state
from trainkit.training.slices.steps import stateful_layers


def build(seed=0):
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((6, 3), batch_size=4)
    h = keras.layers.LSTM(5, stateful=True, return_sequences=False)(inputs)
    h = keras.layers.Dropout(0.3)(h)
    model = keras.Model(inputs, keras.layers.Dense(1)(h))
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="mse", metrics=["mae"])
    return model


def steps(model, x, y, n):
    for k in range(n):
        model.train_on_batch(x[k % 2], y[k % 2])


def test_restoring_captured_state_continues_bitwise():
    rng = np.random.default_rng(0)
    x = rng.random((2, 4, 6, 3), dtype=np.float32)
    y = rng.random((2, 4, 1), dtype=np.float32)
    reference = build()
    steps(reference, x, y, 3)
    arrays, paths = model_state.capture(reference)
    assert any(p.endswith("seed_generator_state") for p in paths["model"])
    assert len(paths["rnn_states"]) == 2
    steps(reference, x, y, 3)

    resumed = build(seed=123)  # other initial weights, other seed states
    model_state.restore(resumed, arrays, paths, sample=(x[0], y[0]))
    steps(resumed, x, y, 3)
    for a, b in zip(reference.get_weights(), resumed.get_weights(), strict=True):
        assert np.array_equal(a, b)


def test_restoring_into_another_architecture_names_the_mismatch():
    model = build()
    model.predict(np.zeros((4, 6, 3)), verbose=0)
    arrays, paths = model_state.capture(model)
    keras.utils.set_random_seed(0)
    other = keras.Sequential(
        [
            keras.Input((6, 3), batch_size=4),
            keras.layers.LSTM(5, stateful=True),
            keras.layers.Dropout(0.3),
            keras.layers.Dense(2),
        ]
    )
    other.compile(optimizer=keras.optimizers.Adam(1e-2), loss="mse", metrics=["mae"])
    other.predict(np.zeros((4, 6, 3)), verbose=0)
    with pytest.raises(ValueError, match="saved with shape"):
        model_state.restore(other, arrays, paths)


def test_stateful_layers_are_found_inside_nested_models_and_bidirectional():
    inner = keras.Sequential(
        [
            keras.Input((4, 2), batch_size=2),
            keras.layers.GRU(3, stateful=True, return_sequences=True),
        ]
    )
    inputs = keras.Input((4, 2), batch_size=2)
    h = inner(inputs)
    h = keras.layers.Bidirectional(keras.layers.LSTM(2, stateful=True))(h)
    model = keras.Model(inputs, h)
    names = sorted(type(layer).__name__ for layer in stateful_layers(model))
    assert names == ["Bidirectional", "GRU"]
    assert len(model_state._rnn_states(model)) == 1 + 2 * 2  # GRU: 1, LSTM: 2 per direction
