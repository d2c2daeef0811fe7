"""The trainer's side of checkpoints: what `state.json` holds, saving, and resuming.

A checkpoint captures everything needed to continue bitwise (DESIGN.md §5): the model's
variables, optimizer and metric variables, stateful RNN states and Keras' global seed
(arrays file); the loop state, both generators' state dicts, callback states, Python and
NumPy RNG states, thread settings and the row counts of the run's logs (`state.json`).
"""

from __future__ import annotations

import json
import os
import warnings
from typing import TYPE_CHECKING, Any

import numpy as np

from trainkit import checkpoints as store
from trainkit.callbacks import Callback
from trainkit.checkpoints import callback_state, model_state, rng_state
from trainkit.training.frequency import parse_frequency
from trainkit.training.progress import Progress

if TYPE_CHECKING:
    from trainkit.training.trainer import TrainGenerator

STATE_VERSION = 1

# Settings a resumed run may change; every other recorded setting must match.
LOOP_CONTROL = ("epochs", "val_freq", "checkpoint_freq", "iter_verbosity", "max_checkpoints")
COMPARED = (
    "key_metric", "max_is_best", "val_metrics", "eval_fn", "input_as_labels", "class_weights",
    "val_class_weights", "reset_statefuls", "model_base_name", "model_configs", "seed",
)  # fmt: skip

# Rare options that change what is trained or how it is scored: must match on resume.
COMPARED_OPTIONS = (
    "predict_threshold", "dynamic_predict_threshold", "loss_weighted_slices_range",
    "pred_weighted_slices_range", "best_subset_size",
)  # fmt: skip

_UNSAVED_CALLBACK = (
    "The state of callback {name} is not saved in checkpoints (trainkit knows the state of "
    "EarlyStopping, ReduceLROnPlateau, ModelCheckpoint, CSVLogger and TensorBoard, and of "
    "trainkit Callbacks through state_dict()). A resumed run starts it afresh."
)


def _json_value(value: Any) -> Any:
    """Settings as JSON: frequencies as dicts, callables by name."""
    if hasattr(value, "unit") and hasattr(value, "n"):
        return {value.unit: value.n}
    if callable(value):
        return getattr(value, "__name__", type(value).__name__)
    return json.loads(json.dumps(value, default=str))


def settings_record(tg: TrainGenerator) -> dict[str, Any]:
    record = {name: _json_value(getattr(tg, name, None)) for name in (*LOOP_CONTROL, *COMPARED)}
    record["options"] = {name: _json_value(tg._options.get(name)) for name in COMPARED_OPTIONS}
    return record


def thread_settings(tg: TrainGenerator) -> dict[str, Any]:
    import tensorflow as tf

    return {
        "inter_op": tf.config.threading.get_inter_op_parallelism_threads(),
        "intra_op": tf.config.threading.get_intra_op_parallelism_threads(),
        "deterministic": bool(tg._options["deterministic"]),
    }


def warn_unsaved_callbacks(callbacks: list[Any]) -> None:
    for callback in callbacks:
        if not isinstance(callback, Callback) and not callback_state.is_known(callback):
            warnings.warn(_UNSAVED_CALLBACK.format(name=type(callback).__name__), stacklevel=4)


# ------------------------------------------------------------------------ saving


def capture(tg: TrainGenerator) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """`(arrays, state)` of the trainer as it stands."""
    arrays, paths = model_state.capture(tg.model)
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
        "run_name": os.path.basename(tg.run_dir or ""),
        "settings": settings_record(tg),
        "trainer": tg._state.state_dict(),
        "datagen": tg.datagen.state_dict(),
        "val_datagen": None if tg.val_datagen is None else tg.val_datagen.state_dict(),
        "callbacks": callbacks,
        "rng": rng_state.capture(),
        "threads": thread_settings(tg),
        "model_paths": paths,
        "iterations_offset": tg._iterations_offset,
        "best_checkpoint": os.path.basename(tg._best_checkpoint) if tg._best_checkpoint else None,
        "log_rows": tg._log_rows(),
    }
    return arrays, state


def save(tg: TrainGenerator) -> str:
    """Write a checkpoint into the run folder, prune old ones, notify callbacks."""
    assert tg.run_dir is not None
    arrays, state = capture(tg)
    path = store.write_checkpoint(
        tg.run_dir, iters_fit=tg.iters_fit, arrays=arrays, state=state, save_model=tg.model.save
    )
    tg._last_checkpoint = path
    if tg._best_pending:
        tg._best_checkpoint, tg._best_pending = path, False
    protect = [tg._best_checkpoint] if tg._best_checkpoint else []
    store.prune_checkpoints(tg.run_dir, tg.max_checkpoints, protect=protect)
    for callback in tg._callbacks.callbacks:
        if isinstance(callback, Callback):
            callback.on_save(path)
    return path


def save_best(tg: TrainGenerator) -> str | None:
    """Save `model.keras` and `state.json` of a new best into `best_models_dir`."""
    if tg.best_models_dir is None:
        return None
    name = f"{os.path.basename(tg.run_dir or tg.model_base_name)}__iter{tg.iters_fit}"
    name += f"__{tg.key_metric}={tg.best_key_metric:.6g}"
    folder = os.path.join(tg.best_models_dir, name)
    os.makedirs(folder, exist_ok=True)
    tg.model.save(os.path.join(folder, store.MODEL_FILE))
    _, state = capture(tg)
    with open(os.path.join(folder, store.STATE_FILE), "w", encoding="utf-8") as file:
        json.dump(state, file, indent=1)
    return folder


# ------------------------------------------------------------------------ resuming


def open_run(tg: TrainGenerator, resume: bool | str) -> None:
    """Create the run folder, or continue a saved run (DESIGN.md §5)."""
    tg.run_dir = None
    tg._best_checkpoint = None  # never pruned
    tg._last_checkpoint = None
    tg._best_pending = tg._new_best = False
    tg._resumed_keras_callbacks = []
    if tg._options["deterministic"]:
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()
    if tg.logs_dir is None:
        return
    warn_unsaved_callbacks(tg._callbacks.callbacks)
    tg.run_dir, checkpoint = resolve_run(tg, str(tg.logs_dir), resume)
    if checkpoint is not None:
        restore(tg, checkpoint, tg._explicit)


def adopt_setting(tg: TrainGenerator, name: str, value: Any) -> None:
    """Take a saved setting on resume (explicit arguments were kept)."""
    if name in ("val_freq", "checkpoint_freq"):
        units = (
            ("epoch", "batch", "iter") if name == "val_freq" else ("epoch", "batch", "iter", "val")
        )
        value = parse_frequency(name, value, units)
    setattr(tg, name, value)
    if name == "iter_verbosity":
        tg._progress = Progress(value, tg._options["progress_every"])


def resolve_run(tg: TrainGenerator, logs_dir: str, resume: bool | str) -> tuple[str, str | None]:
    """`(run folder, checkpoint to resume from or None)` for the `resume` argument."""
    if resume is False:
        return store.create_run_folder(logs_dir, tg.model_base_name, tg.model_configs), None
    if resume is True:
        run_dir = store.find_resumable_run(logs_dir, tg.model_base_name)
        if run_dir is None:
            print(
                f"trainkit: resume=True but {logs_dir!r} holds no run of model_base_name="
                f"{tg.model_base_name!r} with a complete checkpoint; starting a new run."
            )
            return store.create_run_folder(logs_dir, tg.model_base_name, tg.model_configs), None
        store.clean_incomplete(run_dir)
        return run_dir, store.latest_checkpoint(run_dir)
    return _resolve_path(str(resume))


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


def apply_settings(tg: TrainGenerator, saved: dict[str, Any], explicit: set[str]) -> None:
    """Explicit argument > saved value > default; compared settings must match."""
    for name in LOOP_CONTROL:
        if name not in explicit and name in saved:
            adopt_setting(tg, name, saved[name])
    current_options = settings_record(tg)["options"]
    for name, value in saved.get("options", {}).items():
        if current_options.get(name) != value:
            raise ValueError(
                f"Cannot resume: `{name}` affects what is trained or scored and differs from "
                f"the saved run (saved {value!r}). Pass the saved value or start a new run "
                f"(resume=False). Received: {name}={current_options.get(name)!r}"
            )
    for name in COMPARED:
        if name not in saved:
            continue
        current = settings_record(tg)[name]
        if name not in explicit:
            if current != saved[name]:
                adopt_setting(tg, name, saved[name])
        elif current != saved[name]:
            raise ValueError(
                f"Cannot resume: `{name}` affects what is trained and differs from the saved "
                f"run (saved {saved[name]!r}). Pass the saved value or start a new run "
                f"(resume=False). Received: {name}={current!r}"
            )


def restore(tg: TrainGenerator, path: str, explicit: set[str]) -> None:
    """Continue from the checkpoint at `path`: everything `capture` saved, put back."""
    arrays, state = store.read_checkpoint(path)
    if state.get("version") != STATE_VERSION:
        raise ValueError(f"{path}: checkpoint version {state.get('version')!r} is not supported.")
    apply_settings(tg, state["settings"], explicit)
    _restore_datagens(tg, state)
    model_state.restore(tg.model, arrays, state["model_paths"], sample=_sample(tg))
    tg._state.load_state_dict(state["trainer"])
    thresholds = tg.val_history.get("predict_threshold")
    if thresholds:  # a tuned threshold lives on until the next validation
        tg.predict_threshold = thresholds[-1]
    tg._iterations_offset = int(tg.model.optimizer.iterations.numpy()) - tg.iters_fit
    best = state.get("best_checkpoint")
    tg._best_checkpoint = os.path.join(os.path.dirname(path), best) if best else None
    _restore_callbacks(tg, state["callbacks"], arrays, path)
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
