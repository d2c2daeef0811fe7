"""Bad input raises ValueError/TypeError/FileNotFoundError naming the file, key or value.

One table: each case builds files under tmp_path and lists the DataGenerator keywords,
the error type and a pattern the message must contain. No case may change a file.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest

from tests.data_sources.layouts import LAYOUTS, build
from trainkit import DataGenerator


def npy_sets(
    tmp: Path, count: int = 3, shape: tuple[int, ...] = (2, 1), name: str = "data"
) -> Path:
    for k in range(count):
        np.save(tmp / f"{name}{k}.npy", np.zeros(shape))
    return tmp


def h5_keyed(path: Path, keys: list[str], rows: int = 2) -> Path:
    with h5py.File(path, "w") as handle:
        for key in keys:
            handle[key] = np.zeros(rows)
    return path


def truncated_npy(path: Path) -> Path:
    np.save(path, np.zeros((50, 4)))
    path.write_bytes(path.read_bytes()[:100])
    return path


def case_mixed(tmp: Path) -> dict[str, Any]:
    npy_sets(tmp, 2)
    h5_keyed(tmp / "data2.h5", ["x"])
    return {"data_path": tmp}


def case_unequal_shapes(tmp: Path) -> dict[str, Any]:
    npy_sets(tmp, 2)
    np.save(tmp / "data2.npy", np.zeros((2, 5)))
    return {"data_path": tmp}


def case_truncated_in_dir(tmp: Path) -> dict[str, Any]:
    npy_sets(tmp, 1)
    truncated_npy(tmp / "data1.npy")
    return {"data_path": tmp}


def case_npz_unknown(tmp: Path) -> dict[str, Any]:
    np.savez(tmp / "d.npz", a=np.zeros(2), b=np.zeros(2), c=np.zeros(2))
    return {"data_path": tmp / "d.npz"}


def case_npz_partly_numeric(tmp: Path) -> dict[str, Any]:
    np.savez(tmp / "d.npz", **{"0": np.zeros(2), "1": np.zeros(2), "meta": np.zeros(1)})
    return {"data_path": tmp / "d.npz"}


def case_npz_dir_uneven_labels(tmp: Path) -> dict[str, Any]:
    np.savez(tmp / "s0.npz", x=np.zeros((2, 1)), y=np.zeros(2))
    np.savez(tmp / "s1.npz", x=np.zeros((2, 1)))
    return {"data_path": tmp}


def case_npz_with_labels_path(tmp: Path) -> dict[str, Any]:
    np.savez(tmp / "d.npz", x=np.zeros((2, 1)), y=np.zeros(2))
    np.save(tmp / "y.npy", np.zeros(2))
    return {"data_path": tmp / "d.npz", "labels_path": tmp / "y.npy"}


def case_h5_many_datasets(tmp: Path) -> dict[str, Any]:
    return {"data_path": h5_keyed(tmp / "d.h5", ["images", "masks"])}


def case_h5_set_file_many_datasets(tmp: Path) -> dict[str, Any]:
    h5_keyed(tmp / "d0.h5", ["images", "masks"])
    h5_keyed(tmp / "d1.h5", ["images", "masks"])
    return {"data_path": tmp}


def case_h5_no_datasets(tmp: Path) -> dict[str, Any]:
    with h5py.File(tmp / "d.h5", "w") as handle:
        handle.create_group("empty")
    return {"data_path": tmp / "d.h5"}


def with_labels(labels: Callable[[Path], Path], sets: int = 3) -> Callable[[Path], dict[str, Any]]:
    def case(tmp: Path) -> dict[str, Any]:
        (tmp / "data").mkdir()
        return {"data_path": npy_sets(tmp / "data", sets), "labels_path": labels(tmp)}

    return case


def labels_dir_wrong_numbers(tmp: Path) -> Path:
    (tmp / "labels").mkdir()
    for k in (5, 6, 7):
        np.save(tmp / "labels" / f"y{k}.npy", np.zeros(2))
    return tmp / "labels"


def labels_keyed_wrong_size(tmp: Path) -> Path:
    with h5py.File(tmp / "labels.h5", "w") as handle:
        handle["0"], handle["1"], handle["2"] = np.zeros(2), np.zeros(3), np.zeros(2)
    return tmp / "labels.h5"


def short_labels(tmp: Path) -> Path:
    np.save(tmp / "y.npy", np.zeros(5))
    return tmp / "y.npy"


def npz_labels_ab(tmp: Path) -> Path:
    np.savez(tmp / "y.npz", a=np.zeros(1), b=np.zeros(1))
    return tmp / "y.npz"


def write_text(name: str, text: str) -> Callable[[Path], Path]:
    def make(tmp: Path) -> Path:
        (tmp / name).write_text(text)
        return tmp / name

    return make


def write_bytes(name: str, data: bytes) -> Callable[[Path], Path]:
    def make(tmp: Path) -> Path:
        (tmp / name).write_bytes(data)
        return tmp / name

    return make


def data_file(make: Callable[[Path], Path]) -> Callable[[Path], dict[str, Any]]:
    return lambda tmp: {"data_path": make(tmp)}


def dir_with(*names: str) -> Callable[[Path], dict[str, Any]]:
    def case(tmp: Path) -> dict[str, Any]:
        for name in names:
            np.save(tmp / name, np.zeros((2, 1))) if name.endswith(".npy") else (
                tmp / name
            ).write_text("x")
        return {"data_path": tmp}

    return case


def save(path: Path, array: np.ndarray) -> Path:
    np.save(path, array)
    return path


def h5_strings(path: Path) -> Path:
    with h5py.File(path, "w") as handle:
        handle.create_dataset("x", data=["a", "b"], dtype=h5py.string_dtype())
    return path


def scalar_loader(path: str, set_num: str) -> Any:
    return 3.0


def case_string_set(tmp: Path) -> dict[str, Any]:
    npy_sets(tmp, 2)
    np.save(tmp / "data2.npy", np.array([["a"], ["b"]]))
    return {"data_path": tmp}


def h5_sets(tmp: Path, keys: list[str]) -> Path:
    for k, key in enumerate(keys):
        h5_keyed(tmp / f"d{k}.h5", [key])
    return tmp


def labels_h5_dir_mixed_keys(tmp: Path) -> Path:
    (tmp / "labels").mkdir()
    return h5_sets(tmp / "labels", ["y", "y", "target"])


def case_empty_sets(tmp: Path) -> dict[str, Any]:
    npy_sets(tmp, 2, shape=(0, 1))
    return {"data_path": tmp}


GARBAGE = b"\x00garbage, not a real file\xff" * 20

# (id, build(tmp) -> DataGenerator keywords, error type, pattern in the message)
CASES: list[tuple[str, Callable[[Path], dict[str, Any]], type[Exception], str]] = [
    (
        "missing data path",
        lambda t: {"data_path": t / "nope"},
        FileNotFoundError,
        r"`data_path` does not exist: .*nope",
    ),
    (
        "missing labels path",
        lambda t: {"data_path": npy_sets(t), "labels_path": t / "y.h5"},
        FileNotFoundError,
        r"`labels_path` does not exist: .*y\.h5",
    ),
    (
        "empty directory",
        lambda t: {"data_path": t},
        ValueError,
        r"holds no set files\. It is empty",
    ),
    (
        "no supported files",
        dir_with("a.txt", "b.json"),
        ValueError,
        r"holds no set files\. It holds \['a\.txt'",
    ),
    ("only a labels file", dir_with("labels.npy"), ValueError, r"holds no set files"),
    ("mixed extensions", case_mixed, ValueError, r"mixes file types \['\.h5', '\.npy'\]"),
    (
        "two numbers vary",
        dir_with("a1_1.npy", "a2_2.npy"),
        ValueError,
        r"Cannot tell the set number .*'a1_1'",
    ),
    (
        "names differ",
        dir_with("a1.npy", "b2.npy"),
        ValueError,
        r"do not follow one pattern \('a1', 'b2'\)",
    ),
    (
        "same number twice",
        dir_with("d7.npy", "d07.npy"),
        ValueError,
        r"'d07' and 'd7' .* same set number 7",
    ),
    ("one file without a number", dir_with("data.txt"), ValueError, r"holds no set files"),
    (
        "unequal sample shapes",
        case_unequal_shapes,
        ValueError,
        r"sample shapes: .*data0\.npy.*\(1,\).*data2\.npy.*\(5,\)",
    ),
    (
        "truncated npy in a directory",
        case_truncated_in_dir,
        ValueError,
        r"Could not read '.*data1\.npy'",
    ),
    (
        "truncated npy file",
        data_file(lambda t: truncated_npy(t / "x.npy")),
        ValueError,
        r"Could not read '.*x\.npy'.*truncated",
    ),
    (
        "corrupt h5",
        data_file(write_bytes("x.h5", GARBAGE)),
        ValueError,
        r"Could not read '.*x\.h5' as an HDF5 file",
    ),
    (
        "corrupt npz",
        data_file(write_bytes("x.npz", GARBAGE)),
        ValueError,
        r"Could not read '.*x\.npz' as a \.npz archive",
    ),
    ("npz unknown members", case_npz_unknown, ValueError, r"members \['a', 'b', 'c'\]"),
    ("npz partly numeric", case_npz_partly_numeric, ValueError, r"members \['0', '1', 'meta'\]"),
    (
        "npz directory, labels in some files",
        case_npz_dir_uneven_labels,
        ValueError,
        r"Some \.npz files",
    ),
    (
        "npz labels and labels_path",
        case_npz_with_labels_path,
        ValueError,
        r"already carries labels.*Received: labels_path=",
    ),
    (
        "h5 several datasets",
        case_h5_many_datasets,
        ValueError,
        r"\['images', 'masks'\]: name the data with `data_key=`",
    ),
    (
        "h5 set file several datasets",
        case_h5_set_file_many_datasets,
        ValueError,
        r"d0\.h5' holds datasets \['images', 'masks'\]",
    ),
    ("h5 without datasets", case_h5_no_datasets, ValueError, r"d\.h5' holds datasets \[\]"),
    (
        "data_key not in file",
        lambda t: {"data_path": h5_keyed(t / "d.h5", ["x"]), "data_key": "z"},
        ValueError,
        r"no dataset 'z'.*\['x'\]\. Received: data_key='z'",
    ),
    (
        "data_key not a str",
        lambda t: {"data_path": npy_sets(t), "data_key": 3},
        TypeError,
        r"Received: data_key=3",
    ),
    (
        "labels keys match no set",
        with_labels(lambda t: h5_keyed(t / "y.h5", ["20", "21"])),
        ValueError,
        r"\['20', '21'\] match no set .*sets \['0', '1', '2'\] have no labels",
    ),
    (
        "labels keys miss a set",
        with_labels(lambda t: h5_keyed(t / "y.h5", ["0", "1"])),
        ValueError,
        r"sets \['2'\] have no labels",
    ),
    (
        "labels npz keys match no set",
        with_labels(write_bytes("y.npz", b"")),
        ValueError,
        r"Could not read '.*y\.npz'",
    ),
    (
        "labels directory numbers differ",
        with_labels(labels_dir_wrong_numbers),
        ValueError,
        r"file numbers of labels file .*labels'.*\['5', '6', '7'\] match no set",
    ),
    (
        "keyed labels of the wrong size",
        with_labels(labels_keyed_wrong_size),
        ValueError,
        r"labels\.h5\['1'\] holds 3 labels but data set '1' holds 2",
    ),
    (
        "aligned labels of the wrong length",
        with_labels(short_labels),
        ValueError,
        r"has 6, .*y\.npy has 5",
    ),
    (
        "csv with text",
        data_file(write_text("x.csv", "a,b\n1,2\n3,oops\n")),
        ValueError,
        r"x\.csv' holds a value that is not a number",
    ),
    (
        "csv ragged rows",
        data_file(write_text("x.csv", "1,2\n3\n")),
        ValueError,
        r"x\.csv' has rows of different lengths \[1, 2\]",
    ),
    ("csv empty", data_file(write_text("x.csv", "")), ValueError, r"x\.csv' is empty"),
    (
        "csv header only",
        data_file(write_text("x.csv", "a,b\n")),
        ValueError,
        r"x\.csv' has a header but no rows",
    ),
    (
        "unsupported data file",
        data_file(write_text("x.txt", "1")),
        ValueError,
        r"unsupported extension.*Received: data_path='.*x\.txt'",
    ),
    (
        "unsupported labels file",
        with_labels(write_text("y.txt", "1")),
        ValueError,
        r"unsupported extension.*Received: labels_path='.*y\.txt'",
    ),
    ("data_path not a path", lambda t: {"data_path": 5}, TypeError, r"Received: data_path=5"),
    (
        "loader not callable",
        lambda t: {"data_path": npy_sets(t), "loader": "np.load"},
        TypeError,
        r"Received: loader='np\.load'",
    ),
    (
        "loader returns a scalar",
        lambda t: {"data_path": npy_sets(t), "loader": scalar_loader},
        ValueError,
        r"returned a scalar",
    ),
    (
        "path and array",
        lambda t: {"data_path": npy_sets(t), "data": np.zeros((2, 1))},
        ValueError,
        r"not both",
    ),
    ("labels npz unknown members", with_labels(npz_labels_ab), ValueError, r"members \['a', 'b'\]"),
    (
        "a string set among float sets",
        case_string_set,
        ValueError,
        r"data2\.npy holds dtype <U1 \(strings\).*Convert to numbers",
    ),
    (
        "object array in memory",
        lambda t: {"data": np.array([[1], ["a"]], dtype=object)},
        ValueError,
        r"`data=` array holds dtype \|O \(Python objects\).*Received: dtype=\|O",
    ),
    (
        "string labels in memory",
        lambda t: {"data": np.zeros((2, 1)), "labels": np.array(["cat", "dog"])},
        ValueError,
        r"`labels=` array holds dtype <U3 \(strings\)",
    ),
    (
        "string dataset in an HDF5 file",
        lambda t: {"data_path": h5_strings(t / "d.h5")},
        ValueError,
        r"d\.h5\['x'\] holds dtype \|O",
    ),
    (
        "h5 set files with differently named datasets",
        lambda t: {"data_path": h5_sets(t, ["x", "x", "images"])},
        ValueError,
        r"differently named datasets: .*d0\.h5\['x'\] and .*d2\.h5\['images'\]",
    ),
    (
        "h5 labels files with differently named datasets",
        with_labels(labels_h5_dir_mixed_keys),
        ValueError,
        r"differently named datasets: .*\['y'\] and .*\['target'\].*labels_key=None",
    ),
    (
        "0-d array in memory",
        lambda t: {"data": np.array(3.0)},
        ValueError,
        r"`data=` array is 0-d \(a scalar\).*x\[None\]",
    ),
    (
        "0-d npy file",
        data_file(lambda t: save(t / "x.npy", np.array(3.0))),
        ValueError,
        r"x\.npy is 0-d \(a scalar\)",
    ),
    (
        "20-digit integer in a CSV",
        data_file(write_text("x.csv", "1,2\n3,12345678901234567890\n")),
        ValueError,
        r"x\.csv' holds the integer 12345678901234567890 \(data row 1, column 1.*int64",
    ),
    (
        "integer beyond 2**53 among decimals in a CSV",
        data_file(write_text("x.csv", "0.5,9007199254740993\n")),
        ValueError,
        r"mixes decimals with the integer 9007199254740993 .*beyond 2\*\*53",
    ),
    (
        "integer beyond 2**53 among decimals in a labels column",
        with_labels(write_text("y.csv", "0,1,2\n0.5,1,1\n9007199254740993,1,1\n"), sets=3),
        ValueError,
        r"y\.csv column '0'.*9007199254740993",
    ),
    ("every set empty", case_empty_sets, ValueError, r"hold no samples"),
    (
        "a None member of a dict",
        lambda t: {"data": {"a": np.zeros((2, 1)), "b": None}},
        ValueError,
        r"Member 'b' of `data` is None.*Leave the member out.*Received: data\['b'\]=None",
    ),
    (
        "an empty key in a dict",
        lambda t: {"data": {"": np.zeros((2, 1))}},
        ValueError,
        r"`data` has a member named '' \(an empty key\).*name of its input or output",
    ),
    (
        "complex samples in memory",
        lambda t: {"data": np.zeros((2, 1), complex)},
        ValueError,
        r"`data=` array holds dtype <c16 \(complex numbers\).*x\.real, x\.imag",
    ),
    (
        "complex ragged samples",
        lambda t: {"data": [np.zeros((3, 2), np.complex64), np.zeros((1, 2), np.complex64)]},
        ValueError,
        r"`data=` list holds dtype <c8 \(complex numbers\)",
    ),
    (
        "a trainer argument on the generator",
        lambda t: {"data": np.zeros((2, 1)), "epochs": 5},
        ValueError,
        r"DataGenerator does not take `epochs`: it is an argument of TrainGenerator: "
        r"TrainGenerator\(model, datagen, epochs=\.\.\.\)",
    ),
    (
        "val_freq on the generator",
        lambda t: {"data": np.zeros((2, 1)), "val_freq": {"epoch": 1}},
        ValueError,
        r"does not take `val_freq`: it is an argument of TrainGenerator",
    ),
    (
        "DeepTrain's data_dir",
        lambda t: {"data_dir": npy_sets(t)},
        ValueError,
        r"DeepTrain's `data_dir` is `data_path` here.*DataGenerator\(data_path=\.\.\.\)",
    ),
    (
        "DeepTrain's labels_dir",
        lambda t: {"data_path": npy_sets(t), "labels_dir": t},
        ValueError,
        r"DeepTrain's `labels_dir` is `labels_path` here",
    ),
    (
        "DeepTrain's preload_labels",
        lambda t: {"data_path": npy_sets(t), "preload_labels": True},
        ValueError,
        r"labels with their batch.*`labels=` an array.*`superbatch=True`",
    ),
    (
        "seed beyond int64",
        lambda t: {"data": np.zeros((2, 1)), "seed": 2**80},
        ValueError,
        r"`seed` must be an int from 0 to 9223372036854775807\. "
        r"Received: seed=1208925819614629174706176",
    ),
]


def snapshot(root: Path) -> dict[str, tuple[bytes, int]]:
    files = {}
    for folder, _, names in os.walk(root):
        for name in names:
            path = os.path.join(folder, name)
            files[path] = (Path(path).read_bytes(), os.stat(path).st_mtime_ns)
    return files


@pytest.mark.parametrize(
    ("build_case", "error", "pattern"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_bad_input_raises_a_clear_error_and_changes_no_file(build_case, error, pattern, tmp_path):
    keywords = build_case(tmp_path)
    before = snapshot(tmp_path)
    with pytest.raises(error, match=pattern):
        DataGenerator(**keywords, batch_size=2)
    assert snapshot(tmp_path) == before


def test_the_table_holds_thirty_cases_or_more():
    assert len(CASES) >= 30


@pytest.mark.parametrize("layout", LAYOUTS, ids=lambda f: f.__name__)
def test_reading_a_layout_never_changes_its_files(layout, tmp_path):
    keywords, _, _ = build(layout, tmp_path)
    before = snapshot(tmp_path)
    dg = DataGenerator(**keywords, batch_size=3, shuffle="samples")
    list(dg)
    assert snapshot(tmp_path) == before
