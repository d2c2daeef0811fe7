"""The run's histories log: each checkpoint appends what is new of the histories.

A run's histories (per-batch train metrics, validations, the key metric, skipped slices,
epoch and validation marks) grow with every batch. Written whole into every checkpoint's
`state.json`, a run's checkpoints would write a total that grows with the square of its
length. Instead each checkpoint appends one line to `histories.jsonl` in the run folder:
for each history, the entries added since the previous line and where they start; and
its `state.json` records the log's mark (`log_marks.mark`: size and a digest of the end)
plus the SHA-256 of the whole log up to the mark.

On resume the log is read up to the checkpoint's mark and the histories rebuilt exactly;
a log shorter than the mark, or whose bytes before it differ, is refused (naming the
file) because the histories it held are lost. What was appended after the mark (by a
killed run, or by a later run that resumed a newer checkpoint) is cut when the resumed
run appends its first line. The log is appended to only at checkpoints, never per slice,
and always before the checkpoint's `state.json` is written: a kill in between leaves
bytes past every mark, cut in the same way.

A history is a list, or a dict of lists (one per metric); entries are JSON values.
Histories are only appended to: a list that got shorter than what the log holds (a
`load_state_dict` of another state) is logged again from its start.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
from dataclasses import dataclass
from typing import Any

from trainkit.checkpoints import log_marks
from trainkit.checkpoints.atomic import RecordFile
from trainkit.checkpoints.checkpoint_dirs import CheckpointWriteError, encode_nonfinite, loads_state

HISTORIES_FILE = "histories.jsonl"

_LOST = (
    "{path!r} {problem}: the histories the checkpoint keeps there are lost. Put the file "
    "back from a backup of the run folder, or resume from an older checkpoint "
    "(resume=True and resume=<run folder> fall back to the newest one the log still covers)."
)
_CHANGED_MIDRUN = (
    "{path!r} holds {size} bytes where this run's appends left {expected}: something else "
    "changed it while the run was writing it (trainkit appends to it at each checkpoint). "
    "The checkpoints written so far are intact; resume from the run folder (resume=True), "
    "which checks the log against each checkpoint."
)


class HistoryLogError(ValueError):
    """The histories log does not hold what a checkpoint's mark says it does."""


@dataclass
class HistoryEntries:
    """What a checkpoint appends: `line` (per history, `[start, new entries]`, or a dict
    of those per metric) and the histories' `lengths` once the line is logged."""

    line: dict[str, Any]
    lengths: dict[str, Any]


class HistoryLog:
    """`histories.jsonl` of one run folder: appended at each checkpoint, cut back to the
    resumed checkpoint's mark before a resumed run's first append.

    `entries()` runs on the training thread (it copies what is new); `append()` may run
    in a background write. The trainer never calls `entries()` while an append runs
    (writes never overlap, and the next checkpoint waits for the previous one).

    Example:
        >>> log = HistoryLog(run_dir)
        >>> entries = log.entries({"history": {"loss": [0.9, 0.7]}, "val_batches": [2]})
        >>> mark = log.append(entries, "ckpt-000000002-1", iters_fit=2)
        >>> read_histories(run_dir, mark)
        {'history': {'loss': [0.9, 0.7]}, 'val_batches': [2]}
    """

    def __init__(self, run_dir: str):
        self.path = os.path.join(run_dir, HISTORIES_FILE)
        self._size = 0  # bytes the log holds: what this run appended or resumed from
        self._digest = hashlib.sha256()
        self._lengths: dict[str, Any] = {}  # per history, the entries the log holds
        # After a resume: where the log is cut before the next append (None: no cut).
        self._cut_to: int | None = None

    def entries(self, histories: dict[str, Any]) -> HistoryEntries:
        """The entries of `histories` the log does not hold yet, copied."""
        line: dict[str, Any] = {}
        lengths = _lengths(histories)
        for name, value in histories.items():
            logged = self._lengths.get(name)
            if isinstance(value, dict):
                logged = logged if isinstance(logged, dict) else {}
                line[name] = {
                    key: _since(items, logged.get(key, 0)) for key, items in value.items()
                }
            else:
                line[name] = _since(value, logged if isinstance(logged, int) else 0)
        return HistoryEntries(line, lengths)

    def append(self, entries: HistoryEntries, checkpoint: str, iters_fit: int) -> dict[str, Any]:
        """Append one line for `checkpoint`, on disk when this returns; return its mark.

        Raises:
            CheckpointWriteError: the log is a symbolic link, was changed by someone else
                since the last append, or the write failed (the log is as it was).
        """
        record = {"checkpoint": checkpoint, "iters_fit": iters_fit, **entries.line}
        text = json.dumps(encode_nonfinite(record), allow_nan=False, separators=(",", ":"))
        data = (text + "\n").encode("utf-8")
        if self._cut_to is not None:
            _cut(self.path, self._cut_to)
            self._cut_to = None
        size = os.path.getsize(self.path) if os.path.lexists(self.path) else 0
        if size != self._size:
            message = _CHANGED_MIDRUN.format(path=self.path, size=size, expected=self._size)
            raise CheckpointWriteError(message)
        file = RecordFile(self.path)
        try:
            file.append(data)  # whole or not at all
            _fsync(self.path, cut_to=self._size)
        finally:
            file.close()
        self._size += len(data)
        self._digest.update(data)
        self._lengths = entries.lengths
        return {**log_marks.mark(self.path), "sha256": self._digest.hexdigest()}

    def resume(self, mark: dict[str, Any] | None, histories: dict[str, Any]) -> None:
        """Continue the log from a checkpoint's `mark` (None: a checkpoint that logged no
        histories, so the log starts again empty).

        What was appended after the mark (by a killed run, or by a later run that resumed
        a newer checkpoint) is cut when this run appends its first line, not now: a
        trainer built only to look at an older checkpoint, or one that falls back past a
        damaged newest checkpoint, changes nothing, and the newer checkpoints stay
        resumable until this run writes one of its own.

        `histories` are the ones restored from that checkpoint.

        Raises:
            HistoryLogError: the log no longer holds what the mark covers.
        """
        if mark is None:
            log_marks.refuse_link(self.path)
            self._size, self._digest, self._lengths = 0, hashlib.sha256(), {}
            self._cut_to = 0 if os.path.lexists(self.path) else None
            return
        data, size = _covered(self.path, mark), os.path.getsize(self.path)
        self._size, self._digest = len(data), hashlib.sha256(data)
        self._lengths = _lengths(histories)
        self._cut_to = len(data) if size > len(data) else None

    def restate(self) -> None:
        """The histories were replaced (`load_state_dict`): the next line logs each of
        them whole, from its start."""
        self._lengths = {}


def read_histories(
    run_dir: str, mark: Any, checkpoint: str | None = None, iters_fit: int | None = None
) -> dict[str, Any]:
    """The histories `histories.jsonl` in `run_dir` holds up to `mark`, rebuilt exactly.

    Given `checkpoint` and `iters_fit`, the line that ends at the mark must be theirs.

    Raises:
        HistoryLogError: the log is missing, cut, changed before the mark, a line cannot
            be read, or the mark ends another checkpoint's line; names the file and what
            to do.
        LinkedLogError: the log is a symbolic link (never read through).
    """
    path = os.path.join(run_dir, HISTORIES_FILE)
    histories: dict[str, Any] = {}
    record: Any = {}
    for number, line in enumerate(_covered(path, mark).split(b"\n")[:-1], start=1):
        try:
            record = loads_state(line.decode("utf-8"))
            _apply(histories, record)
        except (ValueError, TypeError, KeyError, AttributeError) as error:
            problem = f"holds a line {number} that is not a history record ({error})"
            raise HistoryLogError(_LOST.format(path=path, problem=problem)) from error
    found = (record.get("checkpoint"), record.get("iters_fit"))
    if checkpoint is not None and found != (checkpoint, iters_fit):
        problem = (
            f"ends at the checkpoint's mark with the line of checkpoint {found[0]!r} "
            f"(iters_fit={found[1]!r}), not of {checkpoint!r} (iters_fit={iters_fit!r})"
        )
        raise HistoryLogError(_LOST.format(path=path, problem=problem))
    return histories


def _covered(path: str, mark: Any) -> bytes:
    """The bytes of the log up to `mark`, checked against it."""
    if not _is_mark(mark):
        raise HistoryLogError(
            f"The checkpoint's mark of {path!r} is not a mark (bytes, tail, sha256): the "
            f"checkpoint's state.json is damaged. Received: {type(mark).__name__}"
        )
    problem = log_marks.lost(path, mark)
    if problem is None:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        with os.fdopen(fd, "rb") as file:
            data = file.read(mark["bytes"])
        if hashlib.sha256(data).hexdigest() == mark["sha256"] and data.endswith(b"\n"):
            return data
        problem = "was changed before the checkpoint's mark (its bytes differ)"
    raise HistoryLogError(_LOST.format(path=path, problem=problem))


def _is_mark(mark: Any) -> bool:
    return (
        isinstance(mark, dict)
        and isinstance(mark.get("bytes"), int)
        and mark["bytes"] > 0
        and isinstance(mark.get("sha256"), str)
    )


def _since(items: list[Any], start: int) -> list[Any]:
    """`[start, entries from start on]`; from 0 when the list is shorter than `start`."""
    start = start if start <= len(items) else 0
    return [start, copy.deepcopy(items[start:])]


def _lengths(histories: dict[str, Any]) -> dict[str, Any]:
    return {
        name: {key: len(items) for key, items in value.items()}
        if isinstance(value, dict)
        else len(value)
        for name, value in histories.items()
    }


def _apply(histories: dict[str, Any], record: dict[str, Any]) -> None:
    """Add one line's entries to `histories` (in place, lists reused: linear in the run)."""
    for name, value in record.items():
        if name in ("checkpoint", "iters_fit"):
            continue
        if isinstance(value, dict):
            before = histories.get(name, {})
            histories[name] = {
                key: _extend(before.get(key, []), part) for key, part in value.items()
            }
        else:
            histories[name] = _extend(histories.get(name, []), value)


def _extend(items: list[Any], part: Any) -> list[Any]:
    start, new = part
    if not isinstance(start, int) or not isinstance(new, list) or not 0 <= start <= len(items):
        raise ValueError(f"entries start at {start!r} of a history of {len(items)}")
    del items[start:]
    items.extend(new)
    return items


def _cut(path: str, size: int) -> None:
    """Cut the log to its first `size` bytes, on disk when this returns."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_NOFOLLOW)
        try:
            os.ftruncate(fd, size)
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as error:
        raise CheckpointWriteError(f"Could not cut {path!r} to {size} bytes: {error}") from error


def _fsync(path: str, cut_to: int) -> None:
    """Put the log on disk; when that fails, cut it back to `cut_to` bytes and raise."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_NOFOLLOW)
        try:
            os.fsync(fd)
        except OSError:
            os.ftruncate(fd, cut_to)
            raise
        finally:
            os.close(fd)
    except OSError as error:
        raise CheckpointWriteError(f"Could not write {path!r}: {error}") from error
