"""Validation, tg.evaluate and tg.predict on models with several inputs and outputs."""

import keras
import numpy as np
import pytest

from trainkit import DataGenerator, Preprocessor, TimeseriesPreprocessor, TrainGenerator, metrics

RNG = np.random.default_rng(11)
X = RNG.normal(size=(30, 6)).astype("float32")
Y = (X[:, :1] + 0.3 * RNG.normal(size=(30, 1)) > 0).astype("float32")
SERVED = np.linspace(0.5, 1.5, 30).astype("float32")  # sample i weighs SERVED[i]


def second_target(batch):
    return batch[:, :3].sum(axis=1, keepdims=True)


class SplitPreprocessor(Preprocessor):
    """A dense batch -> `({'a', 'b'}, labels per output, weights)` (column 6 indexes SERVED)."""

    def __init__(self, labels_as="dict", weights=True):
        super().__init__()
        self.labels_as, self.weights = labels_as, weights

    def process(self, batch, labels):
        features, index = batch[:, :6], batch[:, 6].astype(int)
        x = {"a": features[:, :4], "b": features[:, 4:]}
        second = second_target(features)
        y = {"out1": labels, "out2": second} if self.labels_as == "dict" else (labels, second)
        return (x, y, SERVED[index]) if self.weights else (x, y)


def indexed(x=X):
    return np.concatenate([x, np.arange(len(x), dtype="float32")[:, None]], axis=1)


def model_of(outputs_as="dict", seed=0):
    keras.utils.set_random_seed(seed)
    a, b = keras.Input((4,), name="a"), keras.Input((2,), name="b")
    hidden = keras.layers.Dense(5, activation="tanh")(keras.layers.Concatenate()([a, b]))
    out1 = keras.layers.Dense(1, activation="sigmoid", name="out1")(hidden)
    out2 = keras.layers.Dense(1, name="out2")(hidden)
    if outputs_as == "dict":
        model = keras.Model({"a": a, "b": b}, {"out1": out1, "out2": out2})
        losses = {"out1": "binary_crossentropy", "out2": "mse"}
        compiled = {"out1": ["accuracy"], "out2": ["mae"]}
    else:
        model = keras.Model([a, b], [out1, out2])
        losses, compiled = ["binary_crossentropy", "mse"], [["accuracy"], ["mae"]]
    model.compile(keras.optimizers.SGD(0.05), loss=losses, metrics=compiled)
    return model


def datagen(shuffle=False, batch_size=8, **kwargs):
    return DataGenerator(
        data=indexed(), labels=Y, batch_size=batch_size, shuffle=shuffle, seed=4,
        preprocessor=SplitPreprocessor(**kwargs),
    )  # fmt: skip


def arrays():
    return {"a": X[:, :4], "b": X[:, 4:]}, {"out1": Y, "out2": second_target(X)}


def trainer(model, **kwargs):
    return TrainGenerator(model, datagen(shuffle=True), datagen(), iter_verbosity=0, **kwargs)


# ------------------------------------------------------------------ evaluate mode


def test_evaluate_mode_records_keras_names_per_output_with_served_weights():
    # Equal batches: Keras' model.evaluate averages its per-output loss trackers over
    # batches without their sizes; trainkit weighs every value by the batch's samples.
    model = model_of()
    tg = trainer(model)
    logs = tg.evaluate(datagen(batch_size=10))
    x, y = arrays()
    expected = model.evaluate(x, y, sample_weight=SERVED, batch_size=10, verbose=0,
                              return_dict=True)  # fmt: skip
    assert set(logs) == set(expected)
    assert {"out1_loss", "out2_loss", "out1_accuracy", "out2_mae"} <= set(logs)
    for name, value in expected.items():
        np.testing.assert_allclose(logs[name], value, rtol=1e-5, err_msg=name)


# ------------------------------------------------------------------ predict mode


def test_predict_mode_scores_every_output_under_output_prefixed_names():
    model = model_of()
    tg = trainer(model, eval_fn="predict", val_metrics=["loss", "out1_f1", "out2_mae", "mse"],
                 key_metric="out1_f1")  # fmt: skip
    logs = tg.evaluate(datagen())
    assert list(logs) == ["loss", "out1_f1", "out2_mae", "out1_mse", "out2_mse"]
    x, y = arrays()
    p = model.predict(x, verbose=0)
    assert logs["out1_f1"] == metrics.f1(y["out1"], p["out1"], sample_weight=SERVED)
    np.testing.assert_allclose(
        logs["out2_mae"], metrics.mae(y["out2"], p["out2"], sample_weight=SERVED), rtol=1e-6
    )
    np.testing.assert_allclose(
        logs["out1_mse"], metrics.mse(y["out1"], p["out1"], sample_weight=SERVED), rtol=1e-6
    )
    expected_loss = model.evaluate(x, y, sample_weight=SERVED, verbose=0, return_dict=True)
    np.testing.assert_allclose(logs["loss"], expected_loss["loss"], rtol=1e-5)


def test_predict_mode_per_output_class_weights_weigh_only_their_output():
    model = model_of()
    tg = trainer(model, eval_fn="predict", val_metrics=["out1_binary_accuracy", "out2_mae"],
                 key_metric="out2_mae", val_class_weights={"out1": {1: 5.0}})  # fmt: skip
    logs = tg.evaluate(datagen())
    x, y = arrays()
    p = model.predict(x, verbose=0)
    out1_weights = SERVED * np.where(Y[:, 0] == 1, 5.0, 1.0).astype("float32")
    np.testing.assert_allclose(
        logs["out1_binary_accuracy"],
        metrics.binary_accuracy(y["out1"], p["out1"], sample_weight=out1_weights),
        rtol=1e-6,
    )
    np.testing.assert_allclose(
        logs["out2_mae"], metrics.mae(y["out2"], p["out2"], sample_weight=SERVED), rtol=1e-6
    )


def test_validation_in_both_modes_runs_inside_training_with_per_output_keys():
    tg = trainer(model_of(), epochs=2, eval_fn="predict", val_metrics=["loss", "out1_roc_auc"],
                 key_metric="out1_roc_auc", dynamic_predict_threshold=True)  # fmt: skip
    tg.train()
    assert set(tg.val_history) == {"loss", "out1_roc_auc", "predict_threshold"}
    assert tg.best_key_metric == max(tg.val_history["out1_roc_auc"])
    evaluate = trainer(model_of(), epochs=1, key_metric="out1_accuracy")
    evaluate.train()
    assert "out1_accuracy" in evaluate.val_history and evaluate.max_is_best


# ------------------------------------------------------------------ tg.predict


@pytest.mark.parametrize("outputs_as", ["dict", "list"])
def test_predict_keeps_the_model_structure_and_in_sample_order_equals_model_predict(outputs_as):
    model = model_of(outputs_as)
    labels_as = "dict" if outputs_as == "dict" else "tuple"
    tg = TrainGenerator(model, datagen(labels_as=labels_as), iter_verbosity=0)
    result = tg.predict(datagen(shuffle=True, batch_size=7, labels_as=labels_as))
    assert not np.array_equal(result.sample_indices, np.arange(30))  # served shuffled
    ordered = result.in_sample_order()
    np.testing.assert_array_equal(ordered.sample_indices, np.arange(30))
    x, y = arrays()
    expected = model.predict(x, verbose=0)
    assert type(ordered.predictions) is type(expected)
    if outputs_as == "dict":
        assert set(ordered.predictions) == {"out1", "out2"}
        pairs = [(ordered.predictions[k], expected[k]) for k in expected]
        np.testing.assert_array_equal(ordered.labels["out2"], y["out2"])
    else:
        pairs = list(zip(ordered.predictions, expected))
        assert isinstance(ordered.labels, tuple)
        np.testing.assert_array_equal(ordered.labels[1], y["out2"])
    for got, want in pairs:
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(ordered.sample_weights, SERVED)
    assert result.predictions is not ordered.predictions  # a copy; the result is unchanged


def test_in_sample_order_keeps_the_slices_of_a_sample_together_in_slice_order():
    series = RNG.random((6, 12, 1)).astype("float32")
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4, 1)), keras.layers.Flatten(), keras.layers.Dense(1)])
    model.compile("sgd", "mse")
    make = lambda: DataGenerator(  # noqa: E731
        data=series, labels=series.mean(axis=(1, 2))[:, None], batch_size=3, shuffle=True,
        preprocessor=TimeseriesPreprocessor(4),
    )  # fmt: skip
    tg = TrainGenerator(model, make(), iter_verbosity=0)
    ordered = tg.predict(make()).in_sample_order()
    np.testing.assert_array_equal(ordered.sample_indices, np.repeat(np.arange(6), 3))
    np.testing.assert_array_equal(ordered.slice_indices, np.tile(np.arange(3), 6))
    windows = series.reshape(6, 3, 4, 1).reshape(18, 4, 1)
    np.testing.assert_allclose(ordered.predictions, model.predict(windows, verbose=0), atol=1e-6)


def test_in_sample_order_refuses_rows_without_a_sample_index():
    class Halve(Preprocessor):
        def process(self, batch, labels):
            return batch[: len(batch) // 2], labels[: len(batch) // 2]

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(1)])
    model.compile("sgd", "mse")
    make = lambda: DataGenerator(data=X, labels=Y, batch_size=8, preprocessor=Halve())  # noqa: E731
    result = TrainGenerator(model, make(), iter_verbosity=0).predict(make())
    with pytest.raises(ValueError, match="sample index"):
        result.in_sample_order()


class Scaled(SplitPreprocessor):
    """post_process multiplies out1 by 10 and cuts out2 into per-sample lists."""

    def post_process(self, predictions, description=None):
        return {"out1": predictions["out1"] * 10, "out2": list(predictions["out2"])}


def test_predict_passes_each_slice_through_post_process_and_validation_does_not():
    model = model_of()
    make = lambda: DataGenerator(  # noqa: E731
        data=indexed(), labels=Y, batch_size=8, shuffle=True, preprocessor=Scaled()
    )
    tg = TrainGenerator(model, make(), make(), iter_verbosity=0, eval_fn="predict",
                        val_metrics=["out2_mae"], key_metric="out2_mae")  # fmt: skip
    ordered = tg.predict(make()).in_sample_order()
    x, y = arrays()
    expected = model.predict(x, verbose=0)
    np.testing.assert_allclose(ordered.predictions["out1"], expected["out1"] * 10, rtol=1e-5)
    assert isinstance(ordered.predictions["out2"], list) and len(ordered.predictions["out2"]) == 30
    np.testing.assert_allclose(np.stack(ordered.predictions["out2"]), expected["out2"], atol=1e-6)
    logs = tg.evaluate(make())  # scores the model's own outputs
    np.testing.assert_allclose(
        logs["out2_mae"], metrics.mae(y["out2"], expected["out2"], sample_weight=SERVED), rtol=1e-6
    )


# ------------------------------------------------------------------ per-timestep weights


class MaskedSequences(Preprocessor):
    """Per-timestep labels with a mask of weights: the last `k` steps of sample k are padding."""

    def process(self, batch, labels):
        steps = batch.shape[1]
        mask = np.arange(steps)[None, :] < steps - np.arange(len(batch))[:, None] % 3
        return batch, labels, mask.astype("float32")


def test_predict_mode_flattens_per_timestep_weights_with_per_timestep_predictions():
    keras.utils.set_random_seed(0)
    sequences = RNG.normal(size=(12, 5, 2)).astype("float32")
    labels = (sequences[..., :1] > 0).astype("float32")
    model = keras.Sequential([keras.Input((5, 2)), keras.layers.Dense(1, "sigmoid")])
    model.compile("sgd", "binary_crossentropy")
    make = lambda: DataGenerator(  # noqa: E731
        data=sequences, labels=labels, batch_size=4, preprocessor=MaskedSequences()
    )
    tg = TrainGenerator(model, make(), make(), iter_verbosity=0, eval_fn="predict",
                        val_metrics=["loss", "binary_accuracy"], key_metric="binary_accuracy",
                        val_class_weights={1: 2.0})  # fmt: skip
    logs = tg.evaluate(make())
    mask = np.concatenate([MaskedSequences().process(sequences[i : i + 4], None)[2]
                           for i in range(0, 12, 4)])  # fmt: skip
    weights = mask * np.where(labels[..., 0] == 1, 2.0, 1.0)
    p = model.predict(sequences, verbose=0)
    flat = metrics.binary_accuracy(labels.reshape(-1, 1), p.reshape(-1, 1),
                                   sample_weight=weights.reshape(-1))  # fmt: skip
    np.testing.assert_allclose(logs["binary_accuracy"], flat, rtol=1e-6)
    loss = model.evaluate(sequences, labels, sample_weight=weights, verbose=0)
    np.testing.assert_allclose(logs["loss"], loss, rtol=1e-5)


# ------------------------------------------------------------------ structured generators


@pytest.mark.parametrize("outputs_as", ["dict", "list"])
def test_a_structured_datagen_predicts_in_the_model_structure(outputs_as):
    pytest.importorskip("trainkit.data.sources.structured")  # DataGenerator(data={...})
    x, y = arrays()
    labels = y if outputs_as == "dict" else (y["out1"], y["out2"])
    model = model_of(outputs_as)

    def make(shuffle):
        return DataGenerator(data=x, labels=labels, batch_size=7, shuffle=shuffle, seed=2)

    tg = TrainGenerator(model, make(True), make(False), iter_verbosity=0, epochs=1)
    tg.train()
    assert {"out1_loss", "out2_loss", "out1_accuracy", "out2_mae"} <= set(tg.val_history)
    ordered = tg.predict(make(True)).in_sample_order()
    expected = model.predict(x, verbose=0)
    got = (
        ordered.predictions if outputs_as == "list" else [ordered.predictions[k] for k in expected]
    )
    for member, want in zip(got, expected if outputs_as == "list" else expected.values()):
        np.testing.assert_allclose(member, want, rtol=1e-5, atol=1e-6)
    assert type(ordered.labels) is type(labels)


# ------------------------------------------------------------------ names known at construction


@pytest.mark.parametrize(
    "outputs_as, compiled, weighted",
    [
        ("dict", {"out1": ["accuracy", "accuracy"], "out2": ["mae"]}, {"out1": ["accuracy"]}),
        ("list", [["accuracy"], None], [None, ["mae"]]),
        ("dict", {"out2": [keras.metrics.MeanSquaredError()]}, None),
        ("dict", None, None),
    ],
)
def test_the_names_known_before_a_step_are_those_keras_logs(outputs_as, compiled, weighted):
    from trainkit.training.evaluation.logged_names import logged_names

    model = model_of(outputs_as)
    model.compile("sgd", loss=model.loss, metrics=compiled, weighted_metrics=weighted)
    before = logged_names(model)
    x, y = arrays()
    if outputs_as == "list":
        x, y = [x["a"], x["b"]], [y["out1"], y["out2"]]
    logged = model.evaluate(x, y, verbose=0, return_dict=True)
    assert sorted(before) == sorted(logged) == sorted(logged_names(model))


def test_an_evaluate_mode_key_metric_typo_is_refused_at_construction_with_a_hint():
    with pytest.raises(ValueError, match="Did you mean 'out1_accuracy'"):
        trainer(model_of(), key_metric="out1_acuracy", max_is_best=True)


# ------------------------------------------------------------------ ragged data, padded


def test_padded_ragged_batches_score_only_real_steps_and_predict_per_sample_arrays():
    pad_module = pytest.importorskip("trainkit.data.preprocessors.pad")
    lengths = [6, 2, 5, 3, 4, 6, 2, 3, 5, 4]
    data = [RNG.normal(size=(n, 3)).astype("float32") for n in lengths]
    labels = [(d[:, :1] > 0).astype("float32") for d in data]
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((None, 3)), keras.layers.Dense(1, "sigmoid")])
    model.compile("sgd", "binary_crossentropy")

    def make(shuffle):
        return DataGenerator(data=data, labels=labels, batch_size=4, shuffle=shuffle, seed=3,
                             preprocessor=pad_module.PadPreprocessor())  # fmt: skip

    tg = TrainGenerator(model, make(True), make(False), iter_verbosity=0, eval_fn="predict",
                        val_metrics=["binary_accuracy", "f1"], key_metric="f1")  # fmt: skip
    logs = tg.evaluate(make(False))
    per_sample = [model.predict(d[None], verbose=0)[0] for d in data]
    flat_labels, flat_scores = np.concatenate(labels), np.concatenate(per_sample)
    assert logs["binary_accuracy"] == metrics.binary_accuracy(flat_labels, flat_scores)
    assert logs["f1"] == metrics.f1(flat_labels, flat_scores)
    ordered = tg.predict(make(True)).in_sample_order()
    assert [len(p) for p in ordered.predictions] == lengths
    for got, want in zip(ordered.predictions, per_sample):
        np.testing.assert_allclose(got, want, atol=1e-6)
