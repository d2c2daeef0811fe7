"""One rule for every file trainkit writes: 0666 (folders 0777) less the umask."""

import os
import stat

import keras
import numpy as np
import pytest

from trainkit import DataGenerator, TrainGenerator

RNG = np.random.default_rng(0)
X = RNG.random((24, 4), dtype=np.float32)
Y = (X.sum(axis=1) > 2).astype("float32")


def train(logs_dir, best_models_dir, epochs):
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    model.compile(keras.optimizers.SGD(0.05), "mse")
    tg = TrainGenerator(
        model, DataGenerator(data=X[:16], labels=Y[:16], batch_size=8),
        DataGenerator(data=X[16:], labels=Y[16:], batch_size=8), epochs=epochs,
        logs_dir=str(logs_dir), best_models_dir=str(best_models_dir), iter_verbosity=0,
        resume=epochs > 1,
    )  # fmt: skip
    tg.train()
    return tg


def modes(root):
    """Permission bits of every file and folder under `root`, by relative path."""
    found = {}
    for folder, names, files in os.walk(root):
        for name in names + files:
            path = os.path.join(folder, name)
            found[os.path.relpath(path, root)] = stat.S_IMODE(os.lstat(path).st_mode)
    return found


@pytest.mark.parametrize("mask", [0o077, 0o002])
def test_every_file_and_folder_follows_the_umask(tmp_path, mask):
    old = os.umask(mask)
    try:
        train(tmp_path / "logs", tmp_path / "best", epochs=1)
        train(tmp_path / "logs", tmp_path / "best", epochs=2)  # a resume rewrites the logs
    finally:
        os.umask(old)
    found = modes(tmp_path / "logs") | modes(tmp_path / "best")
    names = {os.path.basename(path) for path in found}
    assert {"metrics.csv", "provenance.jsonl", "history.png", "report.txt", "report.png"} <= names
    assert {"manifest.json", "state.json", "model.keras", ".lock"} <= names
    expected = {
        path: (0o777 if os.path.isdir(tmp_path / "logs" / path) or os.path.isdir(
            tmp_path / "best" / path) else 0o666) & ~mask
        for path in found
    }  # fmt: skip
    assert {p: oct(m) for p, m in found.items()} == {p: oct(m) for p, m in expected.items()}
