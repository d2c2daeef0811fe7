"""A `keras.utils.PyDataset` source trained in a subprocess that may be killed.

`python tests/checkpoints/py_dataset_case.py py-dataset LOGS_DIR OUT_FILE [KILL]`: the
arguments and KILL points of resume_cases.py, whose runner this reuses.
"""

from __future__ import annotations

import resume_cases  # this folder is on sys.path when run as a script
from resume_cases import EPOCHS, PREFETCH, keras, np

from trainkit import DataGenerator, TrainGenerator


class Batches(keras.utils.PyDataset):
    """8 batches of 4 samples; batch i is the same at every read (no hidden state)."""

    def __init__(self, x, y, **kwargs):
        super().__init__(**kwargs)
        self.x, self.y = x, y

    def __len__(self):
        return len(self.x) // 4

    def __getitem__(self, i):
        return self.x[4 * i : 4 * i + 4], self.y[4 * i : 4 * i + 4]


def py_dataset_case(logs_dir: str, callbacks: list) -> TrainGenerator:
    rng = np.random.default_rng(4)
    x = rng.random((40, 5), dtype=np.float32)
    y = (x.sum(axis=1) > 2.5).astype("float32")
    keras.utils.set_random_seed(3)
    model = keras.Sequential([
        keras.Input((5,)), keras.layers.Dense(8, activation="relu"), keras.layers.Dropout(0.3),
        keras.layers.Dense(1, activation="sigmoid"),
    ])  # fmt: skip
    model.compile(keras.optimizers.Adam(1e-2), "binary_crossentropy")
    train = DataGenerator(
        data=Batches(x[:32], y[:32]), batch_size=4, shuffle=True, seed=2, prefetch=PREFETCH
    )
    val = DataGenerator(data=Batches(x[32:], y[32:]), batch_size=4, prefetch=PREFETCH)
    return TrainGenerator(model, train, val, epochs=EPOCHS, logs_dir=logs_dir, resume=True,
                          checkpoint_freq={"iter": 3}, callbacks=callbacks,
                          iter_verbosity=0)  # fmt: skip


if __name__ == "__main__":
    import sys

    resume_cases.CASES["py-dataset"] = py_dataset_case
    resume_cases.run(*sys.argv[1:])
