"""Data tour: a DataGenerator over scikit-learn's bundled digits, slice by slice.

Run with `.venv/bin/python examples/data_tour.py`. Shows the data cursor the trainer
drives: which batch (`set_name`) and slice is served, the state flags, and an exact
resume from a state dict.
"""

import json

import numpy as np
from sklearn.datasets import load_digits

from trainkit import DataGenerator, TimeseriesPreprocessor


def windowed(images: np.ndarray, labels: np.ndarray) -> DataGenerator:
    """Each 8x8 image as a series of 8 rows, cut into windows of 4 rows: 2 slices per batch."""
    return DataGenerator(
        data=images,
        labels=labels,
        batch_size=300,
        shuffle="samples",
        seed=1,
        preprocessor=TimeseriesPreprocessor(window_size=4),
    )


def main() -> None:
    digits = load_digits()
    images = digits.images.astype("float32") / 16.0  # (1797, 8, 8): 8 rows as 8 timesteps
    labels = digits.target

    dg = DataGenerator(data=images, labels=labels, batch_size=256, shuffle=True, seed=0)
    print(f"{len(images)} digits, batch_size=256 -> {len(dg)} batches per epoch")
    print("epoch 0 plan:", [batch.set_name for batch in dg.plan(0)])
    print("epoch 1 plan:", [batch.set_name for batch in dg.plan(1)])

    series = windowed(images, labels)
    print("\nepoch  set_name          slice  x.shape        y.shape  batch_exhausted")
    for _ in range(3):
        x, y = series.get()
        name, index = series.set_name, series.slice_idx
        series.update_state()
        shapes = f"{x.shape!s:13}  {y.shape!s:7}"
        print(f"{series.epoch:5}  {name:16}  {index:5}  {shapes}  {series.batch_exhausted}")

    state = json.loads(json.dumps(series.state_dict()))
    resumed = windowed(images, labels)
    resumed.load_state_dict(state)
    same = all(np.array_equal(a[0], b[0]) for a, b in zip(series, resumed))
    print(f"\nrestored from a state dict mid-batch: rest of the epoch identical = {same}")


if __name__ == "__main__":
    main()
