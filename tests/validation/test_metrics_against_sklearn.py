"""Every predict-mode metric equals scikit-learn on known arrays, edge cases included."""

import math
import warnings

import numpy as np
import pytest
from sklearn import metrics as skm
from validation_helpers import sparse_model

from trainkit import DataGenerator, TrainGenerator, metrics

rng = np.random.default_rng(1)
LABELS = rng.integers(0, 2, 120)
SCORES = np.clip(0.35 * LABELS + 0.65 * rng.random(120), 0, 1)
WEIGHTS = rng.random(120) + 0.1
THREE = rng.integers(0, 3, 90)
PROBS = rng.dirichlet(np.ones(3), 90)


def hard(threshold):
    return (SCORES > threshold).astype(int)


SKLEARN_BINARY = {
    "binary_accuracy": lambda y, p, w: skm.accuracy_score(y, p, sample_weight=w),
    "precision": lambda y, p, w: skm.precision_score(y, p, sample_weight=w, zero_division=0),
    "recall": lambda y, p, w: skm.recall_score(y, p, sample_weight=w, zero_division=0),
    "tpr": lambda y, p, w: skm.recall_score(y, p, sample_weight=w, zero_division=0),
    "tnr": lambda y, p, w: skm.recall_score(1 - y, 1 - p, sample_weight=w, zero_division=0),
    "f1": lambda y, p, w: skm.f1_score(y, p, sample_weight=w, zero_division=0),
}


@pytest.mark.parametrize("name", sorted(SKLEARN_BINARY))
@pytest.mark.parametrize("weights", [None, WEIGHTS], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("shape", ["flat", "column", "two_column"])
def test_binary_metrics_equal_scikit_learn_for_every_label_layout(name, weights, shape):
    labels, scores = LABELS, SCORES
    if shape == "column":
        labels, scores = LABELS[:, None], SCORES[:, None]
    elif shape == "two_column":  # one-hot labels, softmax outputs
        labels, scores = np.eye(2)[LABELS], np.stack([1 - SCORES, SCORES], axis=1)
    for threshold in (0.3, 0.5, 0.8):
        expected = SKLEARN_BINARY[name](LABELS, hard(threshold), weights)
        got = metrics.METRICS[name](labels, scores, weights, threshold=threshold)
        assert got == pytest.approx(expected)


@pytest.mark.parametrize("weights", [None, WEIGHTS[:90]], ids=["unweighted", "weighted"])
def test_accuracy_variants_and_multiclass_roc_auc_equal_scikit_learn(weights):
    predicted = PROBS.argmax(1)
    expected = skm.accuracy_score(THREE, predicted, sample_weight=weights)
    assert metrics.sparse_categorical_accuracy(THREE, PROBS, weights) == pytest.approx(expected)
    assert metrics.categorical_accuracy(np.eye(3)[THREE], PROBS, weights) == pytest.approx(expected)
    auc = skm.roc_auc_score(np.eye(3)[THREE], PROBS, sample_weight=weights)
    assert metrics.roc_auc(THREE, PROBS, weights) == pytest.approx(auc)
    assert metrics.roc_auc(np.eye(3)[THREE], PROBS, weights) == pytest.approx(auc)


@pytest.mark.parametrize("weights", [None, WEIGHTS], ids=["unweighted", "weighted"])
def test_roc_auc_equals_scikit_learn_for_scores_and_two_column_outputs(weights):
    expected = skm.roc_auc_score(LABELS, SCORES, sample_weight=weights)
    assert metrics.roc_auc(LABELS[:, None], SCORES[:, None], weights) == pytest.approx(expected)
    two = np.stack([1 - SCORES, SCORES], axis=1)
    assert metrics.roc_auc(np.eye(2)[LABELS], two, weights) == pytest.approx(expected)
    assert metrics.roc_auc(LABELS, two, weights) == pytest.approx(expected)


@pytest.mark.parametrize("weights", [None, WEIGHTS[:50]], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("columns", [1, 3])
def test_regression_metrics_equal_scikit_learn(weights, columns):
    target = rng.random((50, columns))
    guess = target + rng.normal(0, 0.2, (50, columns))
    for name, reference in [
        ("mae", skm.mean_absolute_error),
        ("mse", skm.mean_squared_error),
        ("r2", skm.r2_score),
    ]:
        expected = reference(target, guess, sample_weight=weights)
        assert metrics.METRICS[name](target, guess, weights) == pytest.approx(expected), name


@pytest.mark.parametrize("name", ["precision", "recall", "tpr", "tnr", "f1", "binary_accuracy"])
@pytest.mark.parametrize(
    ("labels", "scores"),
    [
        (np.zeros(8), np.linspace(0.0, 0.9, 8)),  # no positive labels
        (np.ones(8), np.linspace(0.0, 0.4, 8)),  # no positive predictions
        (np.zeros(8), np.zeros(8)),  # neither
        (np.ones(8), np.ones(8)),  # no negatives at all
    ],
    ids=["no_positive_labels", "no_positive_predictions", "all_negative", "all_positive"],
)
def test_degenerate_binary_cases_equal_scikit_learn_with_zero_division_0(name, labels, scores):
    predicted = (scores > 0.5).astype(int)
    expected = SKLEARN_BINARY[name](labels.astype(int), predicted, None)
    assert metrics.METRICS[name](labels, scores) == pytest.approx(expected)


def test_roc_auc_of_one_class_is_nan_not_an_error():
    assert math.isnan(metrics.roc_auc(np.zeros(5), np.linspace(0, 1, 5)))
    assert math.isnan(metrics.roc_auc(np.zeros(6, int), rng.dirichlet(np.ones(3), 6)))


def test_binary_metrics_refuse_multiclass_outputs():
    with pytest.raises(ValueError, match="binary"):
        metrics.f1(THREE, PROBS)


def test_best_threshold_maximizes_the_metric_over_the_grid():
    threshold, value = metrics.best_threshold(LABELS, SCORES, metrics.f1)
    grid = [metrics.f1(LABELS, SCORES, threshold=t) for t in np.linspace(0, 1, 101)]
    assert value == pytest.approx(max(grid))
    assert metrics.f1(LABELS, SCORES, threshold=threshold) == pytest.approx(value)


AVERAGED_REFERENCES = {
    f"{name}_{average}": (reference, average)
    for name, reference in [
        ("f1", skm.f1_score),
        ("precision", skm.precision_score),
        ("recall", skm.recall_score),
    ]
    for average in ("macro", "micro", "weighted")
}


def sklearn_average(name, labels, predicted, weights):
    if name == "balanced_accuracy":
        return skm.balanced_accuracy_score(labels, predicted, sample_weight=weights)
    reference, average = AVERAGED_REFERENCES[name]
    return reference(labels, predicted, average=average, sample_weight=weights, zero_division=0)


@pytest.mark.parametrize("name", [*sorted(AVERAGED_REFERENCES), "balanced_accuracy"])
@pytest.mark.parametrize("weights", [None, WEIGHTS[:90]], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("layout", ["sparse", "sparse_column", "one_hot"])
def test_multiclass_averages_equal_scikit_learn_for_every_label_layout(name, weights, layout):
    labels = {"sparse": THREE, "sparse_column": THREE[:, None], "one_hot": np.eye(3)[THREE]}
    expected = sklearn_average(name, THREE, PROBS.argmax(1), weights)
    assert metrics.METRICS[name](labels[layout], PROBS, weights) == pytest.approx(expected)


@pytest.mark.parametrize("name", [*sorted(AVERAGED_REFERENCES), "balanced_accuracy"])
def test_multiclass_averages_count_a_class_never_predicted_as_zero_precision(name):
    # Class 2 is in the labels but never predicted; class 3 is predicted but absent.
    labels = np.array([0, 0, 1, 1, 2, 2, 2, 1])
    predicted = np.array([0, 1, 1, 1, 0, 1, 3, 3])
    probs = np.eye(4)[predicted] * 0.7 + 0.075
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scikit-learn: y_pred holds a class y_true lacks
        expected = sklearn_average(name, labels, predicted, None)
        got = metrics.METRICS[name](labels, probs)
    assert got == pytest.approx(expected)
    assert 0.0 < got < 1.0


@pytest.mark.parametrize("name", [*sorted(AVERAGED_REFERENCES), "balanced_accuracy"])
def test_multiclass_averages_decide_one_score_binary_outputs_at_the_threshold(name):
    for threshold in (0.3, 0.5, 0.8):
        expected = sklearn_average(name, LABELS, hard(threshold), WEIGHTS)
        got = metrics.METRICS[name](LABELS[:, None], SCORES[:, None], WEIGHTS, threshold=threshold)
        assert got == pytest.approx(expected)


def test_a_multiclass_average_is_a_predict_mode_val_metric_and_key_metric():
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(60, 4)).astype("float32"), rng.integers(0, 3, 60)
    model = sparse_model()
    tg = TrainGenerator(
        model, DataGenerator(data=x[:40], labels=y[:40], batch_size=8),
        DataGenerator(data=x[40:], labels=y[40:], batch_size=8), eval_fn="predict",
        val_metrics=["f1_macro", "precision_weighted", "recall_micro"], key_metric="f1_macro",
        iter_verbosity=0,
    )  # fmt: skip
    assert tg.max_is_best is True
    tg.train()
    predicted = model.predict(x[40:], verbose=0).argmax(1)
    expected = skm.f1_score(y[40:], predicted, average="macro", zero_division=0)
    assert tg.val_history["f1_macro"] == [pytest.approx(expected)]
    assert tg.best_key_metric == pytest.approx(expected)
    assert tg.val_history["recall_micro"] == [pytest.approx(skm.accuracy_score(y[40:], predicted))]
