"""Ragged clouds with a per-cloud and a per-point output, padded per batch (PadPreprocessor()).

Validation in both modes and `tg.predict` decide output by output what was padded, and
evaluate mode averages weighted metrics by weight mass, as `model.evaluate` does.
"""

from __future__ import annotations

import warnings

import keras
import numpy as np
import pytest

from trainkit import DataGenerator, PadPreprocessor, TrainGenerator

RNG = np.random.default_rng(0)
LENGTHS = [2, 10, 3, 3, 7, 1, 9, 4]
CLOUDS = [RNG.normal(size=(n, 3)).astype("float32") for n in LENGTHS]
SEG = [RNG.integers(0, 2, size=n) for n in LENGTHS]
CLS = RNG.integers(0, 3, size=len(LENGTHS))


def two_output_model(cls_first):
    keras.utils.set_random_seed(0)
    points = keras.Input((None, 3), name="points")
    hidden = keras.layers.Dense(4)(points)
    seg = keras.layers.Dense(2, activation="softmax", name="seg")(hidden)
    pooled = keras.layers.GlobalAveragePooling1D()(hidden)
    cls = keras.layers.Dense(3, activation="softmax", name="cls")(pooled)
    outputs = {"cls": cls, "seg": seg} if cls_first else {"seg": seg, "cls": cls}
    model = keras.Model(points, outputs)
    loss = "sparse_categorical_crossentropy"
    model.compile(
        "sgd",
        {"cls": loss, "seg": loss},
        weighted_metrics={"cls": ["accuracy"], "seg": ["accuracy"]},
    )
    return model


def clouds(cls_first, **kwargs):
    labels = {"cls": CLS, "seg": SEG} if cls_first else {"seg": SEG, "cls": CLS}
    return DataGenerator(
        data=CLOUDS, labels=labels, batch_size=2, preprocessor=PadPreprocessor(), **kwargs
    )


@pytest.mark.parametrize("cls_first", [True, False], ids=["cls-first", "seg-first"])
def test_per_cloud_and_per_point_outputs_validate_and_predict_with_padding_per_batch(cls_first):
    model = two_output_model(cls_first)
    tg = TrainGenerator(model, clouds(cls_first), eval_fn="predict", iter_verbosity=0,
                        val_metrics=["loss", "accuracy"])  # fmt: skip
    logs = tg.evaluate(clouds(cls_first))
    result = tg.predict(clouds(cls_first))
    # Each cloud's per-point predictions at its own length; one row per cloud for cls.
    assert [len(p) for p in result.predictions["seg"]] == LENGTHS
    assert result.predictions["cls"].shape == (8, 3)
    # Predict-mode accuracies are the pooled ones: every real point once, each cloud once.
    points = np.concatenate([p.argmax(-1) for p in result.predictions["seg"]])
    assert logs["seg_accuracy"] == pytest.approx(np.mean(points == np.concatenate(SEG)))
    cls = result.predictions["cls"].argmax(-1)
    assert logs["cls_accuracy"] == pytest.approx(np.mean(cls == CLS))
    for cloud, seg in zip(CLOUDS, result.predictions["seg"]):
        alone = model.predict_on_batch(cloud[None])["seg"][0]
        np.testing.assert_allclose(seg, alone, atol=1e-5)


class Padded(keras.utils.PyDataset):
    """The same padded batches for `model.evaluate`, without trainkit."""

    def __init__(self, labels):
        super().__init__()
        self.labels = labels

    def __len__(self):
        return len(CLOUDS) // 2

    def __getitem__(self, index):
        rows = slice(2 * index, 2 * index + 2)
        labels = {key: value[rows] for key, value in self.labels.items()}
        return PadPreprocessor().process(CLOUDS[rows], labels)


@pytest.mark.parametrize("cls_first", [True, False], ids=["cls-first", "seg-first"])
def test_evaluate_mode_weighted_metrics_equal_model_evaluate_with_per_point_weights(cls_first):
    model = two_output_model(cls_first)
    tg = TrainGenerator(model, clouds(cls_first), iter_verbosity=0)
    logs = tg.evaluate(clouds(cls_first))
    labels = {"cls": CLS, "seg": SEG}
    expected = model.evaluate(Padded(labels), return_dict=True, verbose=0)
    # Batches of 1.2, 2, 0.57 and 1.44 real points per padded length: averaged by rows,
    # seg_accuracy would be another number.
    for name in ("seg_accuracy", "cls_accuracy", "loss", "seg_loss", "cls_loss"):
        assert logs[name] == pytest.approx(expected[name], rel=1e-5), name


def test_predict_on_a_shuffling_augmenting_generator_warns_naming_for_prediction():
    from trainkit import Chain, JitterPreprocessor

    model = two_output_model(True)
    tg = TrainGenerator(model, clouds(True), iter_verbosity=0)
    augmenting = DataGenerator(
        data=CLOUDS, labels={"cls": CLS, "seg": SEG}, batch_size=2, shuffle=True,
        preprocessor=Chain(JitterPreprocessor(), PadPreprocessor()),
    )  # fmt: skip
    with pytest.warns(
        UserWarning, match=r"shuffles \(shuffle='sets'\) and augments.*for_prediction\(\)"
    ):
        tg.predict(augmenting)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tg.predict(clouds(True))  # sample order, padding only: no warning
