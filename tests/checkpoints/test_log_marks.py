"""The run logs are covered by the checkpoint: lost rows are named on resume, links refused."""

import os
import warnings
from pathlib import Path

import keras
import numpy as np
import pytest

from trainkit import DataGenerator, TrainGenerator
from trainkit.checkpoints.log_marks import LinkedLogError

RNG = np.random.default_rng(0)
X = RNG.random((24, 4), dtype=np.float32)
Y = (X.sum(axis=1) > 2).astype("float32")


def trainer(logs_dir, **kwargs):
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    model.compile(keras.optimizers.SGD(0.05), "mse")
    datagen = DataGenerator(data=X[:16], labels=Y[:16], batch_size=8)
    val_datagen = DataGenerator(data=X[16:], labels=Y[16:], batch_size=8)
    return TrainGenerator(
        model, datagen, val_datagen, logs_dir=str(logs_dir), iter_verbosity=0, **kwargs
    )


@pytest.fixture
def run_dir(tmp_path):
    tg = trainer(tmp_path, epochs=2)  # 6 rows of metrics.csv, 4 provenance records
    tg.train()
    return Path(tg.run_dir)


def resume_warnings(logs_dir, **kwargs):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        tg = trainer(logs_dir, resume=True, **kwargs)
    return tg, [str(w.message) for w in caught if "lost" in str(w.message)]


def test_intact_logs_resume_without_a_word(run_dir):
    _, messages = resume_warnings(run_dir.parent, epochs=3)
    assert messages == []


def test_a_deleted_provenance_log_is_named_on_resume(run_dir):
    (run_dir / "provenance.jsonl").unlink()
    _, messages = resume_warnings(run_dir.parent, epochs=3)
    assert len(messages) == 1
    assert "provenance.jsonl' was deleted" in messages[0] and "iters 1-4" in messages[0]


def test_a_metrics_csv_cut_to_three_rows_is_named_on_resume(run_dir):
    path = run_dir / "metrics.csv"
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join(lines[:4]))  # header and 3 of the 6 rows
    _, messages = resume_warnings(run_dir.parent, epochs=3)
    assert len(messages) == 1
    assert "metrics.csv' was cut" in messages[0] and "covers 6 rows" in messages[0]


def test_an_emptied_metrics_csv_is_named_and_the_run_goes_on_with_a_new_header(run_dir):
    (run_dir / "metrics.csv").write_bytes(b"")
    tg, messages = resume_warnings(run_dir.parent, epochs=3)
    assert len(messages) == 1 and "metrics.csv' was emptied" in messages[0]
    tg.train()  # not "resume with the same model and metrics"
    lines = (run_dir / "metrics.csv").read_text().splitlines()
    assert lines[0].startswith("kind,epoch,iters_fit") and len(lines) == 1 + 3


def test_a_symlinked_metrics_csv_is_refused_and_never_read(run_dir, tmp_path):
    target = tmp_path / "elsewhere.csv"
    os.replace(run_dir / "metrics.csv", target)
    os.symlink(target, run_dir / "metrics.csv")
    before = os.stat(target).st_atime_ns, target.read_bytes()
    with pytest.raises(LinkedLogError, match=r"metrics\.csv' is a symbolic link.*Remove the link"):
        trainer(run_dir.parent, epochs=3, resume=True)
    assert target.read_bytes() == before[1]
