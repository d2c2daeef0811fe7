"""Look inside a Keras 3 model: gradient norms, weight health, activations per layer.

`gradient_norms` differentiates the model's own compiled loss (`model.compute_loss`,
regularizers and `add_loss` terms included) with respect to each trainable variable;
`weight_health` counts non-finite and zero entries of every weight; `layer_outputs`
returns each layer's activations. `IntrospectionLog` appends `snapshot`s of the first two
to `introspection.jsonl` in a run folder, and `read_introspection` reads them back.

None of these functions changes the model: variables that a forward pass in training
mode would update (BatchNormalization's moving statistics, Dropout's seed state) are put
back as they were, so a run that is introspected trains exactly as one that is not.
"""

from __future__ import annotations

import inspect
import json
import os
from collections.abc import Sequence
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from trainkit.checkpoints.atomic import RecordFile
from trainkit.reports.gradient_plot import draw_gradient_norms, global_norm
from trainkit.reports.provenance import ProvenanceLog

__all__ = [
    "INTROSPECTION_FILE",
    "IntrospectionLog",
    "draw_gradient_norms",
    "global_norm",
    "gradient_norms",
    "layer_outputs",
    "read_introspection",
    "snapshot",
    "weight_health",
]

INTROSPECTION_FILE = "introspection.jsonl"

_NOT_BUILT = (
    "`layer_outputs` needs a model with known inputs (a functional model, or a Sequential "
    "model built from `keras.Input`). Received: model={name!r} with no `inputs`. Call the "
    "model once on data, or build it with `keras.Input(shape)` first."
)
_NO_ITER = (
    "An introspection record must hold `iter`, an int (the value of `iters_fit`). "
    "Received: record with keys {keys}."
)


def gradient_norms(
    model: Any, x: Any, y: Any, sample_weight: Any = None, *, training: bool = True
) -> dict[str, float]:
    """The L2 norm of the gradient of the compiled loss for each trainable variable.

    Use it to see which layers learn, vanish or explode. The loss is the one the train
    step minimizes: `model.compute_loss` on `model(x, training=training)`, so it holds
    the compiled losses with their `loss_weights`, regularizer penalties and `add_loss`
    terms. With `training=True` (the default, as in the train step) Dropout is active and
    the norms are those of one random mask; the seed state and BatchNormalization's
    moving statistics are restored afterwards, so the model is left as it was. Pass
    `training=False` for a deterministic value (Dropout off, moving statistics used).
    A variable the loss does not depend on has norm 0.0.

    Args:
        model: a compiled Keras 3 model.
        x: inputs as the model takes them: an array, or a dict/tuple of arrays.
        y: labels in the structure of the model's outputs.
        sample_weight: optional per-sample weights (as in `model.fit`).
        training: the mode of the forward pass.

    Returns:
        `{variable.path: norm}` in the order of `model.trainable_variables`.

    Example:
        >>> norms = gradient_norms(model, x[:64], y[:64])
        >>> list(norms)[:2]
        ['sequential/dense/kernel', 'sequential/dense/bias']
        >>> norms["sequential/dense/kernel"] > 0
        True
    """
    variables = model.trainable_variables
    with _state_kept(model), tf.GradientTape() as tape:
        y_pred = model(x, training=training)
        loss = _compiled_loss(model, x, y, y_pred, sample_weight, training)
    gradients = tape.gradient(loss, variables, unconnected_gradients=tf.UnconnectedGradients.ZERO)
    norms = [float(tf.norm(tf.cast(g, "float64"))) for g in gradients]
    return dict(zip(_paths(variables), norms))


def _compiled_loss(model, x, y, y_pred, sample_weight, training):
    # Overrides written before Keras 3.3 take no `training` argument; Keras' own train
    # step makes the same check.
    if "training" in inspect.signature(model.compute_loss).parameters:
        return model.compute_loss(
            x=x, y=y, y_pred=y_pred, sample_weight=sample_weight, training=training
        )
    return model.compute_loss(x=x, y=y, y_pred=y_pred, sample_weight=sample_weight)


class _state_kept:
    """Put the model's non-trainable variables (moving statistics, seed states) back."""

    def __init__(self, model: Any) -> None:
        self.variables = model.non_trainable_variables

    def __enter__(self) -> None:
        self.values = [variable.numpy() for variable in self.variables]

    def __exit__(self, *exc: object) -> None:
        for variable, value in zip(self.variables, self.values):
            variable.assign(value)


def weight_health(model: Any) -> dict[str, dict[str, float]]:
    """For every weight (trainable or not): non-finite count, zero fraction, mean, std.

    Use it to find dead (all-zero) or poisoned (NaN/inf) weights. `mean` and `std` are
    over the finite entries only (NaN when there are none); `nonfinite` counts the NaN
    and infinite ones; `zero_fraction` is the share of entries exactly 0.

    Args:
        model: a built Keras 3 model.

    Returns:
        `{variable.path: {"nonfinite", "zero_fraction", "mean", "std"}}` in the order of
        `model.weights`.

    Example:
        >>> weight_health(model)["sequential/dense/kernel"]
        {'nonfinite': 0, 'zero_fraction': 0.0, 'mean': ..., 'std': ...}
        >>> weight_health(model)["sequential/dense/bias"]["zero_fraction"]  # not trained yet
        1.0
    """
    weights = model.weights
    return {path: _health(w.numpy()) for path, w in zip(_paths(weights), weights)}


def _health(value: np.ndarray) -> dict[str, float]:
    value = np.asarray(value, dtype=np.float64)
    finite = value[np.isfinite(value)]
    return {
        "nonfinite": int(value.size - finite.size),
        "zero_fraction": float(np.count_nonzero(value == 0) / value.size) if value.size else 0.0,
        "mean": float(finite.mean()) if finite.size else float("nan"),
        "std": float(finite.std()) if finite.size else float("nan"),
    }


def _paths(variables: Sequence[Any]) -> list[str]:
    """Each variable's `path`; a repeated path gets `#1`, `#2`, … so no key is lost."""
    seen: dict[str, int] = {}
    paths = []
    for variable in variables:
        path = variable.path
        count = seen.get(path, 0)
        seen[path] = count + 1
        paths.append(path if count == 0 else f"{path}#{count}")
    return paths


def layer_outputs(model: Any, x: Any) -> dict[str, Any]:
    """The activations of every layer of `model` for the inputs `x`, in inference mode.

    Use it to look for dead units or exploding activations. A functional model over every
    layer's output is built and called once with `training=False`. A nested model counts
    as one layer: its output, not those of its own layers (call `layer_outputs` on it for
    those). Input layers are left out. A layer with several outputs gives them in its own
    structure (a list of arrays); a layer called more than once gives the output of its
    first call (Keras' `layer.output`).

    Args:
        model: a functional model, or a Sequential model built from `keras.Input`.
        x: inputs as the model takes them.

    Returns:
        `{layer.name: activations}` (NumPy arrays) in the order of `model.layers`.

    Raises:
        ValueError: the model has no known inputs.

    Example:
        >>> {name: a.shape for name, a in layer_outputs(model, x[:8]).items()}
        {'dense': (8, 16), 'dense_1': (8, 3)}
    """
    if not getattr(model, "inputs", None):
        raise ValueError(_NOT_BUILT.format(name=model.name))
    layers = [layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]
    probe = keras.Model(_input_structure(model), [layer.output for layer in layers])
    outputs = probe(x, training=False)
    arrays = keras.tree.map_structure(keras.ops.convert_to_numpy, outputs)
    return {layer.name: value for layer, value in zip(layers, arrays)}


def _input_structure(model: Any) -> Any:
    """The inputs in the structure the model was built with (a tensor, list or dict)."""
    try:
        return model.input
    except AttributeError:  # a Sequential model keeps its inputs only as a list
        inputs = model.inputs
        return inputs[0] if len(inputs) == 1 else inputs


def snapshot(model: Any, x: Any, y: Any, sample_weight: Any = None) -> dict[str, Any]:
    """`{"gradient_norms": ..., "weight_health": ...}` of `model` on one slice.

    Use it to build an `IntrospectionLog` record: add `iter` and `epoch` to it.
    """
    return {
        "gradient_norms": gradient_norms(model, x, y, sample_weight),
        "weight_health": weight_health(model),
    }


class IntrospectionLog:
    """`introspection.jsonl` in a run folder: one JSON object per line and per snapshot.

    Each record holds `iter` (the value of `iters_fit`), `epoch`, and what `snapshot`
    returns. A record is one write, whole or not at all; a kill in the middle of one
    leaves a torn last line that `read` drops. Non-finite numbers are written as
    `NaN`/`Infinity`, which Python's `json` reads back.

    Args:
        run_dir: the run folder (the file is created at the first `append`).

    Example:
        >>> log = IntrospectionLog(tg.run_dir)
        >>> log.append({"iter": tg.iters_fit, "epoch": tg.epoch, **snapshot(model, x, y)})
        >>> log.close()
    """

    def __init__(self, run_dir: str) -> None:
        self.path = os.path.join(run_dir, INTROSPECTION_FILE)
        self._file = RecordFile(self.path)  # a symlink in its place is refused

    def append(self, record: dict[str, Any]) -> None:
        """Write `record` as the file's last line.

        Raises:
            ValueError: `record` has no int `iter`.
            CheckpointWriteError: the write failed; the file is as it was.
        """
        if not isinstance(record.get("iter"), int):
            raise ValueError(_NO_ITER.format(keys=sorted(record)))
        line = json.dumps(record, separators=(",", ":")) + "\n"
        self._file.append(line.encode("utf-8"))

    def read(self) -> list[dict[str, Any]]:
        """Every whole record, in the order written."""
        return read_introspection(os.path.dirname(self.path))

    def truncate(self, iters: int) -> None:
        """Keep the records of the first `iters` iters (drops what a killed run wrote)."""
        self.close()
        ProvenanceLog(self.path).truncate(iters)  # the same JSON-lines rules

    def close(self) -> None:
        self._file.close()


def read_introspection(run_dir: str) -> list[dict[str, Any]]:
    """The records of `introspection.jsonl` in `run_dir` ([] when there is none).

    A torn last line (a kill in the middle of a write) is dropped; any other line that is
    not a record is dropped with a warning.
    """
    # provenance.jsonl has the same format: one object with an int `iter` per line.
    return ProvenanceLog(os.path.join(run_dir, INTROSPECTION_FILE)).read()
