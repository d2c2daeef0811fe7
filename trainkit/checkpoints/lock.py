"""One writer at a time: an exclusive lock on a run folder while a trainer writes it.

The lock is an OS advisory lock (`fcntl.flock`) on the file `.lock` inside the run
folder. The kernel drops it when the process holding it dies, however it dies, so a
run whose trainer was killed with `kill -9` is resumable at once: the lock file it
leaves behind is simply taken over. The file records the holder (`pid`, `host`,
`since`) for the message a refused trainer shows, and which trainer last opened the
run for writing (`writer`), so that a trainer coming back to a run can tell whether
another one continued it meanwhile.

A trainer holds the lock while it is built (it cleans up, truncates the logs and
restores on resume), for each `train()` call and for `tg.checkpoint()`, and not in
between: a second trainer may continue a stopped run in the same process. POSIX only
(`fcntl`); elsewhere trainkit warns and writes without a lock.
"""

from __future__ import annotations

import errno
import json
import os
import socket
import time
import uuid
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from trainkit.checkpoints.checkpoint_dirs import checkpoint_folders, is_checkpoint_folder
from trainkit.checkpoints.run_folder import find_resumable_run

try:
    import fcntl
except ImportError:  # Windows: no flock
    fcntl = None  # type: ignore[assignment]

LOCK_FILE = ".lock"

# What the trainer was about to do, in the words of the messages below.
_VERBS = {
    "resume": "resume",
    "start": "start a run in",
    "train": "train in",
    "checkpoint": "write a checkpoint into",
}
_WHY_LOCKED = (
    "Two trainers writing one run folder would interleave their checkpoints and duplicate "
    "rows of metrics.csv and provenance.jsonl."
)
_FIX_LOCKED = {
    "resume": (
        "That run is being trained by another process right now, so this trainer cannot "
        "continue it: the checkpoint it would start from is already out of date. Wait for "
        "that process to finish, or stop it (a killed process releases the lock at once), "
        "then resume again."
    ),
    "other": (
        "The run was continued by another trainer after this one last wrote it. Once that "
        "trainer has stopped, build a new TrainGenerator with resume=True to continue from "
        "its newest checkpoint."
    ),
}
_CHANGED = (
    "Cannot {verb} run folder {path!r}: another trainer continued this run since this "
    "trainer last held it ({what}; the last holder was {holder}). Writing on would mix two "
    "histories in one folder. Build a new TrainGenerator with resume=True to continue from "
    "the newest checkpoint. Received: {received}"
)
_NO_FCNTL = (
    "Run folder locks need fcntl (POSIX: Linux, macOS); on this platform nothing stops two "
    "trainers from writing one run folder at once. Run one trainer per run folder."
)


class RunFolderLockedError(RuntimeError):
    """Another trainer holds the run folder's lock; nothing in the folder was changed.

    Attributes:
        run_dir: the run folder.
        holder: the lock file's record (`pid`, `host`, `since`), or None if unreadable.
    """

    def __init__(self, message: str, run_dir: str, holder: dict[str, Any] | None):
        super().__init__(message)
        self.run_dir, self.holder = run_dir, holder


class RunFolderChangedError(RuntimeError):
    """Another trainer continued this run since this trainer last held its lock."""


def describe_holder(record: dict[str, Any] | None) -> str:
    """`pid 123 on host h, since 2026-...Z`, or why the holder is unknown."""
    if not record:
        return "holder unknown: the lock file holds no readable record"
    return f"pid {record.get('pid')} on host {record.get('host')}, since {record.get('since')}"


def _read_fd(fd: int, attempts: int = 5) -> dict[str, Any] | None:
    """The lock file's record, or None if there is none readable."""
    for _ in range(attempts):  # a holder may be rewriting it this instant: read again
        text = os.pread(fd, 4096, 0).decode("utf-8", errors="replace")
        try:
            record = json.loads(text)
            return record if isinstance(record, dict) else None
        except ValueError:
            time.sleep(0.02)
    return None


class RunLock:
    """The exclusive lock on one run folder, as one trainer holds it.

    Reentrant: `acquire` inside a hold only counts. Each time the lock is taken again
    after a release, the folder must be as this lock left it (no other trainer opened
    the run for writing, no newer checkpoint); otherwise `RunFolderChangedError`.

    Example:

    ```python
    lock = RunLock(run_dir)
    with lock.held("train"):
        ...  # write checkpoints and logs
    ```
    """

    def __init__(self, run_dir: str, resume: Any = None):
        self.run_dir = run_dir
        self.resume = resume  # the `resume` argument a refusal to resume names
        self.token = uuid.uuid4().hex  # names this trainer as the run's writer
        self._fd: int | None = None
        self._depth = 0
        self._record: dict[str, Any] = {}
        # (writer, newest checkpoint) when last released; None until then.
        self._left: tuple[str | None, str | None] | None = None

    @property
    def path(self) -> str:
        return os.path.join(self.run_dir, LOCK_FILE)

    @property
    def is_held(self) -> bool:
        return self._depth > 0

    @contextmanager
    def held(self, action: str) -> Iterator[RunLock]:
        """Hold the lock for the `with` block (released on any exception too)."""
        self.acquire(action)
        try:
            yield self
        finally:
            self.release()

    def acquire(self, action: str) -> None:
        """Take the lock, or raise naming its holder; a lock held already only counts.

        Args:
            action: 'resume', 'start', 'train' or 'checkpoint', for the messages.

        Raises:
            RunFolderLockedError: another process (or trainer) holds the lock.
            RunFolderChangedError: another trainer continued the run since this lock
                was last released.
        """
        if self._depth == 0:
            received = f"resume={self.resume!r}" if action == "resume" else None
            self._take(action, received or f"run_dir={self.run_dir!r}")
        self._depth += 1

    def release(self) -> None:
        """Let the lock go once the outermost hold ends (the lock file stays)."""
        if self._depth == 0:
            return
        self._depth -= 1
        if self._depth == 0:
            self._left = (self._record.get("writer"), _newest(self.run_dir))
            self._close()

    def claim(self) -> None:
        """Record this trainer as the run's writer (it creates or restores the run)."""
        if self._depth == 0:
            raise RuntimeError("RunLock.claim() needs the lock held: call acquire() first.")
        if self._fd is not None:  # None without fcntl: nothing is recorded
            self._record["writer"] = self.token
            self._write_record()

    # ------------------------------------------------------------------ internals

    def _take(self, action: str, received: str) -> None:
        if fcntl is None:
            warnings.warn(_NO_FCNTL, stacklevel=4)
            return
        fd = _open_lock_file(self.path)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            holder = _read_fd(fd)
            os.close(fd)
            if error.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                raise
            raise RunFolderLockedError(
                _locked_message(action, self.run_dir, holder, received), self.run_dir, holder
            ) from None
        self._fd = fd
        previous = _read_fd(fd, attempts=1) or {}  # ours now: nobody is writing it
        try:
            self._check_unchanged(action, previous, received)
        except BaseException:
            self._close()
            raise
        self._record = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "since": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "writer": previous.get("writer"),
        }
        self._write_record()

    def _check_unchanged(self, action: str, previous: dict[str, Any], received: str) -> None:
        if self._left is None:
            return  # first hold: nothing known to compare with
        writer, newest = self._left
        now_newest = _newest(self.run_dir)
        if previous.get("writer") == writer and now_newest == newest:
            return
        if now_newest != newest:
            what = f"newest checkpoint {now_newest}, this trainer left {newest}"
        else:
            what = "another trainer opened the run for writing"
        raise RunFolderChangedError(
            _CHANGED.format(
                verb=_VERBS.get(action, action),
                path=self.run_dir,
                what=what,
                holder=describe_holder(previous),
                received=received,
            )
        )

    def _write_record(self) -> None:
        assert self._fd is not None
        data = json.dumps(self._record).encode("utf-8")
        # Padded over the old record, never truncated first: a reader sees whole JSON.
        size = os.fstat(self._fd).st_size
        os.pwrite(self._fd, data.ljust(max(size, len(data)), b" "), 0)

    def _close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the only descriptor releases the flock
            self._fd = None


def _open_lock_file(path: str) -> int:
    try:
        return os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o666)  # less the umask
    except OSError as error:
        raise OSError(
            error.errno,
            f"Cannot open the run folder's lock file {path!r}: {error.strerror}. A trainer "
            "writes the run folder only while holding this lock; make the folder writable "
            "(and remove the file if it is a symlink or not a regular file)",
        ) from error


def _locked_message(action: str, run_dir: str, holder: dict | None, received: str) -> str:
    verb = _VERBS.get(action, action)
    fix = _FIX_LOCKED["resume" if action == "resume" else "other"]
    return (
        f"Cannot {verb} run folder {run_dir!r}: another trainer is writing it "
        f"({describe_holder(holder)}). {_WHY_LOCKED} {fix} Received: {received}"
    )


def _newest(run_dir: str) -> str | None:
    """The newest `ckpt-*` name in the folder, damaged or not (names only: cheap)."""
    try:
        folders = checkpoint_folders(run_dir)
    except OSError:
        return None
    return os.path.basename(folders[-1]) if folders else None


def folder_to_resume(logs_dir: Any, model_base_name: Any, resume: bool | str) -> str | None:
    """The run folder `resume` names (as `checkpointing.locate` picks it), or None.

    Read only: the lock is taken on this folder before anything in it is touched.
    """
    if logs_dir is None or resume is False:
        return None
    if resume is True:
        return find_resumable_run(str(logs_dir), str(model_base_name))
    path = str(resume)
    if is_checkpoint_folder(path):  # the same rule as the resume itself
        return os.path.dirname(os.path.abspath(path))
    return path if os.path.isdir(path) else None


@contextmanager
def lock_to_resume(
    logs_dir: Any, model_base_name: Any, resume: bool | str
) -> Iterator[RunLock | None]:
    """Hold the lock of the run folder `resume` names (None for a new run) for a block."""
    run_dir = folder_to_resume(logs_dir, model_base_name, resume)
    if run_dir is None:
        yield None
        return
    lock = RunLock(run_dir, resume)
    with lock.held("resume"):
        yield lock
