"""Validation of `TrainGenerator`'s arguments, in one place.

Every keyword is checked when the trainer is built: unknown keys name the closest
valid one, types and ranges say what was received and what is expected. Arguments
whose feature belongs to a later part of trainkit are accepted by name but refused
with `NotImplementedError` when set, rather than silently ignored.
"""

from __future__ import annotations

import difflib
import functools
import inspect
import numbers
import os
import warnings
from typing import Any

from trainkit._validation import (
    check_bool,
    check_choice,
    check_int,
    check_unknown_keys,
    describe,
)
from trainkit.data.sources.indexed import is_py_dataset, py_dataset_batch_size
from trainkit.training.sample_weights import check_class_weights, check_weight_range
from trainkit.training.scoring import ValidationSettings, resolve_model_val_metrics

# Rare options and their defaults: `TrainGenerator(..., progress_every=10)`.
RARE_OPTIONS: dict[str, Any] = {
    "progress_every": 1,  # with iter_verbosity=1, print one line per this many batches
    "defer_interrupts": True,  # hold Ctrl-C until the next slice boundary
    "deterministic": False,  # TensorFlow op determinism; thread settings go in checkpoints
    # Redraw history.png and the report (with logs_dir) this often, e.g. {'epoch': 1};
    # None: only when train() ends, so drawing stays a small share of a short run.
    "plot_history_freq": None,
    "tensorboard": False,  # write TensorBoard scalars to <run folder>/tensorboard
    # With tensorboard=True, train scalars every this many batches (each write costs
    # about 1 ms per metric in TensorFlow's eager summaries; metrics.csv has every batch).
    "tensorboard_every": 10,
    # Log gradient norms and weight health to <run folder>/introspection.jsonl this often
    # (a frequency like checkpoint_freq: 'iter', 'batch' or 'epoch'); None: never.
    "introspect_freq": None,
    # Check each slice's inputs, labels and sample weights for NaN/inf on the host before
    # it is fit (on_nonfinite 'raise', 'stop' or 'skip'); False leaves it to the loss.
    "check_finite_data": True,
    # Write each checkpoint's arrays, state.json and manifest in a background thread while
    # training continues (docs/checkpoints.md); the write is waited for before the next.
    "async_checkpoints": False,
    # Validation and prediction (docs/validation.md):
    "predict_threshold": 0.5,  # binary decision threshold of thresholded val_metrics
    "dynamic_predict_threshold": False,  # tune the threshold on each validation
    "loss_weighted_slices_range": None,  # (first, last) sample weights across slices
    "pred_weighted_slices_range": None,  # (first, last) weights to combine slice outputs
    "best_subset_size": None,  # score validation on its best subset of this many batches
    "pad_val_batches": False,  # pad partial validation batches to a fixed model batch size
}

# Metric directions by name, as Keras' monitor callbacks decide `mode='auto'`: a name
# neither list knows is refused as `key_metric` unless `max_is_best` is given.
_MIN_IS_BEST_NAMES = {
    "mae", "mse", "rmse", "mape", "msle", "kld", "hinge", "logcosh", "poisson",
    "kl_divergence", "log_cosh", "squared_hinge", "categorical_hinge",
    "false_positives", "false_negatives", "fpr", "fnr",
}  # fmt: skip
_MIN_IS_BEST_SUFFIXES = ("loss", "error", "crossentropy")
_MAX_IS_BEST_NAMES = {
    "accuracy", "acc", "auc", "roc_auc", "pr_auc", "r2", "r2_score", "tpr", "tnr",
    "sensitivity", "specificity", "true_positives", "true_negatives", "iou", "mean_iou",
    "cosine_similarity", "fbeta_score", "mean_io_u", "one_hot_io_u", "one_hot_mean_io_u",
}  # fmt: skip
# f1, f1_macro, precision_weighted, recall_at_precision, sparse_categorical_accuracy, ...
_MAX_IS_BEST_PREFIXES = ("f1", "precision", "recall")
_MAX_IS_BEST_SUFFIXES = ("accuracy", "_auc", "_iou", "_at_sensitivity", "_at_specificity")

_UNKNOWN_DIRECTION = (
    "trainkit cannot tell whether key_metric={key_metric!r} is better higher or lower "
    "(it knows losses, errors, mse/mae/..., false_positives/false_negatives as lower is "
    "better and accuracy, auc, f1*, precision*, recall*, r2, tpr, tnr, true_positives, "
    "... as higher is better). Pass `max_is_best=True` if a higher {key_metric!r} is "
    "better, `max_is_best=False` if lower is. Received: key_metric={key_metric!r}, "
    "max_is_best=None"
)

# `model.fit` keywords, with how trainkit does the same thing.
FIT_KEYWORDS = {
    "validation_data": "pass validation data as a second DataGenerator: "
    "`TrainGenerator(model, datagen, val_datagen=DataGenerator(data=x_val, labels=y_val))`.",
    "validation_split": "split the data yourself and pass the held-out part as "
    "`val_datagen=DataGenerator(data=x_val, labels=y_val)`.",
    "validation_freq": "use `val_freq={'epoch': n}` (or {'batch': n}, {'iter': n}).",
    "initial_epoch": "trainkit has no initial_epoch: `epochs` is the absolute total, and a "
    "run continues from its checkpoint where it stopped, mid-epoch included: pass "
    "`logs_dir=...` and `resume=True` (or the run/checkpoint folder), or raise "
    "`tg.epochs` and call `tg.train()` again.",
    "steps_per_epoch": "an epoch is one pass of the DataGenerator, `len(datagen)` batches; "
    "its `batch_size` (and the data) decide the steps.",
    "validation_steps": "validation is one pass of `val_datagen`, `len(val_datagen)` batches.",
    "batch_size": "set `batch_size` on the DataGenerator: `DataGenerator(..., batch_size=32)`.",
    "shuffle": "set `shuffle` on the DataGenerator: `DataGenerator(..., shuffle=True)`.",
    "verbose": "use `iter_verbosity` (0 silent, 1 a line per batch, 2 a line per slice too).",
    "class_weight": "use `class_weights={class: weight}` (`val_class_weights` for validation).",
    "sample_weight": "trainkit takes no sample_weight array: `class_weights={class: weight}` "
    "weighs samples by their label's class; for per-sample weights, have the "
    "preprocessor's `process()` return `(x, y, sample_weight)` for each slice; "
    "`loss_weighted_slices_range=(first, last)` weighs a batch's slices linearly.",
    "x": "data goes in the DataGenerator: `DataGenerator(data=x, labels=y, batch_size=32)`.",
    "y": "labels go in the DataGenerator: `DataGenerator(data=x, labels=y, batch_size=32)`.",
}

_PARTIAL_BATCH_WITH_STATEFUL = (
    "The model has stateful layers ({layers}), which need every batch to hold "
    "exactly batch_size={batch_size} samples, but `{name}` serves a partial batch of "
    "{size} samples. Build the generator with `drop_remainder=True` (or pick a "
    "batch_size that divides the number of samples){pad}. Received: {name}={datagen!r}"
)
_PAD_HINT = {"val_datagen": ", or pass `pad_val_batches=True` to score every sample"}
_STATEFUL_WITHOUT_RESET = (
    "The model has stateful layers ({layers}) and reset_statefuls=False: their states "
    "carry over from batch to batch and are never reset by the trainer. Pass "
    "`reset_statefuls=True` to reset them after the last slice of each batch."
)


def metric_direction(name: str) -> bool | None:
    """True if a higher `name` is better, False if lower is, None if unknown.

    A per-output name (`'out1_f1'`, as Keras and predict mode name the metrics of a
    model with several outputs) takes the direction of the metric after the prefix.
    """
    name = name.lower().removeprefix("val_")
    direction = _direction(name)
    parts = name.split("_")
    for start in range(1, len(parts)):
        if direction is not None:
            break
        direction = _direction("_".join(parts[start:]))
    return direction


def _direction(name: str) -> bool | None:
    if name in _MIN_IS_BEST_NAMES or name.endswith(_MIN_IS_BEST_SUFFIXES):
        return False
    if (
        name in _MAX_IS_BEST_NAMES
        or name.startswith(_MAX_IS_BEST_PREFIXES)
        or name.endswith(_MAX_IS_BEST_SUFFIXES)
    ):
        return True
    return None


def default_max_is_best(key_metric: str) -> bool:
    """False for losses and errors (`loss`, `*_error`, `mse`, ...), True for scores.

    Scores: `accuracy`, `auc`, `f1*`, `precision*`, `recall*`, `r2`, `tpr`, `tnr`, ...

    Raises:
        ValueError: for a name whose direction is unknown (pass `max_is_best`).
    """
    direction = metric_direction(key_metric)
    if direction is None:
        raise ValueError(_UNKNOWN_DIRECTION.format(key_metric=key_metric))
    return direction


def check_unknown_options(signature_of: Any, rare_options: dict[str, Any]) -> None:
    """Unknown keywords (typos land in **rare_options) -> ValueError with a suggestion.

    `model.fit` keywords (`validation_data`, `initial_epoch`, ...) get the trainkit way
    of doing the same; other names the closest valid one.
    """
    for key, value in rare_options.items():
        if key in FIT_KEYWORDS:
            raise ValueError(
                f"TrainGenerator does not take `{key}` (a model.fit argument): "
                f"{FIT_KEYWORDS[key]} Received: {key}={_short(value)}"
            )
    params = inspect.signature(signature_of).parameters
    valid = [p for p, v in params.items() if v.kind == v.KEYWORD_ONLY] + list(RARE_OPTIONS)
    check_unknown_keys("TrainGenerator", rare_options, valid)


def _short(value: Any) -> str:
    """A short description of a value: never an array's contents."""
    shape = getattr(value, "shape", None)
    if shape is not None:
        return f"<{type(value).__name__} of shape {tuple(shape)}>"
    if isinstance(value, (list, tuple, dict)) and len(value) > 4:
        return f"<{type(value).__name__} of length {len(value)}>"
    text = repr(value)
    return text if len(text) <= 80 else f"<{type(value).__name__}>"


def check_rare_options(rare_options: dict[str, Any]) -> dict[str, Any]:
    options = {**RARE_OPTIONS, **rare_options}
    check_int("progress_every", options["progress_every"], minimum=1)
    check_bool("defer_interrupts", options["defer_interrupts"])
    check_bool("deterministic", options["deterministic"])
    check_bool("tensorboard", options["tensorboard"])
    check_bool("check_finite_data", options["check_finite_data"])
    check_bool("async_checkpoints", options["async_checkpoints"])
    check_int("tensorboard_every", options["tensorboard_every"], minimum=1)
    return options


def check_key_metric(key_metric: Any, max_is_best: Any) -> tuple[str, bool]:
    """`key_metric` and its direction: `max_is_best` as given, else by the name.

    Raises:
        ValueError: `max_is_best=None` with a name whose direction is unknown.
    """
    if not isinstance(key_metric, str) or not key_metric:
        raise TypeError(
            "`key_metric` must be a metric name such as 'loss' or 'accuracy'. "
            f"Received: key_metric={key_metric!r}"
        )
    if max_is_best is None:
        return key_metric, default_max_is_best(key_metric)
    return key_metric, check_bool("max_is_best", max_is_best)


def check_model(model: Any) -> None:
    import keras

    if not isinstance(model, keras.Model):
        raise TypeError(f"`model` must be a keras.Model. Received: model={model!r}")
    if getattr(model, "optimizer", None) is None or not getattr(model, "compiled", True):
        raise ValueError(
            "`model` must be compiled: call model.compile(optimizer, loss, metrics) "
            f"before building the TrainGenerator. Received: model={model.name!r}"
        )


_TUPLE_AS_DATAGEN = (
    " A tuple of arrays is the model.fit habit; trainkit serves them through a generator: "
    "TrainGenerator(model, DataGenerator(data=x, labels=y, batch_size=...))."
)
_TF_DATASET_AS_DATAGEN = (
    " A tf.data.Dataset cannot resume exactly: it has no random access (batch i is reached "
    "only by iterating through the batches before it), so trainkit can neither serve the "
    "batches of its epoch plan (shuffled, sharded) nor restart mid-epoch. Give trainkit "
    "what the dataset reads instead: arrays or files, DataGenerator(data=x, labels=y, "
    "batch_size=...), or an object with __len__ and __getitem__ (a keras.utils.PyDataset, "
    "or one sample per index) as DataGenerator(data=source, batch_size=...); put the "
    "dataset's map() augmentation in a trainkit Preprocessor."
)
_PY_DATASET_AS_DATAGEN = (
    " Wrap the PyDataset in a DataGenerator, which serves its batch i as set str(i) and "
    "resumes exactly: TrainGenerator(model, DataGenerator(data=py_dataset, "
    "batch_size=<its batch size>))."
)


def check_datagen(name: str, datagen: Any, required: bool) -> None:
    if datagen is None and not required:
        return
    needed = ("get", "update_state", "on_epoch_end", "state_dict")
    if not all(callable(getattr(datagen, attr, None)) for attr in needed):
        raise TypeError(
            f"`{name}` must be a trainkit.DataGenerator (or follow its protocol: "
            f"{', '.join(needed)}).{_datagen_hint(datagen)} Received: {name}={describe(datagen)}"
        )


def _datagen_hint(datagen: Any) -> str:
    """How to turn what was passed as `datagen` into a DataGenerator."""
    if hasattr(datagen, "shape") and hasattr(datagen, "dtype"):
        return (
            " TrainGenerator takes generators, not arrays (the model.fit habit): wrap "
            "them, e.g. TrainGenerator(model, DataGenerator(data=x, labels=y, "
            "batch_size=32), DataGenerator(data=x_val, labels=y_val))."
        )
    if isinstance(datagen, (tuple, list)) and len(datagen) in (2, 3):
        return _TUPLE_AS_DATAGEN
    if any(cls.__name__.endswith("DatasetV2") or cls.__name__ == "DatasetV1"
           for cls in type(datagen).__mro__):  # fmt: skip
        return _TF_DATASET_AS_DATAGEN
    if is_py_dataset(datagen):
        return _PY_DATASET_AS_DATAGEN
    return ""


def as_datagen(name: str, datagen: Any) -> Any:
    """`datagen`, or a DataGenerator over it when it is a `keras.utils.PyDataset`.

    The PyDataset's batch i is set str(i) and its first batch's size is the batch size,
    so the wrapped generator serves its batches as they are, in order, resuming exactly.
    """
    if datagen is None or not is_py_dataset(datagen):
        return datagen
    from trainkit.data import DataGenerator

    return DataGenerator(data=datagen, batch_size=py_dataset_batch_size(datagen, name))


def check_model_strategy(model: Any, strategy: Any) -> None:
    """A model built and compiled under another scope than `strategy`'s is refused.

    TensorFlow would fail at the first step ("Mixing different tf.distribute.Strategy
    objects"); the variables say it now: each records the strategy it was created under.
    """
    if strategy is None:
        return
    optimizer = getattr(model, "optimizer", None)
    probes = list(model.weights[:1]) + list(getattr(optimizer, "variables", [])[:1])
    for variable in probes:
        owner = getattr(getattr(variable, "value", variable), "_distribute_strategy", None)
        if owner is not strategy:
            where = "outside any strategy's scope" if owner is None else "in another strategy"
            raise ValueError(
                f"The model's variable {variable.path!r} was created {where}: build and "
                "compile the model under the strategy you pass, "
                "`with strategy.scope(): model = build_model(); model.compile(...)`, then "
                "TrainGenerator(model, ..., strategy=strategy). "
                f"Received: strategy={type(strategy).__name__}"
            )


def check_distributed(
    distribution: Any,
    datagen: Any,
    val_datagen: Any,
    pad: bool,
    stateful: list[Any] | None = None,
    reset_statefuls: bool = False,
    checkpoint_freq: Any = None,
) -> None:
    """Refuse what a strategy cannot train; give each generator its worker's shard."""
    if stateful and (not reset_statefuls or getattr(checkpoint_freq, "unit", None) == "iter"):
        names = ", ".join(layer.name for layer in stateful)
        raise NotImplementedError(
            f"Stateful layers ({names}) under a tf.distribute strategy need "
            "reset_statefuls=True and a checkpoint_freq by 'batch', 'epoch' or 'val': each "
            "replica keeps the states of its own rows, and checkpoints hold them only where "
            "they are reset (batch ends). Received: reset_statefuls="
            f"{reset_statefuls}, checkpoint_freq={checkpoint_freq}"
        )
    if pad:
        raise NotImplementedError(
            "pad_val_batches=True is not supported under a tf.distribute strategy: the "
            "replicas already split each slice. Leave pad_val_batches=False."
        )
    for name, dg in (("datagen", datagen), ("val_datagen", val_datagen)):
        if dg is not None:
            shard_for(distribution, name, dg)


def shard_for(distribution: Any, name: str, dg: Any, check_rows: bool = True) -> None:
    """Give `dg` this worker's shard (unless it has one), after checking it can be split.

    `check_rows=False`: the slices are not split across replicas (predictions on one
    worker), so a batch may hold fewer rows than there are replicas.
    """
    store = getattr(dg, "_store", None)
    if store is not None:
        _check_store_rows(distribution, name, store, check_rows)
        return
    if getattr(dg, "shard", None) is None:
        short = [b for b in dg.plan(0) if b.size < distribution.replicas]
        if short and check_rows:
            raise ValueError(
                f"`{name}` serves batch {short[0].set_name!r} of {short[0].size} samples, "
                f"fewer than the strategy's {distribution.replicas} replicas (each "
                "replica needs at least one row of every batch). Pass drop_remainder=True "
                "to skip the short last batch, or use a batch_size and sample count that "
                f"leave at least {distribution.replicas} samples in the last batch."
            )
        if distribution.shard is not None:
            dg._set_shard(distribution.shard)


def _check_store_rows(distribution: Any, name: str, store: Any, check_rows: bool) -> None:
    """An offline store under a strategy: on one worker its replicas split each stored
    slice by rows (each stored batch needs a row per replica); not on several workers."""
    if distribution.workers > 1:
        raise ValueError(
            f"`{name}` serves an offline store, whose stored batches cannot be split "
            f"across {distribution.workers} workers yet. Train from the store on one worker "
            "(its replicas split each stored slice), or from the source data with its "
            "preprocessor on several."
        )
    for set_name, pieces in store.manifest["names"]:
        rows = sum(int(stop) - int(start) for _, start, stop in pieces)
        if check_rows and rows < distribution.replicas:
            raise ValueError(
                f"`{name}` serves an offline store whose stored batch {set_name!r} holds "
                f"{rows} samples, fewer than the strategy's {distribution.replicas} replicas "
                "(each replica needs at least one row of every slice). Write the store from "
                "a generator with drop_remainder=True, or with a batch_size and sample "
                f"count that leave at least {distribution.replicas} samples in its last batch."
            )


def check_names(max_checkpoints: Any, model_configs: Any, model_base_name: Any) -> None:
    check_int("max_checkpoints", max_checkpoints, minimum=1)
    if model_configs is not None and not isinstance(model_configs, dict):
        raise TypeError(
            "`model_configs` must be a dict or None. "
            f"Received: model_configs={describe(model_configs)}"
        )
    if not isinstance(model_base_name, str) or not model_base_name:
        raise TypeError(
            "`model_base_name` must be a non-empty str. "
            f"Received: model_base_name={model_base_name!r}"
        )


def check_seed(seed: Any) -> int | None:
    """None, or an int that `keras.utils.set_random_seed` takes (NumPy's limit: < 2**32)."""
    return None if seed is None else check_int("seed", seed, minimum=0, maximum=2**32 - 1)


def check_stateful_data(
    layers: list[Any],
    datagen: Any,
    val_datagen: Any,
    reset_statefuls: bool,
    pad_val_batches: bool = False,
) -> None:
    """Refuse partial batches for stateful models; warn when states are never reset.

    With `pad_val_batches=True` a partial validation batch is allowed (it is padded).
    """
    if not layers:
        return
    names = ", ".join(layer.name for layer in layers)
    for name, generator in (("datagen", datagen), ("val_datagen", val_datagen)):
        if name == "val_datagen" and pad_val_batches:
            continue  # padded to full batches (padding.py)
        _refuse_partial_batches(names, name, generator, _PAD_HINT.get(name, ""))
    if not reset_statefuls:
        warnings.warn(_STATEFUL_WITHOUT_RESET.format(layers=names), stacklevel=4)


def check_stateful_pass(layers: list[Any], datagen: Any, pad_val_batches: bool) -> None:
    """`tg.evaluate(datagen)` / `tg.predict(datagen)`: full batches, or padding on."""
    if layers and not pad_val_batches:
        names = ", ".join(layer.name for layer in layers)
        _refuse_partial_batches(names, "datagen", datagen, _PAD_HINT["val_datagen"])


def _refuse_partial_batches(layers: str, name: str, generator: Any, pad_hint: str) -> None:
    """A stateful model needs every batch of `generator`'s epoch to be full."""
    if generator is None or not hasattr(generator, "plan"):
        return
    for batch in generator.plan(generator.epoch):
        if batch.size != generator.batch_size:
            raise ValueError(
                _PARTIAL_BATCH_WITH_STATEFUL.format(
                    layers=layers, batch_size=generator.batch_size, name=name,
                    size=batch.size, datagen=generator, pad=pad_hint,
                )
            )  # fmt: skip


def explicit_arguments(init: Any) -> Any:
    """Record which keyword arguments the caller passed (`self._explicit`).

    On resume an explicitly passed argument beats the saved value, which beats the
    default; defaults alone cannot tell "passed" from "not passed".
    """

    @functools.wraps(init)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> None:
        self._explicit = set(kwargs)
        init(self, *args, **kwargs)

    return wrapper


def check_run_args(logs_dir: Any, best_models_dir: Any, resume: Any) -> None:
    for name, value in (("logs_dir", logs_dir), ("best_models_dir", best_models_dir)):
        _check_folder(name, value)
    if not isinstance(resume, (bool, str, os.PathLike)):
        raise TypeError(
            "`resume` must be False, True (the newest run in logs_dir) or the path of a run or "
            f"checkpoint folder. Received: resume={resume!r}"
        )
    if resume is not False and logs_dir is None:
        raise ValueError(
            "`resume` needs `logs_dir`: checkpoints live in run folders under it. "
            f"Received: resume={resume!r}, logs_dir=None"
        )


def _check_folder(name: str, value: Any) -> None:
    """None, or a path that is a folder or can become one (nothing is created here)."""
    if value is None:
        return
    if not isinstance(value, (str, os.PathLike)):
        raise TypeError(f"`{name}` must be a folder path or None. Received: {name}={value!r}")
    path = os.fspath(value)
    if not path:
        raise ValueError(
            f"`{name}` must name a folder; an empty string names none. Pass a path such as "
            f"'logs', or None for no run folder. Received: {name}={value!r}"
        )
    if os.path.exists(path) and not os.path.isdir(path):
        raise ValueError(
            f"`{name}` is a file, not a folder: runs are folders inside it. Pass a folder "
            f"path (it is created if missing). Received: {name}={value!r}"
        )
    parent = os.path.dirname(os.path.abspath(path))
    while not os.path.exists(parent):
        parent = os.path.dirname(parent)
    if not os.path.isdir(parent):
        raise ValueError(
            f"`{name}` cannot be created: {parent!r} is a file, not a folder. "
            f"Received: {name}={value!r}"
        )


def check_validation_args(
    args: dict[str, Any], options: dict[str, Any], model: Any
) -> ValidationSettings:
    """`eval_fn`, `val_metrics`, class weights and the validation rare options.

    `key_metric` is checked against `val_metrics` here when they are given (or, in
    predict mode, defaulted); otherwise at the first validation.
    """
    eval_fn = check_choice("eval_fn", args["eval_fn"], ("evaluate", "predict"))
    names = _check_val_metrics(args["val_metrics"], eval_fn, args["key_metric"])
    settings = ValidationSettings(
        eval_fn=eval_fn,
        val_metric_names=names,
        class_weights=check_class_weights("class_weights", args["class_weights"]),
        val_class_weights=check_class_weights("val_class_weights", args["val_class_weights"]),
        loss_weighted_slices_range=check_weight_range(
            "loss_weighted_slices_range", options["loss_weighted_slices_range"]
        ),
        pred_weighted_slices_range=check_weight_range(
            "pred_weighted_slices_range", options["pred_weighted_slices_range"]
        ),
        best_subset_size=_check_best_subset_size(options["best_subset_size"], args["val_datagen"]),
        predict_threshold=_check_threshold(options["predict_threshold"]),
        dynamic_predict_threshold=check_bool(
            "dynamic_predict_threshold", options["dynamic_predict_threshold"]
        ),
        pad_val_batches=check_bool("pad_val_batches", options["pad_val_batches"]),
    )
    if eval_fn == "predict":
        entries = args["val_metrics"] if args["val_metrics"] is not None else names
        settings.val_metrics = resolve_model_val_metrics(entries or [], model)
        _check_key_in_val_metrics(args["key_metric"], [m.name for m in settings.val_metrics])
    elif settings.dynamic_predict_threshold:
        raise ValueError(
            "dynamic_predict_threshold=True tunes the threshold on validation predictions; "
            "it needs eval_fn='predict'. Received: eval_fn='evaluate'"
        )
    return settings


def _check_val_metrics(val_metrics: Any, eval_fn: str, key_metric: str) -> list[str] | None:
    """Names as given (callables by `__name__`); predict mode defaults to loss + key."""
    if val_metrics is None:
        if eval_fn == "evaluate":
            return None
        return ["loss"] if key_metric == "loss" else ["loss", key_metric]
    if isinstance(val_metrics, (str, bytes)) or not isinstance(val_metrics, (list, tuple)):
        raise TypeError(
            "`val_metrics` must be a list of metric names or callables, e.g. "
            f"['loss', 'f1', 'roc_auc']. Received: val_metrics={val_metrics!r}"
        )
    names = []
    for entry in val_metrics:
        if callable(entry) and eval_fn == "predict":
            names.append(getattr(entry, "__name__", type(entry).__name__))
        elif isinstance(entry, str) and entry:
            names.append(entry)
        else:
            raise TypeError(
                "Each of `val_metrics` must be a metric name (str) or, with "
                "eval_fn='predict', a callable fn(y_true, y_pred). "
                f"Received: val_metrics={val_metrics!r} (eval_fn={eval_fn!r})"
            )
    if not names or len(set(names)) != len(names):
        raise ValueError(
            f"`val_metrics` must be non-empty, without repeats. Received: val_metrics={names!r}"
        )
    if eval_fn == "evaluate":
        _check_key_in_val_metrics(key_metric, names)
    return names  # predict mode: checked once resolved (per output for several outputs)


def _check_key_in_val_metrics(key_metric: str, names: list[str]) -> None:
    if key_metric not in names:
        close = difflib.get_close_matches(key_metric, names, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ValueError(
            f"key_metric={key_metric!r} must be one of `val_metrics` {names}: add it to "
            f"`val_metrics` or pick another `key_metric` (with several outputs, a metric is "
            f"recorded per output as '<output>_<metric>').{hint} "
            f"Received: key_metric={key_metric!r}"
        )


def _check_best_subset_size(size: Any, val_datagen: Any) -> int | None:
    if size is None:
        return None
    size = check_int("best_subset_size", size, minimum=1)
    if val_datagen is not None and hasattr(val_datagen, "plan"):
        batches = len(val_datagen)
        if size > batches:
            raise ValueError(
                "`best_subset_size` must be at most the number of validation batches "
                f"({batches}). Received: best_subset_size={size}"
            )
    return size


def _check_threshold(threshold: Any) -> float:
    if not isinstance(threshold, numbers.Real) or isinstance(threshold, bool):
        raise TypeError(
            "`predict_threshold` must be a float in [0, 1]. "
            f"Received: predict_threshold={threshold!r}"
        )
    if not 0.0 <= float(threshold) <= 1.0:
        raise ValueError(
            f"`predict_threshold` must be in [0, 1]. Received: predict_threshold={threshold!r}"
        )
    return float(threshold)
