"""Argument checks shared by every public constructor.

Errors follow one shape: what was wrong, what is expected, how to fix it, and end with
`Received: name=value`.
"""

from __future__ import annotations

import difflib
import numbers
from collections.abc import Iterable, Mapping
from typing import Any


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
        hint = closest(key, valid)
        suggestion = f" Did you mean {hint!r}?" if hint else ""
        raise ValueError(
            f"{owner} got an unknown argument {key!r}.{suggestion} "
            f"Valid arguments are: {', '.join(valid)}. Received: {key}={received[key]!r}"
        )


def is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def check_int(name: str, value: Any, *, minimum: int = 0) -> int:
    """Return `value` as int if it is an integer >= `minimum`, else raise."""
    if not is_int(value):
        raise TypeError(f"`{name}` must be an int. Received: {name}={value!r}")
    if value < minimum:
        kind = "positive" if minimum == 1 else f">= {minimum}"
        raise ValueError(f"`{name}` must be a {kind} int. Received: {name}={value!r}")
    return int(value)


def check_bool(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"`{name}` must be True or False. Received: {name}={value!r}")
    return value


def check_choice(name: str, value: Any, choices: Iterable[Any]) -> Any:
    choices = list(choices)
    if value not in choices:
        listed = ", ".join(repr(c) for c in choices)
        raise ValueError(f"`{name}` must be one of {listed}. Received: {name}={value!r}")
    return value
