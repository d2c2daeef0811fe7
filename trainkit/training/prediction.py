"""Predictions over a generator, in data order: `tg.predict()` and predict-mode validation.

A pass feeds every slice of the generator to `model.predict_on_batch` and keeps, per
row of predictions, where it came from: the batch's `set_name`, the global sample
index (`Batch.rows()` of the epoch plan; for a sharded generator, the worker's rows),
the slice index and the batch's position in the pass. Rows are stacked in serving
order: batch 0 slice 0, batch 0 slice 1, ..., batch 1 slice 0, ...

With `pred_weighted_slices_range=(a, b)` the slices of each batch are combined into one
row per sample: `sum_i w_i p_i / sum_i w_i` with `w_i = np.linspace(a, b, S)[i]` over
the batch's `S` slices (so `(1, 1)` is the plain mean). Combining needs every slice of
a batch to hold the same samples with the same labels (as `TimeseriesPreprocessor`
serves them); otherwise it raises ValueError.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from trainkit.training import padding
from trainkit.training.sample_weights import class_weight_vector, slice_weight
from trainkit.training.steps import reset_states, restore_states, snapshot_states

if TYPE_CHECKING:
    from trainkit.training.validation import ValidationParts


@dataclass
class Predictions:
    """What `tg.predict(datagen)` returns: one row per slice sample, in data order.

    Attributes:
        predictions: the model's outputs, stacked: `(rows, ...)`.
        labels: the labels served with them (`x` itself with `input_as_labels=True`),
            or None when the generator serves none.
        sample_weights: per row, the weights predict-mode metrics use (class weights
            times the slice weight; class weights only once slices are combined), or
            None when no weighting option is set.
        set_names: per row, the `set_name` of its batch (an array of str).
        sample_indices: per row, the global sample index (`-1` when a preprocessor
            changed the number of samples so rows cannot be matched to samples).
        slice_indices: per row, the slice index within its batch; None once slices
            are combined (one row per sample).
        batch_indices: per row, the batch's position in the pass (0, 1, ...).

    Example:

    ```python
    result = tg.predict(DataGenerator(data=x_test, batch_size=32, shuffle=True))
    order = np.argsort(result.sample_indices)  # back to the array's order
    np.testing.assert_allclose(result.predictions[order], model.predict(x_test), atol=1e-5)
    ```
    """

    predictions: np.ndarray
    labels: np.ndarray | None
    sample_weights: np.ndarray | None
    set_names: np.ndarray
    sample_indices: np.ndarray
    slice_indices: np.ndarray | None
    batch_indices: np.ndarray

    def __len__(self) -> int:
        return len(self.predictions)


class PredictionCollector:
    """Accumulates the slices of one pass; `result()` stacks (and may combine) them."""

    def __init__(self, class_weights: dict[int, float] | None, slice_range: Any) -> None:
        self.class_weights = class_weights
        self.slice_range = slice_range  # loss_weighted_slices_range, for sample_weights
        self.slices: list[dict[str, Any]] = []
        self.batches = 0  # completed batches

    def add(self, datagen: Any, predictions: Any, labels: Any, batch_index: int) -> None:
        predictions = np.asarray(predictions)
        rows = _rows(datagen, len(predictions))
        class_w = None
        if self.class_weights is not None and labels is not None:
            class_w = class_weight_vector(self.class_weights, labels)
        self.slices.append({
            "predictions": predictions,
            "labels": None if labels is None else np.asarray(labels),
            "class_weights": class_w,
            "slice_weight": slice_weight(self.slice_range, datagen.slice_idx,
                                         datagen.slices_per_batch),
            "set_name": str(getattr(datagen, "set_name", "")),
            "rows": rows,
            "slice_idx": int(datagen.slice_idx),
            "batch_index": batch_index,
        })  # fmt: skip

    def result(self, combine_range: tuple[float, float] | None) -> Predictions:
        if not self.slices:
            raise ValueError("The generator served no slices: nothing to predict on.")
        if combine_range is not None:
            return _combine(self._per_batch(), combine_range)
        return _stack(self.slices, self.class_weights, self.slice_range)

    def _per_batch(self) -> list[list[dict[str, Any]]]:
        groups: dict[int, list[dict[str, Any]]] = {}
        for item in self.slices:
            groups.setdefault(item["batch_index"], []).append(item)
        return list(groups.values())


def _rows(datagen: Any, count: int) -> np.ndarray:
    batch = getattr(datagen, "current_batch", None)
    rows = batch.rows() if batch is not None else None
    if rows is None or len(rows) != count:
        return np.full(count, -1, np.int64)
    return np.asarray(rows, np.int64)


def _weights(item: dict[str, Any], use_slice: bool) -> np.ndarray:
    n = len(item["predictions"])
    weights = item["class_weights"] if item["class_weights"] is not None else np.ones(n)
    return np.asarray(weights, np.float32) * np.float32(item["slice_weight"] if use_slice else 1)


def _stack(slices: list[dict[str, Any]], class_weights: Any, slice_range: Any) -> Predictions:
    weighted = class_weights is not None or slice_range is not None
    has_labels = all(item["labels"] is not None for item in slices)
    sizes = [len(item["rows"]) for item in slices]
    return Predictions(
        predictions=np.concatenate([item["predictions"] for item in slices]),
        labels=np.concatenate([item["labels"] for item in slices]) if has_labels else None,
        sample_weights=(
            np.concatenate([_weights(item, True) for item in slices]) if weighted else None
        ),
        set_names=np.repeat([item["set_name"] for item in slices], sizes),
        sample_indices=np.concatenate([item["rows"] for item in slices]),
        slice_indices=np.repeat([item["slice_idx"] for item in slices], sizes),
        batch_indices=np.repeat([item["batch_index"] for item in slices], sizes),
    )


def _combine(batches: list[list[dict[str, Any]]], weight_range: tuple[float, float]) -> Predictions:
    combined = []
    for items in batches:
        first = items[0]
        for item in items[1:]:
            if not np.array_equal(item["rows"], first["rows"]) or not _same_labels(item, first):
                raise ValueError(
                    "pred_weighted_slices_range combines the slices of a batch per sample, "
                    "but the slices of batch "
                    f"{first['set_name']!r} differ in their samples or labels."
                )
        weights = [slice_weight(weight_range, i, len(items)) for i in range(len(items))]
        mean = sum(w * item["predictions"] for w, item in zip(weights, items)) / sum(weights)
        combined.append({**first, "predictions": np.asarray(mean, first["predictions"].dtype)})
    has_class_weights = any(item["class_weights"] is not None for item in combined)
    result = _stack(combined, True if has_class_weights else None, None)
    if has_class_weights:
        result.sample_weights = np.concatenate([_weights(item, False) for item in combined])
    result.slice_indices = None
    return result


def _same_labels(a: dict[str, Any], b: dict[str, Any]) -> bool:
    if a["labels"] is None or b["labels"] is None:
        return a["labels"] is None and b["labels"] is None
    return bool(np.array_equal(a["labels"], b["labels"]))


def predict_slice(model: Any, x: Any) -> np.ndarray:
    """The model's outputs for one slice, as NumPy (`predict_on_batch`, compiled once)."""
    return np.asarray(model.predict_on_batch(x))


def predict_pass(parts: ValidationParts, datagen: Any, class_weights: Any) -> PredictionCollector:
    """One whole pass of `datagen` through the model, collected in serving order.

    Starts at the generator's position (a fresh pass if it is exhausted) and leaves it
    at the start of its next pass (`on_epoch_end()`). Stateful layers start from zero
    states, are reset after each batch when `reset_statefuls=True`, and get the train
    states back afterwards. Counters and callbacks are untouched.
    """
    settings = parts.options
    collector = PredictionCollector(class_weights, settings.loss_weighted_slices_range)
    layers = parts.stateful_layers
    saved = snapshot_states(layers)
    reset_states(layers)
    if datagen.all_data_exhausted:
        datagen.on_epoch_end()
    batch_index = 0
    while not datagen.all_data_exhausted:
        x, y = datagen.get()
        labels = parts.labels(x, y)
        outputs = padding.predict_slice(
            predict_slice, parts.trainer.model, x, settings.pad_val_batches
        )
        collector.add(datagen, outputs, labels, batch_index)
        datagen.update_state()
        if datagen.batch_exhausted:
            batch_index += 1
            if parts.settings.reset_statefuls:
                reset_states(layers)
    datagen.on_epoch_end()
    restore_states(layers, saved)
    collector.batches = batch_index
    return collector
