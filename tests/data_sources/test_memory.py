"""Resident memory stays flat over an epoch of a `.npy` file many times larger than a batch.

RSS here includes file-backed pages (what `top` shows): a plain `np.memmap` epoch would
grow it by the whole file.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import pytest

from trainkit import DataGenerator

ROW = 4096  # float32 values per sample: 16 KiB
ROWS = 24 * 1024  # 384 MiB in all
BATCH = 64  # 1 MiB per batch
LIMIT_MB = 128  # a third of the file

pytestmark = pytest.mark.skipif(
    not Path("/proc/self/status").exists(), reason="reads VmRSS from /proc"
)


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS line")


@pytest.fixture(scope="module")
def big_npy(tmp_path_factory) -> Path:
    """Row r holds the value r in every column; written without mapping it here."""
    path = tmp_path_factory.mktemp("memory") / "big.npy"
    header = {"descr": "<f4", "fortran_order": False, "shape": (ROWS, ROW)}
    with open(path, "wb") as handle:
        np.lib.format.write_array_header_1_0(handle, header)
        for start in range(0, ROWS, 1024):
            rows = np.arange(start, start + 1024, dtype=np.float32)
            handle.write(np.repeat(rows, ROW).tobytes())
    return path


def growth_mb(batches: Iterable[np.ndarray], firsts: list[np.ndarray]) -> float:
    """Peak RSS growth while every page of every batch is touched."""
    start = peak = rss_mb()
    for x in batches:
        x = np.asarray(x)
        x.reshape(-1)[::1024].sum()  # one value per 4 KiB page
        firsts.append(x[:, 0].copy())
        assert (x[:, 0] == x[:, -1]).all()
        peak = max(peak, rss_mb())
    return peak - start


def slices_x(dg: DataGenerator) -> Iterator[np.ndarray]:
    while not dg.all_data_exhausted:
        yield dg.get()[0]
        dg.update_state()


@pytest.mark.parametrize("shuffle", [False, "samples"])
def test_an_epoch_over_a_large_npy_keeps_rss_flat(big_npy, shuffle):
    dg = DataGenerator(big_npy, batch_size=BATCH, shuffle=shuffle, prefetch=0)
    firsts: list[np.ndarray] = []
    grew = growth_mb(slices_x(dg), firsts)
    served = np.concatenate(firsts)
    assert sorted(served.tolist()) == list(range(ROWS))  # every row once, exactly
    assert (served == np.arange(ROWS)).all() == (shuffle is False)
    assert grew < LIMIT_MB, f"RSS grew by {grew:.0f} MB over a {ROWS * ROW * 4 >> 20} MB file"


def test_a_tf_dataset_view_of_a_large_npy_loads_one_batch_at_a_time(big_npy):
    pytest.importorskip("tensorflow")
    dg = DataGenerator(big_npy, batch_size=BATCH, prefetch=0)
    dataset = dg.as_tf_dataset()
    firsts: list[np.ndarray] = []
    grew = growth_mb((x.numpy() for x in dataset), firsts)
    assert (np.concatenate(firsts) == np.arange(ROWS)).all()
    assert grew < LIMIT_MB, f"RSS grew by {grew:.0f} MB over a {ROWS * ROW * 4 >> 20} MB file"


@pytest.mark.parametrize("mode", ["r", "r+", "c"])
@pytest.mark.parametrize("shuffle", [False, "samples"])
def test_a_memmap_slice_serves_exactly_its_rows_in_any_mode(tmp_path, mode, shuffle):
    x = np.arange(50 * 3, dtype=np.float64).reshape(50, 3)
    np.save(tmp_path / "x.npy", x)
    memmap = np.load(tmp_path / "x.npy", mmap_mode=mode)[7:]
    if mode == "c":
        memmap[0] = -1.0  # a private change the file does not hold
    expected = np.array(memmap)

    def served(data: np.ndarray) -> list[bytes]:
        dg = DataGenerator(data=data, batch_size=4, shuffle=shuffle, seed=3, prefetch=0)
        return [np.asarray(x).tobytes() for x, _ in dg]

    assert served(memmap) == served(expected)
