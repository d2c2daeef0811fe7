"""Which way a metric is better, and `key_metric` with its direction (`max_is_best`).

A name is read as Keras' monitor callbacks read it for `mode='auto'`: losses and errors
are better lower, scores higher; a name whose direction is unknown needs `max_is_best`.
"""

from __future__ import annotations

from typing import Any

from trainkit._validation import check_bool

# Metric directions by name, as Keras' monitor callbacks decide `mode='auto'`: a name
# neither list knows is refused as `key_metric` unless `max_is_best` is given.
_MIN_IS_BEST_NAMES = {
    "mae", "mse", "rmse", "mape", "msle", "kld", "hinge", "logcosh", "poisson",
    "kl_divergence", "log_cosh", "squared_hinge", "categorical_hinge",
    "false_positives", "false_negatives", "fpr", "fnr",
}  # fmt: skip
_MIN_IS_BEST_SUFFIXES = ("loss", "error", "crossentropy")
_MAX_IS_BEST_NAMES = {
    "accuracy", "acc", "auc", "roc_auc", "pr_auc", "r2", "r2_score", "tpr", "tnr",
    "sensitivity", "specificity", "true_positives", "true_negatives", "iou", "mean_iou",
    "cosine_similarity", "fbeta_score", "mean_io_u", "one_hot_io_u", "one_hot_mean_io_u",
}  # fmt: skip
# f1, f1_macro, precision_weighted, recall_at_precision, sparse_categorical_accuracy, ...
_MAX_IS_BEST_PREFIXES = ("f1", "precision", "recall")
_MAX_IS_BEST_SUFFIXES = ("accuracy", "_auc", "_iou", "_at_sensitivity", "_at_specificity")

_UNKNOWN_DIRECTION = (
    "trainkit cannot tell whether key_metric={key_metric!r} is better higher or lower "
    "(it knows losses, errors, mse/mae/..., false_positives/false_negatives as lower is "
    "better and accuracy, auc, f1*, precision*, recall*, r2, tpr, tnr, true_positives, "
    "... as higher is better). Pass `max_is_best=True` if a higher {key_metric!r} is "
    "better, `max_is_best=False` if lower is. Received: key_metric={key_metric!r}, "
    "max_is_best=None"
)


def metric_direction(name: str) -> bool | None:
    """True if a higher `name` is better, False if lower is, None if unknown.

    A per-output name (`'out1_f1'`, as Keras and predict mode name the metrics of a
    model with several outputs) takes the direction of the metric after the prefix.
    """
    name = name.lower().removeprefix("val_")
    direction = _direction(name)
    parts = name.split("_")
    for start in range(1, len(parts)):
        if direction is not None:
            break
        direction = _direction("_".join(parts[start:]))
    return direction


def _direction(name: str) -> bool | None:
    if name in _MIN_IS_BEST_NAMES or name.endswith(_MIN_IS_BEST_SUFFIXES):
        return False
    if (
        name in _MAX_IS_BEST_NAMES
        or name.startswith(_MAX_IS_BEST_PREFIXES)
        or name.endswith(_MAX_IS_BEST_SUFFIXES)
    ):
        return True
    return None


def default_max_is_best(key_metric: str) -> bool:
    """False for losses and errors (`loss`, `*_error`, `mse`, ...), True for scores.

    Scores: `accuracy`, `auc`, `f1*`, `precision*`, `recall*`, `r2`, `tpr`, `tnr`, ...

    Raises:
        ValueError: for a name whose direction is unknown (pass `max_is_best`).
    """
    direction = metric_direction(key_metric)
    if direction is None:
        raise ValueError(_UNKNOWN_DIRECTION.format(key_metric=key_metric))
    return direction


def check_key_metric(key_metric: Any, max_is_best: Any) -> tuple[str, bool]:
    """`key_metric` and its direction: `max_is_best` as given, else by the name.

    Raises:
        ValueError: `max_is_best=None` with a name whose direction is unknown.
    """
    if not isinstance(key_metric, str) or not key_metric:
        raise TypeError(
            "`key_metric` must be a metric name such as 'loss' or 'accuracy'. "
            f"Received: key_metric={key_metric!r}"
        )
    if max_is_best is None:
        return key_metric, default_max_is_best(key_metric)
    return key_metric, check_bool("max_is_best", max_is_best)
