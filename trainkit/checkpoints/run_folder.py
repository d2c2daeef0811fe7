"""Run folders: `logs_dir/M{n}__{model_base_name}-{model_configs}`, never overwritten."""

from __future__ import annotations

import os
import re
import shutil
from typing import Any

from trainkit._stable import short_name
from trainkit.checkpoints.checkpoint_dirs import (
    CheckpointWriteError,
    PendingCheckpoint,
    begin_checkpoint,
    checkpoint_folders,
    checkpoint_iters,
    finish_checkpoint,
    prune_checkpoints,
)
from trainkit.checkpoints.history_log import HistoryEntries, HistoryLog

_RUN = re.compile(r"^M(\d+)__(.+)$")
_UNSAFE = re.compile(r"[^A-Za-z0-9._=+-]+")
_NO_RUN_FOLDER = (
    "Cannot create a run folder in logs_dir={logs_dir!r}: {cause}. Make logs_dir a "
    "writable folder or pass another logs_dir (logs_dir=None writes nothing). "
    "Received: logs_dir={logs_dir!r}"
)


def safe_name(text: str, limit: int = 120) -> str:
    """`text` as one filesystem-safe path component: no separators, capped at `limit`."""
    return _UNSAFE.sub("_", text)[:limit]


def run_name(number: int, model_base_name: str, model_configs: dict[str, Any] | None) -> str:
    """`M{n}__{base}` plus `-key=value` for each of `model_configs` (filesystem-safe, capped).

    Values are named without memory addresses (`optimizer=Adam`, `act=relu`), so the
    name is the same in every process.
    """
    name = f"M{number}__{model_base_name}"
    if model_configs:
        name += "-" + "-".join(f"{k}={short_name(v)}" for k, v in model_configs.items())
    return _UNSAFE.sub("_", name)[:120]


def _runs(logs_dir: str) -> list[tuple[int, str]]:
    """`(number, folder name)` of every run folder in `logs_dir`."""
    if not os.path.isdir(logs_dir):
        return []
    found = []
    for entry in os.listdir(logs_dir):
        match = _RUN.match(entry)
        if match and os.path.isdir(os.path.join(logs_dir, entry)):
            found.append((int(match.group(1)), entry))
    return sorted(found)


def create_run_folder(
    logs_dir: str, model_base_name: str, model_configs: dict[str, Any] | None
) -> str:
    """Create the next run folder with an exclusive mkdir: a new run never overwrites one.

    Raises:
        CheckpointWriteError: `logs_dir` cannot be created or written (read-only, not a
            folder, no permission), naming it, the cause and the fix.
    """
    try:
        os.makedirs(logs_dir, exist_ok=True)
        number = max((n for n, _ in _runs(logs_dir)), default=0) + 1
        while True:
            path = os.path.join(logs_dir, run_name(number, model_base_name, model_configs))
            try:
                os.mkdir(path)  # fails if it exists, even when another process raced us
                return path
            except FileExistsError:
                number += 1
    except OSError as error:
        cause = f"{type(error).__name__}: {error}"
        raise CheckpointWriteError(_NO_RUN_FOLDER.format(logs_dir=logs_dir, cause=cause)) from error


def find_resumable_run(logs_dir: str, model_base_name: str) -> str | None:
    """The newest run folder for `model_base_name` that holds a checkpoint.

    Damaged checkpoints count: resuming that run falls back to its newest intact
    checkpoint, or explains that none is intact. An older run is never picked instead.
    """
    safe_base = _UNSAFE.sub("_", model_base_name)
    for number, folder in reversed(_runs(logs_dir)):
        path = os.path.join(logs_dir, folder)
        prefix = f"M{number}__{safe_base}"
        same_base = folder == prefix or folder.startswith(prefix + "-")
        if same_base and checkpoint_folders(path):
            return path
    return None


def abandoned_runs(logs_dir: str, model_base_name: str) -> list[str]:
    """Run folders of `model_base_name` without a checkpoint, newest last: runs stopped
    before their first checkpoint (their partial logs, perhaps a `.tmp-ckpt-*`, left)."""
    safe_base = _UNSAFE.sub("_", model_base_name)
    found = []
    for number, folder in _runs(logs_dir):
        prefix = f"M{number}__{safe_base}"
        path = os.path.join(logs_dir, folder)
        if (folder == prefix or folder.startswith(prefix + "-")) and not checkpoint_folders(path):
            found.append(path)
    return found


class RunFolder:
    """One run's folder: writes its checkpoints, prunes them, remembers best and last.

    The checkpoint written after the validation that set the best key metric is the
    best checkpoint; pruning never removes it, nor the newest one. The run's histories
    go to `histories` (`histories.jsonl`), appended as each checkpoint is written.
    """

    def __init__(self, path: str, best_checkpoint: str | None = None):
        self.path = path
        self.histories = HistoryLog(path)
        self.best_checkpoint = best_checkpoint
        self.last_checkpoint: str | None = None
        self._best_pending = False  # the next checkpoint holds a new best

    @property
    def name(self) -> str:
        return os.path.basename(self.path)

    def best_is_next(self) -> None:
        """The next checkpoint written holds a new best: protect it from pruning."""
        self._best_pending = True

    def write(
        self,
        iters_fit: int,
        arrays: dict[str, Any],
        state: dict[str, Any],
        save_model: Any,
        max_checkpoints: int,
        histories: HistoryEntries | None = None,
    ) -> str:
        """Write a checkpoint (aside, then renamed into place) and prune old ones."""
        pending = self.begin(iters_fit, save_model)
        return self.finish(pending, arrays, state, max_checkpoints, histories)

    def begin(self, iters_fit: int, save_model: Any) -> PendingCheckpoint:
        """Start a checkpoint: its temporary folder, with `model.keras` saved into it.

        Runs on the training thread (Keras' `model.save` reads the live variables).
        """
        return begin_checkpoint(self.path, iters_fit=iters_fit, save_model=save_model)

    def finish(
        self,
        pending: PendingCheckpoint,
        arrays: dict[str, Any],
        state: dict[str, Any],
        max_checkpoints: int,
        histories: HistoryEntries | None = None,
    ) -> str:
        """Finish `pending` from the snapshot `arrays` and `state`, then prune old ones.

        `histories` (new entries since the last checkpoint) are appended to the run's
        histories log first, and `state.json` records the log's mark under 'histories'.
        Touches no model: it may run in a background thread. The caller makes sure no
        other checkpoint is begun or `best_is_next` called until it returns.
        """
        if histories is not None:
            state = {**state, "histories": self._log(pending, histories)}
        path = finish_checkpoint(pending, arrays=arrays, state=state)
        self.last_checkpoint = path
        if self._best_pending:
            self.best_checkpoint, self._best_pending = path, False
        # The one just written is the newest even when it sorts below a damaged one
        # (after a fallback the run re-reaches lower iters): never prune it.
        protect = [path] + ([self.best_checkpoint] if self.best_checkpoint else [])
        prune_checkpoints(self.path, max_checkpoints, protect=protect)
        return path

    def _log(self, pending: PendingCheckpoint, histories: HistoryEntries) -> dict[str, Any]:
        """Append the checkpoint's histories; on failure nothing of it is left behind."""
        try:
            iters_fit = checkpoint_iters(pending.name) or 0
            return self.histories.append(histories, pending.name, iters_fit)
        except CheckpointWriteError:
            shutil.rmtree(pending.tmp, ignore_errors=True)
            raise
        except Exception as error:  # a value JSON cannot hold
            shutil.rmtree(pending.tmp, ignore_errors=True)
            raise CheckpointWriteError(
                f"Could not write checkpoint {pending.final!r}: the histories could not be "
                f"logged ({type(error).__name__}: {error}). The previous checkpoints are "
                "intact and nothing partial was left."
            ) from error
        except BaseException:  # KeyboardInterrupt: leave nothing half-written
            shutil.rmtree(pending.tmp, ignore_errors=True)
            raise
