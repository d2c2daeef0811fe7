"""Metrics computed on whole arrays with NumPy and scikit-learn (predict-mode validation).

Every metric has the signature `fn(y_true, y_pred, sample_weight=None)` and returns a
float. Classification metrics take probabilities (or scores) in `y_pred` and threshold
them at `threshold` (binary) or take the argmax (categorical); labels may be binary
(`(n,)` or `(n, 1)`), sparse class indices or one-hot.

Binary metrics (`binary_accuracy`, precision, recall/TPR, TNR, F1) also accept
two-class one-hot labels and two-column softmax outputs `(n, 2)`: column 1 is the
positive class.

Edge cases follow scikit-learn's `zero_division=0`: precision with no positive
predictions, recall/TPR with no positive labels, TNR with no negative labels, and F1 when
both precision and recall are 0 are 0.0. ROC-AUC with only one class present in `y_true`
is undefined and returns `nan`.

Multi-class averages (`f1_macro`, `f1_micro`, `f1_weighted`, and the same for
`precision` and `recall`, plus `balanced_accuracy`) compare class indices: the argmax of
one-hot labels or of `(n, k)` predictions, sparse labels as given, and for one-score
binary outputs `(n,)`/`(n, 1)` the decision `score > threshold`. They are
scikit-learn's `average='macro'|'micro'|'weighted'` over the classes present in the
labels or the predictions, with `zero_division=0` (a class never predicted has
precision 0).

Use `resolve(name, loss=...)` to turn a name or alias (`'acc'`, `'f1'`, `'mae'`, …) into
a callable; `'accuracy'` picks binary, categorical or sparse accuracy from the loss.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from sklearn import metrics as skm

from trainkit.threshold_sweep import FORMULAS, confusion_counts, exact_weights, usable_weights

Metric = Callable[..., float]


def _positive_column(y: np.ndarray) -> np.ndarray:
    """Two-class one-hot labels or softmax outputs `(n, 2)` -> the positive column."""
    return y[:, 1:] if y.shape[1] == 2 else y


def _binary_columns(y_true: Any, y_pred: Any) -> tuple[np.ndarray, np.ndarray]:
    """Labels (as ints) and scores, one per sample; two-class columns -> the positive one."""
    y_true = _positive_column(np.asarray(y_true).reshape(len(y_true), -1))
    y_pred = _positive_column(np.asarray(y_pred).reshape(len(y_pred), -1))
    if y_true.shape[1] != 1 or y_pred.shape[1] != 1:
        raise ValueError(
            "This metric is binary: it needs one label and one score per sample. For "
            "multi-class outputs use an average, e.g. 'f1_macro', 'precision_weighted', "
            f"'recall_micro'. Received: y_true shape {y_true.shape}, y_pred shape "
            f"{y_pred.shape}."
        )
    return y_true[:, 0].astype(int), y_pred[:, 0]


def _flat_binary(y_true: Any, y_pred: Any, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    labels, scores = _binary_columns(y_true, y_pred)
    return labels, (scores > threshold).astype(int)


def _class_indices(y: np.ndarray) -> np.ndarray:
    y = np.asarray(y)
    if y.ndim > 1 and y.shape[-1] > 1:
        return y.argmax(axis=-1)
    return y.reshape(len(y)).astype(int)


def binary_accuracy(y_true, y_pred, sample_weight=None, threshold: float = 0.5) -> float:
    labels, predicted = _flat_binary(y_true, y_pred, threshold)
    return float(np.average(labels == predicted, weights=sample_weight))


def categorical_accuracy(y_true, y_pred, sample_weight=None) -> float:
    """Argmax of one-hot (or sparse) labels against argmax of the predictions."""
    hits = _class_indices(y_true) == np.asarray(y_pred).argmax(axis=-1)
    return float(np.average(hits, weights=sample_weight))


sparse_categorical_accuracy = categorical_accuracy


def precision(y_true, y_pred, sample_weight=None, threshold: float = 0.5) -> float:
    labels, predicted = _flat_binary(y_true, y_pred, threshold)
    return float(
        skm.precision_score(labels, predicted, sample_weight=sample_weight, zero_division=0)
    )


def recall(y_true, y_pred, sample_weight=None, threshold: float = 0.5) -> float:
    labels, predicted = _flat_binary(y_true, y_pred, threshold)
    return float(skm.recall_score(labels, predicted, sample_weight=sample_weight, zero_division=0))


tpr = recall


def tnr(y_true, y_pred, sample_weight=None, threshold: float = 0.5) -> float:
    """True negative rate (specificity): recall of the negative class."""
    labels, predicted = _flat_binary(y_true, y_pred, threshold)
    return float(
        skm.recall_score(1 - labels, 1 - predicted, sample_weight=sample_weight, zero_division=0)
    )


def f1(y_true, y_pred, sample_weight=None, threshold: float = 0.5) -> float:
    labels, predicted = _flat_binary(y_true, y_pred, threshold)
    return float(skm.f1_score(labels, predicted, sample_weight=sample_weight, zero_division=0))


def roc_auc(y_true, y_pred, sample_weight=None) -> float:
    """Area under the ROC curve; `nan` when `y_true` holds only one class.

    Binary scores `(n,)`/`(n, 1)`, two-class outputs `(n, 2)` (the positive column), or
    `k > 2` classes: one-vs-rest, macro average (sparse labels are one-hot encoded).
    """
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    y_pred = y_pred.reshape(len(y_pred), -1)
    if y_pred.shape[1] == 2:
        y_true = _class_indices(y_true) if y_true.ndim > 1 and y_true.shape[-1] == 2 else y_true
        y_pred = y_pred[:, 1]
    elif y_pred.shape[1] > 2 and (y_true.ndim == 1 or y_true.shape[-1] == 1):
        y_true = np.eye(y_pred.shape[1])[_class_indices(y_true)]
    if y_true.ndim > 1 and y_true.shape[-1] > 1:  # one-hot: one-vs-rest, macro average
        if len(np.unique(y_true.argmax(-1))) < 2:
            return float("nan")
        return float(skm.roc_auc_score(y_true, y_pred, sample_weight=sample_weight))
    labels = y_true.reshape(len(y_true))
    if len(np.unique(labels)) < 2:
        return float("nan")
    return float(
        skm.roc_auc_score(
            labels, np.asarray(y_pred).reshape(len(labels)), sample_weight=sample_weight
        )
    )


def _class_labels(y_true: Any) -> np.ndarray:
    """Labels as class indices: the argmax of one-hot rows, else rounded to ints."""
    labels = np.asarray(y_true).reshape(len(y_true), -1)
    if labels.shape[1] > 1:
        return labels.argmax(axis=-1)
    return np.rint(labels[:, 0]).astype(int)


def _class_decisions(y_true, y_pred, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """Labels and predictions as class indices (argmax, or `score > threshold`)."""
    scores = np.asarray(y_pred).reshape(len(y_pred), -1)
    if scores.shape[1] == 1:
        predicted = (scores[:, 0] > threshold).astype(int)
    else:
        predicted = scores.argmax(axis=-1)
    return _class_labels(y_true), predicted


def _averaged(score: Callable[..., float], average: str) -> Metric:
    """`score` (a scikit-learn per-class score) averaged over classes by `average`."""

    def metric(y_true, y_pred, sample_weight=None, threshold: float = 0.5) -> float:
        labels, predicted = _class_decisions(y_true, y_pred, threshold)
        return float(
            score(labels, predicted, average=average, sample_weight=sample_weight, zero_division=0)
        )

    metric.__name__ = metric.__qualname__ = f"{score.__name__.removesuffix('_score')}_{average}"
    metric.__doc__ = (
        f"Multi-class {metric.__name__.split('_')[0]}, scikit-learn's average={average!r} "
        "(zero_division=0), on argmax decisions."
    )
    return metric


f1_macro = _averaged(skm.f1_score, "macro")
f1_micro = _averaged(skm.f1_score, "micro")
f1_weighted = _averaged(skm.f1_score, "weighted")
precision_macro = _averaged(skm.precision_score, "macro")
precision_micro = _averaged(skm.precision_score, "micro")
precision_weighted = _averaged(skm.precision_score, "weighted")
recall_macro = _averaged(skm.recall_score, "macro")
recall_micro = _averaged(skm.recall_score, "micro")
recall_weighted = _averaged(skm.recall_score, "weighted")


def balanced_accuracy(y_true, y_pred, sample_weight=None, threshold: float = 0.5) -> float:
    """Mean of the per-class recalls over the classes present in `y_true` (scikit-learn)."""
    labels, predicted = _class_decisions(y_true, y_pred, threshold)
    return float(skm.balanced_accuracy_score(labels, predicted, sample_weight=sample_weight))


def _regression(y_true, y_pred) -> tuple[np.ndarray, np.ndarray]:
    y_true, y_pred = np.asarray(y_true, dtype=float), np.asarray(y_pred, dtype=float)
    return y_true.reshape(len(y_true), -1), y_pred.reshape(len(y_pred), -1)


def mae(y_true, y_pred, sample_weight=None) -> float:
    return float(skm.mean_absolute_error(*_regression(y_true, y_pred), sample_weight=sample_weight))


def mse(y_true, y_pred, sample_weight=None) -> float:
    return float(skm.mean_squared_error(*_regression(y_true, y_pred), sample_weight=sample_weight))


def r2(y_true, y_pred, sample_weight=None) -> float:
    return float(skm.r2_score(*_regression(y_true, y_pred), sample_weight=sample_weight))


METRICS: dict[str, Metric] = {
    "binary_accuracy": binary_accuracy,
    "categorical_accuracy": categorical_accuracy,
    "sparse_categorical_accuracy": sparse_categorical_accuracy,
    "precision": precision,
    "recall": recall,
    "tpr": tpr,
    "tnr": tnr,
    "f1": f1,
    "roc_auc": roc_auc,
    "f1_macro": f1_macro,
    "f1_micro": f1_micro,
    "f1_weighted": f1_weighted,
    "precision_macro": precision_macro,
    "precision_micro": precision_micro,
    "precision_weighted": precision_weighted,
    "recall_macro": recall_macro,
    "recall_micro": recall_micro,
    "recall_weighted": recall_weighted,
    "balanced_accuracy": balanced_accuracy,
    "mae": mae,
    "mse": mse,
    "r2": r2,
}

ALIASES = {
    "acc": "accuracy",
    "f1_score": "f1",
    "auc": "roc_auc",
    "sensitivity": "tpr",
    "specificity": "tnr",
    "mean_absolute_error": "mae",
    "mean_squared_error": "mse",
}

# Metrics of one binary decision per sample: refused for multi-class outputs.
BINARY = {"binary_accuracy", "precision", "recall", "tpr", "tnr", "f1"}
# Multi-class averages; they also take binary scores, decided at `threshold`.
AVERAGED = {
    f"{score}_{average}"
    for score in ("f1", "precision", "recall")
    for average in ("macro", "micro", "weighted")
} | {"balanced_accuracy"}
# Metrics that take `threshold=` (binary decisions).
THRESHOLDED = BINARY | AVERAGED


def accuracy_for_loss(loss_name: str) -> str:
    """The accuracy variant that matches a loss name, as Keras chooses it."""
    name = loss_name.lower()
    if "sparse" in name:
        return "sparse_categorical_accuracy"
    if "binary" in name or "hinge" in name:
        return "binary_accuracy"
    return "categorical_accuracy"


def canonical_name(name: str, loss_name: str = "") -> str:
    """Resolve aliases; `'accuracy'` becomes the variant matching the loss."""
    name = ALIASES.get(name, name)
    if name == "accuracy":
        return accuracy_for_loss(loss_name)
    return name


def resolve(name: str, loss_name: str = "") -> Metric:
    """The metric function for `name` (or alias); raises ValueError listing the known names."""
    canonical = canonical_name(name, loss_name)
    if canonical not in METRICS:
        known = ", ".join(sorted([*METRICS, *ALIASES, "accuracy", "loss"]))
        raise ValueError(
            f"Unknown metric {name!r}. Known metrics: {known}; or pass a callable "
            f"fn(y_true, y_pred) -> float. Received: val_metrics=[{name!r}]"
        )
    return METRICS[canonical]


def best_threshold(
    y_true, y_pred, metric: Metric = f1, *, sample_weight=None, candidates: int = 101
) -> tuple[float, float]:
    """Threshold in [0, 1] maximizing a thresholded metric; returns `(threshold, value)`.

    Tries `candidates` evenly spaced thresholds, 0 and 1 included. Ties go to the
    threshold closest to 0.5, so a flat metric keeps the default. The metrics of this
    module that depend only on the confusion counts (`f1`, `precision`, `recall`/`tpr`,
    `tnr`, `binary_accuracy`, the multi-class averages and `balanced_accuracy`) are
    computed for every threshold at once from one sort of the scores, for any
    non-negative weights — the same values as calling the metric per threshold (the
    same floats for weights whose sums are exact: none, integers, multiples of 2**-20
    such as 0.5; within float tolerance for others such as 0.3, where values that close
    count as ties), in milliseconds for 100k samples; any other callable is called once
    per threshold.

    Example:
        >>> threshold, value = best_threshold(labels, scores, metrics.f1)
    """
    thresholds = np.linspace(0.0, 1.0, candidates)
    values = _values_from_counts(metric, y_true, y_pred, sample_weight, thresholds)
    exact = (
        values is None
        or sample_weight is None
        or exact_weights(sample_weight, np.size(sample_weight)) is not None
    )
    if values is None:
        values = np.array([metric(y_true, y_pred, sample_weight, threshold=t) for t in thresholds])
    if exact:
        best = np.flatnonzero(values == values.max())
    else:  # weights summed with rounding: values within float tolerance are ties
        best = np.flatnonzero(np.isclose(values, values.max(), rtol=1e-12, atol=1e-15))
    pick = best[np.argmin(np.abs(thresholds[best] - 0.5))]
    return float(thresholds[pick]), float(values[pick])


def _values_from_counts(
    metric: Metric, y_true: Any, y_pred: Any, sample_weight: Any, thresholds: np.ndarray
) -> np.ndarray | None:
    """`metric` at every threshold from cumulative counts; None where counts cannot say.

    None for callables not of this module, multi-column scores, labels other than 0/1,
    and weights that are negative, not finite or of another shape (the caller then calls
    the metric per threshold, which also raises the metric's own errors for bad input).
    """
    name = next((n for n, fn in METRICS.items() if fn is metric and n in FORMULAS), None)
    if name is None:
        return None
    try:
        if name in BINARY:
            labels, scores = _binary_columns(y_true, y_pred)
        else:
            scores = np.asarray(y_pred).reshape(len(y_pred), -1)
            if scores.shape[1] != 1:
                return None  # argmax decisions: no threshold to tune
            labels, scores = _class_labels(y_true), scores[:, 0]
    except (ValueError, TypeError):
        return None
    if not 0 < len(labels) == len(scores) or scores.dtype.kind not in "biuf":
        return None
    if labels.min() < 0 or labels.max() > 1:
        return None
    weights = exact_weights(sample_weight, len(labels))
    if weights is None:
        weights = usable_weights(sample_weight, len(labels))
    if weights is None:
        return None
    return FORMULAS[name](confusion_counts(labels, scores, weights, thresholds))
