"""Dispatch each loop hook to trainkit callbacks and to stock Keras callbacks.

trainkit hooks map onto Keras names where Keras has one (`on_val_*` -> `on_test_*`);
`on_train_iter_end` has no Keras counterpart and only reaches trainkit callbacks.
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


def check_callbacks(callbacks: Any) -> list[Any]:
    """Validate the `callbacks` argument; returns a list."""
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
    return list(callbacks)


class CallbackList:
    """Calls one hook on every callback, in the order the user gave them."""

    def __init__(self, callbacks: list[Any], trainer: Any):
        self.callbacks = callbacks
        # (bound method per callback) per trainkit hook name, resolved once.
        self._methods: dict[str, list[Any]] = {}
        for callback in callbacks:
            if isinstance(callback, Callback):
                callback.set_trainer(trainer)
            else:
                callback.set_model(trainer.model)
        for hook in [*KERAS_NAMES, "on_train_iter_end"]:
            self._methods[hook] = [m for c in callbacks if (m := _method(c, hook))]

    def set_params(self, params: dict[str, Any]) -> None:
        for callback in self.callbacks:
            if isinstance(callback, keras.callbacks.Callback):
                callback.set_params(params)

    def call(self, hook: str, *args: Any) -> None:
        for method in self._methods[hook]:
            method(*args)


def _method(callback: Any, hook: str) -> Any:
    if isinstance(callback, Callback):
        return getattr(callback, hook)
    name = KERAS_NAMES.get(hook)
    return getattr(callback, name) if name else None
