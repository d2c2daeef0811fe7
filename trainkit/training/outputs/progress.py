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
from typing import Any


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
    def __init__(self, verbosity: int | str, every: int = 1):
        self.verbosity = verbosity
        self.every = every
        self.in_place = can_rewrite(sys.stdout)
        self._width = 0  # of the line now on screen that a rewrite replaces
        self._epoch_start: float | None = None
        self._epoch_batches = 0

    @property
    def verbosity(self) -> int | str:
        """The `iter_verbosity` shown: 0, 'epoch', 1 or 2."""
        return self._verbosity

    @verbosity.setter
    def verbosity(self, value: int | str) -> None:
        self._verbosity, self._level = value, _LEVELS[value]

    def _eta(self, trainer: Any) -> str:
        done, total = trainer._state.batch_in_epoch, len(trainer.datagen)
        if self._epoch_start is None or done == 0 or self._epoch_batches == 0:
            return "ETA ?"
        per_batch = (time.perf_counter() - self._epoch_start) / self._epoch_batches
        return f"ETA {_clock(per_batch * max(total - done, 0))}"

    def iter_end(self, trainer: Any, logs: dict[str, float], record: Any = None) -> None:
        """One slice fit; `record` (a SliceRecord) says where it was in its batch."""
        if self._level >= _SLICE:
            source = record if record is not None else trainer.datagen
            where = f"slice {trainer._state.iter_in_batch}/{source.slices_per_batch}"
            self._print(f"  iter {trainer.iters_fit} {where} [{source.set_name}]", logs, done=True)

    def epoch_begin(self) -> None:
        self._epoch_start, self._epoch_batches = time.perf_counter(), 0

    def batch_end(self, trainer: Any, logs: dict[str, float], set_name: str) -> None:
        if self._epoch_start is None:  # resumed mid-epoch: time from here
            self.epoch_begin()
        self._epoch_batches += 1
        if self._level >= _BATCH and trainer.batches_fit % self.every == 0:
            head = (
                f"epoch {trainer.epoch + 1}/{trainer.epochs} "
                f"batch {trainer._state.batch_in_epoch}/{len(trainer.datagen)} "
                f"[{set_name}] {self._eta(trainer)}"
            )
            self._print(head, logs)

    def val_end(self, trainer: Any, logs: dict[str, float]) -> None:
        if self._level >= _EPOCH:
            best = (
                f"  * new best {trainer.key_metric}" if getattr(trainer, "_new_best", False) else ""
            )
            self._print(f"validation {trainer.times_validated}:", logs, done=True, tail=best)

    def epoch_end(self, trainer: Any, logs: dict[str, float]) -> None:
        if self._level >= _EPOCH:
            self._print(f"epoch {trainer.epoch}/{trainer.epochs} done:", logs, done=True)

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
