"""Offline stores: `write_store` writes a generator's slices once; a DataGenerator serves them."""

from __future__ import annotations

import gc
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from trainkit import (
    DataGenerator,
    Preprocessor,
    RandomCropPreprocessor,
    TimeseriesPreprocessor,
    write_store,
)
from trainkit.testing import assert_resumes_identically

X = np.arange(40 * 12 * 2, dtype=np.float32).reshape(40, 12, 2)
Y = np.arange(40, dtype=np.int64)


class Weighted(Preprocessor):
    """Structured x in, structured x out, with per-sample weights."""

    def process(self, batch, labels):
        x = {"points": batch["points"] * 2, "features": batch["features"]}
        return x, labels, np.linspace(0.5, 1, len(labels)).astype(np.float32)


class Counting(Preprocessor):
    """Counts process() calls; raises at batch `fail_at` (not part of the configuration)."""

    calls = 0
    fail_at: int | None = None
    kill = False  # SIGKILL this process instead of raising

    def on_batch_load(self, batch, labels):
        self.slices_per_batch = 2

    def process(self, batch, labels):
        if self.fail_at is not None and int(labels[0]) // 4 == self.fail_at:
            if self.kill:
                os.kill(os.getpid(), signal.SIGKILL)
            raise RuntimeError("killed")
        Counting.calls += 1
        return batch[:, self.slice_idx :] + self.rng.normal(), labels


def slices(dg):
    out = []
    while not dg.all_data_exhausted:
        item = dg.get()
        out.append((dg.set_name, dg.slice_idx, dg.describe_slice(), *item))
        dg.update_state()
    return out


def assert_same(expected, actual):
    assert len(expected) == len(actual)
    for a, b in zip(expected, actual):
        assert len(a) == len(b)
        for u, v in zip(a, b):
            if isinstance(u, dict) and not all(isinstance(w, (int, str)) for w in u.values()):
                assert u.keys() == v.keys()
                for key in u:
                    np.testing.assert_array_equal(u[key], v[key])
            elif isinstance(u, np.ndarray) or isinstance(v, np.ndarray):
                np.testing.assert_array_equal(u, v)
                assert np.asarray(u).dtype == np.asarray(v).dtype
            else:
                assert u == v


def folder_bytes(folder: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(folder.iterdir())}


def test_a_store_serves_the_windows_the_generator_produced(tmp_path):
    make = lambda: DataGenerator(  # noqa: E731
        data=X, labels=Y, batch_size=4, preprocessor=TimeseriesPreprocessor(window_size=4)
    )
    dg = make()
    out = write_store(dg, tmp_path / "store", chunk_size=3, progress=False)
    assert dg.batch_index == 0 and dg.epoch == 0  # the generator's cursor did not move
    store = DataGenerator(out)
    store.get()
    assert (len(store), store.slices_per_batch, store.batch_size) == (10, 3, 4)
    store = DataGenerator(out)
    assert_same(slices(make()), slices(store))
    assert_same(slices(DataGenerator(out, prefetch=0)), slices(DataGenerator(out)))


def test_a_store_keeps_structured_inputs_and_sample_weights(tmp_path):
    data = {"points": X, "features": X[:, 0]}
    make = lambda: DataGenerator(data=data, labels=Y, batch_size=8, preprocessor=Weighted())  # noqa: E731
    out = write_store(make(), tmp_path / "store", chunk_size=2, progress=False)
    served = slices(DataGenerator(out))
    assert_same(slices(make()), served)
    x, _, weight = served[0][3:]
    assert set(x) == {"points", "features"} and weight.dtype == np.float32


def test_the_bytes_do_not_depend_on_the_number_of_workers(tmp_path):
    make = lambda: DataGenerator(  # noqa: E731
        data=X, labels=Y, batch_size=4, seed=5, preprocessor=RandomCropPreprocessor(size=(6, 2))
    )
    write_store(make(), tmp_path / "one", chunk_size=3, workers=1, progress=False)
    write_store(make(), tmp_path / "two", chunk_size=3, workers=2, progress=False)
    assert folder_bytes(tmp_path / "one") == folder_bytes(tmp_path / "two")
    assert_same(slices(make()), slices(DataGenerator(tmp_path / "two")))


def test_a_killed_writer_is_finished_without_recomputing_and_gives_the_same_bytes(tmp_path):
    make = lambda: DataGenerator(data=X, labels=Y, batch_size=4, preprocessor=Counting())  # noqa: E731
    write_store(make(), tmp_path / "whole", chunk_size=2, progress=False)
    Counting.calls, Counting.fail_at = 0, 5  # batch 5 is in chunk 2
    with pytest.raises(RuntimeError, match="killed"):
        write_store(make(), tmp_path / "killed", chunk_size=2, progress=False)
    assert Counting.calls == 10  # batches 0-4, two slices each
    names = sorted(os.listdir(tmp_path / "killed"))
    assert names == ["chunk-00000.bin", "chunk-00001.bin", "progress.json"]
    with pytest.raises(ValueError, match=r"unfinished offline store.*Run write_store"):
        DataGenerator(tmp_path / "killed")
    Counting.calls, Counting.fail_at = 0, None
    write_store(make(), tmp_path / "killed", chunk_size=2, progress=False)
    assert Counting.calls == 12  # batches 4-9 only: chunks 0 and 1 were not recomputed
    assert folder_bytes(tmp_path / "whole") == folder_bytes(tmp_path / "killed")
    Counting.calls = 0
    write_store(make(), tmp_path / "killed", chunk_size=2, progress=False)  # finished: no work
    assert Counting.calls == 0


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (lambda: DataGenerator(data=X[:36], labels=Y[:36], batch_size=4), "set_sizes"),
        (lambda: DataGenerator(data=X, labels=Y, batch_size=4, seed=1), "seed"),
        (
            lambda: DataGenerator(
                data=X, labels=Y, batch_size=4, preprocessor=TimeseriesPreprocessor(window_size=3)
            ),
            "window_size",
        ),
        (lambda: "chunk_size", "chunk_size"),
    ],
)
def test_other_inputs_are_refused_naming_what_changed(tmp_path, change, named):
    base = lambda: DataGenerator(  # noqa: E731
        data=X, labels=Y, batch_size=4, preprocessor=TimeseriesPreprocessor(window_size=4)
    )
    finished = write_store(base(), tmp_path / "finished", chunk_size=3, progress=False)
    unfinished = tmp_path / "unfinished"  # what a writer stopped before the manifest leaves
    unfinished.mkdir()
    manifest = json.loads(Path(finished, "manifest.json").read_text())
    progress = {key: manifest[key] for key in ("format", "version", "inputs")}
    (unfinished / "progress.json").write_text(json.dumps(progress))
    dg, chunk_size = (base(), 4) if change() == "chunk_size" else (change(), 3)
    for folder in (finished, unfinished):
        with pytest.raises(ValueError, match=rf"other inputs.*{named}"):
            write_store(dg, folder, chunk_size=chunk_size, progress=False)


def test_a_folder_with_other_files_is_refused(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="new or empty folder"):
        write_store(DataGenerator(data=X, batch_size=4), tmp_path, chunk_size=2, progress=False)


def test_a_shuffled_store_resumes_exactly_mid_epoch(tmp_path):
    pre = TimeseriesPreprocessor(window_size=4)
    dg = DataGenerator(data=X, labels=Y, batch_size=4, preprocessor=pre)
    out = write_store(dg, tmp_path / "store", chunk_size=3, progress=False)
    assert_resumes_identically(lambda: DataGenerator(out, shuffle=True, seed=3), epochs=2)


def test_shuffle_orders_chunks_and_the_batches_inside_them_per_epoch(tmp_path):
    dg = DataGenerator(data=X, labels=Y, batch_size=2)  # 20 batches
    out = write_store(dg, tmp_path / "store", chunk_size=4, progress=False)
    store = DataGenerator(out, shuffle=True, seed=1)
    names = [str(k) for k in range(20)]
    orders = [[b.set_name for b in store.plan(epoch)] for epoch in range(3)]
    for order in orders:
        assert sorted(order) == sorted(names)
        chunks = [names.index(name) // 4 for name in order]
        runs = [chunks[k] for k in range(0, 20, 4)]
        assert chunks == [c for c in runs for _ in range(4)]  # one chunk at a time
    assert len({tuple(order) for order in orders}) == 3
    assert [b.set_name for b in DataGenerator(out).plan(0)] == names


def test_a_store_refuses_a_slicing_preprocessor_and_sample_shuffling(tmp_path):
    out = write_store(DataGenerator(data=X, batch_size=4), tmp_path / "s", chunk_size=2,
                      progress=False)  # fmt: skip
    with pytest.raises(ValueError, match=r"offline store.*must not slice"):
        DataGenerator(out, preprocessor=TimeseriesPreprocessor(window_size=4))
    with pytest.raises(ValueError, match=r"shuffle='samples'"):
        DataGenerator(out, shuffle="samples")


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS line")


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads VmRSS from /proc")
def test_serving_a_store_much_larger_than_a_chunk_keeps_memory_flat(tmp_path):
    rows, row = 3072, 8192  # 96 MiB of float32; 1 MiB per batch of 32, 4 MiB per chunk
    data = np.memmap(tmp_path / "x.dat", np.float32, "w+", shape=(rows, row))
    data[:] = np.arange(rows, dtype=np.float32)[:, None]
    data.flush()
    del data
    source = np.memmap(tmp_path / "x.dat", np.float32, "r", shape=(rows, row))
    write_store(DataGenerator(data=source, batch_size=32), tmp_path / "store", chunk_size=4,
                progress=False)  # fmt: skip
    del source
    gc.collect()
    store = DataGenerator(tmp_path / "store", shuffle=True)
    start = peak = rss_mb()
    firsts = []
    for x, _ in store:
        firsts.append(x[:, 0].copy())
        peak = max(peak, rss_mb())
    assert sorted(np.concatenate(firsts).tolist()) == list(range(rows))
    assert peak - start < 32, f"RSS grew by {peak - start:.0f} MB serving a 96 MB store"


def test_a_state_taken_on_one_store_is_refused_by_another(tmp_path):
    one = write_store(DataGenerator(data=X, batch_size=4), tmp_path / "one", chunk_size=2,
                      progress=False)  # fmt: skip
    two = write_store(DataGenerator(data=X, batch_size=8), tmp_path / "two", chunk_size=2,
                      progress=False)  # fmt: skip
    dg = DataGenerator(one)
    dg.get()
    with pytest.raises(ValueError, match=r"other data or settings.*store"):
        DataGenerator(two).load_state_dict(dg.state_dict())


def test_worker_processes_serve_a_store_unchanged(tmp_path):
    pre = TimeseriesPreprocessor(window_size=4)
    out = write_store(DataGenerator(data=X, labels=Y, batch_size=4, preprocessor=pre),
                      tmp_path / "store", chunk_size=3, progress=False)  # fmt: skip
    expected = slices(DataGenerator(out, prefetch=0))
    assert_same(expected, slices(DataGenerator(out, prefetch=2, prefetch_workers=2)))


KILLED_WRITER = """
from tests.data_sources.test_offline_store import Counting, X, Y
from trainkit import DataGenerator, write_store
Counting.fail_at, Counting.kill = 7, True
write_store(DataGenerator(data=X, labels=Y, batch_size=4, preprocessor=Counting()),
            {out!r}, chunk_size=2, progress=False)
"""


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_a_writer_killed_by_sigkill_leaves_no_store_and_is_finished_identically(tmp_path):
    root = Path(__file__).resolve().parents[2]
    out = tmp_path / "killed"
    code = KILLED_WRITER.format(out=str(out))
    result = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True)
    assert result.returncode == -signal.SIGKILL, result.stderr.decode()[-2000:]
    assert not (out / "manifest.json").exists()
    assert sorted(p.name for p in out.glob("chunk-*.bin")) == [
        "chunk-00000.bin", "chunk-00001.bin", "chunk-00002.bin"
    ]  # fmt: skip
    make = lambda: DataGenerator(data=X, labels=Y, batch_size=4, preprocessor=Counting())  # noqa: E731
    Counting.calls, Counting.fail_at = 0, None
    write_store(make(), out, chunk_size=2, progress=False)
    assert Counting.calls == 8  # batches 6-9
    write_store(make(), tmp_path / "whole", chunk_size=2, progress=False)
    assert folder_bytes(tmp_path / "whole") == folder_bytes(out)
