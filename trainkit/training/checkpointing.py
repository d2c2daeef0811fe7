"""The trainer's side of checkpoints: what `state.json` holds, saving, and resuming.

A checkpoint captures everything needed to continue bitwise: the model's
variables, optimizer and metric variables, stateful RNN states and Keras' global seed
(arrays file); the loop state, both generators' state dicts, callback states, Python and
NumPy RNG states, thread settings and the row counts of the run's logs (`state.json`).
The loop's histories, which grow with the run, are appended to the run folder's
`histories.jsonl` and `state.json` holds the log's mark (`state.json` version 2; a
version 1 checkpoint holds them whole and still resumes).
"""

from __future__ import annotations

import copy
import json
import math
import os
import re
import shutil
import tempfile
import warnings
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

import numpy as np

from trainkit import checkpoints
from trainkit.callbacks import Callback
from trainkit.checkpoints import RunFolder, callback_state, model_state, rng_state
from trainkit.checkpoints.atomic import write_folder
from trainkit.checkpoints.background import BackgroundWrite
from trainkit.checkpoints.checkpoint_dirs import CheckpointWriteError, dumps_state
from trainkit.checkpoints.history_log import HistoryLogError, read_histories
from trainkit.checkpoints.lock import RunLock
from trainkit.checkpoints.run_folder import abandoned_runs, safe_name
from trainkit.training.evaluation.validation import best_threshold
from trainkit.training.slices import health

if TYPE_CHECKING:
    from trainkit.training.callback_list import CallbackList
    from trainkit.training.construction.settings import TrainSettings
    from trainkit.training.loop_state import LoopState
    from trainkit.training.outputs.run_logs import RunLogs
    from trainkit.training.trainer import TrainGenerator

STATE_VERSION = 2  # 2: histories in the run's histories log; 1: whole in state.json
_READABLE_VERSIONS = (1, 2)
_CHUNK = re.compile(r"chunk-\d+\.bin")  # an offline store's chunk files

_UNSAVED_CALLBACK = (
    "The state of callback {name} is not saved in checkpoints (trainkit knows the state of "
    "EarlyStopping, ReduceLROnPlateau, ModelCheckpoint, CSVLogger and TensorBoard, and of "
    "trainkit Callbacks through state_dict()). A resumed run starts it afresh."
)


def thread_settings(deterministic: bool) -> dict[str, Any]:
    import tensorflow as tf

    return {
        "inter_op": tf.config.threading.get_inter_op_parallelism_threads(),
        "intra_op": tf.config.threading.get_intra_op_parallelism_threads(),
        "deterministic": bool(deterministic),
    }


def warn_unsaved_callbacks(callbacks: list[Any]) -> None:
    for callback in callbacks:
        if not isinstance(callback, Callback) and not callback_state.is_known(callback):
            warnings.warn(_UNSAVED_CALLBACK.format(name=type(callback).__name__), stacklevel=4)


class Checkpoints:
    """One trainer's checkpoints: its run folder, what `state.json` holds, save, resume.

    Handed its parts by name; the trainer itself is used through its public attributes
    only (`model`, the generators, counters, histories, `predict_threshold`, settings).
    """

    def __init__(
        self,
        trainer: TrainGenerator,
        *,
        settings: TrainSettings,
        state: LoopState,
        callbacks: CallbackList,
        run_logs: RunLogs,
        distribution: Any = None,
    ):
        self.trainer, self.settings, self.state = trainer, settings, state
        self.callbacks, self.run_logs = callbacks, run_logs
        self.distribution = distribution  # the strategy's layout, or None
        self.run: RunFolder | None = None
        self.lock: RunLock | None = None  # held while writing the run folder, not between
        # A follower worker's own (temporary) folder for best models; None: the trainer's.
        self.best_models_dir: str | None = None
        # optimizer.iterations when this trainer's iters_fit was 0: tells a step that
        # applied before an interrupt from one that did not.
        self.iterations_offset = int(trainer.model.optimizer.iterations.numpy())
        # Stock Keras callbacks restored from a checkpoint, waiting for on_train_begin.
        self.resumed_keras_callbacks: list[Any] = []
        self.pending: BackgroundWrite | None = None  # a checkpoint written in the background
        self._holds = 0  # nested `writing` blocks: the outermost waits for `pending`

    # ------------------------------------------------------------------ saving

    def capture(self, histories: bool = False) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """`(arrays, state)` of the trainer as it stands.

        The loop's histories are left out of `state` (a checkpoint appends them to the
        histories log) unless `histories`: a best model's `state.json` holds them whole.
        """
        tg, run = self.trainer, self.run
        arrays, paths = model_state.capture(tg.model)
        callbacks = []
        for index, callback in enumerate(self.callbacks.callbacks):
            if isinstance(callback, Callback):
                callbacks.append({"kind": "trainkit", "state": self._callback_state(callback)})
            elif callback_state.is_known(callback):
                state, extra = callback_state.capture(callback, f"callbacks/{index}")
                arrays.update(extra)
                kind = {"kind": "keras", "class": type(callback).__name__, "state": state}
                callbacks.append(kind)
            else:
                callbacks.append({"kind": "unsaved", "class": type(callback).__name__})
        state = {
            "version": STATE_VERSION,
            "run_name": run.name if run else "",
            "settings": self.settings.record(),
            "trainer": self.state.state_dict(histories=histories),
            "datagen": tg.datagen.state_dict(),
            "val_datagen": None if tg.val_datagen is None else tg.val_datagen.state_dict(),
            "callbacks": callbacks,
            "rng": rng_state.capture(),
            "threads": thread_settings(self.settings.options["deterministic"]),
            "model_paths": paths,
            "iterations_offset": self.iterations_offset,
            "best_checkpoint": _basename(run.best_checkpoint if run else None),
            "log_rows": self.run_logs.rows(),
        }
        return arrays, state

    def _callback_state(self, callback: Callback) -> Any:
        """A trainkit callback's `state_dict()`, NumPy scalars made plain, JSON checked."""
        return callback_state.plain_state(
            callback.state_dict(),
            name=type(callback).__name__,
            run_dir=self.run.path if self.run else str(self.trainer.best_models_dir),
        )

    def save(self, background: bool = False) -> str:
        """Write a checkpoint into the run folder, prune old ones, notify callbacks.

        With `background` and the rare option `async_checkpoints`, the state is
        snapshotted to host memory and `model.keras` saved here, on the training thread;
        the rest is written by a background thread while training goes on (callbacks'
        `on_save` runs once the write is waited for). Otherwise the checkpoint is
        complete when this returns. Either way the previous background write is waited
        for first (two writes never overlap) and its error raised here.

        Returns:
            The checkpoint's folder (being written, with `background`).

        Raises:
            CheckpointWriteError: this write failed, or the previous background one did.
        """
        if self.run is None:
            raise ValueError(
                "No run folder: pass `logs_dir` to TrainGenerator to write checkpoints."
            )
        with self.writing("checkpoint"):  # tg.checkpoint() between train() calls
            self.wait()  # the run folder (best, last, names) as that write left it
            arrays, state = self.capture()
            tg, run = self.trainer, self.run
            self._check_weights(arrays, state, f"The checkpoint at iters_fit={tg.iters_fit}")
            # Keras' model.save reads the live variables: on this thread, before the next
            # step changes them. The background thread reads only the snapshot.
            pending = run.begin(tg.iters_fit, tg.model.save)
            # What the histories gained since the last checkpoint, copied here: the write
            # appends it to the histories log before state.json.
            histories = run.histories.entries(self.state.histories())
            if background and self.settings.options["async_checkpoints"]:
                # A state_dict() may hand out lists the loop goes on appending to (a
                # preprocessor's, a callback's): the background thread gets its own copy.
                state = copy.deepcopy(state)
                write = partial(run.finish, pending, arrays, state, tg.max_checkpoints, histories)
                self.pending = BackgroundWrite(pending.name, write)
                return pending.final
            write = partial(run.finish, pending, arrays, state, tg.max_checkpoints, histories)
            path = write()
            self._saved(path)
        return path

    def wait(self) -> None:
        """Wait for the background write, if any, and notify callbacks of its checkpoint.

        Called before the next checkpoint, before a best model is written, and when
        `train()` or `tg.checkpoint()` ends (preempted included), before the run folder's
        lock is let go.

        Raises:
            CheckpointWriteError: the background write failed (naming the checkpoint);
                raised once.
        """
        pending, self.pending = self.pending, None
        if pending is not None:
            self._saved(pending.result())

    def _saved(self, path: str) -> None:
        for callback in self.callbacks.callbacks:
            if isinstance(callback, Callback):
                callback.on_save(path)

    def check_asked(self, unhealthy: str | None, pending: int) -> None:
        """`tg.checkpoint()` asked for a checkpoint: refuse where it would not be a good one.

        Args:
            unhealthy: why the weights in memory must not be saved (a non-finite loss's
                step), or None.
            pending: slices of a fused call fit but not yet counted.
        """
        if self.run is None:
            raise ValueError(
                "tg.checkpoint() needs a run folder: pass `logs_dir` to TrainGenerator. "
                "Received: logs_dir=None"
            )
        if unhealthy is not None:
            raise RuntimeError(
                "tg.checkpoint() refused: the model's weights in memory hold the step of a "
                "non-finite loss, so this checkpoint would not be a good one. Fix the data "
                "(or the learning rate) and resume from the last checkpoint with "
                "TrainGenerator(..., resume=True). The error was: " + unhealthy
            )
        if pending:
            raise RuntimeError(
                "tg.checkpoint() was called while the slices of one fused call "
                f"(steps_per_execution={self.trainer.steps_per_execution}) are being "
                "accounted: the model has fit slices the counters do not count yet. "
                "Checkpoint from `checkpoint_freq` (groups end where a checkpoint is due), "
                "or from a hook that runs between groups (on_epoch_end, on_val_end)."
            )

    def _check_weights(
        self, arrays: dict[str, np.ndarray], state: dict[str, Any], what: str
    ) -> None:
        health.check_weights(
            arrays, state["model_paths"], what=what,
            first_nonfinite_iter=self.state.first_nonfinite_iter,
        )  # fmt: skip

    @contextmanager
    def writing(self, action: str) -> Iterator[None]:
        """Hold the run folder's lock for the block (`train()`, `tg.checkpoint()`).

        When the outermost block ends, a background write still running is waited for
        before the lock is let go; its error is raised (or, when the block ends with
        an exception of its own, warned about and noted on that exception).

        Raises:
            RunFolderLockedError: another trainer is writing the run folder.
            RunFolderChangedError: another trainer continued the run since this one
                last held the lock.
            CheckpointWriteError: a background write failed.
        """
        if self.lock is None:  # logs_dir=None: nothing is written
            yield
            return
        with self.lock.held(action):
            self._holds += 1
            try:
                yield
            except BaseException as error:
                if self._holds == 1:
                    self._wait_noting(error)
                raise
            else:
                if self._holds == 1:
                    self.wait()
            finally:
                self._holds -= 1

    def _wait_noting(self, error: BaseException) -> None:
        """Wait for the background write while `error` ends the block: keep both errors."""
        try:
            self.wait()
        except CheckpointWriteError as failed:
            warnings.warn(str(failed), stacklevel=4)
            error.add_note(str(failed))

    def save_best(self) -> str | None:
        """Save `model.keras` and `state.json` of a new best into `best_models_dir`.

        The folder `<run>__iter<N>__<key_metric>=<value>` is named filesystem-safe (a
        metric name cannot lead outside `best_models_dir`) and written aside, then
        renamed into place; a folder of the same name is replaced whole.

        Raises:
            CheckpointWriteError: the folder could not be written; none is left half-done.
        """
        tg = self.trainer
        best_models_dir = self.best_models_dir or tg.best_models_dir
        # The background write must not see `best_is_next` (it would mark its own,
        # older checkpoint as the best) nor the run folder change under the best model.
        self.wait()
        if best_models_dir is not None:  # before anything is written
            # Histories whole: a best model's folder stands alone (no histories log), and
            # best models are written at new bests only, not at every checkpoint.
            arrays, state = self.capture(histories=True)  # may refuse callback state
            self._check_weights(arrays, state, f"The best model at iters_fit={tg.iters_fit}")
        if self.run is not None:
            self.run.best_is_next()  # the next checkpoint holds this best: never pruned
        if best_models_dir is None:
            return None
        name = f"{self.run.name if self.run else tg.model_base_name}__iter{tg.iters_fit}"
        name += f"__{tg.key_metric}={tg.best_key_metric:.6g}"
        folder = os.path.join(str(best_models_dir), safe_name(name, limit=200))

        def fill(tmp: str) -> None:
            tg.model.save(os.path.join(tmp, checkpoints.MODEL_FILE))
            with open(os.path.join(tmp, checkpoints.STATE_FILE), "w", encoding="utf-8") as file:
                file.write(dumps_state(state))  # strict JSON, as checkpoints

        return write_folder(folder, fill)

    # ------------------------------------------------------------------ resuming

    def open_run(self, resumed: Resumed | None, lock: RunLock | None = None) -> None:
        """Create the run folder, or continue the saved run `resumed`, under its lock.

        `lock` is the lock that `locate` ran under; it is taken again here and must find
        the folder as it was left (nobody continued the run meanwhile).
        """
        tg = self.trainer
        self._ops_deterministic()
        if tg.logs_dir is None:
            return
        warn_unsaved_callbacks(self.callbacks.callbacks)
        if resumed is None:
            path = checkpoints.create_run_folder(
                str(tg.logs_dir), tg.model_base_name, tg.model_configs
            )
            self.run, self.lock = RunFolder(path), RunLock(path)
            self.run_logs.open(path)
            with self.lock.held("start"):
                self.lock.claim()
            return
        if lock is None or not _same_folder(lock.run_dir, resumed.run_dir):
            lock = RunLock(resumed.run_dir, resumed.run_dir)  # locate picked another folder
        self.lock = lock
        with lock.held("resume"):  # restore truncates metrics.csv and provenance.jsonl
            lock.claim()
            best = resumed.state.get("best_checkpoint")
            best_path = os.path.join(resumed.run_dir, best) if best else None
            self.run = RunFolder(resumed.run_dir, best_path)
            self.run_logs.open(resumed.run_dir)
            self.restore(resumed)

    def open_follower(self, resumed: Resumed | None, distribution: Any) -> None:
        """A worker other than the chief: its run folder is a temporary one, removed later.

        Every worker saves at the same points (saving may read distributed variables,
        which is collective), as TensorFlow's multi-worker convention has it; only the
        chief's copy is kept. Its best models go to the temporary folder too, never
        into the chief's `best_models_dir`. A resumed follower reads the chief's
        checkpoint.
        """
        tg = self.trainer
        self._ops_deterministic()  # as on the chief: every worker computes gradients
        scratch = tempfile.mkdtemp(prefix=f"trainkit-worker{distribution.worker_index}-")
        weakref.finalize(self, shutil.rmtree, scratch, True)
        if tg.best_models_dir is not None:
            self.best_models_dir = os.path.join(scratch, "best_models")
        if tg.logs_dir is not None:
            path = checkpoints.create_run_folder(scratch, tg.model_base_name, tg.model_configs)
            self.run, self.lock = RunFolder(path), RunLock(path)
            self.run_logs.open(path)
            with self.lock.held("start"):
                self.lock.claim()
        if resumed is not None:
            self.restore(resumed, truncate_logs=False)

    def _ops_deterministic(self) -> None:
        if self.settings.options["deterministic"]:
            import tensorflow as tf

            tf.config.experimental.enable_op_determinism()

    def restore(self, resumed: Resumed, truncate_logs: bool = True) -> None:
        """Continue from `resumed`: everything `capture` saved, put back.

        The settings were resolved from the same checkpoint before the trainer was built.
        """
        tg, arrays, state = self.trainer, resumed.arrays, resumed.state
        _restore_datagens(tg, state, adopt_shards=self.distribution is not None)
        distribution = self.distribution
        model_state.restore(
            tg.model, arrays, state["model_paths"], sample=self._sample(),
            build=None if distribution is None else distribution.build,
        )  # fmt: skip
        self.state.load_state_dict(state["trainer"])  # histories read from the log by `locate`
        if truncate_logs and self.run is not None:  # the log continues from the checkpoint
            self.run.histories.resume(state.get("histories"), self.state.histories())
        if not self.state.key_metric_history:  # nothing scored yet: key_metric may differ
            self.state.best_key_metric = -math.inf if tg.max_is_best else math.inf
        # The tuned threshold kept is the best model's, until a better validation.
        best = best_threshold(tg.val_history, tg.key_metric_history, tg.best_key_metric)
        if best is not None:
            tg.predict_threshold = best
        self.iterations_offset = int(tg.model.optimizer.iterations.numpy()) - tg.iters_fit
        self._restore_callbacks(state["callbacks"], arrays, resumed.checkpoint)
        if truncate_logs:
            self.run_logs.truncate(state.get("log_rows", {}))
        self._check_threads(state.get("threads", {}))
        rng_state.restore(state["rng"])  # last: building the model above may draw numbers

    def _sample(self) -> Any:
        """A slice to build the model's lazy variables with; generators left as they were."""
        tg = self.trainer
        for datagen in (tg.datagen, tg.val_datagen):
            if datagen is not None and not datagen.all_data_exhausted:
                state = datagen.state_dict()
                x, y, *_ = datagen.get()  # (x, y) or (x, y, sample_weight)
                datagen.load_state_dict(state)  # get() marks the batch loaded; undo that too
                return x, x if self.settings.input_as_labels else y
        return None

    def _restore_callbacks(self, saved: list[dict[str, Any]], arrays: dict, path: str) -> None:
        callbacks = self.callbacks.callbacks
        if len(saved) != len(callbacks):
            warnings.warn(
                f"The checkpoint saved {len(saved)} callbacks' states but {len(callbacks)} "
                "callbacks were passed; callback states are restored only when the lists match.",
                stacklevel=5,
            )
            return
        pending = []
        for index, (callback, entry) in enumerate(zip(callbacks, saved)):
            if isinstance(callback, Callback) and entry["kind"] == "trainkit":
                callback.load_state_dict(entry["state"])
                callback.on_load(path)
            elif entry["kind"] == "keras" and type(callback).__name__ == entry["class"]:
                pending.append((callback, entry["state"], arrays, f"callbacks/{index}"))
        # Stock Keras callbacks set themselves up in on_train_begin; the trainer calls it
        # for them on the first train() after a resume, between prepare() and restore().
        self.resumed_keras_callbacks = pending

    def _check_threads(self, saved: dict[str, Any]) -> None:
        current = thread_settings(self.settings.options["deterministic"])
        if saved and saved != current:
            warnings.warn(
                f"This process runs with thread settings {current} but the checkpoint was "
                f"written with {saved}; results may differ in the last bits. Set the same "
                "tf.config.threading values (or deterministic=True in both) for a bitwise "
                "resume.",
                stacklevel=5,
            )

    def resume_keras_callbacks(self, *, call_begin: bool, stage: str = "all") -> None:
        """prepare -> on_train_begin -> restore, for stock Keras callbacks after a resume.

        `stage` 'prepare' or 'restore' runs one half, when the trainer calls
        on_train_begin for every callback itself in between.
        """
        for callback, state, arrays, prefix in self.resumed_keras_callbacks:
            if stage in ("all", "prepare"):
                callback_state.prepare(callback, state)
            if call_begin:
                callback.on_train_begin({})
            if stage in ("all", "restore"):
                callback_state.restore(callback, state, arrays, prefix)
        if stage in ("all", "restore"):
            self.resumed_keras_callbacks = []


def _same_folder(first: str, second: str) -> bool:
    return os.path.realpath(first) == os.path.realpath(second)


def _basename(path: str | None) -> str | None:
    return os.path.basename(path) if path else None


def _restore_datagens(tg: TrainGenerator, state: dict[str, Any], adopt_shards: bool) -> None:
    for name in ("datagen", "val_datagen"):
        saved, datagen = state.get(name), getattr(tg, name)
        if (saved is None) != (datagen is None):
            raise ValueError(
                f"Cannot resume: the saved run {'had' if saved else 'had no'} `{name}`. Pass the "
                f"same generators as the saved run. Received: {name}={datagen!r}"
            )
        if datagen is not None:
            if adopt_shards and saved is not None:
                # Every worker's cursor is the global cursor: a state saved on another
                # number of workers continues here with this worker's shard.
                count = datagen.fingerprint()["shard_count"]
                fingerprint = {**saved["fingerprint"], "shard_count": count}
                saved = {**saved, "fingerprint": fingerprint}
            try:
                datagen.load_state_dict(saved)
            except ValueError as error:
                raise ValueError(f"Cannot resume `{name}`: {error}") from error


# ------------------------------------------------------------------------ locating

# Keys every state.json of this version holds; a checkpoint without one is damaged.
_STATE_KEYS = (
    "version", "settings", "trainer", "datagen", "val_datagen", "callbacks", "rng",
    "model_paths", "log_rows", "histories",
)  # fmt: skip
_STATE_KEYS_V1 = _STATE_KEYS[:-1]  # histories whole in "trainer"
_ALL_DAMAGED = (
    "Cannot resume {run_dir!r}: none of its checkpoints is intact ({details}). Nothing was "
    "deleted. Restore a checkpoint from a backup, pass resume=<an intact checkpoint folder>, "
    "or start a new run with resume=False. Received: resume={resume!r}"
)
_DAMAGED_PATH = (
    "resume={path!r} names a damaged checkpoint: {problems}. Pass its run folder, "
    "resume={run_dir!r}, to resume from the newest intact checkpoint (damaged ones are "
    "skipped and left in place). Received: resume={path!r}"
)


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


def locate(
    logs_dir: Any, model_base_name: Any, resume: bool | str, clean: bool = True
) -> Resumed | None:
    """The checkpoint that `resume` names, read and verified; None when a new run starts.

    `resume=True` picks the newest run folder of `model_base_name` in `logs_dir` with a
    checkpoint (if none, a new run starts and says so); a path names a run folder or a
    checkpoint folder. In a run folder the newest intact checkpoint is used: each damaged
    one newer than it is skipped with a warning naming it and what is wrong.

    `clean=False` reads only: half-written checkpoints are left to the folder's writer.

    Raises:
        ValueError: no checkpoint of the run folder is intact, or the checkpoint folder
            passed is damaged (naming what is wrong); or its version is not supported.
    """
    if logs_dir is None or resume is False:
        return None
    if resume is True:
        run_dir = checkpoints.find_resumable_run(str(logs_dir), str(model_base_name))
        _name_abandoned(str(logs_dir), str(model_base_name), run_dir)
        if run_dir is None:
            print(
                f"trainkit: resume=True but {str(logs_dir)!r} holds no run of model_base_name="
                f"{model_base_name!r} with a checkpoint; starting a new run."
            )
            return None
        return _newest_intact(run_dir, resume, stacklevel=4, clean=clean)
    return _resolve_path(str(resume), clean)


def _name_abandoned(logs_dir: str, model_base_name: str, resumed: str | None) -> None:
    """Say which run folders `resume=True` passes over: runs stopped before their first
    checkpoint. They are left as they are (one may be a run still starting elsewhere)."""
    for path in abandoned_runs(logs_dir, model_base_name):
        leftovers = sorted(n for n in os.listdir(path) if n.startswith(".tmp-ckpt-"))
        partial = f" and a half-written checkpoint {leftovers}" if leftovers else ""
        print(
            f"trainkit: {path!r} holds no checkpoint (a run stopped before its first one; "
            f"partial logs{partial}): resume=True does not continue it"
            + (f"; it continues {os.path.basename(resumed)!r}" if resumed else "; a new run starts")
            + ". It is left in place: delete it if you do not need its logs."
        )


def _resolve_path(path: str, clean: bool = True) -> Resumed:
    if _is_offline_store(path):
        raise ValueError(
            f"resume={path!r} is an offline store written by write_store (data, not a "
            "checkpoint). Serve it with DataGenerator(data_path=...), and pass resume=True "
            f"or the path of a run or checkpoint folder. Received: resume={path!r}"
        )
    if checkpoints.is_checkpoint_folder(path):
        run_dir = os.path.dirname(os.path.abspath(path))
        try:
            return _read(run_dir, path)
        except checkpoints.CheckpointDamagedError as error:
            problems = "; ".join(error.problems)
            message = _DAMAGED_PATH.format(path=path, problems=problems, run_dir=run_dir)
            raise ValueError(message) from error
    if os.path.isdir(path) and checkpoints.checkpoint_folders(path):
        return _newest_intact(path, path, stacklevel=5, clean=clean)
    raise FileNotFoundError(
        f"resume={path!r} is neither a checkpoint folder "
        f"('{checkpoints.CHECKPOINT_PREFIX}*') nor a run folder holding one. Pass "
        "resume=True to pick the newest run in logs_dir, or the path of a run or checkpoint "
        f"folder. Received: resume={path!r}"
    )


def _is_offline_store(path: str) -> bool:
    """A folder `write_store` wrote: chunk files, its progress file, or its manifest format."""
    if not os.path.isdir(path):
        return False
    names = os.listdir(path)
    if "progress.json" in names or any(_CHUNK.fullmatch(name) for name in names):
        return True
    try:
        with open(os.path.join(path, checkpoints.MANIFEST_FILE), encoding="utf-8") as file:
            manifest = json.load(file)
    except (OSError, ValueError):
        return False
    return isinstance(manifest, dict) and manifest.get("format") == "trainkit-offline-store"


def _newest_intact(
    run_dir: str, resume: bool | str, stacklevel: int, clean: bool = True
) -> Resumed:
    """The newest checkpoint of `run_dir` that reads and verifies; warns for each skipped."""
    if clean:
        checkpoints.clean_incomplete(run_dir)
    damaged: list[checkpoints.CheckpointDamagedError] = []
    for checkpoint in reversed(checkpoints.checkpoint_folders(run_dir)):
        try:
            resumed = _read(run_dir, checkpoint)
        except checkpoints.CheckpointDamagedError as error:
            damaged.append(error)
            warnings.warn(
                f"{error} Skipping it (it is left in place) and trying the checkpoint before it.",
                stacklevel=stacklevel,
            )
            continue
        if damaged:
            print(f"trainkit: resuming from {checkpoint!r}, the newest intact checkpoint.")
        return resumed
    details = "; ".join(f"{os.path.basename(e.path)}: {', '.join(e.problems)}" for e in damaged)
    raise ValueError(_ALL_DAMAGED.format(run_dir=run_dir, details=details, resume=resume))


def _read(run_dir: str, checkpoint: str) -> Resumed:
    """The checkpoint, verified, with the histories of its log put back into "trainer"."""
    arrays, state = checkpoints.read_checkpoint(checkpoint)
    if "version" in state and state["version"] not in _READABLE_VERSIONS:
        raise ValueError(
            f"{checkpoint}: checkpoint version {state.get('version')!r} is not supported; this "
            f"trainkit reads versions {list(_READABLE_VERSIONS)}. Start a new run (resume=False)."
        )
    problems = _state_problems(checkpoint, arrays, state)
    if problems:
        raise checkpoints.CheckpointDamagedError(checkpoint, problems)
    if "histories" in state:  # version 2: the log up to the checkpoint's mark
        name, iters = os.path.basename(checkpoint), state["trainer"]["iters_fit"]
        try:
            histories = read_histories(run_dir, state["histories"], name, iters)
        except HistoryLogError as error:
            raise checkpoints.CheckpointDamagedError(
                checkpoint, [str(error).rstrip(".")]
            ) from error
        state["trainer"].update(histories)
    return Resumed(run_dir, checkpoint, arrays, state)


def _state_problems(checkpoint: str, arrays: dict[str, Any], state: dict[str, Any]) -> list[str]:
    """What in a parsed `state.json` disagrees with itself, its folder or `arrays.npz`."""
    required = _STATE_KEYS_V1 if state.get("version") == 1 else _STATE_KEYS
    missing = [key for key in required if key not in state]
    if missing:
        return [f"{checkpoints.STATE_FILE} lacks {missing}"]
    shapes = {"trainer": dict, "model_paths": dict, "log_rows": dict, "callbacks": list}
    if "histories" in required:
        shapes["histories"] = dict
    wrong = [key for key, kind in shapes.items() if not isinstance(state[key], kind)]
    if wrong:
        return [f"{checkpoints.STATE_FILE} holds values of the wrong type under {wrong}"]
    problems = []
    iters = state["trainer"].get("iters_fit")
    named = checkpoints.checkpoint_iters(checkpoint)
    if not isinstance(iters, int) or (named is not None and iters != named):
        problems.append(f"{checkpoints.STATE_FILE} records iters_fit={iters!r}, its folder {named}")
    provenance = state["log_rows"].get("provenance_iters", iters)
    if provenance != iters:
        problems.append(f"{checkpoints.STATE_FILE} records provenance_iters={provenance!r}")
    paths = state["model_paths"]
    keys = [f"{group}/{index}" for group, names in paths.items() for index in range(len(names))]
    absent = [key for key in keys if key not in arrays]
    if absent:
        problems.append(f"{checkpoints.ARRAYS_FILE} lacks {len(absent)} arrays, e.g. {absent[:3]}")
    return problems
