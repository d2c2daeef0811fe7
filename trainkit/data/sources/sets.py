"""`SetSource`: samples stored set by set (one file, HDF5 key, `.npz` member or CSV column each)."""

from __future__ import annotations

import threading
import warnings
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from trainkit.data.sources.base import check_numeric, offsets_of

CACHE_SETS = 4  # loaded sets kept in memory, so split batches read each file once


@dataclass(frozen=True)
class StoredSet:
    """One set as stored: its number, where it is, how many samples, and how to load it.

    `load()` returns the whole set as an array; `shape`/`dtype` were read without loading.
    """

    set_num: str
    where: str
    shape: tuple[int, ...]
    dtype: np.dtype
    load: Callable[[], Any]
    key: str | None = None  # the HDF5 dataset read, for set files of one folder


class SetSource:
    """Samples held in sets loaded whole, in the given set order, with a small LRU cache.

    Each set is loaded on first use and kept among the `CACHE_SETS` most recently used
    ones, so the batches split from one set read its file once. Arrays handed out from
    the cache are read-only, so a preprocessor cannot corrupt the cache in place.

    Args:
        sets: the sets, in the order the source presents them.
        description: where the samples come from (for errors and reports).
        file_bytes: total size of the files read (part of the fingerprint).
        warn_empty: warn about sets that hold no samples (they are served in no batch);
            off for labels, whose sets mirror the data's.

    Raises:
        ValueError: no sets, sample shapes that differ, a scalar set, or a set of
            strings or objects (the message names the set).
    """

    def __init__(
        self,
        sets: list[StoredSet],
        *,
        description: str,
        file_bytes: int | None,
        warn_empty: bool = True,
    ) -> None:
        if not sets:
            raise ValueError(f"{description} holds no sets.")
        for stored in sets:
            check_numeric(stored.where, np.dtype(stored.dtype))
        shapes = {s.shape[1:] for s in sets}
        if len(shapes) > 1:
            first = sets[0]
            odd = next(s for s in sets if s.shape[1:] != first.shape[1:])
            raise ValueError(
                f"The sets of {description} have different sample shapes: {first.where} holds "
                f"samples of shape {first.shape[1:]}, {odd.where} of shape {odd.shape[1:]}. "
                "Every sample of a source must have the same shape."
            )
        for stored in sets:
            if len(stored.shape) < 1:
                raise ValueError(
                    f"{stored.where} holds a scalar; a set must be an array shaped (samples, ...)."
                )
        empty = [s.where for s in sets if s.shape[0] == 0]
        if empty and warn_empty:
            warnings.warn(
                f"{description}: skipping {len(empty)} set(s) that hold no samples: "
                f"{', '.join(empty[:8])}. They are served in no batch; remove the empty files "
                "to silence this warning.",
                stacklevel=2,
            )
        self.sets = list(sets)
        self.description = description
        self.file_bytes = file_bytes
        self.set_nums = [s.set_num for s in sets]
        self.set_sizes = [int(s.shape[0]) for s in sets]
        self.sample_shape = tuple(int(d) for d in sets[0].shape[1:])
        self.dtype = np.result_type(*(s.dtype for s in sets))
        self._offsets = np.asarray(offsets_of(self.set_sizes), dtype=np.int64)
        self._cache: OrderedDict[int, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return int(sum(self.set_sizes))

    def read(self, start: int, stop: int) -> np.ndarray:
        if stop <= start:
            return np.empty((0, *self.sample_shape), dtype=self.dtype)
        k = int(np.searchsorted(self._offsets, start, side="right")) - 1
        parts = []
        while start < stop:
            offset = int(self._offsets[k])
            end = min(stop, offset + self.set_sizes[k])
            parts.append(self.load_set(k)[start - offset : end - offset])
            start, k = end, k + 1
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    def take(self, indices: np.ndarray) -> np.ndarray:
        indices = np.asarray(indices, dtype=np.int64)
        out = np.empty((len(indices), *self.sample_shape), dtype=self.dtype)
        owners = np.searchsorted(self._offsets, indices, side="right") - 1
        for k in np.unique(owners):
            mask = owners == k
            out[mask] = self.load_set(int(k))[indices[mask] - self._offsets[k]]
        return out

    def load_set(self, k: int) -> np.ndarray:
        """Set `k` (position in `set_nums`) whole, read-only, from the cache when there."""
        with self._lock:
            if k in self._cache:
                self._cache.move_to_end(k)
                return self._cache[k]
        array = self._load(k)
        with self._lock:
            self._cache[k] = array
            while len(self._cache) > CACHE_SETS:
                self._cache.popitem(last=False)
        return array

    def _load(self, k: int) -> np.ndarray:
        stored = self.sets[k]
        array = np.asarray(stored.load())
        if array.shape != stored.shape:
            raise ValueError(
                f"{stored.where} changed since the source was opened: it held shape "
                f"{stored.shape}, now {array.shape}. Rebuild the DataGenerator."
            )
        array = array.astype(self.dtype, copy=False).view()  # a view: never flag the caller's array
        array.flags.writeable = False
        return array

    def fingerprint(self) -> dict[str, Any]:
        return {
            "num_samples": len(self),
            "sample_shape": list(self.sample_shape),
            "dtype": self.dtype.str,
            "file_bytes": self.file_bytes,
        }

    def __getstate__(self) -> dict[str, Any]:
        # Locks cannot be copied or pickled; a copy starts with an empty cache.
        state = dict(self.__dict__)
        state["_cache"], state["_lock"] = OrderedDict(), None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()
