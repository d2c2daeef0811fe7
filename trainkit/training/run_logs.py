"""The run's logs on disk: `metrics.csv` rows (and their count, saved in checkpoints)."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from trainkit.reports import MetricsLog

if TYPE_CHECKING:
    from trainkit.training.trainer import TrainGenerator

METRICS_FILE = "metrics.csv"


class RunLogs:
    """Writes one `metrics.csv` row per train batch and per validation.

    The header is fixed when the first row is written: the train metrics' names, then
    any validation metric that train does not have. With `logs_dir=None` nothing is written.
    """

    def __init__(self) -> None:
        self.metrics: MetricsLog | None = None
        self._truncate_to: int | None = None

    def _open(self, tg: TrainGenerator, names: list[str]) -> MetricsLog | None:
        if self.metrics is None and tg.run_dir is not None:
            self.metrics = MetricsLog(os.path.join(tg.run_dir, METRICS_FILE), names)
            if self._truncate_to is not None:
                self.metrics.truncate(self._truncate_to)
        return self.metrics

    def _columns(self, tg: TrainGenerator, logs: dict[str, float]) -> list[str]:
        names = list(tg.history) or list(logs)
        return (
            names
            + [n for n in tg.val_history if n not in names]
            + [n for n in logs if n not in names and n not in tg.val_history]
        )

    def _row(self, tg: TrainGenerator, set_name: str) -> dict[str, Any]:
        return {
            "epoch": tg.epoch,
            "iters_fit": tg.iters_fit,
            "batches_fit": tg.batches_fit,
            "set_name": set_name,
        }

    def train_batch(self, tg: TrainGenerator, logs: dict[str, float]) -> None:
        log = self._open(tg, self._columns(tg, logs))
        if log is not None:
            log.append("train", self._row(tg, tg.datagen.set_name), logs)

    def validation(self, tg: TrainGenerator, logs: dict[str, float]) -> None:
        log = self._open(tg, self._columns(tg, logs))
        if log is not None:
            log.append(
                "val", self._row(tg, ""), {k: v for k, v in logs.items() if k in log.columns}
            )

    def rows(self) -> dict[str, int]:
        """Row counts to save in a checkpoint."""
        return {"metrics_csv": self.metrics.row_count() if self.metrics else 0}

    def truncate(self, tg: TrainGenerator, rows: dict[str, int]) -> None:
        """On resume: drop rows written after the checkpoint (a killed run's extra rows)."""
        count = rows.get("metrics_csv", 0)
        path = os.path.join(tg.run_dir or "", METRICS_FILE)
        if tg.run_dir is None or not os.path.exists(path):
            return
        if count == 0:
            os.remove(path)
            return
        self._truncate_to = count  # the header is checked when the log reopens
