"""Sources of several members (`StructuredSource`) and of ragged samples (`RaggedSource`).

A `StructuredSource` holds a dict or tuple of sources with the same sets; every read
returns the same structure, each member read with the same rows, so whatever the plan
does (shuffling, splitting and combining sets, sharding) keeps members aligned.

A `RaggedSource` holds a list of arrays that share their trailing shape and differ in
length (points per cloud, steps per sequence); a read returns a list of them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from trainkit.data.sources.arrays import equal_sets
from trainkit.data.sources.base import Source, check_numeric

Members = dict[str, Source] | tuple[Source, ...]


def is_structure(value: Any) -> bool:
    """A dict or tuple of sources (not a list: a list of arrays is ragged data)."""
    return isinstance(value, (dict, tuple))


def member_items(structure: Any) -> list[tuple[str, Any]]:
    """`(name, member)` pairs: dict keys, or tuple positions as strings."""
    if isinstance(structure, dict):
        return [(str(key), value) for key, value in structure.items()]
    return [(str(index), value) for index, value in enumerate(structure)]


def map_members(structure: Any, function: Callable[[Any], Any]) -> Any:
    """`structure` with `function` applied to each member, keeping dict or tuple."""
    if isinstance(structure, dict):
        return {key: function(value) for key, value in structure.items()}
    return tuple(function(value) for value in structure)


class StructuredSource:
    """Members with the same sets, read together.

    Args:
        members: a dict or tuple of sources.
        role: 'data' or 'labels', for messages.

    Raises:
        ValueError: no members, or members with different numbers of samples or sets
            (the message names each member with its length).
    """

    def __init__(self, members: Members, role: str) -> None:
        items = member_items(members)
        if not items:
            raise ValueError(
                f"`{role}` is an empty {type(members).__name__}: give at least one member, "
                f"e.g. {role}={{'points': points, 'features': features}}."
            )
        self.members = members
        self.role = role
        first_name, first = items[0]
        lengths = {name: len(member) for name, member in items}
        if len(set(lengths.values())) > 1:
            listed = ", ".join(f"{name!r}: {n}" for name, n in lengths.items())
            raise ValueError(
                f"The members of `{role}` hold different numbers of samples ({listed}); "
                "every member needs one row per sample, in the same order."
            )
        for name, member in items[1:]:
            if member.set_nums != first.set_nums or member.set_sizes != first.set_sizes:
                raise ValueError(
                    f"The members {first_name!r} and {name!r} of `{role}` are cut into "
                    f"different sets ({first.description}: {len(first.set_nums)} sets, "
                    f"{member.description}: {len(member.set_nums)} sets); give every "
                    "member the same set files (the same numbers and sample counts)."
                )
        self.set_nums, self.set_sizes = list(first.set_nums), list(first.set_sizes)
        self.sample_shape: Any = map_members(members, lambda m: m.sample_shape)
        self.dtype: Any = map_members(members, lambda m: m.dtype)
        names = ", ".join(repr(name) for name, _ in items)
        kind = "dict" if isinstance(members, dict) else "tuple"
        self.description = f"`{role}` ({kind} of {names})"

    def items(self) -> Iterator[tuple[str, Source]]:
        yield from member_items(self.members)

    def map(self, function: Callable[[Source], Any]) -> Any:
        return map_members(self.members, function)

    def __len__(self) -> int:
        return len(member_items(self.members)[0][1])

    def read(self, start: int, stop: int) -> Any:
        return self.map(lambda member: member.read(start, stop))

    def take(self, indices: np.ndarray) -> Any:
        return self.map(lambda member: member.take(indices))

    def fingerprint(self) -> dict[str, Any]:
        return {"members": {name: member.fingerprint() for name, member in self.items()}}


class RaggedSource:
    """Samples of different lengths: a list of arrays with one trailing shape.

    Set `'k'` is the k-th `set_size`-sample range, as for an array. Rows handed out are
    read-only views of the user's arrays.

    Raises:
        TypeError: an element that is not a NumPy array.
        ValueError: no samples, a 0-d element, or elements whose trailing shapes or
            dtypes differ (the message names the first element that differs).
    """

    def __init__(self, arrays: list[Any], set_size: int, *, description: str) -> None:
        if not arrays:
            raise ValueError(f"{description} is an empty list: it holds no samples.")
        for index, array in enumerate(arrays):
            if not isinstance(array, np.ndarray):
                raise TypeError(
                    f"{description} is a list, read as ragged samples (one array per "
                    f"sample), but element {index} is a {type(array).__name__}. Make every "
                    "element a NumPy array shaped (length, ...), or pass one array."
                )
            if array.ndim < 1:
                raise ValueError(
                    f"{description} element {index} is 0-d; a ragged sample is an array "
                    "shaped (length, ...)."
                )
        first = arrays[0]
        for index, array in enumerate(arrays):
            if array.shape[1:] != first.shape[1:]:
                raise ValueError(
                    f"{description} holds ragged samples whose trailing shapes differ: "
                    f"element 0 is shaped {first.shape} and element {index} {array.shape}. "
                    "Ragged samples may differ in length (axis 0) only."
                )
            if array.dtype != first.dtype:
                raise ValueError(
                    f"{description} holds ragged samples of different dtypes: element 0 is "
                    f"{first.dtype}, element {index} {array.dtype}. Convert them to one "
                    "dtype (e.g. `[a.astype('float32') for a in samples]`)."
                )
        self.description = description
        self.dtype = check_numeric(description, np.dtype(first.dtype))
        self.sample_shape: tuple[Any, ...] = (None, *first.shape[1:])
        self.arrays = [_read_only(array) for array in arrays]
        self.lengths = [len(array) for array in arrays]
        self.set_sizes = equal_sets(len(arrays), set_size)
        self.set_nums = [str(k) for k in range(len(self.set_sizes))]
        digest = hashlib.sha1(np.asarray(self.lengths, np.int64).tobytes()).hexdigest()
        self._print = {
            "num_samples": len(arrays),
            "ragged": True,
            "trailing_shape": list(first.shape[1:]),
            "dtype": self.dtype.str,
            "lengths_sha1": digest[:16],
        }

    def __len__(self) -> int:
        return len(self.arrays)

    def read(self, start: int, stop: int) -> list[np.ndarray]:
        return self.arrays[start:stop]

    def take(self, indices: np.ndarray) -> list[np.ndarray]:
        return [self.arrays[int(i)] for i in indices]

    def fingerprint(self) -> dict[str, Any]:
        return dict(self._print)


def _read_only(array: np.ndarray) -> np.ndarray:
    view = array.view()
    view.flags.writeable = False
    return view
