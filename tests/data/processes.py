"""Whether a process is alive, for the tests that kill a parent and watch its workers."""

from __future__ import annotations


def running(pid: int) -> bool:
    """True while `pid` exists and is not a zombie (Linux: its state in /proc)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as file:
            return file.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except (OSError, IndexError):
        return False
