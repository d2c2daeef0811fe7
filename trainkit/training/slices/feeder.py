"""`SliceFeeder`: takes slices from the train generator and fits them, one or a group.

The trainer's loop asks for the next fitted slice; the feeder takes the current slice
from the generator, checks it on the host (labels in range, no NaN or inf), fits it
with the compiled step (or, with `steps_per_execution` > 1, a group of same-shaped
slices in one call that ends where the loop acts between slices), and queues each
slice's record and values for the loop's bookkeeping, in order. What a slice that is
not finite does (`on_nonfinite`) is decided here too, since it decides whether the
generator moves past it.

It is the trainer's own part, not a helper of its own: it reads the trainer's settings
(`steps_per_execution`, `on_nonfinite`, ...) and its compiled steps at each call, so an
assigned setting or a wrapped step takes effect at once.
"""

from __future__ import annotations

import warnings
from collections import deque
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, overload

import numpy as np
import tensorflow as tf

from trainkit.data.whole_batches import WholeBatches
from trainkit.training.construction import preflight
from trainkit.training.evaluation.sample_weights import slice_sample_weights
from trainkit.training.slices import distribute
from trainkit.training.slices.health import data_is_finite, loss_is_finite, nonfinite_error
from trainkit.training.slices.record import SliceRecord, keras_data
from trainkit.training.slices.steps import num_samples, signature_key
from trainkit.training.slices.structure import unpack_slice

if TYPE_CHECKING:
    from trainkit.training.trainer import TrainGenerator


class StepData(Sequence[tuple[Any, ...]]):
    """The step's data of each slice of a group, `keras_data` of each, read on demand
    (the fused call reads the first and their count when it is handed their stack)."""

    def __init__(self, group: Sequence[tuple[Any, ...]]) -> None:
        self._group = group

    def __len__(self) -> int:
        return len(self._group)

    @overload
    def __getitem__(self, index: int) -> tuple[Any, ...]: ...
    @overload
    def __getitem__(self, index: slice) -> list[tuple[Any, ...]]: ...
    def __getitem__(self, index: int | slice) -> Any:
        if isinstance(index, slice):
            return [keras_data(args) for args in self._group[index]]
        return keras_data(self._group[index])


class SliceFeeder:
    """The next slices fit, as `(record, logs)` pairs in `pending`, for the loop to count.

    Attributes:
        pending: slices fit whose bookkeeping is still to do, in order (a fused call
            fits several). A slice left out by on_nonfinite='skip' has `record.skipped`.
        poisoned: a slice of a fused group whose loss was not finite, handled once the
            good slices before it are counted: `(logs, args, record)`.
        stepping: a single slice's step was called and the slice is not queued yet (an
            interrupt left it so: on re-entry one step more than counted is that one).
    """

    def __init__(self, trainer: TrainGenerator) -> None:
        self.trainer = trainer
        self.pending: deque[tuple[SliceRecord, dict[str, float]]] = deque()
        self.poisoned: tuple[dict[str, float], tuple[Any, ...], SliceRecord] | None = None
        self.label_bound = preflight.sparse_label_bound(trainer.model)  # checked per slice
        self.stepping = False  # a single step was called and its slice is not queued yet

    def fit_next(self) -> None:
        """Fit the next slice, or with `steps_per_execution` > 1 a group in one call."""
        tg = self.trainer
        args, record = self.take_slice()
        if not self.data_ok(args):
            return self.nonfinite({}, args, record, before_step=True)
        if tg.steps_per_execution == 1 or not tg._train_step.ready:
            self.stepping = True  # until the slice is queued: an interrupt leaves it set
            logs = tg._train_step(*args)
            record.samples = int(logs.pop(distribute.SAMPLES_KEY, record.samples))
            if tg.on_nonfinite != "ignore" and not loss_is_finite(logs):
                if tg.on_nonfinite != "skip":  # 'skip': the guarded step undid itself
                    tg._checkpoints.iterations_offset += 1  # applied, but not counted
                self.stepping = False
                return self.nonfinite(logs, args, record)  # the generator stays there
            self.advance(record)
            self.pending.append((record, logs))
            self.stepping = False
            return None
        return self._fit_group(args, record)

    def _fit_group(self, args: tuple[Any, ...], record: SliceRecord) -> None:
        tg = self.trainer
        saved = tg.datagen.state_dict()
        applied_before = self._optimizer_steps_tensor()  # read to Python only on failure
        try:
            group, records, stacked = self._take_group(args, record, saved)
            if len(group) == 1:
                values = [tg._train_step(*args)]
            else:
                full = len(group) == tg.steps_per_execution  # the length that recurs
                values = tg._fused_steps(StepData(group), stacked, unroll=full)
            if distribute.SAMPLES_KEY in values[0]:  # a strategy's: all workers' rows
                for logs, each in zip(values, records, strict=True):
                    each.samples = int(logs.pop(distribute.SAMPLES_KEY))
        except BaseException:
            self.rewind_group(saved, self._optimizer_steps() - int(applied_before))
            raise
        if tg.on_nonfinite == "skip":  # each undone in the graph; left out when counted
            for logs, each, fit in zip(values, records, group, strict=True):
                if not loss_is_finite(logs):
                    each.skipped = self._message(logs, fit, each, before_step=False)
        bad = self._first_nonfinite(values)
        if bad is not None:
            # Count the good slices before it; put the generator back at the bad one.
            self._move_generator(saved, bad)
            tg.datagen.get()  # the bad slice is served, not consumed (as with K=1)
            tg._checkpoints.iterations_offset += len(group) - bad
            self.poisoned = (values[bad], group[bad], records[bad])
            values, records = values[:bad], records[:bad]
        self.pending.extend(zip(records, values, strict=True))

    def check_optimizer_iterations(self, count: Callable[[dict[str, float], Any], None]) -> None:
        """On (re-)entry: a step interrupted after it applied is counted (by `count`), not
        refit; steps taken outside this trainer are told of and set aside."""
        tg = self.trainer
        done = self._optimizer_steps() - tg._checkpoints.iterations_offset
        pending = sum(record.skipped is None for record, _ in self.pending)
        if done == tg.iters_fit + pending:
            return
        if done == tg.iters_fit + 1 and self.stepping:  # (one step taken elsewhere is not)
            self.stepping = False
            warnings.warn(
                "The last train step was interrupted after the optimizer applied it; "
                "it is counted as fit (its metric values were lost) and not fit again.",
                stacklevel=4,
            )
            self.take_applied()
            record, logs = self.pending.pop()
            count(logs, record)
            return
        warnings.warn(
            f"optimizer.iterations moved by {done - tg.iters_fit} steps outside of this "
            "trainer (was the model trained elsewhere?); continuing from here.",
            stacklevel=4,
        )
        tg._checkpoints.iterations_offset += done - tg.iters_fit

    def _optimizer_steps(self) -> int:
        return int(self.trainer.model.optimizer.iterations.numpy())

    def _optimizer_steps_tensor(self) -> Any:
        """`optimizer.iterations` now, as a tensor: read without the copy to Python (a
        wait for the device) that only a failed fused call needs."""
        variable = self.trainer.model.optimizer.iterations
        variable = getattr(variable, "value", variable)  # Keras' Variable holds TF's
        try:
            return tf.raw_ops.ReadVariableOp(resource=variable.handle, dtype=variable.dtype)
        except (AttributeError, TypeError, ValueError):  # a strategy's variable, say
            return variable.read_value()

    def _move_generator(self, saved: dict[str, Any], slices: int) -> None:
        """The generator back at `saved`, then `slices` slices on."""
        datagen = self.trainer.datagen
        datagen.load_state_dict(saved)
        for _ in range(slices):
            datagen.get()
            datagen.update_state()

    def rewind_group(self, saved: dict[str, Any], applied: int) -> None:
        """After a failure in a group: the slices the optimizer applied are counted (their
        values lost, as for one slice interrupted after its step), the rest served again."""
        self._move_generator(saved, 0)
        if applied > 0:
            warnings.warn(
                f"{applied} train steps of a fused call were applied before it was "
                "interrupted; they are counted as fit (their metric values were lost) "
                "and not fit again.",
                stacklevel=5,
            )
        for _ in range(max(applied, 0)):
            self.take_applied()

    def take_applied(self) -> None:
        """The current slice, whose step applied before an interrupt: counted, no values."""
        _, record = self.take_slice()
        self.advance(record)
        record.samples = 0  # no values: it adds nothing to the batch means
        self.pending.append((record, {}))

    def _first_nonfinite(self, values: list[dict[str, float]]) -> int | None:
        if self.trainer.on_nonfinite in ("ignore", "skip"):
            return None
        return next((j for j, logs in enumerate(values) if not loss_is_finite(logs)), None)

    def data_ok(self, args: tuple[Any, ...]) -> bool:
        """Host checks before a slice is fit: labels in the loss' range (else ValueError),
        inputs, labels and sample weights finite (False when not, where it is checked)."""
        tg = self.trainer
        if self.label_bound is not None and args[1] is not None:
            preflight.check_label_range("datagen", args[1], self.label_bound, tg.datagen)
        if tg.on_nonfinite == "ignore" or not tg._options["check_finite_data"]:
            return True
        return data_is_finite(args)

    def _message(
        self, logs: dict[str, float], args: tuple[Any, ...], record: SliceRecord, **how: bool
    ) -> str:
        return str(self._error(logs, args, record, **how))

    def _error(
        self, logs: dict[str, float], args: tuple[Any, ...], record: SliceRecord, **how: bool
    ) -> Any:
        tg = self.trainer
        return nonfinite_error(
            logs, args, epoch=tg.epoch, iters_fit=tg.iters_fit, set_name=record.set_name,
            slice_idx=record.slice_idx, batch=record.batch,
            skipping=tg.on_nonfinite == "skip", **how,
        )  # fmt: skip

    def nonfinite(
        self,
        logs: dict[str, float],
        args: tuple[Any, ...],
        record: SliceRecord,
        before_step: bool = False,
    ) -> None:
        """A non-finite slice or loss: skip it, raise NonFiniteLossError, or end the run."""
        tg = self.trainer
        if tg.on_nonfinite == "skip":  # the weights are as before the slice
            record.skipped = self._message(logs, args, record, before_step=before_step)
            self.advance(record)
            self.pending.append((record, logs))
            return
        error = self._error(logs, args, record, before_step=before_step)
        if not before_step:
            tg._unhealthy = str(error)  # the weights in memory hold the bad step
        if tg.on_nonfinite == "raise":
            raise error
        tg.nonfinite_message = str(error)
        tg.stop_training = True
        tg._logs.stopped(str(error))
        warnings.warn(str(error), stacklevel=5)

    def take_slice(self) -> tuple[tuple[Any, ...], SliceRecord]:
        """The current slice as the step's arguments, and its record (not yet advanced)."""
        tg = self.trainer
        datagen = tg.datagen
        x, y, served = unpack_slice(datagen.get())
        labels = x if tg.input_as_labels else y
        weights = slice_sample_weights(
            datagen, x, labels, tg._val.class_weights, tg._val.loss_weighted_slices_range,
            served, tg._output_names,
        )  # fmt: skip
        args = (x, labels) if weights is None else (x, labels, weights)
        describe = tg.run_dir is not None and getattr(datagen, "describe_slice", None)
        record = SliceRecord(
            slice_idx=int(datagen.slice_idx),
            slices_per_batch=int(datagen.slices_per_batch),
            set_name=datagen.set_name,
            batch=getattr(datagen, "current_batch", None),
            samples=num_samples(x),
            description=describe() if describe else {},
            args=args if tg.introspect_freq is not None else None,
        )
        return args, record

    def advance(self, record: SliceRecord) -> None:
        datagen = self.trainer.datagen
        datagen.update_state()
        record.batch_exhausted = bool(datagen.batch_exhausted)
        record.epoch_exhausted = bool(datagen.all_data_exhausted)

    def _take_group(
        self, args: tuple[Any, ...], record: SliceRecord, saved: dict[str, Any]
    ) -> tuple[Sequence[tuple[Any, ...]], list[SliceRecord], Any]:
        """Up to `steps_per_execution` slices of one shape, ending where the loop acts,
        and the group stacked for the fused call (None: the call stacks it).

        A group ends after the slice where the schedule acts (a checkpoint, validation,
        plot or introspection falls due, a stateful reset, the epoch end), and before a
        slice of another shape or one that fails the host checks (which stays served,
        for the next call). `saved`: the generator's state at the group's first slice.

        Slices of plain arrays are checked once over the group's stack (one pass costs
        about what one slice's checks did, and the call takes that stack as it is); only
        when that finds something is the group taken again, slice by slice.
        """
        served = self._take_whole(args, record)
        if served is not None:
            if self._stack_ok((served.x, served.y)):
                return served, self._whole_records(record, served), keras_data((served.x, served.y))
            return self._take_again(saved)
        whole = all(type(part) is np.ndarray or part is None for part in args)
        group, records = self._collect(args, record, check_each=not whole)
        if not whole or len(group) == 1:
            return group, records, None
        if all(len(each) == len(args) for each in group):  # else: weights on some slices
            # Each member stacked as the slices hold it, `(x, y[, sample_weight])` with y
            # None where there are no labels (the weights then are checked, though not fit).
            stacked = tuple(None if p[0] is None else np.stack(p) for p in zip(*group))
            if self._stack_ok(stacked):
                return group, records, keras_data(stacked)
        # A slice of the group fails a check (or the slices differ in their members).
        return self._take_again(saved)

    def _take_again(
        self, saved: dict[str, Any]
    ) -> tuple[list[tuple[Any, ...]], list[SliceRecord], None]:
        """The group taken again from `saved` checking each slice, so that it ends before
        a bad slice as it would one by one (and a label error names that slice). The
        first slice was checked before the group began."""
        self._move_generator(saved, 0)
        args, record = self.take_slice()
        group, records = self._collect(args, record, check_each=True)
        return group, records, None

    def _take_whole(self, args: tuple[Any, ...], record: SliceRecord) -> WholeBatches | None:
        """The group served at once by the generator, where each slice is a whole batch of
        in-memory arrays fit as served (no sample weights, no copy kept for
        introspection); None to take it slice by slice."""
        tg = self.trainer
        serve = getattr(tg.datagen, "_serve_whole_batches", None)
        if (
            serve is None
            or len(args) != 2
            or tg.input_as_labels
            or tg.introspect_freq is not None
            or record.slices_per_batch != 1
            or tg._val.class_weights is not None
            or tg._val.loss_weighted_slices_range is not None
        ):
            return None
        iters, batches = tg.iters_fit, tg.batches_fit

        def ends_after(count: int) -> bool:  # after the count-th batch, not the epoch's last
            return bool(tg._acts_after(iters + count, batches + count, True, False))

        return serve(tg.steps_per_execution, ends_after)  # type: ignore[no-any-return]

    def _whole_records(self, first: SliceRecord, served: WholeBatches) -> list[SliceRecord]:
        """The records of a group served whole: `first` (taken with `get()`) and one per
        batch after it, as `take_slice()` and `advance()` would have written them (slices
        served as they are: the generator's preprocessor describes nothing)."""
        size = first.samples
        records = [first]
        for batch in served.batches[1:]:
            records.append(SliceRecord(0, 1, batch.set_name, batch, size, {}, True))
        first.batch_exhausted = True
        records[-1].epoch_exhausted = served.epoch_ended
        return records

    def _collect(
        self, args: tuple[Any, ...], record: SliceRecord, check_each: bool
    ) -> tuple[list[tuple[Any, ...]], list[SliceRecord]]:
        tg = self.trainer
        key = signature_key(keras_data(args))
        group, records = [args], [record]
        self.advance(record)
        batches = tg.batches_fit + record.batch_exhausted
        while len(group) < tg.steps_per_execution:
            last = records[-1]
            if tg._acts_after(
                tg.iters_fit + len(group), batches, last.batch_exhausted, last.epoch_exhausted
            ):
                break
            args, record = self.take_slice()
            if signature_key(keras_data(args)) != key or (check_each and not self.data_ok(args)):
                break  # stays served: fit (or refused) first in the next call
            self.advance(record)
            group.append(args)
            records.append(record)
            batches += record.batch_exhausted
        return group, records

    def _stack_ok(self, stacked: tuple[Any, ...]) -> bool:
        """The host checks of `data_ok` over a group's stack (each member of
        `(x, y[, sample_weight])` with the slices along its first axis)."""
        try:
            return self.data_ok(stacked)
        except ValueError:  # a label out of range: found again, and named, slice by slice
            return False
