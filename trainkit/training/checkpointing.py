"""The trainer's side of checkpoints: what `state.json` holds, saving, and resuming.

A checkpoint captures everything needed to continue bitwise: the model's
variables, optimizer and metric variables, stateful RNN states and Keras' global seed
(arrays file); the loop state, both generators' state dicts, callback states, Python and
NumPy RNG states, thread settings and the row counts of the run's logs (`state.json`).
"""

from __future__ import annotations

import json
import math
import os
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from trainkit import checkpoints as store
from trainkit.callbacks import Callback
from trainkit.checkpoints import RunFolder, callback_state, model_state, rng_state

if TYPE_CHECKING:
    from trainkit.training.trainer import TrainGenerator

STATE_VERSION = 1

_UNSAVED_CALLBACK = (
    "The state of callback {name} is not saved in checkpoints (trainkit knows the state of "
    "EarlyStopping, ReduceLROnPlateau, ModelCheckpoint, CSVLogger and TensorBoard, and of "
    "trainkit Callbacks through state_dict()). A resumed run starts it afresh."
)


def thread_settings(tg: TrainGenerator) -> dict[str, Any]:
    import tensorflow as tf

    return {
        "inter_op": tf.config.threading.get_inter_op_parallelism_threads(),
        "intra_op": tf.config.threading.get_intra_op_parallelism_threads(),
        "deterministic": bool(tg._settings.options["deterministic"]),
    }


def warn_unsaved_callbacks(callbacks: list[Any]) -> None:
    for callback in callbacks:
        if not isinstance(callback, Callback) and not callback_state.is_known(callback):
            warnings.warn(_UNSAVED_CALLBACK.format(name=type(callback).__name__), stacklevel=4)


# ------------------------------------------------------------------------ saving


def capture(tg: TrainGenerator) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """`(arrays, state)` of the trainer as it stands."""
    arrays, paths = model_state.capture(tg.model)
    run = tg._run
    callbacks = []
    for index, callback in enumerate(tg._callbacks.callbacks):
        if isinstance(callback, Callback):
            callbacks.append({"kind": "trainkit", "state": callback.state_dict()})
        elif callback_state.is_known(callback):
            state, extra = callback_state.capture(callback, f"callbacks/{index}")
            arrays.update(extra)
            callbacks.append({"kind": "keras", "class": type(callback).__name__, "state": state})
        else:
            callbacks.append({"kind": "unsaved", "class": type(callback).__name__})
    state = {
        "version": STATE_VERSION,
        "run_name": run.name if run else "",
        "settings": tg._settings.record(),
        "trainer": tg._state.state_dict(),
        "datagen": tg.datagen.state_dict(),
        "val_datagen": None if tg.val_datagen is None else tg.val_datagen.state_dict(),
        "callbacks": callbacks,
        "rng": rng_state.capture(),
        "threads": thread_settings(tg),
        "model_paths": paths,
        "iterations_offset": tg._iterations_offset,
        "best_checkpoint": _basename(run.best_checkpoint if run else None),
        "log_rows": tg._log_rows(),
    }
    return arrays, state


def save(tg: TrainGenerator) -> str:
    """Write a checkpoint into the run folder, prune old ones, notify callbacks."""
    run = tg._run
    if run is None:
        raise ValueError("No run folder: pass `logs_dir` to TrainGenerator to write checkpoints.")
    arrays, state = capture(tg)
    path = run.write(tg.iters_fit, arrays, state, tg.model.save, tg.max_checkpoints)
    for callback in tg._callbacks.callbacks:
        if isinstance(callback, Callback):
            callback.on_save(path)
    return path


def _basename(path: str | None) -> str | None:
    return os.path.basename(path) if path else None


def save_best(tg: TrainGenerator) -> str | None:
    """Save `model.keras` and `state.json` of a new best into `best_models_dir`."""
    if tg.best_models_dir is None:
        return None
    name = f"{tg._run.name if tg._run else tg.model_base_name}__iter{tg.iters_fit}"
    name += f"__{tg.key_metric}={tg.best_key_metric:.6g}"
    folder = os.path.join(tg.best_models_dir, name)
    os.makedirs(folder, exist_ok=True)
    tg.model.save(os.path.join(folder, store.MODEL_FILE))
    _, state = capture(tg)
    with open(os.path.join(folder, store.STATE_FILE), "w", encoding="utf-8") as file:
        json.dump(state, file, indent=1)
    return folder


# ------------------------------------------------------------------------ resuming


@dataclass
class Resumed:
    """The checkpoint a trainer continues from, read before any setting is resolved."""

    run_dir: str
    checkpoint: str
    arrays: dict[str, np.ndarray]
    state: dict[str, Any]

    @property
    def settings(self) -> dict[str, Any]:
        return dict(self.state.get("settings", {}))

    @property
    def validated(self) -> bool:
        """Whether the saved run has scored a validation (its key metric was used)."""
        return bool(self.state.get("trainer", {}).get("key_metric_history"))


def locate(logs_dir: Any, model_base_name: Any, resume: bool | str) -> Resumed | None:
    """The checkpoint that `resume` names, read; None when a new run starts.

    `resume=True` picks the newest run folder of `model_base_name` in `logs_dir` with a
    complete checkpoint (if none, a new run starts and says so); a path names a run
    folder (its newest complete checkpoint) or a checkpoint folder.
    """
    if logs_dir is None or resume is False:
        return None
    if resume is True:
        run_dir = store.find_resumable_run(str(logs_dir), str(model_base_name))
        if run_dir is None:
            print(
                f"trainkit: resume=True but {str(logs_dir)!r} holds no run of model_base_name="
                f"{model_base_name!r} with a complete checkpoint; starting a new run."
            )
            return None
        store.clean_incomplete(run_dir)
        checkpoint = store.latest_checkpoint(run_dir)
        assert checkpoint is not None  # find_resumable_run found one
    else:
        run_dir, checkpoint = _resolve_path(str(resume))
    arrays, state = store.read_checkpoint(checkpoint)
    if state.get("version") != STATE_VERSION:
        raise ValueError(
            f"{checkpoint}: checkpoint version {state.get('version')!r} is not supported; this "
            f"trainkit reads version {STATE_VERSION}. Start a new run (resume=False)."
        )
    return Resumed(run_dir, checkpoint, arrays, state)


def open_run(tg: TrainGenerator, resumed: Resumed | None) -> None:
    """Create the run folder (`tg._run`), or continue the saved run `resumed`."""
    tg._run = None
    if tg._settings.options["deterministic"]:
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()
    if tg.logs_dir is None:
        return
    warn_unsaved_callbacks(tg._callbacks.callbacks)
    if resumed is None:
        path = store.create_run_folder(str(tg.logs_dir), tg.model_base_name, tg.model_configs)
        tg._run = RunFolder(path)
        return
    best = resumed.state.get("best_checkpoint")
    tg._run = RunFolder(resumed.run_dir, os.path.join(resumed.run_dir, best) if best else None)
    restore(tg, resumed)


def _resolve_path(path: str) -> tuple[str, str]:
    if os.path.isfile(os.path.join(path, store.STATE_FILE)):
        return os.path.dirname(os.path.abspath(path)), path
    if os.path.isdir(path):
        store.clean_incomplete(path)
        latest = store.latest_checkpoint(path)
        if latest is not None:
            return path, latest
    raise FileNotFoundError(
        f"resume={path!r} is neither a checkpoint folder (holding {store.STATE_FILE}) nor a run "
        "folder with a complete checkpoint. Pass resume=True to pick the newest run in "
        "logs_dir, or the path of a run or checkpoint folder."
    )


def restore(tg: TrainGenerator, resumed: Resumed) -> None:
    """Continue from `resumed`: everything `capture` saved, put back.

    The settings were resolved from the same checkpoint before the trainer was built.
    """
    arrays, state = resumed.arrays, resumed.state
    _restore_datagens(tg, state)
    model_state.restore(tg.model, arrays, state["model_paths"], sample=_sample(tg))
    tg._state.load_state_dict(state["trainer"])
    if not tg._state.key_metric_history:  # nothing scored yet: key_metric may have changed
        tg._state.best_key_metric = -math.inf if tg.max_is_best else math.inf
    thresholds = tg.val_history.get("predict_threshold")
    if thresholds:  # a tuned threshold lives on until the next validation
        tg.predict_threshold = thresholds[-1]
    tg._iterations_offset = int(tg.model.optimizer.iterations.numpy()) - tg.iters_fit
    _restore_callbacks(tg, state["callbacks"], arrays, resumed.checkpoint)
    tg._truncate_logs(state.get("log_rows", {}))
    _check_threads(tg, state.get("threads", {}))
    rng_state.restore(state["rng"])  # last: building the model above may draw numbers


def _restore_datagens(tg: TrainGenerator, state: dict[str, Any]) -> None:
    for name in ("datagen", "val_datagen"):
        saved, datagen = state.get(name), getattr(tg, name)
        if (saved is None) != (datagen is None):
            raise ValueError(
                f"Cannot resume: the saved run {'had' if saved else 'had no'} `{name}`. Pass the "
                f"same generators as the saved run. Received: {name}={datagen!r}"
            )
        if datagen is not None:
            try:
                datagen.load_state_dict(saved)
            except ValueError as error:
                raise ValueError(f"Cannot resume `{name}`: {error}") from error


def _sample(tg: TrainGenerator) -> Any:
    """A slice to build the model's lazy variables with; the generator is left as it was."""
    for datagen in (tg.datagen, tg.val_datagen):
        if datagen is not None and not datagen.all_data_exhausted:
            state = datagen.state_dict()
            x, y = datagen.get()
            datagen.load_state_dict(state)  # get() marks the batch loaded; undo that too
            return x, tg._labels(x, y)
    return None


def _restore_callbacks(
    tg: TrainGenerator, saved: list[dict[str, Any]], arrays: dict, path: str
) -> None:
    callbacks = tg._callbacks.callbacks
    if len(saved) != len(callbacks):
        warnings.warn(
            f"The checkpoint saved {len(saved)} callbacks' states but {len(callbacks)} callbacks "
            "were passed; callback states are restored only when the lists match.",
            stacklevel=4,
        )
        return
    pending = []
    for index, (callback, entry) in enumerate(zip(callbacks, saved)):
        if isinstance(callback, Callback) and entry["kind"] == "trainkit":
            callback.load_state_dict(entry["state"])
            callback.on_load(path)
        elif entry["kind"] == "keras" and type(callback).__name__ == entry["class"]:
            pending.append((callback, entry["state"], f"callbacks/{index}"))
    # Stock Keras callbacks set themselves up in on_train_begin; the trainer calls it for
    # them on the first train() after a resume, between prepare() and restore().
    tg._resumed_keras_callbacks = [(c, s, arrays, p) for c, s, p in pending]


def _check_threads(tg: TrainGenerator, saved: dict[str, Any]) -> None:
    current = thread_settings(tg)
    if saved and saved != current:
        warnings.warn(
            f"This process runs with thread settings {current} but the checkpoint was "
            f"written with {saved}; results may differ in the last bits. Set the same "
            "tf.config.threading values (or deterministic=True in both) for a bitwise resume.",
            stacklevel=4,
        )


def resume_keras_callbacks(tg: TrainGenerator, *, call_begin: bool, stage: str = "all") -> None:
    """prepare -> on_train_begin -> restore, for stock Keras callbacks after a resume.

    `stage` 'prepare' or 'restore' runs one half, when the trainer calls on_train_begin
    for every callback itself in between.
    """
    for callback, state, arrays, prefix in tg._resumed_keras_callbacks:
        if stage in ("all", "prepare"):
            callback_state.prepare(callback, state)
        if call_begin:
            callback.on_train_begin({})
        if stage in ("all", "restore"):
            callback_state.restore(callback, state, arrays, prefix)
    if stage in ("all", "restore"):
        tg._resumed_keras_callbacks = []
