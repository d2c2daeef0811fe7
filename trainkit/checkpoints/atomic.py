"""Safe writes into a run folder: exclusive temporary names, atomic replace, no symlinks.

Every file trainkit rewrites in a run folder (`metrics.csv` and `provenance.jsonl` when a
resume truncates them, `report.txt`, `report.png`, `history.png`) is written to a fresh
temporary file created with `O_CREAT | O_EXCL` (so never through an existing name or a
planted symlink), then `os.replace`d onto its final name. `os.replace` swaps the
directory entry: a final name that is a symlink is replaced by the file, and the
link's target is never written. Any failure removes the temporary file and raises
`CheckpointWriteError` naming the file and the cause.

Files trainkit appends to (`metrics.csv`, `provenance.jsonl`) are opened with
`O_NOFOLLOW`: a symlink in their place is refused instead of followed. `metrics.csv` is
appended through `RecordFile`: kept open, one write per row, a failed write cut back.

File modes, one rule for everything trainkit writes: files `0666` and folders `0777`,
less the process's umask (as `open()` and `mkdir` create them), so `umask 022` gives
`0644`/`0755` and `umask 077` gives `0600`/`0700`. `mkstemp`/`mkdtemp` create `0600`/`0700`
whatever the umask; `file_mode()`/`folder_mode()` set what the rule asks before the rename.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from typing import IO, Any

from trainkit.checkpoints.checkpoint_dirs import CheckpointWriteError

_WRITE_FAILED = (
    "Could not write {path!r}: {cause}. Nothing partial was left and the checkpoints are "
    "intact; free disk space, raise the file-size limit (ulimit -f) or fix the folder's "
    "permissions, then call train() again."
)
_SYMLINK = (
    "{path!r} is a symbolic link; trainkit never writes through links in a run folder. "
    "Remove the link (or move the run folder), then call train() again."
)


def umask() -> int:
    """The process's umask, read without changing it where the system allows
    (`/proc/self/status`); otherwise set and restored at once."""
    try:
        with open("/proc/self/status", encoding="ascii") as file:
            for line in file:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def file_mode() -> int:
    """The mode of a file trainkit writes: `0666` less the umask."""
    return 0o666 & ~umask()


def folder_mode() -> int:
    """The mode of a folder trainkit writes: `0777` less the umask."""
    return 0o777 & ~umask()


def _temp_prefix(path: str) -> str:
    return f".{os.path.basename(path)}."


@contextlib.contextmanager
def atomic_file(path: str, mode: str = "w", *, durable: bool = False) -> Iterator[IO[Any]]:
    """Open a fresh temporary file beside `path`; on success replace `path` with it.

    Use it for every whole-file rewrite in a run folder. The temporary file is created
    exclusively (`tempfile.mkstemp`: `O_CREAT | O_EXCL`, a random name; given `file_mode()`
    before the replace), so an
    existing file or symlink is never opened; it is removed on any error.

    Args:
        path: the final file.
        mode: `'w'` (text, UTF-8, no newline translation) or `'wb'`.
        durable: fsync the file before the replace (for files a resume relies on).

    Raises:
        CheckpointWriteError: the write failed (disk full, file-size limit, permissions);
            `path` is as it was and no temporary file is left.

    Example:
        >>> with atomic_file(os.path.join(run_dir, "report.txt")) as file:
        ...     print(text, file=file)
    """
    folder = os.path.dirname(path) or "."
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=_temp_prefix(path), suffix=".tmp")
        encoding = None if "b" in mode else "utf-8"
        newline = None if "b" in mode else ""
        with os.fdopen(fd, mode, encoding=encoding, newline=newline) as file:
            yield file
            file.flush()
            if durable:
                os.fsync(file.fileno())
        os.chmod(tmp, file_mode())  # mkstemp makes 0600 whatever the umask
        os.replace(tmp, path)
        tmp = None
    except CheckpointWriteError:
        raise
    except Exception as error:  # an encoder's own error too: the file is not written
        raise CheckpointWriteError(_WRITE_FAILED.format(path=path, cause=error)) from error
    finally:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.remove(tmp)


def write_text(path: str, text: str, *, durable: bool = False) -> None:
    """Replace `path` with `text` atomically (see `atomic_file`)."""
    with atomic_file(path, "w", durable=durable) as file:
        file.write(text)


def open_append(path: str) -> IO[str]:
    """Open `path` for appending text, creating it if missing; a symlink there is refused.

    Raises:
        CheckpointWriteError: `path` is a symlink, or cannot be opened.
    """
    return os.fdopen(_append_descriptor(path), "a", encoding="utf-8", newline="")


def _append_descriptor(path: str) -> int:
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW
    try:
        return os.open(path, flags, 0o666)  # less the umask, as open() creates files
    except OSError as error:
        if os.path.islink(path):
            raise CheckpointWriteError(_SYMLINK.format(path=path)) from error
        raise CheckpointWriteError(_WRITE_FAILED.format(path=path, cause=error)) from error


class RecordFile:
    """A file appended to one whole record at a time, kept open between records.

    Use it for logs written once per batch: opening a file per record costs more than
    writing it. Opened at the first `append` like `open_append` (`O_NOFOLLOW`: a symlink
    is refused). Each record is one unbuffered write, on disk (visible to readers) when
    `append` returns; a write that fails (disk full, file-size limit) is cut back to the
    file's previous length, so no record is ever left half written — except by a kill in
    the middle of the write, which leaves a torn last line that readers drop.

    Args:
        path: the file; created if missing.

    Example:
        >>> log = RecordFile(os.path.join(run_dir, "metrics.csv"))
        >>> log.append(b"train,0,1,1,a,0.5\\r\\n")
        >>> log.close()
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self._file: io.FileIO | None = None

    def append(self, record: bytes) -> None:
        """Write `record` at the end of the file, whole or not at all.

        Raises:
            CheckpointWriteError: the file is a symlink, or the write failed (the file
                is as it was before the call).
        """
        if self._file is None:
            self._file = io.FileIO(_append_descriptor(self.path), "w", closefd=True)
        file = self._file
        length = os.fstat(file.fileno()).st_size
        try:
            view, written = memoryview(record), 0
            while written < len(record):  # a short write is retried; its error raised
                written += file.write(view[written:]) or 0
        except BaseException as error:
            with contextlib.suppress(OSError):
                os.ftruncate(file.fileno(), length)
            if isinstance(error, OSError):
                raise CheckpointWriteError(
                    _WRITE_FAILED.format(path=self.path, cause=error)
                ) from error
            raise

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def write_folder(path: str, fill: Callable[[str], None]) -> str:
    """Write a folder aside and rename it into place as `path`; return `path`.

    `fill(tmp)` writes the folder's files into `tmp`, a fresh folder beside `path`
    (`tempfile.mkdtemp`). An existing folder (or link) named `path` is moved aside
    before the rename and removed after it, so `path` is never half old, half new;
    a link's target is left alone.

    Raises:
        CheckpointWriteError: a write failed; `path` is as it was, no temporary left.
    """
    parent = os.path.dirname(path) or "."
    tmp = None
    try:
        os.makedirs(parent, exist_ok=True)
        tmp = tempfile.mkdtemp(dir=parent, prefix=f".tmp-{os.path.basename(path)[:80]}.")
        fill(tmp)
        os.chmod(tmp, folder_mode())  # mkdtemp makes 0700 whatever the umask
        _swap_into_place(tmp, path)
        tmp = None
    except CheckpointWriteError:
        raise
    except Exception as error:  # model.save's own errors too: the folder is not written
        raise CheckpointWriteError(_WRITE_FAILED.format(path=path, cause=error)) from error
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    return path


def _swap_into_place(tmp: str, path: str) -> None:
    if not os.path.lexists(path):
        os.rename(tmp, path)
        return
    old = tempfile.mkdtemp(dir=os.path.dirname(path) or ".", prefix=".old-")
    aside = os.path.join(old, "previous")
    try:
        os.rename(path, aside)
    except OSError:
        os.rmdir(old)
        raise
    try:
        os.rename(tmp, path)
    except OSError:
        os.rename(aside, path)  # put the previous folder back
        os.rmdir(old)
        raise
    shutil.rmtree(old, ignore_errors=True)  # removes a link aside, never its target
