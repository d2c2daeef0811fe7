"""Validation's arguments, checked when the trainer is built: `ValidationSettings`.

`eval_fn`, `val_metrics` (with `key_metric` among them), the class weights and the
validation rare options (threshold, slice weights, best subset, padding).
"""

from __future__ import annotations

import difflib
import numbers
from typing import Any

from trainkit._validation import check_bool, check_choice, check_int
from trainkit.training.evaluation.sample_weights import check_class_weights, check_weight_range
from trainkit.training.evaluation.scoring import ValidationSettings, resolve_model_val_metrics


def check_validation_args(
    args: dict[str, Any], options: dict[str, Any], model: Any
) -> ValidationSettings:
    """`eval_fn`, `val_metrics`, class weights and the validation rare options.

    `key_metric` is checked against `val_metrics` here when they are given (or, in
    predict mode, defaulted); otherwise at the first validation.
    """
    eval_fn = check_choice("eval_fn", args["eval_fn"], ("evaluate", "predict"))
    names = _check_val_metrics(args["val_metrics"], eval_fn, args["key_metric"])
    settings = ValidationSettings(
        eval_fn=eval_fn,
        val_metric_names=names,
        class_weights=check_class_weights("class_weights", args["class_weights"]),
        val_class_weights=check_class_weights("val_class_weights", args["val_class_weights"]),
        loss_weighted_slices_range=check_weight_range(
            "loss_weighted_slices_range", options["loss_weighted_slices_range"]
        ),
        pred_weighted_slices_range=check_weight_range(
            "pred_weighted_slices_range", options["pred_weighted_slices_range"]
        ),
        best_subset_size=_check_best_subset_size(options["best_subset_size"], args["val_datagen"]),
        predict_threshold=_check_threshold(options["predict_threshold"]),
        dynamic_predict_threshold=check_bool(
            "dynamic_predict_threshold", options["dynamic_predict_threshold"]
        ),
        pad_val_batches=check_bool("pad_val_batches", options["pad_val_batches"]),
    )
    if eval_fn == "predict":
        entries = args["val_metrics"] if args["val_metrics"] is not None else names
        settings.val_metrics = resolve_model_val_metrics(entries or [], model)
        _check_key_in_val_metrics(args["key_metric"], [m.name for m in settings.val_metrics])
    elif settings.dynamic_predict_threshold:
        raise ValueError(
            "dynamic_predict_threshold=True tunes the threshold on validation predictions; "
            "it needs eval_fn='predict'. Received: eval_fn='evaluate'"
        )
    return settings


def _check_val_metrics(val_metrics: Any, eval_fn: str, key_metric: str) -> list[str] | None:
    """Names as given (callables by `__name__`); predict mode defaults to loss + key."""
    if val_metrics is None:
        if eval_fn == "evaluate":
            return None
        return ["loss"] if key_metric == "loss" else ["loss", key_metric]
    if isinstance(val_metrics, (str, bytes)) or not isinstance(val_metrics, (list, tuple)):
        raise TypeError(
            "`val_metrics` must be a list of metric names or callables, e.g. "
            f"['loss', 'f1', 'roc_auc']. Received: val_metrics={val_metrics!r}"
        )
    names = []
    for entry in val_metrics:
        if callable(entry) and eval_fn == "predict":
            names.append(getattr(entry, "__name__", type(entry).__name__))
        elif isinstance(entry, str) and entry:
            names.append(entry)
        else:
            raise TypeError(
                "Each of `val_metrics` must be a metric name (str) or, with "
                "eval_fn='predict', a callable fn(y_true, y_pred). "
                f"Received: val_metrics={val_metrics!r} (eval_fn={eval_fn!r})"
            )
    if not names or len(set(names)) != len(names):
        raise ValueError(
            f"`val_metrics` must be non-empty, without repeats. Received: val_metrics={names!r}"
        )
    if eval_fn == "evaluate":
        _check_key_in_val_metrics(key_metric, names)
    return names  # predict mode: checked once resolved (per output for several outputs)


def _check_key_in_val_metrics(key_metric: str, names: list[str]) -> None:
    if key_metric not in names:
        close = difflib.get_close_matches(key_metric, names, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ValueError(
            f"key_metric={key_metric!r} must be one of `val_metrics` {names}: add it to "
            f"`val_metrics` or pick another `key_metric` (with several outputs, a metric is "
            f"recorded per output as '<output>_<metric>').{hint} "
            f"Received: key_metric={key_metric!r}"
        )


def _check_best_subset_size(size: Any, val_datagen: Any) -> int | None:
    if size is None:
        return None
    size = check_int("best_subset_size", size, minimum=1)
    if val_datagen is not None and hasattr(val_datagen, "plan"):
        batches = len(val_datagen)
        if size > batches:
            raise ValueError(
                "`best_subset_size` must be at most the number of validation batches "
                f"({batches}). Received: best_subset_size={size}"
            )
    return size


def _check_threshold(threshold: Any) -> float:
    if not isinstance(threshold, numbers.Real) or isinstance(threshold, bool):
        raise TypeError(
            "`predict_threshold` must be a float in [0, 1]. "
            f"Received: predict_threshold={threshold!r}"
        )
    if not 0.0 <= float(threshold) <= 1.0:
        raise ValueError(
            f"`predict_threshold` must be in [0, 1]. Received: predict_threshold={threshold!r}"
        )
    return float(threshold)
