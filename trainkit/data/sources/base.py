"""The Source protocol: what the DataGenerator needs from anything that holds samples.

A source reads bytes; it holds no position. Rows are numbered globally: set k's samples
are rows `offsets[k] .. offsets[k] + set_sizes[k]`, in the source's own set order.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class Source(Protocol):
    """Random access to the samples of one data (or labels) source.

    Attributes:
        set_nums: names of the sets, in the source's order (numeric order for files).
        set_sizes: number of samples in each set, aligned with `set_nums`.
        sample_shape: shape of one sample.
        dtype: dtype of the samples.
        description: one line saying where the samples come from (for errors and reports).
    """

    set_nums: list[str]
    set_sizes: list[int]
    sample_shape: tuple[int, ...]
    dtype: np.dtype
    description: str

    def __len__(self) -> int:
        """Total number of samples."""
        ...

    def read(self, start: int, stop: int) -> Any:
        """Rows `[start, stop)`, contiguous in global numbering (an array; a list of arrays
        for ragged samples; a dict or tuple of those for structured sources)."""
        ...

    def take(self, indices: np.ndarray) -> Any:
        """Rows at `indices` (global, unique), in the given order (as `read`)."""
        ...

    def fingerprint(self) -> dict[str, Any]:
        """Cheap identity of the source: counts, shapes, dtypes, file sizes. No content hashes."""
        ...


# bool, signed and unsigned int, float. Not complex: Keras layers compute in real dtypes,
# and casting complex samples to float drops their imaginary part without an error.
_NUMERIC_KINDS = "biuf"
# Byte strings this long are no class names: a compressed or serialized blob per element.
_BLOB_BYTES = 256


def check_numeric(where: str, dtype: np.dtype) -> np.dtype:
    """`dtype` if the model can take it (numbers, bools); ValueError for text and objects."""
    if dtype.kind in _NUMERIC_KINDS:
        return dtype
    if dtype.kind == "c":
        raise ValueError(
            f"{where} holds dtype {dtype.str} (complex numbers); Keras layers compute in "
            "real dtypes, and a cast to float would drop the imaginary part. Split each "
            "sample into real and imaginary parts, e.g. "
            "`np.stack([x.real, x.imag], axis=-1).astype('float32')`. "
            f"Received: dtype={dtype.str}"
        )
    if dtype.kind in "SV" and dtype.itemsize >= _BLOB_BYTES:
        raise ValueError(
            f"{where} holds dtype {dtype.str}: each element is {dtype.itemsize} bytes, which "
            "look like compressed or serialized bytes (DeepTrain's lz4f set files are "
            "stored this way), not samples. Pass `loader=` (or `labels_loader=` for labels) "
            "a callable loader(path, set_num) -> array that decompresses a set file, e.g. "
            "`lambda path, set_num: decode(np.load(path))`. Received: dtype="
            f"{dtype.str}"
        )
    kinds = {"U": "strings", "S": "bytes", "O": "Python objects", "V": "records"}
    kind = kinds.get(dtype.kind, "values that are not numbers")
    raise ValueError(
        f"{where} holds dtype {dtype.str} ({kind}); trainkit serves numeric arrays to the "
        "model. Convert to numbers first: class names to ints (e.g. "
        "`np.unique(labels, return_inverse=True)[1]`), text features to codes, numbers "
        f"stored as text with `.astype('float32')`. Received: dtype={dtype.str}"
    )


def offsets_of(set_sizes: list[int]) -> list[int]:
    """Global row offset of each set."""
    offsets, total = [], 0
    for size in set_sizes:
        offsets.append(total)
        total += size
    return offsets


def take_sorted(read_sorted: Any, indices: np.ndarray) -> np.ndarray:
    """Gather `indices` through a reader that needs increasing indices (h5py), then reorder."""
    order = np.argsort(indices, kind="stable")
    gathered = read_sorted(indices[order])
    out = np.empty_like(gathered)
    out[order] = gathered
    return out
