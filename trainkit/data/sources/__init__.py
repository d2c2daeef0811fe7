"""Sources: where samples come from. `open_source` picks one from the user's arguments."""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from trainkit.data.sources.arrays import ArraySource, equal_sets, open_npy
from trainkit.data.sources.base import Source, offsets_of

__all__ = ["ArraySource", "Source", "in_memory", "offsets_of", "open_source"]

_ARRAY_TYPES = "np.ndarray, np.memmap or h5py.Dataset"


def _is_array_like(value: Any) -> bool:
    if isinstance(value, np.ndarray):
        return True
    module = type(value).__module__ or ""
    return module.startswith("h5py") and type(value).__name__ == "Dataset"


def open_source(
    role: str,
    path: Any = None,
    array: Any = None,
    *,
    set_size: int,
    loader: Any = None,
) -> Source | None:
    """The Source for `data_path`/`data=` (role 'data') or `labels_path`/`labels=`.

    Args:
        role: 'data' or 'labels', used to name the arguments in errors.
        path: a file or directory path, or None.
        array: an in-memory array-like, or None.
        set_size: rows per set for sources without sets of their own (arrays, one `.npy`).
        loader: optional `loader(path, set_num) -> array` for other formats.
    """
    path_arg, array_arg = f"{role}_path", role
    if path is not None and array is not None:
        raise ValueError(
            f"Pass either `{path_arg}` or `{array_arg}=`, not both. "
            f"Received: {path_arg}={path!r} and {array_arg}=<{type(array).__name__}>"
        )
    if array is not None:
        if not _is_array_like(array):
            raise TypeError(
                f"`{array_arg}=` must be a {_ARRAY_TYPES}. Received: {array_arg}={type(array).__name__}"
            )
        return ArraySource(array, equal_sets(len(array), set_size), description=f"`{array_arg}=` array")
    if path is None:
        return None
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"`{path_arg}` must be a path (str or os.PathLike). Received: {path_arg}={path!r}")
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"`{path_arg}` does not exist: {path!r}. Check the path.")
    if path.endswith(".npy") and os.path.isfile(path) and loader is None:
        return open_npy(path, set_size, description=path)
    raise ValueError(
        f"`{path_arg}`={path!r} is not a supported source. Supported: one .npy file "
        "(read by rows). Pass arrays with `data=`/`labels=` or a `loader=` callable."
    )


def in_memory(source: Source) -> ArraySource:
    """Every set of `source` read into one in-memory array (for `superbatch=True`)."""
    array = np.ascontiguousarray(source.read(0, len(source)))
    return ArraySource(
        array, source.set_sizes, set_nums=source.set_nums, description=f"{source.description} (in memory)"
    )
