"""Models with several inputs and outputs train on structured slices, and resume exactly."""

import keras
import numpy as np
import pytest
from training_helpers import RaiseAt, train_through_failures, weights_equal

from trainkit import DataGenerator, Preprocessor, TrainGenerator
from trainkit.testing import assert_resume_equivalent
from trainkit.training.evaluation.sample_weights import sample_weights

RNG = np.random.default_rng(3)
X = RNG.normal(size=(36, 6)).astype("float32")
Y = (X[:, :1] + 0.3 * RNG.normal(size=(36, 1)) > 0).astype("float32")


class SplitPreprocessor(Preprocessor):
    """A dense batch -> `({'a', 'b'}, {'out1', 'out2'}, weights)`, as structured data serves."""

    def __init__(self, weights=True, labels_as="dict"):
        super().__init__()
        self.weights, self.labels_as = weights, labels_as

    def process(self, batch, labels):
        x = {"a": batch[:, :4], "b": batch[:, 4:]}
        second = batch[:, :3].sum(axis=1, keepdims=True)
        y = {"out1": labels, "out2": second} if self.labels_as == "dict" else (labels, second)
        if not self.weights:
            return x, y
        return x, y, np.linspace(0.5, 1.5, len(batch)).astype("float32")


def two_by_two_model(seed=0, outputs_as="dict"):
    keras.utils.set_random_seed(seed)
    a, b = keras.Input((4,), name="a"), keras.Input((2,), name="b")
    hidden = keras.layers.Dense(5, activation="tanh")(keras.layers.Concatenate()([a, b]))
    out1 = keras.layers.Dense(1, activation="sigmoid", name="out1")(hidden)
    out2 = keras.layers.Dense(1, name="out2")(hidden)
    if outputs_as == "dict":
        model = keras.Model({"a": a, "b": b}, {"out1": out1, "out2": out2})
        losses = {"out1": "binary_crossentropy", "out2": "mse"}
        metrics = {"out1": ["accuracy"], "out2": ["mae"]}
    else:
        model = keras.Model([a, b], [out1, out2])
        losses, metrics = ["binary_crossentropy", "mse"], [["accuracy"], ["mae"]]
    model.compile(keras.optimizers.Adam(0.01), loss=losses, metrics=metrics)
    return model


def datagens(shuffle=True, **kwargs):
    train = DataGenerator(data=X, labels=Y, batch_size=8, shuffle=shuffle, seed=1,
                          preprocessor=SplitPreprocessor(**kwargs))  # fmt: skip
    val = DataGenerator(data=X[:16], labels=Y[:16], batch_size=8,
                        preprocessor=SplitPreprocessor(**kwargs))  # fmt: skip
    return train, val


def trainer(model=None, logs_dir=None, resume=False, callbacks=None, **kwargs):
    train, val = datagens()
    options = {"epochs": 2, "iter_verbosity": 0, "class_weights": {"out1": {0: 1.0, 1: 3.0}}}
    options.update(kwargs)
    return TrainGenerator(
        model if model is not None else two_by_two_model(), train, val,
        logs_dir=logs_dir, resume=resume, callbacks=callbacks, **options,
    )  # fmt: skip


def test_a_two_input_two_output_model_trains_and_validates_with_keras_names():
    tg = trainer()
    tg.train()
    assert set(tg.history) == {"loss", "out1_loss", "out2_loss", "out1_accuracy", "out2_mae"}
    assert set(tg.val_history) == set(tg.history)
    assert len(tg.history["loss"]) == 2 * 5 and len(tg.val_history["loss"]) == 2


def test_the_step_gets_served_times_class_times_slice_weights_per_output():
    tg = trainer(loss_weighted_slices_range=(1.0, 1.0))
    seen = []
    step = tg._train_step

    def recording(x, y, sample_weight=None):
        seen.append((y, sample_weight))
        return step(x, y, sample_weight)

    tg._train_step = recording
    tg.epochs = 1
    tg.train()
    served = np.linspace(0.5, 1.5, 8).astype("float32")
    y, weights = seen[0]
    assert set(weights) == {"out1", "out2"}  # one array per output, keyed as the labels
    classes = np.where(y["out1"][:, 0] == 1, 3.0, 1.0).astype("float32")
    np.testing.assert_array_equal(weights["out1"], served * classes)
    np.testing.assert_array_equal(weights["out2"], served)  # no class weights for out2


def test_training_equals_train_on_batch_with_the_combined_weights():
    tg = trainer(epochs=1)
    tg.train()
    reference = two_by_two_model()
    pre = SplitPreprocessor()
    for batch in DataGenerator(data=X, labels=Y, batch_size=8, shuffle=True, seed=1).plan(0):
        rows = batch.rows()
        x, y, served = pre.process(X[rows], Y[rows])
        classes = np.where(y["out1"][:, 0] == 1, 3.0, 1.0).astype("float32")
        weights = {"out1": served * classes, "out2": served}
        reference.train_on_batch(x, y, sample_weight=weights)
    for got, want in zip(tg.model.get_weights(), reference.get_weights(), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("outputs_as", ["dict", "list"])
def test_fused_steps_equal_one_call_per_slice_on_structured_slices(outputs_as):
    labels_as = "dict" if outputs_as == "dict" else "tuple"
    runs = []
    for steps in (1, 4):
        train, val = datagens(labels_as=labels_as)
        model = two_by_two_model(outputs_as=outputs_as)
        tg = TrainGenerator(model, train, val, epochs=2, iter_verbosity=0,
                            steps_per_execution=steps)  # fmt: skip
        tg.train()
        runs.append(tg)
    assert weights_equal(runs[0].model, runs[1].model)
    assert runs[0].history == runs[1].history and runs[0].val_history == runs[1].val_history


def test_an_interrupted_structured_run_continues_exactly():
    metrics = {"eval_fn": "predict", "val_metrics": ["loss", "out1_f1", "out2_mae"]}
    reference = trainer(key_metric="out1_f1", **metrics)
    reference.train()
    interrupted = trainer(key_metric="out1_f1", callbacks=[RaiseAt({5, 17, 30})], **metrics)
    assert train_through_failures(interrupted, expected=(RuntimeError,)) == 3
    assert weights_equal(reference.model, interrupted.model)
    assert reference.history == interrupted.history
    assert reference.val_history == interrupted.val_history
    assert set(reference.val_history) == {"loss", "out1_f1", "out2_mae"}


def test_a_structured_run_resumes_bitwise_from_its_run_folder(tmp_path):
    def make(logs_dir, resume, callbacks):
        return trainer(logs_dir=logs_dir, resume=resume, callbacks=callbacks,
                       checkpoint_freq={"iter": 3})  # fmt: skip

    assert_resume_equivalent(make, str(tmp_path), cut_points=(3, 7))


# ------------------------------------------------------------------ mistakes, before a step


class ServeAs(Preprocessor):
    def __init__(self, make):
        super().__init__()
        self.make = make

    def process(self, batch, labels):
        return self.make(batch, labels)


def refused(make, **kwargs):
    datagen = DataGenerator(data=X, labels=Y, batch_size=8, preprocessor=ServeAs(make))
    with pytest.raises(ValueError) as error:
        TrainGenerator(two_by_two_model(), datagen, iter_verbosity=0, **kwargs)
    return str(error.value)


def test_a_dict_key_that_is_not_an_input_name_is_refused_naming_both():
    message = refused(lambda b, y: ({"a": b[:, :4], "bb": b[:, 4:]}, {"out1": y, "out2": y}))
    assert "'bb' (did you mean 'b'?)" in message and "['a', 'b']" in message


def test_a_tuple_of_the_wrong_length_is_refused_naming_the_inputs():
    message = refused(lambda b, y: ((b[:, :4], b[:, 4:], b), {"out1": y, "out2": y}))
    assert "3 arrays" in message and "2 inputs ('a', 'b')" in message


def test_labels_that_do_not_match_the_outputs_are_refused():
    x = lambda b: {"a": b[:, :4], "b": b[:, 4:]}  # noqa: E731
    message = refused(lambda b, y: (x(b), {"out1": y, "out3": y}))
    assert "'out3'" in message and "['out1', 'out2']" in message and "y" in message
    message = refused(lambda b, y: (x(b), (y, y, y)))
    assert "3 members" in message and "2 outputs" in message
    message = refused(lambda b, y: (x(b), y))
    assert "one array as y" in message


def test_class_weights_for_an_unknown_output_are_refused():
    with pytest.raises(ValueError, match="'out9'"):
        trainer(class_weights={"out9": {0: 1.0}})


def test_a_key_metric_not_among_the_per_output_names_is_refused_at_construction():
    with pytest.raises(ValueError, match="'out1_f1'"):
        trainer(eval_fn="predict", val_metrics=["loss", "f1"], key_metric="f1")


# ------------------------------------------------------------------ weights, unit level


def test_per_timestep_weights_read_classes_per_timestep():
    labels = np.array([[0, 1, 1], [1, 0, 0]])
    served = np.array([[1, 1, 0], [1, 1, 1]], np.float32)  # a padding mask
    weights = sample_weights(labels, 2, {1: 4.0}, (2.0, 2.0), 0, 1, served)
    np.testing.assert_array_equal(weights, [[2, 8, 0], [8, 2, 2]])


def test_per_timestep_weights_broadcast_per_sample_class_weights():
    served = np.ones((2, 3), np.float32)
    weights = sample_weights(np.array([[1.0], [0.0]]), 2, {1: 4.0}, None, 0, 1, served)
    np.testing.assert_array_equal(weights, [[4, 4, 4], [1, 1, 1]])


def test_served_weights_alone_pass_unchanged_and_with_slice_weights_scaled():
    served = np.array([0.5, 2.0], np.float32)
    assert sample_weights(None, 2, None, None, 0, 1, served) is served
    np.testing.assert_array_equal(sample_weights(None, 2, None, (1, 3), 1, 2, served), [1.5, 6])


def test_a_structured_datagen_trains_as_the_same_data_through_a_preprocessor():
    pytest.importorskip("trainkit.data.sources.structured")  # DataGenerator(data={...})
    x = {"a": X[:, :4], "b": X[:, 4:]}
    y = {"out1": Y, "out2": X[:, :3].sum(axis=1, keepdims=True)}
    direct = TrainGenerator(
        two_by_two_model(), DataGenerator(data=x, labels=y, batch_size=8, shuffle=True, seed=1),
        epochs=2, iter_verbosity=0,
    )  # fmt: skip
    direct.train()
    through = TrainGenerator(two_by_two_model(), datagens(weights=False)[0], epochs=2,
                             iter_verbosity=0)  # fmt: skip
    through.train()
    assert weights_equal(direct.model, through.model)
    assert direct.history == through.history
