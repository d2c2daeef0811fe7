"""The run's logs on disk: `metrics.csv`, the provenance log, TensorBoard scalars.

Row counts go into every checkpoint, and a resume truncates the files to them, so a
killed run leaves no duplicate rows. With `logs_dir=None` nothing is written.

Each checkpoint also marks `metrics.csv` and `provenance.jsonl` (size and a digest of
their end, `checkpoints.log_marks`): a resume warns, naming the file, when one lost rows
the checkpoint covers (deleted, emptied, cut, changed), and refuses a log that is a
symbolic link instead of reading through it.
"""

from __future__ import annotations

import os
import warnings
from typing import TYPE_CHECKING, Any

from trainkit.checkpoints import log_marks
from trainkit.reports import MetricsLog, ProvenanceLog

if TYPE_CHECKING:
    from trainkit.training.evaluation.scoring import ValidationSettings
    from trainkit.training.loop_state import LoopState
    from trainkit.training.slices.record import SliceRecord

METRICS_FILE = "metrics.csv"
PROVENANCE_FILE = "provenance.jsonl"
TENSORBOARD_DIR = "tensorboard"


class RunLogs:
    """`metrics.csv` (one row per train batch and per validation), `provenance.jsonl`
    (one record per iter: what was fit) and, with `tensorboard=True`, TensorBoard scalars.

    The CSV header is fixed when the first row is written: the train metrics' names, then
    any validation metric that train does not have. TensorBoard gets every validation and
    the train metrics of each batch whose `batches_fit` is a multiple of
    `tensorboard_every`: an eager summary write costs about a millisecond per metric,
    as much as a small model's step, and `metrics.csv` already holds every batch.

    Rows are taken from the loop's `state` (counters, histories, skipped slices); the
    run folder is given by `open()` once the trainer has one (until then, and without
    `logs_dir`, nothing is written). `model` is what introspection looks at, `datagen`
    names its shard in each provenance record, `validation` the metric names known
    before the first validation.
    """

    def __init__(
        self,
        *,
        state: LoopState,
        model: Any,
        datagen: Any,
        validation: ValidationSettings,
        tensorboard: bool = False,
        tensorboard_every: int = 1,
    ) -> None:
        self._state, self._model, self._datagen = state, model, datagen
        self._val_settings = validation
        self.run_dir: str | None = None
        self.metrics: MetricsLog | None = None
        self.provenance: ProvenanceLog | None = None
        self.tensorboard = tensorboard
        self.tensorboard_every = tensorboard_every
        self._writer: Any = None
        self._truncate_to: int | None = None
        self._resumed_mark: dict[str, Any] | None = None  # metrics.csv's until it reopens
        self._skips_unwritten: list[dict[str, Any]] = []  # rows before metrics.csv opens
        self._introspection: Any = None  # an IntrospectionLog once one is written

    def open(self, run_dir: str) -> None:
        """Write the logs in `run_dir`, the trainer's run folder (new or resumed)."""
        self.run_dir = run_dir

    # ------------------------------------------------------------------ metrics.csv
    def _open(self, logs: dict[str, float]) -> MetricsLog | None:
        if self.metrics is None and self.run_dir is not None:
            # Train names first, then each validation name once (a resumed run has
            # validation history *and* predict-mode names known in advance).
            names = list(
                dict.fromkeys([*(self._state.history or logs), *self._state.val_history, *logs])
            )
            names += [n for n in _val_names(self._val_settings) if n not in names]
            self.metrics = MetricsLog(os.path.join(self.run_dir, METRICS_FILE), names)
            if self._truncate_to is not None:
                self.metrics.truncate(self._truncate_to)
            self._resumed_mark = None
        return self.metrics

    def _row(self, set_name: str) -> dict[str, Any]:
        return {
            "epoch": self._state.epoch,
            "iters_fit": self._state.iters_fit,
            "batches_fit": self._state.batches_fit,
            "set_name": set_name,
        }

    def train_batch(self, logs: dict[str, float], set_name: str) -> None:
        log = self._open(logs)
        if log is not None:
            self._write_skips(log)
            log.append("train", self._row(set_name), logs)
        if self._state.batches_fit % self.tensorboard_every == 0:
            self._scalars("train", logs, self._state.batches_fit)

    def validation(self, logs: dict[str, float]) -> None:
        log = self._open(logs)
        if log is not None:
            self._write_skips(log)
            log.append("val", self._row(""), {k: v for k, v in logs.items() if k in log.columns})
        self._scalars("val", logs, self._state.batches_fit)

    # ------------------------------------------------------------------ provenance
    def iter_fit(self, record: SliceRecord) -> None:
        """Record the slice just fit (call before the generator moves on)."""
        if self.run_dir is None:
            return
        if self.provenance is None:
            self.provenance = ProvenanceLog(os.path.join(self.run_dir, PROVENANCE_FILE))
        self.provenance.append(provenance_record(self._state, self._datagen, record))

    def skipped(self, record: SliceRecord) -> None:
        """A slice left out by on_nonfinite='skip': a provenance record and a
        `metrics.csv` row of kind 'skipped' (written with the next row if the file is
        not open yet, as its columns come from the first batch's metrics)."""
        if self.run_dir is None:
            return
        if self.provenance is None:
            self.provenance = ProvenanceLog(os.path.join(self.run_dir, PROVENANCE_FILE))
        entry = provenance_record(self._state, self._datagen, record)
        entry.update(skip=len(self._state.skipped_slices), skipped=record.skipped)
        self.provenance.append(entry)
        row = self._row(record.set_name)
        if self.metrics is None and not self._state.history:
            self._skips_unwritten.append(row)
            return
        log = self._open({})
        if log is not None:
            self._write_skips(log)
            log.append("skipped", row, {})

    def _write_skips(self, log: MetricsLog) -> None:
        for row in self._skips_unwritten:
            log.append("skipped", row, {})
        self._skips_unwritten = []

    def introspect(self, record: SliceRecord | None) -> None:
        """Gradient norms and weight health of the slice just fit, to introspection.jsonl
        (`introspect_freq`); nothing without a run folder or the slice's arrays."""
        if record is None or record.args is None or self.run_dir is None:
            return
        from trainkit import introspection

        if self._introspection is None:
            self._introspection = introspection.IntrospectionLog(self.run_dir)
        x, y, *weights = record.args
        snapshot = introspection.snapshot(self._model, x, y, weights[0] if weights else None)
        self._introspection.append(
            {"iter": self._state.iters_fit, "epoch": self._state.epoch, **snapshot}
        )

    def stopped(self, message: str) -> None:
        """Record why the run stopped (a non-finite loss) in the provenance log."""
        if self.run_dir is None:
            return
        if self.provenance is None:
            self.provenance = ProvenanceLog(os.path.join(self.run_dir, PROVENANCE_FILE))
        self.provenance.append(
            {"iter": self._state.iters_fit, "epoch": self._state.epoch, "stopped": message}
        )

    # ------------------------------------------------------------------ TensorBoard
    def _scalars(self, kind: str, logs: dict[str, float], step: int) -> None:
        if not self.tensorboard or self.run_dir is None:
            return
        import tensorflow as tf

        if self._writer is None:
            self._writer = tf.summary.create_file_writer(
                os.path.join(self.run_dir, TENSORBOARD_DIR)
            )
        with self._writer.as_default():
            for name, value in logs.items():
                tf.summary.scalar(f"{kind}/{name}", value, step=step)
        self._writer.flush()

    # ------------------------------------------------------------------ resume
    def rows(self) -> dict[str, int]:
        """What to save in a checkpoint: CSV rows written, iters recorded, the logs' marks."""
        if self.provenance is not None:
            self.provenance.flush()
        rows: dict[str, Any] = {
            # Not reopened since a resume: the rows kept are the ones the truncation keeps.
            "metrics_csv": self.metrics.row_count() if self.metrics else self._truncate_to or 0,
            "provenance_iters": self._state.iters_fit,
            "provenance_skips": len(self._state.skipped_slices),
        }
        if self.run_dir is not None:
            metrics = self._resumed_mark  # the file still holds rows past it until reopened
            if metrics is None:
                metrics = log_marks.mark(os.path.join(self.run_dir, METRICS_FILE))
            rows["metrics_csv_mark"] = metrics
            rows["provenance_mark"] = log_marks.mark(os.path.join(self.run_dir, PROVENANCE_FILE))
        return rows

    def truncate(self, rows: dict[str, Any]) -> None:
        """On resume: warn about rows lost before the checkpoint, drop those after it.

        Raises:
            LinkedLogError: a log is a symbolic link (never read through).
        """
        if self.run_dir is None:
            return
        for name in (METRICS_FILE, PROVENANCE_FILE, "introspection.jsonl"):
            log_marks.refuse_link(os.path.join(self.run_dir, name))
        lost = self._check_marks(self.run_dir, rows)
        ProvenanceLog(os.path.join(self.run_dir, PROVENANCE_FILE)).truncate(
            rows.get("provenance_iters", 0), rows.get("provenance_skips")
        )
        if os.path.exists(os.path.join(self.run_dir, "introspection.jsonl")):
            from trainkit.introspection import IntrospectionLog

            log = IntrospectionLog(self.run_dir)
            log.truncate(rows.get("provenance_iters", 0))  # records after the checkpoint
            log.close()
        path = os.path.join(self.run_dir, METRICS_FILE)
        if os.path.exists(path):
            count = rows.get("metrics_csv", 0)
            if count == 0 or (METRICS_FILE in lost and not _has_whole_line(path)):
                os.remove(path)  # an emptied file starts again with its header
            else:
                self._truncate_to = count  # applied when the log reopens (header checked then)
                saved = rows.get("metrics_csv_mark")
                self._resumed_mark = log_marks.mark(path) if METRICS_FILE in lost else saved

    def _check_marks(self, run_dir: str, rows: dict[str, Any]) -> list[str]:
        """Warn for each log that lost rows the checkpoint covers; return their names."""
        lost = []
        covered = {
            METRICS_FILE: (rows.get("metrics_csv_mark"), f"{rows.get('metrics_csv', 0)} rows"),
            PROVENANCE_FILE: (
                rows.get("provenance_mark"),
                f"iters 1-{rows.get('provenance_iters', 0)}",
            ),
        }
        for name, (mark, what) in covered.items():
            problem = log_marks.lost(os.path.join(run_dir, name), mark)
            if problem is None:
                continue
            lost.append(name)
            warnings.warn(
                f"{os.path.join(run_dir, name)!r} {problem} since the checkpoint, which covers "
                f"{what} of it: those rows are lost. Training resumes and appends after what is "
                "left; to keep the log whole, stop, put the file back from a backup, and "
                "resume again.",
                stacklevel=6,
            )
        return lost

    def close(self) -> None:
        """At the end of each `train()`: flush, and let go of the metrics file."""
        if self.metrics is not None:
            self.metrics.close()
        if self.provenance is not None:
            self.provenance.flush()
        if self._writer is not None:
            self._writer.flush()
        if self._introspection is not None:
            self._introspection.close()
            self._introspection = None


def _has_whole_line(path: str) -> bool:
    with open(path, "rb") as file:
        return b"\n" in file.read(1 << 16)


def _val_names(settings: ValidationSettings) -> list[str]:
    """Validation metrics known before the first validation (predict mode)."""
    names = [metric.name for metric in settings.val_metrics or []]
    if settings.dynamic_predict_threshold:
        names.append("predict_threshold")
    return names


def provenance_record(state: LoopState, datagen: Any, record: SliceRecord) -> dict[str, Any]:
    """What was fit at this iter: the batch's rows, the slice, the preprocessor's window/crop."""
    batch = record.batch
    entry: dict[str, Any] = {
        "iter": state.iters_fit,
        "epoch": state.epoch,
        "set_name": record.set_name,
        "slice_idx": record.slice_idx,
    }
    if batch is not None:
        entry["pieces"] = [list(piece) for piece in batch.pieces]
        if batch.indices is not None:
            entry["indices"] = batch.indices.tolist()
        else:
            entry["ranges"] = [list(r) for r in batch.ranges]
    if getattr(datagen, "shard", None):
        entry["shard"] = list(datagen.shard)
    entry.update(record.description)  # taken when the slice was computed
    return entry
