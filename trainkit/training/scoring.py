"""Validation scores: `val_metrics` on whole arrays, the tuned threshold, the best subset.

Used by predict-mode validation (`eval_fn='predict'`), by `tg.evaluate()` in that mode,
and, for `best_subset_size`, by evaluate mode too. The metric functions themselves live
in `trainkit.metrics`; this module binds them to a model (its loss, its accuracy variant)
and to the trainer's options.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from trainkit import metrics


@dataclass(frozen=True)
class ValMetric:
    """One entry of `val_metrics`: its history name and how to compute it."""

    name: str
    fn: Callable[..., float] | None  # None for 'loss' (computed by the model)
    takes_weights: bool
    takes_threshold: bool


def loss_name(model: Any) -> str:
    """A name for the model's compiled loss ('' when unknown), to pick accuracy variants."""
    loss = getattr(model, "loss", None)
    if isinstance(loss, str):
        return loss
    if isinstance(loss, (list, tuple, dict)):
        return ""
    name = getattr(loss, "name", None) or getattr(loss, "__name__", None)
    return name or type(loss).__name__


def _accepts(fn: Callable[..., Any], argument: str) -> bool:
    try:
        parameters = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False
    return argument in parameters or any(p.kind == p.VAR_KEYWORD for p in parameters.values())


def resolve_val_metrics(entries: Sequence[Any], loss: str) -> list[ValMetric]:
    """Names, aliases and callables -> `ValMetric`s; unknown names raise ValueError."""
    resolved = []
    for entry in entries:
        if entry == "loss":
            resolved.append(ValMetric("loss", None, True, False))
            continue
        if callable(entry):
            name = getattr(entry, "__name__", type(entry).__name__)
            fn = entry
        else:
            name, fn = entry, metrics.resolve(entry, loss)
        takes_threshold = (
            metrics.canonical_name(name, loss) in metrics.THRESHOLDED
            if fn in metrics.METRICS.values()
            else _accepts(fn, "threshold")
        )
        resolved.append(ValMetric(name, fn, _accepts(fn, "sample_weight"), takes_threshold))
    return resolved


def compute_metrics(
    val_metrics: list[ValMetric],
    model: Any,
    y_true: Any,
    y_pred: np.ndarray,
    sample_weight: np.ndarray | None,
    threshold: float,
) -> dict[str, float]:
    """Every val metric on whole arrays; `'loss'` from the model's compiled loss."""
    logs = {}
    for metric in val_metrics:
        if metric.fn is None:
            logs[metric.name] = model_loss(model, y_true, y_pred, sample_weight)
            continue
        kwargs: dict[str, Any] = {}
        if metric.takes_weights and sample_weight is not None:
            kwargs["sample_weight"] = sample_weight
        if metric.takes_threshold:
            kwargs["threshold"] = threshold
        logs[metric.name] = float(metric.fn(y_true, y_pred, **kwargs))
    return logs


def model_loss(model: Any, y_true: Any, y_pred: np.ndarray, sample_weight: Any) -> float:
    """`model.compute_loss` on whole arrays: Keras' reduction, sample weights included.

    With Keras' default `'sum_over_batch_size'` reduction this is `sum(w * l) / n`, which
    equals the sample-weighted mean over batches that `model.evaluate` reports.
    """
    import tensorflow as tf

    y_pred_tensor = tf.convert_to_tensor(y_pred)
    loss = model.compute_loss(
        y=tf.nest.map_structure(tf.convert_to_tensor, y_true),
        y_pred=y_pred_tensor,
        sample_weight=None if sample_weight is None else tf.convert_to_tensor(sample_weight),
        training=False,
    )
    return float(np.asarray(loss))


def tune_threshold(
    key: ValMetric | None,
    max_is_best: bool,
    y_true: Any,
    y_pred: np.ndarray,
    sample_weight: np.ndarray | None,
) -> float:
    """The threshold in [0, 1] (step 0.01) maximizing the key metric, else F1.

    The key metric is used when it is thresholded and larger is better; otherwise F1.
    Ties go to the threshold closest to 0.5.
    """
    if np.asarray(y_pred).reshape(len(y_pred), -1).shape[1] != 1:
        raise ValueError(
            "dynamic_predict_threshold=True needs binary predictions (one score per "
            f"sample). Received: predictions of shape {np.shape(y_pred)}"
        )
    fn: Callable[..., float] = metrics.f1
    if key is not None and key.fn is not None and key.takes_threshold and max_is_best:
        fn = key.fn
    threshold, _ = metrics.best_threshold(y_true, y_pred, fn, sample_weight=sample_weight)
    return threshold


def best_subset(
    values: Sequence[float], weights: Sequence[float], size: int, max_is_best: bool
) -> list[int]:
    """Indices of the `size` items whose weighted mean of `values` is best (exact).

    Maximizes `sum(w_i v_i) / sum(w_i)` over subsets of `size` items by Dinkelbach's
    method: for a trial mean `m`, the best subset takes the `size` largest
    `w_i (v_i - m)`; iterating `m` to that subset's mean reaches the optimum in a
    few steps. With equal weights it is simply the `size` best values. Returns the
    indices in increasing order.
    """
    v = np.asarray(values, dtype=float) * (1.0 if max_is_best else -1.0)
    w = np.asarray(weights, dtype=float)
    order = np.argsort(-v, kind="stable")[:size]
    mean = float(np.average(v[order], weights=w[order])) if w[order].sum() else 0.0
    for _ in range(100):
        candidate = np.argsort(-(w * (v - mean)), kind="stable")[:size]
        new_mean = float(np.average(v[candidate], weights=w[candidate]))
        if new_mean <= mean + 1e-12:
            break
        order, mean = candidate, new_mean
    return sorted(int(i) for i in order)


@dataclass
class ValidationSettings:
    """The checked validation options of one trainer (see `config.check_validation_args`)."""

    eval_fn: str = "evaluate"
    val_metrics: list[ValMetric] | None = None  # predict mode: resolved metrics
    val_metric_names: list[str] | None = None  # as given (evaluate mode: a filter)
    class_weights: dict[int, float] | None = None
    val_class_weights: dict[int, float] | None = None
    loss_weighted_slices_range: tuple[float, float] | None = None
    pred_weighted_slices_range: tuple[float, float] | None = None
    best_subset_size: int | None = None
    predict_threshold: float = 0.5
    dynamic_predict_threshold: bool = False
    pad_val_batches: bool = False  # pad partial batches to the model's fixed batch size

    def key(self, key_metric: str) -> ValMetric | None:
        for metric in self.val_metrics or []:
            if metric.name == key_metric:
                return metric
        return None
