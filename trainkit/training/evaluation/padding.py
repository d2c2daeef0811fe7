"""`pad_val_batches=True`: score every validation sample of a model with a fixed batch size.

A stateful model (and any model whose `Input` fixes the batch size) can only be fed
full batches, so a validation set whose size is not a multiple of the batch size
would lose its last partial batch (`drop_remainder=True`): 168 of 175 samples scored.
With the option, that partial batch is padded to the model's batch size with rows of
zeros (in `x` and in the labels) that weigh 0:

* evaluate mode: the real rows' sample weights (1, or their class and slice weights)
  are scaled by `batch_size / real_rows` and the padding rows get 0, so Keras' default
  `'sum_over_batch_size'` loss, `sum(w * l) / batch_size`, equals the loss of the
  real rows alone, and weighted-mean metrics (accuracy, ...) are unchanged by the
  scale; the batch then counts with its real rows in the validation's means;
* predict mode, `tg.predict()` and `tg.evaluate()`: the padding rows' predictions are
  dropped before anything else sees them.

Rows of a batch are independent in Keras' recurrent layers, so the real rows' outputs
do not depend on what the padding rows hold. A model without a fixed batch size needs
no padding: there the option does nothing.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from trainkit.training.slices.steps import SAMPLES_KEY, num_samples, stateful_layers


def fixed_batch_size(model: Any) -> int | None:
    """The batch size the model's inputs (or its stateful layers' states) fix, or None."""
    try:
        inputs = list(model.inputs or [])
    except (AttributeError, ValueError):  # a model without a known input
        inputs = []
    sizes = {int(tensor.shape[0]) for tensor in inputs if tensor.shape[0] is not None}
    for layer in stateful_layers(model) if not sizes else []:
        sizes.update(_state_batch_sizes(layer))
    return sizes.pop() if len(sizes) == 1 else None


def _state_batch_sizes(layer: Any) -> set[int]:
    layers = [layer]
    if hasattr(layer, "forward_layer"):  # Bidirectional
        layers = [layer.forward_layer, layer.backward_layer]
    sizes: set[int] = set()
    for rnn in layers:
        for state in getattr(rnn, "states", None) or []:
            shape: tuple[Any, ...] = tuple(getattr(state, "shape", ()))
            if shape and shape[0] is not None:
                sizes.add(int(shape[0]))
    return sizes


def padded_rows(model: Any, x: Any, enabled: bool) -> int:
    """How many zero rows the slice `x` needs (0 when it is full or the option is off)."""
    if not enabled:
        return 0
    size = fixed_batch_size(model)
    return max(0, size - num_samples(x)) if size is not None else 0


def _pad(structure: Any, rows: int) -> Any:
    import tensorflow as tf

    def pad(array: Any) -> np.ndarray:
        array = np.asarray(array)
        zeros = np.zeros((rows, *array.shape[1:]), array.dtype)
        return np.concatenate([array, zeros])

    return tf.nest.map_structure(pad, structure)


def evaluate_slice(
    step: Any, model: Any, x: Any, labels: Any, weights: Any, enabled: bool
) -> tuple[dict[str, float], int]:
    """`(logs, samples)`: the test step's values on the real rows of a (padded) slice.

    Use in place of `step(x, labels, weights)`; `samples` is what the slice weighs in
    the validation's means.
    """
    real = num_samples(x)
    rows = padded_rows(model, x, enabled)
    if rows == 0 or labels is None:
        logs = step(*((x, labels) if weights is None else (x, labels, weights)))
        # Under a strategy the step counts the slice's rows on every worker.
        return logs, int(logs.pop(SAMPLES_KEY, real))
    if _keras_test_step(model):
        return _evaluate_real_rows(model, x, labels, weights, rows), real
    # A custom test_step: zero weights for the padding rows, the real rows' scaled so
    # that `sum(w * l) / batch_size` is their own mean.
    size = real + rows
    real_weights = np.ones(real, np.float32) if weights is None else np.asarray(weights)
    scaled = real_weights.astype(np.float32) * np.float32(size / real)
    padded_weights = np.concatenate([scaled, np.zeros(rows, np.float32)])
    return step(_pad(x, rows), _pad(labels, rows), padded_weights), real


_INEXACT_PADDING = (
    "pad_val_batches=True with a model that defines its own test_step: the padding rows "
    "get sample weight 0, but Keras passes sample weights only to `weighted_metrics`, so "
    "the compiled `metrics` {names} would count the padding rows. Compile them as "
    "`weighted_metrics=[...]` instead, use eval_fn='predict', or drop pad_val_batches. "
    "Received: pad_val_batches=True, metrics={names}"
)


def check_padding_is_exact(model: Any) -> None:
    """Refuse padding where zero weights cannot hide the padding rows (custom test_step).

    Keras' own `test_step` is replaced by a pass on the real rows only; a custom one
    sees the padded slice with zero weights, which plain (unweighted) metrics ignore.
    """
    if _keras_test_step(model):
        return
    compiled = getattr(model, "_compile_metrics", None)
    plain = getattr(compiled, "_user_metrics", None) if compiled is not None else None
    if plain:
        names = [getattr(m, "name", None) or getattr(m, "__name__", None) or m for m in plain]
        raise ValueError(_INEXACT_PADDING.format(names=names))


def _keras_test_step(model: Any) -> bool:
    import keras

    return type(model).test_step is keras.Model.test_step


def _evaluate_real_rows(model: Any, x: Any, labels: Any, weights: Any, rows: int) -> dict:
    """What Keras' `test_step` logs, with the forward pass on the padded slice and the
    loss and metrics on the real rows only (eager: one slice per validation)."""
    import tensorflow as tf

    real = num_samples(x)
    outputs = model(_pad(x, rows), training=False)
    y_pred = tf.nest.map_structure(lambda out: out[:real], outputs)
    model.reset_metrics()
    loss = model.compute_loss(x=x, y=labels, y_pred=y_pred, sample_weight=weights, training=False)
    logs = dict(model.compute_metrics(x, labels, y_pred, sample_weight=weights))
    logs["loss"] = loss  # the loss tracker is updated by test_step, not by compute_metrics
    values = _flat_floats(logs)
    model.reset_metrics()
    return values


def _flat_floats(logs: dict[str, Any]) -> dict[str, float]:
    """Scalars as floats; a vector value as `name_0`, `name_1`, ... (as the compiled step)."""
    flat = {}
    for name, value in logs.items():
        array = np.asarray(value, np.float32)
        if array.ndim == 0:
            flat[name] = float(array)
            continue
        for index, item in enumerate(array.reshape(-1)):
            flat[f"{name}_{index}"] = float(item)
    return flat


def predict_slice(predict: Any, model: Any, x: Any, enabled: bool) -> Any:
    """`predict(model, x)`, padding a partial slice first and dropping the pad rows' outputs."""
    rows = padded_rows(model, x, enabled)
    if rows == 0:
        return predict(model, x)
    import tensorflow as tf

    real = num_samples(x)
    return tf.nest.map_structure(lambda out: np.asarray(out)[:real], predict(model, _pad(x, rows)))
