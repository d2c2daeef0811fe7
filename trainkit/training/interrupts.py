"""Ctrl-C and SIGTERM deferred to the next slice boundary.

A signal that lands while a compiled step runs only surfaces in Python after the
optimizer has applied the step, so the loop would not know whether that slice was
fit. While `train()` runs in the main thread, a handler records the request instead,
and the loop acts on it at the next slice boundary, where its counters and the data
state agree:

* SIGINT (Ctrl-C): `KeyboardInterrupt` is raised there; `train()` continues exactly.
* SIGTERM (how clusters preempt a job): the trainer writes a checkpoint when it has a
  run folder, warns, and `train()` returns without `on_train_end` — the run is not
  over, and `resume=True` (or another `train()` in this process) continues it bitwise.

Under several workers (`MultiWorkerMirroredStrategy`) SIGTERM acts as a group: a
worker that stopped alone would leave the others waiting in the next collective (and
end them with `WorkerLostError`). So the loop asks `preempted_in_group()`, which hands
this worker's flag to the next step's all-reduce and answers what that step said about
every worker: all of them stop after the same step, checkpoint the same iter (the chief
writes it) and return from `train()`. A SIGTERM that lands after the last step of the
run lets the run finish normally.

A second signal while the first waits acts at once (`KeyboardInterrupt`). The previous
handlers are restored on exit.
"""

from __future__ import annotations

import signal
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

_SIGNALS = (signal.SIGINT, signal.SIGTERM)

_PREEMPTED = (
    "SIGTERM received{where}: training stopped at a slice boundary after {iters} iters "
    "({epoch} of {epochs} epochs done); {saved}"
)
_SAVED = (
    "a checkpoint was written to {path}. Resume with "
    "TrainGenerator(..., logs_dir={logs_dir!r}, resume=True)."
)
_NOT_SAVED = (
    "nothing was saved because logs_dir=None. Call train() again in this process to "
    "continue, or pass `logs_dir` to make preempted runs resumable."
)


class DeferredInterrupt:
    """Records SIGINT and SIGTERM while active, for the loop to act on at a safe point.

    `raise_if_requested()` raises a pending SIGINT; `preempted` says a SIGTERM waits.
    """

    def __init__(self) -> None:
        self.requested = False  # SIGINT pending
        self.preempted = False  # SIGTERM pending

    @contextmanager
    def deferring(self, enabled: bool = True) -> Iterator[None]:
        """Install the handlers for the duration of the block (main thread only)."""
        if not enabled or threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = {signum: signal.signal(signum, self._handle) for signum in _SIGNALS}
        try:
            yield
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
            self.requested = self.preempted = False

    def _handle(self, signum: int, frame: FrameType | None) -> Any:
        if self.requested or self.preempted:  # a second signal while waiting: stop now
            raise KeyboardInterrupt
        if signum == signal.SIGTERM:
            self.preempted = True
        else:
            self.requested = True

    def preempted_in_group(self, distribution: Any) -> bool:
        """Whether to stop for SIGTERM now: this process's, or under several workers any
        worker's, as the last distributed step told every worker alike.

        Args:
            distribution: the trainer's `distribute.Distribution`, or None.
        """
        if distribution is None or distribution.workers == 1:
            return self.preempted
        return bool(distribution.share_preempted(self.preempted))

    def raise_if_requested(self) -> None:
        if self.requested:
            self.requested = False
            raise KeyboardInterrupt(
                "Training interrupted at a slice boundary; "
                "call train() to continue exactly from here."
            )


def warn_preempted(trainer: Any, checkpoint: str | None) -> None:
    """Say that SIGTERM stopped the run, and where it was checkpointed (if anywhere)."""
    if checkpoint is None:
        saved = _NOT_SAVED
    else:
        saved = _SAVED.format(path=checkpoint, logs_dir=str(trainer.logs_dir))
    where = ""
    if trainer._distribution is not None and trainer._distribution.workers > 1:
        signalled = trainer._interrupt.preempted
        where = " by this worker" if signalled else " by another worker"
    message = _PREEMPTED.format(
        where=where,
        iters=trainer.iters_fit,
        epoch=trainer.epoch,
        epochs=trainer.epochs,
        saved=saved,
    )
    warnings.warn(message, RuntimeWarning, stacklevel=3)
