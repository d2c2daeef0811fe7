"""Open `labels_path`: labels aligned with the samples, or keyed by set.

A labels source always presents its rows in the data source's set order, so the
DataGenerator reads a batch's labels with the same global rows as its samples.

* Keyed by set: a directory of numbered label files, an HDF5 file or `.npz` with one key
  per set, a CSV with one column per set, or a `labels_loader`. A file is keyed by set if
  and only if its keys (HDF5, `.npz`) or its header row (CSV) equal the data's set_nums
  (as strings, or by integer value: key `'07'` is set `'7'`).
* Aligned: any other file holding one row per sample, in the data's set order.
"""

from __future__ import annotations

import functools
import os
import warnings

import numpy as np

from trainkit.data.sources import formats
from trainkit.data.sources.arrays import ArraySource, open_npy, rows_source
from trainkit.data.sources.base import Source
from trainkit.data.sources.discovery import SetFile, list_set_files, match_keys
from trainkit.data.sources.layouts import (
    Loader,
    check_same_dataset,
    loader_set,
    npz_roles,
    stored_set_file,
)
from trainkit.data.sources.sets import SetSource, StoredSet


def open_labels_path(
    path: str, data: Source, *, set_size: int, loader: Loader | None, key: str | None
) -> Source:
    """The labels source for `labels_path`, in `data`'s set order (see module docstring)."""
    if loader is not None and not os.path.isdir(path):
        stored = [loader_set(loader, path, num, "labels_loader") for num in data.set_nums]
        return _keyed(stored, data, f"labels_loader({path!r}, set_num)")
    if os.path.isdir(path):
        return _open_labels_directory(path, data, loader=loader, key=key)
    kind = formats.format_of(path)
    if kind == "npy":
        return open_npy(path, set_size, description=path)
    if kind == "h5":
        return _open_labels_h5(path, data, set_size=set_size, key=key)
    if kind == "npz":
        return _open_labels_npz(path, data, set_size=set_size)
    if kind == "csv":
        return _open_labels_csv(path, data, set_size=set_size)
    raise ValueError(
        f"`labels_path`={path!r} has an unsupported extension. Supported: a directory of "
        f"numbered label files or one {', '.join(sorted(formats.FORMATS))} file; pass "
        f"`labels_loader=` for other formats. Received: labels_path={path!r}"
    )


def _open_labels_directory(
    path: str, data: Source, *, loader: Loader | None, key: str | None
) -> Source:
    files = list_set_files(
        path, arg="labels_path", any_extension=loader is not None, skip_labels=False
    )
    by_key = {f.set_num: f for f in files}
    mapping = _require_keys(path, list(by_key), data, "file numbers")
    chosen = [SetFile(num, by_key[mapping[num]].path) for num in data.set_nums]
    if loader is not None:
        stored = [loader_set(loader, f.path, f.set_num, "labels_loader") for f in chosen]
    else:
        kind = formats.format_of(chosen[0].path)
        stored = [stored_set_file(f, kind, key, key_arg="labels_key") for f in chosen]
        check_same_dataset(stored, path, "labels_key")
    return _keyed(
        stored,
        data,
        f"{path} (labels of {len(stored)} sets)",
        sum(os.path.getsize(f.path) for f in chosen),
    )


def _open_labels_h5(path: str, data: Source, *, set_size: int, key: str | None) -> Source:
    datasets = formats.probe_h5(path)
    if key is not None or len(datasets) == 1:
        chosen = key if key is not None else next(iter(datasets))
        if chosen not in datasets:
            raise ValueError(
                f"{path!r} has no dataset {chosen!r}. It holds {sorted(datasets)}. "
                f"Received: labels_key={key!r}"
            )
        return formats.h5_dataset_source(path, chosen, set_size)
    mapping = _require_keys(path, list(datasets), data, "keys")
    stored = [
        StoredSet(
            num, f"{path}[{k!r}]", *datasets[k], load=functools.partial(formats.load_h5, path, k)
        )
        for num, k in ((num, mapping[num]) for num in data.set_nums)
    ]
    return _keyed(stored, data, f"{path} (labels keyed by set)", os.path.getsize(path))


def _open_labels_npz(path: str, data: Source, *, set_size: int) -> Source:
    members = formats.probe_npz(path)
    if len(members) == 1:
        member = next(iter(members))
        array = formats.load_npz_member(path, member)
        return rows_source(array, set_size, description=f"{path}[{member!r}]", path=path)
    if match_keys(list(members), data.set_nums) is None:
        npz_roles(path, members)  # raises for names that are not sets
    mapping = _require_keys(path, list(members), data, "members")
    stored = [
        StoredSet(
            num,
            f"{path}[{k!r}]",
            *members[k],
            load=functools.partial(formats.load_npz_member, path, k),
        )
        for num, k in ((num, mapping[num]) for num in data.set_nums)
    ]
    return _keyed(stored, data, f"{path} (labels keyed by set)", os.path.getsize(path))


def _open_labels_csv(path: str, data: Source, *, set_size: int) -> Source:
    table = formats.read_csv(path)
    first_row = table.header if table.header is not None else [c.strip() for c in table.rows[0]]
    # Arrays and single files are cut into sets by batch_size: their set numbers are no
    # names a CSV header could mean, so only sources with sets of their own are keyed.
    mapping = None if isinstance(data, ArraySource) else match_keys(first_row, data.set_nums)
    if mapping is None:
        array = formats.csv_rows(table)
        return rows_source(array, set_size, description=path, path=path)
    body = table.rows if table.header is not None else table.rows[1:]
    keyed = formats.CsvTable(path, first_row, body)
    columns = {name: formats.csv_column(keyed, k) for k, name in enumerate(first_row)}
    stored = []
    for num in data.set_nums:
        column = columns[mapping[num]]
        where = f"{path} column {mapping[num]!r}"
        stored.append(
            StoredSet(
                num, where, column.shape, column.dtype, load=functools.partial(_column, column)
            )
        )
    return _keyed(stored, data, f"{path} (one column per set)", os.path.getsize(path))


def _column(array: np.ndarray) -> np.ndarray:
    return array


def _require_keys(path: str, keys: list[str], data: Source, what: str) -> dict[str, str]:
    """Map data set_nums to keys, or raise naming the keys that match no set.

    Keys beyond the data's sets are allowed, as DeepTrain allowed them (one labels file
    for a folder split into `train/` and `val/`): each set reads its own key, and a
    warning names the keys no set reads.
    """
    mapping = match_keys(keys, data.set_nums)
    if mapping is not None:
        return mapping
    by_value: dict[int, str] = {}
    for key in keys:
        if key.isdigit():
            by_value.setdefault(int(key), key)
    partial = {
        num: num if num in keys else by_value[int(num)]
        for num in data.set_nums
        if num in keys or (num.isdigit() and int(num) in by_value)
    }
    missing = [n for n in data.set_nums if n not in partial]
    read = set(partial.values())
    unmatched = [k for k in keys if k not in read]
    if not missing and len(read) == len(partial):
        warnings.warn(
            f"Labels file {path!r} holds {len(unmatched)} {what} that match no set of "
            f"{data.description}: {_short(unmatched)}. Each of the data's "
            f"{len(data.set_nums)} sets reads the labels under its own key; the others are "
            "not read.",
            UserWarning,
            stacklevel=2,
        )
        return partial
    raise ValueError(
        f"The {what} of labels file {path!r} do not match the data's sets: {_short(unmatched)} "
        f"match no set of {data.description}, and sets {_short(missing)} have no labels. Labels "
        "keyed by set need exactly one key per data set; for labels aligned with the samples, "
        f"store them as one array. Received: labels_path={path!r}"
    )


def _keyed(
    stored: list[StoredSet], data: Source, description: str, file_bytes: int | None = None
) -> SetSource:
    for entry, size in zip(stored, data.set_sizes):
        if entry.shape[:1] != (size,):
            count = entry.shape[0] if entry.shape else "no"
            raise ValueError(
                f"{entry.where} holds {count} labels but data set {entry.set_num!r} holds "
                f"{size} samples. Each set's labels must have one row per sample of that set."
            )
    return SetSource(stored, description=description, file_bytes=file_bytes, warn_empty=False)


def _short(items: list[str], limit: int = 8) -> str:
    shown = ", ".join(repr(i) for i in items[:limit])
    more = f", ... ({len(items)} in all)" if len(items) > limit else ""
    return f"[{shown}{more}]"
