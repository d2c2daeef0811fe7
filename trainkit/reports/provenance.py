"""The provenance log: per iter, exactly which data was fit — JSON lines."""

from __future__ import annotations

import json
import os
import warnings
from typing import Any

from trainkit.checkpoints.atomic import atomic_file, open_append


class ProvenanceLog:
    """One JSON object per line and per iter: what was fit when.

    Each record holds `iter` (the value of `iters_fit` after the fit), `epoch`,
    `set_name`, `pieces` (`[set_num, start, stop]` per set piece of the batch, rows local
    to the set), `slice_idx`, `shard` when sharded, and what the preprocessor reports of
    the slice (`window` for time windows, `crop` offsets for random crops).

    Args:
        path: the `.jsonl` file (appended to).
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self._file: Any = None

    def append(self, record: dict[str, Any]) -> None:
        if self._file is None:
            self._file = open_append(self.path)  # kept open; a symlink there is refused
        self._file.write(json.dumps(record, separators=(",", ":")) + "\n")

    def flush(self) -> None:
        if self._file is not None:
            self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def truncate(self, iters: int, skips: int | None = None) -> None:
        """Keep the records of the first `iters` iters and, given `skips`, of the first
        `skips` slices skipped (drops what a killed run wrote after a checkpoint)."""
        self.close()
        if not os.path.exists(self.path):
            return
        kept = [line for line, record in self._lines() if _kept(record, iters, skips)]
        with atomic_file(self.path, durable=True) as file:
            file.writelines(kept)

    def read(self) -> list[dict[str, Any]]:
        self.flush()
        if not os.path.exists(self.path):
            return []
        return [record for _, record in self._lines()]

    def _lines(self) -> list[tuple[str, dict[str, Any]]]:
        """`(line, record)` of every whole record; a torn last line (a kill mid-write) is
        dropped, and any other line that is not a record is dropped with a warning."""
        with open(self.path, "rb") as file:
            lines = file.read().decode("utf-8", errors="replace").splitlines(keepends=True)
        found = []
        for number, line in enumerate(lines, start=1):
            record = _record(line)
            if record is not None:
                found.append((line if line.endswith("\n") else line + "\n", record))
            elif line.strip() and number < len(lines):
                message = f"{self.path}: line {number} is not a JSON record; it is left out."
                warnings.warn(message, stacklevel=3)
        return found


def _kept(record: dict[str, Any], iters: int, skips: int | None) -> bool:
    skip = record.get("skip")
    if skips is not None and isinstance(skip, int):
        return skip <= skips
    return bool(record["iter"] <= iters)


def _record(line: str) -> dict[str, Any] | None:
    """The record on a line, or None for a torn or damaged one."""
    try:
        record = json.loads(line)
    except ValueError:
        return None
    return record if isinstance(record, dict) and isinstance(record.get("iter"), int) else None
