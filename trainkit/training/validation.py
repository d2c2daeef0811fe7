"""Validation in evaluate mode: the sample-weighted mean of `test_step` over batches.

A validation keeps its progress in the trainer's `LoopState` (`val_stage`, the
current batch's running means), so a validation interrupted by Ctrl-C or an
exception resumes at its unfinished batch when `train()` is called again. It never
touches the train generator, and the states of stateful layers are saved before it
and restored after it, so validating mid-epoch does not disturb training.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from trainkit.training.loop_state import WeightedMean, append_logs
from trainkit.training.steps import num_samples, reset_states, restore_states, snapshot_states

if TYPE_CHECKING:
    from trainkit.training.trainer import TrainGenerator


class Validation:
    """Runs (and resumes) validations for one trainer."""

    def __init__(self, trainer: TrainGenerator):
        self.trainer = trainer
        self._saved_states: list[Any] = []

    def run(self, next_stage: str) -> None:
        """Run or resume the validation; moves the train loop to `next_stage` when done."""
        t, s = self.trainer, self.trainer._state
        if s.val_stage == "begin":
            self._begin()
            s.val_stage = "run"
            t._callbacks.call("on_val_begin", {})
        if s.val_stage == "run":
            self._run_slices()
            self._record()
            s.val_stage = "end"
        if s.val_stage == "end":
            restore_states(t._stateful_layers, self._saved_states)
            s.val_stage, s.stage = "begin", next_stage  # done before on_val_end is called
            t._progress.val_end(t, s.last_val_logs)
            t._callbacks.call("on_val_end", dict(s.last_val_logs))

    def _begin(self) -> None:
        t, s = self.trainer, self.trainer._state
        s.val_means.clear()
        s.val_batch_means.clear()
        s.val_batch_index = 0
        s.val_batch_begun = s.val_batch_end_pending = False
        # Validation starts from clean RNN states; training's come back after it.
        self._saved_states = snapshot_states(t._stateful_layers)
        reset_states(t._stateful_layers)
        if t.val_datagen.all_data_exhausted:
            t.val_datagen.on_epoch_end()

    def _run_slices(self) -> None:
        t, s, datagen = self.trainer, self.trainer._state, self.trainer.val_datagen
        while True:
            if s.val_batch_end_pending:
                self._end_batch()
            if datagen.all_data_exhausted:
                return
            t._interrupt.raise_if_requested()
            if not s.val_batch_begun:
                s.val_batch_begun = True
                t._callbacks.call("on_val_batch_begin", s.val_batch_index, {})
            x, y = datagen.get()
            logs = t._test_step(x, t._labels(x, y))
            s.val_batch_means.add(logs, num_samples(x))
            s.iters_validated += 1
            datagen.update_state()
            s.val_batch_end_pending = datagen.batch_exhausted

    def _end_batch(self) -> None:
        t, s = self.trainer, self.trainer._state
        logs = s.val_batch_means.result()
        s.val_means.add(logs, s.val_batch_means.mean_weight())
        s.val_batch_means.clear()
        s.batches_validated += 1
        if t.reset_statefuls:
            reset_states(t._stateful_layers)
        index = s.val_batch_index
        s.val_batch_index += 1
        s.val_batch_begun = s.val_batch_end_pending = False
        t._callbacks.call("on_val_batch_end", index, logs)

    def _record(self) -> None:
        t, s = self.trainer, self.trainer._state
        t.val_datagen.on_epoch_end()  # the next validation starts a fresh pass
        logs = s.val_means.result()
        s.times_validated += 1
        s.last_val_logs = logs
        s.epoch_val_logs = logs
        append_logs(s.val_history, logs)
        t._update_key_metric(logs)


def evaluate_datagen(trainer: TrainGenerator, datagen: Any) -> dict[str, float]:
    """Run one whole pass of `datagen` through `test_step`; sample-weighted means.

    Starts at the generator's current position (a fresh pass if it is exhausted)
    and leaves it ready for the next pass. Counters and callbacks are untouched.
    """
    means, batch = WeightedMean(), WeightedMean()
    layers = trainer._stateful_layers
    saved = snapshot_states(layers)
    reset_states(layers)
    if datagen.all_data_exhausted:
        datagen.on_epoch_end()
    while not datagen.all_data_exhausted:
        x, y = datagen.get()
        batch.add(trainer._test_step(x, trainer._labels(x, y)), num_samples(x))
        datagen.update_state()
        if datagen.batch_exhausted:
            means.add(batch.result(), batch.mean_weight())
            batch.clear()
            if trainer.reset_statefuls:
                reset_states(layers)
    datagen.on_epoch_end()
    restore_states(layers, saved)
    return means.result()
