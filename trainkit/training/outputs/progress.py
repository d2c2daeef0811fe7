"""Progress display: counts, ETA, metrics and the `set_name` being fit.

`iter_verbosity=0` prints nothing (Keras' `verbose=0`); `'epoch'` a line per validation
and per epoch (DeepTrain's quiet level, Keras' `verbose=2`); `1` a line per batch too
(every `progress_every` batches); `2` a line per slice too. On a terminal the
batch line is rewritten in place; when stdout is not a terminal (logs, CI) every line is
its own, so logs are not flooded with carriage returns. A Jupyter notebook (an IPython
kernel, as Keras' Progbar detects it) rewrites like a terminal. A rewritten line is
padded to the previous one's width so no tail of it stays on screen. Validation lines
mark a new best key metric with `*`.
"""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from trainkit.training.construction.settings import TrainSettings
    from trainkit.training.loop_state import LoopState


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(seconds + 0.5), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def _metrics(logs: dict[str, float]) -> str:
    return " ".join(f"{name}={value:.4g}" for name, value in logs.items())


_MAX_WIDTH = 200  # characters of a rewritten line
# `iter_verbosity` as a level: 'epoch' sits between silence and a line per batch.
_LEVELS = {0: 0, "epoch": 1, 1: 2, 2: 3}
_EPOCH, _BATCH, _SLICE = 1, 2, 3


def in_notebook() -> bool:
    """Running in a Jupyter (IPython) kernel, whose output cells honour `\\r`."""
    if "ipykernel" not in sys.modules:
        return False
    get_ipython = getattr(sys.modules.get("IPython"), "get_ipython", None)
    shell = get_ipython() if callable(get_ipython) else None
    return shell is not None and hasattr(shell, "kernel")


def can_rewrite(stream: Any) -> bool:
    """Whether `stream` shows a carriage return as a rewrite of the line."""
    isatty = getattr(stream, "isatty", None)
    return bool(callable(isatty) and isatty()) or in_notebook()


class Progress:
    """The printed lines of one trainer, told each loop event as it happens.

    Reads the loop's counters from `state`, `epochs` and `key_metric` from `settings`
    (both may change between lines) and the batches per epoch from `datagen`.
    """

    def __init__(
        self,
        verbosity: int | str,
        every: int = 1,
        *,
        state: LoopState,
        settings: TrainSettings,
        datagen: Any,
    ):
        self.verbosity = verbosity
        self.every = every
        self.in_place = can_rewrite(sys.stdout)
        self._state, self._settings, self._datagen = state, settings, datagen
        self._width = 0  # of the line now on screen that a rewrite replaces
        self._epoch_start: float | None = None
        self._epoch_batches = 0
        self._new_best = False  # the validation under way found a new best key metric

    @property
    def verbosity(self) -> int | str:
        """The `iter_verbosity` shown: 0, 'epoch', 1 or 2."""
        return self._verbosity

    @verbosity.setter
    def verbosity(self, value: int | str) -> None:
        self._verbosity, self._level = value, _LEVELS[value]

    def _eta(self) -> str:
        done, total = self._state.batch_in_epoch, len(self._datagen)
        if self._epoch_start is None or done == 0 or self._epoch_batches == 0:
            return "ETA ?"
        per_batch = (time.perf_counter() - self._epoch_start) / self._epoch_batches
        return f"ETA {_clock(per_batch * max(total - done, 0))}"

    def iter_end(self, logs: dict[str, float], record: Any = None) -> None:
        """One slice fit; `record` (a SliceRecord) says where it was in its batch."""
        if self._level >= _SLICE:
            state = self._state
            source = record if record is not None else self._datagen
            where = f"slice {state.iter_in_batch}/{source.slices_per_batch}"
            self._print(f"  iter {state.iters_fit} {where} [{source.set_name}]", logs, done=True)

    def epoch_begin(self) -> None:
        self._epoch_start, self._epoch_batches = time.perf_counter(), 0

    def batch_end(self, logs: dict[str, float], set_name: str) -> None:
        if self._epoch_start is None:  # resumed mid-epoch: time from here
            self.epoch_begin()
        self._epoch_batches += 1
        state = self._state
        if self._level >= _BATCH and state.batches_fit % self.every == 0:
            head = (
                f"epoch {state.epoch + 1}/{self._settings.epochs} "
                f"batch {state.batch_in_epoch}/{len(self._datagen)} "
                f"[{set_name}] {self._eta()}"
            )
            self._print(head, logs)

    @property
    def quiet_between_batches(self) -> bool:
        """No line is printed at a slice's or a batch's end (`batches_passed` then
        counts what `iter_end` and `batch_end` would)."""
        return self._level < _BATCH

    def batches_passed(self, count: int) -> None:
        """`count` batches ended without a line to print (for the epoch's ETA)."""
        if self._epoch_start is None:
            self.epoch_begin()
        self._epoch_batches += count

    def new_best(self) -> None:
        """The validation under way scored a new best key metric: its line says so."""
        self._new_best = True

    def val_end(self, logs: dict[str, float]) -> None:
        new_best, self._new_best = self._new_best, False
        if self._level >= _EPOCH:
            best = f"  * new best {self._settings.key_metric}" if new_best else ""
            self._print(f"validation {self._state.times_validated}:", logs, done=True, tail=best)

    def epoch_end(self, logs: dict[str, float]) -> None:
        if self._level >= _EPOCH:
            line = f"epoch {self._state.epoch}/{self._settings.epochs} done:"
            self._print(line, logs, done=True)

    def _print(self, head: str, logs: dict[str, float], done: bool = False, tail: str = "") -> None:
        line = f"{head} {_metrics(logs)}{tail}"
        if not self.in_place:
            sys.stdout.write(line + "\n")
        elif done:  # replaces the rewritten line, then stays
            sys.stdout.write("\r" + line.ljust(self._width) + "\n")
            self._width = 0
        else:
            line = line[:_MAX_WIDTH]
            sys.stdout.write("\r" + line.ljust(self._width))
            self._width = len(line)
        sys.stdout.flush()
