"""dynamic_predict_threshold maximizes the key metric when it is thresholded, else F1."""

from __future__ import annotations

import numpy as np
import pytest

from trainkit import metrics
from trainkit.training.evaluation.scoring import resolve_val_metrics, tune_threshold

# Positives score 0.3 to 1.0; negatives 0.0 to 0.75: F1 wants a low threshold (recall),
# precision a high one (above every negative).
Y = np.array([1] * 8 + [0] * 8, dtype="float32")[:, None]
P = np.array(
    [0.3, 0.35, 0.4, 0.45, 0.8, 0.85, 0.9, 1.0, 0.0, 0.1, 0.15, 0.2, 0.25, 0.6, 0.7, 0.75],
    dtype="float32",
)[:, None]


def tuned(key_metric, max_is_best=True):
    (key,) = resolve_val_metrics([key_metric], "binary_crossentropy")
    return tune_threshold(key, max_is_best, Y, P, None)


def test_the_threshold_follows_a_thresholded_key_metric():
    by_f1, by_precision = tuned("f1"), tuned("precision")
    assert by_precision >= 0.75 and by_f1 <= 0.45  # precision: no negative; F1: recall
    assert metrics.precision(Y, P, threshold=by_precision) == 1.0
    assert metrics.f1(Y, P, threshold=by_f1) > metrics.f1(Y, P, threshold=by_precision)


@pytest.mark.parametrize("key_metric", ["loss", "roc_auc"])
def test_a_key_metric_without_a_threshold_tunes_f1(key_metric):
    entries = ["loss"] if key_metric == "loss" else [key_metric]
    key = None if key_metric == "loss" else resolve_val_metrics(entries, "binary_crossentropy")[0]
    assert tune_threshold(key, key_metric != "loss", Y, P, None) == tuned("f1")
