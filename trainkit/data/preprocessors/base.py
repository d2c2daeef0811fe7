"""`Preprocessor`: the open base class that turns a loaded batch into slices."""

from __future__ import annotations

import functools
import inspect
from typing import Any

import numpy as np

from trainkit._stable import describe as stable_description
from trainkit._validation import describe, is_int
from trainkit.data.plan import SAMPLE_STREAM, GlobalRows

_NO_RNG = (
    "{name}.{what} was read outside process(): the DataGenerator sets it before each call "
    "to process(), derived from (seed, epoch, batch index, slice_idx). Draw random numbers "
    "only inside process() so that a resumed run draws the same ones."
)
_OTHER_SAMPLES = (
    "{name} asked for per-sample draws for {count} samples, but this slice is rows "
    "{start}:{stop} of a global batch of {size} (a shard of one worker): a preprocessor "
    "before it changed the number of samples. Per-sample draws are keyed on each "
    "sample's row in the global batch, so that the draws do not depend on the number of "
    "workers; put {name} before the preprocessor that changes the number of samples. "
    "Received: count={count}"
)


class Preprocessor:
    """Base class for everything that turns a loaded batch into one or more slices.

    Subclass it and define `process()`; every other hook has a working default, so a
    subclass that only defines `process()` yields one slice per batch. Call
    `super().__init__()` in your `__init__`.

    Calling sequence (driven by the DataGenerator):

    1. When a batch loads, the generator sets `batch_loaded=True`,
       `batch_exhausted=False`, `slice_idx=0` and calls `on_batch_load(batch, labels)`,
       which sets `slices_per_batch`.
    2. For each slice it sets `rng` and calls `process(batch, labels)`; `process` may be
       called more than once for the same slice and must depend only on its arguments,
       `slice_idx`, `rng` (and `sample_rngs()`) and the preprocessor's own state. The
       one attribute it may set is `slices_per_batch` (as DeepTrain's preprocessors do
       at `slice_idx == 0`): the generator takes that count for the batch with any
       `prefetch`.
    3. After the slice is consumed it calls `update_state()`, which advances `slice_idx`
       and sets `batch_exhausted` after the last slice. Override it to end a batch early
       or late.
    4. `on_epoch_end(epoch)` is called once after the last batch of an epoch, with the
       number of the epoch about to begin.

    Attributes:
        batch_loaded: a batch is loaded and not yet exhausted.
        batch_exhausted: every slice of the current batch has been consumed.
        slice_idx: index of the current slice within the batch.
        slices_per_batch: how many slices the current batch yields.
        rng: a `np.random.Generator` for the current slice (only valid inside `process`).
            Every shard of a batch (each worker's rows) gets the same `rng`: use it for
            draws that concern the whole batch, such as one crop window per batch.

    Draws that concern one sample (a rotation angle, per-point noise) come from
    `sample_rngs(count)`, one generator per sample keyed on the sample's row in the
    global batch: a run on several workers, each serving its shard of every batch,
    then draws for each sample what one worker draws.

    Example:
        >>> class Scale(Preprocessor):
        ...     def __init__(self, factor):
        ...         super().__init__()
        ...         self.factor = factor
        ...     def process(self, batch, labels):
        ...         return batch * self.factor, labels
    """

    def __init__(self) -> None:
        self.batch_loaded = False
        self.batch_exhausted = True
        self.slice_idx = 0
        self.slices_per_batch = 1
        self._rng_key: tuple[int, ...] | None = None
        self._rng_rows: GlobalRows | None = None
        self._rng: np.random.Generator | None = None
        self._trainkit_initialized = True

    # The generator hands out a key, not a Generator: building one costs ~10 µs, so it is
    # built on first use and only by preprocessors that draw random numbers.
    @property
    def rng(self) -> np.random.Generator:
        if self._rng is None:
            if self._rng_key is None:
                raise RuntimeError(_NO_RNG.format(name=type(self).__name__, what="rng"))
            self._rng = np.random.default_rng(list(self._rng_key))
        return self._rng

    @rng.setter
    def rng(self, value: np.random.Generator) -> None:
        self._rng = value

    def set_rng_key(self, key: tuple[int, ...], rows: GlobalRows | None = None) -> None:
        """Derive `rng` from `key` (fresh on every call, so repeated `process()` agree).

        `rows`: which rows of the global batch the slice's samples are, when the slice
        is a shard of it; None when it holds the whole batch.
        """
        self._rng_key, self._rng_rows = key, rows
        self._rng = None

    def global_rows(self, count: int) -> GlobalRows:
        """Which rows of the global batch the slice's `count` samples are (in `process()`).

        `GlobalRows(0, count, count)` when the slice holds the whole batch (one worker);
        on worker k of W, that worker's shard of the batch. A per-sample number (an
        angle, a factor) drawn for the whole batch from `rng` and indexed by these rows
        is the same on any number of workers, and costs one draw per batch:
        `rng.uniform(size=rows.size)[rows.start:rows.stop]`.

        Raises:
            ValueError: the slice is a shard and `count` is not its number of rows (a
                preprocessor before this one in a `Chain` changed the number of samples).
        """
        rows = self._rng_rows
        if rows is None or (rows.start == 0 and rows.stop == rows.size):
            return GlobalRows(0, count, count)
        if count != rows.stop - rows.start:
            raise ValueError(
                _OTHER_SAMPLES.format(name=type(self).__name__, count=count, **rows._asdict())
            )
        return rows

    def sample_rngs(self, count: int) -> list[np.random.Generator]:
        """One `np.random.Generator` per sample of the slice, for draws that concern one sample.

        Sample i's generator is keyed on the slice's key and the sample's row in the
        global batch (`global_rows(count).start + i`), so each sample draws the same
        numbers whether one worker serves the whole batch or several serve a shard each
        (and in every resumed run). Use it for per-point noise or anything whose size
        differs between samples; only inside `process()`, like `rng`.

        Example:
            >>> def process(self, batch, labels):  # a list of (points_i, 3) arrays
            ...     rngs = self.sample_rngs(len(batch))
            ...     noisy = [s + r.normal(0, 0.01, s.shape) for s, r in zip(batch, rngs)]
            ...     return noisy, labels

        Raises:
            RuntimeError: called outside `process()`.
            ValueError: as `global_rows()`.
        """
        if self._rng_key is None:
            raise RuntimeError(_NO_RNG.format(name=type(self).__name__, what="sample_rngs()"))
        rows = self.global_rows(count)
        key = list(self._rng_key)
        return [
            np.random.default_rng([*key, SAMPLE_STREAM, row])
            for row in range(rows.start, rows.stop)
        ]

    def on_batch_load(self, batch: Any, labels: Any) -> None:
        """Called once when a batch loads; sets `slices_per_batch` (default 1)."""
        self.slices_per_batch = 1

    def process(self, batch: Any, labels: Any) -> tuple[Any, Any]:
        """Return `(batch, labels)` for the current `slice_idx`. Subclasses must define it."""
        raise NotImplementedError(
            f"{type(self).__name__} must define process(self, batch, labels) returning "
            "(batch, labels) for the current slice_idx."
        )

    def update_state(self) -> None:
        """Advance one slice; the batch is exhausted after its last slice."""
        self.slice_idx += 1
        self.batch_exhausted = self.slice_idx >= self.slices_per_batch

    def reset_state(self) -> None:
        """Forget the current batch (called when the generator drops or reloads it)."""
        self.batch_loaded = False
        self.batch_exhausted = True
        self.slice_idx = 0

    def on_epoch_end(self, epoch: int) -> None:
        """Called after the last batch of an epoch; `epoch` is the epoch about to begin."""

    def count_slices(self, sample_shape: tuple[int, ...]) -> int | None:
        """Slices each batch yields, when known from one sample's shape alone; else None.

        Read-only views (`DataGenerator.as_py_dataset()`, `as_tf_dataset()`) use it to
        know their length without running `update_state()`. The default knows it only
        when the subclass keeps the default `on_batch_load` and `update_state` (one slice
        per batch); override it if yours can tell, return None if it cannot.
        """
        cls = type(self)
        defaults = (
            cls.on_batch_load is Preprocessor.on_batch_load
            and cls.update_state is Preprocessor.update_state
        )
        return 1 if defaults else None

    def check_sample_shape(self, sample_shape: tuple[int, ...]) -> None:
        """Called at generator construction with one sample's shape; raise if it cannot fit."""

    def describe_slice(self) -> dict[str, Any]:
        """What the last `process()` did, for the provenance log (e.g. window, crop offsets).

        Must be JSON-serializable. Default: nothing to add.
        """
        return {}

    def post_process(self, predictions: Any, description: dict[str, Any] | None = None) -> Any:
        """Turn a slice's predictions back into the form of the data (default: unchanged).

        Override it when `process()` changes what a prediction lines up with, e.g.
        `PadPreprocessor` cuts padded predictions back to each sample's length.

        Args:
            predictions: the model's output for one served slice.
            description: that slice's `describe_slice()` (pass
                `datagen.describe_slice()` right after `datagen.get()`: it is also right
                with prefetch, where a background copy computes the slices); None means
                this instance's own last slice.
        """
        return predictions

    def for_prediction(self) -> Preprocessor | None:
        """The form this preprocessor takes when predicting (`DataGenerator.for_prediction()`).

        Predictions want each sample as it is, once: random augmentation drops out, the
        rest stays. Default: the preprocessor itself. The random augmenters return None
        (dropped), `RandomCropPreprocessor` a center crop, `Chain` the chain of its
        members' forms. Override it in a subclass whose `process()` draws from `rng` to
        augment: return None to drop it, or a preprocessor that does the same without
        randomness.

        Returns:
            A preprocessor to use when predicting, or None to use none.
        """
        return self

    def get_config(self) -> dict[str, Any]:
        """Settings that change what is served (part of the generator's fingerprint).

        Default: the class name and, under `'arguments'`, the `__init__` arguments the
        instance keeps as attributes of the same name (`self.sigma` or `self._sigma` for
        a parameter `sigma`), described the same way in every process (arrays by shape and
        dtype). A resume with other arguments is then refused, naming what differs.
        Override it to name the settings yourself.
        """
        config: dict[str, Any] = {"class": type(self).__qualname__}
        arguments = init_arguments(self)
        if arguments:
            config["arguments"] = arguments
        return config

    def state_dict(self) -> dict[str, Any]:
        """The preprocessor's own state beyond the slice counters (JSON-serializable)."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what `state_dict()` returned."""
        if state:
            raise ValueError(
                f"{type(self).__name__}.load_state_dict received state keys {sorted(state)} "
                "but the class does not override load_state_dict(): override both "
                "state_dict() and load_state_dict() to restore it."
            )


class IdentityPreprocessor(Preprocessor):
    """Serves each batch whole, as one slice (the default)."""

    def process(self, batch: Any, labels: Any) -> tuple[Any, Any]:
        return batch, labels


def init_arguments(pre: Preprocessor) -> dict[str, Any]:
    """`{parameter: stable description}` for each `__init__` parameter kept as an attribute.

    A parameter `sigma` is looked up as `self.sigma`, then `self._sigma`; parameters kept
    under other names (or not kept) are left out, as are `*args` and `**kwargs`.
    """
    attributes = vars(pre)
    found = {}
    for parameter in _init_parameters(type(pre).__init__):
        for name in (parameter, f"_{parameter}"):
            if name in attributes:
                found[parameter] = stable_description(attributes[name])
                break
    return found


_STARRED = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)


@functools.lru_cache(maxsize=256)
def _init_parameters(init: Any) -> tuple[str, ...]:
    """The named parameters of an `__init__` (read once per function: a generator's
    fingerprint, taken at every fused group and checkpoint, reads them)."""
    try:
        parameters = inspect.signature(init).parameters.values()
    except (TypeError, ValueError):  # a C-level __init__ has no readable signature
        return ()
    return tuple(p.name for p in parameters if p.name != "self" and p.kind not in _STARRED)


def start_batch(pre: Preprocessor, batch: Any, labels: Any) -> None:
    """Begin serving a newly loaded batch, as the DataGenerator does when a batch loads.

    Sets `batch_loaded=True`, `batch_exhausted=False`, `slice_idx=0`, calls
    `on_batch_load(batch, labels)` and checks the `slices_per_batch` it set.

    Raises:
        TypeError: `slices_per_batch` is not an int (bool, float, None).
        ValueError: `slices_per_batch` is below 1.
    """
    pre.batch_loaded, pre.batch_exhausted, pre.slice_idx = True, False, 0
    pre.on_batch_load(batch, labels)
    count = pre.slices_per_batch
    if type(count) is not int or count < 1:  # the usual int passes at no cost
        pre.slices_per_batch = _checked_count(pre, "on_batch_load()")


def _checked_count(pre: Preprocessor, where: str) -> int:
    """`pre.slices_per_batch` as an int, after `where` set it; TypeError/ValueError if bad."""
    count = pre.slices_per_batch
    name = type(pre).__name__
    if not is_int(count):
        raise TypeError(
            f"{name}.slices_per_batch must be an int >= 1 after {where}: the number "
            "of slices the loaded batch yields. Compute it with integer arithmetic "
            f"(e.g. `timesteps // window`). Received: slices_per_batch={describe(count)}"
        )
    if count < 1:
        raise ValueError(
            f"{name}.slices_per_batch must be >= 1 after {where}: every loaded batch "
            "yields at least one slice. Select fewer sets (`set_nums=`) to leave data out. "
            f"Received: slices_per_batch={count!r}"
        )
    return int(count)  # NumPy ints would not survive json.dumps


# ---------------------------------------------------------------------- the slice walk
# How every server of slices walks a batch: the synchronous DataGenerator, its prefetch
# thread, worker processes, the read-only views, write_store and trainkit.testing. These
# four routines are the only writers of the counters besides the preprocessor's own hooks.


def begin_batch(pre: Preprocessor, x: Any, y: Any, pending: dict[str, Any] | None = None) -> None:
    """Start serving a loaded batch; mid-batch after a restore, the saved counters win.

    `pending` is the preprocessor state saved with a mid-batch cursor: `on_batch_load()`
    runs again on the re-read batch, then the saved counters and state are put back.
    """
    restoring = pending is not None and pre.batch_loaded
    saved = (pre.slice_idx, pre.slices_per_batch, pre.batch_exhausted)
    start_batch(pre, x, y)
    if restoring:
        pre.slice_idx, pre.slices_per_batch, pre.batch_exhausted = saved
        pre.load_state_dict(pending or {})


def serve_slice(
    pre: Preprocessor, x: Any, y: Any, key: tuple[int, ...], rows: GlobalRows | None = None
) -> tuple[Any, ...]:
    """The slice at `pre.slice_idx` of the loaded batch `(x, y)`, drawn with rng `key`.

    Sets the rng key and the batch's `rows` in the global batch (a shard's
    `Batch.global_rows`, None for a whole batch), runs `process()` and checks what it
    returned. The negotiation of the
    slice count: `process()` may set `slices_per_batch` (DeepTrain's preprocessors do at
    `slice_idx == 0`); the count it leaves is checked here and is the batch's count from
    then on, whoever runs this (the caller's thread, the prefetch thread, a worker).
    """
    count = pre.slices_per_batch
    pre.set_rng_key(key, rows)
    result = check_slice(pre, pre.process(x, y))
    if pre.slices_per_batch is not count:
        pre.slices_per_batch = _checked_count(pre, "process()")
    return result


def adopt_count(pre: Preprocessor, slices_per_batch: int) -> None:
    """Take the slice count that `process()` negotiated on another copy (thread, worker)."""
    pre.slices_per_batch = slices_per_batch


def restore_counters(
    pre: Preprocessor, batch_loaded: bool, batch_exhausted: bool, slice_idx: int, count: int
) -> None:
    """Put back the counters a state dict saved (`DataGenerator.load_state_dict`)."""
    pre.batch_loaded, pre.batch_exhausted = batch_loaded, batch_exhausted
    pre.slice_idx, pre.slices_per_batch = slice_idx, count


def end_slice(pre: Preprocessor) -> bool:
    """Advance one slice (`update_state()`); True when that ended the batch."""
    pre.update_state()
    if pre.batch_exhausted:
        pre.batch_loaded = False
        return True
    return False


def check_slice(pre: Preprocessor, result: Any) -> tuple[Any, ...]:
    """`result` of `pre.process()` if it is `(x, y)` or `(x, y, sample_weight)`, else raise.

    Raises:
        TypeError: naming the preprocessor class and what it returned (type and length,
            or shape and dtype; never the data).
    """
    if isinstance(result, tuple) and len(result) in (2, 3):
        return result
    if isinstance(result, (tuple, list)):
        returned = f"a {type(result).__name__} of length {len(result)}"
    else:
        returned = describe(result)
    raise TypeError(
        f"{type(pre).__name__}.process() must return a tuple (x, y) or (x, y, sample_weight), "
        "with y None when there are no labels: end it with `return batch, labels`. "
        f"Received: process() returned {returned}"
    )


def check_initialized(preprocessor: Any) -> None:
    """TypeError unless `preprocessor` is a Preprocessor whose base __init__ ran.

    A Preprocessor class (not an instance) or a DeepTrain-style name (`'timeseries'`)
    gets a message saying exactly what to pass.
    """
    if not isinstance(preprocessor, Preprocessor):
        raise TypeError(_not_a_preprocessor(preprocessor))
    if not vars(preprocessor).get("_trainkit_initialized", False):
        name = type(preprocessor).__name__
        raise TypeError(
            f"{name}.__init__ did not call super().__init__(): add `super().__init__()` at "
            f"the top of {name}.__init__ so the slice counters exist."
        )


def _builtin_names() -> dict[str, type[Preprocessor]]:
    """Built-in preprocessors by their DeepTrain-style short names ('timeseries', ...)."""
    from trainkit.data.preprocessors.augment import (
        JitterPreprocessor,
        RandomRotationPreprocessor,
        RandomScalePreprocessor,
    )
    from trainkit.data.preprocessors.pad import PadPreprocessor
    from trainkit.data.preprocessors.random_crop import RandomCropPreprocessor
    from trainkit.data.preprocessors.timeseries import TimeseriesPreprocessor

    return {
        "timeseries": TimeseriesPreprocessor,
        "randomcrop": RandomCropPreprocessor,
        "pad": PadPreprocessor,
        "randomrotation": RandomRotationPreprocessor,
        "jitter": JitterPreprocessor,
        "randomscale": RandomScalePreprocessor,
    }


def _not_a_preprocessor(value: Any) -> str:
    if isinstance(value, type) and issubclass(value, Preprocessor):
        return (
            f"`preprocessor` must be an instance, not the class {value.__name__}: pass "
            f"{example_call(value)}. Received: preprocessor={value.__name__} (the class)"
        )
    if isinstance(value, str):
        key = value.lower().replace("_", "").replace("-", "").removesuffix("preprocessor")
        builtin = _builtin_names().get(key)
        if builtin is not None:
            return (
                "`preprocessor` takes a Preprocessor instance, not a name: pass "
                f"{example_call(builtin)} (`from trainkit import {builtin.__name__}`). "
                f"Received: preprocessor={value!r}"
            )
        names = ", ".join(f"{cls.__name__}(...)" for cls in _builtin_names().values())
        return (
            "`preprocessor` takes a Preprocessor instance, not a name: pass one of the "
            f"built-ins ({names}) or an instance of your own subclass. "
            f"Received: preprocessor={value!r}"
        )
    return (
        "`preprocessor` must be an instance of trainkit.Preprocessor (subclass it and "
        f"define process()). Received: preprocessor={describe(value)}"
    )


def example_call(cls: type) -> str:
    """`Name(required=...)`: how to build `cls`, listing its required arguments."""
    try:
        parameters = inspect.signature(cls).parameters.values()
    except (TypeError, ValueError):
        return f"{cls.__name__}(...)"
    required = [
        p.name
        for p in parameters
        if p.default is p.empty and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    ]
    return f"{cls.__name__}({', '.join(f'{name}=...' for name in required)})"
