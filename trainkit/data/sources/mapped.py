"""`MappedRows`: rows of a memory-mapped array read without filling the process' RSS.

Rows read through `np.memmap` are zero-copy views, but every page they touch stays mapped
into the process until the map is closed, so one epoch over an 8 GB `.npy` file ends
with 8 GB of resident (file-backed) memory. Two remedies, both invisible in the values:

* Ranges (`read`) stay zero-copy views. Every `RELEASE_EVERY` bytes served, the kernel is
  told that the pages outside the last `KEEP_RECENT` reads are not needed
  (`madvise(MADV_DONTNEED)`). On a shared file mapping that only drops page table
  entries: the data stays in the file and the page cache, and a later access reads it
  again, whichever thread touches which rows when.
* Scattered rows (`take`, for `shuffle='samples'`) are read with `os.preadv`, sorted and
  coalesced into runs, so they never enter the mapping at all (a fault on a mapped file
  maps the whole surrounding folio: often more than 100 KB for one row).

Private (copy-on-write, mode `'c'`) maps are left alone: there the kernel would discard
the user's changes, and the file does not hold them.
"""

from __future__ import annotations

import mmap
import os
import sys
import threading
from collections import deque
from typing import Any

import numpy as np

RELEASE_EVERY = 32 * 2**20  # bytes served between two releases
KEEP_RECENT = 16  # reads kept mapped at a release (read ahead, not yet consumed)
_PAGE = mmap.PAGESIZE


class MappedRows:
    """Reads rows of one shared, C-contiguous `np.memmap`; see the module docstring.

    Thread-safe: `os.preadv` is positional, and reads are recorded under one lock.

    Args:
        array: the memmap (rows along axis 0).
        mapping: the `mmap.mmap` its bytes live in.
        first_byte: position of the array's first byte in `mapping`.
        path: the mapped file, read by `take`; None to take through the mapping.
        file_offset: position of `mapping`'s first byte in the file.
    """

    def __init__(
        self, array: Any, mapping: mmap.mmap, first_byte: int, path: str | None, file_offset: int
    ) -> None:
        self._array = array
        self._plain = array.view(np.ndarray)  # views without np.memmap's per-call overhead
        self._mapping = mapping
        self._first_byte = first_byte
        self._row_bytes = array.nbytes // len(array)
        self._recent: deque[tuple[int, int]] = deque(maxlen=KEEP_RECENT)
        self._served = 0  # bytes served since the last release
        self._lock = threading.Lock()
        self._file = _open_same_file(path, array, file_offset + first_byte)
        self._file_first_byte = file_offset + first_byte

    def read(self, start: int, stop: int) -> np.ndarray:
        """Rows `[start, stop)` as a plain ndarray view of the map (read-only where it is)."""
        low = self._first_byte + start * self._row_bytes
        high = self._first_byte + stop * self._row_bytes
        self._record((low, high), high - low)
        return self._plain[start:stop]

    def take(self, indices: np.ndarray) -> np.ndarray:
        """Rows at `indices`, in that order, as a new (writable) array."""
        descriptor = self._file
        if descriptor is None:
            self._record(None, len(indices) * max(self._row_bytes, 2**20))
            return self._plain[indices]
        order = np.argsort(indices, kind="stable")
        ordered = np.asarray(indices, dtype=np.int64)[order]
        gathered = np.empty((len(indices), *self._array.shape[1:]), dtype=self._array.dtype)
        breaks = np.flatnonzero(np.diff(ordered) != 1) + 1
        self._pread_runs(
            descriptor,
            gathered.data.cast("B"),
            ordered[np.concatenate(([0], breaks))].tolist(),
            np.concatenate(([0], breaks)).tolist(),
            np.concatenate((breaks, [len(ordered)])).tolist(),
        )
        out = np.empty_like(gathered)
        out[order] = gathered
        return out

    def _pread_runs(
        self,
        descriptor: int,
        into: memoryview,
        rows: list[int],
        firsts: list[int],
        lasts: list[int],
    ) -> None:
        """Read each run of consecutive rows with one `preadv` (the hot loop of `take`)."""
        size, base = self._row_bytes, self._file_first_byte
        for row, first, last in zip(rows, firsts, lasts):
            part = into[first * size : last * size]
            if os.preadv(descriptor, [part], base + row * size) != len(part):
                self._pread_rest(descriptor, part, base + row * size)

    def _pread_rest(self, descriptor: int, part: memoryview, position: int) -> None:
        """Finish a short read, or say the file was cut while mapped."""
        done = 0
        while done < len(part):
            got = os.preadv(descriptor, [part[done:]], position + done)
            if got == 0:
                raise OSError(
                    f"{self._array.filename!r} ended at byte {position + done}: the file was "
                    "truncated while mapped. Rebuild the DataGenerator."
                )
            done += got

    def _record(self, span: tuple[int, int] | None, nbytes: int) -> None:
        with self._lock:
            if span is not None:
                self._recent.append(span)
            self._served += nbytes
            if self._served >= RELEASE_EVERY:
                self._release()

    def _release(self) -> None:
        """Drop every mapped page outside the recent reads (called under the lock)."""
        self._served = 0
        start = 0
        for low, high in sorted(self._recent):
            self._drop(start, low)
            start = max(start, high)
        self._drop(start, len(self._mapping))

    def _drop(self, low: int, high: int) -> None:
        low = -(-low // _PAGE) * _PAGE  # pages partly inside a kept read stay
        high = min(high // _PAGE * _PAGE, len(self._mapping))
        if high > low:
            self._mapping.madvise(mmap.MADV_DONTNEED, low, high - low)

    def __del__(self) -> None:
        descriptor = getattr(self, "_file", None)
        if descriptor is not None:
            self._file = None
            os.close(descriptor)


def mapped_rows(array: Any) -> MappedRows | None:
    """A `MappedRows` for a shared, C-contiguous `np.memmap` on Linux; else None."""
    mapping = getattr(array, "_mmap", None)
    if (
        not isinstance(array, np.memmap)
        or not isinstance(mapping, mmap.mmap)
        or getattr(array, "mode", "c") == "c"
        or not sys.platform.startswith("linux")  # where DONTNEED keeps shared pages' data
        or not array.flags.c_contiguous
        or array.ndim < 1
        or array.nbytes == 0
        or mapping.closed
    ):
        return None
    first_byte = array.ctypes.data - np.frombuffer(mapping, dtype=np.uint8).ctypes.data
    if not 0 <= first_byte <= len(mapping) - array.nbytes:
        return None  # not a view of this mapping after all
    offset = int(getattr(array, "offset", 0) or 0)
    file_offset = offset - offset % mmap.ALLOCATIONGRANULARITY  # where np.memmap maps from
    return MappedRows(array, mapping, first_byte, array.filename, file_offset)


def _open_same_file(path: str | None, array: Any, first_byte: int) -> int | None:
    """A descriptor of `path` if its bytes at `first_byte` are the array's first row."""
    if path is None:
        return None
    try:
        descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        return None  # deleted or renamed since it was mapped: take through the mapping
    row = np.ascontiguousarray(array[:1]).reshape(-1).view(np.uint8)
    try:
        same = os.pread(descriptor, len(row), first_byte) == row.tobytes()
    except OSError:
        same = False
    if not same:
        os.close(descriptor)
        return None
    return descriptor
