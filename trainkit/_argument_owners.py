"""Which object takes which argument, for keywords given to the wrong one.

`DataGenerator(..., epochs=5)` or `TrainGenerator(..., labels_path=...)` are refused with
the object that takes the keyword and how to pass it there, rather than the closest name
of the wrong object (`epochs` is not a misspelt `preprocessor`). DeepTrain's names that
trainkit renamed or replaced get their replacement. Pure data: importing this module
imports nothing else of trainkit, so every constructor's checks may use it.
"""

from __future__ import annotations

# The keywords each object takes (tests/test_argument_owners.py checks these against the
# signatures, so a new argument cannot be forgotten here).
DATA_GENERATOR_ARGUMENTS = frozenset(
    {
        "data_path", "labels_path", "data", "labels", "batch_size", "shuffle", "seed",
        "preprocessor", "set_nums", "superbatch", "drop_remainder", "shuffle_group_batches",
        "shuffle_group_samples", "loader", "labels_loader", "prefetch", "shard",
        "data_key", "labels_key", "prefetch_workers", "keys",
    }
)  # fmt: skip
TRAIN_GENERATOR_ARGUMENTS = frozenset(
    {
        "model", "datagen", "val_datagen", "epochs", "val_freq", "key_metric", "max_is_best",
        "val_metrics", "eval_fn", "input_as_labels", "class_weights", "val_class_weights",
        "reset_statefuls", "logs_dir", "best_models_dir", "checkpoint_freq", "max_checkpoints",
        "resume", "callbacks", "iter_verbosity", "model_configs", "model_base_name", "seed",
        "strategy", "steps_per_execution", "on_nonfinite", "progress_every",
        "defer_interrupts", "deterministic", "plot_history_freq", "tensorboard",
        "check_finite_data", "async_checkpoints",
        "tensorboard_every", "introspect_freq", "predict_threshold",
        "dynamic_predict_threshold", "loss_weighted_slices_range", "pred_weighted_slices_range",
        "best_subset_size", "pad_val_batches",
    }
)  # fmt: skip

_TAKERS = {
    "DataGenerator": (
        TRAIN_GENERATOR_ARGUMENTS,
        "TrainGenerator",
        "TrainGenerator(model, datagen, {key}=...)",
    ),
    "TrainGenerator": (
        DATA_GENERATOR_ARGUMENTS,
        "DataGenerator",
        "TrainGenerator(model, DataGenerator(..., {key}=...))",
    ),
}

# DeepTrain's DataGenerator keywords that trainkit names differently or replaced.
_DEEPTRAIN_DATA_GENERATOR = {
    "data_dir": "DeepTrain's `data_dir` is `data_path` here (a folder of set files or one "
    "file): DataGenerator(data_path=...).",
    "labels_dir": "DeepTrain's `labels_dir` is `labels_path` here (a labels file or a folder "
    "of label files): DataGenerator(data_path=..., labels_path=...).",
    "preload_labels": "trainkit reads labels with their batch, so there is nothing to "
    "preload: pass `labels_path=` as before, `labels=` an array already in memory, or "
    "`superbatch=True` to read every set (data and labels) into memory once.",
    "data_loader": "DeepTrain's `data_loader` is `loader` here: a callable "
    "loader(path, set_num) -> array.",
    "superbatch_path": "pass `superbatch=True`: every set is read into memory once.",
    "superbatch_set_nums": "pass `superbatch=True` (every set in memory) and `set_nums=[...]` "
    "to choose the sets.",
    "preprocessor_configs": "pass the preprocessor's arguments to its class: "
    "preprocessor=TimeseriesPreprocessor(window_size=...).",
}


def misplaced_hint(owner: str, key: str) -> str | None:
    """How to pass `key`, refused by `owner`, where it belongs; None if it belongs nowhere.

    Example:
        >>> misplaced_hint("DataGenerator", "epochs")
        'it is an argument of TrainGenerator: TrainGenerator(model, datagen, epochs=...).'
    """
    if owner == "DataGenerator" and key in _DEEPTRAIN_DATA_GENERATOR:
        return _DEEPTRAIN_DATA_GENERATOR[key]
    if owner not in _TAKERS:
        return None
    arguments, taker, usage = _TAKERS[owner]
    if key not in arguments:
        return None
    return f"it is an argument of {taker}: {usage.format(key=key)}."
