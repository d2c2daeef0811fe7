"""Open `data_path`: a directory of numbered set files, or one file holding every sample.

Returns the data source and, for `.npz` files that carry both (`x`/`y`, `data`/`labels`),
the labels source paired with it.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from typing import Any

import numpy as np

from trainkit._validation import describe
from trainkit.data.sources import formats
from trainkit.data.sources.arrays import ArraySource, open_npy, rows_source
from trainkit.data.sources.base import Source
from trainkit.data.sources.discovery import SetFile, candidate_names, list_set_files, numeric_order
from trainkit.data.sources.sets import SetSource, StoredSet

Loader = Callable[[str, Any], Any]
Opened = tuple[Source, Source | None]  # (data, labels carried by the same files)

# .npz member names that hold (data, labels) pairs
NPZ_PAIRS = (("x", "y"), ("data", "labels"))


def open_data_path(
    path: str, *, set_size: int, loader: Loader | None, key: str | None, exclude: str | None
) -> Opened:
    """The source for `data_path` (see module docstring)."""
    if os.path.isdir(path):
        names = candidate_names(
            path, arg="data_path", any_extension=loader is not None, exclude=exclude
        )
        stem = os.path.splitext(names[0])[0]
        if len(names) == 1 and loader is None and not any(ch.isdigit() for ch in stem):
            return open_data_file(os.path.join(path, names[0]), set_size=set_size, key=key)
        files = list_set_files(
            path, arg="data_path", any_extension=loader is not None, exclude=exclude, names=names
        )
        return open_set_files(files, directory=path, loader=loader, key=key)
    if loader is not None:
        array = _call_loader(loader, path, None, "loader")
        return rows_source(array, set_size, description=f"loader({path!r}, None)"), None
    return open_data_file(path, set_size=set_size, key=key)


# ------------------------------------------------------------------ one file, every sample
def open_data_file(path: str, *, set_size: int, key: str | None) -> Opened:
    kind = formats.format_of(path)
    if kind == "npy":
        return open_npy(path, set_size, description=path), None
    if kind == "h5":
        return _open_h5_file(path, set_size=set_size, key=key), None
    if kind == "npz":
        return _open_npz_file(path, set_size=set_size)
    if kind == "csv":
        array = formats.load_csv_rows(path)
        return rows_source(array, set_size, description=path, path=path), None
    raise ValueError(
        f"`data_path`={path!r} has an unsupported extension. Supported: a directory of set "
        f"files or one {', '.join(sorted(formats.FORMATS))} file; pass `loader=` for other "
        f"formats. Received: data_path={path!r}"
    )


def _open_h5_file(path: str, *, set_size: int, key: str | None) -> Source:
    datasets = formats.probe_h5(path)
    chosen = key if key is not None else (next(iter(datasets)) if len(datasets) == 1 else None)
    if chosen is not None:
        _check_key(path, chosen, datasets, "data_key")
        return formats.h5_dataset_source(path, chosen, set_size)
    ordered = numeric_order(list(datasets))
    if ordered is None:
        raise ValueError(
            f"{path!r} holds datasets {sorted(datasets)}: name the data with `data_key=` "
            "(e.g. DataGenerator(..., data_key='x')), or store one dataset per set under "
            f"numeric keys '0', '1', .... Received: data_path={path!r}"
        )
    stored = [
        StoredSet(
            k, f"{path}[{k!r}]", *datasets[k], load=functools.partial(formats.load_h5, path, k)
        )
        for k in ordered
    ]
    return SetSource(
        stored, description=f"{path} ({len(stored)} sets)", file_bytes=os.path.getsize(path)
    )


def _open_npz_file(path: str, *, set_size: int) -> Opened:
    members = formats.probe_npz(path)
    data_member, labels_member = npz_roles(path, members)
    if data_member is not None:
        data = _npz_array(path, data_member, set_size)
        labels = None if labels_member is None else _npz_array(path, labels_member, set_size)
        return data, labels
    ordered = numeric_order(list(members)) or []  # npz_roles raised unless numeric
    stored = [_npz_set(path, k, k, members[k]) for k in ordered]
    return SetSource(
        stored, description=f"{path} ({len(stored)} sets)", file_bytes=os.path.getsize(path)
    ), None


def npz_roles(path: str, members: dict[str, formats.Header]) -> tuple[str | None, str | None]:
    """`(data member, labels member)` by the `.npz` rules, or `(None, None)` for numeric sets."""
    names = set(members)
    if len(names) == 1:
        return next(iter(names)), None
    for pair in NPZ_PAIRS:
        if names == set(pair):
            return pair
    if numeric_order(list(names)) is not None:
        return None, None
    raise ValueError(
        f"{path!r} has members {sorted(names)}, which trainkit cannot assign. An .npz source "
        "holds one member (the data), `x` and `y` or `data` and `labels` (data and labels), "
        "or numeric members '0', '1', ... (one per set). Rename the members, or pass a `loader=`."
    )


def _npz_array(path: str, member: str, set_size: int) -> ArraySource:
    array = formats.load_npz_member(path, member)
    return rows_source(array, set_size, description=f"{path}[{member!r}]", path=path)


def _npz_set(path: str, set_num: str, member: str, header: formats.Header) -> StoredSet:
    return StoredSet(
        set_num,
        f"{path}[{member!r}]",
        *header,
        load=functools.partial(formats.load_npz_member, path, member),
    )


# ------------------------------------------------------------------ a directory of sets
def open_set_files(
    files: list[SetFile], *, directory: str, loader: Loader | None, key: str | None
) -> Opened:
    description = f"{directory} ({len(files)} sets)"
    size = sum(os.path.getsize(f.path) for f in files)
    if loader is not None:
        stored = [loader_set(loader, f.path, f.set_num, "loader") for f in files]
        return SetSource(stored, description=description, file_bytes=size), None
    kind = formats.format_of(files[0].path)
    if kind == "npz":
        return _npz_set_files(files, description, size)
    stored = [stored_set_file(f, kind, key) for f in files]
    check_same_dataset(stored, directory, "data_key")
    return SetSource(stored, description=description, file_bytes=size), None


def check_same_dataset(stored: list[StoredSet], directory: str, key_arg: str) -> None:
    """Refuse HDF5 set files of one folder whose single datasets have different names."""
    first = next((s for s in stored if s.key is not None), None)
    odd = next((s for s in stored if s.key is not None and first and s.key != first.key), None)
    if first is not None and odd is not None:
        raise ValueError(
            f"The HDF5 set files of {directory!r} hold differently named datasets: "
            f"{first.where} and {odd.where}. Sets of one folder must hold the same data: "
            f"rename the datasets alike, or move the odd files out. Received: {key_arg}=None"
        )


def stored_set_file(
    file: SetFile, kind: str | None, key: str | None, key_arg: str = "data_key"
) -> StoredSet:
    """One numbered file of a directory as a set (`.npy`, `.h5`, `.csv`; `.npz` with one member)."""
    path, num = file.path, file.set_num
    if kind == "npy":
        layout = formats.probe_npy_layout(path)
        load = functools.partial(formats.load_npy_set, path, layout)
        return StoredSet(num, path, layout.shape, layout.dtype, load=load)
    if kind == "h5":
        datasets = formats.probe_h5(path)
        chosen = key if key is not None else (next(iter(datasets)) if len(datasets) == 1 else None)
        if chosen is None:
            raise ValueError(
                f"{path!r} holds datasets {sorted(datasets)}: a set file holds one dataset, or "
                f"name it with `{key_arg}=`. Received: {key_arg}=None"
            )
        _check_key(path, chosen, datasets, key_arg)
        return StoredSet(
            num,
            f"{path}[{chosen!r}]",
            *datasets[chosen],
            load=functools.partial(formats.load_h5, path, chosen),
            key=chosen,
        )
    if kind == "csv":
        array = _load_csv(path)
        return StoredSet(
            num, path, array.shape, array.dtype, load=functools.partial(_load_csv, path)
        )
    if kind == "npz":
        members = formats.probe_npz(path)
        if len(members) != 1:
            raise ValueError(
                f"{path!r} has members {sorted(members)}; a labels set file holds one array."
            )
        member = next(iter(members))
        return _npz_set(path, num, member, members[member])
    raise ValueError(f"{path!r} has an unsupported extension; pass a `loader=` for its format.")


def _npz_set_files(files: list[SetFile], description: str, size: int) -> Opened:
    data, labels = [], []
    for f in files:
        members = formats.probe_npz(f.path)
        data_member, labels_member = npz_roles(f.path, members)
        if data_member is None:
            raise ValueError(
                f"{f.path!r} has numeric members {sorted(members)}; a set file holds one array, "
                "or `x` and `y` (data and labels)."
            )
        data.append(_npz_set(f.path, f.set_num, data_member, members[data_member]))
        if labels_member is not None:
            labels.append(_npz_set(f.path, f.set_num, labels_member, members[labels_member]))
    if labels and len(labels) != len(data):
        raise ValueError(
            f"Some .npz files of {description} carry labels and some do not: give every set "
            "file the same members."
        )
    labels_source = (
        SetSource(labels, description=f"{description} labels", file_bytes=None, warn_empty=False)
        if labels
        else None
    )
    return SetSource(data, description=description, file_bytes=size), labels_source


def _load_csv(path: str) -> np.ndarray:
    return formats.load_csv_rows(path)


def loader_set(loader: Loader, path: str, set_num: str, name: str) -> StoredSet:
    """A set read by a user loader; it is called once here to learn the set's size."""
    array = _call_loader(loader, path, set_num, name)
    return StoredSet(
        set_num,
        f"{name}({path!r}, {set_num!r})",
        array.shape,
        array.dtype,
        load=functools.partial(loader, path, set_num),
    )


def _call_loader(loader: Loader, path: str, set_num: Any, name: str) -> np.ndarray:
    if not callable(loader):
        raise TypeError(
            f"`{name}` must be a callable loader(path, set_num) -> array. "
            f"Received: {name}={describe(loader)}"
        )
    array = np.asarray(loader(path, set_num))
    if array.ndim < 1:
        raise ValueError(
            f"`{name}`({path!r}, {set_num!r}) returned a scalar; it must return an array of "
            f"shape (samples, ...). Received: {name}={describe(loader)}"
        )
    return array


def _check_key(path: str, key: str, datasets: dict[str, Any], arg: str) -> None:
    if key not in datasets:
        raise ValueError(
            f"{path!r} has no dataset {key!r}. It holds {sorted(datasets)}. Received: {arg}={key!r}"
        )
