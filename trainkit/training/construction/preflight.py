"""Mistakes caught before the first train step, from one peek at each generator.

`check_before_training` runs once when the trainer is built. It looks at the current
slice of `datagen` and of `val_datagen` (without moving either cursor) and checks it
against the model and the settings, so that a mistake which would fail after an epoch
of training, or deep inside TensorFlow, is reported first, naming the argument and
the fix:

* `x` against the model's inputs (structure, rank and every known dimension; the
  batch dimension too where the model fixes it, as stateful models do): a dict keyed
  by anything but the input names, or a tuple of another length, is refused naming
  the keys or lengths and the model's inputs;
* `y` (and served sample weights) against the model's outputs, alike; per-output
  `class_weights` against the output names;
* labels: missing (`y` is None) while the compiled loss or validation needs them;
  out of range for sparse categorical cross-entropy;
* predict-mode `val_metrics` that are binary (`'f1'`, `'precision'`, ...) on a
  multi-class model;
* evaluate mode: `key_metric` and `val_metrics` against the names the model's
  `test_step` will log, found from its compile arguments without running a step.

What cannot be known in advance (a subclassed model without known inputs, a custom
`train_step`/`test_step`) is skipped; the checks made later still run.
Nothing here changes a model, a generator or a random state.
"""

from __future__ import annotations

import difflib
import functools
from typing import Any

import numpy as np

from trainkit import metrics
from trainkit.training.evaluation import padding
from trainkit.training.evaluation.logged_names import logged_names
from trainkit.training.evaluation.padding import fixed_batch_size
from trainkit.training.evaluation.sample_weights import is_per_output
from trainkit.training.evaluation.scoring import ValidationSettings, loss_name
from trainkit.training.slices.steps import stateful_layers
from trainkit.training.slices.structure import is_structured, output_names, unpack_slice

_SHAPE_MISMATCH = (
    "`{name}` serves x{where} of shape {shape} ({dtype}), but the model's input "
    "{input!r} expects shape {expected} (None matches any size). Make the data match the "
    "model (`data=`, `data_path=` or the preprocessor's output) or change the model's "
    "Input. Received: {name}.get() x{where}.shape={shape}"
)
_FIXED_BATCH = (
    "The model's batch size is fixed at {size} ({why}), but `{name}` serves batches of "
    "{served} samples. Build `{name}` with batch_size={size}{pad}. "
    "Received: {name}.batch_size={batch_size}"
)
_NO_LABELS = (
    "`{name}` serves no labels (y is None), but {needs}. Give the DataGenerator "
    "`labels=` (arrays) or `labels_path=` (files), or pass `input_as_labels=True` to use "
    "x as its own target (autoencoders). Received: {name}.get() -> (x, None)"
)
_LABELS_OUT_OF_RANGE = (
    "`{name}` serves labels from {low} to {high}{where}, but the model's loss is sparse "
    "categorical cross-entropy with {units} output units: labels must be class indices "
    "in [0, {top}]. Check the labels (one-hot labels need 'categorical_crossentropy'), "
    "or give the last layer one unit per class. Received: labels min={low}, max={high} "
    "({dtype}), output units={units}"
)
_BINARY_ON_MULTICLASS = (
    "val_metrics {binary} are binary (one score per sample), but the model is "
    "multi-class ({why}). Use multi-class averages instead: {suggestions} (or "
    "'accuracy'). Received: val_metrics={names!r}, key_metric={key!r}"
)
_UNKNOWN_LOGGED_NAME = (
    "{what} is not among the metrics the model reports in evaluate mode "
    "(eval_fn='evaluate' records what `test_step` returns: {known}).{hint} Pick one of "
    "these, compile the model with that metric, or use eval_fn='predict' (NumPy / "
    "scikit-learn metrics on all predictions). Received: {received}"
)
_AVERAGE_FOR = {
    "f1": "'f1_macro', 'f1_weighted'",
    "precision": "'precision_macro', 'precision_weighted'",
    "recall": "'recall_macro', 'recall_weighted'",
    "tpr": "'recall_macro', 'recall_weighted'",
    "tnr": "'balanced_accuracy'",
    "binary_accuracy": "'accuracy'",
}


def check_before_training(
    model: Any,
    datagen: Any,
    val_datagen: Any,
    validation: ValidationSettings,
    key_metric: str,
    input_as_labels: bool,
    replicas: int = 1,
) -> None:
    """Check one peeked slice of each generator against the model and the settings.

    `replicas`: the replicas this worker's slices are split across (a strategy's); a
    model with a fixed batch size then takes that many rows per replica.

    Raises:
        ValueError: a mistake the first slice shows (see the module docstring); the
            message names the setting and the fix.
    """
    _check_class_weight_outputs(model, validation)
    train, val = peek(datagen), peek(val_datagen)
    check_whole_labels("datagen", datagen, model)
    check_whole_labels("val_datagen", val_datagen, model)
    if train is not None:
        needs = _labels_needed("datagen", model, validation)
        _check_slice("datagen", datagen, train, model, input_as_labels, needs, False, replicas)
    if val is not None:
        needs = _labels_needed("val_datagen", model, validation)
        pad = validation.pad_val_batches
        if pad and validation.eval_fn == "evaluate":
            padding.check_padding_is_exact(model)
        _check_slice("val_datagen", val_datagen, val, model, input_as_labels, needs, pad, replicas)
    labels = [pair[1] for pair in (val, train) if pair is not None and pair[1] is not None]
    if validation.eval_fn == "predict":
        _check_binary_metrics(model, validation, key_metric, labels[0] if labels else None)
    elif val_datagen is not None:
        check_logged_names(model, validation, key_metric)


def peek(datagen: Any) -> tuple[Any, Any, Any] | None:
    """The current slice `(x, y, sample_weight)`, the generator's cursor left as it was.

    `sample_weight` is None when the preprocessor serves none.

    None for no generator, an exhausted one, or one that cannot restore its state.
    """
    if datagen is None or getattr(datagen, "all_data_exhausted", False):
        return None
    if not callable(getattr(datagen, "load_state_dict", None)):
        return None
    state = datagen.state_dict()
    x, y, served = unpack_slice(datagen.get())
    datagen.load_state_dict(state)  # get() marks the batch loaded; undo that too
    return x, y, served


# ------------------------------------------------------------------ one slice


def _check_slice(
    name: str,
    datagen: Any,
    pair: tuple[Any, Any, Any],
    model: Any,
    input_as_labels: bool,
    labels_needed: str | None,
    pad: bool,
    replicas: int = 1,
) -> None:
    x, y, served = pair
    inputs = _known_inputs(model)
    if inputs is not None:
        _check_inputs(name, datagen, x, inputs, model, pad, replicas)
    if y is None and not input_as_labels and labels_needed is not None:
        raise ValueError(_NO_LABELS.format(name=name, needs=labels_needed))
    labels = x if input_as_labels else y
    if labels is not None and not input_as_labels:
        _check_labels_structure(name, labels, model, "y")
    if served is not None and is_structured(served):
        _check_labels_structure(name, served, model, "sample_weight")
    if labels is not None:
        _check_sparse_labels(name, labels, model)


def _labels_needed(name: str, model: Any, validation: ValidationSettings) -> str | None:
    """What needs the generator's labels, in words; None if nothing does."""
    if name == "val_datagen" and validation.eval_fn == "predict":
        return "eval_fn='predict' scores the predictions against labels"
    if _needs_labels(model, "train_step" if name == "datagen" else "test_step"):
        return f"the model's compiled loss ({loss_name(model) or 'its loss'}) needs them"
    return None


def _known_inputs(model: Any) -> list[Any] | None:
    """The model's symbolic inputs, when it was built from `keras.Input`s."""
    try:
        inputs = model.inputs
    except (AttributeError, ValueError):
        return None
    return list(inputs) if inputs else None


def _check_inputs(
    name: str, datagen: Any, x: Any, inputs: list[Any], model: Any, pad: bool, replicas: int = 1
) -> None:
    arrays = _match_structure(name, x, inputs, model)
    for (where, array), tensor in zip(arrays, inputs):
        shape, expected = tuple(np.shape(array)), tuple(tensor.shape)
        if not _shapes_match(shape, expected):
            raise ValueError(
                _SHAPE_MISMATCH.format(
                    name=name, where=where, shape=shape, dtype=_dtype(array),
                    input=_input_name(tensor), expected=expected,
                )
            )  # fmt: skip
    _check_batch_size(name, datagen, arrays[0][1], model, pad, replicas)


def _shapes_match(shape: tuple[Any, ...], expected: tuple[Any, ...]) -> bool:
    """Every known non-batch dimension equal; like Keras, a trailing 1 may be missing
    on either side (`(n,)` feeds `Input((1,))`, `(n, 3, 1)` feeds `Input((3,))`)."""
    if len(shape) == len(expected) + 1 and shape[-1] == 1:
        shape = shape[:-1]
    elif len(shape) + 1 == len(expected) and expected[-1] == 1:
        expected = expected[:-1]
    if len(shape) != len(expected):
        return False
    return all(want is None or got == want for got, want in zip(shape[1:], expected[1:]))


def _match_structure(name: str, x: Any, inputs: list[Any], model: Any) -> list[tuple[str, Any]]:
    """`x` as `(where, array)` pairs in the order of `inputs`.

    Raises:
        ValueError: a dict whose keys are not the model's input names, or a tuple/list
            of another length than the model's inputs.
    """
    names = input_names(model, inputs)
    if isinstance(x, dict):
        _check_keys(f"`{name}` serves x", x, names, "input", f"{name}.get() x")
        return [(f"[{key!r}]", x[key]) for key in names]
    parts = list(x) if isinstance(x, (list, tuple)) else [x]
    if len(parts) != len(inputs):
        served = f"{len(parts)} arrays" if len(parts) != 1 else "one array"
        raise ValueError(
            f"`{name}` serves {served} as x, but the model has {len(inputs)} inputs "
            f"({', '.join(map(repr, names))}). Serve one array per "
            "input (a list in the inputs' order, or a dict by input name). Received: "
            f"{name}.get() x={_describe(x)}"
        )
    where = [f"[{i}]" for i in range(len(parts))] if isinstance(x, (list, tuple)) else [""]
    return list(zip(where, parts))


def input_names(model: Any, inputs: list[Any]) -> list[str]:
    """The names a dict `x` is keyed by: the model's input dict's keys, else input names."""
    struct = getattr(model, "_inputs_struct", None)
    if isinstance(struct, dict) and len(struct) == len(inputs):
        # `inputs` is flattened in sorted key order, not the dict's order: pair by tensor.
        by_tensor = {id(tensor): str(key) for key, tensor in struct.items()}
        if all(id(tensor) in by_tensor for tensor in inputs):
            return [by_tensor[id(tensor)] for tensor in inputs]
        return sorted(str(key) for key in struct)
    return [_input_name(tensor) for tensor in inputs]


def _check_keys(what: str, served: dict, names: list[str], kind: str, received: str) -> None:
    """A dict's keys must be exactly the model's input (or output) names."""
    unknown = [key for key in served if key not in names]
    missing = [key for key in names if key not in served]
    if not unknown and not missing:
        return
    problems = []
    if unknown:
        close = [difflib.get_close_matches(str(key), names, n=1) for key in unknown]
        hints = [
            f"{key!r} (did you mean {c[0]!r}?)" if c else repr(key)
            for key, c in zip(unknown, close)
        ]
        problems.append(f"keys that are not {kind} names: {', '.join(hints)}")
    if missing:
        problems.append(f"no member for the {kind}s {missing}")
    raise ValueError(
        f"{what} as a dict with keys {list(served)}, but the model's {kind}s are "
        f"{names}: {'; '.join(problems)}. Key the dict by the model's {kind} names (as "
        f"`model.fit` takes them). Received: {received} keys={list(served)}"
    )


def _check_labels_structure(name: str, labels: Any, model: Any, what: str) -> None:
    """Labels (or served sample weights) against the model's outputs.

    Only for models whose outputs are known and whose loss is Keras' own (a custom
    `train_step` or `compute_loss` may take labels of any structure).
    """
    if not _keras_reads_labels(model):
        return
    names = output_names(model)
    if names is None:
        if isinstance(labels, dict) or (isinstance(labels, tuple) and len(labels) != 1):
            shape = _describe(labels)
            raise ValueError(
                f"`{name}` serves {what} as {shape}, but the model has a single output. "
                f"Serve one array, or give the model one output per member. "
                f"Received: {name}.get() {what}={shape}"
            )
        return
    if isinstance(labels, dict):
        _check_keys(f"`{name}` serves {what}", labels, names, "output", f"{name}.get() {what}")
    elif isinstance(labels, (list, tuple)):
        if len(labels) != len(names):
            raise ValueError(
                f"`{name}` serves {what} as a {type(labels).__name__} of {len(labels)} "
                f"members, but the model has {len(names)} outputs ({', '.join(map(repr, names))})."
                f" Serve one member per output (a tuple in the outputs' order, or a dict by "
                f"output name). Received: {name}.get() {what}={_describe(labels)}"
            )
    elif what == "y":
        raise ValueError(
            f"`{name}` serves one array as y, but the model has {len(names)} outputs "
            f"({', '.join(map(repr, names))}). Serve one member per output (a tuple in the "
            f"outputs' order, or a dict by output name). Received: {name}.get() "
            f"y={_describe(labels)}"
        )


def _check_batch_size(
    name: str, datagen: Any, array: Any, model: Any, pad: bool, replicas: int = 1
) -> None:
    """A model with a fixed batch size (stateful) needs exactly that many samples."""
    size = fixed_batch_size(model)
    served = int(np.shape(array)[0])
    if size is None or served == size * replicas or (pad and served < size):
        return
    if replicas > 1:
        raise ValueError(
            f"The model's batch size is fixed at {size} per replica, and `{name}` serves "
            f"{served} rows to this worker's {replicas} replicas: serve {size * replicas} "
            f"(batch_size={size * replicas} times the number of workers, the global batch), "
            f"or build the model with batch_size={served // replicas}."
        )
    layers = stateful_layers(model)
    why = f"stateful layers: {', '.join(layer.name for layer in layers)}" if layers else "Input"
    hint = ""
    if name == "val_datagen":
        hint = " (with `pad_val_batches=True` a partial last batch is padded to it)"
    raise ValueError(
        _FIXED_BATCH.format(
            size=size, why=why, name=name, served=served, pad=hint,
            batch_size=getattr(datagen, "batch_size", served),
        )
    )  # fmt: skip


def _keras_reads_labels(model: Any) -> bool:
    """Keras' own steps and loss read the labels, and the model's outputs are known."""
    import keras

    for method in ("train_step", "test_step", "compute_loss"):
        if getattr(type(model), method, None) is not getattr(keras.Model, method, None):
            return False
    try:
        return bool(model.outputs)
    except (AttributeError, ValueError):
        return False


def _needs_labels(model: Any, step: str) -> bool:
    """The model has a compiled loss and Keras' own `step` computes it from labels."""
    import keras

    if getattr(model, "_compile_loss", None) is None and getattr(model, "loss", None) is None:
        return False
    return getattr(type(model), step, None) is getattr(keras.Model, step, None)


def _check_sparse_labels(name: str, labels: Any, model: Any) -> None:
    bound = sparse_label_bound(model)
    if bound is not None:
        check_label_range(name, labels, bound)


def sparse_label_bound(model: Any) -> tuple[int, Any] | None:
    """`(output units, ignored class)` when the loss is sparse categorical, else None."""
    units = _output_units(model)
    if "sparse" not in loss_name(model).lower() or units is None:
        return None
    return units, _ignored_class(model)


def check_label_range(
    name: str, labels: Any, bound: tuple[int, Any], datagen: Any = None, whole: bool = False
) -> None:
    """Sparse labels must be class indices below the output units (`sparse_label_bound`).

    `datagen`: named in the message with the batch being served; `whole`: the labels are
    the generator's whole labels array (checked once, at construction).
    """
    if not isinstance(labels, np.ndarray) or labels.size == 0 or labels.dtype.kind not in "iuf":
        return
    units, ignored = bound
    dtype = labels.dtype
    if dtype.kind == "i" and units <= 1 << (8 * dtype.itemsize - 1):  # the dtype's max + 1
        # One pass: viewed as unsigned, a negative label is at least 2**(bits-1) >= units.
        if labels.view(_unsigned(dtype)).max() < units:
            return
    elif labels.min() >= 0 and labels.max() < units:  # the common case: no copy
        return
    values = labels[labels != ignored] if ignored is not None else labels
    if values.size == 0:
        return
    low, high = values.min(), values.max()
    if low < 0 or high >= units:
        where = ""
        if whole:
            where = " (over its whole labels array, checked before training)"
        elif datagen is not None:
            where = f" (in batch set_name={datagen.set_name!r}, slice_idx={datagen.slice_idx})"
        raise ValueError(
            _LABELS_OUT_OF_RANGE.format(
                name=name, where=where, low=_number(low), high=_number(high), units=units,
                top=units - 1, dtype=labels.dtype,
            )
        )  # fmt: skip


@functools.lru_cache(maxsize=16)
def _unsigned(dtype: np.dtype) -> np.dtype:
    """The unsigned integer dtype of a signed one's size and byte order (checked per slice)."""
    return np.dtype(dtype.str.replace("i", "u"))


def check_whole_labels(name: str, datagen: Any, model: Any) -> None:
    """Labels held in memory or memory-mapped: the range of every label, once.

    Class-sorted data (labels 1..C for C output units) often looks right in the first
    slice; a min/max over the labels array finds it before the first step.
    """
    bound = sparse_label_bound(model)
    array = whole_labels(datagen)
    if bound is not None and array is not None:
        check_label_range(name, array, bound, whole=True)


def whole_labels(datagen: Any) -> np.ndarray | None:
    """The generator's labels array when it holds every label it serves, in memory or
    memory-mapped (so one check covers every slice), else None."""
    source = getattr(datagen, "labels_source", None)
    array = getattr(source, "array", None)
    if not isinstance(array, np.ndarray) or array.dtype.kind not in "iuf":
        return None
    if len(datagen.set_nums_original) != len(getattr(source, "set_nums", ())):
        return None  # some sets left out: their slices are checked as they are served
    return array


def _ignored_class(model: Any) -> Any:
    loss = getattr(model, "loss", None)
    return getattr(loss, "ignore_class", None) or (getattr(loss, "_fn_kwargs", None) or {}).get(
        "ignore_class"
    )


def _output_units(model: Any) -> int | None:
    """The last dimension of the model's single output, when known."""
    try:
        outputs = model.outputs
    except (AttributeError, ValueError):
        return None
    if not outputs or len(outputs) != 1:
        return None
    units = outputs[0].shape[-1] if len(outputs[0].shape) else None
    return None if units is None else int(units)


def _check_class_weight_outputs(model: Any, validation: ValidationSettings) -> None:
    """`{output_name: {class: weight}}` must name the model's outputs."""
    for argument in ("class_weights", "val_class_weights"):
        value = getattr(validation, argument)
        if not is_per_output(value):
            continue
        names = output_names(model)
        unknown = [key for key in value if names is None or key not in names]
        if unknown:
            outputs = names if names is not None else "a single output"
            raise ValueError(
                f"`{argument}` has per-output tables for {unknown}, which are not among the "
                f"model's outputs ({outputs}). Key it by output name, or give one "
                f"`{{class: weight}}` dict for every output. Received: {argument} keys="
                f"{sorted(value)}"
            )


# ------------------------------------------------------------------ metrics


def _check_binary_metrics(
    model: Any, validation: ValidationSettings, key_metric: str, labels: Any
) -> None:
    binary_fns = {metrics.METRICS[name]: name for name in metrics.BINARY}
    chosen = validation.val_metrics or []
    binary = [(m.name, binary_fns[m.fn]) for m in chosen if m.fn in binary_fns]
    why = _multiclass(model, labels) if binary else None
    if why is None:
        return
    suggestions = ", ".join(dict.fromkeys(_AVERAGE_FOR[canonical] for _, canonical in binary))
    raise ValueError(
        _BINARY_ON_MULTICLASS.format(
            binary=[name for name, _ in binary], why=why, suggestions=suggestions,
            names=[m.name for m in chosen], key=key_metric,
        )
    )  # fmt: skip


def _multiclass(model: Any, labels: Any) -> str | None:
    """Why the model is multi-class (more than 2 outputs, or sparse labels above 1)."""
    units = _output_units(model)
    if units is not None and units > 2:
        return f"{units} output units"
    if isinstance(labels, np.ndarray) and labels.dtype.kind in "iuf" and labels.size:
        sparse = labels.ndim == 1 or labels.shape[-1] == 1
        if sparse and np.all(labels == np.rint(labels)) and labels.max() >= 2:
            return f"sparse labels up to {_number(labels.max())}"
    return None


def check_logged_names(model: Any, validation: ValidationSettings, key_metric: str) -> None:
    """Evaluate mode: `key_metric` and `val_metrics` must be names `test_step` logs."""
    known = logged_names(model)
    if known is None:
        return
    filters = validation.val_metric_names
    for name in filters or []:
        _check_logged(known, f"val_metrics entry {name!r}", name, f"val_metrics={filters!r}")
    _check_logged(known, f"key_metric={key_metric!r}", key_metric, f"key_metric={key_metric!r}")


def _check_logged(known: list[str], what: str, name: str, received: str) -> None:
    vector = [k for k in known if name.startswith(f"{k}_") and name[len(k) + 1 :].isdigit()]
    if name in known or vector:
        return  # a vector-valued metric logs name_0, name_1, ...
    close = difflib.get_close_matches(name, known, n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    raise ValueError(
        _UNKNOWN_LOGGED_NAME.format(what=what, known=known, hint=hint, received=received)
    )


# ------------------------------------------------------------------ formatting


def _input_name(tensor: Any) -> str:
    name = getattr(tensor, "name", None) or "input"
    return str(name).split(":")[0]


def _dtype(array: Any) -> str:
    return str(getattr(array, "dtype", type(array).__name__))


def _number(value: Any) -> Any:
    value = value.item() if hasattr(value, "item") else value
    return int(value) if float(value).is_integer() else value


def _describe(x: Any) -> str:
    """A short description of `x`: shapes and dtypes, never the values."""
    if isinstance(x, dict):
        return "{" + ", ".join(f"{k!r}: {_describe(v)}" for k, v in x.items()) + "}"
    if isinstance(x, (list, tuple)):
        return f"{type(x).__name__} of {len(x)} [" + ", ".join(_describe(v) for v in x) + "]"
    if hasattr(x, "shape"):
        return f"array of shape {tuple(x.shape)} ({_dtype(x)})"
    return type(x).__name__
