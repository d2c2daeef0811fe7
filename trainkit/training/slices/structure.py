"""Structured slices: `(x, y[, sample_weight])` with arrays, dicts or tuples of arrays.

A slice is what a preprocessor returns: `(x, y)` or `(x, y, sample_weight)`, Keras'
convention. `x` and `y` may each be an array, a dict (keys are the model's input or
output names, as `model.fit` takes them) or a tuple/list of arrays (in the model's
input or output order). The helpers here walk such structures without TensorFlow:

* `unpack_slice` splits a served slice into `(x, y, sample_weight)`;
* `output_items` pairs the members of labels or predictions with the model's output
  names, so per-output metrics are named `<output>_<metric>` as Keras names them;
* `concat_rows`, `take_rows` stack and select rows of every member alike; a member that
  a preprocessor's `post_process()` turned into a list of per-sample arrays (ragged
  outputs) is kept as a `SampleList`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np


def unpack_slice(item: Any) -> tuple[Any, Any, Any]:
    """`(x, y, sample_weight)` of a served slice; `sample_weight` None when not served."""
    x, y, *rest = item
    return x, y, (rest[0] if rest else None)


def is_structured(value: Any) -> bool:
    """A dict, tuple or list of members (not one array)."""
    return isinstance(value, (dict, list, tuple))


def output_names(model: Any) -> list[str] | None:
    """The names of a model's outputs when it has several (as Keras names their metrics).

    A dict-output model's names are its output dict's keys; a list-output model's are
    `model.output_names`. None for a single output or a model whose outputs are unknown.
    """
    try:
        outputs = model.outputs
    except (AttributeError, ValueError):
        return None
    if not outputs or len(outputs) < 2:
        return None
    struct = getattr(model, "_outputs_struct", None)
    if isinstance(struct, dict):
        return [str(key) for key in struct]
    names = list(getattr(model, "output_names", None) or [])
    return [str(name) for name in names] if len(names) == len(outputs) else None


def output_items(names: Sequence[str] | None, structure: Any) -> list[tuple[str | None, Any]]:
    """`(output name, member)` pairs of labels or predictions in the model's output order.

    A single output gives `[(None, structure)]`. A dict is read by name; a tuple or list
    by position.

    Raises:
        ValueError: a structure that does not match the model's outputs.
    """
    if names is None:
        return [(None, structure)]
    if isinstance(structure, dict):
        missing = [name for name in names if name not in structure]
        if missing:
            raise ValueError(
                f"The labels or predictions are a dict with keys {sorted(structure)}, but "
                f"the model's outputs are {list(names)}: give one member per output, keyed "
                f"by output name. Received: keys={sorted(structure)}"
            )
        return [(name, structure[name]) for name in names]
    if isinstance(structure, (list, tuple)) and len(structure) == len(names):
        return list(zip(names, structure))
    raise ValueError(
        f"The model has {len(names)} outputs ({', '.join(map(repr, names))}), but the labels "
        f"or predictions are {describe(structure)}. Give one member per output: a dict by "
        "output name or a tuple in the outputs' order."
    )


def map_structure(function: Callable[..., Any], first: Any, *others: Any) -> Any:
    """`function` on each member of `first` (and the same members of `others`)."""
    if isinstance(first, dict):
        return {
            key: map_structure(function, first[key], *(o[key] for o in others)) for key in first
        }
    if isinstance(first, (list, tuple)):
        parts = [map_structure(function, *members) for members in zip(first, *others)]
        return type(first)(parts)
    return function(first, *others)


class SampleList(list):
    """One member's rows as a list of per-sample arrays (ragged outputs).

    What `concat_rows` makes of a member that a preprocessor's `post_process()` turned
    from one padded array into a list of arrays of the samples' own lengths. A plain
    `list` otherwise; rows are selected by index.
    """


def concat_rows(parts: list[Any], template: Any = None) -> Any:
    """The parts' rows stacked member by member (each part one slice's structure).

    `template` is the model's own structure for one slice (the raw outputs): where a
    part holds a list in place of one of the template's arrays, that member is a list
    of per-sample arrays and the lists are joined into a `SampleList`.
    """
    first = parts[0]
    template = first if template is None else template
    if isinstance(first, list) and not is_structured(template):
        return SampleList(row for part in parts for row in part)
    if isinstance(first, dict):
        return {key: concat_rows([p[key] for p in parts], template[key]) for key in first}
    if isinstance(first, (list, tuple)):
        members = [concat_rows([p[i] for p in parts], template[i]) for i in range(len(first))]
        return type(first)(members)
    return np.concatenate([np.asarray(part) for part in parts])


def take_rows(structure: Any, rows: Any) -> Any:
    """The given rows (indices or a boolean mask) of every member."""
    if isinstance(structure, SampleList):
        rows = np.asarray(rows)
        indices = np.flatnonzero(rows) if rows.dtype == bool else rows
        return SampleList(structure[int(i)] for i in indices)
    if isinstance(structure, dict):
        return {key: take_rows(value, rows) for key, value in structure.items()}
    if isinstance(structure, (list, tuple)):
        return type(structure)(take_rows(value, rows) for value in structure)
    return np.asarray(structure)[rows]


def first_member(structure: Any) -> Any:
    """The first array (or `SampleList`) of a structure, in the order above."""
    while is_structured(structure) and not isinstance(structure, SampleList):
        structure = next(iter(structure.values())) if isinstance(structure, dict) else structure[0]
    return structure


def describe(value: Any) -> str:
    """A short description of a structure: shapes and dtypes, never the values."""
    if isinstance(value, dict):
        return "a dict {" + ", ".join(f"{k!r}: {_leaf(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return f"a {type(value).__name__} of {len(value)} [" + ", ".join(map(_leaf, value)) + "]"
    return _leaf(value)


def _leaf(value: Any) -> str:
    if isinstance(value, (dict, list, tuple)):
        return describe(value)
    if hasattr(value, "shape"):
        return f"array{tuple(value.shape)}"
    return type(value).__name__
