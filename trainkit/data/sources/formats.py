"""Readers for the file formats trainkit opens: `.npy`, `.npz`, `.h5/.hdf5`, `.csv`.

Every function opens its file read-only and turns any failure into a `ValueError` that
names the file and says how to fix it. `probe_*` functions learn shapes and dtypes
without reading the samples; `load_*` functions read one array whole.
"""

from __future__ import annotations

import csv
import errno
import io
import os
import re
import warnings
import zipfile
from dataclasses import dataclass
from typing import Any

import numpy as np

# extension -> format name
FORMATS = {".npy": "npy", ".npz": "npz", ".h5": "h5", ".hdf5": "h5", ".csv": "csv"}

Header = tuple[tuple[int, ...], np.dtype]  # (shape, dtype) of one stored array

_CORRUPT = (
    "Could not read {path!r} as {kind} ({error}). The file may be truncated or corrupt, or "
    "hold another format: re-write it, or pass a `loader=` callable for its format."
)
_UNREADABLE = (
    "Could not read {path!r}: permission denied. Give the user running trainkit read "
    "access (e.g. `chmod a+r` on files, `chmod a+rx` on folders), or copy the data."
)
_EXACT_FLOAT = 2**53  # float64 holds every integer up to this, and not all beyond
_INT64 = np.iinfo(np.int64)


def format_of(path: str) -> str | None:
    """The format name of `path` from its extension, or None when unsupported."""
    return FORMATS.get(os.path.splitext(path)[1].lower())


def corrupt(path: str, kind: str, error: BaseException) -> OSError | ValueError:
    """The error to raise when `path` cannot be read as `kind` ('a .npy array', ...).

    A permission problem is a `PermissionError` saying so; anything else a `ValueError`.
    """
    if isinstance(error, PermissionError) or getattr(error, "errno", None) == errno.EACCES:
        return unreadable(path)
    return ValueError(_CORRUPT.format(path=path, kind=kind, error=error))


def unreadable(path: str) -> PermissionError:
    return PermissionError(_UNREADABLE.format(path=path))


# ---------------------------------------------------------------------------- .npy
@dataclass(frozen=True)
class NpyLayout:
    """Where the samples of a `.npy` file lie: the header's bytes, then the array's."""

    shape: tuple[int, ...]
    dtype: np.dtype
    header: bytes  # the file's first bytes, up to the array data
    fortran_order: bool

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) * self.dtype.itemsize


def probe_npy(path: str) -> Header:
    layout = probe_npy_layout(path)
    return layout.shape, layout.dtype


def probe_npy_layout(path: str) -> NpyLayout:
    """The header of a `.npy` file, read without reading the samples.

    Files that the header alone cannot vouch for (too short, Python objects) are opened
    by `np.load` too, so they are refused as before.
    """
    try:
        with open(path, "rb") as handle:
            version = np.lib.format.read_magic(handle)
            read_header = (
                np.lib.format.read_array_header_1_0
                if version == (1, 0)
                else np.lib.format.read_array_header_2_0
            )
            shape, fortran_order, dtype = read_header(handle)
            size = handle.tell()
            handle.seek(0)
            header = handle.read(size)
            file_size = os.fstat(handle.fileno()).st_size
    except (ValueError, OSError, EOFError) as error:
        raise corrupt(path, "a .npy array", error) from error
    layout = NpyLayout(tuple(shape), np.dtype(dtype), header, bool(fortran_order))
    if layout.dtype.hasobject or file_size < size + layout.nbytes:
        open_npy_mmap(path)  # raises the error np.load gives
    return layout


def open_npy_mmap(path: str) -> np.ndarray:
    try:
        return np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError) as error:
        raise corrupt(path, "a .npy array", error) from error


def load_npy(path: str) -> np.ndarray:
    try:
        return np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as error:
        raise corrupt(path, "a .npy array", error) from error


def load_npy_set(path: str, layout: NpyLayout) -> np.ndarray:
    """The array of a `.npy` file whose header was probed as `layout`, read whole.

    One `preadv` fills the header and the samples (straight into the result) in one
    system call, skipping `np.load`'s header parsing; a file whose header or size changed
    since it was probed is read by `np.load` instead, so it gets the same checks.
    """
    if layout.fortran_order or layout.dtype.hasobject:
        return load_npy(path)
    array = np.empty(layout.shape, dtype=layout.dtype)
    header = bytearray(len(layout.header))
    try:
        descriptor = os.open(path, os.O_RDONLY)
    except OSError as error:
        raise corrupt(path, "a .npy array", error) from error
    try:
        expected = len(header) + array.nbytes
        if os.fstat(descriptor).st_size != expected:
            return load_npy(path)
        buffers = [header, array.reshape(-1).view(np.uint8)] if array.nbytes else [header]
        if _preadv_all(descriptor, buffers, expected) and bytes(header) == layout.header:
            return array
    finally:
        os.close(descriptor)
    return load_npy(path)


def _preadv_all(descriptor: int, buffers: list[Any], size: int) -> bool:
    """Fill `buffers` from the file's start; False when the file ends before `size` bytes."""
    done = os.preadv(descriptor, buffers, 0)
    while done < size:  # short reads: large files, signals, network file systems
        views = _advance([memoryview(b).cast("B") for b in buffers], done)
        got = os.preadv(descriptor, views, done)
        if got == 0:
            return False
        done += got
    return True


def _advance(views: list[memoryview], skip: int) -> list[memoryview]:
    """The parts of `views` after their first `skip` bytes."""
    out = []
    for view in views:
        if skip >= len(view):
            skip -= len(view)
            continue
        out.append(view[skip:])
        skip = 0
    return out


# ---------------------------------------------------------------------------- .npz
def probe_npz(path: str) -> dict[str, Header]:
    """Member name -> (shape, dtype), read from the member headers only."""
    members: dict[str, Header] = {}
    try:
        with zipfile.ZipFile(path, "r") as archive:
            for info in archive.infolist():
                if not info.filename.endswith(".npy"):
                    continue
                with archive.open(info, "r") as member:
                    version = np.lib.format.read_magic(member)
                    read_header = (
                        np.lib.format.read_array_header_1_0
                        if version == (1, 0)
                        else np.lib.format.read_array_header_2_0
                    )
                    shape, _, dtype = read_header(member)
                members[info.filename[: -len(".npy")]] = (tuple(shape), np.dtype(dtype))
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as error:
        raise corrupt(path, "a .npz archive", error) from error
    if not members:
        raise ValueError(f"{path!r} holds no arrays. Write it with np.savez(path, x=..., y=...).")
    return members


def load_npz_member(path: str, member: str) -> np.ndarray:
    try:
        with np.load(path, allow_pickle=False) as archive:
            return np.asarray(archive[member])
    except (ValueError, OSError, EOFError, KeyError, zipfile.BadZipFile) as error:
        raise corrupt(path, "a .npz archive", error) from error


# ---------------------------------------------------------------------------- HDF5
# Opt-in to HDF5 entries that read other files (see `check_h5_local`).
ALLOW_EXTERNAL_H5 = "TRAINKIT_ALLOW_EXTERNAL_H5"


class ExternalH5Error(ValueError):
    """An HDF5 entry would read other files (external link, external storage, virtual)."""


def external_h5_allowed() -> bool:
    """Whether the user opted in to HDF5 external links, external storage and virtual
    datasets: the environment variable `TRAINKIT_ALLOW_EXTERNAL_H5=1`."""
    return os.environ.get(ALLOW_EXTERNAL_H5, "").strip().lower() in ("1", "true", "yes")


def open_h5(path: str) -> Any:
    """An `h5py.File` opened read-only."""
    import h5py

    try:
        return h5py.File(path, "r")
    except (OSError, ValueError) as error:
        raise corrupt(path, "an HDF5 file", error) from error


def check_h5_local(path: str, handle: Any, name: str, allow_external: bool | None = None) -> None:
    """Refuse entry `name` of the open HDF5 file `handle` if reading it reads another file.

    An external link (to a dataset in another file), external storage (a dataset whose
    bytes lie in raw files named in the HDF5 file) and a virtual dataset (mapped from
    datasets of other files) make h5py read files the data folder does not hold: any file
    the process may read. They are refused, checked before anything is followed, unless
    `allow_external` (default: the environment variable `TRAINKIT_ALLOW_EXTERNAL_H5=1`).

    Raises:
        ExternalH5Error: (a ValueError) naming the file, the entry and the files it
            would read.
    """
    if allow_external if allow_external is not None else external_h5_allowed():
        return
    import h5py

    target = _h5_local_target(path, handle, name, name)
    item = handle.get(target)
    if not isinstance(item, h5py.Dataset):
        return
    external = item.external  # [(file, offset, size)] or None
    if external:
        files = sorted({os.fsdecode(entry[0]) for entry in external})
        raise ExternalH5Error(_external_h5(path, name, "stores its bytes in external files", files))
    if item.is_virtual:
        files = sorted({source.file_name for source in item.virtual_sources()} - {"."})
        if files:
            raise ExternalH5Error(
                _external_h5(path, name, "is a virtual dataset mapped from other files", files)
            )


def _h5_local_target(path: str, handle: Any, name: str, shown: str, depth: int = 0) -> str:
    """`name` with its soft links resolved; ExternalH5Error at an external link on the way
    (the message names the entry as `shown`, the name it was asked for)."""
    import h5py

    parts = [part for part in name.split("/") if part]
    here = ""
    for number, part in enumerate(parts):
        here = f"{here}/{part}"
        link = handle.get(here, getlink=True)
        if isinstance(link, h5py.ExternalLink):
            target = f"{link.filename}:{link.path}"
            raise ExternalH5Error(_external_h5(path, shown, "is an external link", [target]))
        if isinstance(link, h5py.SoftLink):
            if depth >= 16:
                raise ExternalH5Error(
                    f"{path!r}: entry {shown!r} is reached through more than 16 soft links, "
                    "too many to check that it reads nothing outside this file. Link it "
                    f"directly. Received: {path}[{shown!r}]"
                )
            parent = here.rsplit("/", 1)[0]
            resolved = link.path if link.path.startswith("/") else f"{parent}/{link.path}"
            rest = "/".join(parts[number + 1 :])
            return _h5_local_target(path, handle, f"{resolved}/{rest}", shown, depth + 1)
    return here or "/"


def _external_h5(path: str, name: str, what: str, files: list[str]) -> str:
    return (
        f"{path!r}: entry {name!r} {what} ({', '.join(repr(f) for f in files[:5])}): reading "
        "it would read files outside this one, which may lie anywhere on the machine. "
        "trainkit refuses HDF5 external links, external storage and virtual datasets unless "
        f"you opt in: if you trust this file, set the environment variable "
        f"{ALLOW_EXTERNAL_H5}=1 before building the DataGenerator; otherwise copy the data "
        f"into the file (e.g. `f.create_dataset(name, data=f[name][()])` in a new file). "
        f"Received: {path}[{name!r}]"
    )


def probe_h5(path: str) -> dict[str, Header]:
    """Top-level dataset name -> (shape, dtype); every top-level entry checked local."""
    import h5py

    with open_h5(path) as handle:
        try:
            for name in handle:
                check_h5_local(path, handle, name)
            return {
                name: (tuple(item.shape), np.dtype(item.dtype))
                for name, item in handle.items()
                if isinstance(item, h5py.Dataset)  # groups are skipped
            }
        except ExternalH5Error:
            raise
        except (OSError, ValueError, KeyError) as error:
            raise corrupt(path, "an HDF5 file", error) from error


def load_h5(path: str, key: str) -> np.ndarray:
    with open_h5(path) as handle:
        try:
            check_h5_local(path, handle, key)
            return np.asarray(handle[key][()])
        except ExternalH5Error:
            raise
        except (OSError, ValueError, KeyError) as error:
            raise corrupt(path, f"an HDF5 file with dataset {key!r}", error) from error


# ----------------------------------------------------------------------------- CSV
@dataclass(frozen=True)
class CsvTable:
    """A CSV file parsed as text: its header (None when the first row is numbers) and rows."""

    path: str
    header: list[str] | None
    rows: list[list[str]]


def read_csv(path: str) -> CsvTable:
    try:
        # utf-8-sig drops a byte-order mark (Excel writes one), which would otherwise
        # turn the first row into text and make it read as a header.
        with open(path, newline="", encoding="utf-8-sig") as handle:
            rows = [row for row in csv.reader(handle) if row]
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise corrupt(path, "a CSV file", error) from error
    if not rows:
        raise ValueError(f"{path!r} is empty: a CSV source needs one row per sample.")
    header = None if all(_is_number(cell) for cell in rows[0]) else [c.strip() for c in rows[0]]
    return CsvTable(path, header, rows[1:] if header is not None else rows)


def load_csv_rows(path: str) -> np.ndarray:
    """Every row of a CSV file as one sample: `csv_rows(read_csv(path))`, parsed fast.

    Plain numeric files (no quotes, no `nan`/`inf`, values below 2**53) are parsed by
    `np.loadtxt`, which gives the same values (both round correctly) about seven times
    faster; anything else, and every error, takes the `csv` module's path, whose
    messages name the file, the value, its row and column.
    """
    fast = _loadtxt_rows(path)
    return fast if fast is not None else csv_rows(read_csv(path))


_PLAIN_NUMBERS = re.compile(r"[0-9.,+\-eE \t\n]*")


def _loadtxt_rows(path: str) -> np.ndarray | None:
    """The rows as `_numbers` would read them, or None where only the slow path can tell."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            text = handle.read().replace("\r\n", "\n")
    except (OSError, UnicodeDecodeError):
        return None
    lines = text.split("\n")
    first = next((k for k, line in enumerate(lines) if line), None)
    if first is None or '"' in text or "\r" in text:
        return None
    has_header = not all(_is_number(cell) for cell in lines[first].split(","))
    body_lines = lines[first + 1 :] if has_header else lines[first:]
    body = "\n".join(body_lines)
    rows = len(body_lines) - body_lines.count("")
    if not rows or not _PLAIN_NUMBERS.fullmatch(body):
        return None
    all_integers = not any(mark in body for mark in ".eE")
    for dtype in (np.int64, np.float64) if all_integers else (np.float64,):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # loadtxt's "no data" warning
                values = np.loadtxt(
                    io.StringIO(body), delimiter=",", dtype=dtype, comments=None, ndmin=2
                )
        except (ValueError, OverflowError):
            continue
        exact = dtype is np.int64 or bool((np.abs(values) < _EXACT_FLOAT).all())
        return values if exact and len(values) == rows else None
    return None


def csv_rows(table: CsvTable) -> np.ndarray:
    """Every row as one sample: a `(samples, columns)` array."""
    widths = {len(row) for row in table.rows}
    if len(widths) > 1:
        raise ValueError(
            f"{table.path!r} has rows of different lengths {sorted(widths)}: a CSV source "
            "needs one sample per row with the same number of columns in each."
        )
    if not table.rows:
        raise ValueError(f"{table.path!r} has a header but no rows.")
    return _numbers(table.path, table.rows)


def csv_column(table: CsvTable, column: int) -> np.ndarray:
    """One column as a 1-D array; trailing empty cells (shorter columns) are dropped."""
    cells = [row[column].strip() if column < len(row) else "" for row in table.rows]
    while cells and cells[-1] == "":
        cells.pop()
    name = table.header[column] if table.header else column
    return _numbers(f"{table.path} column {name!r}", [[c] for c in cells]).reshape(-1)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _numbers(where: str, rows: list[list[str]]) -> np.ndarray:
    """The cells as int64 when all are integers, else float64; refuse what would change."""
    try:
        integers = [[int(c) for c in row] for row in rows]
    except ValueError:
        integers = None
    if integers is not None:
        _check_int64(where, integers)
        return np.array(integers, dtype=np.int64)
    try:
        values = np.array([[float(c) for c in row] for row in rows], dtype=np.float64)
    except ValueError as error:
        raise ValueError(
            f"{where!r} holds a value that is not a number ({error}). CSV sources hold numbers "
            "only, with at most one header row; pass a `loader=` for other content."
        ) from error
    _check_exact_floats(where, rows)
    return values


def _cell_of(rows: list[list[Any]], test: Any) -> tuple[int, int, Any] | None:
    """`(row, column, value)` of the first cell for which `test(value)` holds."""
    for r, row in enumerate(rows):
        for c, value in enumerate(row):
            if test(value):
                return r, c, value
    return None


def _check_int64(where: str, integers: list[list[int]]) -> None:
    found = _cell_of(integers, lambda v: not _INT64.min <= v <= _INT64.max)
    if found is not None:
        r, c, value = found
        raise ValueError(
            f"{where!r} holds the integer {value} (data row {r}, column {c}, from 0), beyond the "
            "int64 range that CSV integers are read into. Store it as a decimal (e.g. "
            f"'{value}.0') if an approximation is fine, or rescale the column. "
            f"Received: value={value}"
        )


def _check_exact_floats(where: str, rows: list[list[str]]) -> None:
    """Refuse integer cells that float64 would round (the column mixes in decimals)."""

    def inexact(cell: str) -> bool:
        try:
            return abs(int(cell)) > _EXACT_FLOAT
        except ValueError:
            return False

    found = _cell_of(rows, inexact)
    if found is not None:
        r, c, value = found
        raise ValueError(
            f"{where!r} mixes decimals with the integer {value.strip()} (data row {r}, "
            f"column {c}, from 0), beyond 2**53: read as float64 it would change. Keep it "
            "all-integer (read as int64), write the value as a decimal if an approximation "
            f"is fine, or read it with a `loader=`. Received: value={value.strip()}"
        )


def h5_dataset_source(path: str, key: str, set_size: int) -> Any:
    """A rows source over dataset `key` of the HDF5 file at `path` (kept open by the source)."""
    from trainkit.data.sources.arrays import rows_source

    handle = open_h5(path)
    try:
        check_h5_local(path, handle, key)
    except BaseException:
        handle.close()
        raise
    return rows_source(
        handle[key], set_size, description=f"{path}[{key!r}]", path=path, owner=handle
    )
