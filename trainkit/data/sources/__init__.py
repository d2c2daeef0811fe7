"""Sources: where samples come from. `open_sources` picks them from the user's arguments."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import numpy as np

from trainkit._validation import describe
from trainkit.data.sources.arrays import ArraySource, rows_source
from trainkit.data.sources.base import Source, offsets_of
from trainkit.data.sources.labels import open_labels_path
from trainkit.data.sources.layouts import open_data_path
from trainkit.data.sources.sets import SetSource

if TYPE_CHECKING:
    from trainkit.data.plan import Batch

__all__ = [
    "ArraySource",
    "SetSource",
    "Source",
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
        return source, _array_source("labels", labels, set_size)
    if labels_path is None:
        return source, None
    path = _existing_path("labels_path", labels_path)
    return source, open_labels_path(
        path, source, set_size=set_size, loader=labels_loader, key=labels_key
    )


def _open_data(
    path: Any, array: Any, set_size: int, loader: Any, key: str | None, labels_path: Any
) -> tuple[Source | None, Source | None]:
    _check_both("data", path, array)
    if array is not None:
        return _array_source("data", array, set_size), None
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


def _array_source(role: str, array: Any, set_size: int) -> ArraySource:
    if not _is_array_like(array):
        length = f" of length {len(array)}" if isinstance(array, (list, tuple)) else ""
        raise TypeError(
            f"`{role}=` must be a {_ARRAY_TYPES}: convert it with np.asarray({role}). "
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


def in_memory(source: Source) -> ArraySource:
    """Every set of `source` read into one in-memory array (for `superbatch=True`)."""
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
    if batch.indices is not None:
        return source.take(batch.indices)
    if len(batch.ranges) == 1:
        return source.read(*batch.ranges[0])
    if not batch.ranges:
        return source.take(np.empty(0, dtype=np.int64))
    return np.concatenate([source.read(start, stop) for start, stop in batch.ranges])
