"""`LoopState`: every counter and history of the train loop, in one small object.

The trainer owns the loop; this object owns its numbers. Everything in it is plain
Python data so that `state_dict()` is JSON-serializable and a checkpoint can restore
the loop exactly.
"""

from __future__ import annotations

import copy
import math
from collections import deque
from dataclasses import asdict, dataclass, field, fields
from typing import Any

STATE_VERSION = 1

# The fields that grow with the run (an entry per batch, validation, skipped slice or
# epoch). A checkpoint appends what is new of them to the run's histories log instead of
# writing them whole into every state.json (`state_dict(histories=False)`).
HISTORIES = (
    "history", "val_history", "key_metric_history", "skipped_slices", "epoch_batches",
    "val_batches",
)  # fmt: skip

# Where the loop stands inside one pass of `train()`'s loop body. A stage is done
# when `stage` moves past it, so an exception leaves the stage to run again on
# re-entry and nothing before it repeats (see `TrainGenerator.train`).
FIT = "fit"
ITER_END = "iter_end"
BATCH_END = "batch_end"
VALIDATE_MID = "validate_mid"
EPOCH_END = "epoch_end"
VALIDATE = "validate"
EPOCH_LOGS = "epoch_logs"
CHECKPOINT = "checkpoint"
STAGES = (FIT, ITER_END, BATCH_END, VALIDATE_MID, EPOCH_END, VALIDATE, EPOCH_LOGS, CHECKPOINT)

# The loop body in one table: each stage, what it does, and the stages it hands over to.
# A stage commits its bookkeeping and moves on (`LoopState.move_to`) before it calls
# any hook, so the hook order per epoch reads top to bottom here.
TRANSITIONS: dict[str, tuple[str, ...]] = {
    # on_epoch_begin / on_train_batch_begin if new; get slice, fit it (or skip it: a
    # skipped last slice of a batch ends the batch without an iter end)
    FIT: (ITER_END, BATCH_END),
    ITER_END: (BATCH_END, FIT),  # on_train_iter_end; checkpoint by 'iter'; batch over?
    BATCH_END: (VALIDATE_MID, EPOCH_END, FIT),  # count, reset statefuls, on_train_batch_end
    VALIDATE_MID: (EPOCH_END, FIT),  # validation due by 'batch' or 'iter'
    EPOCH_END: (VALIDATE, EPOCH_LOGS),  # datagen.on_epoch_end(); validation due by 'epoch'?
    VALIDATE: (EPOCH_LOGS,),  # on_val_begin, on_val_batch_end..., on_val_end
    EPOCH_LOGS: (CHECKPOINT,),  # on_epoch_end(epoch, logs)
    CHECKPOINT: (FIT,),  # checkpoint and plots by 'epoch'; then the stop check
}


# Every hook of a trainkit Callback, in the order one run calls them, with the stage that
# calls it (stock Keras callbacks get the same calls by their Keras names, `on_test_*` for
# validation). Per epoch: `on_epoch_begin` and `on_train_batch_begin` where FIT starts an
# epoch or a batch, then per slice and per batch; validation (by 'batch' or 'iter' at
# VALIDATE_MID, by 'epoch' at VALIDATE); `on_epoch_end`; a due checkpoint's `on_save`.
# The hook-order tests and the docs' hook-order page are checked against this table.
HOOK_ORDER: tuple[tuple[str, str], ...] = (
    ("on_train_begin", "train() begins a run"),
    ("on_epoch_begin", FIT),
    ("on_train_batch_begin", FIT),
    ("on_train_iter_end", ITER_END),
    ("on_train_batch_end", BATCH_END),
    ("on_val_begin", VALIDATE),
    ("on_val_batch_begin", VALIDATE),
    ("on_val_batch_end", VALIDATE),
    ("on_val_end", VALIDATE),
    ("on_epoch_end", EPOCH_LOGS),
    ("on_save", CHECKPOINT),
    ("on_train_end", "train() ends the run"),
)


@dataclass
class WeightedMean:
    """Sample-weighted running means of a dict of metric values."""

    sums: dict[str, float] = field(default_factory=dict)
    weight: float = 0.0
    count: int = 0  # number of `add` calls

    def add(self, logs: dict[str, float], weight: float) -> None:
        for name, value in logs.items():
            self.sums[name] = self.sums.get(name, 0.0) + value * weight
        self.weight += weight
        self.count += 1

    def mean_weight(self) -> float:
        """Mean weight per `add`: a batch's sample count when slices are added."""
        return self.weight / self.count if self.count else 0.0

    def result(self) -> dict[str, float]:
        if not self.weight:
            return {}
        return {name: total / self.weight for name, total in self.sums.items()}

    def clear(self) -> None:
        self.sums = {}
        self.weight = 0.0
        self.count = 0


@dataclass
class LoopState:
    """Counters, histories and progress markers of a `TrainGenerator`.

    Counters are global over the run: `epoch` counts completed epochs; `iters_fit`
    and `batches_fit` count slices and batches fit; `iters_validated`,
    `batches_validated` and `times_validated` the same for validation.
    """

    epoch: int = 0
    iters_fit: int = 0
    batches_fit: int = 0
    iters_validated: int = 0
    batches_validated: int = 0
    times_validated: int = 0
    history: dict[str, list[float]] = field(default_factory=dict)
    val_history: dict[str, list[float]] = field(default_factory=dict)
    key_metric_history: list[float] = field(default_factory=list)
    best_key_metric: float = -math.inf
    stop_training: bool = False
    # Slices left out by on_nonfinite='skip', in order: epoch, iters_fit, set_name, ...
    skipped_slices: list[dict[str, Any]] = field(default_factory=list)
    first_nonfinite_iter: int | None = None  # the first iter fit with a non-finite loss

    # Progress inside the loop body; see the stage constants above.
    stage: str = FIT
    run_begun: bool = False
    epoch_begun: bool = False
    batch_begun: bool = False
    batch_in_epoch: int = 0
    iter_in_batch: int = 0
    last_iter_logs: dict[str, float] = field(default_factory=dict)
    batch_means: WeightedMean = field(default_factory=WeightedMean)
    epoch_means: WeightedMean = field(default_factory=WeightedMean)
    epoch_val_logs: dict[str, float] = field(default_factory=dict)
    val_iter_mark: int = 0  # `iters_fit // n` at the last validation by {'iter': n}
    epoch_batches: list[int] = field(default_factory=list)  # batches_fit at each epoch end
    val_batches: list[int] = field(default_factory=list)  # batches_fit at each validation

    # Progress inside a validation, so an interrupted one resumes at its batch.
    val_stage: str = "begin"  # 'begin' -> 'run' -> 'end'
    val_batch_begun: bool = False
    val_batch_end_pending: bool = False
    val_batch_index: int = 0
    val_batch_means: WeightedMean = field(default_factory=WeightedMean)
    val_means: WeightedMean = field(default_factory=WeightedMean)
    last_val_logs: dict[str, float] = field(default_factory=dict)

    def name_skipped(self, record: Any) -> None:
        """A slice (its `SliceRecord`) left out by on_nonfinite='skip': in `skipped_slices`."""
        rows = record.batch.rows().tolist() if hasattr(record.batch, "rows") else None
        self.skipped_slices.append(
            {
                "epoch": self.epoch, "iters_fit": self.iters_fit, "set_name": record.set_name,
                "slice_idx": record.slice_idx, "samples": rows,
            }
        )  # fmt: skip

    def move_to(self, stage: str) -> None:
        """Hand the loop over to `stage`, which must follow the current one in TRANSITIONS."""
        if stage not in TRANSITIONS[self.stage]:
            raise RuntimeError(
                f"The train loop cannot go from stage {self.stage!r} to {stage!r}; it goes to "
                f"{list(TRANSITIONS[self.stage])} (a trainkit bug: please report it)."
            )
        self.stage = stage

    def state_dict(self, histories: bool = True) -> dict[str, Any]:
        """A copy of the state of plain values (non-finite floats stay floats: a checkpoint's
        state.json writes them as `{"$float": "inf"}`, its one strict-JSON encoding).

        `histories=False` leaves out the fields of `HISTORIES`, without copying them:
        a checkpoint logs them apart (`histories()`), so its cost does not grow with the run.
        """
        state: dict[str, Any] = {}
        for item in fields(self):
            if histories or item.name not in HISTORIES:
                value = getattr(self, item.name)
                plain = isinstance(value, WeightedMean)
                state[item.name] = asdict(value) if plain else copy.deepcopy(value)
        state["version"] = STATE_VERSION
        return state

    def histories(self) -> dict[str, Any]:
        """The fields of `HISTORIES` by name: the live lists and dicts, not copies."""
        return {name: getattr(self, name) for name in HISTORIES}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a `state_dict()`; raises ValueError on an unknown version or key.

        A field the state leaves out (the histories of `state_dict(histories=False)`)
        keeps its value.
        """
        state = copy.deepcopy(dict(state))
        version = state.pop("version", None)
        if version != STATE_VERSION:
            raise ValueError(
                f"Cannot load a loop state of version {version!r}; this trainkit reads "
                f"version {STATE_VERSION}. Received: version={version!r}"
            )
        unknown = set(state) - set(self.__dataclass_fields__)
        if unknown:
            raise ValueError(f"Unknown loop state keys: {sorted(unknown)}")
        for name in ("batch_means", "epoch_means", "val_batch_means", "val_means"):
            if name in state:
                state[name] = WeightedMean(**state[name])
        state["best_key_metric"] = float(state.get("best_key_metric", -math.inf))
        for name, value in state.items():
            setattr(self, name, value)


class LoopStateView:
    """The trainer's public counters and histories, read from its `LoopState` (`_state`)."""

    _state: LoopState

    @property
    def epoch(self) -> int:
        return self._state.epoch

    @property
    def iters_fit(self) -> int:
        return self._state.iters_fit

    @property
    def batches_fit(self) -> int:
        return self._state.batches_fit

    @property
    def iters_validated(self) -> int:
        return self._state.iters_validated

    @property
    def batches_validated(self) -> int:
        return self._state.batches_validated

    @property
    def times_validated(self) -> int:
        return self._state.times_validated

    @property
    def history(self) -> dict[str, list[float]]:
        return self._state.history

    @property
    def val_history(self) -> dict[str, list[float]]:
        return self._state.val_history

    @property
    def key_metric_history(self) -> list[float]:
        return self._state.key_metric_history

    @property
    def best_key_metric(self) -> float:
        return self._state.best_key_metric

    @property
    def skipped_slices(self) -> list[dict[str, Any]]:
        """Slices left out by on_nonfinite='skip': `epoch`, `iters_fit` (iters fit
        before it), `set_name`, `slice_idx`, `samples` (global indices, when known)."""
        return self._state.skipped_slices

    @property
    def stop_training(self) -> bool:
        return self._state.stop_training

    @stop_training.setter
    def stop_training(self, value: bool) -> None:
        self._state.stop_training = bool(value)


def count_whole_batches(state: LoopState, pending: deque[tuple[Any, dict[str, float]]]) -> int:
    """Account the slices of a fused call that are each a whole batch, but the last
    pending, taking them from `pending`: the bookkeeping of FIT, ITER_END and BATCH_END
    for each (the batch begun, the slice counted, the batch's means and history row), in
    one pass, and how many. For a loop where nothing acts between these batches (a fused
    group ends where something does) and no hook, output or progress line listens.
    """
    run: list[tuple[Any, dict[str, float]]] = []
    for record, logs in pending:
        if len(run) == len(pending) - 1 or record.skipped is not None:
            break
        if record.slices_per_batch != 1 or not record.batch_exhausted:
            break  # not a whole batch fit: the stages account it
        run.append((record, logs))
    if not run:
        return 0
    names = run[0][1].keys()
    if names == state.history.keys() and all(
        logs.keys() == names and record.samples for record, logs in run
    ):
        # Computed first, then applied with the records taken, in one short stretch.
        sums, weight, rows = _by_metric(state, run, names)
        for _ in run:
            pending.popleft()
        for name in names:
            state.history[name].extend(rows[name])
        means = state.epoch_means
        means.sums.update(sums)
        means.weight, means.count = weight, means.count + len(run)
    else:  # a metric first or no longer logged, or a slice without values
        for record, logs in run:
            pending.popleft()
            _count_batch(state, record.samples, logs)
    loss = [logs.get("loss", 0.0) for _, logs in run]
    if state.first_nonfinite_iter is None and not all(map(math.isfinite, loss)):
        bad = next(j for j, value in enumerate(loss) if not math.isfinite(value))
        state.first_nonfinite_iter = state.iters_fit + bad + 1  # on_nonfinite='ignore'
    state.iters_fit += len(run)
    state.batches_fit += len(run)
    state.batch_in_epoch += len(run)
    state.iter_in_batch, state.last_iter_logs = 1, run[-1][1]
    return len(run)


def _count_batch(state: LoopState, samples: int, logs: dict[str, float]) -> None:
    """One whole batch's means of its one slice, as `batch_means` computes them (`clear()`,
    `add()`, `result()`), added to the epoch's means and the history."""
    total = 0.0 + samples
    batch_logs = {n: (0.0 + v * samples) / total for n, v in logs.items()} if samples else {}
    state.epoch_means.add(batch_logs, total)  # its mean weight: one slice
    append_logs(state.history, batch_logs)


def _by_metric(
    state: LoopState, run: list[tuple[Any, dict[str, float]]], names: Any
) -> tuple[dict[str, float], float, dict[str, list[float]]]:
    """What `_count_batch` for each of `run` would make of the epoch's sums and weight and
    of the history rows, metric by metric (the same operations in the same order for
    each sum, so the same floats), changing nothing."""
    means, weights = state.epoch_means, [0.0 + record.samples for record, _ in run]
    sums, rows = {}, {}
    for name in names:
        rows[name] = [(0.0 + logs[name] * w) / w for (_, logs), w in zip(run, weights, strict=True)]
        total = means.sums.get(name, 0.0)
        for value, weight in zip(rows[name], weights, strict=True):
            total += value * weight
        sums[name] = total
    weight = means.weight
    for each in weights:
        weight += each
    return sums, weight, rows


def append_logs(history: dict[str, list[float]], logs: dict[str, float]) -> None:
    """Append one value per metric; a metric missing from `logs` gets NaN."""
    if history.keys() == logs.keys():  # the usual row: every metric, as before
        for name, values in history.items():
            values.append(logs[name])
        return
    length = len(next(iter(history.values()), []))
    for name in logs:
        if name not in history:  # (not setdefault: its default would be built every call)
            history[name] = [math.nan] * length
    for name, values in history.items():
        values.append(logs.get(name, math.nan))
