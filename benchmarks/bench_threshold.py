"""What the threshold search costs with weights: `best_threshold` at 100k rows.

`dynamic_predict_threshold` calls `trainkit.metrics.best_threshold` (101 thresholds) at
every validation. It computes every threshold from cumulative confusion counts; with
weights whose sums round (e.g. `val_class_weights={1: 0.3}`) it used to call
scikit-learn's metric once per threshold instead. Compared, best of `--rounds` rounds:

  (a) no weights                                  (the baseline)
  (b) class weights {1: 0.3} (sums round)         target: <= 3x (a)
  (c) class weights {1: 0.5} (exact sums)
  (d) scikit-learn's f1_score called per threshold with (b)'s weights, for scale

Run: python benchmarks/bench_threshold.py [--rows 100000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from sklearn.metrics import f1_score

from trainkit import metrics


def best_of(function, rounds: int) -> float:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, args.rows)
    scores = np.clip(labels * 0.3 + rng.random(args.rows) * 0.7, 0, 1).astype("float32")
    runs = {
        "(a) no weights": None,
        "(b) class weights {1: 0.3}": np.where(labels == 1, 0.3, 1.0),
        "(c) class weights {1: 0.5}": np.where(labels == 1, 0.5, 1.0),
    }
    seconds = {
        name: best_of(
            lambda w=weights: metrics.best_threshold(labels, scores, metrics.f1, sample_weight=w),
            args.rounds,
        )
        for name, weights in runs.items()
    }
    weights = runs["(b) class weights {1: 0.3}"]
    thresholds = np.linspace(0, 1, 101)
    seconds["(d) sklearn f1_score x 101, weights of (b)"] = best_of(
        lambda: [f1_score(labels, scores > t, sample_weight=weights) for t in thresholds], 1
    )
    baseline = seconds["(a) no weights"]
    print(f"best_threshold(f1), {args.rows:,} rows, 101 thresholds, best of {args.rounds}")
    print("| run | ms | x (a) |\n| --- | ---: | ---: |")
    for name, value in seconds.items():
        print(f"| {name} | {value * 1e3:,.1f} | {value / baseline:.2f} |")


if __name__ == "__main__":
    main()
