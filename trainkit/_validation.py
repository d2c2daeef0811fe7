"""Argument checks shared by every public constructor.

Errors follow one shape: what was wrong, what is expected, how to fix it, and end with
`Received: name=value`.
"""

from __future__ import annotations

import difflib
import numbers
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from trainkit._argument_owners import misplaced_hint

_REPR_LIMIT = 80  # longer reprs are replaced by a description of the value


def _has_shape(value: Any) -> bool:
    return not isinstance(value, type) and hasattr(value, "shape") and hasattr(value, "dtype")


def describe(value: Any) -> str:
    """A short, data-free description of `value` for error messages.

    Arrays (anything with `shape` and `dtype`: `np.ndarray`, `np.memmap`,
    `h5py.Dataset`, tensors) become `ndarray(shape=(10, 4), dtype=float64)`; containers
    holding arrays and long values become their type and length; short values keep
    their repr. Messages show this, never the data itself.

    Example:
        >>> describe(np.zeros((10, 4)))
        'ndarray(shape=(10, 4), dtype=float64)'
    """
    if _has_shape(value) and not isinstance(value, np.generic):  # NumPy scalars: repr
        shape = tuple(None if d is None else int(d) for d in value.shape)
        return f"{type(value).__name__}(shape={shape}, dtype={value.dtype})"
    if isinstance(value, (list, tuple, Mapping)):
        items = value.values() if isinstance(value, Mapping) else value
        if any(_has_shape(item) for item in items):
            return f"{type(value).__name__} of length {len(value)} holding arrays"
    text = repr(value)
    if len(text) <= _REPR_LIMIT and "\n" not in text:
        return text
    if isinstance(value, str):
        return f"{value[:40]!r}... ({len(value)} characters)"
    if isinstance(value, (list, tuple, Mapping, set)):
        return f"{type(value).__name__} of length {len(value)}"
    return f"<{type(value).__name__}>"


def closest(name: str, candidates: Iterable[str]) -> str | None:
    """The candidate most similar to `name`, or None when nothing is close."""
    matches = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.5)
    return matches[0] if matches else None


def check_unknown_keys(owner: str, received: Mapping[str, Any], valid: Iterable[str]) -> None:
    """Raise ValueError for keys of `received` not in `valid`, suggesting the closest."""
    valid = sorted(valid)
    for key in received:
        if key in valid:
            continue
        elsewhere = misplaced_hint(owner, key)
        if elsewhere is not None:  # another object takes it, or DeepTrain's name for it
            raise ValueError(
                f"{owner} does not take `{key}`: {elsewhere} Received: "
                f"{key}={describe(received[key])}"
            )
        hint = closest(key, valid)
        suggestion = f" Did you mean {hint!r}?" if hint else ""
        raise ValueError(
            f"{owner} got an unknown argument {key!r}.{suggestion} "
            f"Valid arguments are: {', '.join(valid)}. "
            f"Received: {key}={describe(received[key])}"
        )


def is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def check_int(name: str, value: Any, *, minimum: int = 0, maximum: int | None = None) -> int:
    """Return `value` as int if it is an integer in `[minimum, maximum]`, else raise."""
    if not is_int(value):
        raise TypeError(f"`{name}` must be an int. Received: {name}={describe(value)}")
    if value < minimum:
        kind = "positive" if minimum == 1 else f">= {minimum}"
        raise ValueError(f"`{name}` must be a {kind} int. Received: {name}={value!r}")
    if maximum is not None and value > maximum:
        raise ValueError(
            f"`{name}` must be an int from {minimum} to {maximum}. Received: {name}={value!r}"
        )
    return int(value)


def check_bool(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"`{name}` must be True or False. Received: {name}={describe(value)}")
    return value


def check_choice(name: str, value: Any, choices: Iterable[Any]) -> Any:
    choices = list(choices)
    if value not in choices:
        listed = ", ".join(repr(c) for c in choices)
        raise ValueError(f"`{name}` must be one of {listed}. Received: {name}={describe(value)}")
    return value
