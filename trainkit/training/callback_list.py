"""Dispatch each loop hook to trainkit callbacks and to stock Keras callbacks.

trainkit hooks map onto Keras names where Keras has one (`on_val_*` -> `on_test_*`);
`on_train_iter_end` has no Keras counterpart and only reaches trainkit callbacks.
The list also keeps the run's `keras.callbacks.History` (one value per epoch), which
`train()` returns as `model.fit` does.
"""

from __future__ import annotations

from typing import Any

import keras

from trainkit.callbacks import Callback

KERAS_NAMES = {
    "on_train_begin": "on_train_begin",
    "on_train_end": "on_train_end",
    "on_epoch_begin": "on_epoch_begin",
    "on_epoch_end": "on_epoch_end",
    "on_train_batch_begin": "on_train_batch_begin",
    "on_train_batch_end": "on_train_batch_end",
    "on_val_begin": "on_test_begin",
    "on_val_batch_begin": "on_test_batch_begin",
    "on_val_batch_end": "on_test_batch_end",
    "on_val_end": "on_test_end",
}

_BACKUP_AND_RESTORE = (
    "keras.callbacks.BackupAndRestore cannot resume a TrainGenerator: it restores at "
    "epoch boundaries only, so a run stopped mid-epoch (or even right after an epoch "
    "ended) would fit finished batches again. trainkit checkpoints and resumes exactly "
    "by itself: pass `TrainGenerator(..., logs_dir='logs', resume=True)` and drop the "
    "callback. Received: callbacks=[..., BackupAndRestore(...), ...]"
)


def check_callbacks(callbacks: Any) -> list[Any]:
    """Validate the `callbacks` argument; returns a list.

    Raises:
        TypeError: for anything but trainkit or Keras callbacks.
        ValueError: for `keras.callbacks.BackupAndRestore` (use `resume=` instead).
    """
    if callbacks is None:
        return []
    if isinstance(callbacks, (Callback, keras.callbacks.Callback)):
        callbacks = [callbacks]
    if not isinstance(callbacks, (list, tuple)):
        raise TypeError(
            "`callbacks` must be a list of trainkit.callbacks.Callback or "
            f"keras.callbacks.Callback objects. Received: callbacks={callbacks!r}"
        )
    for callback in callbacks:
        if not isinstance(callback, (Callback, keras.callbacks.Callback)):
            raise TypeError(
                "Each callback must be a trainkit.callbacks.Callback or a "
                f"keras.callbacks.Callback. Received: {callback!r} in callbacks"
            )
        if isinstance(callback, keras.callbacks.BackupAndRestore):
            raise ValueError(_BACKUP_AND_RESTORE)
    return list(callbacks)


def keras_verbose(iter_verbosity: int | str) -> int:
    """Keras' `verbose` for a trainkit `iter_verbosity`: 0 silent, 'epoch' 2 (a line per
    epoch), else 1 (a bar per batch).

    Keras' `verbose=2` means *less* (one line per epoch), trainkit's 2 means more.
    """
    if iter_verbosity == "epoch":
        return 2
    return 1 if iter_verbosity else 0


class CallbackList:
    """Calls one hook on every callback, in the order the user gave them."""

    def __init__(self, callbacks: list[Any], trainer: Any):
        self.callbacks = callbacks
        self._model = trainer.model
        self._params: dict[str, Any] = {}
        # The History `train()` returns; a new one per run (at on_train_begin).
        self.history = self._new_history()
        # (bound method per callback) per trainkit hook name, resolved once.
        self._methods: dict[str, list[Any]] = {}
        for callback in callbacks:
            if isinstance(callback, Callback):
                callback.set_trainer(trainer)
            else:
                callback.set_model(trainer.model)
        for hook in [*KERAS_NAMES, "on_train_iter_end"]:
            self._methods[hook] = [m for c in callbacks if (m := _method(c, hook))]

    @property
    def quiet_between_batches(self) -> bool:
        """No callback does anything between two batches: each keeps the base's no-op
        (asked each time: a callback may install a hook while the run goes on)."""
        return all(_no_op(c, hook) for c in self.callbacks for hook in _BETWEEN_BATCHES)

    @property
    def has_progbar(self) -> bool:
        """A stock `keras.callbacks.ProgbarLogger` draws progress (trainkit's stays quiet)."""
        return any(isinstance(c, keras.callbacks.ProgbarLogger) for c in self.callbacks)

    def set_params(self, params: dict[str, Any]) -> None:
        self._params = dict(params)
        self.history.set_params(self._params)
        for callback in self.callbacks:
            if isinstance(callback, keras.callbacks.Callback):
                callback.set_params(params)

    def call(self, hook: str, *args: Any) -> None:
        if hook == "on_epoch_end":
            self._epoch_end(*args)
            return
        if hook == "on_train_begin":
            self.history = self._new_history()
        for method in self._methods[hook]:
            method(*args)

    def _epoch_end(self, epoch: int, logs: dict[str, Any]) -> None:
        # Recorded after the callbacks (they may add to logs, e.g. ReduceLROnPlateau's
        # learning_rate, as in model.fit), and also when one of them raises: the epoch
        # is complete and a re-entered train() does not call on_epoch_end again.
        try:
            for method in self._methods["on_epoch_end"]:
                method(epoch, logs)
        finally:
            self.history.on_epoch_end(epoch, dict(logs))

    def _new_history(self) -> keras.callbacks.History:
        history = keras.callbacks.History()
        history.set_model(self._model)
        history.set_params(self._params)
        history.on_train_begin()
        return history


_BETWEEN_BATCHES = ("on_train_batch_begin", "on_train_iter_end", "on_train_batch_end")
# Keras' own defaults of the batch hooks call these (a subclass may override only them).
_KERAS_FORWARDS = {"on_train_batch_begin": "on_batch_begin", "on_train_batch_end": "on_batch_end"}


def _no_op(callback: Any, hook: str) -> bool:
    """Whether `callback` does nothing at `hook` (its class's base no-op, not overridden
    in a subclass nor replaced on the instance)."""
    if isinstance(callback, Callback):
        return getattr(getattr(callback, hook), "__func__", None) is getattr(Callback, hook)
    name = KERAS_NAMES.get(hook)
    names = [name, _KERAS_FORWARDS.get(hook)] if name else []
    # Keras marks its base class's no-op hooks (`keras.src.utils.python_utils.default`);
    # without the mark a hook counts as listening.
    return all(getattr(getattr(callback, n), "_is_default", False) for n in names if n)


def _method(callback: Any, hook: str) -> Any:
    if isinstance(callback, Callback):
        return getattr(callback, hook)
    name = KERAS_NAMES.get(hook)
    return getattr(callback, name) if name else None
