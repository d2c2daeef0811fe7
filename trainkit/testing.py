"""Checks users and trainkit's own tests run on their pipelines (no pytest needed).

* `assert_resumes_identically`: a DataGenerator restored from a state dict taken
  anywhere serves exactly what the original serves next.
* `check_preprocessor`: the conformance check for your own `Preprocessor` subclasses.

Both raise `AssertionError` with a message that says where behaviour diverged.
"""

from __future__ import annotations

import copy
import json
import random
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from trainkit._validation import describe
from trainkit.data.preprocessors.base import (
    Preprocessor,
    check_initialized,
    end_slice,
    serve_slice,
    start_batch,
)

_MAX_SLICES = 100_000

_IMPURE_FIX = (
    "process() must depend only on its arguments, slice_idx, rng and the preprocessor's "
    "own state, and may be called more than once per slice: move updates of self out of "
    "process() (into on_batch_load() or update_state()), and read no clock or counter."
)
_GLOBAL_RANDOM_FIX = (
    "process() draws from NumPy's or Python's global random state (np.random.*, "
    "random.*): draw from self.rng instead (e.g. self.rng.normal(size=batch.shape)). "
    "The DataGenerator sets it before each process() call from (seed, epoch, batch "
    "index, slice_idx), so a resumed run draws the same numbers."
)
_STATE_FIX = (
    "State that changes while serving must round-trip through state_dict(): return it "
    "from state_dict() (JSON-serializable, e.g. {{'seen': self.seen}}) and set it back in "
    "load_state_dict(). {attributes}"
)


def _json_round_trip(state: dict[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps(state))


def _record(dg: Any) -> tuple[Any, ...]:
    """What the generator serves at its cursor, and where it says it is."""
    if dg.all_data_exhausted:
        dg.on_epoch_end()
    parts = dg.get()  # (x, y) or (x, y, sample_weight)
    return (dg.epoch, dg.set_name, dg.slice_idx, *(_copy(part) for part in parts))


def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_copy(v) for v in value)
    return None if value is None else np.array(value, copy=True)


def _walk(dg: Any, count: int, *, peek: bool = False) -> list[tuple[Any, ...]]:
    out = []
    for _ in range(count):
        item = _record(dg)
        if peek:  # get() twice without update_state() must return the same slice
            _assert_same(item, _record(dg), "a second get() without update_state()")
        out.append(item)
        dg.update_state()
    return out


def _assert_same(expected: Any, actual: Any, where: str) -> None:
    if isinstance(expected, dict) and isinstance(actual, dict) and expected.keys() == actual.keys():
        for key in expected:
            _assert_same(expected[key], actual[key], f"{where}[{key!r}]")
        return
    sequences = isinstance(expected, (list, tuple)) and isinstance(actual, (list, tuple))
    if sequences and len(expected) == len(actual):
        for k, (e, a) in enumerate(zip(expected, actual)):
            _assert_same(e, a, f"{where}[{k}]")
        return
    if isinstance(expected, np.ndarray) or isinstance(actual, np.ndarray):
        e, a = np.asarray(expected), np.asarray(actual)
        if e.shape != a.shape or e.dtype != a.dtype or not np.array_equal(e, a, equal_nan=True):
            raise AssertionError(
                f"{where}: arrays differ (expected shape {e.shape} {e.dtype}, "
                f"got {a.shape} {a.dtype})"
            )
        return
    try:
        equal = bool(expected == actual)
    except (TypeError, ValueError):  # e.g. containers of arrays with different keys
        equal = False
    if not equal:
        raise AssertionError(f"{where}: expected {describe(expected)}, got {describe(actual)}")


def _count_stream(make_datagen: Callable[[], Any], epochs: int) -> list[tuple[Any, ...]]:
    dg = make_datagen()
    stream = []
    for _ in range(epochs):
        if dg.all_data_exhausted:
            dg.on_epoch_end()
        while not dg.all_data_exhausted:
            stream.append(_record(dg))
            dg.update_state()
            if len(stream) > _MAX_SLICES:
                raise AssertionError(f"more than {_MAX_SLICES} slices: the epoch never ends")
    return stream


def _default_cuts(total: int) -> list[int]:
    return sorted({0, 1, total // 3, total // 2, max(total - 1, 0), total})


def assert_resumes_identically(
    make_datagen: Callable[[], Any],
    *,
    epochs: int = 2,
    cut_points: Sequence[int] | None = None,
) -> None:
    """Check that a generator restored from a state dict serves the rest of the stream exactly.

    Walks `epochs` epochs of `make_datagen()` as the reference. For each cut point `c`
    (a slice position in that stream), a fresh generator is walked `c` slices, its
    `state_dict()` is taken (round-tripped through JSON), loaded into another fresh
    generator, and the rest of the stream is compared slice by slice: arrays (values,
    shapes and dtypes), `epoch`, `set_name` and `slice_idx`. Cuts are taken both right
    after `update_state()` and after a peeking `get()`.

    Args:
        make_datagen: builds an identical DataGenerator at every call.
        epochs: how many epochs the reference stream covers.
        cut_points: slice positions to cut at; default: start, second slice, a third,
            half, the last slice and the end.

    Raises:
        AssertionError: naming the cut point and the first slice that differs.
    """
    reference = _count_stream(make_datagen, epochs)
    total = len(reference)
    cuts = _default_cuts(total) if cut_points is None else list(cut_points)
    for cut in cuts:
        if not 0 <= cut <= total:
            raise ValueError(f"cut point {cut} is outside the stream of {total} slices")
        for peek_before_cut in (False, True):
            original = make_datagen()
            _walk(original, cut, peek=True)
            if peek_before_cut and cut < total:
                _record(original)
            state = _json_round_trip(original.state_dict())
            restored = make_datagen()
            restored.load_state_dict(state)
            for position in range(cut, total):
                where = f"resumed at slice {cut} (peeked={peek_before_cut}), slice {position}"
                _assert_same(reference[position], _record(restored), where)
                restored.update_state()


def check_preprocessor(
    make_preprocessor: Preprocessor | Callable[[], Preprocessor],
    batch: Any,
    labels: Any = None,
    *,
    epochs: int = 3,
    batches: int = 2,
) -> None:
    """Conformance check for a `Preprocessor` subclass, on one batch.

    Drives the preprocessor through the DataGenerator's calling sequence for `epochs`
    epochs of `batches` batches (each a load of `batch`, so state kept in
    `on_batch_load()` is exercised across batches and epochs) and checks: it is an
    initialized `Preprocessor`; `slices_per_batch` is a positive int; the batch ends after
    its slices; each slice's labels (and sample weights) have as many rows as its `x`;
    `process()` called twice for a slice returns the same result; results depend on `rng`
    only (not on NumPy's or Python's global random state); and a fresh preprocessor loaded
    from `state_dict()` (JSON round-tripped) at any slice produces the same remaining
    slices.

    Args:
        make_preprocessor: a preprocessor (deep-copied for every walk) or a function that
            builds an identical one at every call, e.g. `lambda: MyPreprocessor(0.1)`.
        batch: one batch as the DataGenerator would load it.
        labels: its labels, or None.
        epochs: epochs to walk.
        batches: batches per epoch.

    Each failure says how to fix it: draw from `self.rng` rather than `np.random`, keep
    `process()` free of side effects, carry changing state through `state_dict()` /
    `load_state_dict()`, cut labels like the batch.

    Example:
        >>> check_preprocessor(MyPreprocessor(0.1), batch, labels)  # doctest: +SKIP

    Raises:
        AssertionError: describing the first violation and its fix.
        TypeError, ValueError: the preprocessor is not an initialized instance, `process()`
            returned something other than `(x, y)` or `(x, y, sample_weight)`, or
            `slices_per_batch` is not an int >= 1 (the DataGenerator's own checks).
    """
    make = _factory(make_preprocessor)
    plan = [
        (epoch, index, index == batches - 1) for epoch in range(epochs) for index in range(batches)
    ]
    reference = _preprocessor_stream(make, batch, labels, plan)
    for cut in range(len(reference)):
        _resume_preprocessor(make, batch, labels, plan, reference, cut)


def _factory(make: Any) -> Callable[[], Preprocessor]:
    """A function that builds a fresh preprocessor: `make` itself, or copies of an instance."""
    if isinstance(make, Preprocessor):
        return lambda: copy.deepcopy(make)
    if not callable(make):
        raise TypeError(
            "check_preprocessor takes a Preprocessor or a function that builds one, e.g. "
            f"`lambda: MyPreprocessor(...)`. Received: make_preprocessor={describe(make)}"
        )
    return make


def _assert_same_or_fix(expected: Any, actual: Any, where: str, fix: str) -> None:
    try:
        _assert_same(expected, actual, where)
    except AssertionError as error:
        raise AssertionError(f"{error}. {fix}") from None


def _process(pre: Preprocessor, batch: Any, labels: Any, key: tuple[int, ...]) -> Any:
    results = []
    for global_seed in (1, 1, 2):
        np.random.seed(global_seed)
        random.seed(global_seed)
        results.append(_copy(serve_slice(pre, batch, labels, key)))  # the generator's walk
    where = f"{type(pre).__name__}.process() at slice {key[-1]} called twice"
    _assert_same_or_fix(results[0], results[1], f"{where} (same global seeds)", _IMPURE_FIX)
    _assert_same_or_fix(results[0], results[2], f"{where} (other global seeds)", _GLOBAL_RANDOM_FIX)
    _check_rows(pre, results[0], key[-1])
    return results[0]


def _rows(value: Any) -> set[int]:
    """First-axis lengths of an array or of the arrays in a dict (lists are left out)."""
    values = value.values() if isinstance(value, dict) else [value]
    return {int(v.shape[0]) for v in values if getattr(v, "shape", None)}


def _check_rows(pre: Preprocessor, result: tuple[Any, ...], slice_idx: int) -> None:
    """AssertionError when a slice's labels or sample weights have other rows than its x."""
    x_rows = _rows(result[0])
    if len(x_rows) != 1:
        return
    for name, part in zip(("labels", "sample_weight"), result[1:]):
        rows = _rows(part)
        if rows and rows != x_rows:
            raise AssertionError(
                f"{type(pre).__name__}.process() at slice {slice_idx} returned {name} with "
                f"{sorted(rows)} rows for x with {sorted(x_rows)} rows (first axis): cut "
                f"{name} the same way as the batch, one row per row of x."
            )


def _state_fix(original: Preprocessor, restored: Preprocessor) -> str:
    """How to fix a failed restore, naming the attributes that differ after it."""
    differ = _unrestored(original, restored)
    listed = f"Attributes that differ after load_state_dict(): {differ}." if differ else ""
    return _STATE_FIX.format(attributes=listed).strip()


def _unrestored(original: Preprocessor, restored: Preprocessor) -> list[str]:
    """Attributes whose value differs between a preprocessor and its restored copy."""
    skip = {"_rng", "_rng_key", "_rng_rows"}
    names = sorted((set(vars(original)) | set(vars(restored))) - skip)
    differ = []
    for name in names:
        try:
            _assert_same(getattr(original, name, None), getattr(restored, name, None), name)
        except (AssertionError, TypeError, ValueError):
            differ.append(name)
    return differ


def _slices(pre: Preprocessor, batch: Any, labels: Any, plan: list, loaded: bool = False) -> Any:
    """Walk `plan`'s batches as the generator does; yield (plan position, epoch, index)
    before each slice, which the caller serves (or not) before the walk moves on."""
    for position, (epoch, index, last) in enumerate(plan):
        if not (loaded and position == 0):
            start_batch(pre, batch, labels)
        while not pre.batch_exhausted:
            yield position, epoch, index
            end_slice(pre)
            if pre.slice_idx > _MAX_SLICES:
                raise AssertionError("batch_exhausted never became True")
        if last:
            pre.reset_state()
            pre.on_epoch_end(epoch + 1)


def _preprocessor_stream(
    make: Callable[[], Preprocessor], batch: Any, labels: Any, plan: list
) -> list:
    pre = make()
    check_initialized(pre)
    stream = []
    for _, epoch, index in _slices(pre, batch, labels, plan):
        key = (0, epoch, index, pre.slice_idx)
        stream.append((epoch, index, pre.slice_idx, _process(pre, batch, labels, key)))
    return stream


def _resume_preprocessor(make, batch, labels, plan, reference, cut) -> None:
    original = make()
    walk = _slices(original, batch, labels, plan)
    for served, (position, epoch, index) in enumerate(walk):
        if served < cut:
            serve_slice(original, batch, labels, (0, epoch, index, original.slice_idx))
            continue
        state = _json_round_trip(original.state_dict())
        restored = make()
        start_batch(restored, batch, labels)  # the generator re-reads the batch, then restores
        restored.slice_idx, restored.slices_per_batch = (
            original.slice_idx,
            original.slices_per_batch,
        )
        restored.load_state_dict(state)
        _finish(
            restored,
            batch,
            labels,
            plan[position:],
            reference[cut:],
            cut,
            _state_fix(original, restored),
        )
        return


def _finish(pre, batch, labels, plan, expected, cut, fix) -> None:
    served = []
    for _, epoch, index in _slices(pre, batch, labels, plan, loaded=True):
        key = (0, epoch, index, pre.slice_idx)
        served.append((epoch, index, pre.slice_idx, _process(pre, batch, labels, key)))
    if len(served) != len(expected):
        raise AssertionError(
            f"{type(pre).__name__} restored from state_dict() at slice {cut}: served "
            f"{len(served)} more slices, expected {len(expected)}. {fix}"
        )
    for k, (want, got) in enumerate(zip(expected, served)):
        where = f"{type(pre).__name__} restored from state_dict() at slice {cut}, slice {cut + k}"
        _assert_same_or_fix(want, got, where, fix)


def _cut_callback(at: int | None) -> Any:
    """A trainkit callback that checkpoints at the first slice boundary from iter `at` on
    (the end of the fused group holding iter `at` under `steps_per_execution > 1`) and
    stops the run there."""
    from trainkit.callbacks import Callback  # imported here: this module stays TF-free

    class CutAt(Callback):
        def on_train_iter_end(self, iteration: int, logs: dict | None = None) -> None:
            trainer = self.trainer
            # A fused call's slices are accounted one iter end at a time; a checkpoint
            # waits for the group's last one (tg.checkpoint() refuses inside a group).
            if at is None or trainer.iters_fit < at or trainer._feeder.pending:
                return
            trainer.checkpoint()
            raise _Cut(trainer.iters_fit)

    return CutAt()


class _Cut(Exception):
    """Raised by the cut callback to stop a run mid-way."""


def assert_resume_equivalent(
    make_trainer: Callable[[str, Any, list[Any]], Any],
    logs_dir: str,
    *,
    cut_points: Sequence[int] = (1,),
) -> None:
    """Check that your training setup resumes bitwise from a checkpoint at any iter.

    Runs the setup uninterrupted as the reference; then, for each cut point `k`, runs it
    again, checkpoints and stops right after iter `k`, builds everything anew with
    `resume=<that checkpoint>`, trains to the end and compares the final weights
    (`np.array_equal`) and the histories with the reference. Run it in one process with
    fixed thread settings; build the model after `keras.utils.set_random_seed` inside
    `make_trainer` so every build starts alike.

    Args:
        make_trainer: `make_trainer(logs_dir, resume, callbacks) -> TrainGenerator`; must
            build a fresh model and generators and pass `logs_dir`, `resume` and
            `callbacks` (plus any of your own after them) to the TrainGenerator.
        logs_dir: an empty folder for the runs (each run gets its own subfolder).
        cut_points: iters after which to checkpoint, stop and resume. With
            `steps_per_execution > 1` the cut is made at the end of the fused group that
            holds the iter (a checkpoint is only taken between groups).

    Raises:
        AssertionError: naming the cut point and what differs.
    """
    import os

    reference = make_trainer(os.path.join(logs_dir, "reference"), False, [_cut_callback(None)])
    reference.train()
    expected = [np.array(w) for w in reference.model.get_weights()]
    for cut in cut_points:
        folder = os.path.join(logs_dir, f"cut-{cut}")
        first = make_trainer(folder, False, [_cut_callback(cut)])
        try:
            first.train()
        except _Cut:
            pass
        else:
            raise ValueError(
                f"cut point {cut} is past the end of the run ({first.iters_fit} iters)"
            )
        checkpoint = first._run.last_checkpoint if first._run else None
        resumed = make_trainer(folder, checkpoint, [_cut_callback(None)])
        resumed.train()
        for k, (want, got) in enumerate(zip(expected, resumed.model.get_weights())):
            if not np.array_equal(want, got):
                raise AssertionError(
                    f"resumed after iter {cut}: weight #{k} differs from the uninterrupted run"
                )
        for name in ("history", "val_history"):
            _assert_same(
                getattr(reference, name),
                getattr(resumed, name),
                f"resumed after iter {cut}: {name}",
            )
