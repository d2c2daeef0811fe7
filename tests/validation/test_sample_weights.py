"""Class and slice weights reach the steps as the documented sample weights."""

import keras
import numpy as np
import pytest
from keras.src.trainers.data_adapters import data_adapter_utils  # Keras' own reading
from validation_helpers import (
    RecordingStep,
    binary_arrays,
    binary_model,
    series,
    series_datagen,
    sparse_model,
    window_model,
)

from trainkit import DataGenerator, TrainGenerator
from trainkit.training.evaluation.sample_weights import sample_weights, slice_weight

RNG = np.random.default_rng(5)
X3 = RNG.normal(size=(24, 4)).astype("float32")
Y3 = RNG.integers(0, 3, 24)
CLASS_WEIGHTS = {0: 0.5, 2: 3.0}  # class 1 left out: weight 1.0


def expected_class_weights(classes):
    return np.array([CLASS_WEIGHTS.get(int(c), 1.0) for c in classes], "float32")


def test_sparse_class_weights_reach_the_train_step_and_equal_train_on_batch():
    tg = TrainGenerator(
        sparse_model(), DataGenerator(data=X3, labels=Y3, batch_size=8),
        class_weights=CLASS_WEIGHTS, epochs=1, iter_verbosity=0,
    )  # fmt: skip
    tg._train_step = recorder = RecordingStep(tg._train_step)
    tg.train()
    for index, weights in enumerate(recorder.weights):
        labels = Y3[index * 8 : index * 8 + 8]
        np.testing.assert_array_equal(weights, expected_class_weights(labels))
    reference = sparse_model()
    losses = [
        reference.train_on_batch(
            X3[i : i + 8], Y3[i : i + 8], sample_weight=expected_class_weights(Y3[i : i + 8])
        )[0]
        for i in range(0, 24, 8)
    ]
    np.testing.assert_allclose(tg.history["loss"], losses, rtol=1e-5)


@pytest.mark.parametrize("layout", ["one_hot", "binary_column", "binary_flat"])
def test_class_weights_read_one_hot_and_binary_labels_as_keras_does(layout):
    if layout == "one_hot":
        labels, classes = np.eye(3)[Y3], Y3
    else:
        classes = Y3 % 2
        labels = classes[:, None].astype("float32") if layout == "binary_column" else classes
    keras_weights = data_adapter_utils.class_weight_to_sample_weights(labels, CLASS_WEIGHTS)
    ours = sample_weights(labels, 24, CLASS_WEIGHTS, None, 0, 1)
    np.testing.assert_array_equal(ours, keras_weights)
    np.testing.assert_array_equal(ours, expected_class_weights(classes))


def test_slice_weights_follow_linspace_from_first_to_last_slice():
    assert [slice_weight((0.5, 1.5), i, 3) for i in range(3)] == [0.5, 1.0, 1.5]
    assert slice_weight((0.5, 1.5), 0, 1) == 0.5
    assert slice_weight(None, 2, 3) == 1.0
    np.testing.assert_allclose(
        [slice_weight((2.0, 0.0), i, 5) for i in range(5)], np.linspace(2, 0, 5)
    )


def test_loss_weighted_slices_range_reaches_train_and_val_steps():
    x, y = series(n=8, timesteps=12)
    tg = TrainGenerator(
        window_model(), series_datagen(x, y), series_datagen(x, y),
        loss_weighted_slices_range=(0.5, 1.5), iter_verbosity=0,
    )  # fmt: skip
    tg._train_step = train = RecordingStep(tg._train_step)
    tg._test_step = test = RecordingStep(tg._test_step)
    tg.train()
    expected = [np.full(4, w, "float32") for w in (0.5, 1.0, 1.5)] * 2  # 2 batches x 3 slices
    for got, want in [(train.weights, expected), (test.weights, expected)]:
        assert len(got) == 6
        for g, w in zip(got, want):
            np.testing.assert_array_equal(g, w)


def test_slice_and_class_weights_multiply():
    x, _ = series(n=8, timesteps=12)
    y = (x.mean(axis=(1, 2)) > 0.5).astype("float32")[:, None]
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4, 1)), keras.layers.Flatten(), keras.layers.Dense(1)])
    model.compile("sgd", keras.losses.BinaryCrossentropy(from_logits=True))
    tg = TrainGenerator(
        model, series_datagen(x, y), class_weights={1: 4.0},
        loss_weighted_slices_range=(1.0, 2.0), iter_verbosity=0,
    )  # fmt: skip
    tg._train_step = recorder = RecordingStep(tg._train_step)
    tg.train()
    for index, weights in enumerate(recorder.weights):
        batch, slice_idx = divmod(index, 3)
        classes = y[batch * 4 : batch * 4 + 4, 0]
        expected = np.where(classes == 1, 4.0, 1.0) * (1.0 + 0.5 * slice_idx)
        np.testing.assert_allclose(weights, expected)


def test_no_weighting_option_passes_no_sample_weights():
    tg = TrainGenerator(
        sparse_model(), DataGenerator(data=X3, labels=Y3, batch_size=8), iter_verbosity=0
    )
    tg._train_step = recorder = RecordingStep(tg._train_step)
    tg.train()
    assert recorder.weights == [None, None, None]


def test_val_class_weights_weight_evaluate_mode_like_model_evaluate():
    x, y = binary_arrays(40)
    model = binary_model()
    tg = TrainGenerator(
        model, DataGenerator(data=x[:24], labels=y[:24], batch_size=8),
        DataGenerator(data=x[24:], labels=y[24:], batch_size=5),
        val_class_weights={1: 3.0}, iter_verbosity=0,
    )  # fmt: skip
    tg.train()
    weights = np.where(y[24:, 0] == 1, 3.0, 1.0)
    loss, accuracy = model.evaluate(x[24:], y[24:], sample_weight=weights, batch_size=5, verbose=0)
    assert tg.val_history["loss"][-1] == pytest.approx(loss, rel=1e-5)
    assert tg.val_history["accuracy"][-1] == pytest.approx(accuracy, rel=1e-5)


def test_val_class_weights_weight_predict_mode_metrics_and_loss():
    from sklearn import metrics as skm

    x, y = binary_arrays(40)
    model = binary_model()
    tg = TrainGenerator(
        model, DataGenerator(data=x[:24], labels=y[:24], batch_size=8),
        DataGenerator(data=x[24:], labels=y[24:], batch_size=5), eval_fn="predict",
        val_metrics=["loss", "f1", "roc_auc"], val_class_weights={1: 3.0}, iter_verbosity=0,
    )  # fmt: skip
    tg.train()
    weights = np.where(y[24:, 0] == 1, 3.0, 1.0)
    scores = model.predict(x[24:], verbose=0)[:, 0]
    loss = model.evaluate(x[24:], y[24:], sample_weight=weights, batch_size=5, verbose=0)[0]
    assert tg.val_history["loss"][-1] == pytest.approx(loss, rel=1e-5)
    f1 = skm.f1_score(y[24:, 0], scores > 0.5, sample_weight=weights, zero_division=0)
    assert tg.val_history["f1"][-1] == pytest.approx(f1)
    auc = skm.roc_auc_score(y[24:, 0], scores, sample_weight=weights)
    assert tg.val_history["roc_auc"][-1] == pytest.approx(auc)
