"""Validation scores: `val_metrics` on whole arrays, the tuned threshold, the best subset.

Used by predict-mode validation (`eval_fn='predict'`), by `tg.evaluate()` in that mode,
and, for `best_subset_size`, by evaluate mode too. The metric functions themselves live
in `trainkit.metrics`; this module binds them to a model (its loss, its accuracy variant)
and to the trainer's options.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from trainkit import metrics
from trainkit.training.evaluation.sample_weights import AnyClassWeights
from trainkit.training.slices.structure import is_structured, output_items, output_names


@dataclass(frozen=True)
class ValMetric:
    """One entry of `val_metrics`: its history name and how to compute it.

    `output` is the model output it scores (None: the model's only output, or for
    `'loss'` the model's total compiled loss).
    """

    name: str
    fn: Callable[..., float] | None  # None for 'loss' (computed by the model)
    takes_weights: bool
    takes_threshold: bool
    output: str | None = None


def loss_name(model: Any) -> str:
    """A name for the model's compiled loss ('' when unknown), to pick accuracy variants."""
    return _loss_name(getattr(model, "loss", None))


def describe_loss(loss: Any) -> Any:
    """A compiled loss by name (never by a function's repr, which holds a memory address):
    its string, or each output's in a dict or list."""
    if isinstance(loss, dict):
        return {str(name): describe_loss(item) for name, item in loss.items()}
    if isinstance(loss, (list, tuple)):
        return [describe_loss(item) for item in loss]
    return "" if loss is None else _loss_name(loss)


def _loss_name(loss: Any) -> str:
    if isinstance(loss, str):
        return loss
    if loss is None or isinstance(loss, (list, tuple, dict)):
        return ""
    name = getattr(loss, "name", None) or getattr(loss, "__name__", None)
    return name or type(loss).__name__


def output_loss_names(model: Any, names: Sequence[str]) -> dict[str, str]:
    """Each output's compiled loss name ('' when unknown): a dict or list of losses."""
    loss = getattr(model, "loss", None)
    if isinstance(loss, dict):
        return {name: _loss_name(loss.get(name)) for name in names}
    if isinstance(loss, (list, tuple)) and len(loss) == len(names):
        return {name: _loss_name(item) for name, item in zip(names, loss)}
    return {name: _loss_name(loss) for name in names}


def _accepts(fn: Callable[..., Any], argument: str) -> bool:
    try:
        parameters = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False
    return argument in parameters or any(p.kind == p.VAR_KEYWORD for p in parameters.values())


def resolve_val_metrics(entries: Sequence[Any], loss: str) -> list[ValMetric]:
    """Names, aliases and callables -> `ValMetric`s; unknown names raise ValueError."""
    return [_resolve(entry, loss, None) for entry in entries]


def resolve_model_val_metrics(entries: Sequence[Any], model: Any) -> list[ValMetric]:
    """`resolve_val_metrics` for `model`: per output when it has several.

    With several outputs, `'loss'` is the total compiled loss; a name that starts with
    an output's name and `_` (`'out1_f1'`) scores that output only; any other name or
    callable scores every output, recorded as `<output>_<name>` (`'out1_accuracy'`,
    `'out2_accuracy'`), each resolved with its output's loss (for `'accuracy'`).
    """
    names = output_names(model)
    if names is None:
        return resolve_val_metrics(entries, loss_name(model))
    losses = output_loss_names(model, names)
    resolved = []
    for entry in entries:
        if entry == "loss":
            resolved.append(_resolve(entry, "", None))
            continue
        output = _named_output(entry, names)
        if output is not None:
            metric = _resolve(entry[len(output) + 1 :], losses[output], output)
            resolved.append(replace(metric, name=entry))
            continue
        for name in names:
            metric = _resolve(entry, losses[name], name)
            resolved.append(replace(metric, name=f"{name}_{metric.name}"))
    return resolved


def _named_output(entry: Any, names: Sequence[str]) -> str | None:
    """The output an `'<output>_<metric>'` entry names (the longest match), else None."""
    if not isinstance(entry, str):
        return None
    matches = [
        name for name in names if entry.startswith(f"{name}_") and len(entry) > len(name) + 1
    ]
    return max(matches, key=len) if matches else None


def _resolve(entry: Any, loss: str, output: str | None) -> ValMetric:
    if entry == "loss":
        if output is not None:
            raise ValueError(
                f"Per-output losses are not computed in predict mode: 'loss' is the model's "
                f"total compiled loss. Received: val_metrics entry {output + '_loss'!r}"
            )
        return ValMetric("loss", None, True, False)
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
    return ValMetric(name, fn, _accepts(fn, "sample_weight"), takes_threshold, output)


def compute_metrics(
    val_metrics: list[ValMetric],
    model: Any,
    y_true: Any,
    y_pred: Any,
    sample_weight: Any,
    threshold: float,
) -> dict[str, float]:
    """Every val metric on whole arrays; `'loss'` from the model's compiled loss.

    Per-output metrics read their output's labels, predictions and weights. Weights
    per timestep `(n, t)` with labels per timestep (`(n, t, ...)`): labels, predictions
    and weights are flattened alike to `n * t` rows first, so each timestep is one
    weighted row (padding, weighted 0, then counts for nothing).
    """
    names = output_names(model)
    logs = {}
    for metric in val_metrics:
        if metric.fn is None:
            logs[metric.name] = model_loss(model, y_true, y_pred, sample_weight)
            continue
        y, p, w = output_arrays(names, metric.output, y_true, y_pred, sample_weight)
        kwargs: dict[str, Any] = {}
        if metric.takes_weights and w is not None:
            kwargs["sample_weight"] = w
        if metric.takes_threshold:
            kwargs["threshold"] = threshold
        logs[metric.name] = float(metric.fn(y, p, **kwargs))
    return logs


def output_arrays(
    names: Sequence[str] | None, output: str | None, y_true: Any, y_pred: Any, weights: Any
) -> tuple[Any, Any, Any]:
    """One output's labels, predictions and weights (per-timestep ones flattened)."""
    if names is not None:
        output = names[0] if output is None else output
        index = list(names).index(output)
        y_true = output_items(names, y_true)[index][1]
        y_pred = output_items(names, y_pred)[index][1]
        if is_structured(weights):
            weights = output_items(names, weights)[index][1]
    return flatten_timesteps(y_true, y_pred, weights)


def flatten_timesteps(y_true: Any, y_pred: Any, weights: Any) -> tuple[Any, Any, Any]:
    """`(n, t, ...)` labels and predictions and `(n, t)` weights -> `n * t` rows."""
    if weights is None or np.ndim(weights) != 2:
        return y_true, y_pred, weights
    w = np.asarray(weights)
    y, p = np.asarray(y_true), np.asarray(y_pred)
    if y.shape[:2] != w.shape or p.shape[:2] != w.shape:
        return y_true, y_pred, weights
    rows = w.shape[0] * w.shape[1]
    return y.reshape(rows, *y.shape[2:]), p.reshape(rows, *p.shape[2:]), w.reshape(rows)


def model_loss(model: Any, y_true: Any, y_pred: Any, sample_weight: Any) -> float:
    """`model.compute_loss` on whole arrays: Keras' reduction, sample weights included.

    With Keras' default `'sum_over_batch_size'` reduction this is `sum(w * l) / n`, which
    equals the sample-weighted mean over batches that `model.evaluate` reports.
    """
    import tensorflow as tf

    def tensors(value: Any) -> Any:
        return None if value is None else tf.nest.map_structure(tf.convert_to_tensor, value)

    loss = model.compute_loss(
        y=tensors(y_true), y_pred=tensors(y_pred), sample_weight=tensors(sample_weight),
        training=False,
    )  # fmt: skip
    return float(np.asarray(loss))


def tune_threshold(
    key: ValMetric | None,
    max_is_best: bool,
    y_true: Any,
    y_pred: Any,
    sample_weight: Any,
    names: Sequence[str] | None = None,
) -> float:
    """The threshold in [0, 1] (step 0.01) maximizing the key metric, else F1.

    The key metric is used when it is thresholded and larger is better; otherwise F1.
    Ties go to the threshold closest to 0.5. With several outputs (`names`) it is tuned
    on the key metric's output (the first output when the key metric is the loss).
    """
    output = key.output if key is not None else None
    y_true, y_pred, sample_weight = output_arrays(names, output, y_true, y_pred, sample_weight)
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
    """The checked validation options of one trainer (see `check_validation_args`)."""

    eval_fn: str = "evaluate"
    val_metrics: list[ValMetric] | None = None  # predict mode: resolved metrics
    val_metric_names: list[str] | None = None  # as given (evaluate mode: a filter)
    class_weights: AnyClassWeights | None = None
    val_class_weights: AnyClassWeights | None = None
    loss_weighted_slices_range: tuple[float, float] | None = None
    pred_weighted_slices_range: tuple[float, float] | str | None = None  # or 'last'
    best_subset_size: int | None = None
    predict_threshold: float = 0.5
    dynamic_predict_threshold: bool = False
    pad_val_batches: bool = False  # pad partial batches to the model's fixed batch size

    def key(self, key_metric: str) -> ValMetric | None:
        for metric in self.val_metrics or []:
            if metric.name == key_metric:
                return metric
        return None
