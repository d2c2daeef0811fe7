"""What a run leaves behind and prints: plot, report, metrics.csv, provenance, TensorBoard."""

from __future__ import annotations

import csv
import glob
import json
import os

import keras
import matplotlib.image as mpimg
import numpy as np
import pytest

from trainkit import (
    Chain,
    DataGenerator,
    RandomCropPreprocessor,
    TimeseriesPreprocessor,
    TrainGenerator,
)

RNG = np.random.default_rng(0)
IMAGES = RNG.random((40, 8, 8, 1), dtype=np.float32)
LABELS = (IMAGES.mean(axis=(1, 2, 3)) > 0.5).astype("float32")


def image_model():
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((6, 6, 1)),
            keras.layers.Flatten(),
            keras.layers.Dense(1, activation="sigmoid"),
        ]
    )
    model.compile("adam", "binary_crossentropy", metrics=["accuracy"])
    return model


def image_datagens():
    crop = Chain(RandomCropPreprocessor(6))
    train = DataGenerator(
        data=IMAGES[:32],
        labels=LABELS[:32],
        batch_size=8,
        shuffle="samples",
        seed=2,
        preprocessor=crop,
    )
    val = DataGenerator(
        data=IMAGES[32:], labels=LABELS[32:], batch_size=8, preprocessor=RandomCropPreprocessor(6)
    )
    return train, val


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    logs = tmp_path_factory.mktemp("logs")
    tg = TrainGenerator(
        image_model(), *image_datagens(), epochs=3, logs_dir=str(logs), iter_verbosity=0,
        val_freq={"batch": 3}, tensorboard=True, tensorboard_every=4, model_configs={"units": 1},
    )  # fmt: skip
    tg.train()
    return tg


def test_history_png_and_report_are_written_and_readable(run):
    for name in ("history.png", "report.png"):
        image = mpimg.imread(os.path.join(run.run_dir, name))
        assert image.shape[0] >= 300 and image.shape[1] >= 800, name
        assert image.std() > 0.01, name
    with open(os.path.join(run.run_dir, "report.txt")) as file:
        report = file.read()
    for expected in (
        "Model",
        "Trainer",
        "Train data",
        "Validation data",
        "iters_fit",
        "units",
        "best_key_metric",
    ):
        assert expected in report


def test_metrics_csv_rows_match_the_histories(run):
    with open(os.path.join(run.run_dir, "metrics.csv")) as file:
        rows = list(csv.DictReader(file))
    train = [r for r in rows if r["kind"] == "train"]
    val = [r for r in rows if r["kind"] == "val"]
    assert [float(r["loss"]) for r in train] == run.history["loss"]
    assert [float(r["accuracy"]) for r in train] == run.history["accuracy"]
    assert [float(r["loss"]) for r in val] == run.val_history["loss"]
    assert [int(r["batches_fit"]) for r in train] == list(range(1, run.batches_fit + 1))
    assert list(rows[0]) == [
        "kind",
        "epoch",
        "iters_fit",
        "batches_fit",
        "set_name",
        "loss",
        "accuracy",
    ]


def test_the_provenance_log_reproduces_the_served_stream(run):
    with open(os.path.join(run.run_dir, "provenance.jsonl")) as file:
        records = [json.loads(line) for line in file]
    assert [r["iter"] for r in records] == list(range(1, run.iters_fit + 1))
    reference, _ = image_datagens()
    for record in records:
        if reference.all_data_exhausted:
            reference.on_epoch_end()
        served, _ = reference.get()
        reference.update_state()
        x0, y0 = record["crop"]["batch"]
        rebuilt = IMAGES[record["indices"]][:, x0 : x0 + 6, y0 : y0 + 6]
        np.testing.assert_array_equal(rebuilt, served)
        assert record["set_name"].startswith("shuffled[")


def test_provenance_of_windows_names_ranges_and_windows(tmp_path):
    series = RNG.random((16, 9, 2), dtype=np.float32)
    datagen = DataGenerator(
        data=series, labels=series[:, -1, :1], batch_size=8, preprocessor=TimeseriesPreprocessor(3)
    )
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((3, 2)), keras.layers.Flatten(), keras.layers.Dense(1)])
    model.compile("sgd", "mse")
    tg = TrainGenerator(model, datagen, epochs=1, logs_dir=str(tmp_path), iter_verbosity=0)
    tg.train()
    with open(os.path.join(tg.run_dir, "provenance.jsonl")) as file:
        records = [json.loads(line) for line in file]
    assert [(r["set_name"], r["slice_idx"], r["window"]) for r in records] == [
        ("0", 0, [0, 3]), ("0", 1, [3, 6]), ("0", 2, [6, 9]),
        ("1", 0, [0, 3]), ("1", 1, [3, 6]), ("1", 2, [6, 9]),
    ]  # fmt: skip
    assert records[3]["ranges"] == [[8, 16]] and records[3]["pieces"] == [["1", 0, 8]]


def test_tensorboard_scalars_are_written_on_request(run):
    import tensorflow as tf

    steps: dict[str, list[int]] = {}
    for path in glob.glob(os.path.join(run.run_dir, "tensorboard", "events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                steps.setdefault(value.tag, []).append(event.step)
    assert steps["train/loss"] == [4, 8, 12]  # every tensorboard_every=4 of 12 batches
    assert steps["val/loss"] == [3, 6, 9, 12]  # every validation


def test_nothing_is_rendered_without_logs_dir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    tg = TrainGenerator(image_model(), *image_datagens(), epochs=1, iter_verbosity=0)
    tg.train()
    assert os.listdir(tmp_path) == [] and tg.run_dir is None


def test_progress_prints_a_line_per_batch_with_counts_eta_and_set_name(capsys):
    tg = TrainGenerator(image_model(), *image_datagens(), epochs=2, iter_verbosity=1)
    tg.train()
    lines = capsys.readouterr().out.splitlines()
    batch_lines = [line for line in lines if " batch " in line]
    assert len(batch_lines) == tg.batches_fit
    assert "epoch 1/2 batch 1/4 [shuffled[0:8]] ETA" in batch_lines[0]
    assert "loss=" in batch_lines[0]
    val_lines = [line for line in lines if line.startswith("validation")]
    assert len(val_lines) == 2 and "* new best loss" in val_lines[0]
    assert not any("\r" in line for line in lines)  # not a terminal: one line each


def test_verbosity_two_adds_a_line_per_slice_and_zero_prints_nothing(capsys):
    TrainGenerator(image_model(), *image_datagens(), epochs=1, iter_verbosity=0).train()
    assert capsys.readouterr().out == ""
    tg = TrainGenerator(image_model(), *image_datagens(), epochs=1, iter_verbosity=2)
    tg.train()
    assert sum(" iter " in line for line in capsys.readouterr().out.splitlines()) == tg.iters_fit


def test_predict_mode_metrics_get_their_own_metrics_csv_columns(tmp_path):
    tg = TrainGenerator(
        image_model(), *image_datagens(), epochs=1, logs_dir=str(tmp_path), iter_verbosity=0,
        eval_fn="predict", val_metrics=["loss", "f1", "roc_auc"], key_metric="f1",
        dynamic_predict_threshold=True,
    )  # fmt: skip
    tg.train()
    with open(os.path.join(tg.run_dir, "metrics.csv")) as file:
        rows = list(csv.DictReader(file))
    val = [r for r in rows if r["kind"] == "val"]
    assert {"f1", "roc_auc", "predict_threshold"} <= set(rows[0])
    assert float(val[0]["f1"]) == tg.val_history["f1"][0]
    assert float(val[0]["predict_threshold"]) == tg.val_history["predict_threshold"][0]


def test_the_report_names_a_loss_function_the_same_in_every_run(tmp_path):
    """A loss given as a function is named, not printed with its memory address."""
    x = np.random.default_rng(0).random((16, 4), dtype=np.float32)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    model.compile("sgd", keras.losses.mean_squared_error)
    tg = TrainGenerator(
        model, DataGenerator(data=x, labels=x[:, :1], batch_size=8), epochs=1,
        logs_dir=str(tmp_path), iter_verbosity=0,
    )  # fmt: skip
    tg.train()
    with open(os.path.join(tg.run_dir, "report.txt")) as file:
        report = file.read()
    assert "loss            : mean_squared_error\n" in report and " at 0x" not in report
