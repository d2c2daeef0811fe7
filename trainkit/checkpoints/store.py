"""Checkpoint directories: written aside, renamed into place, found, pruned, read.

A checkpoint `ckpt-{iters_fit:09d}-{counter}` holds `model.keras` (for people and
`keras.models.load_model`), `arrays.npz` (every value needed to continue bitwise) and
`state.json` (written last inside the temporary folder; its presence marks a complete
checkpoint). A crash at any instant leaves at worst a `.tmp-*` folder, which is ignored
and cleaned up on the next start.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

CHECKPOINT_PREFIX = "ckpt-"
STATE_FILE = "state.json"
ARRAYS_FILE = "arrays.npz"
MODEL_FILE = "model.keras"
_TMP_PREFIX = ".tmp-"
_NAME = re.compile(rf"^{CHECKPOINT_PREFIX}(\d+)-(\d+)$")


class CheckpointWriteError(OSError):
    """A checkpoint could not be written; the previous checkpoints are intact."""


def _checkpoint_names(run_dir: str) -> list[str]:
    if not os.path.isdir(run_dir):
        return []
    names = [n for n in os.listdir(run_dir) if _NAME.match(n)]
    return sorted(names, key=lambda n: tuple(int(g) for g in _NAME.match(n).groups()))  # type: ignore[union-attr]


def complete_checkpoints(run_dir: str) -> list[str]:
    """Paths of complete checkpoints, oldest first."""
    paths = [os.path.join(run_dir, n) for n in _checkpoint_names(run_dir)]
    return [p for p in paths if os.path.isfile(os.path.join(p, STATE_FILE))]


def latest_checkpoint(run_dir: str) -> str | None:
    done = complete_checkpoints(run_dir)
    return done[-1] if done else None


def clean_incomplete(run_dir: str) -> list[str]:
    """Remove half-written checkpoint folders (left by a kill mid-write); return them."""
    removed: list[str] = []
    if not os.path.isdir(run_dir):
        return removed
    for name in os.listdir(run_dir):
        path = os.path.join(run_dir, name)
        half_written = name.startswith(_TMP_PREFIX) or (
            _NAME.match(name) and not os.path.isfile(os.path.join(path, STATE_FILE))
        )
        if half_written and os.path.isdir(path):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


def _next_name(run_dir: str, iters_fit: int) -> str:
    counter = 1 + max((int(_NAME.match(n).group(2)) for n in _checkpoint_names(run_dir)), default=0)  # type: ignore[union-attr]
    return f"{CHECKPOINT_PREFIX}{iters_fit:09d}-{counter}"


def write_checkpoint(
    run_dir: str,
    *,
    iters_fit: int,
    arrays: dict[str, np.ndarray],
    state: dict[str, Any],
    save_model: Callable[[str], None] | None = None,
) -> str:
    """Write a checkpoint aside and rename it into place; return its path.

    Raises:
        CheckpointWriteError: the disk is full or a write failed; nothing of the
            previous checkpoints is touched and the partial folder is removed.
    """
    name = _next_name(run_dir, iters_fit)
    tmp = os.path.join(run_dir, f"{_TMP_PREFIX}{name}")
    final = os.path.join(run_dir, name)
    try:
        os.makedirs(tmp)
        if save_model is not None:
            save_model(os.path.join(tmp, MODEL_FILE))
        _write_npz(os.path.join(tmp, ARRAYS_FILE), arrays)
        _write_json(os.path.join(tmp, STATE_FILE), state)
        _fsync_dir(tmp)
        os.rename(tmp, final)
        _fsync_dir(run_dir)
    except (OSError, ValueError) as error:
        shutil.rmtree(tmp, ignore_errors=True)
        raise CheckpointWriteError(
            f"Could not write checkpoint {final!r}: {error}. The previous checkpoints are "
            "intact; free disk space or fix the folder's permissions, then call train() again."
        ) from error
    return final


def _write_npz(path: str, arrays: dict[str, np.ndarray]) -> None:
    with open(path, "wb") as file:
        np.savez(file, **arrays)  # type: ignore[arg-type]
        file.flush()
        os.fsync(file.fileno())


def _write_json(path: str, state: dict[str, Any]) -> None:
    with open(path, "w", encoding="utf-8") as file:
        json.dump(state, file, indent=1, allow_nan=True)
        file.flush()
        os.fsync(file.fileno())


def _fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def read_checkpoint(path: str) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """`(arrays, state)` of a complete checkpoint."""
    state_path = os.path.join(path, STATE_FILE)
    if not os.path.isfile(state_path):
        raise FileNotFoundError(
            f"{path!r} is not a complete checkpoint (no {STATE_FILE}). Pass a run folder or "
            f"a '{CHECKPOINT_PREFIX}*' folder that holds {STATE_FILE}."
        )
    with open(state_path, encoding="utf-8") as file:
        state = json.load(file)
    with np.load(os.path.join(path, ARRAYS_FILE), allow_pickle=False) as data:
        arrays = {key: data[key] for key in data.files}
    return arrays, state


def prune_checkpoints(run_dir: str, keep: int, protect: Iterable[str] = ()) -> list[str]:
    """Delete the oldest complete checkpoints beyond `keep`, never the newest or `protect`."""
    done = complete_checkpoints(run_dir)
    protected = {os.path.abspath(p) for p in protect}
    if done:
        protected.add(os.path.abspath(done[-1]))
    removable = [p for p in done if os.path.abspath(p) not in protected]
    excess = len(done) - keep
    removed = []
    for path in removable[: max(excess, 0)]:
        shutil.rmtree(path, ignore_errors=True)
        removed.append(path)
    return removed
