"""trainkit.introspection: gradient norms, weight health, layer outputs, the log, the panel."""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest
import tensorflow as tf
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image

from trainkit.introspection import (
    IntrospectionLog,
    draw_gradient_norms,
    gradient_norms,
    layer_outputs,
    read_introspection,
    snapshot,
    weight_health,
)
from trainkit.reports import plot_history


def regularized_model():
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((4,)),
            keras.layers.Dense(
                5, "tanh", kernel_regularizer=keras.regularizers.L2(0.1), name="hidden"
            ),
            keras.layers.Dense(3, name="logits"),
        ],
        name="net",
    )
    model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


def two_output_model():
    keras.utils.set_random_seed(1)
    a, b = keras.Input((3,), name="a"), keras.Input((2,), name="b")
    hidden = keras.layers.Dense(4, activation="relu")(keras.layers.Concatenate()([a, b]))
    first = keras.layers.Dense(1, name="first")(hidden)
    second = keras.layers.Dense(2, name="second")(hidden)
    model = keras.Model({"a": a, "b": b}, [first, second])
    model.compile("sgd", loss=["mse", "mae"], loss_weights=[0.5, 2.0])
    return model


def dropout_model():
    keras.utils.set_random_seed(2)
    model = keras.Sequential(
        [
            keras.Input((4,)),
            keras.layers.Dense(6, name="hidden"),
            keras.layers.BatchNormalization(name="norm"),
            keras.layers.Dropout(0.5, name="dropout"),
            keras.layers.Dense(1, name="out"),
        ],
        name="net",
    )
    model.compile("sgd", "mse")
    return model


def tape_norms(model, loss_fn, x, training=True):
    with tf.GradientTape() as tape:
        loss = loss_fn(model(x, training=training)) + sum(model.losses)
    grads = tape.gradient(loss, model.trainable_variables)
    return {
        v.path: float(np.linalg.norm(g.numpy())) for v, g in zip(model.trainable_variables, grads)
    }


def assert_norms_equal(found, expected):
    assert list(found) == list(expected)
    np.testing.assert_allclose(list(found.values()), list(expected.values()), rtol=1e-5)


def test_gradient_norms_equal_a_manual_tape_over_the_loss_and_its_regularizer():
    model = regularized_model()
    rng = np.random.default_rng(0)
    x, y = rng.random((6, 4), dtype=np.float32), rng.integers(0, 3, 6)
    weights = np.array([1, 0, 2, 1, 1, 3], dtype=np.float32)
    cross_entropy = keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    expected = tape_norms(model, lambda pred: cross_entropy(y, pred, sample_weight=weights), x)
    found = gradient_norms(model, x, y, sample_weight=weights)

    assert list(found) == [
        "net/hidden/kernel",
        "net/hidden/bias",
        "net/logits/kernel",
        "net/logits/bias",
    ]
    assert_norms_equal(found, expected)
    assert all(value > 0 for value in found.values())


def test_gradient_norms_take_dict_inputs_and_weight_several_outputs_as_compiled():
    model = two_output_model()
    rng = np.random.default_rng(1)
    x = {"a": rng.random((5, 3), dtype=np.float32), "b": rng.random((5, 2), dtype=np.float32)}
    y = [rng.random((5, 1), dtype=np.float32), rng.random((5, 2), dtype=np.float32)]

    def loss(pred):
        mse = keras.losses.MeanSquaredError()(y[0], pred[0])
        return 0.5 * mse + 2.0 * keras.losses.MeanAbsoluteError()(y[1], pred[1])

    assert_norms_equal(gradient_norms(model, x, y), tape_norms(model, loss, x))


def test_gradient_norms_leave_moving_statistics_and_dropout_seeds_as_they_were():
    model = dropout_model()
    rng = np.random.default_rng(2)
    x, y = rng.random((8, 4), dtype=np.float32), rng.random((8, 1), dtype=np.float32)
    before = [v.numpy().copy() for v in model.non_trainable_variables]

    first = gradient_norms(model, x, y)
    second = gradient_norms(model, x, y)

    for value, variable in zip(before, model.non_trainable_variables):
        np.testing.assert_array_equal(variable.numpy(), value)
    assert first == second  # same seed state, same mask
    mse = keras.losses.MeanSquaredError()
    expected = tape_norms(model, lambda pred: mse(y, pred), x, training=False)
    assert_norms_equal(gradient_norms(model, x, y, training=False), expected)


def test_weight_health_equals_numpy_on_the_weights_with_a_planted_nan_and_zeros():
    model = dropout_model()
    kernel, bias = model.layers[0].kernel, model.layers[0].bias
    planted = kernel.numpy()
    planted[0, 0], planted[1, :] = np.nan, 0.0
    kernel.assign(planted)
    bias.assign(np.full(bias.shape, np.inf, dtype=np.float32))

    health = weight_health(model)

    assert list(health) == [w.path for w in model.weights]  # moving statistics too
    for (path, found), value in zip(health.items(), model.get_weights()):
        value = value.astype(np.float64)
        finite = value[np.isfinite(value)]
        assert found["nonfinite"] == value.size - finite.size, path
        assert found["zero_fraction"] == pytest.approx(np.mean(value == 0)), path
        if finite.size:
            assert found["mean"] == pytest.approx(finite.mean()), path
            assert found["std"] == pytest.approx(finite.std()), path
    assert health["net/hidden/kernel"]["nonfinite"] == 1
    assert health["net/hidden/kernel"]["zero_fraction"] == pytest.approx(6 / 24)
    assert math.isnan(health["net/hidden/bias"]["mean"])
    assert health["net/hidden/bias"]["nonfinite"] == 6


def test_layer_outputs_of_a_sequential_model_equal_running_sub_models():
    model = regularized_model()
    x = np.random.default_rng(3).random((7, 4), dtype=np.float32)

    outputs = layer_outputs(model, x)

    assert {name: a.shape for name, a in outputs.items()} == {"hidden": (7, 5), "logits": (7, 3)}
    for layer in model.layers:
        sub_model = keras.Model(model.inputs[0], layer.output)
        np.testing.assert_allclose(outputs[layer.name], sub_model(x).numpy(), rtol=1e-6)


def test_a_nested_model_is_one_layer_of_layer_outputs():
    keras.utils.set_random_seed(4)
    inner = keras.Sequential(
        [keras.Input((3,)), keras.layers.Dense(4), keras.layers.Dense(2)], name="inner"
    )
    inputs = keras.Input((3,))
    model = keras.Model(inputs, keras.layers.Dense(1, name="head")(inner(inputs)))
    x = np.random.default_rng(4).random((5, 3), dtype=np.float32)

    outputs = layer_outputs(model, x)

    assert list(outputs) == ["inner", "head"]
    np.testing.assert_allclose(outputs["inner"], inner(x).numpy(), rtol=1e-6)
    np.testing.assert_allclose(outputs["head"], model(x).numpy(), rtol=1e-6)


def test_layer_outputs_refuse_a_model_without_known_inputs():
    model = keras.Sequential([keras.layers.Dense(2)])
    with pytest.raises(ValueError, match=r"keras\.Input"):
        layer_outputs(model, np.zeros((1, 3), dtype=np.float32))


def test_the_log_round_trips_snapshots_and_skips_a_torn_last_line(tmp_path):
    model = regularized_model()
    x, y = np.ones((2, 4), dtype=np.float32), np.array([0, 2])
    log = IntrospectionLog(str(tmp_path))
    records = [{"iter": k, "epoch": 0, **snapshot(model, x, y)} for k in (5, 10)]
    records[1]["gradient_norms"]["net/hidden/bias"] = float("nan")
    for record in records:
        log.append(record)
    log.close()
    with open(tmp_path / "introspection.jsonl", "ab") as file:
        file.write(b'{"iter":15,"epoch":0,"gradi')  # a kill in the middle of a write

    found = read_introspection(str(tmp_path))

    assert [r["iter"] for r in found] == [5, 10]
    assert found[0] == records[0]
    assert math.isnan(found[1]["gradient_norms"]["net/hidden/bias"])
    log.truncate(5)
    assert log.read() == [records[0]]


def test_the_log_refuses_a_record_without_an_int_iter(tmp_path):
    with pytest.raises(ValueError, match="iter"):
        IntrospectionLog(str(tmp_path)).append({"epoch": 0})
    assert read_introspection(str(tmp_path)) == []


def gradient_records():
    norms = [{"a": 3.0, "b": 4.0}, {"a": 1.0, "b": 0.5}, {"a": float("inf"), "b": 1.0}]
    return [{"iter": 5 * (k + 1), "gradient_norms": n} for k, n in enumerate(norms)]


def test_the_panel_draws_the_global_and_largest_norms_on_an_agg_canvas():
    fig = Figure()
    FigureCanvasAgg(fig)
    ax = fig.subplots()

    draw_gradient_norms(ax, gradient_records())
    fig.canvas.draw()

    global_line, largest_line = ax.get_lines()[:2]
    assert list(global_line.get_xdata()) == [5, 10]
    np.testing.assert_allclose(global_line.get_ydata(), [5.0, math.sqrt(1.25)])
    assert list(largest_line.get_ydata()) == [4.0, 1.0]
    assert ax.get_yscale() == "log"
    assert "non-finite gradient" in [t.get_text() for t in ax.get_legend().get_texts()]


def draw(path, **kwargs):
    history = {"loss": [1.0, 0.8, 0.6]}
    return plot_history(
        str(path), history, {}, val_batches=[], epoch_batches=[3], key_metric="loss",
        best_index=None, **kwargs,
    )  # fmt: skip


def test_history_png_is_unchanged_without_records_and_gains_a_panel_with_them(tmp_path):
    plain = draw(tmp_path / "plain.png")
    empty = draw(tmp_path / "empty.png", introspection=[])
    with_panel = draw(tmp_path / "panel.png", introspection=gradient_records())

    with open(plain, "rb") as first, open(empty, "rb") as second:
        assert first.read() == second.read()
    assert Image.open(with_panel).height == 2 * Image.open(plain).height


def test_layer_outputs_take_dict_inputs_and_give_each_output_layer():
    model = two_output_model()
    rng = np.random.default_rng(5)
    x = {"a": rng.random((4, 3), dtype=np.float32), "b": rng.random((4, 2), dtype=np.float32)}

    outputs = layer_outputs(model, x)

    first, second = model(x)
    assert "a" not in outputs and "b" not in outputs  # input layers are left out
    np.testing.assert_allclose(outputs["first"], first.numpy(), rtol=1e-6)
    np.testing.assert_allclose(outputs["second"], second.numpy(), rtol=1e-6)
