"""The keywords `TrainGenerator` takes besides its signature, and the `model.fit` ones.

Rare options (`RARE_OPTIONS`, with their defaults) go in `**rare_options`, so a typo
lands there too: an unknown keyword is refused naming the closest valid one, and a
`model.fit` keyword (`FIT_KEYWORDS`: `validation_data`, `initial_epoch`, ...) is refused
with the trainkit way of doing the same.
"""

from __future__ import annotations

import inspect
from typing import Any

from trainkit._validation import check_bool, check_int, check_unknown_keys

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
