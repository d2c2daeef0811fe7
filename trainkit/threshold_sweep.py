"""Thresholded metrics at many thresholds at once, from cumulative confusion counts.

`trainkit.metrics.best_threshold` tries 101 thresholds. Calling a scikit-learn metric at
each costs milliseconds of argument checking per call, plus a pass over the data; here
one binary search puts each score between two thresholds, and cumulative weights of the
positives and negatives per interval give the confusion counts (TP, FP, FN, TN) at every
threshold. Each metric is then computed for all thresholds with the same floating-point
operations scikit-learn performs on those counts, so the values are the same floats,
not just close ones.

That holds because the counts themselves are exact: every partial sum of the weights is
representable, whatever order they are added in (see `exact_weights`). Other weights
(e.g. class weights of `0.3`) are summed in float64 too (`usable_weights`): each count is
then a sum of non-negative terms, within a few ulps of scikit-learn's own sums (and zero
exactly when scikit-learn's is), so the values agree within float tolerance and the
caller treats values that close as ties.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

_QUANTUM_BITS = (0, 20)  # weights that are multiples of 1, else of 2**-20
_EXACT_LIMIT = 2.0**53


@dataclass(frozen=True)
class Counts:
    """Confusion counts at each threshold (arrays), and which classes occur at all.

    `tp`, `fp`, `fn`, `tn` are weighted; a class is present when some sample has it as
    its label or its decision, whatever its weight (scikit-learn's `unique_labels`).
    """

    tp: np.ndarray
    fp: np.ndarray
    fn: np.ndarray
    tn: np.ndarray
    has_positive: np.ndarray  # class 1 is a label or a decision
    has_negative: np.ndarray  # class 0 is a label or a decision

    @property
    def total(self) -> np.ndarray:
        return (self.tp + self.fn) + (self.fp + self.tn)


def exact_weights(sample_weight: Any, n: int) -> np.ndarray | None:
    """The weights as float64 if every sum of them is exact in any order, else None.

    True when all weights are non-negative multiples of `q = 2**-k` (k = 0 or 20) and
    their total is below `2**53 * q`: every partial sum is then a multiple of `q` that
    float64 holds exactly. Counts without weights, integer weights and class weights such
    as 0.5 or 2.5 qualify; 0.1 does not. Also None for weights of another shape, or with
    no positive total.
    """
    if sample_weight is None:
        return np.ones(n)
    weights = np.asarray(sample_weight)
    if weights.dtype.kind not in "biuf" or weights.shape != (n,):
        return None
    weights = weights.astype(np.float64)
    if not n or weights.min() < 0:
        return None
    for bits in _QUANTUM_BITS:
        scaled = np.ldexp(weights, bits)  # exact: a power-of-two scaling
        if np.array_equal(scaled, np.floor(scaled)):
            total = scaled.sum()  # NaN and inf fail here
            return weights if 0 < total < _EXACT_LIMIT else None
    return None


def usable_weights(sample_weight: Any, n: int) -> np.ndarray | None:
    """Any weights the counts can be summed from: float64, shape (n,), finite, >= 0, with
    a positive total; None otherwise (the metric itself then says what is wrong)."""
    if sample_weight is None:
        return np.ones(n)
    weights = np.asarray(sample_weight)
    if weights.dtype.kind not in "biuf" or weights.shape != (n,) or not n:
        return None
    weights = weights.astype(np.float64)
    if not np.isfinite(weights).all() or weights.min() < 0 or not weights.sum() > 0:
        return None
    return weights


def confusion_counts(
    labels: np.ndarray, scores: np.ndarray, weights: np.ndarray, thresholds: np.ndarray
) -> Counts:
    """Counts of the decisions `scores > threshold` against 0/1 `labels`, per threshold.

    Each sample falls in one bin between consecutive thresholds (one binary search);
    weighted bin totals summed from the top give TP and FP at every threshold. The
    thresholds must increase. The comparison is made in the dtype NumPy uses for
    `scores > threshold`, so a score equal to a threshold decides as it does there; NaN
    scores decide 0, as there.
    """
    dtype = np.result_type(scores, thresholds[:1])
    scores = np.where(np.isnan(scores), -np.inf, scores).astype(dtype)
    # A sample decides 1 at threshold k exactly when k < its bin (thresholds below it).
    bins = np.searchsorted(thresholds.astype(dtype), scores, side="left")
    positive = labels == 1
    size = len(thresholds) + 1
    positives = np.bincount(bins, np.where(positive, weights, 0.0), size)
    negatives = np.bincount(bins, np.where(positive, 0.0, weights), size)
    tp, fp = _above(positives), _above(negatives)
    # Summed from below rather than `total - tp`: a sum of non-negative weights is 0 only
    # when every term is, so a count that is 0 for scikit-learn is 0 here, whatever the
    # rounding (a tiny remainder would turn a zero division into a ratio).
    fn, tn = _below(positives), _below(negatives)
    decided_positive = _above(np.bincount(bins, minlength=size))  # samples, unweighted
    return Counts(
        tp=tp,
        fp=fp,
        fn=fn,
        tn=tn,
        has_positive=bool(positive.any()) | (decided_positive > 0),
        has_negative=bool(not positive.all()) | (decided_positive < len(labels)),
    )


def _above(per_bin: np.ndarray) -> np.ndarray:
    """Per threshold k, the sum over bins above k (bins k+1 .. end)."""
    return np.cumsum(per_bin[::-1])[::-1][1:]


def _below(per_bin: np.ndarray) -> np.ndarray:
    """Per threshold k, the sum over bins up to k (bins 0 .. k)."""
    return np.cumsum(per_bin)[:-1]


def _divide(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """`numerator / denominator`, 0 where the denominator is 0 (`zero_division=0`)."""
    empty = denominator == 0
    return np.where(empty, 0.0, numerator / np.where(empty, 1.0, denominator))


# Per class, as scikit-learn's multilabel confusion matrix: (tp, predicted, true).
def _class_counts(counts: Counts) -> list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    c = counts
    return [
        (c.tn, c.tn + c.fn, c.tn + c.fp, c.has_negative),
        (c.tp, c.tp + c.fp, c.tp + c.fn, c.has_positive),
    ]


def _score(kind: str, tp: np.ndarray, predicted: np.ndarray, true: np.ndarray) -> np.ndarray:
    if kind == "precision":
        return _divide(tp, predicted)
    if kind == "recall":
        return _divide(tp, true)
    return _divide(2 * tp, 1 * true + predicted)  # F1 = F-beta, beta=1: sklearn's formula


def _averaged(kind: str, average: str) -> Callable[[Counts], np.ndarray]:
    """scikit-learn's `average=` over the classes present, as `precision_recall_fscore_support`."""

    def values(counts: Counts) -> np.ndarray:
        per_class = _class_counts(counts)
        if average == "micro":
            tp = per_class[0][0] + per_class[1][0]
            total = counts.total
            return _score(kind, tp, total, total)
        scores = [_score(kind, tp, predicted, true) for tp, predicted, true, _ in per_class]
        if average == "weighted":  # absent classes add 0 * 0; the total weight is > 0
            trues = [true for _, _, true, _ in per_class]
            return (scores[0] * trues[0] + scores[1] * trues[1]) / (trues[0] + trues[1])
        present = [has for *_, has in per_class]
        summed = np.where(present[0], scores[0], 0.0) + np.where(present[1], scores[1], 0.0)
        return summed / (present[0].astype(int) + present[1])

    return values


def _balanced_accuracy(counts: Counts) -> np.ndarray:
    """Mean recall over the classes with label weight (sklearn drops the others' NaN)."""
    recalls, kept = [], []
    for tp, _, true, has in _class_counts(counts):
        recalls.append(_divide(tp, true))
        kept.append(has & (true > 0))
    summed = np.where(kept[0], recalls[0], 0.0) + np.where(kept[1], recalls[1], 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):  # no class kept: NaN, as sklearn
        return summed / (kept[0].astype(int) + kept[1])


def _binary(kind: str) -> Callable[[Counts], np.ndarray]:
    def values(counts: Counts) -> np.ndarray:
        return _score(kind, *_class_counts(counts)[1][:3])

    return values


FORMULAS: dict[str, Callable[[Counts], np.ndarray]] = {
    "binary_accuracy": lambda c: (c.tp + c.tn) / c.total,
    "precision": _binary("precision"),
    "recall": _binary("recall"),
    "tnr": lambda c: _divide(c.tn, c.tn + c.fp),
    "f1": _binary("f1"),
    **{
        f"{kind}_{average}": _averaged(kind, average)
        for kind in ("f1", "precision", "recall")
        for average in ("macro", "micro", "weighted")
    },
    "balanced_accuracy": _balanced_accuracy,
}
"""Metric name -> its values at every threshold, from the counts (the metrics' names in
`trainkit.metrics`)."""
