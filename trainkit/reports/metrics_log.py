"""`metrics.csv`: one row per train batch and per validation, with a fixed header."""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Sequence
from typing import Any

from trainkit.checkpoints.atomic import RecordFile, atomic_file

BASE_COLUMNS = ("kind", "epoch", "iters_fit", "batches_fit", "set_name")


class MetricsLog:
    """Append-only CSV of metrics, truncatable to a saved row count on resume.

    Columns: `kind` (`train` or `val`), `epoch`, `iters_fit`, `batches_fit`, `set_name`,
    then one column per metric name given at construction (train and validation share
    columns: a `val` row's `loss` is the validation loss). Metrics not in the header are
    refused, so every row of a file lines up.

    The file stays open between rows (each row one write, on disk when `append` returns)
    and the log counts the rows it holds, so neither a row nor `row_count()` costs a
    reopening or a reading of the file; `close()` closes it (the next row reopens it).

    Args:
        path: the CSV file; created with its header if missing.
        metric_names: the metric columns, in order.
    """

    def __init__(self, path: str, metric_names: Sequence[str]) -> None:
        self.path = path
        self.columns = [*BASE_COLUMNS, *metric_names]
        self._file = RecordFile(path)
        self._rows: int | None = None  # counted once, on demand, for an existing file
        if not os.path.lexists(path):
            with atomic_file(path) as file:
                csv.writer(file).writerow(self.columns)
            self._rows = 0
        else:
            self._check_header()

    def _check_header(self) -> None:
        with open(self.path, newline="", encoding="utf-8") as file:
            header = next(csv.reader(file), [])
        if header != self.columns:
            raise ValueError(
                f"{self.path} has columns {header} but this run logs {self.columns}. Resume "
                "with the same model and metrics, or use another logs_dir."
            )

    def append(self, kind: str, state: dict[str, Any], metrics: dict[str, float]) -> None:
        unknown = set(metrics) - set(self.columns)
        if unknown:
            raise ValueError(
                f"metrics {sorted(unknown)} are not columns of {self.path}: {self.columns}"
            )
        row = [kind, *(state.get(c, "") for c in BASE_COLUMNS[1:])]
        row += [_format(metrics.get(name)) for name in self.columns[len(BASE_COLUMNS) :]]
        text = io.StringIO()
        csv.writer(text).writerow(row)
        rows = self.row_count()  # an existing file's rows are counted before it grows
        self._file.append(text.getvalue().encode("utf-8"))
        self._rows = rows + 1

    def row_count(self) -> int:
        """Data rows (the header excluded); a torn last line is not a row."""
        if self._rows is None:
            self._rows = max(len(list(csv.reader(io.StringIO(_whole_lines(self.path))))) - 1, 0)
        return self._rows

    def truncate(self, rows: int) -> None:
        """Keep the header and the first `rows` data rows (drops rows a killed run wrote)."""
        self.close()  # the file is replaced: appends must reopen it
        kept = list(csv.reader(io.StringIO(_whole_lines(self.path))))[: rows + 1]
        with atomic_file(self.path, durable=True) as file:
            csv.writer(file).writerows(kept)
        self._rows = max(len(kept) - 1, 0)

    def close(self) -> None:
        self._file.close()

    def read(self) -> list[dict[str, str]]:
        """The data rows as dicts; a torn last line (a kill mid-append) is left out."""
        return list(csv.DictReader(io.StringIO(_whole_lines(self.path))))


def _whole_lines(path: str) -> str:
    """The text of `path` up to its last newline: a torn last line is dropped whole.

    Read as bytes first, so a kill in the middle of a multi-byte character cannot make
    decoding fail; bytes that are not UTF-8 anyway are replaced rather than refused.
    """
    with open(path, "rb") as file:
        data = file.read()
    return data[: data.rfind(b"\n") + 1].decode("utf-8", errors="replace")


def _format(value: Any) -> str:
    return "" if value is None else repr(float(value))
