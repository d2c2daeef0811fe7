"""State of the stock Keras callbacks trainkit knows, for checkpoints.

Keras callbacks keep their counters as attributes and have no state dicts; trainkit
saves the attributes that decide their future behaviour. Arrays (EarlyStopping's
`best_weights`) go to the checkpoint's array file. The learning rate that
ReduceLROnPlateau changes lives in the optimizer's variables, which are saved anyway.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from trainkit.checkpoints.checkpoint_dirs import CheckpointWriteError

# class name -> attributes saved (plain numbers or None).
_ATTRIBUTES: dict[str, tuple[str, ...]] = {
    "EarlyStopping": ("wait", "stopped_epoch", "best", "best_epoch"),
    "ReduceLROnPlateau": ("wait", "cooldown_counter", "best"),
    "ModelCheckpoint": (
        "best",
        "_batches_seen_since_last_saving",
        "_last_batch_seen",
        "_current_epoch",
    ),
    "TensorBoard": ("_global_train_batch", "_global_test_batch"),
    "CSVLogger": (),
}
# Stock callbacks whose behaviour does not depend on state kept across epochs.
STATELESS = {
    "History",
    "ProgbarLogger",
    "LambdaCallback",
    "LearningRateScheduler",
    "TerminateOnNaN",
    "RemoteMonitor",
}


def is_known(callback: Any) -> bool:
    name = type(callback).__name__
    return name in _ATTRIBUTES or name in STATELESS


def _to_json(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, str)):
        return value
    return float(np.asarray(value))  # non-finite: encoded by the checkpoint's writer


_NOT_JSON = (
    "Cannot checkpoint into {run_dir!r}: callback {name}'s state_dict(){where} is a "
    "{kind}, which state.json cannot hold. Return plain values from state_dict() "
    "(bool, int, float, str, None, lists, dicts with str keys; NumPy scalars and 0-d arrays "
    "are converted) and put arrays in as `.tolist()`. Nothing was written. "
    "Received: {kind} at state_dict(){where}"
)


def plain_state(state: Any, *, name: str, run_dir: str, where: str = "") -> Any:
    """`state` with NumPy scalars and 0-d arrays as Python numbers, checked for JSON.

    Used on every trainkit callback's `state_dict()` before a checkpoint is written, so
    a value `state.json` cannot hold is refused before anything reaches the disk.

    Raises:
        CheckpointWriteError: a value is not JSON (a set, an array, an object, a dict
            with non-str keys), naming the callback class `name` and the key path.
    """
    if state is None or isinstance(state, (bool, int, float, str)):
        return state
    scalar = isinstance(state, np.generic) or (isinstance(state, np.ndarray) and state.ndim == 0)
    if scalar and state.dtype.kind in "biuf":
        return state.item()
    if isinstance(state, (list, tuple)):
        return [
            plain_state(v, name=name, run_dir=run_dir, where=f"{where}[{k}]")
            for k, v in enumerate(state)
        ]
    if isinstance(state, dict):
        out = {}
        for key, value in state.items():
            if not isinstance(key, str):
                kind = f"dict key {key!r} of type {type(key).__name__}"
                raise _refused(run_dir, name, where, kind)
            out[key] = plain_state(value, name=name, run_dir=run_dir, where=f"{where}[{key!r}]")
        return out
    kind = type(state).__name__
    if isinstance(state, np.ndarray):
        kind = f"ndarray of shape {state.shape} and dtype {state.dtype}"
    raise _refused(run_dir, name, where, kind)


def _refused(run_dir: str, name: str, where: str, kind: str) -> CheckpointWriteError:
    return CheckpointWriteError(
        _NOT_JSON.format(run_dir=run_dir, name=name, where=where, kind=kind)
    )


def _from_json(value: Any) -> Any:
    # Checkpoints written before state.json was strict JSON hold infinities as strings.
    if isinstance(value, str) and value in ("inf", "-inf", "nan"):
        return float(value)
    return value


def capture(callback: Any, prefix: str) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """`(json_state, arrays)` of one stock callback; arrays keyed under `prefix`."""
    name = type(callback).__name__
    state = {a: _to_json(getattr(callback, a, None)) for a in _ATTRIBUTES.get(name, ())}
    arrays: dict[str, np.ndarray] = {}
    if name == "EarlyStopping":
        weights = getattr(callback, "best_weights", None)
        state["best_weights"] = None if weights is None else len(weights)
        for index, value in enumerate(weights or []):
            arrays[f"{prefix}/best_weights/{index}"] = np.asarray(value)
    if name == "CSVLogger":
        path = callback.filename
        state["bytes"] = os.path.getsize(path) if os.path.exists(path) else 0
    return state, arrays


def prepare(callback: Any, state: dict[str, Any]) -> None:
    """Before `on_train_begin` on resume: put files back as they were at the checkpoint."""
    if type(callback).__name__ == "CSVLogger":
        path = callback.filename
        if os.path.exists(path):
            with open(path, "r+b") as file:
                file.truncate(state.get("bytes", 0))
        callback.append = True  # reopen in append mode, keeping the header


def restore(
    callback: Any, state: dict[str, Any], arrays: dict[str, np.ndarray], prefix: str
) -> None:
    """After `on_train_begin` on resume: put the counters back."""
    for attribute in _ATTRIBUTES.get(type(callback).__name__, ()):
        if attribute in state:
            setattr(callback, attribute, _from_json(state[attribute]))
    count = state.get("best_weights")
    if count is not None:
        callback.best_weights = [arrays[f"{prefix}/best_weights/{k}"] for k in range(count)]
