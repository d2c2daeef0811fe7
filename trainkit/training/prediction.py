"""Predictions over a generator, in data order: `tg.predict()` and predict-mode validation.

A pass feeds every slice of the generator to `model.predict_on_batch` and keeps, per
row of predictions, where it came from: the batch's `set_name`, the global sample
index (`Batch.rows()` of the epoch plan; for a sharded generator, the worker's rows),
the slice index and the batch's position in the pass. Rows are stacked in serving
order: batch 0 slice 0, batch 0 slice 1, ..., batch 1 slice 0, ...

Predictions, labels and weights keep their structure: a model with several outputs
gives a dict of arrays (dict outputs) or a list (list outputs), as `model.predict`
does, each member stacked row by row; labels stay in the structure the generator
served. `tg.predict` passes each slice's outputs through the generator's preprocessor's
`post_process(predictions, description)`, with the slice's `describe_slice()`
(unchanged by default; `PadPreprocessor` strips the padding, making a member a list of
per-sample arrays, a `SampleList`).
Predict-mode validation scores the model's own outputs, with the served sample weights
(padding weighs 0), not the post-processed ones.

With `pred_weighted_slices_range=(a, b)` the slices of each batch are combined into one
row per sample: `sum_i w_i p_i / sum_i w_i` with `w_i = np.linspace(a, b, S)[i]` over
the batch's `S` slices (so `(1, 1)` is the plain mean). Combining needs every slice of
a batch to hold the same samples with the same labels (as `TimeseriesPreprocessor`
serves them); otherwise it raises ValueError.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from trainkit.training import padding
from trainkit.training.sample_weights import sample_weights, slice_weight
from trainkit.training.steps import reset_states, restore_states, snapshot_states
from trainkit.training.structure import (
    concat_rows,
    first_member,
    map_structure,
    output_names,
    take_rows,
    unpack_slice,
)

if TYPE_CHECKING:
    from trainkit.training.validation import ValidationParts


@dataclass
class Predictions:
    """What `tg.predict(datagen)` returns: one row per slice sample, in serving order.

    Attributes:
        predictions: the model's outputs, stacked: `(rows, ...)`; with several outputs
            the model's output structure (a dict or list of such arrays). A member that
            the preprocessor's `post_process()` made ragged is a `SampleList` of
            per-sample arrays.
        labels: the labels served with them, in their structure (`x` itself with
            `input_as_labels=True`), or None when the generator serves none.
        sample_weights: per row, the weights predict-mode metrics use (served weights
            times class weights times the slice weight; the slice weight left out once
            slices are combined): `(rows,)`, `(rows, t)` for per-timestep weights, or
            one per output; None when nothing weighs.
        set_names: per row, the `set_name` of its batch (an array of str).
        sample_indices: per row, the global sample index (`-1` when a preprocessor
            changed the number of samples so rows cannot be matched to samples).
        slice_indices: per row, the slice index within its batch; None once slices
            are combined (one row per sample).
        batch_indices: per row, the batch's position in the pass (0, 1, ...).

    Example:

    ```python
    result = tg.predict(DataGenerator(data=x_test, batch_size=32, shuffle=True))
    ordered = result.in_sample_order()  # rows back in the array's order
    np.testing.assert_allclose(ordered.predictions, model.predict(x_test), atol=1e-5)
    ```
    """

    predictions: Any
    labels: Any
    sample_weights: Any
    set_names: np.ndarray
    sample_indices: np.ndarray
    slice_indices: np.ndarray | None
    batch_indices: np.ndarray

    def __len__(self) -> int:
        return len(self.sample_indices)

    def in_sample_order(self) -> Predictions:
        """A copy with the rows sorted back to the data's sample order.

        Rows are ordered by `sample_indices` ascending; the rows of one sample (one per
        slice, e.g. the windows of a series) stay together in the order they were
        served (slice order), as the sort is stable. Every per-row field is reordered
        alike; the predictions and labels keep their structure.

        Raises:
            ValueError: some rows have no sample index (`-1`: a preprocessor changed
                the number of samples in a slice).
        """
        if np.any(self.sample_indices < 0):
            raise ValueError(
                "in_sample_order() needs each row's sample index, but "
                f"{int(np.sum(self.sample_indices < 0))} rows have -1: the preprocessor "
                "served slices with another number of samples than their batch, so rows "
                "cannot be matched to samples. Sort by `batch_indices` and `slice_indices` "
                "instead."
            )
        order = np.argsort(self.sample_indices, kind="stable")

        def rows(value: Any) -> Any:
            return None if value is None else take_rows(value, order)

        return dataclasses.replace(
            self,
            predictions=rows(self.predictions),
            labels=rows(self.labels),
            sample_weights=rows(self.sample_weights),
            set_names=self.set_names[order],
            sample_indices=self.sample_indices[order],
            slice_indices=rows(self.slice_indices),
            batch_indices=self.batch_indices[order],
        )


class PredictionCollector:
    """Accumulates the slices of one pass; `result()` stacks (and may combine) them.

    Args:
        class_weights: `val_class_weights` (one table, or one per output), or None.
        slice_range: `loss_weighted_slices_range`, for `sample_weights`.
        names: the model's output names when it has several, else None.
        post_process: called on each slice's outputs before they are kept (`tg.predict`),
            or None to keep the model's outputs (validation).
    """

    def __init__(
        self,
        class_weights: Any,
        slice_range: Any,
        names: list[str] | None = None,
        post_process: Any = None,
    ) -> None:
        self.class_weights = class_weights
        self.slice_range = slice_range  # loss_weighted_slices_range, for sample_weights
        self.names = names
        self.post_process = post_process
        self.template: Any = None  # the model's outputs for the first slice
        self.slices: list[dict[str, Any]] = []
        self.batches = 0  # completed batches

    def add(
        self,
        datagen: Any,
        predictions: Any,
        labels: Any,
        batch_index: int,
        served: Any = None,
        description: dict[str, Any] | None = None,
        rows: np.ndarray | None = None,
    ) -> None:
        """Keep one slice: call it after `datagen.get()`, before `update_state()`.

        `description` is the slice's `datagen.describe_slice()`, for `post_process`;
        `rows` its samples' indices when they are not the generator's (several workers).
        """
        predictions = map_structure(np.asarray, predictions)
        count = len(first_member(predictions))
        if self.template is None:
            self.template = predictions
        outputs_before = predictions
        if self.post_process is not None:
            predictions = self.post_process(predictions, description)
        slice_idx, slices = int(datagen.slice_idx), int(datagen.slices_per_batch)
        self.slices.append({
            "predictions": predictions,
            "labels": None if labels is None else map_structure(np.asarray, labels),
            "served": served,
            "weights": self._weights(labels, served, count, slice_idx, slices, self.slice_range),
            "combined_weights": self._weights(labels, served, count, slice_idx, slices, None),
            "set_name": str(getattr(datagen, "set_name", "")),
            "rows": _rows(datagen, count) if rows is None else rows,
            "length": _length(self.template, outputs_before),
            "slice_idx": slice_idx,
            "batch_index": batch_index,
        })  # fmt: skip

    def _weights(
        self, labels: Any, served: Any, count: int, slice_idx: int, slices: int, slice_range: Any
    ) -> Any:
        # tg.predict without labels: class weights have nothing to weigh.
        class_weights = None if labels is None else self.class_weights
        return sample_weights(
            labels, count, class_weights, slice_range, slice_idx, slices, served, self.names
        )

    def result(self, combine_range: tuple[float, float] | None) -> Predictions:
        if not self.slices:
            raise ValueError("The generator served no slices: nothing to predict on.")
        if combine_range is not None:
            return _combine(self._per_batch(), combine_range, self.template)
        return _stack(self.slices, "weights", self.template)

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


def _length(template: Any, outputs: Any) -> int | None:
    """The timesteps (axis 1) of a slice's first output, if it has them."""
    first = first_member(outputs)
    return int(first.shape[1]) if np.ndim(first) >= 2 else None


def _pad_to_longest(slices: list[dict[str, Any]], weights_key: str) -> list[dict[str, Any]]:
    """Slices of different lengths (padded batches): pad to the longest, weighing 0.

    Members with the slice's timesteps on axis 1 (outputs, per-timestep labels) get
    zeros at the end of axis 1; the weights become per timestep (1, or as served, on
    the slice's own steps; 0 on the added ones), so predict-mode metrics count only the
    served steps. Members made ragged by `post_process` are left as they are.
    """
    lengths = [item["length"] for item in slices]
    if None in lengths or len(set(lengths)) <= 1:
        return slices
    longest = max(lengths)
    padded = []
    for item in slices:
        steps, rows = item["length"], len(item["rows"])

        def pad(array: Any, steps: int = steps) -> Any:
            if isinstance(array, list) or np.ndim(array) < 2 or np.shape(array)[1] != steps:
                return array
            extra = [(0, 0)] * np.ndim(array)
            extra[1] = (0, longest - steps)
            return np.pad(np.asarray(array), extra)

        def per_step(weights: Any, steps: int = steps, rows: int = rows) -> Any:
            weights = np.ones(rows, np.float32) if weights is None else np.asarray(weights)
            if weights.ndim == 1:
                weights = np.repeat(weights[:, None], steps, axis=1)
            return pad(weights)

        weights = item[weights_key]
        padded.append({
            **item,
            "predictions": map_structure(pad, item["predictions"]),
            "labels": None if item["labels"] is None else map_structure(pad, item["labels"]),
            weights_key: (
                map_structure(per_step, weights) if isinstance(weights, (dict, tuple))
                else per_step(weights)
            ),
        })  # fmt: skip
    return padded


def _stack(slices: list[dict[str, Any]], weights_key: str, template: Any) -> Predictions:
    slices = _pad_to_longest(slices, weights_key)
    has_labels = all(item["labels"] is not None for item in slices)
    weighted = all(item[weights_key] is not None for item in slices)
    sizes = [len(item["rows"]) for item in slices]
    return Predictions(
        predictions=concat_rows([item["predictions"] for item in slices], template),
        labels=concat_rows([item["labels"] for item in slices]) if has_labels else None,
        sample_weights=concat_rows([item[weights_key] for item in slices]) if weighted else None,
        set_names=np.repeat([item["set_name"] for item in slices], sizes),
        sample_indices=np.concatenate([item["rows"] for item in slices]),
        slice_indices=np.repeat([item["slice_idx"] for item in slices], sizes),
        batch_indices=np.repeat([item["batch_index"] for item in slices], sizes),
    )


def _combine(
    batches: list[list[dict[str, Any]]], weight_range: tuple[float, float], template: Any
) -> Predictions:
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

        def mean(*parts: Any) -> np.ndarray:
            total = sum(w * part for w, part in zip(weights, parts))  # noqa: B023
            return np.asarray(total / sum(weights), parts[0].dtype)  # noqa: B023

        predictions = map_structure(mean, *(item["predictions"] for item in items))
        combined.append({**first, "predictions": predictions})
    result = _stack(combined, "combined_weights", template)
    result.slice_indices = None
    return result


def _same_labels(a: dict[str, Any], b: dict[str, Any]) -> bool:
    if a["labels"] is None or b["labels"] is None:
        return a["labels"] is None and b["labels"] is None
    same = map_structure(lambda x, y: bool(np.array_equal(x, y)), a["labels"], b["labels"])
    return all(_leaves(same))


def _leaves(structure: Any) -> list[Any]:
    if isinstance(structure, dict):
        return [leaf for value in structure.values() for leaf in _leaves(value)]
    if isinstance(structure, (list, tuple)):
        return [leaf for value in structure for leaf in _leaves(value)]
    return [structure]


def predict_slice(model: Any, x: Any) -> Any:
    """The model's outputs for one slice, as NumPy (`predict_on_batch`, compiled once).

    One array for a single output; several keep the model's structure (dict or list).
    """
    return map_structure(np.asarray, model.predict_on_batch(x))


def add_slice(
    collector: PredictionCollector,
    model: Any,
    distribution: Any,
    datagen: Any,
    x: Any,
    labels: Any,
    batch_index: int,
    served: Any,
    description: dict[str, Any] | None = None,
    pad: bool = False,
) -> None:
    """Predict the served slice `x` and keep it in `collector`.

    Under a strategy (`distribution`, else None) each worker predicts its own rows and
    every worker keeps the whole slice (outputs, labels, weights and sample indices
    gathered in row order).
    """
    if distribution is None:
        outputs = padding.predict_slice(predict_slice, model, x, pad)
        collector.add(datagen, outputs, labels, batch_index, served, description)
        return
    outputs = distribution.predict_local(model, x)
    count = len(first_member(outputs))
    outputs, labels, served, rows = distribution.gather_rows(
        (outputs, labels, served, _rows(datagen, count))
    )
    collector.add(datagen, outputs, labels, batch_index, served, description, rows)


def post_processor(datagen: Any) -> Any:
    """The generator's preprocessor's `post_process(predictions, description)`, or None."""
    return getattr(getattr(datagen, "preprocessor", None), "post_process", None)


def predict_pass(
    parts: ValidationParts, datagen: Any, class_weights: Any, post_process: Any = None
) -> PredictionCollector:
    """One whole pass of `datagen` through the model, collected in serving order.

    Starts at the generator's position (a fresh pass if it is exhausted) and leaves it
    at the start of its next pass (`on_epoch_end()`). Stateful layers start from zero
    states, are reset after each batch when `reset_statefuls=True`, and get the train
    states back afterwards. Counters and callbacks are untouched. `post_process` is
    applied to each slice's outputs (`tg.predict`).
    """
    settings, model = parts.options, parts.trainer.model
    collector = PredictionCollector(
        class_weights, settings.loss_weighted_slices_range, output_names(model), post_process
    )
    layers = parts.stateful_layers
    saved = snapshot_states(layers)
    reset_states(layers)
    if datagen.all_data_exhausted:
        datagen.on_epoch_end()
    batch_index = 0
    while not datagen.all_data_exhausted:
        x, y, served = unpack_slice(datagen.get())
        labels = parts.labels(x, y)
        # The slice's own description, also when a background copy computed it (prefetch).
        description = datagen.describe_slice() if post_process is not None else None
        add_slice(
            collector, model, parts.distribution, datagen, x, labels, batch_index, served,
            description, settings.pad_val_batches,
        )  # fmt: skip
        datagen.update_state()
        if datagen.batch_exhausted:
            batch_index += 1
            if parts.settings.reset_statefuls:
                reset_states(layers)
    datagen.on_epoch_end()
    restore_states(layers, saved)
    collector.batches = batch_index
    return collector
