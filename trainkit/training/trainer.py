"""`TrainGenerator`: the train loop, driven by the data generator's state."""

from __future__ import annotations

import time
import warnings
from typing import Any

import keras

from trainkit.checkpoints import RunFolder
from trainkit.training import checkpointing
from trainkit.training.callback_list import CallbackList, keras_verbose
from trainkit.training.construction import wiring
from trainkit.training.construction.argument_checks import check_datagen, explicit_arguments
from trainkit.training.construction.settings import SettingsView
from trainkit.training.construction.stateful_checks import check_stateful_pass
from trainkit.training.construction.strategy_checks import shard_for
from trainkit.training.evaluation.padding import fixed_batch_size
from trainkit.training.evaluation.prediction import Predictions
from trainkit.training.evaluation.validation import Validation, evaluate_datagen, predict_datagen
from trainkit.training.frequency import Frequency
from trainkit.training.interrupts import DeferredInterrupt, warn_preempted
from trainkit.training.loop_state import (
    BATCH_END,
    CHECKPOINT,
    EPOCH_END,
    EPOCH_LOGS,
    FIT,
    ITER_END,
    VALIDATE,
    VALIDATE_MID,
    LoopState,
    LoopStateView,
    append_logs,
    count_whole_batches,
)
from trainkit.training.outputs import figures
from trainkit.training.outputs.progress import Progress
from trainkit.training.outputs.run_logs import RunLogs
from trainkit.training.slices.feeder import SliceFeeder
from trainkit.training.slices.health import loss_is_finite
from trainkit.training.slices.record import SliceRecord
from trainkit.training.slices.steps import reset_states

# The loop's outputs between slices, in the order they run where several fall due: each
# is `(frequency setting, method)`. The stage methods run the due ones at each iter,
# batch, epoch and validation end (`_outputs_by`), and a fused group of slices ends
# where any is due (`_acts_after`): one table, read by both.
OUTPUTS = (
    ("checkpoint_freq", "_save_checkpoint"),
    ("introspect_freq", "_introspect"),
    ("plot_history_freq", "_draw_figures"),
)


class TrainGenerator(SettingsView, LoopStateView):
    """Trains a compiled Keras model on a `DataGenerator`, slice by slice.

    The trainer asks the generator for the current slice, fits it with the model's
    compiled train step, tells the generator to update its state, and reacts to
    batch ends (stateful reset, callbacks) and epoch ends (validation, `on_epoch_end`).
    Every counter is public and the run can be interrupted anywhere (Ctrl-C, or an
    exception in a step or a callback): calling `train()` again continues exactly,
    with no slice fit twice and none skipped.

    Args:
        model: a compiled `keras.Model`.
        datagen: the `trainkit.DataGenerator` to train on.
        val_datagen: a `DataGenerator` to validate on, or None.
        epochs: the absolute number of epochs to train; may be raised between
            `train()` calls to continue.
        val_freq: `{'epoch'|'batch'|'iter': n}` or None. By `'iter'`, validation runs
            at the first batch end at or after each multiple of n.
        key_metric: the validation metric that decides the best model.
        max_is_best: whether larger `key_metric` is better; None picks by its name
            (False for losses and errors, True for accuracy, auc, f1*, ...); a name of
            unknown direction is refused unless this is given.
        reset_statefuls: reset every stateful layer after the last slice of each
            train and validation batch.
        input_as_labels: fit `x` as its own target (autoencoders).
        callbacks: `trainkit.callbacks.Callback` and `keras.callbacks.Callback` objects.
        iter_verbosity: 0 silent, 'epoch' a line per epoch, 1 per batch, 2 per slice too.
        seed: seeds Python, NumPy and Keras (`keras.utils.set_random_seed`) at
            construction; build the model after it to make its weights reproducible.
        eval_fn: `'evaluate'` (sample-weighted means of the compiled metrics over
            validation batches, as `model.evaluate`) or `'predict'` (predictions over
            the whole validation set, `val_metrics` computed on all of it).
            `eval_fn='predict', val_metrics=['loss', 'f1', 'roc_auc'], key_metric='f1'`
        val_metrics: predict mode: names, aliases (`'acc'`, `'f1_score'`, `'auc'`)
            or callables `fn(y_true, y_pred)`, recorded under their names (default
            `['loss', key_metric]`; `'loss'` is the model's compiled loss);
            `'accuracy'` picks binary/categorical/sparse by the loss. Evaluate mode:
            the compiled metric names to keep. `key_metric` must be among them.
        class_weights: `{class: weight}` for training, e.g. `{0: 1.0, 1: 4.0}`;
            sparse, binary or one-hot labels; classes left out weigh 1.0. With several
            outputs, one dict applies to every output, `{'out1': {0: 1.0, 1: 4.0}}`
            to the outputs named. They multiply the weights a preprocessor serves
            (`(x, y, sample_weight)`, per sample or per timestep).
        val_class_weights: the same for validation, `tg.evaluate` and predict-mode
            metrics.
        logs_dir: a folder for run folders (`M{n}__{model_base_name}-{model_configs}`)
            holding checkpoints, `metrics.csv`, `history.png` and the report; None
            writes nothing.
        best_models_dir: a folder that receives `model.keras` and `state.json` of
            each new best.
        checkpoint_freq: `{'epoch'|'batch'|'iter'|'val': n}` or None (with `logs_dir`).
        max_checkpoints: checkpoints kept; the newest and the best are never pruned.
        resume: False (a new run), True (the newest run of `model_base_name` in
            `logs_dir` with a complete checkpoint) or a run or checkpoint folder.
            Every setting left out is taken from the checkpoint; a passed setting
            that changes what is trained must equal the saved one (docs/checkpoints.md).
        model_configs: `{name: value}` named in the run folder's name; values may be
            objects or functions (`{'optimizer': Adam(4e-4), 'act': relu}`), described
            by class name and config or qualified name, never by memory address.
        model_base_name: the run folders' base name.
        strategy: a `tf.distribute.MirroredStrategy` (the devices of one machine) or
            `MultiWorkerMirroredStrategy` (several processes), with the model built and
            compiled in its scope; None trains on the default device. `batch_size` is
            the global batch; on several workers each generator serves its worker's rows
            (its `shard` is set from the worker index unless given), only the chief
            writes the run folder, and a checkpoint resumes on any number of workers
            (docs/distributed.md).
        steps_per_execution: slices fit per compiled call (Keras' name; default 1). The
            trainer takes up to that many slices of one shape and fits them in one call,
            bitwise equal to one call per slice, then does each slice's bookkeeping and
            hooks in order (after the call, as Keras delivers its callbacks). A group
            ends where the loop acts between slices: a due checkpoint, validation or
            plot, a stateful reset, the epoch end, a slice of another shape. A stop
            requested by a callback takes effect at the group's end.
        on_nonfinite: what a slice holding NaN or inf, or a non-finite train loss, does.
            Each slice's inputs, labels and sample weights are checked on the host before
            it is fit (rare option `check_finite_data=False` turns that off). 'raise'
            (default): raise `trainkit.NonFiniteLossError` naming the epoch, `iters_fit`,
            `set_name`, `slice_idx`, the slice's global sample indices and which of them
            hold non-finite values, before the step when the data is at fault; the slice
            is not counted nor checkpointed. 'stop': end the run with that message (a
            warning, the report and the provenance log say it; `tg.nonfinite_message`).
            'skip': leave the slice out with the weights unchanged (a step whose loss is
            not finite is undone in the graph), name it in `tg.skipped_slices`, the
            provenance log, `metrics.csv` and a warning, and train on. 'ignore': train
            on, as Keras. Whatever the choice, no checkpoint is written from non-finite
            weights (`trainkit.NonFiniteWeightsError`).
        **rare_options: `progress_every` (batches per printed line, default 1),
            `defer_interrupts` (default True), `plot_history_freq` (redraw history.png
            and the report during the run, e.g. `{'epoch': 5}`; default None: once,
            when `train()` ends), `tensorboard=True` (scalars in the run folder's
            `tensorboard/`: validation metrics at each validation, train metrics every
            `tensorboard_every` batches, default 10), `introspect_freq` (log gradient
            norms and weight health to `introspection.jsonl`, e.g. `{'iter': 100}`;
            docs/introspection.md), `deterministic=True` (TensorFlow op determinism),
            `check_finite_data=False` (no host check of each slice for NaN/inf),
            `async_checkpoints=True` (checkpoints written in the background), and
            for validation (docs/validation.md): `predict_threshold`,
            `dynamic_predict_threshold`, `loss_weighted_slices_range`,
            `pred_weighted_slices_range`, `best_subset_size`, `pad_val_batches`.

    Settings are resolved once (passed > saved in the checkpoint being resumed >
    default) and the attributes are views of them: loop-control settings (`epochs`,
    the frequencies, `iter_verbosity`, `max_checkpoints`, `steps_per_execution`) can
    be assigned and are
    checked on assignment; the others are read-only (docs/training.md).

    Example:

    ```python
    datagen = DataGenerator(data=x, labels=y, batch_size=32, shuffle=True)
    val_datagen = DataGenerator(data=x_val, labels=y_val, batch_size=32)
    tg = TrainGenerator(model, datagen, val_datagen, epochs=5)
    tg.train()
    tg.history["loss"], tg.val_history["loss"], tg.best_key_metric
    ```
    """

    _explicit: set[str]  # keyword arguments the caller passed (set by the decorator)
    # The loop's parts, built by `wiring.build` when the trainer is constructed.
    _distribution: Any  # the strategy's layout (`distribute.Distribution`), or None
    _state: LoopState
    _interrupt: DeferredInterrupt
    _progress: Progress
    _callbacks: CallbackList
    _train_step: Any
    _fused_steps: Any
    _test_step: Any
    _feeder: SliceFeeder
    _slice: SliceRecord | None  # the slice being accounted, once there is one
    _unhealthy: str | None  # why the weights in memory must not be saved
    _validation: Validation
    _logs: RunLogs
    _timings: dict[str, float]
    _checkpoints: checkpointing.Checkpoints
    _stateful_layers: list[Any]
    _output_names: Any
    _new_best: bool
    # Public attributes besides the settings (`SettingsView`) and counters (`LoopStateView`).
    model: Any
    datagen: Any
    val_datagen: Any
    predict_threshold: float  # the binary threshold in use (tuned per validation if dynamic)
    nonfinite_message: str | None  # why on_nonfinite='stop' ended the run, else None
    best_subset_names: list[str]  # set_names of the last best subset

    @property
    def run_dir(self) -> str | None:
        """This run's folder in `logs_dir` (None without `logs_dir`)."""
        return self._run.path if self._run is not None else None

    @property
    def _run(self) -> RunFolder | None:
        return self._checkpoints.run

    def _setting_changed(self, name: str) -> None:
        if name == "iter_verbosity":
            self._progress.verbosity = self.iter_verbosity
        if name == "on_nonfinite" and self._train_step.guard != (self.on_nonfinite == "skip"):
            wiring.build_train_steps(self)  # 'skip' undoes a non-finite step in the graph

    @explicit_arguments
    def __init__(
        self,
        model: Any,
        datagen: Any,
        val_datagen: Any = None,
        *,
        epochs: int = 1,
        val_freq: dict[str, int] | None = {"epoch": 1},  # noqa: B006 (read only)
        key_metric: str = "loss",
        max_is_best: bool | None = None,
        val_metrics: Any = None,
        eval_fn: str = "evaluate",
        input_as_labels: bool = False,
        class_weights: Any = None,
        val_class_weights: Any = None,
        reset_statefuls: bool = False,
        logs_dir: str | None = None,
        best_models_dir: str | None = None,
        checkpoint_freq: dict[str, int] | None = {"epoch": 1},  # noqa: B006 (read only)
        max_checkpoints: int = 5,
        resume: bool | str = False,
        callbacks: list[Any] | None = None,
        iter_verbosity: int | str = 1,
        model_configs: dict[str, Any] | None = None,
        model_base_name: str = "model",
        seed: int | None = None,
        strategy: Any = None,
        steps_per_execution: int = 1,
        on_nonfinite: str = "raise",
        **rare_options: Any,
    ):
        arguments = {name: value for name, value in locals().items() if name != "self"}
        wiring.build(self, arguments)  # checks, resolves settings, resumes, builds the parts

    # ----------------------------------------------------------------- the loop

    def train(self) -> keras.callbacks.History:
        """Train until `epochs` are done or a stop is requested.

        Safe to call again after an interrupt (continues exactly where the loop
        stood, without a second `on_train_begin`). Once a run has ended, raising
        `epochs` and calling `train()` again continues training as a new run (with
        `on_train_begin`); with no epochs left, `train()` returns at once. On SIGTERM
        it checkpoints (with a run folder), warns and returns; the run stays open.

        Returns:
            A `keras.callbacks.History` of this run, as `model.fit` returns: one value
            per epoch this trainer completed in the run (`history.history['loss']`,
            `'val_loss'`, ...), `history.epoch` and `history.params`.
        """
        s = self._state
        if not s.run_begun and s.epoch >= self.epochs:
            return self._callbacks.history  # nothing left to train: no new run, no hooks
        # The run folder's lock is held for the whole call, released however it ends.
        writing = self._checkpoints.writing("train")
        with writing, self._interrupt.deferring(self._options["defer_interrupts"]):
            self._begin_run()
            # One stage per pass; `loop_state.TRANSITIONS` lists each stage and its next.
            # The slices of a fused call are all accounted before anything else acts.
            pending = self._feeder.pending
            while not (s.stage == FIT and not pending and self._run_done()):
                if not pending:
                    self._interrupt.raise_if_requested()  # Ctrl-C lands here, never mid-step
                    # SIGTERM: checkpoint, then stop. Under several workers, any worker's
                    # SIGTERM, shared by the steps' all-reduce, so all stop at one iter.
                    if self._interrupt.preempted_in_group(self._distribution):
                        return self._stop_preempted()
                if s.stage == FIT:
                    self._fit_slice()  # get slice -> fit -> datagen.update_state()
                elif s.stage == ITER_END:
                    self._end_iter()  # on_train_iter_end
                elif s.stage == BATCH_END:
                    self._end_batch()  # count, reset statefuls, on_train_batch_end
                elif s.stage == VALIDATE_MID:
                    self._validate(next_stage=EPOCH_END if self._epoch_done() else FIT)
                elif s.stage == EPOCH_END:
                    self._end_epoch()  # datagen.on_epoch_end()
                elif s.stage == VALIDATE:
                    self._validate(next_stage=EPOCH_LOGS)
                elif s.stage == EPOCH_LOGS:
                    self._log_epoch()  # on_epoch_end(epoch, logs)
                elif s.stage == CHECKPOINT:
                    self._checkpoint_if_due()
            self._end_run()
        return self._callbacks.history

    # Each stage first commits its bookkeeping and moves `stage` on, then calls the
    # hooks: an exception from a hook leaves the loop just past that stage, and an
    # exception before the commit leaves the stage to run again.

    def _begin_run(self) -> None:
        s = self._state
        self._feeder.check_optimizer_iterations(self._count_slice)
        verbose = keras_verbose(self.iter_verbosity)
        params = {"epochs": self.epochs, "steps": len(self.datagen), "verbose": verbose}
        # A stock ProgbarLogger draws the progress instead of trainkit's display.
        self._progress.verbosity = 0 if self._callbacks.has_progbar else self.iter_verbosity
        self._callbacks.set_params(params)  # also on re-entry: the History's params
        if s.run_begun:
            # Re-entry after an interrupt: on_train_begin already fired. After a resume,
            # stock Keras callbacks still need theirs to set themselves up.
            if self._checkpoints.resumed_keras_callbacks:
                self._checkpoints.resume_keras_callbacks(call_begin=True)
            return
        s.run_begun, s.stop_training, self.model.stop_training = True, False, False
        self._checkpoints.resume_keras_callbacks(call_begin=False, stage="prepare")
        self._callbacks.call("on_train_begin", {})
        self._checkpoints.resume_keras_callbacks(call_begin=False, stage="restore")

    def _fit_slice(self) -> None:
        s = self._state
        if not s.epoch_begun:
            s.epoch_begun, s.batch_in_epoch, s.epoch_val_logs = True, 0, {}
            s.epoch_means.clear()
            self._progress.epoch_begin()
            self._callbacks.call("on_epoch_begin", s.epoch, {})
        feeder = self._feeder
        if not s.batch_begun:
            if len(feeder.pending) > 1 and self._quiet_between_batches():
                self._progress.batches_passed(count_whole_batches(s, feeder.pending))
            s.batch_begun, s.iter_in_batch = True, 0
            s.batch_means.clear()
            self._callbacks.call("on_train_batch_begin", s.batch_in_epoch, {})
        if not feeder.pending and feeder.poisoned is not None:
            poisoned, feeder.poisoned = feeder.poisoned, None
            return feeder.nonfinite(*poisoned)
        if not feeder.pending:
            started = time.perf_counter()
            feeder.fit_next()  # get slice(s) -> check -> fit -> datagen.update_state()
            self._timings["train"] += time.perf_counter() - started
            if not feeder.pending:  # not finite, and on_nonfinite='stop'
                return None
        record, logs = feeder.pending.popleft()
        if record.skipped is not None:
            return self._count_skipped(record)
        self._count_slice(logs, record)

    def _acts_after(self, iters: int, batches: int, batch_ended: bool, epoch_ended: bool) -> bool:
        """Whether the loop acts after the `iters`-th slice (it ended the `batches`-th batch,
        the epoch, or neither): where a fused group ends. Reads `OUTPUTS` as the stages do."""
        if epoch_ended or self._outputs_due("iter", iters):
            return True
        if not batch_ended:
            return False
        if self._stateful_layers and self.reset_statefuls:
            return True
        return self._outputs_due("batch", batches) or self._val_due(iters, batches)

    def _quiet_between_batches(self) -> bool:
        """No run folder, callback or progress line does anything between two batches."""
        quiet = self._callbacks.quiet_between_batches and self._progress.quiet_between_batches
        return quiet and self.run_dir is None

    def _count_skipped(self, record: SliceRecord) -> None:
        """A slice left out by on_nonfinite='skip': named, not counted as fit."""
        s = self._state
        s.name_skipped(record)
        self._slice = record
        if record.batch_exhausted:
            s.move_to(BATCH_END)
        self._logs.skipped(record)
        warnings.warn(str(record.skipped), stacklevel=4)

    def _count_slice(self, logs: dict[str, float], record: SliceRecord) -> None:
        s = self._state
        if s.first_nonfinite_iter is None and not loss_is_finite(logs):
            s.first_nonfinite_iter = s.iters_fit + 1  # on_nonfinite='ignore'
        s.iters_fit += 1
        s.iter_in_batch += 1
        s.last_iter_logs = logs
        s.batch_means.add(logs, record.samples)
        self._slice = record
        self._logs.iter_fit(record)
        s.move_to(ITER_END)

    def _end_iter(self) -> None:
        s = self._state
        record = self._slice
        exhausted = record.batch_exhausted if record else self.datagen.batch_exhausted
        s.move_to(BATCH_END if exhausted else FIT)
        self._progress.iter_end(s.last_iter_logs, self._slice)
        self._callbacks.call("on_train_iter_end", s.iter_in_batch - 1, dict(s.last_iter_logs))
        self._outputs_by("iter", s.iters_fit)  # a checkpoint exactly here, between slices

    def _end_batch(self) -> None:
        s = self._state
        logs = s.batch_means.result()
        s.epoch_means.add(logs, s.batch_means.mean_weight())
        append_logs(s.history, logs)
        s.batches_fit += 1
        s.batch_begun, index = False, s.batch_in_epoch
        s.batch_in_epoch += 1
        if self.reset_statefuls:
            reset_states(self._stateful_layers)
        if self._val_due_mid_epoch():
            s.move_to(VALIDATE_MID)
        else:
            s.move_to(EPOCH_END if self._epoch_done() else FIT)
        set_name = self._slice.set_name if self._slice else self.datagen.set_name
        self._logs.train_batch(logs, set_name)
        self._progress.batch_end(logs, set_name)
        self._callbacks.call("on_train_batch_end", index, logs)
        self._outputs_by("batch", s.batches_fit)

    def _end_epoch(self) -> None:
        s = self._state
        self.datagen.on_epoch_end()
        s.epoch += 1
        s.epoch_begun = False
        s.epoch_batches.append(s.batches_fit)
        due = self._can_validate() and self.val_freq.unit == "epoch"  # type: ignore[union-attr]
        s.move_to(VALIDATE if due and self.val_freq.due(s.epoch) else EPOCH_LOGS)  # type: ignore[union-attr]

    def _validate(self, next_stage: str) -> None:
        s = self._state
        before, started = s.times_validated, time.perf_counter()
        try:
            self._validation.run(next_stage)
        finally:
            # Also when on_val_end raised: the validation itself is complete.
            self._timings["validation"] += time.perf_counter() - started
            if s.times_validated > before and s.val_stage == "begin":
                self._after_validation()

    def _after_validation(self) -> None:
        s = self._state
        s.val_batches.append(s.batches_fit)
        self._logs.validation(s.last_val_logs)
        if self._new_best:
            self._new_best = False
            self._checkpoints.save_best()
        self._outputs_by("val", s.times_validated)

    def _log_epoch(self) -> None:
        s = self._state
        logs = s.epoch_means.result()
        logs.update({f"val_{name}": value for name, value in s.epoch_val_logs.items()})
        s.move_to(CHECKPOINT)
        self._progress.epoch_end(logs)
        self._callbacks.call("on_epoch_end", s.epoch - 1, logs)

    def _checkpoint_if_due(self) -> None:
        self._state.move_to(FIT)
        self._outputs_by("epoch", self._state.epoch)

    def _outputs_by(self, unit: str, counter: int) -> None:
        """Run each output of `OUTPUTS` whose frequency is by `unit` and due at `counter`."""
        if self._checkpoints.run is None:  # no run folder: no output is ever due
            return
        for setting, action in OUTPUTS:
            if self._due(getattr(self, setting), unit, counter):
                getattr(self, action)()

    def _outputs_due(self, unit: str, counter: int) -> bool:
        if self._checkpoints.run is None:
            return False
        return any(self._due(getattr(self, setting), unit, counter) for setting, _ in OUTPUTS)

    def _save_checkpoint(self) -> None:
        self._checkpoints.save(background=True)  # written aside with async_checkpoints

    def _draw_figures(self) -> None:
        figures.draw(wiring.figure_inputs(self))

    def _introspect(self) -> None:
        self._logs.introspect(self._slice)

    def _due(self, freq: Frequency | None, unit: str, counter: int) -> bool:
        """A run-folder output with frequency `freq` is due at this `unit` counter."""
        if self.run_dir is None or freq is None:
            return False
        return freq.unit == unit and freq.due(counter)

    def checkpoint(self) -> str:
        """Write a checkpoint now and return its folder (needs `logs_dir`).

        Raises:
            ValueError: no run folder. RuntimeError: the weights hold the step of a
                non-finite loss, or a fused call's slices are being accounted.
        """
        self._checkpoints.check_asked(self._unhealthy, len(self._feeder.pending))
        return self._checkpoints.save()

    def _stop_preempted(self) -> keras.callbacks.History:
        """SIGTERM at a slice boundary: checkpoint (with a run folder) and stop, run open."""
        path = self._checkpoints.save() if self.run_dir is not None else None
        warn_preempted(self, path)
        return self._callbacks.history

    def _end_run(self) -> None:
        self._state.run_begun = False
        if self.run_dir is not None:  # the final picture of the run
            self._draw_figures()
            self._logs.close()
        self._callbacks.call("on_train_end", {})

    # ----------------------------------------------------------------- helpers

    def _run_done(self) -> bool:
        stop = self._state.stop_training or bool(getattr(self.model, "stop_training", False))
        return stop or self._state.epoch >= self.epochs

    def _epoch_done(self) -> bool:
        record = self._slice
        return record.epoch_exhausted if record else bool(self.datagen.all_data_exhausted)

    def _can_validate(self) -> bool:
        return self.val_datagen is not None and self.val_freq is not None

    def _val_due_mid_epoch(self) -> bool:
        """By 'batch' or 'iter'; by 'iter' at the first batch end at/after n·k iters."""
        s, freq = self._state, self.val_freq
        if not self._val_due(s.iters_fit, s.batches_fit):
            return False
        if freq is not None and freq.unit == "iter":
            s.val_iter_mark = s.iters_fit // freq.n
        return True

    def _val_due(self, iters: int, batches: int) -> bool:
        """Whether a batch end at these counters validates (changes nothing)."""
        freq = self.val_freq if self.val_datagen is not None else None  # (cheap first)
        if freq is None or freq.unit == "epoch":
            return False
        if freq.unit == "batch":
            return freq.due(batches)
        return iters // freq.n > self._state.val_iter_mark

    def _run_test_step(self, *data: Any) -> dict[str, float]:
        return self._test_step(*data)  # looked up per call: tests may wrap the step

    def _mark_new_best(self) -> None:
        self._new_best = True  # saved as the best model after the validation
        self._progress.new_best()  # and marked on the validation's printed line

    # ----------------------------------------------------------------- public API

    def evaluate(self, datagen: Any) -> dict[str, float]:
        """One pass of `datagen` through the model: its validation metrics per `eval_fn`.

        Evaluate mode: sample-weighted means of the compiled metrics (`model.evaluate`).
        Predict mode: `val_metrics` on all predictions at `predict_threshold`.
        `val_class_weights` and `loss_weighted_slices_range` apply. Starts at the
        generator's position (a fresh pass if exhausted), leaves it ready for the next
        pass; trainer counters and callbacks are untouched. See docs/validation.md.
        """
        check_datagen("datagen", datagen, required=True)
        check_stateful_pass(self._stateful_layers, datagen, self._val.pad_val_batches)
        if self._distribution is not None:  # each worker its rows, counted once
            shard_for(self._distribution, "datagen", datagen)
        return evaluate_datagen(self._validation.parts, datagen)

    def predict(self, datagen: Any) -> Predictions:
        """One pass of `datagen` (labels optional): predictions in data order.

        Returns a `Predictions` (`predictions`, `labels`, `set_names`,
        `sample_indices`, `slice_indices`, ...): one row per sample of each slice, or
        one per sample with `pred_weighted_slices_range`. The cursor is handled as in
        `evaluate()`.

        Example:

        ```python
        result = tg.predict(DataGenerator(data=x_test, batch_size=32))
        result.predictions[result.sample_indices == 0]  # sample 0's outputs
        ```
        """
        check_datagen("datagen", datagen, required=True)
        check_stateful_pass(self._stateful_layers, datagen, self._val.pad_val_batches)
        distribution = self._distribution
        if distribution is not None:  # each worker its rows, gathered on every worker
            split = distribution.workers > 1 or fixed_batch_size(self.model) is not None
            shard_for(distribution, "datagen", datagen, check_rows=split)
        return predict_datagen(self._validation.parts, datagen)

    def state_dict(self) -> dict[str, Any]:
        """The loop's counters, histories and progress (JSON-serializable)."""
        return self._state.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._state.load_state_dict(state)
        if self._run is not None:  # histories replaced: the next checkpoint logs them whole
            self._run.histories.restate()
