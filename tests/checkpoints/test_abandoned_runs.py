"""A run stopped before its first checkpoint is named when resume=True passes it over."""

import os

import keras
import numpy as np

from trainkit import DataGenerator, TrainGenerator

X = np.random.default_rng(0).random((16, 4), dtype=np.float32)
Y = X.sum(axis=1, keepdims=True)


def trainer(logs_dir, **kwargs):
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    model.compile(keras.optimizers.SGD(0.05), "mse")
    datagen = DataGenerator(data=X, labels=Y, batch_size=8)
    return TrainGenerator(model, datagen, logs_dir=str(logs_dir), iter_verbosity=0, **kwargs)


def abandon(logs_dir):
    """A run folder as a kill before the first checkpoint leaves it."""
    run_dir = trainer(logs_dir, epochs=1).run_dir
    with open(os.path.join(run_dir, "metrics.csv"), "w") as file:
        file.write("kind,epoch,iters_fit,batches_fit,set_name,loss\r\ntrain,0,1,1,0,0.5\r\n")
    os.mkdir(os.path.join(run_dir, ".tmp-ckpt-000000001-1"))
    return run_dir


def test_resume_names_an_abandoned_run_and_its_leftover_when_it_starts_a_new_one(tmp_path, capsys):
    run_dir = abandon(tmp_path)
    tg = trainer(tmp_path, epochs=1, resume=True)
    out = capsys.readouterr().out
    assert f"{run_dir!r} holds no checkpoint" in out
    assert ".tmp-ckpt-000000001-1" in out and "a new run starts" in out
    assert tg.run_dir != run_dir and os.path.isdir(run_dir)  # left in place


def test_resume_names_an_abandoned_run_beside_the_run_it_continues(tmp_path, capsys):
    first = trainer(tmp_path, epochs=1)
    first.train()
    run_dir = abandon(tmp_path)
    capsys.readouterr()
    tg = trainer(tmp_path, epochs=2, resume=True)
    out = capsys.readouterr().out
    assert tg.run_dir == first.run_dir
    assert f"{run_dir!r} holds no checkpoint" in out
    assert f"it continues {os.path.basename(first.run_dir)!r}" in out
