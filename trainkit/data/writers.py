"""`write_sets`: write samples as numbered set files that a DataGenerator reads back.

Layouts written (set `k` holds samples `[k * set_size, (k + 1) * set_size)` of the data
in its given order, or of its permutation with `shuffle=True`):

* `'npy'`: `out/data_0.npy`, `out/data_1.npy`, ... and `out/labels.npy` (every label, in
  set order).
* `'h5'`: `out/data_0.h5`, ... (one dataset `'data'` each) and `out/labels.h5` with one
  key per set (DeepTrain's layout).
* `'h5-single'`: `out/data.h5` and `out/labels.h5`, each with one key per set.

Remainder policy: when the number of samples is not a multiple of `set_size`, the last
set holds the remainder (it is smaller); nothing is dropped, padded or repeated.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from trainkit._validation import check_bool, check_choice, check_int, describe
from trainkit.data.sources.base import take_sorted

FORMATS = ("npy", "h5", "h5-single")


def write_sets(
    data: Any,
    labels: Any,
    out: str | os.PathLike[str],
    set_size: int,
    format: str = "npy",
    shuffle: bool = False,
    seed: int = 0,
    compression: str | None = None,
) -> dict[str, str]:
    """Write `data` (and `labels`) as numbered sets of `set_size` samples under `out`.

    Use it to turn arrays into files that stream from disk, or to rewrite any source in
    a layout trainkit reads fast. It returns only the source keywords, so the files are
    read back with `DataGenerator(**write_sets(...), batch_size=...)`. Input is read by
    rows (an `h5py.Dataset` or `np.memmap` is never loaded whole).

    Args:
        data: samples, an array-like with samples along axis 0.
        labels: labels with one row per sample, or None.
        out: a directory to create (or an empty one); existing files are never overwritten.
        set_size: samples per set; the last set holds the remainder.
        format: 'npy', 'h5' or 'h5-single' (see the module docstring for the layouts).
        shuffle: write the samples in the order of a permutation drawn from `seed`.
        seed: seed of that permutation.
        compression: HDF5 compression (e.g. 'gzip'); only for the HDF5 formats.

    Returns:
        `{'data_path': ..., 'labels_path': ...}` (no `labels_path` without labels).

    Raises:
        ValueError: bad arguments, or `out` holds files already.

    Example:
        >>> keywords = write_sets(x, y, "sets/", set_size=128, format="h5")
        >>> dg = DataGenerator(**keywords, batch_size=32)
    """
    if isinstance(data, (dict, tuple)) or isinstance(labels, (dict, tuple)):
        return _write_structured(data, labels, out, set_size, format, shuffle, seed, compression)
    check_choice("format", format, FORMATS)
    set_size = check_int("set_size", set_size, minimum=1)
    check_bool("shuffle", shuffle)
    check_int("seed", seed)
    num_samples = _check_arrays(data, labels)
    if compression is not None and format == "npy":
        raise ValueError(
            "`compression` applies to the HDF5 formats only; .npy files are not compressed. "
            f"Use format='h5' or compression=None. Received: compression={describe(compression)}"
        )
    out = _prepare_directory(out)
    order = (
        np.random.default_rng(seed).permutation(num_samples) if shuffle else np.arange(num_samples)
    )
    sets = [order[start : start + set_size] for start in range(0, num_samples, set_size)]
    return _WRITERS[format](data, labels, out, sets, compression)


def _write_structured(
    data: Any,
    labels: Any,
    out: Any,
    set_size: int,
    format: str,
    shuffle: bool,
    seed: int,
    compression: str | None,
) -> dict[str, Any]:
    """One set directory per member (`out/data_<name>/`, `out/labels_<name>/`), written
    with the same permutation, returned as the same structure of paths."""
    from trainkit.data.sources.structured import map_members, member_items

    check_choice("format", format, FORMATS)
    parts = {"data": data, "labels": labels}
    lengths = {}
    for role, value in parts.items():
        if value is None:
            continue
        for name, member in (
            member_items(value) if isinstance(value, (dict, tuple)) else [("", value)]
        ):
            if not name.isidentifier() and not name.isdigit() and name:
                raise ValueError(
                    f"write_sets names a folder after each member of `{role}`, and {name!r} "
                    "is not a plain name: use keys made of letters, digits and underscores."
                )
            lengths[f"{role}[{name!r}]" if name else role] = len(member)
    if len(set(lengths.values())) > 1:
        listed = ", ".join(f"{where}: {n}" for where, n in lengths.items())
        raise ValueError(
            f"The members hold different numbers of samples ({listed}); every member needs "
            "one row per sample."
        )
    out = _prepare_directory(out)

    def written(role: str, name: str, member: Any) -> str:
        folder = os.path.join(out, f"{role}_{name}" if name else role)
        keywords = write_sets(member, None, folder, set_size, format, shuffle, seed, compression)
        return keywords["data_path"]

    def each(role: str, value: Any) -> Any:
        if not isinstance(value, (dict, tuple)):
            return written(role, "", value)
        names = iter([name for name, _ in member_items(value)])
        return map_members(value, lambda member: written(role, next(names), member))

    keywords: dict[str, Any] = {"data_path": each("data", data)}
    if labels is not None:
        keywords["labels_path"] = each("labels", labels)
    return keywords


def _check_arrays(data: Any, labels: Any) -> int:
    if getattr(data, "ndim", 0) < 1 or len(data) == 0:
        raise ValueError(
            "`data` must be an array with at least one sample along axis 0. "
            f"Received: data={describe(data)}"
        )
    if labels is not None and (getattr(labels, "ndim", 0) < 1 or len(labels) != len(data)):
        raise ValueError(
            f"`labels` must have one row per sample ({len(data)}). "
            f"Received: labels={describe(labels)}"
        )
    return len(data)


def _prepare_directory(out: Any) -> str:
    if not isinstance(out, (str, os.PathLike)):
        raise TypeError(f"`out` must be a directory path. Received: out={describe(out)}")
    path = os.fspath(out)
    if os.path.exists(path) and (not os.path.isdir(path) or os.listdir(path)):
        raise ValueError(
            f"`out`={path!r} exists and is not an empty directory; write_sets never "
            f"overwrites files. Pass a new or empty directory. Received: out={path!r}"
        )
    os.makedirs(path, exist_ok=True)
    return path


def _rows(array: Any, indices: np.ndarray) -> np.ndarray:
    """Rows `indices` of `array`, in that order, reading in increasing order (h5py needs it)."""
    if len(indices) and np.all(np.diff(indices) == 1):
        return np.asarray(array[int(indices[0]) : int(indices[-1]) + 1])
    if isinstance(array, np.ndarray):
        return array[indices]
    return take_sorted(lambda idx: np.asarray(array[idx]), indices)


def _write_npy(data: Any, labels: Any, out: str, sets: list[np.ndarray], _: Any) -> dict[str, str]:
    for k, indices in enumerate(sets):
        np.save(os.path.join(out, f"data_{k}.npy"), _rows(data, indices))
    keywords = {"data_path": out}
    if labels is not None:
        path = os.path.join(out, "labels.npy")
        np.save(path, np.concatenate([_rows(labels, indices) for indices in sets]))
        keywords["labels_path"] = path
    return keywords


def _write_h5(
    data: Any, labels: Any, out: str, sets: list[np.ndarray], compression: Any
) -> dict[str, str]:
    import h5py

    for k, indices in enumerate(sets):
        with h5py.File(os.path.join(out, f"data_{k}.h5"), "w") as handle:
            handle.create_dataset("data", data=_rows(data, indices), compression=compression)
    keywords = {"data_path": out}
    if labels is not None:
        keywords["labels_path"] = _write_keyed(
            os.path.join(out, "labels.h5"), labels, sets, compression
        )
    return keywords


def _write_h5_single(
    data: Any, labels: Any, out: str, sets: list[np.ndarray], compression: Any
) -> dict[str, str]:
    keywords = {"data_path": _write_keyed(os.path.join(out, "data.h5"), data, sets, compression)}
    if labels is not None:
        keywords["labels_path"] = _write_keyed(
            os.path.join(out, "labels.h5"), labels, sets, compression
        )
    return keywords


def _write_keyed(path: str, array: Any, sets: list[np.ndarray], compression: Any) -> str:
    import h5py

    with h5py.File(path, "w") as handle:
        for k, indices in enumerate(sets):
            handle.create_dataset(str(k), data=_rows(array, indices), compression=compression)
    return path


_WRITERS = {"npy": _write_npy, "h5": _write_h5, "h5-single": _write_h5_single}
