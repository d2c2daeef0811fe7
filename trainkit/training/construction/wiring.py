"""How a `TrainGenerator` is put together: arguments checked, settings resolved, run resumed.

`TrainGenerator.__init__` hands its arguments here. The order matters and reads top to
bottom: refuse what can be refused from the arguments alone; resolve every setting once
(passed > saved in the checkpoint being resumed > default) under the run folder's lock;
check the data against the model and the settings; build the loop's parts; open the run
folder (or continue the saved run) last, once nothing else can refuse.
"""

from __future__ import annotations

import contextlib
import math
from typing import TYPE_CHECKING, Any

import keras

from trainkit.checkpoints.lock import lock_to_resume
from trainkit.training import checkpointing
from trainkit.training.callback_list import CallbackList, check_callbacks
from trainkit.training.construction import (
    argument_checks,
    keywords,
    preflight,
    settings,
    stateful_checks,
    strategy_checks,
)
from trainkit.training.evaluation.validation import Validation, ValidationParts
from trainkit.training.interrupts import DeferredInterrupt
from trainkit.training.loop_state import LoopState
from trainkit.training.outputs import figures
from trainkit.training.outputs.progress import Progress
from trainkit.training.outputs.run_logs import RunLogs
from trainkit.training.slices import distribute
from trainkit.training.slices.feeder import SliceFeeder
from trainkit.training.slices.steps import CompiledStep, FusedSteps, stateful_layers
from trainkit.training.slices.structure import output_names

if TYPE_CHECKING:
    from trainkit.training.trainer import TrainGenerator


def build(tg: TrainGenerator, arguments: dict[str, Any]) -> None:
    """Check `arguments` (the constructor's, by name), then wire `tg`'s parts."""
    model = arguments["model"]
    datagen = arguments["datagen"] = argument_checks.as_datagen("datagen", arguments["datagen"])
    val_datagen = argument_checks.as_datagen("val_datagen", arguments["val_datagen"])
    arguments["val_datagen"] = val_datagen
    _check_arguments(tg, arguments)
    tg._distribution = (
        None if arguments["strategy"] is None else distribute.Distribution(arguments["strategy"])
    )
    strategy_checks.check_model_strategy(model, arguments["strategy"])  # a supported strategy first
    follower = tg._distribution is not None and not tg._distribution.is_chief
    resumed, run_lock = _resolve_settings(tg, arguments, follower)
    if tg.seed is not None:
        keras.utils.set_random_seed(tg.seed)
    if tg._distribution is not None:
        strategy_checks.check_distributed(
            tg._distribution, datagen, val_datagen, tg._val.pad_val_batches,
            stateful_layers(model), tg.reset_statefuls, tg.checkpoint_freq,
        )  # fmt: skip
    tg.model, tg.datagen, tg.val_datagen = model, datagen, val_datagen
    tg._logs_dir, tg._best_models_dir = arguments["logs_dir"], arguments["best_models_dir"]
    tg.predict_threshold = tg._val.predict_threshold  # tuned per validation if dynamic
    tg.best_subset_names = []  # set_names of the last best subset
    tg._stateful_layers = stateful_layers(model)
    tg._output_names = output_names(model)  # None for a single output
    stateful_checks.check_stateful_data(
        tg._stateful_layers, datagen, val_datagen, tg.reset_statefuls, tg._val.pad_val_batches
    )
    _build_parts(tg, arguments["callbacks"])
    preflight.check_before_training(
        model, datagen, val_datagen, tg._val, tg.key_metric, tg.input_as_labels,
        replicas=1 if tg._distribution is None else tg._distribution.local_replicas,
    )  # fmt: skip
    tg._checkpoints = checkpointing.Checkpoints(
        tg, settings=tg._settings, state=tg._state, callbacks=tg._callbacks,
        run_logs=tg._logs, distribution=tg._distribution,
    )  # fmt: skip
    scope = contextlib.nullcontext() if tg._distribution is None else tg._distribution.scope()
    with scope:  # restored variables are the strategy's
        if follower:
            tg._checkpoints.open_follower(resumed, tg._distribution)
        else:
            tg._checkpoints.open_run(resumed, run_lock)
    if tg._distribution is not None:  # every worker resumed the same point
        tg._distribution.agree("the resumed iters_fit", tg.iters_fit)


def build_train_steps(tg: TrainGenerator) -> None:
    """The compiled train step and its fused form (again when `on_nonfinite` changes)."""
    tg._train_step = step(tg, "train")
    tg._fused_steps = (
        FusedSteps(tg._train_step)
        if tg._distribution is None
        else distribute.DistributedFusedSteps(tg._train_step)
    )


def step(tg: TrainGenerator, mode: str) -> Any:
    """The compiled `mode` ('train' or 'test') step, for one device or a strategy."""
    if tg._distribution is None:
        return CompiledStep(tg.model, mode, guard=mode == "train" and tg.on_nonfinite == "skip")
    if mode == "train" and tg.on_nonfinite == "skip":
        raise ValueError(
            "on_nonfinite='skip' is not supported under a tf.distribute strategy yet: "
            "use 'raise' or 'stop' (non-finite data is still caught before the step). "
            "Received: on_nonfinite='skip', strategy="
            f"{type(tg._distribution.strategy).__name__}"
        )
    return distribute.DistributedStep(tg.model, mode, tg._distribution)


def _check_arguments(tg: TrainGenerator, arguments: dict[str, Any]) -> None:
    """What the arguments alone tell: unknown options, the model, the generators."""
    datagen, val_datagen = arguments["datagen"], arguments["val_datagen"]
    keywords.check_unknown_options(type(tg).__init__, arguments["rare_options"])
    argument_checks.check_model(arguments["model"])
    argument_checks.check_datagen("datagen", datagen, required=True)
    argument_checks.check_datagen("val_datagen", val_datagen, required=False)
    if val_datagen is not None and val_datagen is datagen:
        raise ValueError(
            "`val_datagen` must be a different DataGenerator object than `datagen`: "
            "validation runs its own pass and would move the train cursor. Build a "
            "second generator on the same data if you mean to validate on it."
        )
    argument_checks.check_run_args(
        arguments["logs_dir"], arguments["best_models_dir"], arguments["resume"]
    )


def _resolve_settings(tg: TrainGenerator, arguments: dict[str, Any], follower: bool) -> Any:
    """Every setting resolved once: passed > saved (when resuming) > default.

    Under the run folder's lock: locate removes half-written checkpoints, and a trainer
    still writing that run must refuse us before anything is touched. A worker other
    than the chief only reads the chief's run folder.

    Returns:
        `(resumed, run_lock)`: the checkpoint to continue (or None) and the lock it was
        located under.
    """
    logs_dir, base, resume = (
        arguments["logs_dir"], arguments["model_base_name"], arguments["resume"]
    )  # fmt: skip
    locking = contextlib.nullcontext(None) if follower else lock_to_resume(logs_dir, base, resume)
    with locking as run_lock:
        resumed = checkpointing.locate(logs_dir, base, resume, clean=not follower)
    tg._settings = settings.resolve(
        arguments,
        tg._explicit,
        arguments["model"],
        saved=resumed.settings if resumed else None,
        saved_validated=resumed.validated if resumed else False,
    )
    return resumed, run_lock


def _build_parts(tg: TrainGenerator, callbacks: Any) -> None:
    """The loop's parts: its state, steps, slice feeder, validation and run logs."""
    tg._state = LoopState(best_key_metric=-math.inf if tg.max_is_best else math.inf)
    tg._interrupt = DeferredInterrupt()
    tg._progress = Progress(
        tg.iter_verbosity, tg._options["progress_every"],
        state=tg._state, settings=tg._settings, datagen=tg.datagen,
    )  # fmt: skip
    tg._callbacks = CallbackList(check_callbacks(callbacks), tg)
    build_train_steps(tg)
    tg._feeder = SliceFeeder(tg)  # takes, checks and fits slices; queues their records
    tg._slice = None  # the slice being accounted, once there is one
    tg.nonfinite_message = None
    tg._unhealthy = None  # why the weights in memory must not be saved
    tg._test_step = step(tg, "test")
    tg._validation = Validation(
        ValidationParts(
            trainer=tg, settings=tg._settings, state=tg._state,
            callbacks=tg._callbacks, test_step=tg._run_test_step,
            stateful_layers=tg._stateful_layers, interrupt=tg._interrupt,
            progress=tg._progress, on_new_best=tg._mark_new_best,
            distribution=tg._distribution,
        )
    )  # fmt: skip
    tg._logs = RunLogs(
        state=tg._state, model=tg.model, datagen=tg.datagen, validation=tg._val,
        tensorboard=tg._options["tensorboard"],
        tensorboard_every=tg._options["tensorboard_every"],
    )  # fmt: skip
    tg._timings = {"train": 0.0, "validation": 0.0}
    tg._new_best = False


def figure_inputs(tg: TrainGenerator) -> figures.FigureInputs:
    """What `history.png` and the report read of `tg`, as it stands now."""
    return figures.FigureInputs(
        run=tg._checkpoints.run, state=tg._state, settings=tg._settings, model=tg.model,
        datagen=tg.datagen, val_datagen=tg.val_datagen, timings=tg._timings,
        stopped=tg.nonfinite_message,
    )  # fmt: skip
