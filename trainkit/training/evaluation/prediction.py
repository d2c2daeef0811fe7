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
serves them); otherwise it raises ValueError. With `pred_weighted_slices_range='last'`
each sample is scored on its batch's last slice only (for a series, the window that
ends it): one row per sample, the earlier slices predicted (stateful layers see them)
but not scored.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from trainkit.training.evaluation import padding
from trainkit.training.evaluation.sample_weights import sample_weights, slice_weight
from trainkit.training.slices.steps import reset_states, restore_states, snapshot_states
from trainkit.training.slices.structure import (
    SampleList,
    concat_rows,
    first_member,
    map_structure,
    output_names,
    take_rows,
    unpack_slice,
)

if TYPE_CHECKING:
    from trainkit.training.evaluation.validation import ValidationParts

LAST_SLICE = "last"  # pred_weighted_slices_range: score only each batch's last slice


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
            "steps": _steps(outputs_before),
            "template_like": map_structure(lambda _: None, self.template),
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

    def result(self, combine_range: tuple[float, float] | str | None) -> Predictions:
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


def _steps(outputs: Any) -> dict[tuple[Any, ...], int | None]:
    """Each output's timesteps (axis 1), by its path in the output structure; None
    for an output without them (one value per sample)."""
    return {
        path: (int(np.shape(leaf)[1]) if np.ndim(leaf) >= 2 else None)
        for path, leaf in _paths(outputs)
    }


def _paths(structure: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[tuple[Any, ...], Any]]:
    """`(path, leaf)` pairs of a structure of arrays (dicts, tuples and lists)."""
    if isinstance(structure, dict):
        return [pair for k, v in structure.items() for pair in _paths(v, (*prefix, k))]
    if isinstance(structure, (list, tuple)) and not isinstance(structure, SampleList):
        return [pair for i, v in enumerate(structure) for pair in _paths(v, (*prefix, i))]
    return [(prefix, structure)]


def _leaf_at(structure: Any, path: tuple[Any, ...]) -> Any:
    for key in path:
        structure = structure[key]
    return structure


def _varying(slices: list[dict[str, Any]], field: str) -> dict[tuple[Any, ...], int]:
    """Paths of `field` whose axis 1 differs between slices: path -> the longest."""
    sizes: dict[tuple[Any, ...], set[int | None]] = {}
    for item in slices:
        value = item[field]
        steps = _steps(value) if field != "steps" else value
        for path, size in steps.items():
            sizes.setdefault(path, set()).add(size)
    return {
        path: max(s for s in found if s is not None)
        for path, found in sizes.items()
        if len(found) > 1 and None not in found
    }


def _pad_steps(array: Any, longest: int) -> Any:
    """Zeros at the end of axis 1 up to `longest` (a list of per-sample arrays unchanged)."""
    if isinstance(array, list) or np.ndim(array) < 2:
        return array
    extra = [(0, 0)] * np.ndim(array)
    extra[1] = (0, longest - np.shape(array)[1])
    return np.pad(np.asarray(array), extra)


def _replace(structure: Any, updates: dict[tuple[Any, ...], Any]) -> Any:
    """`structure` with the leaves at the given paths replaced."""
    if () in updates:
        return updates[()]
    if isinstance(structure, dict):
        return {k: _replace(v, _under(updates, k)) for k, v in structure.items()}
    if isinstance(structure, (list, tuple)):
        return type(structure)(_replace(v, _under(updates, i)) for i, v in enumerate(structure))
    return structure


def _under(updates: dict[tuple[Any, ...], Any], key: Any) -> dict[tuple[Any, ...], Any]:
    return {path[1:]: value for path, value in updates.items() if path and path[0] == key}


def _pad_to_longest(slices: list[dict[str, Any]], weights_key: str) -> list[dict[str, Any]]:
    """Slices of different lengths (padded batches): pad to the longest, weighing 0.

    Decided output by output: an output whose timesteps (axis 1 of the model's output)
    differ between slices is padded with zeros at the end of axis 1 to the longest, and
    so are the labels and per-timestep weights whose axis 1 differs between slices; that
    output's weights become per timestep (1, or as served, on the slice's own steps; 0
    on the added ones), so predict-mode metrics count only the served steps. Outputs of
    one value per sample (a per-cloud class beside per-point ones), and members made
    ragged by `post_process`, are left as they are.
    """
    outputs = _varying(slices, "steps")
    labels = _varying([s for s in slices if s["labels"] is not None], "labels")
    if not outputs and not labels:
        return slices
    padded = []
    for item in slices:
        item = dict(item)
        item["predictions"] = _replace(item["predictions"], {
            path: _pad_steps(_leaf_at(item["predictions"], path), longest)
            for path, longest in outputs.items()
        })  # fmt: skip
        if item["labels"] is not None:
            item["labels"] = _replace(item["labels"], {
                path: _pad_steps(leaf, labels[path])
                for path, leaf in _paths(item["labels"]) if path in labels
            })  # fmt: skip
        item[weights_key] = _weights_per_step(item, weights_key, outputs)
        padded.append(item)
    return padded


def _weights_per_step(
    item: dict[str, Any], weights_key: str, outputs: dict[tuple[Any, ...], int]
) -> Any:
    """The slice's weights with each padded output's made per timestep and padded with 0.

    Weights given as one array for several outputs are first repeated per output (as
    Keras repeats them), so each output's can be padded on its own.
    """
    weights, rows = item[weights_key], len(item["rows"])
    steps = item["steps"]
    paths = list(steps)
    if not any(path in outputs for path in paths):
        return weights
    if paths != [()] and (weights is None or not isinstance(weights, (dict, list, tuple))):
        weights = _replace(item["template_like"], dict.fromkeys(paths, weights))
    updates = {}
    for path in paths:
        if path not in outputs:
            continue
        own = _leaf_at(weights, path)
        own = np.ones(rows, np.float32) if own is None else np.asarray(own)
        if own.ndim == 1:
            own = np.repeat(own[:, None], steps[path], axis=1)
        updates[path] = _pad_steps(own, outputs[path])
    return _replace(weights, updates) if updates else weights


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
    batches: list[list[dict[str, Any]]], weight_range: tuple[float, float] | str, template: Any
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
        if isinstance(weight_range, str):  # LAST_SLICE: the window that ends the series
            combined.append(items[-1])
            continue
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
