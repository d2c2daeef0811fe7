"""best_threshold from cumulative counts equals calling the metric at every threshold."""

import warnings

import numpy as np
import pytest

from trainkit import metrics
from trainkit.threshold_sweep import FORMULAS, exact_weights

THRESHOLDS = np.linspace(0.0, 1.0, 101)
COARSE = np.linspace(0.0, 1.0, 11)  # the random cases use a coarser grid: 9x fewer calls
SWEPT = sorted(FORMULAS)


def per_threshold(metric, y_true, y_pred, weights, thresholds=THRESHOLDS):
    """The generic path: one metric call per threshold, then best_threshold's pick."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # sklearn's "y_pred contains classes not in y_true"
        values = np.array([metric(y_true, y_pred, weights, threshold=t) for t in thresholds])
    best = np.flatnonzero(values == values.max())
    pick = best[np.argmin(np.abs(thresholds[best] - 0.5))]
    return values, (float(thresholds[pick]), float(values[pick]))


def random_case(seed):
    """Labels, scores and weights with the awkward parts: ties, one class, grid scores."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 40))
    labels = rng.integers(0, 2, n)
    if seed % 7 == 0:
        labels[:] = seed % 2  # all one class
    kind = seed % 4
    if kind == 0:
        scores = COARSE[rng.integers(0, len(COARSE), n)]  # exactly on the grid
    elif kind == 1:
        scores = rng.choice([0.0, 0.25, 0.5, 0.5, 1.0], n)  # many ties
    elif kind == 2:
        scores = rng.random(n).astype(np.float32)
    else:
        scores = np.round(rng.random(n), 2)
    weights = [
        None,
        rng.integers(0, 4, n),  # zero weights included
        rng.integers(1, 5, n) / 4.0,
        np.where(labels == 1, 2.5, 0.5),  # class weights
        rng.integers(0, 3, n).astype(np.float32),
    ][seed % 5]
    return labels, scores, weights


@pytest.mark.parametrize("name", SWEPT)
def test_the_counted_values_and_threshold_equal_the_per_threshold_ones_bitwise(name):
    metric = metrics.METRICS[name]
    for seed in range(20):
        y_true, y_pred, weights = random_case(seed)
        if seed % 2:
            y_true, y_pred = y_true[:, None].astype(float), y_pred[:, None]
        if weights is not None and not np.sum(weights):
            continue  # no weight at all: the per-threshold path is the only one
        expected_values, expected = per_threshold(metric, y_true, y_pred, weights, COARSE)
        counted = metrics._values_from_counts(metric, y_true, y_pred, weights, COARSE)
        assert counted is not None, (name, seed)
        assert np.array_equal(counted, expected_values, equal_nan=True), (name, seed)
        got = metrics.best_threshold(y_true, y_pred, metric, sample_weight=weights, candidates=11)
        assert got == expected, (name, seed)


@pytest.mark.parametrize("name", ["f1", "balanced_accuracy", "f1_weighted"])
def test_the_default_grid_gives_the_same_threshold_on_a_larger_weighted_set(name):
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 2, 2000)
    scores = np.round(np.clip(labels * 0.2 + rng.random(2000) * 0.8, 0, 1), 3)
    weights = np.where(labels == 1, 3.0, 0.75)
    metric = metrics.METRICS[name]
    values, expected = per_threshold(metric, labels, scores, weights)
    counted = metrics._values_from_counts(metric, labels, scores, weights, THRESHOLDS)
    assert np.array_equal(counted, values)
    assert metrics.best_threshold(labels, scores, metric, sample_weight=weights) == expected


@pytest.mark.parametrize("name", ["f1", "precision", "recall", "tnr", "binary_accuracy"])
def test_two_column_labels_and_softmax_outputs_use_the_positive_column(name):
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 2, 50)
    positive = rng.random(50)
    y_true, y_pred = np.eye(2)[labels], np.stack([1 - positive, positive], axis=1)
    metric = metrics.METRICS[name]
    counted = metrics._values_from_counts(metric, y_true, y_pred, None, COARSE)
    assert np.array_equal(counted, per_threshold(metric, y_true, y_pred, None, COARSE)[0])


def test_nan_scores_decide_negative_on_both_paths():
    labels = np.array([1, 0, 1, 0, 1])
    scores = np.array([0.9, np.nan, np.nan, 0.2, 0.6])
    for name in SWEPT:
        metric = metrics.METRICS[name]
        expected = per_threshold(metric, labels, scores, None, COARSE)[0]
        counted = metrics._values_from_counts(metric, labels, scores, None, COARSE)
        assert np.array_equal(counted, expected, equal_nan=True), name


@pytest.mark.parametrize(
    "weights",
    [np.full(20, 0.1), np.array([1e300, 1.0] * 10), np.full(20, -1.0), np.zeros(20)],
    ids=["inexact-decimal", "beyond-53-bits", "negative", "all-zero"],
)
def test_weights_whose_sums_could_round_take_the_per_threshold_path(weights):
    assert exact_weights(weights, 20) is None
    assert exact_weights(np.full(20, 0.375), 20) is not None


def test_callables_and_multi_class_scores_take_the_per_threshold_path():
    rng = np.random.default_rng(2)
    labels, scores = rng.integers(0, 2, 30), rng.random(30)

    def custom(y_true, y_pred, sample_weight=None, threshold=0.5):
        return metrics.f1(y_true, y_pred, sample_weight, threshold=threshold)

    assert metrics._values_from_counts(custom, labels, scores, None, THRESHOLDS) is None
    assert metrics.best_threshold(labels, scores, custom, candidates=11) == (
        metrics.best_threshold(labels, scores, metrics.f1, candidates=11)
    )
    three = rng.integers(0, 3, 30)
    probs = rng.dirichlet(np.ones(3), 30)
    assert metrics._values_from_counts(metrics.f1_macro, three, probs, None, THRESHOLDS) is None
    assert metrics._values_from_counts(metrics.f1_macro, three, scores, None, THRESHOLDS) is None
    assert (
        metrics.best_threshold(three, probs, metrics.f1_macro, candidates=11)[0] == 0.5
    )  # flat: default


def test_bad_input_still_raises_the_metric_s_own_error():
    with pytest.raises(ValueError, match="This metric is binary"):
        metrics.best_threshold(np.zeros(4), np.ones((4, 3)) / 3, metrics.f1)


def inexact_case(seed):
    """random_case's labels and scores with weights whose sums round: 0.1, 0.3, random."""
    labels, scores, _ = random_case(seed)
    rng = np.random.default_rng(seed + 1000)
    weights = [
        np.full(len(labels), 0.1),
        np.where(labels == 1, 0.3, 1.0),  # val_class_weights={1: 0.3}
        rng.random(len(labels)),
        np.where(rng.random(len(labels)) < 0.3, 0.0, 0.7),  # zero weights included
    ][seed % 4]
    return labels, scores, weights


@pytest.mark.parametrize("name", SWEPT)
def test_any_weights_are_counted_and_equal_scikit_learn_within_float_tolerance(name):
    metric = metrics.METRICS[name]
    for seed in range(12):
        y_true, y_pred, weights = inexact_case(seed)
        assert exact_weights(weights, len(y_true)) is None or seed % 4 == 3
        expected_values, (_, value) = per_threshold(metric, y_true, y_pred, weights, COARSE)
        counted = metrics._values_from_counts(metric, y_true, y_pred, weights, COARSE)
        assert counted is not None, "weights that round took the per-threshold path"
        np.testing.assert_allclose(counted, expected_values, rtol=1e-12, atol=1e-12)
        got = metrics.best_threshold(y_true, y_pred, metric, sample_weight=weights, candidates=11)
        assert got[1] == pytest.approx(value, rel=1e-12, abs=1e-12), (name, seed)
        # The pick may differ only between thresholds whose scikit-learn values are ties.
        index = np.flatnonzero(COARSE == got[0])[0]
        assert expected_values[index] == pytest.approx(value, rel=1e-12, abs=1e-12)


def test_class_weights_that_round_give_scikit_learn_s_threshold_on_a_larger_set():
    rng = np.random.default_rng(5)
    labels = rng.integers(0, 2, 2000)
    scores = np.clip(labels * 0.3 + rng.random(2000) * 0.7, 0, 1)
    weights = np.where(labels == 1, 0.3, 1.0)
    _, expected = per_threshold(metrics.f1, labels, scores, weights)
    got = metrics.best_threshold(labels, scores, metrics.f1, sample_weight=weights)
    assert got[0] == expected[0]
    assert got[1] == pytest.approx(expected[1], rel=1e-12)
