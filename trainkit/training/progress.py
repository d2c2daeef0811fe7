"""Minimal progress printing; the rich per-epoch display comes later (DESIGN.md §6).

`iter_verbosity=0` prints nothing, `1` one line per batch (every `progress_every`
batches) plus validation and epoch summaries, `2` one line per slice too. On a
terminal the per-batch line is rewritten in place.
"""

from __future__ import annotations

import sys
from typing import Any


class Progress:
    def __init__(self, verbosity: int, every: int = 1):
        self.verbosity = verbosity
        self.every = every
        self.in_place = sys.stdout.isatty()

    def iter_end(self, trainer: Any, logs: dict[str, float]) -> None:
        if self.verbosity >= 2:
            head = f"epoch {trainer.epoch + 1} iter {trainer.iters_fit}"
            self._print(f"{head} [{trainer.datagen.set_name}]", logs)

    def batch_end(self, trainer: Any, logs: dict[str, float]) -> None:
        if self.verbosity >= 1 and trainer.batches_fit % self.every == 0:
            head = f"epoch {trainer.epoch + 1} batch {trainer.batches_fit}"
            self._print(f"{head} [{trainer.datagen.set_name}]", logs)

    def val_end(self, trainer: Any, logs: dict[str, float]) -> None:
        if self.verbosity >= 1:
            self._print(f"validation {trainer.times_validated}", logs, done=True)

    def epoch_end(self, trainer: Any, logs: dict[str, float]) -> None:
        if self.verbosity >= 1:
            self._print(f"epoch {trainer.epoch}/{trainer.epochs} done", logs, done=True)

    def _print(self, head: str, logs: dict[str, float], done: bool = False) -> None:
        line = head + " " + " ".join(f"{name}={value:.4g}" for name, value in logs.items())
        if self.in_place and not done:
            sys.stdout.write("\r" + line[:200].ljust(80))
        else:
            sys.stdout.write(("\r" if self.in_place else "") + line + "\n")
        sys.stdout.flush()
