"""Offline store: an epoch served from a store against recomputing an expensive preprocessor.

The preprocessor does Python-heavy per-sample work (a few small NumPy calls per sample,
as feature extraction does), about a millisecond per batch of 32. Measured: one epoch of
the generator recomputing it (prefetch=0, the baseline), one epoch served from the store
`write_store` wrote (prefetch=0 and the default prefetch=2), and `write_store` itself with
1 and 2 worker processes (batches per second of the one epoch it computes). Best of
`rounds` interleaved rounds.

Run: `.venv/bin/python benchmarks/bench_store.py [--quick]`
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

import numpy as np
from common import Row, interleaved_best, table

from trainkit import DataGenerator, Preprocessor, write_store

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
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="4096 samples instead of 32768")
    args = parser.parse_args()
    print(table(rows(args.quick)))


if __name__ == "__main__":
    main()
