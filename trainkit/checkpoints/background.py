"""A checkpoint written in a background thread while training goes on (`async_checkpoints`).

The training thread snapshots everything to host memory (`Checkpoints.capture`: NumPy
copies of the variables, the JSON state) and saves `model.keras` into the checkpoint's
temporary folder; a `BackgroundWrite` then writes `arrays.npz`, `state.json`, the
manifest (last) and renames the folder into place, and prunes. It reads only the
snapshot, never the model. One write at a time: the trainer waits for the previous
write before it snapshots the next checkpoint, and an error is kept for that wait.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from trainkit.checkpoints.checkpoint_dirs import CheckpointWriteError

_FAILED = (
    "Checkpoint {name} was written in the background (async_checkpoints=True) and the write "
    "failed: {cause} Training went on after that checkpoint was taken; resuming continues "
    "from the newest intact checkpoint before it."
)


class BackgroundWrite:
    """One write running in a daemon thread; `result()` joins it and raises its error.

    Args:
        name: the checkpoint's folder name, for the error message.
        write: writes the checkpoint and returns its path.

    Example:
        >>> pending = BackgroundWrite("ckpt-000000008-3", lambda: "run/ckpt-000000008-3")
        >>> # ... training goes on while the write runs ...
        >>> pending.result()
        'run/ckpt-000000008-3'
    """

    def __init__(self, name: str, write: Callable[[], str]):
        self.name = name
        self._write = write
        self._path: str | None = None
        self._error: BaseException | None = None
        # Not a daemon: an interpreter that exits normally finishes the write first.
        self._thread = threading.Thread(target=self._run, name=f"trainkit-{name}")
        self._thread.start()

    def _run(self) -> None:
        try:
            self._path = self._write()
        except BaseException as error:  # kept for the training thread, never lost here
            self._error = error

    @property
    def done(self) -> bool:
        return not self._thread.is_alive()

    def result(self) -> str:
        """Wait for the write; return the checkpoint's path.

        Raises:
            CheckpointWriteError: the write failed, naming the checkpoint and the cause.
        """
        self._thread.join()
        if self._error is not None:
            message = _FAILED.format(name=self.name, cause=self._error)
            raise CheckpointWriteError(message) from self._error
        assert self._path is not None  # the thread returned a path or set an error
        return self._path
