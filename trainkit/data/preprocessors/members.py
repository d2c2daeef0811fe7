"""Members of structured batches and ragged batches, as the built-in preprocessors see them.

A batch (or labels) reaches `process()` in one of three forms:

* dense: an array `(samples, ...)`;
* ragged: a `list` of arrays that share trailing dimensions and differ in length;
* structured: a `dict` or a `tuple` of members, each dense or ragged.

`keys=` on a built-in names members of a structured batch: strings for a dict, ints
(positions) for a tuple.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from trainkit._validation import closest, describe, is_int

Key = str | int
KeysArg = Key | Sequence[Key] | None


def is_ragged(value: Any) -> bool:
    """A ragged batch: a list of per-sample arrays (a tuple is a structure)."""
    return isinstance(value, list)


def is_structured(value: Any) -> bool:
    return isinstance(value, (dict, tuple))


def check_keys(keys: KeysArg) -> tuple[Key, ...] | None:
    """`keys` as a tuple of member names/positions, or None; raise on anything else."""
    if keys is None:
        return None
    if isinstance(keys, str) or is_int(keys):
        return (keys,)  # type: ignore[return-value]
    if (
        isinstance(keys, (list, tuple))
        and keys
        and all(isinstance(k, str) or is_int(k) for k in keys)
    ):
        return tuple(k if isinstance(k, str) else int(k) for k in keys)
    raise TypeError(
        "`keys` names the members of structured data to touch: a member name (dict "
        "batches) or position (tuple batches), a non-empty list of them, or None for every "
        f"member that fits. Received: keys={describe(keys)}"
    )


def members(value: Any) -> list[tuple[Key | None, Any]]:
    """`(key, member)` pairs: a dict's items, a tuple's positions, else `[(None, value)]`."""
    if isinstance(value, dict):
        return list(value.items())
    if isinstance(value, tuple):
        return list(enumerate(value))
    return [(None, value)]


def rebuild(value: Any, updates: dict[Key | None, Any]) -> Any:
    """`value` with the members in `updates` replaced, in the same structure."""
    if isinstance(value, dict):
        return {k: updates.get(k, v) for k, v in value.items()}
    if isinstance(value, tuple):
        return tuple(updates.get(k, v) for k, v in enumerate(value))
    return updates.get(None, value)


def select(
    owner: str,
    pairs: list[tuple[Key | None, Any]],
    keys: tuple[Key, ...] | None,
    fits: Callable[[Any], bool],
) -> list[Key | None]:
    """The members to touch among `pairs` (from `members()` or `shapes()`).

    Those named by `keys`, else every member for which `fits(member)` is true.

    Raises:
        ValueError: `keys` is given for a batch that is not structured, or names a
            member the batch does not have.
    """
    if keys is None:
        return [key for key, member in pairs if fits(member)]
    available = [key for key, _ in pairs]
    if available == [None]:
        raise ValueError(
            f"{owner} got keys={list(keys)} but the batch is not structured (a dict or a "
            f"tuple of members); it is {describe(pairs[0][1])}. Drop `keys=` for a single "
            f"input. Received: keys={list(keys)}"
        )
    for key in keys:
        if key not in available:
            hint = closest(str(key), [str(k) for k in available])
            suggestion = f" Did you mean {hint!r}?" if hint is not None else ""
            raise ValueError(
                f"{owner} keys={list(keys)} names member {key!r}, which the batch does not "
                f"have.{suggestion} Its members are {available}. Received: keys={list(keys)}"
            )
    return list(keys)


def shapes(sample_shape: Any) -> list[tuple[Key | None, tuple[Any, ...]]]:
    """`(key, shape)` of each member of a sample shape (a tuple, or a dict/tuple of them)."""
    if isinstance(sample_shape, dict):
        return [(k, tuple(v)) for k, v in sample_shape.items()]
    if isinstance(sample_shape, tuple) and sample_shape and isinstance(sample_shape[0], tuple):
        return [(k, tuple(v)) for k, v in enumerate(sample_shape)]
    return [(None, tuple(sample_shape))]
