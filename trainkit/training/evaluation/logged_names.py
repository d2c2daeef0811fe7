"""The names Keras' `test_step` will log for a compiled model, known before any step.

Evaluate-mode validation records what the model's `test_step` returns, so `key_metric`
and `val_metrics` must be among those names. They are worked out here from the compile
arguments alone — no step is run and no metric object is created, so nothing about the
model or Keras' global state changes — following Keras 3's naming in
`CompileMetrics.result()`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def logged_names(model: Any) -> list[str] | None:
    """The names Keras' `test_step` will log for a compiled model.

    Worked out from the compile arguments alone (no step, no new metric objects):
    `'loss'`, then `metrics`, then `weighted_metrics`, named as Keras names them (a
    string as given, an object by its `name`, a function by its snake-case name;
    repeats get `_1`, `_2`; a weighted metric repeating a name gets `weighted_`).
    Several outputs: `'loss'`, `'<output>_loss'` per output, then each output's metrics
    as `'<output>_<name>'` (metrics given per output: a dict or one list per output).
    None when the names cannot be known in advance: a custom
    `test_step`/`compute_metrics`/`metrics`, metrics outside `compile()`, one metrics
    list for several outputs, or entries Keras would resolve in other ways.
    """
    import keras

    for method in ("test_step", "compute_metrics", "get_metrics_result", "metrics"):
        if getattr(type(model), method, None) is not getattr(keras.Model, method, None):
            return None
    compiled = getattr(model, "_compile_metrics", None)
    known = {id(getattr(model, "_loss_tracker", None)), id(compiled)}
    compile_loss = getattr(model, "_compile_loss", None)  # per-output loss trackers
    known.update(id(metric) for metric in getattr(compile_loss, "metrics", None) or [])
    if any(id(metric) not in known for metric in model.metrics):
        return None  # metrics outside compile()
    if not _single_output(model):
        return _multi_output_names(model, compiled)
    if compiled is None:
        return ["loss"]
    plain = _metric_names(getattr(compiled, "_user_metrics", None))
    weighted = _metric_names(getattr(compiled, "_user_weighted_metrics", None))
    if plain is None or weighted is None:
        return None
    return ["loss", *_unique_names(plain, weighted)]


def _multi_output_names(model: Any, compiled: Any) -> list[str] | None:
    """Several outputs: `'loss'`, `'<output>_loss'` each, then `'<output>_<metric>'`.

    Known only for metrics given per output (a dict by output name or one list per
    output); None otherwise.
    """
    from trainkit.training.slices.structure import output_names

    names = output_names(model)
    if names is None:
        return None
    logged = ["loss", *(f"{name}_loss" for name in names)]
    if compiled is None:
        return logged
    plain = _per_output(getattr(compiled, "_user_metrics", None), names)
    weighted = _per_output(getattr(compiled, "_user_weighted_metrics", None), names)
    if plain is None or weighted is None:
        return None
    for name in names:
        own_plain, own_weighted = _metric_names(plain[name]), _metric_names(weighted[name])
        if own_plain is None or own_weighted is None:
            return None
        logged.extend(f"{name}_{metric}" for metric in _unique_names(own_plain, own_weighted))
    return logged


def _per_output(entries: Any, names: list[str]) -> dict[str, Any] | None:
    """Compile metrics per output name; None when not given per output."""
    if entries is None:
        return {name: [] for name in names}
    if isinstance(entries, dict):
        if not set(entries) <= set(names):
            return None
        return {name: entries.get(name) or [] for name in names}
    per_output = isinstance(entries, (list, tuple)) and len(entries) == len(names)
    if per_output and all(item is None or isinstance(item, (list, tuple)) for item in entries):
        return {name: item or [] for name, item in zip(names, entries)}
    return None


def _single_output(model: Any) -> bool:
    try:
        return len(model.outputs) == 1
    except (AttributeError, ValueError, TypeError):
        return False


def _metric_names(entries: Any) -> list[str] | None:
    from keras.src.utils.naming import to_snake_case

    if entries is None:
        return []
    if not isinstance(entries, (list, tuple)):
        entries = [entries]
    names: list[str] = []
    for entry in _flatten(entries):
        if isinstance(entry, str):
            names.append(entry)
        elif isinstance(getattr(entry, "name", None), str):
            names.append(entry.name)
        elif callable(entry) and not isinstance(entry, type) and hasattr(entry, "__name__"):
            names.append(to_snake_case(entry.__name__))
        else:
            return None  # a class or a config dict: Keras builds it, we cannot name it
    return names


def _flatten(entries: Sequence[Any]) -> list[Any]:
    flat: list[Any] = []
    for entry in entries:
        flat.extend(_flatten(entry) if isinstance(entry, (list, tuple)) else [entry])
    return flat


def _unique_names(plain: list[str], weighted: list[str]) -> list[str]:
    """Keras' `CompileMetrics.result()` naming of repeated names."""
    counts: dict[str, int] = {}
    names = []
    for name in plain:
        if name in counts:
            counts[name] += 1
            name = f"{name}_{counts[name] - 1}"
        else:
            counts[name] = 1
        names.append(name)
    for name in weighted:
        if name in counts:
            name = f"weighted_{name}"
            if name in counts:
                counts[name] += 1
                name = f"{name}_{counts[name] - 1}"
            else:
                counts[name] = 1
        else:
            counts[name] = 1
        names.append(name)
    return names
