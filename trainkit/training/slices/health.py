"""Run health: non-finite data caught before it is fit, a non-finite loss pinpointed.

Keras' `TerminateOnNaN` stops a run after the harm is done and leaves the user to guess
which data did it. The trainer knows exactly which slice it fits: its batch's
`set_name`, its `slice_idx` and the global indices of its samples. Before a slice is fit
its inputs, labels and sample weights are checked for NaN and inf on the host, so a
poisoned slice is named before any weight changes (whatever a CPU's fused kernels would
have made of the NaN: oneDNN's MatMul+ReLU maps it to 0, so the loss alone can miss it).
A loss that is not finite with clean data means the model diverged. And no checkpoint is
ever written with non-finite weights (`NonFiniteWeightsError`).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

ON_NONFINITE = ("raise", "stop", "skip", "ignore")


class NonFiniteLossError(FloatingPointError):
    """A train slice held NaN or inf, or its loss was; the message names the slice.

    Raised before the step when the slice's inputs, labels or sample weights are not
    finite (the weights are unchanged), after it when only the loss is not (the model
    diverged).

    Attributes:
        epoch, iters_fit: where the loop stood (the bad slice is not counted in `iters_fit`).
        set_name, slice_idx: the slice's batch and place in it.
        sample_indices: global indices of the slice's samples (None when unknown).
        bad_inputs, bad_labels, bad_weights: those of `sample_indices` whose inputs /
            labels / sample weights hold a NaN or inf.
        before_step: True when the data was caught before the step (weights unchanged).
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
        bad_weights: list[int] | None = None,
        before_step: bool = False,
    ) -> None:
        super().__init__(message)
        self.epoch, self.iters_fit = epoch, iters_fit
        self.set_name, self.slice_idx = set_name, slice_idx
        self.sample_indices = sample_indices
        self.bad_inputs, self.bad_labels = bad_inputs, bad_labels
        self.bad_weights = bad_weights or []
        self.before_step = before_step


class NonFiniteWeightsError(FloatingPointError):
    """A checkpoint or best model was not written: the model's weights hold NaN or inf.

    The checkpoints written before stay the ones to resume from.

    Attributes:
        variables: paths of the variables holding non-finite values.
        first_nonfinite_iter: the first iter whose train loss was not finite, if known.
    """

    def __init__(
        self, message: str, *, variables: list[str], first_nonfinite_iter: int | None
    ) -> None:
        super().__init__(message)
        self.variables = variables
        self.first_nonfinite_iter = first_nonfinite_iter


def loss_is_finite(logs: dict[str, float]) -> bool:
    """Whether the slice's loss is finite (True when the step reports no `loss`)."""
    loss = logs.get("loss")
    return loss is None or math.isfinite(loss)


def data_is_finite(args: tuple[Any, ...]) -> bool:
    """Whether every floating array of a slice `(x, y[, sample_weight])` is finite.

    One vectorized pass per array (`np.isfinite(...).all()`: about half the time of a
    float32 sum over a fused group's stack, and no overflow to tell apart).
    """
    plain = all(type(arg) is np.ndarray or arg is None for arg in args)  # the common case
    leaves = [arg for arg in args if arg is not None] if plain else _leaves(args)
    return all(leaf.dtype.kind not in "fc" or np.isfinite(leaf).all() for leaf in leaves)


def check_weights(
    arrays: dict[str, np.ndarray],
    paths: dict[str, list[str]],
    *,
    what: str,
    first_nonfinite_iter: int | None,
) -> None:
    """Refuse to write `what` (a checkpoint, a best model) from non-finite weights.

    Args:
        arrays, paths: what `model_state.capture` returned.

    Raises:
        NonFiniteWeightsError: a variable of the model or its optimizer holds NaN or inf.
    """
    bad = []
    for group in ("model", "optimizer"):
        for index, path in enumerate(paths.get(group, [])):
            value = arrays.get(f"{group}/{index}")
            if value is None or value.dtype.kind not in "fc" or np.isfinite(value).all():
                continue
            bad.append(path or f"{group}/{index}")
    if not bad:
        return
    when = (
        f"the train loss was first non-finite at iter {first_nonfinite_iter}"
        if first_nonfinite_iter is not None
        else "no train loss was seen non-finite (check custom steps, callbacks or "
        "assignments that changed the weights)"
    )
    raise NonFiniteWeightsError(
        f"{what} was not written: {len(bad)} variables of the model or its optimizer hold "
        f"NaN or inf, e.g. {_listing_names(bad)}; {when}. The checkpoints written before are "
        "intact: resume from the last one (TrainGenerator(..., resume=True)) after fixing "
        "the cause (lower the learning rate, clip gradients, clean the data).",
        variables=bad,
        first_nonfinite_iter=first_nonfinite_iter,
    )


def nonfinite_error(
    logs: dict[str, float],
    args: tuple[Any, ...],
    *,
    epoch: int,
    iters_fit: int,
    set_name: str,
    slice_idx: int,
    batch: Any,
    before_step: bool = False,
    skipping: bool = False,
) -> NonFiniteLossError:
    """The error for a slice whose data (before the step) or loss was not finite.

    Args:
        logs: the slice's values (its `loss` is NaN or inf); `{}` before the step.
        args: what was fit: `(x, y)` or `(x, y, sample_weight)`.
        batch: the generator's `current_batch` for the slice (its `rows()` are the
            samples' global indices), or None.
        before_step: the data was found non-finite before the step (weights unchanged).
        skipping: the message of on_nonfinite='skip' (the slice is left out).
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
    then = "" if skipping else " and resume from the last checkpoint"
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
            f"set_nums= to leave a set out){then}."
        )
    else:
        cause = (
            "none of its inputs, labels or sample weights is NaN or inf, so the model "
            "diverged: lower the "
            "learning rate, clip gradients (e.g. the optimizer's clipnorm=1.0) or check the "
            f"loss{then}."
        )
    if before_step:
        found_what = "The slice to fit holds NaN or inf"
        after = "It was caught before the step: the weights are unchanged."
    else:
        found_what = f"The train loss was {logs.get('loss')}"
        after = "The slice was not counted nor checkpointed as fit."
    if skipping:
        ending = "The slice was left out (on_nonfinite='skip'); training goes on."
    else:
        ending = (
            f"{after} Pass on_nonfinite='skip' to leave such slices out and train on, "
            "'stop' to end the run with this message, or 'ignore' to train on as Keras does."
        )
    message = f"{found_what} at {where} ({samples}): {cause} {ending}"
    return NonFiniteLossError(
        message, epoch=epoch, iters_fit=iters_fit, set_name=set_name, slice_idx=slice_idx,
        sample_indices=rows if known else None, bad_inputs=bad_x, bad_labels=bad_y,
        bad_weights=bad_w, before_step=before_step,
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


def _listing_names(names: list[str], limit: int = 5) -> str:
    more = f" ... ({len(names)} in all)" if len(names) > limit else ""
    return ", ".join(repr(name) for name in names[:limit]) + more


def _listing(values: list[int], limit: int = 20) -> str:
    shown = ", ".join(map(str, values[:limit]))
    more = f", ... ({len(values)} in all)" if len(values) > limit else ""
    return f"[{shown}{more}]"
