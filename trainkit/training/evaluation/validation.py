"""Validation: evaluate mode (means of `test_step`) and predict mode (metrics on all of it).

`eval_fn='evaluate'` reports the sample-weighted mean over batches of the model's
compiled metrics, as `model.evaluate` does. `eval_fn='predict'` collects the model's
predictions over the whole validation set (every slice) and computes `val_metrics` on
all of it (`trainkit.metrics`, `scoring.py`).

Resuming: a validation keeps its counters and evaluate-mode means in the trainer's
`LoopState` (`val_stage`, the current batch's running means), so one interrupted by
Ctrl-C or an exception resumes at its unfinished batch when `train()` is called again.
Predictions (predict mode) and per-batch values (`best_subset_size`) are kept in this
object, not in the JSON-serializable `LoopState`: in the same process they resume with
it; a validation found half-done without them (a loop state loaded into a new trainer)
restarts from the first batch of a fresh pass of `val_datagen`, without a second
`on_val_begin` (its batches are then counted again in `iters_validated` and
`batches_validated`).

It never touches the train generator, and the states of stateful layers are saved
before it and restored after it, so validating mid-epoch does not disturb training.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np

from trainkit.training.evaluation import padding
from trainkit.training.evaluation.metric_masses import decode, encode, metric_masses
from trainkit.training.evaluation.prediction import (
    PredictionCollector,
    Predictions,
    add_slice,
    post_processor,
    predict_pass,
)
from trainkit.training.evaluation.sample_weights import slice_sample_weights
from trainkit.training.evaluation.scoring import (
    ValidationSettings,
    best_subset,
    compute_metrics,
    tune_threshold,
)
from trainkit.training.loop_state import WeightedMean, append_logs
from trainkit.training.slices.steps import reset_states, restore_states, snapshot_states
from trainkit.training.slices.structure import output_names, take_rows, unpack_slice

if TYPE_CHECKING:
    from trainkit.training.construction.settings import TrainSettings
    from trainkit.training.loop_state import LoopState
    from trainkit.training.trainer import TrainGenerator


@dataclass
class ValidationParts:
    """What validation needs of its trainer, handed over by name (nothing else is read).

    `trainer` is used through its public attributes only (`val_datagen`, `model`,
    `predict_threshold`, `best_subset_names`).
    """

    trainer: TrainGenerator
    settings: TrainSettings
    state: LoopState
    callbacks: Any  # CallbackList
    test_step: Callable[..., dict[str, float]]
    stateful_layers: list[Any]
    interrupt: Any  # DeferredInterrupt
    progress: Any  # Progress
    on_new_best: Callable[[], None]
    distribution: Any = None  # the strategy's layout (distribute.Distribution), or None

    @property
    def options(self) -> ValidationSettings:
        return self.settings.validation

    def labels(self, x: Any, y: Any) -> Any:
        return x if self.settings.input_as_labels else y

    @cached_property
    def output_names(self) -> list[str] | None:
        """The model's output names when it has several (per-output weights, metrics)."""
        return output_names(self.trainer.model)

    def evaluate_slice(
        self, datagen: Any, x: Any, labels: Any, served: Any
    ) -> tuple[dict[str, float], float]:
        """The test step's values on the slice and what it weighs in row-weighted means,
        weighted metrics carrying their weight mass (`metric_masses.encode`)."""
        weights = self.weights(datagen, x, labels, served)
        model, pad = self.trainer.model, self.options.pad_val_batches
        logs, rows = padding.evaluate_slice(self.test_step, model, x, labels, weights, pad)
        if self.distribution is not None:  # local weights: one worker's share of the mass
            return logs, rows
        return encode(logs, metric_masses(model, logs, weights), rows), rows

    def weights(self, datagen: Any, x: Any, labels: Any, served: Any) -> Any:
        """The slice's validation sample weights: served x class x slice weights."""
        settings = self.options
        return slice_sample_weights(
            datagen, x, labels, settings.val_class_weights,
            settings.loss_weighted_slices_range, served, self.output_names,
        )  # fmt: skip


class Validation:
    """Runs (and resumes) validations for one trainer."""

    def __init__(self, parts: ValidationParts):
        self.parts = parts
        self.trainer = parts.trainer
        self._saved_states: list[Any] = []
        self._active = False  # a validation begun by this object is under way
        self._collector: PredictionCollector | None = None  # predict mode
        self._batch_logs: list[tuple[dict[str, float], float, str]] = []  # best subset

    def run(self, next_stage: str) -> None:
        """Run or resume the validation; moves the train loop to `next_stage` when done."""
        s, parts = self.parts.state, self.parts
        if s.val_stage == "run" and not self._active and self._keeps_progress_here():
            self._begin(fresh_pass=True)  # its collected values were lost: start over
        if s.val_stage == "begin":
            self._begin(fresh_pass=False)
            s.val_stage = "run"
            parts.callbacks.call("on_val_begin", {})
        if s.val_stage == "run":
            self._run_slices()
            self._record()
            s.val_stage = "end"
        if s.val_stage == "end":
            restore_states(parts.stateful_layers, self._saved_states)
            self._active = False
            s.val_stage = "begin"
            s.move_to(next_stage)  # done before on_val_end is called
            parts.progress.val_end(s.last_val_logs)
            parts.callbacks.call("on_val_end", dict(s.last_val_logs))

    def _keeps_progress_here(self) -> bool:
        settings = self.parts.options
        return settings.eval_fn == "predict" or settings.best_subset_size is not None

    def _begin(self, fresh_pass: bool) -> None:
        t, s, settings = self.trainer, self.parts.state, self.parts.options
        s.val_means.clear()
        s.val_batch_means.clear()
        s.val_batch_index = 0
        s.val_batch_begun = s.val_batch_end_pending = False
        self._active = True
        self._batch_logs = []
        self._collector = PredictionCollector(
            settings.val_class_weights, settings.loss_weighted_slices_range,
            self.parts.output_names,
        )  # fmt: skip
        # Validation starts from clean RNN states; training's come back after it.
        self._saved_states = snapshot_states(self.parts.stateful_layers)
        reset_states(self.parts.stateful_layers)
        if fresh_pass or t.val_datagen.all_data_exhausted:
            t.val_datagen.on_epoch_end()

    def _run_slices(self) -> None:
        t, s, datagen = self.trainer, self.parts.state, self.trainer.val_datagen
        while True:
            if s.val_batch_end_pending:
                self._end_batch()
            if datagen.all_data_exhausted:
                return
            self.parts.interrupt.raise_if_requested()
            if not s.val_batch_begun:
                s.val_batch_begun = True
                self.parts.callbacks.call("on_val_batch_begin", s.val_batch_index, {})
            x, y, served = unpack_slice(datagen.get())
            labels = self.parts.labels(x, y)
            if self.parts.options.eval_fn == "predict":
                assert self._collector is not None
                add_slice(
                    self._collector, t.model, self.parts.distribution, datagen, x, labels,
                    s.val_batch_index, served, pad=self.parts.options.pad_val_batches,
                )  # fmt: skip
            else:
                s.val_batch_means.add(*self.parts.evaluate_slice(datagen, x, labels, served))
            s.iters_validated += 1
            datagen.update_state()
            s.val_batch_end_pending = datagen.batch_exhausted

    def _end_batch(self) -> None:
        t, s, parts = self.trainer, self.parts.state, self.parts
        logs = s.val_batch_means.result()
        s.val_means.add(logs, s.val_batch_means.mean_weight())
        if parts.options.best_subset_size is not None and parts.options.eval_fn == "evaluate":
            weight = s.val_batch_means.mean_weight()
            self._batch_logs.append((logs, weight, str(t.val_datagen.set_name)))
        s.val_batch_means.clear()
        s.batches_validated += 1
        if parts.settings.reset_statefuls:
            reset_states(parts.stateful_layers)
        index = s.val_batch_index
        s.val_batch_index += 1
        s.val_batch_begun = s.val_batch_end_pending = False
        parts.callbacks.call("on_val_batch_end", index, decode(logs))

    def _record(self) -> None:
        t, s, parts = self.trainer, self.parts.state, self.parts
        t.val_datagen.on_epoch_end()  # the next validation starts a fresh pass
        if parts.options.eval_fn == "predict":
            assert self._collector is not None
            predictions = self._collector.result(parts.options.pred_weighted_slices_range)
            logs = score_predictions(self.parts, predictions, tune=True, subset=True)
        else:
            logs = self._evaluate_mode_logs()
        _check_key_in(parts.settings.key_metric, logs)  # before anything is recorded
        s.times_validated += 1
        s.last_val_logs = logs
        s.epoch_val_logs = logs
        append_logs(s.val_history, logs)
        self._update_key_metric(logs)

    def _update_key_metric(self, val_logs: dict[str, float]) -> None:
        s, key_metric = self.parts.state, self.parts.settings.key_metric
        _check_key_in(key_metric, val_logs)
        value = val_logs[key_metric]
        s.key_metric_history.append(value)
        max_is_best = self.parts.settings.max_is_best
        if value > s.best_key_metric if max_is_best else value < s.best_key_metric:
            s.best_key_metric = value
            self.parts.on_new_best()
        elif self.parts.options.dynamic_predict_threshold:
            # Not a new best: the threshold kept is the best model's, not this one's.
            best = best_threshold(s.val_history, s.key_metric_history, s.best_key_metric)
            if best is not None:
                self.trainer.predict_threshold = best

    def _evaluate_mode_logs(self) -> dict[str, float]:
        t, s, parts = self.trainer, self.parts.state, self.parts
        logs = decode(s.val_means.result())
        size = parts.options.best_subset_size
        if size is not None and self._batch_logs:
            _check_key_in(t.key_metric, logs)
            values = [decode(batch[0])[t.key_metric] for batch in self._batch_logs]
            weights = [batch[1] for batch in self._batch_logs]
            chosen = best_subset(values, weights, size, t.max_is_best)
            means = WeightedMean()
            for index in chosen:
                means.add(self._batch_logs[index][0], self._batch_logs[index][1])
            logs = decode(means.result())
            t.best_subset_names = [self._batch_logs[index][2] for index in chosen]
        names = parts.options.val_metric_names
        if names is not None:
            missing = [name for name in names if name not in logs]
            if missing:
                raise ValueError(
                    f"val_metrics {missing} are not among the model's compiled metrics "
                    f"{sorted(logs)} (eval_fn='evaluate' reports those). Compile the model "
                    "with them or use eval_fn='predict'."
                )
            logs = {name: logs[name] for name in names}
        return logs


def best_threshold(
    val_history: dict[str, list[float]], key_metric_history: list[float], best_key_metric: float
) -> float | None:
    """The threshold tuned at the validation that set `best_key_metric` (the best model's).

    None when no validation recorded one (no `dynamic_predict_threshold`, nothing scored).
    Validations append one entry to each history, so the best one's index is shared.
    """
    thresholds = val_history.get("predict_threshold") or []
    for index, value in enumerate(key_metric_history):
        if value == best_key_metric and index < len(thresholds):
            return float(thresholds[index])
    return None


def _check_key_in(key_metric: str, logs: dict[str, float]) -> None:
    if key_metric not in logs:
        raise ValueError(
            f"key_metric={key_metric!r} is not among the validation metrics "
            f"{sorted(logs)}. Pass one of them as `key_metric`."
        )


def score_predictions(
    parts: ValidationParts, predictions: Predictions, *, tune: bool, subset: bool
) -> dict[str, float]:
    """`val_metrics` on collected predictions (threshold tuning and best subset optional).

    With `dynamic_predict_threshold=True` and `tune`, the threshold is searched on all
    the predictions first and recorded in `trainer.predict_threshold` and in the logs
    as `'predict_threshold'`; the subset is then chosen at that threshold.
    """
    t, settings = parts.trainer, parts.options
    if predictions.labels is None:
        raise ValueError(
            "eval_fn='predict' computes val_metrics against labels, but the generator "
            "serves none (y is None). Give it labels, or use tg.predict()."
        )
    assert settings.val_metrics is not None
    y, p, w = predictions.labels, predictions.predictions, predictions.sample_weights
    if tune and settings.dynamic_predict_threshold:
        key = settings.key(t.key_metric)
        t.predict_threshold = tune_threshold(key, t.max_is_best, y, p, w, parts.output_names)
    if subset and settings.best_subset_size is not None:
        mask = _best_predict_subset(parts, predictions)
        y, p = take_rows(y, mask), take_rows(p, mask)
        w = None if w is None else take_rows(w, mask)
    logs = compute_metrics(settings.val_metrics, t.model, y, p, w, t.predict_threshold)
    if settings.dynamic_predict_threshold:
        logs["predict_threshold"] = t.predict_threshold
    return logs


def _best_predict_subset(parts: ValidationParts, predictions: Predictions) -> np.ndarray:
    """Rows of the best `best_subset_size` batches, each batch scored on its own.

    Unlike evaluate mode this is a ranking, not an exact search: a metric of a union
    of batches is not a function of the batches' own values. Batches whose key
    metric is undefined (NaN, e.g. ROC-AUC of a one-class batch) rank last.
    """
    t, settings = parts.trainer, parts.options
    key = settings.key(t.key_metric)
    assert key is not None and settings.best_subset_size is not None
    batch_ids = np.unique(predictions.batch_indices)
    values = []
    for batch in batch_ids:
        rows = predictions.batch_indices == batch
        weights = predictions.sample_weights
        w = None if weights is None else take_rows(weights, rows)
        assert predictions.labels is not None
        value = compute_metrics(
            [key], t.model, take_rows(predictions.labels, rows),
            take_rows(predictions.predictions, rows), w, t.predict_threshold,
        )[key.name]  # fmt: skip
        worst = -np.inf if t.max_is_best else np.inf
        values.append(worst if np.isnan(value) else value)
    chosen = best_subset(values, [1.0] * len(values), settings.best_subset_size, t.max_is_best)
    t.best_subset_names = [
        str(predictions.set_names[predictions.batch_indices == batch_ids[i]][0]) for i in chosen
    ]
    return np.isin(predictions.batch_indices, batch_ids[chosen])


def evaluate_datagen(parts: ValidationParts, datagen: Any) -> dict[str, float]:
    """One whole pass of `datagen`: the validation metrics of the trainer's `eval_fn`.

    Evaluate mode: sample-weighted means of `test_step` over batches. Predict mode:
    `val_metrics` on all predictions at the current `predict_threshold` (no tuning, no
    best subset). `val_class_weights` and `loss_weighted_slices_range` apply. Starts at
    the generator's current position (a fresh pass if it is exhausted) and leaves it
    ready for the next pass. Counters and callbacks are untouched.
    """
    settings = parts.options
    if settings.eval_fn == "predict":
        collector = predict_pass(parts, datagen, settings.val_class_weights)
        predictions = collector.result(settings.pred_weighted_slices_range)
        return score_predictions(parts, predictions, tune=False, subset=False)
    means, batch = WeightedMean(), WeightedMean()
    layers = parts.stateful_layers
    saved = snapshot_states(layers)
    reset_states(layers)
    if datagen.all_data_exhausted:
        datagen.on_epoch_end()
    while not datagen.all_data_exhausted:
        x, y, served = unpack_slice(datagen.get())
        labels = parts.labels(x, y)
        batch.add(*parts.evaluate_slice(datagen, x, labels, served))
        datagen.update_state()
        if datagen.batch_exhausted:
            means.add(batch.result(), batch.mean_weight())
            batch.clear()
            if parts.settings.reset_statefuls:
                reset_states(layers)
    datagen.on_epoch_end()
    restore_states(layers, saved)
    return decode(means.result())


_NOT_FOR_PREDICTION = (
    "tg.predict() got a generator that {what}: its predictions {effect}. Predict on "
    "`datagen.for_prediction()`, the same data in sample order with each preprocessor's "
    "prediction form (random augmenters dropped, a random crop centered)."
)


def warn_if_not_for_prediction(datagen: Any) -> None:
    """Warn when `datagen` shuffles or augments: predictions are rarely wanted so."""
    what, effect = [], []
    shuffle = getattr(datagen, "shuffle", None)
    groups = [getattr(datagen, name, False) for name in _SHUFFLE_GROUPS]
    if shuffle or any(groups):
        what.append(f"shuffles (shuffle={shuffle!r})" if shuffle else "shuffles within sets")
        effect.append("come in shuffled order (in_sample_order() sorts them back)")
    pre = getattr(datagen, "preprocessor", None)
    if pre is not None and _changes_for_prediction(pre):
        what.append(f"augments ({type(pre).__name__})")
        effect.append("are of randomly augmented samples")
    if what:
        message = _NOT_FOR_PREDICTION.format(what=" and ".join(what), effect=" and ".join(effect))
        warnings.warn(message, UserWarning, stacklevel=4)  # the caller of tg.predict


_SHUFFLE_GROUPS = ("shuffle_group_batches", "shuffle_group_samples")


def _changes_for_prediction(pre: Any) -> bool:
    form = getattr(pre, "for_prediction", None)
    return form is not None and form() is not pre


def predict_datagen(parts: ValidationParts, datagen: Any) -> Predictions:
    """`tg.predict`: one pass, predictions in data order (see `prediction.Predictions`).

    Each slice's outputs pass through the generator's preprocessor's `post_process`.
    """
    settings = parts.options
    warn_if_not_for_prediction(datagen)
    post_process = post_processor(datagen)
    collector = predict_pass(parts, datagen, settings.val_class_weights, post_process)
    return collector.result(settings.pred_weighted_slices_range)
