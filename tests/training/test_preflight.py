"""Mistakes a first slice shows are refused when the trainer is built, before any step."""

import random

import keras
import numpy as np
import pytest
from training_helpers import dense_arrays, dense_model, lstm_model, series_datagen

from trainkit import DataGenerator, TrainGenerator
from trainkit.training.construction import preflight
from trainkit.training.evaluation.logged_names import logged_names
from trainkit.training.slices.steps import CompiledStep


def softmax_model(features=8, classes=3, loss="sparse_categorical_crossentropy", metrics=None):
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((features,)), keras.layers.Dense(classes, "softmax")])
    model.compile("sgd", loss, metrics=metrics)
    return model


def generators(x, y, val_x=None, val_y=None, batch_size=8):
    train = DataGenerator(data=x, labels=y, batch_size=batch_size)
    if val_x is None:
        return train, None
    return train, DataGenerator(data=val_x, labels=val_y, batch_size=batch_size)


def build(model, datagen, val_datagen=None, **kwargs):
    return TrainGenerator(model, datagen, val_datagen, iter_verbosity=0, **kwargs)


def assert_not_trained(model):
    assert int(model.optimizer.iterations.numpy()) == 0


X, Y = dense_arrays(24)


# ------------------------------------------------------------------ inputs


def test_x_of_the_wrong_shape_is_refused_naming_the_shapes_and_the_input():
    model = dense_model(features=5)
    with pytest.raises(ValueError, match=r"`datagen` serves x of shape \(8, 8\) \(float32\)") as e:
        build(model, *generators(X, Y))
    message = str(e.value)
    assert (
        "expects shape (None, 5)" in message and "Received: datagen.get() x.shape=(8, 8)" in message
    )
    assert_not_trained(model)


def test_x_of_the_wrong_rank_is_refused():
    with pytest.raises(ValueError, match=r"x of shape \(8, 8\).*expects shape \(None, 8, 2\)"):
        build(dense_model_on((8, 2)), *generators(X, Y))


def dense_model_on(shape):
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input(shape), keras.layers.Flatten(), keras.layers.Dense(3)])
    model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


def two_input_model():
    keras.utils.set_random_seed(0)
    a, b = keras.Input((8,), name="a"), keras.Input((2,), name="b")
    out = keras.layers.Dense(3)(keras.layers.Concatenate()([a, b]))
    model = keras.Model([a, b], out)
    model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


def test_one_array_for_a_two_input_model_is_refused_naming_the_inputs():
    with pytest.raises(
        ValueError, match=r"serves one array as x, but the model has 2 inputs \('a', 'b'\)"
    ):
        build(two_input_model(), *generators(X, Y))


def test_matching_inputs_pass_and_a_none_dimension_matches_any_size():
    build(dense_model(), *generators(X, Y, X[:8], Y[:8]))
    keras.utils.set_random_seed(0)
    pooled = [keras.Input((None, 2)), keras.layers.GlobalAveragePooling1D(), keras.layers.Dense(3)]
    model = keras.Sequential(pooled)
    model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    build(model, *generators(X.reshape(24, 4, 2), Y))


@pytest.mark.parametrize(("x_shape", "input_shape"), [((24,), (1,)), ((24, 8, 1), (8,))])
def test_a_trailing_dimension_of_one_is_adjusted_as_keras_does(x_shape, input_shape):
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input(input_shape), keras.layers.Dense(3)])
    model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x = np.random.default_rng(0).random(x_shape, dtype=np.float32)
    build(model, *generators(x, Y)).train()


# ------------------------------------------------------------------ labels


def test_missing_labels_are_refused_suggesting_labels_or_input_as_labels():
    model = dense_model()
    with pytest.raises(ValueError, match="`datagen` serves no labels") as e:
        build(model, DataGenerator(data=X, batch_size=8))
    assert "`labels=`" in str(e.value) and "`labels_path=`" in str(e.value)
    assert "input_as_labels=True" in str(e.value)


def test_an_autoencoder_without_labels_passes_with_input_as_labels():
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(8)])
    model.compile("sgd", "mse")
    build(model, DataGenerator(data=X, batch_size=8), input_as_labels=True)


@pytest.mark.parametrize("eval_fn", ["evaluate", "predict"])
def test_a_validation_generator_without_labels_is_refused(eval_fn):
    train, _ = generators(X, Y)
    with pytest.raises(ValueError, match="`val_datagen` serves no labels"):
        build(dense_model(), train, DataGenerator(data=X[:8], batch_size=8), eval_fn=eval_fn)


@pytest.mark.parametrize("bad", [3, -1])
def test_sparse_labels_out_of_the_output_range_are_refused(bad):
    labels = Y.copy()
    labels[5] = bad
    model = softmax_model()
    with pytest.raises(ValueError, match=rf"labels from {min(bad, 0)} to {max(bad, 2)}.*\[0, 2\]"):
        build(model, *generators(X, labels))
    with pytest.raises(ValueError, match="`val_datagen` serves labels"):
        build(model, *generators(X, Y, X[:8], labels[:8]))


def test_an_ignored_class_is_not_out_of_range():
    labels = Y.copy()
    labels[5] = -1
    model = softmax_model(loss=keras.losses.SparseCategoricalCrossentropy(ignore_class=-1))
    build(model, *generators(X, labels))


# ------------------------------------------------------------------ metrics


@pytest.mark.parametrize(
    ("kwargs", "suggested"),
    [
        ({"val_metrics": ["loss", "f1"], "key_metric": "f1"}, "'f1_macro'"),
        ({"key_metric": "precision"}, "'precision_macro'"),
        ({"val_metrics": ["loss", "tnr", "binary_accuracy"]}, "'balanced_accuracy'"),
    ],
)
def test_a_binary_metric_of_a_multiclass_model_is_refused_suggesting_averages(kwargs, suggested):
    model = softmax_model()
    with pytest.raises(ValueError, match=r"binary .* but the model is multi-class") as e:
        build(model, *generators(X, Y, X[:8], Y[:8]), eval_fn="predict", **kwargs)
    assert suggested in str(e.value) and "3 output units" in str(e.value)


def test_binary_metrics_of_binary_and_two_unit_models_pass():
    binary = (Y > 0).astype("float32")
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(1, "sigmoid")])
    model.compile("sgd", "binary_crossentropy")
    build(model, *generators(X, binary, X[:8], binary[:8]), eval_fn="predict", key_metric="f1")
    two = softmax_model(classes=2)
    labels = (Y > 0).astype(int)
    build(two, *generators(X, labels, X[:8], labels[:8]), eval_fn="predict", key_metric="f1")


def test_a_key_metric_typo_is_refused_before_training_with_a_suggestion():
    model = softmax_model(metrics=["accuracy"])
    with pytest.raises(
        ValueError, match=r"key_metric='acuracy' is not among.*'loss', 'accuracy'"
    ) as e:
        build(model, *generators(X, Y, X[:8], Y[:8]), key_metric="acuracy", max_is_best=True)
    assert "Did you mean 'accuracy'?" in str(e.value)
    assert_not_trained(model)
    build(model, *generators(X, Y, X[:8], Y[:8]), key_metric="accuracy")


def my_metric(y_true, y_pred):
    return keras.ops.mean(y_pred)


@pytest.mark.parametrize(
    ("metrics", "weighted"),
    [
        (None, None),
        (["accuracy"], None),
        (["acc", "mae"], None),
        ([keras.metrics.CategoricalAccuracy(name="hits")], None),
        (["accuracy", "accuracy"], None),
        ([my_metric, keras.metrics.mean_squared_error], None),
        ([["accuracy", "mae"]], None),
        (["mae"], ["mae", "accuracy"]),
    ],
)
def test_logged_names_equal_what_the_test_step_returns(metrics, weighted):
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(3, "softmax")])
    model.compile("sgd", "categorical_crossentropy", metrics=metrics, weighted_metrics=weighted)
    predicted = logged_names(model)
    one_hot = np.eye(3, dtype="float32")[Y[:8]]
    assert predicted == list(CompiledStep(model, "test")(X[:8], one_hot))


def test_logged_names_are_unknown_for_a_custom_test_step():
    class Custom(keras.Model):
        def test_step(self, data):
            return {"custom": 0.0}

    inputs = keras.Input((8,))
    model = Custom(inputs, keras.layers.Dense(3)(inputs))
    model.compile("sgd", "mse")
    assert logged_names(model) is None


class SubclassedTestStep(keras.Model):
    def test_step(self, data):
        return super().test_step(data)


def test_names_unknown_in_advance_are_left_to_the_check_at_the_first_validation():
    keras.utils.set_random_seed(0)
    inputs = keras.Input((8,))
    model = SubclassedTestStep(inputs, keras.layers.Dense(3)(inputs))
    model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    tg = build(model, *generators(X, Y, X[:8], Y[:8]), key_metric="lose", max_is_best=False)
    with pytest.raises(ValueError, match="key_metric='lose' is not among the validation metrics"):
        tg.train()


# ------------------------------------------------------------------ stateful


def test_a_stateful_model_with_another_validation_batch_size_is_refused():
    model = lstm_model(batch_size=4)
    with pytest.raises(ValueError, match=r"fixed at 4 \(stateful layers: lstm.*`val_datagen`") as e:
        build(model, series_datagen(), series_datagen(batch_size=2), reset_statefuls=True)
    assert "batch_size=4" in str(e.value) and "Received: val_datagen.batch_size=2" in str(e.value)
    with pytest.raises(ValueError, match=r"fixed at 4 .* `datagen` serves batches of 8"):
        build(model, series_datagen(batch_size=8), reset_statefuls=True)


# ------------------------------------------------------------------ neutral


def test_the_checks_leave_generators_model_and_random_states_untouched():
    datagen, val_datagen = generators(X, Y, X[:8], Y[:8])
    model = dense_model()
    settings = build(model, *generators(X, Y))._val
    before = (datagen.state_dict(), val_datagen.state_dict(), np.random.get_state()[1].copy())
    python_state = random.getstate()
    weights = [v.numpy() for v in model.variables]
    preflight.check_before_training(model, datagen, val_datagen, settings, "loss", False)
    assert datagen.state_dict() == before[0] and val_datagen.state_dict() == before[1]
    np.testing.assert_array_equal(np.random.get_state()[1], before[2])
    assert random.getstate() == python_state
    for variable, value in zip(model.variables, weights, strict=True):
        np.testing.assert_array_equal(variable.numpy(), value)


def dropout_model():
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [keras.Input((8,)), keras.layers.Dropout(0.3), keras.layers.Dense(3, "softmax")]
    )
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def trained_weights(monkeypatch, with_checks):
    if not with_checks:
        monkeypatch.setattr(preflight, "check_before_training", lambda *args, **kwargs: None)
    model = dropout_model()
    datagen = DataGenerator(data=X, labels=Y, batch_size=8, shuffle=True, seed=1)
    build(model, datagen, DataGenerator(data=X[:8], labels=Y[:8], batch_size=4), epochs=2).train()
    return [v.numpy() for v in model.variables]


def test_training_after_the_checks_is_bitwise_equal_to_training_without_them(monkeypatch):
    checked = trained_weights(monkeypatch, with_checks=True)
    unchecked = trained_weights(monkeypatch, with_checks=False)
    for a, b in zip(checked, unchecked, strict=True):
        np.testing.assert_array_equal(a, b)


def test_messages_show_shapes_never_arrays():
    big = np.random.default_rng(0).random((64, 300), dtype=np.float32)
    with pytest.raises(ValueError) as e:
        build(dense_model(), DataGenerator(data=big, labels=np.zeros(64, int), batch_size=32))
    assert len(str(e.value)) < 600 and "(32, 300)" in str(e.value)


def test_a_key_metric_typo_is_named_as_a_typo_before_its_direction_is_asked():
    model = softmax_model(metrics=["accuracy"])
    with pytest.raises(ValueError, match="Did you mean 'accuracy'"):
        build(model, *generators(X, Y % 3, X, Y % 3), key_metric="acuracy")  # no max_is_best
    assert_not_trained(model)
