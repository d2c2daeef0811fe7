"""Flat memory: peak RSS growth over one epoch of files much larger than a batch.

RSS includes file-backed pages (what `top` and psutil show). Every batch is touched
(one value per 4 KiB page) so mapped data is really read. Files are written to a
temporary folder and deleted after. Full mode: an 8 GiB `.npy` (target: < 300 MB growth,
shuffle off and `shuffle='samples'`); quick mode: 1 GiB. For contrast, a plain
`np.memmap` slice loop over the same file (capped at 2 GiB in full mode, to spare the
shared machine), an HDF5 dataset (h5py reads by slices, through its chunk cache) and a
directory of sets each 80 batches large (bounded by the cache of 4 loaded sets).

Run: `.venv/bin/python benchmarks/bench_memory.py [--quick]`
"""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from common import Row, table

from trainkit import DataGenerator

FEATURES, BATCH = 784, 128
CHUNK_ROWS = 16_384  # rows written at a time (49 MiB)
TARGET_MB = 300.0


def status_mb(key: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {key} in /proc/self/status")


def peak_growth_mb(batches: Iterable[np.ndarray]) -> float:
    """Peak RSS growth while the batches are touched (VmHWM reset first where allowed)."""
    start = status_mb("VmRSS")
    try:
        Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS
        exact = True
    except OSError:
        exact = False
    peak = start
    for count, x in enumerate(batches):
        np.asarray(x).reshape(-1)[::1024].sum()
        if not exact and count % 16 == 0:
            peak = max(peak, status_mb("VmRSS"))
    peak = max(peak, status_mb("VmHWM") if exact else status_mb("VmRSS"))
    return peak - start


def write_npy(path: Path, rows: int) -> None:
    chunk = np.random.default_rng(0).random((CHUNK_ROWS, FEATURES), dtype=np.float32)
    header = {"descr": "<f4", "fortran_order": False, "shape": (rows, FEATURES)}
    with open(path, "wb") as handle:  # written, not mapped, so this process holds no pages
        np.lib.format.write_array_header_1_0(handle, header)
        for start in range(0, rows, CHUNK_ROWS):
            handle.write(chunk[: min(CHUNK_ROWS, rows - start)].tobytes())


def datagen_x(dg: DataGenerator) -> Iterable[np.ndarray]:
    while not dg.all_data_exhausted:
        yield dg.get()[0]
        dg.update_state()


def memmap_slices(path: Path, rows: int) -> Iterable[np.ndarray]:
    memmap = np.load(path, mmap_mode="r")
    return (memmap[a : a + BATCH] for a in range(0, rows, BATCH))


def npy_rows(folder: Path, gib: int, contrast_gib: int) -> list[Row]:
    path = folder / "big.npy"
    rows = gib * 2**30 // (FEATURES * 4)
    write_npy(path, rows)
    bench = f"memory: one .npy ({gib} GiB)"
    out = []
    for shuffle in (False, "samples"):
        dg = DataGenerator(path, batch_size=BATCH, shuffle=shuffle, prefetch=0)
        grew = peak_growth_mb(datagen_x(dg))
        out.append(
            Row(bench, f"DataGenerator shuffle={shuffle!r}", grew, "MB", None,
                f"< {TARGET_MB:g} MB", grew < TARGET_MB)
        )  # fmt: skip
    contrast_rows = min(rows, contrast_gib * 2**30 // (FEATURES * 4))
    grew = peak_growth_mb(memmap_slices(path, contrast_rows))
    out.append(Row(bench, f"plain np.memmap slice loop (first {contrast_gib} GiB)", grew, "MB"))
    path.unlink()
    return out


def h5_rows(folder: Path, mib: int) -> list[Row]:
    import h5py

    path = folder / "big.h5"
    rows = mib * 2**20 // (FEATURES * 4)
    chunk = np.random.default_rng(1).random((CHUNK_ROWS, FEATURES), dtype=np.float32)
    with h5py.File(path, "w") as handle:
        dataset = handle.create_dataset("x", (rows, FEATURES), np.float32, chunks=(BATCH, FEATURES))
        for start in range(0, rows, CHUNK_ROWS):
            stop = min(rows, start + CHUNK_ROWS)
            dataset[start:stop] = chunk[: stop - start]
    grew = peak_growth_mb(datagen_x(DataGenerator(path, batch_size=BATCH, prefetch=0)))
    path.unlink()
    return [Row(f"memory: HDF5 dataset ({mib} MiB)", "DataGenerator shuffle=False", grew, "MB")]


def set_rows(folder: Path, sets: int) -> list[Row]:
    directory = folder / "sets"
    directory.mkdir()
    set_size = 80 * BATCH  # 31 MiB per set: 80 batches of 128 rows
    chunk = np.random.default_rng(2).random((set_size, FEATURES), dtype=np.float32)
    for k in range(sets):
        np.save(directory / f"data_{k}.npy", chunk)
    dg = DataGenerator(directory, batch_size=BATCH, prefetch=0)
    grew = peak_growth_mb(datagen_x(dg))
    mib = set_size * FEATURES * 4 >> 20
    return [Row(f"memory: {sets} sets of {mib} MiB", "DataGenerator (4 sets cached)", grew, "MB")]


def rows(quick: bool) -> list[Row]:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        if quick:
            return npy_rows(folder, 1, 1) + h5_rows(folder, 256) + set_rows(folder, 8)
        return npy_rows(folder, 8, 2) + h5_rows(folder, 1024) + set_rows(folder, 16)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a 1 GiB file instead of 8 GiB")
    args = parser.parse_args()
    print(table(rows(args.quick)))


if __name__ == "__main__":
    main()
