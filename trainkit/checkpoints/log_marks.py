"""Marks of the run's logs in a checkpoint: how long each was, and a digest of its end.

A checkpoint records, for `metrics.csv` and `provenance.jsonl`, the file's size and the
SHA-256 of its last `TAIL` bytes up to that size. On resume a log that is shorter than
its mark (deleted, emptied, cut) or whose bytes before the mark differ lost rows the
checkpoint covered; a longer one only holds what a killed run wrote after it (dropped
by the resume's truncation). Marking costs one read of at most `TAIL` bytes, however
long the run: the digest covers the end of the log, not all of it.

Logs are read with `O_NOFOLLOW`: a symlink in a log's place is refused, never read.
"""

from __future__ import annotations

import hashlib
import os
from typing import Any

TAIL = 64 * 1024

_LINKED = (
    "{path!r} is a symbolic link; trainkit never reads or writes through links in a run "
    "folder. Remove the link (copy the run's own file back in its place if the link "
    "pointed to it), then resume again."
)


class LinkedLogError(ValueError):
    """A run log is a symbolic link: refused, never read through."""


def refuse_link(path: str) -> None:
    """Raise `LinkedLogError` when `path` is a symbolic link."""
    if os.path.islink(path):
        raise LinkedLogError(_LINKED.format(path=path))


def mark(path: str) -> dict[str, Any]:
    """`{'bytes': size, 'tail': sha256 of the last TAIL bytes}` of `path` as it stands
    (`{'bytes': 0, 'tail': ''}` when it does not exist)."""
    if not os.path.lexists(path):
        return {"bytes": 0, "tail": ""}
    refuse_link(path)
    size = os.path.getsize(path)
    return {"bytes": size, "tail": _tail_digest(path, size)}


def lost(path: str, saved: Any) -> str | None:
    """What `path` lost of the rows marked by `saved` (a `mark`), or None.

    None too when `saved` is not a mark (a checkpoint written before marks existed).
    """
    if not isinstance(saved, dict) or not isinstance(saved.get("bytes"), int):
        return None
    size = saved["bytes"]
    if size == 0:
        return None
    if not os.path.lexists(path):
        return "was deleted"
    refuse_link(path)
    now = os.path.getsize(path)
    if now == 0:
        return "was emptied"
    if now < size:
        return f"was cut ({now} of the {size} bytes the checkpoint covers are left)"
    if _tail_digest(path, size) != saved.get("tail"):
        return "was changed before the checkpoint's mark (its bytes differ)"
    return None


def _tail_digest(path: str, size: int) -> str:
    start = max(size - TAIL, 0)
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    with os.fdopen(fd, "rb") as file:
        file.seek(start)
        return hashlib.sha256(file.read(size - start)).hexdigest()
