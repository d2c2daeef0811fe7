"""Every value of a Keras model needed to continue bitwise, as named NumPy arrays.

`keras.models.load_model` and `model.load_weights` lose a Dropout layer's seed-generator
state, stateful RNN states are not in `model.variables`, and metric accumulators live in
`model.metrics_variables`. So a checkpoint stores, by position in each collection:
`model.variables` (seed-generator states included), `optimizer.variables`,
`model.metrics_variables`, each stateful layer's `states`, and Keras' global seed
generator; restoring assigns every saved value into the freshly built model.
"""

from __future__ import annotations

from typing import Any

import numpy as np

_GROUPS = ("model", "optimizer", "metrics", "rnn_states", "global_seed")


def _rnn_states(model: Any) -> list[Any]:
    """State variables of every stateful layer (both directions of a Bidirectional)."""
    states = []
    for layer in stateful_layers(model):
        inner = (
            [layer.forward_layer, layer.backward_layer]
            if hasattr(layer, "forward_layer")
            else [layer]
        )
        for rnn in inner:
            states += [state for state in (getattr(rnn, "states", None) or []) if state is not None]
    return states


def _global_seed_variables() -> list[Any]:
    from keras.src.random.seed_generator import global_seed_generator

    return [global_seed_generator().state]


def _collections(model: Any) -> dict[str, list[Any]]:
    return {
        "model": list(model.variables),
        "optimizer": list(model.optimizer.variables) if model.optimizer is not None else [],
        "metrics": list(model.metrics_variables),
        "rnn_states": _rnn_states(model),
        "global_seed": _global_seed_variables(),
    }


def capture(model: Any) -> tuple[dict[str, np.ndarray], dict[str, list[str]]]:
    """`(arrays, paths)`: every value keyed `'{group}/{index}'`, and each group's paths."""
    arrays, paths = {}, {}
    for group, variables in _collections(model).items():
        paths[group] = [str(getattr(v, "path", "")) for v in variables]
        for index, variable in enumerate(variables):
            arrays[f"{group}/{index}"] = np.array(variable.numpy(), copy=True)
    return arrays, paths


def restore(
    model: Any,
    arrays: dict[str, np.ndarray],
    paths: dict[str, list[str]],
    sample: Any = None,
    build: Any = None,
) -> None:
    """Assign saved values into a freshly built model (same architecture and compile).

    Args:
        model: the compiled model, built the same way as the saved one.
        arrays, paths: what `capture()` returned.
        sample: an `(x, y)` slice; if the model has not run yet, one forward pass and
            one metrics update on it create the lazily built variables (every value is
            overwritten right after).
        build: under a tf.distribute strategy, `build(model, sample)` creates those
            variables in the strategy's scope instead. Metric variables are then left as
            they are: they are summed across replicas when read, and between steps they
            hold zeros anyway (every step resets them).

    Raises:
        ValueError: a collection has another number of variables or a variable another
            shape than when saved; the message names it.
    """
    if build is None:
        ensure_built(model, sample)
    elif sample is not None:
        build(model, tuple(part for part in sample if part is not None))
    for group, variables in _collections(model).items():
        saved_paths = paths.get(group, [])
        if len(saved_paths) != len(variables):
            raise ValueError(
                f"The checkpoint holds {len(saved_paths)} {group} variables but the model has "
                f"{len(variables)}. Build and compile the same model (layers, optimizer, "
                "metrics) before resuming."
            )
        for index, variable in enumerate(variables):
            value = arrays[f"{group}/{index}"]
            if tuple(value.shape) != tuple(variable.shape):
                raise ValueError(
                    f"Variable {saved_paths[index]!r} ({group} #{index}) was saved with shape "
                    f"{value.shape} but the model's has shape {tuple(variable.shape)}."
                )
            if build is not None and group == "metrics":
                continue
            variable.assign(value)


def ensure_built(model: Any, sample: Any = None) -> None:
    """Create the variables Keras builds lazily: metrics, stateful states, optimizer slots."""
    if sample is not None:
        x, y = sample
        y_pred = model(x, training=False)
        if y is not None:
            model.compute_loss(x, y, y_pred)
            model.compute_metrics(x, y, y_pred)
    optimizer = model.optimizer
    if optimizer is not None and not optimizer.built:
        optimizer.build(model.trainable_variables)


def stateful_layers(model: Any) -> list[Any]:
    """Every layer with `stateful=True` and a `reset_state()`, nested models included.

    A `Bidirectional` wrapper is returned itself (its `reset_state()` resets both
    directions) and its inner layers are not listed twice.
    """
    found: list[Any] = []
    _collect_stateful(model, found, set())
    return found


def _collect_stateful(layer: Any, found: list[Any], seen: set[int]) -> None:
    if id(layer) in seen:
        return
    seen.add(id(layer))
    if getattr(layer, "stateful", False) and callable(getattr(layer, "reset_state", None)):
        found.append(layer)
        if hasattr(layer, "forward_layer"):  # Bidirectional resets both directions
            seen.update({id(layer.forward_layer), id(layer.backward_layer)})
            return
    for child in _children(layer):
        _collect_stateful(child, found, seen)


def _children(layer: Any) -> list[Any]:
    children = list(getattr(layer, "layers", None) or [])
    for name in ("layer", "forward_layer", "backward_layer"):
        child = getattr(layer, name, None)
        if child is not None and not isinstance(child, (list, tuple)):
            children.append(child)
    return children
