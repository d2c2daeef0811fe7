"""Every predict-mode metric equals scikit-learn on known arrays, edge cases included."""

import math

import numpy as np
import pytest
from sklearn import metrics as skm

from trainkit import metrics

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
