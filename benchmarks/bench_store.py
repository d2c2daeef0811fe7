"""Offline store: an epoch served from a store against recomputing an expensive preprocessor.

The preprocessor does Python-heavy per-sample work (a few small NumPy calls per sample,
as feature extraction does), about a millisecond per batch of 32. Measured: one epoch of
the generator recomputing it (prefetch=0, the baseline), one epoch served from the store
`write_store` wrote (prefetch=0 and the default prefetch=2), and `write_store` itself with
1 and 2 worker processes (batches per second of the one epoch it computes). Best of
`rounds` interleaved rounds.

Verification: what a chunk's first read costs (read, SHA-256 against the manifest,
header and identity checks) against a later read of the same, unchanged chunk (read and
header only), per chunk, for the benchmark's chunks and for 4 MB chunks.

Run: `.venv/bin/python benchmarks/bench_store.py [--quick]`
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
from common import Row, interleaved_best, table

from trainkit import DataGenerator, Preprocessor, write_store
from trainkit.data.sources.offline_store import StoreSource

FEATURES, BATCH, CHUNK = 256, 32, 16


class Features(Preprocessor):
    """Per-sample spectra and order statistics: Python-heavy, the same every epoch."""

    def process(self, batch, labels):
        rows = []
        for sample in batch:
            spectrum = np.abs(np.fft.rfft(sample))[:64]
            ordered = np.sort(sample)[:: FEATURES // 64]
            rows.append(np.concatenate([spectrum, ordered, [sample.mean(), sample.std()]]))
        return np.stack(rows).astype(np.float32), labels


def epoch(dg: DataGenerator) -> int:
    for _ in dg:
        pass
    return len(dg)


def rows(quick: bool) -> list[Row]:
    samples = 4096 if quick else 32768
    rounds = 2 if quick else 3
    x = np.random.default_rng(0).random((samples, FEATURES), dtype=np.float32)
    y = np.arange(samples)

    def make(prefetch: int | None = None) -> DataGenerator:
        return DataGenerator(
            data=x, labels=y, batch_size=BATCH, preprocessor=Features(), prefetch=prefetch
        )

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        store = write_store(make(), folder / "store", chunk_size=CHUNK, progress=False)
        written = {"count": 0}

        def write(workers: int) -> int:
            written["count"] += 1
            out = folder / f"w{written['count']}"
            write_store(make(), out, chunk_size=CHUNK, workers=workers, progress=False)
            shutil.rmtree(out)
            return len(make())

        best = interleaved_best(
            {
                "recompute": lambda: epoch(make(prefetch=0)),
                "store0": lambda: epoch(DataGenerator(store, prefetch=0)),
                "store2": lambda: epoch(DataGenerator(store)),
                "write1": lambda: write(1),
                "write2": lambda: write(2),
            },
            rounds,
        )
        checks = verification_rows(store, rounds)
        large = write_store(
            DataGenerator(data=np.zeros((4096, 8192), np.float32), batch_size=128),
            folder / "large",
            chunk_size=1,
            progress=False,
        )  # 4 MB chunks
        checks += verification_rows(large, rounds)
    bench = f"store: {samples} samples, {samples // BATCH} batches"
    base = best["recompute"]
    labels = {
        "recompute": "epoch recomputing the preprocessor (prefetch=0)",
        "store0": "epoch from the store (prefetch=0)",
        "store2": "epoch from the store (prefetch=2)",
        "write1": "write_store, workers=1",
        "write2": "write_store, workers=2",
    }
    return [
        Row(bench, labels[name], rate, "batches/s", None if name == "recompute" else rate / base)
        for name, rate in best.items()
    ] + checks


def verification_rows(folder: str, rounds: int) -> list[Row]:
    """Microseconds per chunk: a first (verified) read against a later read of it."""
    source = StoreSource(folder)
    chunks = len(source.set_sizes)
    size = sum(entry["size"] for entry in source.manifest["chunks"]) / chunks
    first = later = float("inf")
    for _ in range(rounds + 1):  # the first round warms the page cache
        source = StoreSource(folder)
        start = time.perf_counter()
        for chunk in range(chunks):
            source._load(chunk)  # verified: the chunk's first read
        first = min(first, (time.perf_counter() - start) / chunks)
        start = time.perf_counter()
        for chunk in range(chunks):
            source._chunk = None  # read it again (unchanged: not hashed again)
            source._load(chunk)
        later = min(later, (time.perf_counter() - start) / chunks)
    bench = f"store: verifying a chunk of {size / 1e6:.3g} MB"
    return [
        Row(bench, "later read of the chunk (unchanged)", later * 1e6, "us/chunk"),
        Row(bench, "first read of the chunk (verified)", first * 1e6, "us/chunk", first / later),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="4096 samples instead of 32768")
    args = parser.parse_args()
    print(table(rows(args.quick)))


if __name__ == "__main__":
    main()
