"""Sources: where samples come from. `open_sources` picks them from the user's arguments."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import numpy as np

from trainkit._validation import describe
from trainkit.data.sources.arrays import ArraySource, rows_source
from trainkit.data.sources.base import Source, offsets_of
from trainkit.data.sources.indexed import is_py_dataset, is_random_access, open_indexed
from trainkit.data.sources.labels import open_labels_path
from trainkit.data.sources.layouts import open_data_path
from trainkit.data.sources.sets import SetSource
from trainkit.data.sources.structured import (
    RaggedSource,
    StructuredSource,
    is_structure,
    map_members,
    member_items,
)

if TYPE_CHECKING:
    from trainkit.data.plan import Batch

__all__ = [
    "ArraySource",
    "RaggedSource",
    "SetSource",
    "Source",
    "StructuredSource",
    "gather",
    "in_memory",
    "offsets_of",
    "open_sources",
]

_ARRAY_TYPES = "np.ndarray, np.memmap or h5py.Dataset"


def _is_array_like(value: Any) -> bool:
    if isinstance(value, np.ndarray):
        return True
    module = type(value).__module__ or ""
    return module.startswith("h5py") and type(value).__name__ == "Dataset"


def open_sources(
    data_path: Any = None,
    labels_path: Any = None,
    *,
    data: Any = None,
    labels: Any = None,
    set_size: int,
    loader: Any = None,
    labels_loader: Any = None,
    data_key: str | None = None,
    labels_key: str | None = None,
) -> tuple[Source | None, Source | None]:
    """The data and labels sources for the DataGenerator's arguments.

    Any data source combines with any labels source; labels come back in the data's set
    order (keyed labels are reordered to it). `.npz` files holding `x`/`y` (or
    `data`/`labels`) give both. Returns `(None, None)` when no data was given.

    Args:
        data_path, labels_path: a file or a directory (see docs/data_sources.md).
        data, labels: in-memory array-likes.
        set_size: rows per set for sources without sets of their own (arrays, one file).
        loader, labels_loader: `loader(path, set_num) -> array` for other formats.
        data_key, labels_key: the dataset to read in an HDF5 file holding several.
    """
    if any(is_structure(value) for value in (data_path, labels_path, data, labels)):
        return _open_structured(
            data_path, labels_path, data=data, labels=labels, set_size=set_size,
            loader=loader, labels_loader=labels_loader, data_key=data_key,
            labels_key=labels_key,
        )  # fmt: skip
    for name, key in (("data_key", data_key), ("labels_key", labels_key)):
        if key is not None and not isinstance(key, str):
            raise TypeError(
                f"`{name}` must be the name of an HDF5 dataset (a str). Received: {name}={key!r}"
            )
    source, paired = _open_data(data_path, data, set_size, loader, data_key, labels_path)
    if source is None:
        return None, None  # the caller says data is needed
    if paired is not None and (labels_path is not None or labels is not None):
        raise ValueError(
            f"{source.description} already carries labels (members x/y or data/labels); "
            "pass `labels_path`/`labels=` only for data without them. "
            f"Received: labels_path={describe(labels_path)}"
        )
    if paired is not None:
        return source, paired
    _check_both("labels", labels_path, labels)
    if labels is not None:
        return source, _array_or_ragged("labels", labels, set_size)
    if labels_path is None:
        return source, None
    path = _existing_path("labels_path", labels_path)
    return source, open_labels_path(
        path, source, set_size=set_size, loader=labels_loader, key=labels_key
    )


def _open_structured(
    data_path: Any,
    labels_path: Any,
    *,
    data: Any,
    labels: Any,
    set_size: int,
    loader: Any,
    labels_loader: Any,
    data_key: str | None,
    labels_key: str | None,
) -> tuple[Source | None, Source | None]:
    """Sources when data or labels are a dict or tuple of members (each any source)."""
    _check_both("data", data_path, data)
    _check_both("labels", labels_path, labels)
    data_given = data if data is not None else data_path
    keyword = "data" if data is not None else "data_path"
    if data_given is None:
        return None, None

    def one_data(value: Any) -> Source:
        # Members may mix layouts: a path is read as a file or folder, else an array.
        as_path = isinstance(value, (str, os.PathLike))
        kwargs = {"data_path": value} if as_path else {"data": value}
        source, paired = open_sources(**kwargs, set_size=set_size, loader=loader, data_key=data_key)
        if source is None:  # a None member; _check_member_names names it first
            raise ValueError(f"A member of `{keyword}` is None: give every member data.")
        if paired is not None:
            raise ValueError(
                f"{source.description} carries labels (members x/y or data/labels), but it "
                f"is a member of structured `{keyword}`: give members without labels and "
                "pass the labels as `labels_path`/`labels=`."
            )
        return source

    if is_structure(data_given):
        _check_member_names(keyword, data_given)
        source: Source = StructuredSource(map_members(data_given, one_data), "data")
    else:
        source = one_data(data_given)
    labels_given = labels if labels is not None else labels_path
    if labels_given is None:
        return source, None
    reference = _first_member(source)

    def one_labels(value: Any) -> Source:
        if not isinstance(value, (str, os.PathLike)):
            return _array_or_ragged("labels", value, set_size)
        path = _existing_path("labels_path", value)
        return open_labels_path(
            path, reference, set_size=set_size, loader=labels_loader, key=labels_key
        )

    if is_structure(labels_given):
        _check_member_names("labels" if labels is not None else "labels_path", labels_given)
        return source, StructuredSource(map_members(labels_given, one_labels), "labels")
    return source, one_labels(labels_given)


def _first_member(source: Source) -> Source:
    while isinstance(source, StructuredSource):
        source = next(source.items())[1]
    return source


def _check_member_names(argument: str, structure: Any) -> None:
    if isinstance(structure, dict):
        odd = [key for key in structure if not isinstance(key, str)]
        if odd:
            raise TypeError(
                f"The keys of `{argument}` name the members (the model's input or output "
                f"names) and must be str. Received keys: {odd!r}"
            )
        if "" in structure:
            raise ValueError(
                f"`{argument}` has a member named '' (an empty key): the keys name the "
                "model's inputs or outputs (Keras matches them by name), so give it the "
                f"name of its input or output. Received keys: {list(structure)!r}"
            )
    for name, value in member_items(structure):
        if value is None:
            raise ValueError(
                f"Member {name!r} of `{argument}` is None: every member needs data (an "
                "array, a list of arrays or a path). Leave the member out of the "
                f"{type(structure).__name__} instead. Received: {argument}["
                f"{name!r}]=None"
            )
        if is_structure(value):
            raise TypeError(
                f"Member {name!r} of `{argument}` is itself a {type(value).__name__}: "
                "structures are one level deep (a dict or tuple of arrays or paths)."
            )


def _open_data(
    path: Any, array: Any, set_size: int, loader: Any, key: str | None, labels_path: Any
) -> tuple[Source | None, Source | None]:
    _check_both("data", path, array)
    if array is not None and (is_py_dataset(array) or is_random_access(array)):
        return open_indexed(array, "data", set_size)
    if array is not None:
        return _array_or_ragged("data", array, set_size), None
    if path is None:
        return None, None
    path = _existing_path("data_path", path)
    exclude = os.fspath(labels_path) if isinstance(labels_path, (str, os.PathLike)) else None
    return open_data_path(path, set_size=set_size, loader=loader, key=key, exclude=exclude)


def _check_both(role: str, path: Any, array: Any) -> None:
    if path is not None and array is not None:
        raise ValueError(
            f"Pass either `{role}_path` or `{role}=`, not both. "
            f"Received: {role}_path={describe(path)} and {role}={describe(array)}"
        )


def _array_or_ragged(role: str, value: Any, set_size: int) -> Source:
    """An array source, or a ragged one for a list of per-sample arrays."""
    if isinstance(value, list) and value and isinstance(value[0], np.ndarray):
        return RaggedSource(value, set_size, description=f"`{role}=` list")
    if is_py_dataset(value) or is_random_access(value):
        source, paired = open_indexed(value, role, set_size)
        if paired is not None:
            raise ValueError(
                f"`{role}=` {type(value).__name__} returns (x, y) items: pass it as `data=`, "
                "which reads both x and y from it. Received: "
                f"{role}={type(value).__name__}"
            )
        return source
    return _array_source(role, value, set_size)


def _array_source(role: str, array: Any, set_size: int) -> ArraySource:
    if not _is_array_like(array):
        length = f" of length {len(array)}" if isinstance(array, (list, tuple)) else ""
        raise TypeError(
            f"`{role}=` must be a {_ARRAY_TYPES}: convert it with np.asarray({role}); a "
            "list of NumPy arrays is read as ragged samples, a dict or tuple as members. "
            f"Received: {role}={type(array).__name__}{length}"
        )
    return rows_source(array, set_size, description=f"`{role}=` array")


def _existing_path(arg: str, path: Any) -> str:
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(_not_a_path(arg, path))
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(
            f"`{arg}` does not exist: {path!r}. Check the path. Received: {arg}={path!r}"
        )
    return path


def _not_a_path(arg: str, value: Any) -> str:
    received = f"Received: {arg}={describe(value)}"
    if _is_array_like(value) or isinstance(value, (list, tuple)):
        # DataGenerator(x, y): Keras' positional habit lands arrays in the path arguments.
        return (
            f"`{arg}` is a path to files; arrays in memory go in the keywords `data=` and "
            "`labels=`: DataGenerator(data=x, labels=y, batch_size=...). " + received
        )
    return f"`{arg}` must be a path (str or os.PathLike). " + received


def in_memory(source: Source) -> Source:
    """Every set of `source` read into one in-memory array (for `superbatch=True`)."""
    if isinstance(source, StructuredSource):
        return StructuredSource(source.map(in_memory), source.role)
    if isinstance(source, RaggedSource):
        return source  # already in memory
    array = np.ascontiguousarray(source.read(0, len(source)))
    return ArraySource(
        array,
        source.set_sizes,
        set_nums=source.set_nums,
        description=f"{source.description} (in memory)",
    )


def gather(source: Source | None, batch: Batch) -> Any:
    """The rows of `batch` from `source`, in serving order (None without a source)."""
    if source is None:
        return None
    if isinstance(source, StructuredSource):
        return source.map(lambda member: gather(member, batch))
    if batch.indices is not None:
        return source.take(batch.indices)
    if len(batch.ranges) == 1:
        return source.read(*batch.ranges[0])
    if not batch.ranges:
        return source.take(np.empty(0, dtype=np.int64))
    parts = [source.read(start, stop) for start, stop in batch.ranges]
    if isinstance(source, RaggedSource):
        return [sample for part in parts for sample in part]
    return np.concatenate(parts)
