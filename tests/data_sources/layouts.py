"""Builders for every on-disk layout the data sources read, with the samples they hold.

Every builder writes 24 samples in 12 sets of 2 (so numeric order differs from
lexicographic: '10' sorts before '2' as text) and returns the DataGenerator keywords and
the samples and labels in the source's documented order (sets in numeric order).
Sample i is `[i, i + 0.5, -i]` and its label is `i`, so pairing is checkable.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from trainkit.data import write_sets

NUM_SAMPLES, SET_SIZE = 24, 2
NUM_SETS = NUM_SAMPLES // SET_SIZE
X = np.stack(
    [np.arange(NUM_SAMPLES), np.arange(NUM_SAMPLES) + 0.5, -np.arange(NUM_SAMPLES)], axis=1
).astype("float32")
Y = np.arange(NUM_SAMPLES, dtype="int64")

Layout = tuple[dict[str, Any], np.ndarray, np.ndarray]


def sets_of(array: np.ndarray) -> list[np.ndarray]:
    return [array[k * SET_SIZE : (k + 1) * SET_SIZE] for k in range(NUM_SETS)]


def write_csv(path: Path, rows: np.ndarray, header: list[str] | None = None) -> None:
    lines = [",".join(header)] if header else []
    lines += [
        ",".join(repr(float(v)) if rows.dtype.kind == "f" else str(v) for v in np.atleast_1d(r))
        for r in rows
    ]
    path.write_text("\n".join(lines) + "\n")


def npy_dir_aligned_labels(tmp: Path) -> Layout:
    for k, part in enumerate(sets_of(X)):
        np.save(tmp / f"data_{k}.npy", part)
    np.save(tmp / "labels.npy", Y)  # in the data folder: skipped as data
    return {"data_path": tmp, "labels_path": tmp / "labels.npy"}, X, Y


def deeptrain_npy_labels_h5(tmp: Path) -> Layout:
    # DeepTrain: 128batch__1.npy ... with labels.h5 keyed by set.
    with h5py.File(tmp / "labels.h5", "w") as handle:
        for k, (part, labels) in enumerate(zip(sets_of(X), sets_of(Y)), start=1):
            np.save(tmp / f"128batch__{k}.npy", part)
            handle[str(k)] = labels
    return {"data_path": str(tmp), "labels_path": str(tmp / "labels.h5")}, X, Y


def deeptrain_h5_dir(tmp: Path) -> Layout:
    # DeepTrain: a folder of batch32_N.h5 with labels.h5 keyed by set.
    with h5py.File(tmp / "labels.h5", "w") as labels_file:
        for k, (part, labels) in enumerate(zip(sets_of(X), sets_of(Y))):
            with h5py.File(tmp / f"batch32_{k}.h5", "w") as handle:
                handle["data"] = part
            labels_file[str(k)] = labels
    return {"data_path": tmp, "labels_path": tmp / "labels.h5"}, X, Y


def deeptrain_data_h5_labels_csv(tmp: Path) -> Layout:
    # DeepTrain: one data.h5 keyed by set with labels.csv, one column per set.
    with h5py.File(tmp / "data.h5", "w") as handle:
        for k, part in enumerate(sets_of(X)):
            handle[str(k)] = part
    columns = np.stack(sets_of(Y), axis=1)  # (set_size, num_sets)
    write_csv(tmp / "labels.csv", columns, header=[str(k) for k in range(NUM_SETS)])
    return {"data_path": tmp / "data.h5", "labels_path": tmp / "labels.csv"}, X, Y


def data_h5_in_folder(tmp: Path) -> Layout:
    # The folder holds one unnumbered data.h5 (keyed by set) and labels.csv.
    keywords, x, y = deeptrain_data_h5_labels_csv(tmp)
    return {"data_path": tmp, "labels_path": keywords["labels_path"]}, x, y


def h5_one_dataset_labels_npy(tmp: Path) -> Layout:
    with h5py.File(tmp / "all.h5", "w") as handle:
        handle["samples"] = X
    np.save(tmp / "y.npy", Y)
    return {"data_path": tmp / "all.h5", "labels_path": tmp / "y.npy"}, X, Y


def h5_keys_xy(tmp: Path) -> Layout:
    with h5py.File(tmp / "xy.h5", "w") as handle:
        handle["x"], handle["y"] = X, Y
    path = tmp / "xy.h5"
    return {"data_path": path, "labels_path": path, "data_key": "x", "labels_key": "y"}, X, Y


def npz_xy(tmp: Path) -> Layout:
    np.savez(tmp / "all.npz", x=X, y=Y)
    return {"data_path": tmp / "all.npz"}, X, Y


def npz_numeric_sets_csv_rows(tmp: Path) -> Layout:
    np.savez_compressed(tmp / "sets.npz", **{str(k): part for k, part in enumerate(sets_of(X))})
    write_csv(tmp / "labels.csv", Y.reshape(-1, 1), header=["label"])
    return {"data_path": tmp / "sets.npz", "labels_path": tmp / "labels.csv"}, X, Y.reshape(-1, 1)


def npz_dir_xy(tmp: Path) -> Layout:
    for k, (part, labels) in enumerate(zip(sets_of(X), sets_of(Y))):
        np.savez(tmp / f"set{k}.npz", x=part, y=labels)
    return {"data_path": tmp}, X, Y


def csv_dir_labels_dir(tmp: Path) -> Layout:
    (tmp / "data").mkdir()
    (tmp / "labels").mkdir()
    for k, (part, labels) in enumerate(zip(sets_of(X), sets_of(Y))):
        write_csv(tmp / "data" / f"d{k}.csv", part)
        np.save(tmp / "labels" / f"labels_{k}.npy", labels)
    return {"data_path": tmp / "data", "labels_path": tmp / "labels"}, X.astype("float64"), Y


def csv_file_with_header(tmp: Path) -> Layout:
    write_csv(tmp / "x.csv", X, header=["a", "b", "c"])
    write_csv(tmp / "y.csv", Y.reshape(-1, 1))
    return (
        {"data_path": tmp / "x.csv", "labels_path": tmp / "y.csv"},
        X.astype("float64"),
        Y.reshape(-1, 1),
    )


def zero_padded_hdf5_dir(tmp: Path) -> Layout:
    # data_007.hdf5 is set '007', ordered by value; labels .npz keyed by value ('7').
    for k, part in enumerate(sets_of(X)):
        with h5py.File(tmp / f"data_{k:03d}.hdf5", "w") as handle:
            handle["x"] = part
    np.savez(tmp / "labels.npz", **{str(k): labels for k, labels in enumerate(sets_of(Y))})
    return {"data_path": tmp, "labels_path": tmp / "labels.npz"}, X, Y


def read_bin(path: str, set_num: str) -> np.ndarray:
    return np.fromfile(path, dtype="float32").reshape(-1, 3)


def read_json_labels(path: str, set_num: str) -> np.ndarray:
    with open(path) as handle:
        return np.asarray(json.load(handle)[set_num])


def loaders(tmp: Path) -> Layout:
    for k, part in enumerate(sets_of(X)):
        part.tofile(tmp / f"part-{k}.bin")
    labels = {str(k): part.tolist() for k, part in enumerate(sets_of(Y))}
    (tmp / "labels.json").write_text(json.dumps(labels))
    keywords = {
        "data_path": tmp,
        "labels_path": tmp / "labels.json",
        "loader": read_bin,
        "labels_loader": read_json_labels,
    }
    return keywords, X, Y


def npy_file_labels_h5_dataset(tmp: Path) -> Layout:
    np.save(tmp / "x.npy", X)
    with h5py.File(tmp / "y.h5", "w") as handle:
        handle["labels"] = Y
    return {"data_path": tmp / "x.npy", "labels_path": tmp / "y.h5"}, X, Y


def _written(format: str) -> Callable[[Path], Layout]:
    def build(tmp: Path) -> Layout:
        return write_sets(X, Y, tmp / "out", SET_SIZE, format=format), X, Y

    build.__name__ = f"write_sets_{format.replace('-', '_')}"
    return build


def arrays_h5py_labels(tmp: Path) -> Layout:
    handle = h5py.File(tmp / "y.h5", "w")
    handle["y"] = Y
    return {"data": X, "labels": handle["y"]}, X, Y


LAYOUTS: list[Callable[[Path], Layout]] = [
    npy_dir_aligned_labels,
    deeptrain_npy_labels_h5,
    deeptrain_h5_dir,
    deeptrain_data_h5_labels_csv,
    data_h5_in_folder,
    h5_one_dataset_labels_npy,
    h5_keys_xy,
    npz_xy,
    npz_numeric_sets_csv_rows,
    npz_dir_xy,
    csv_dir_labels_dir,
    csv_file_with_header,
    zero_padded_hdf5_dir,
    loaders,
    npy_file_labels_h5_dataset,
    _written("npy"),
    _written("h5"),
    _written("h5-single"),
    arrays_h5py_labels,
]


def build(layout: Callable[[Path], Layout], tmp: Path) -> Layout:
    os.makedirs(tmp, exist_ok=True)
    return layout(tmp)
