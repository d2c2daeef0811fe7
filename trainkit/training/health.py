"""Run health: a non-finite train loss, pinpointed to the data that was being fit.

Keras' `TerminateOnNaN` stops a run and leaves the user to guess which data did it.
The trainer knows exactly which slice it fit: its batch's `set_name`, its `slice_idx`
and the global indices of its samples. `NonFiniteLossError` names them, and which of
those samples hold NaN or inf in their inputs or labels (or says none do, so the model
itself diverged).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

ON_NONFINITE = ("raise", "stop", "ignore")


class NonFiniteLossError(FloatingPointError):
    """A train slice's loss was NaN or inf; the message names the slice and its samples.

    Attributes:
        epoch, iters_fit: where the loop stood (the bad slice is not counted in `iters_fit`).
        set_name, slice_idx: the slice's batch and place in it.
        sample_indices: global indices of the slice's samples (None when unknown).
        bad_inputs, bad_labels: those of `sample_indices` whose inputs / labels hold a
            NaN or inf.
    """

    def __init__(
        self,
        message: str,
        *,
        epoch: int,
        iters_fit: int,
        set_name: str,
        slice_idx: int,
        sample_indices: list[int] | None,
        bad_inputs: list[int],
        bad_labels: list[int],
    ) -> None:
        super().__init__(message)
        self.epoch, self.iters_fit = epoch, iters_fit
        self.set_name, self.slice_idx = set_name, slice_idx
        self.sample_indices = sample_indices
        self.bad_inputs, self.bad_labels = bad_inputs, bad_labels


def loss_is_finite(logs: dict[str, float]) -> bool:
    """Whether the slice's loss is finite (True when the step reports no `loss`)."""
    loss = logs.get("loss")
    return loss is None or math.isfinite(loss)


def nonfinite_error(
    logs: dict[str, float],
    args: tuple[Any, ...],
    *,
    epoch: int,
    iters_fit: int,
    set_name: str,
    slice_idx: int,
    batch: Any,
) -> NonFiniteLossError:
    """The error for a slice whose loss was not finite.

    Args:
        logs: the slice's values (its `loss` is NaN or inf).
        args: what was fit: `(x, y)` or `(x, y, sample_weight)`.
        batch: the generator's `current_batch` for the slice (its `rows()` are the
            samples' global indices), or None.
    """
    x, y = args[0], args[1]
    weights = args[2] if len(args) > 2 else None
    count = _rows_in(x)
    rows, known = _global_rows(batch, count)
    bad_x = [rows[i] for i in _nonfinite_rows(x, count)]
    bad_y = [] if y is None or y is x else [rows[i] for i in _nonfinite_rows(y, count)]
    bad_w = [] if weights is None else [rows[i] for i in _nonfinite_rows(weights, count)]
    where = (
        f"epoch {epoch}, after iters_fit={iters_fit} good iters, set_name={set_name!r}, "
        f"slice_idx={slice_idx}"
    )
    samples = (
        f"global sample indices {_listing(rows)}"
        if known
        else f"{count} rows; their global indices are unknown, so rows are numbered in the slice"
    )
    if bad_x or bad_y or bad_w:
        found = []
        if bad_x:
            found.append(f"non-finite inputs in samples {_listing(bad_x)}")
        if bad_y:
            found.append(f"non-finite labels in samples {_listing(bad_y)}")
        if bad_w:
            found.append(
                f"non-finite sample weights in samples {_listing(bad_w)} (the preprocessor's "
                "weights times class and slice weights)"
            )
        cause = (
            "; ".join(found) + ". Clean or drop those samples (e.g. np.nan_to_num, or "
            "set_nums= to leave a set out) and resume from the last checkpoint."
        )
    else:
        cause = (
            "none of its inputs, labels or sample weights is NaN or inf, so the model "
            "diverged: lower the "
            "learning rate, clip gradients (e.g. the optimizer's clipnorm=1.0) or check the "
            "loss, then resume from the last checkpoint."
        )
    message = (
        f"The train loss was {logs.get('loss')} at {where} ({samples}): {cause} "
        "The slice was not counted nor checkpointed as fit. "
        "Pass on_nonfinite='ignore' to keep training as Keras does, or 'stop' to end the "
        "run with this message."
    )
    return NonFiniteLossError(
        message, epoch=epoch, iters_fit=iters_fit, set_name=set_name, slice_idx=slice_idx,
        sample_indices=rows if known else None, bad_inputs=bad_x, bad_labels=bad_y,
    )  # fmt: skip


def _leaves(value: Any) -> list[Any]:
    if isinstance(value, dict):
        return [leaf for member in value.values() for leaf in _leaves(member)]
    if isinstance(value, (list, tuple)):
        return [leaf for member in value for leaf in _leaves(member)]
    return [] if value is None else [np.asarray(value)]


def _rows_in(x: Any) -> int:
    leaves = _leaves(x)
    return int(leaves[0].shape[0]) if leaves and leaves[0].ndim else 0


def _nonfinite_rows(value: Any, count: int) -> list[int]:
    bad = np.zeros(count, dtype=bool)
    for leaf in _leaves(value):
        if leaf.ndim == 0 or leaf.shape[0] != count or leaf.dtype.kind not in "fc":
            continue
        bad |= ~np.isfinite(leaf.reshape(count, -1)).all(axis=1)
    return np.flatnonzero(bad).tolist()


def _global_rows(batch: Any, count: int) -> tuple[list[int], bool]:
    """The slice's samples as global indices, and True; else positions in the slice, False.

    A slice holds its batch's samples in order unless the preprocessor changed their
    number (then the global indices are not known).
    """
    rows = batch.rows().tolist() if batch is not None and hasattr(batch, "rows") else []
    if len(rows) == count:
        return [int(r) for r in rows], True
    return list(range(count)), False


def _listing(values: list[int], limit: int = 20) -> str:
    shown = ", ".join(map(str, values[:limit]))
    more = f", ... ({len(values)} in all)" if len(values) > limit else ""
    return f"[{shown}{more}]"
