"""Per-slice overhead of the DataGenerator on the training hot path.

Measures `get()` + `update_state()` for in-memory arrays with batch size equal to the set
size (the target is about 30 µs per slice), plus a few other modes for context, with
`prefetch=0` and with the default `prefetch` (adaptive: this loop does nothing between
slices, so it is served synchronously; the difference is its bookkeeping). Baseline
in the same run: plain NumPy slicing of the same batches, so the ratio is what trainkit's
bookkeeping costs on this machine.

Run: `.venv/bin/python benchmarks/bench_datagen.py`
"""

from __future__ import annotations

import time

import numpy as np

from trainkit import DataGenerator, TimeseriesPreprocessor


def per_slice_us(dg: DataGenerator, epochs: int) -> tuple[float, int]:
    slices = 0
    start = time.perf_counter()
    for _ in range(epochs):
        while not dg.all_data_exhausted:
            dg.get()
            dg.update_state()
            slices += 1
        dg.on_epoch_end()
    return (time.perf_counter() - start) / slices * 1e6, slices


def numpy_baseline_us(x: np.ndarray, y: np.ndarray, batch_size: int, epochs: int) -> float:
    slices = 0
    start = time.perf_counter()
    for _ in range(epochs):
        for a in range(0, len(x), batch_size):
            x[a : a + batch_size], y[a : a + batch_size]
            slices += 1
    return (time.perf_counter() - start) / slices * 1e6


def main() -> None:
    rng = np.random.default_rng(0)
    x = rng.random((64_000, 32), dtype=np.float32)
    y = rng.integers(0, 10, 64_000)
    epochs = 5
    base = numpy_baseline_us(x, y, 64, epochs)
    cases = {
        "arrays, batch = set, no shuffle": dict(batch_size=64),
        "arrays, batch = set, shuffle sets": dict(batch_size=64, shuffle=True),
        "arrays, shuffle samples": dict(batch_size=64, shuffle="samples"),
        "arrays, sample-level batch 48": dict(batch_size=48),
    }
    print(f"NumPy slicing baseline: {base:6.2f} µs/slice")
    print(f"{'':36s} {'prefetch=0':>16s} {'default':>16s}")
    series = rng.random((6_400, 40, 4), dtype=np.float32)
    cases["timeseries windows (4 per batch)"] = dict(
        data=series, labels=y[:6_400], batch_size=64, preprocessor=TimeseriesPreprocessor(10)
    )
    for name, kwargs in cases.items():
        arrays = {} if "data" in kwargs else {"data": x, "labels": y}
        figures = []
        for prefetch in (0, None):  # best of 3, each on a fresh generator
            runs = [
                per_slice_us(DataGenerator(**arrays, **kwargs, prefetch=prefetch), epochs)
                for _ in range(3)
            ]
            figures.append(min(per for per, _ in runs))
        print(f"{name:36s} {figures[0]:11.2f} µs {figures[1]:11.2f} µs  ({runs[0][1]} slices)")


if __name__ == "__main__":
    main()
