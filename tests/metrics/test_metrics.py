"""Predict-mode metrics against scikit-learn on known arrays, edge cases included."""

import math

import numpy as np
import pytest
from sklearn import metrics as skm

from trainkit import metrics

rng = np.random.default_rng(0)
Y = rng.integers(0, 2, 200)
P = np.clip(Y * 0.3 + rng.random(200) * 0.7, 0, 1)
W = rng.random(200)


@pytest.mark.parametrize("weights", [None, W])
@pytest.mark.parametrize("threshold", [0.3, 0.5, 0.7])
def test_binary_metrics_equal_scikit_learn(weights, threshold):
    hard = (P > threshold).astype(int)
    expected = {
        "binary_accuracy": skm.accuracy_score(Y, hard, sample_weight=weights),
        "precision": skm.precision_score(Y, hard, sample_weight=weights, zero_division=0),
        "recall": skm.recall_score(Y, hard, sample_weight=weights, zero_division=0),
        "tnr": skm.recall_score(1 - Y, 1 - hard, sample_weight=weights, zero_division=0),
        "f1": skm.f1_score(Y, hard, sample_weight=weights, zero_division=0),
    }
    for name, value in expected.items():
        got = metrics.METRICS[name](Y[:, None], P[:, None], weights, threshold=threshold)
        assert got == pytest.approx(value), name
    assert metrics.tpr(Y, P, weights, threshold=threshold) == pytest.approx(expected["recall"])


def test_roc_auc_and_regression_metrics_equal_scikit_learn():
    assert metrics.roc_auc(Y, P) == pytest.approx(skm.roc_auc_score(Y, P))
    assert metrics.roc_auc(Y, P, W) == pytest.approx(skm.roc_auc_score(Y, P, sample_weight=W))
    target = rng.random((50, 3))
    guess = target + rng.normal(0, 0.1, (50, 3))
    assert metrics.mae(target, guess) == pytest.approx(skm.mean_absolute_error(target, guess))
    assert metrics.mse(target, guess) == pytest.approx(skm.mean_squared_error(target, guess))
    assert metrics.r2(target, guess) == pytest.approx(skm.r2_score(target, guess))


def test_categorical_and_sparse_accuracy_take_the_argmax():
    probs = rng.random((60, 4))
    sparse = rng.integers(0, 4, 60)
    onehot = np.eye(4)[sparse]
    expected = np.mean(probs.argmax(1) == sparse)
    assert metrics.sparse_categorical_accuracy(sparse, probs) == pytest.approx(expected)
    assert metrics.categorical_accuracy(onehot, probs) == pytest.approx(expected)


def test_no_positive_labels_and_no_positive_predictions_give_zero_not_errors():
    negatives = np.zeros(10)
    scores = np.linspace(0, 0.4, 10)
    assert metrics.recall(negatives, scores) == 0.0
    assert metrics.precision(negatives, scores) == 0.0
    assert metrics.f1(negatives, scores) == 0.0
    assert metrics.tnr(negatives, scores) == 1.0
    assert math.isnan(metrics.roc_auc(negatives, scores))
    positives = np.ones(10)
    assert metrics.precision(positives, scores) == 0.0  # no positive predictions
    assert metrics.tnr(positives, scores) == 0.0  # no negative labels


@pytest.mark.parametrize(
    ("name", "loss", "expected"),
    [
        ("acc", "binary_crossentropy", "binary_accuracy"),
        ("accuracy", "categorical_crossentropy", "categorical_accuracy"),
        ("accuracy", "sparse_categorical_crossentropy", "sparse_categorical_accuracy"),
        ("f1_score", "", "f1"),
        ("auc", "", "roc_auc"),
        ("mean_absolute_error", "", "mae"),
    ],
)
def test_aliases_resolve_to_the_metric_matching_the_loss(name, loss, expected):
    assert metrics.canonical_name(name, loss) == expected
    assert metrics.resolve(name, loss) is metrics.METRICS[expected]


def test_an_unknown_metric_name_lists_the_known_ones():
    with pytest.raises(ValueError, match=r"Unknown metric 'f2'.*roc_auc"):
        metrics.resolve("f2")


def test_best_threshold_finds_the_separating_threshold():
    labels = np.array([0, 0, 0, 1, 1, 1])
    scores = np.array([0.1, 0.2, 0.25, 0.3, 0.8, 0.9])
    threshold, value = metrics.best_threshold(labels, scores, metrics.f1)
    assert value == 1.0
    assert 0.25 <= threshold < 0.3
