"""Sources over one array-like: `np.ndarray`, `np.memmap`, `h5py.Dataset`, one `.npy` file."""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from trainkit.data.sources import formats
from trainkit.data.sources.base import check_numeric, take_sorted
from trainkit.data.sources.mapped import mapped_rows


class ArraySource:
    """Samples along axis 0 of one array-like, cut into sets of the given sizes.

    For `data=` arrays and a single `.npy` file set `'k'` is the k-th `batch_size`-row range.

    The array is never copied whole: `np.memmap` and `.npy` files are read by rows, an
    `h5py.Dataset` by slices. Rows handed out from an in-memory array are read-only views,
    so a preprocessor cannot modify the user's array in place. The pages of a memory map
    are released as the epoch moves on (see `mapped.MappedRows`), so its resident
    memory stays flat however large the file.
    """

    def __init__(
        self,
        array: Any,
        set_sizes: list[int],
        *,
        description: str,
        set_nums: list[str] | None = None,
        path: str | None = None,
        owner: Any = None,
    ):
        if getattr(array, "ndim", 0) < 1 or len(array) == 0:
            raise ValueError(
                f"{description} must hold at least one sample along axis 0. "
                f"Received shape {getattr(array, 'shape', None)}."
            )
        self.array = array
        self.description = description
        self.path = path
        self._owner = owner  # e.g. the open h5py.File an h5py.Dataset belongs to
        self.set_sizes = list(set_sizes)
        self.set_nums = set_nums or [str(k) for k in range(len(self.set_sizes))]
        self.sample_shape = tuple(int(d) for d in array.shape[1:])
        self.dtype = check_numeric(description, np.dtype(array.dtype))
        self._is_ndarray = isinstance(array, np.ndarray)
        self._needs_sorted_take = not self._is_ndarray  # h5py fancy indexing: increasing
        self._mapped = mapped_rows(array)

    def __len__(self) -> int:
        return len(self.array)

    def read(self, start: int, stop: int) -> np.ndarray:
        rows = self.array[start:stop] if self._mapped is None else self._mapped.read(start, stop)
        if self._is_ndarray and rows.flags.writeable:
            rows = rows.view()
            rows.flags.writeable = False
        return rows

    def take(self, indices: np.ndarray) -> np.ndarray:
        if self._mapped is not None:
            return self._mapped.take(indices)
        if self._needs_sorted_take:
            return take_sorted(lambda idx: np.asarray(self.array[idx]), indices)
        return self.array[indices]

    def fingerprint(self) -> dict[str, Any]:
        return {
            "num_samples": len(self.array),
            "sample_shape": list(self.sample_shape),
            "dtype": self.dtype.str,
            "file_bytes": os.path.getsize(self.path) if self.path else None,
        }

    def __getstate__(self) -> dict[str, Any]:
        # A copied memmap is no longer the mapping read (NumPy copies it into memory).
        return {**self.__dict__, "_mapped": None}


def open_npy(path: str, set_size: int, description: str) -> ArraySource:
    """One `.npy` file holding every sample, memory-mapped and read by rows."""
    array = formats.open_npy_mmap(path)
    return rows_source(array, set_size, description=description, path=path)


def rows_source(
    array: Any, set_size: int, *, description: str, path: str | None = None, owner: Any = None
) -> ArraySource:
    """An ArraySource over `array` cut into `set_size`-row sets; ValueError for a scalar."""
    if getattr(array, "ndim", 0) < 1:
        raise ValueError(
            f"{description} is 0-d (a scalar); samples must be an array shaped "
            "(samples, ...): wrap a single sample as `x[None]`. "
            f"Received shape {getattr(array, 'shape', None)}."
        )
    return ArraySource(
        array, equal_sets(len(array), set_size), description=description, path=path, owner=owner
    )


def equal_sets(num_samples: int, set_size: int) -> list[int]:
    """Sizes of `set_size`-row sets covering `num_samples` rows (the last may be short)."""
    return [min(set_size, num_samples - start) for start in range(0, num_samples, set_size)]
