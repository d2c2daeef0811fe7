"""Run health before the step: non-finite data caught on the host, 'skip', clean checkpoints.

A NaN in the data must be caught whatever a CPU's kernels make of it (oneDNN's fused
MatMul+ReLU maps a NaN input to 0, so the loss alone can stay finite), before any weight
changes; no checkpoint is written from non-finite weights; sparse labels out of range
are refused before training when they are in memory, before their step when in files.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings

import keras
import numpy as np
import pytest
from training_helpers import dense_arrays, dense_model

from trainkit import (
    DataGenerator,
    NonFiniteLossError,
    NonFiniteWeightsError,
    Preprocessor,
    TrainGenerator,
)
from trainkit.data import write_sets
from trainkit.training.slices.health import data_is_finite

# digits, one NaN pixel, Dense(32, relu) -> Dense(10): the layout where oneDNN's fused
# kernel hides the NaN from the loss. Prints what the test checks, as JSON.
ONEDNN_SCRIPT = """
import json
import numpy as np, keras
from sklearn.datasets import load_digits
from trainkit import DataGenerator, NonFiniteLossError, TrainGenerator
x, y = load_digits(return_X_y=True)
x = (x[:512] / 16).astype("float32"); y = y[:512]
x[300, 27] = np.nan
keras.utils.set_random_seed(0)
model = keras.Sequential([keras.Input((64,)), keras.layers.Dense(32, activation="relu"),
                          keras.layers.Dense(10)])
model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
tg = TrainGenerator(model, DataGenerator(data=x, labels=y, batch_size=64), iter_verbosity=0)
try:
    tg.train()
    print(json.dumps({"raised": False}))
except NonFiniteLossError as error:
    print(json.dumps({
        "raised": True, "before_step": error.before_step, "bad_inputs": error.bad_inputs,
        "iters_fit": tg.iters_fit, "steps": int(model.optimizer.iterations.numpy()),
        "finite": all(bool(np.isfinite(w).all()) for w in model.get_weights()),
    }))
"""


@pytest.mark.parametrize("onednn", ["1", "0"])
def test_a_nan_input_is_caught_before_the_step_with_onednn_on_and_off(onednn):
    env = {**os.environ, "TF_ENABLE_ONEDNN_OPTS": onednn, "TF_CPP_MIN_LOG_LEVEL": "2"}
    done = subprocess.run(
        [sys.executable, "-c", ONEDNN_SCRIPT], capture_output=True, text=True, env=env,
        timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result == {
        "raised": True, "before_step": True, "bad_inputs": [300], "iters_fit": 4, "steps": 4,
        "finite": True,
    }  # fmt: skip


def test_the_finite_check_sees_nan_and_inf_in_any_member_and_not_an_overflowing_sum():
    x, y = dense_arrays(8)
    assert data_is_finite((x, y))
    assert data_is_finite((np.full(70_000, 60_000, np.float16), None))  # the sum overflows
    weights = np.ones(8, "float32")
    weights[3] = np.inf
    assert not data_is_finite((x, y, weights))
    members = {"a": x, "b": x.copy()}
    members["b"][2, 1] = np.nan
    assert not data_is_finite((members, y))
    assert data_is_finite(({"ids": np.arange(8)}, y))  # integers are not looked at


def _regression(seed=0):
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(4), keras.layers.Dense(1)])
    model.compile(keras.optimizers.Adam(0.01), "mse")
    return model


def _skip_data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(256, 8)).astype("float32")
    y = rng.normal(size=(256, 1)).astype("float32")
    x[100] *= 1e30  # finite, but its batch's loss is inf: the step is undone in the graph
    x[200, 0] = np.nan  # caught on the host: no step
    return x, y


def _train_quietly(tg):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        tg.train()
    return [str(w.message) for w in caught if "on_nonfinite='skip'" in str(w.message)]


@pytest.mark.parametrize("steps_per_execution", [1, 4])
def test_skip_leaves_out_bad_slices_with_the_weights_unchanged(steps_per_execution):
    x, y = _skip_data()
    tg = TrainGenerator(
        _regression(), DataGenerator(data=x, labels=y, batch_size=32), epochs=2,
        iter_verbosity=0, on_nonfinite="skip", steps_per_execution=steps_per_execution,
    )  # fmt: skip
    messages = _train_quietly(tg)
    skipped = [(s["epoch"], s["set_name"], s["iters_fit"]) for s in tg.skipped_slices]
    assert skipped == [(0, "3", 3), (0, "6", 5), (1, "3", 9), (1, "6", 11)]
    assert len(messages) == 4 and "samples [200]" in messages[1]
    assert not any("resume" in m for m in messages)  # training goes on: nothing to resume
    assert tg.iters_fit == 12 and int(tg.model.optimizer.iterations.numpy()) == 12
    assert len(tg.history["loss"]) == 16 and np.isnan(tg.history["loss"][3])
    # Bitwise the run that never saw those batches.
    clean = TrainGenerator(
        _regression(),
        DataGenerator(data=x, labels=y, batch_size=32, set_nums=["0", "1", "2", "4", "5", "7"]),
        epochs=2, iter_verbosity=0,
    )  # fmt: skip
    clean.train()
    for a, b in zip(tg.model.get_weights(), clean.model.get_weights(), strict=True):
        assert np.array_equal(a, b)


def test_skip_set_after_construction_guards_the_step_from_then_on():
    x, y = _skip_data()
    tg = TrainGenerator(
        _regression(), DataGenerator(data=x, labels=y, batch_size=32), iter_verbosity=0,
    )  # fmt: skip
    tg.on_nonfinite = "skip"
    _train_quietly(tg)
    assert [s["set_name"] for s in tg.skipped_slices] == ["3", "6"]
    assert all(np.isfinite(w).all() for w in tg.model.get_weights())


def test_no_checkpoint_is_written_from_non_finite_weights(tmp_path):
    x, y = dense_arrays(48)
    x, y = x.copy(), y.astype("float32")
    x[17, 3] = np.nan  # batch 2 (iter 3); 'ignore' fits it, as Keras would
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(1)])
    model.compile("sgd", "mse")
    tg = TrainGenerator(
        model, DataGenerator(data=x, labels=y, batch_size=8), epochs=2, iter_verbosity=0,
        logs_dir=str(tmp_path), checkpoint_freq={"batch": 1}, on_nonfinite="ignore",
    )  # fmt: skip
    with pytest.raises(NonFiniteWeightsError, match="first non-finite at iter 3") as raised:
        tg.train()
    assert raised.value.first_nonfinite_iter == 3 and raised.value.variables
    names = sorted(n for n in os.listdir(tg.run_dir) if n.startswith("ckpt-"))
    assert [n.split("-")[1] for n in names] == ["000000001", "000000002"]
    with pytest.raises(NonFiniteWeightsError):
        tg.checkpoint()
    resumed = TrainGenerator(
        dense_like(model), DataGenerator(data=x, labels=y, batch_size=8), epochs=2,
        iter_verbosity=0, logs_dir=str(tmp_path), resume=True, on_nonfinite="ignore",
    )  # fmt: skip
    assert resumed.iters_fit == 2
    assert all(np.isfinite(w).all() for w in resumed.model.get_weights())


def dense_like(model):
    clone = keras.models.clone_model(model)
    clone.compile("sgd", "mse")
    return clone


def test_class_sorted_labels_out_of_range_are_refused_before_training():
    x = np.random.default_rng(0).random((40, 8), dtype=np.float32)
    y = np.repeat([1, 2, 3, 4], 10)  # 1..4 for 4 output units: the first slices look fine
    with pytest.raises(ValueError, match=r"labels from 1 to 4 \(over its whole labels array"):
        TrainGenerator(dense_model(classes=4), DataGenerator(data=x, labels=y, batch_size=8))


def test_labels_out_of_range_in_files_are_refused_before_their_step(tmp_path):
    x = np.random.default_rng(0).random((40, 8), dtype=np.float32)
    y = np.repeat([0, 1, 2, 3], 10)
    sources = write_sets(x, y, str(tmp_path / "sets"), set_size=8, format="h5")
    tg = TrainGenerator(
        dense_model(classes=3), DataGenerator(**sources, batch_size=8), iter_verbosity=0,
    )  # fmt: skip
    with pytest.raises(ValueError, match=r"labels from 2 to 3 \(in batch set_name='3'.*3 output"):
        tg.train()
    assert tg.iters_fit == 3 and int(tg.model.optimizer.iterations.numpy()) == 3


class ShiftLabels(Preprocessor):
    """Labels 0..3 of the array become 1..4 in the slices: only the slices show it."""

    def process(self, batch, labels):
        return batch, labels + 1


def test_labels_a_preprocessor_moves_out_of_range_are_refused_before_their_step():
    x = np.random.default_rng(0).random((40, 8), dtype=np.float32)
    # In range over the whole array (checked at construction); the first batch has no 3,
    # so the peek at its first slice passes too.
    y = np.concatenate([np.tile([0, 1, 2], 4)[:8], np.tile([0, 1, 2, 3], 8)])
    datagen = DataGenerator(data=x, labels=y, batch_size=8, preprocessor=ShiftLabels())
    tg = TrainGenerator(dense_model(classes=4), datagen, iter_verbosity=0)
    with pytest.raises(ValueError, match=r"labels from 1 to 4 \(in batch set_name='1'"):
        tg.train()
    assert tg.iters_fit == 1 and int(tg.model.optimizer.iterations.numpy()) == 1


def test_labels_changed_in_the_array_after_construction_are_refused_before_their_step():
    """The whole-array check at construction does not stand in for the per-slice one:
    the generator serves the user's array, which may change afterwards."""
    x = np.random.default_rng(0).random((40, 8), dtype=np.float32)
    y = np.tile([0, 1, 2], 14)[:40]
    tg = TrainGenerator(
        dense_model(classes=3), DataGenerator(data=x, labels=y, batch_size=8), iter_verbosity=0
    )
    y[8:16] = 7
    with pytest.raises(ValueError, match=r"labels from 7 to 7 \(in batch set_name='1'"):
        tg.train()
    assert tg.iters_fit == 1 and int(tg.model.optimizer.iterations.numpy()) == 1


def test_the_data_check_can_be_turned_off():
    x, y = dense_arrays(48)
    x = x.copy()
    x[17, 3] = np.nan
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(3)])
    model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    tg = TrainGenerator(
        model, DataGenerator(data=x, labels=y, batch_size=8), iter_verbosity=0,
        check_finite_data=False,
    )  # fmt: skip
    with pytest.raises(NonFiniteLossError) as raised:  # left to the loss: after the step
        tg.train()
    assert not raised.value.before_step and raised.value.bad_inputs == [17]


def test_skipped_slices_are_named_in_the_report_metrics_and_provenance(tmp_path):
    x, y = _skip_data()
    tg = TrainGenerator(
        _regression(), DataGenerator(data=x, labels=y, batch_size=32), iter_verbosity=0,
        on_nonfinite="skip", logs_dir=str(tmp_path), checkpoint_freq=None,
    )  # fmt: skip
    _train_quietly(tg)
    with open(os.path.join(tg.run_dir, "report.txt")) as file:
        assert "skipped slices" in file.read()
    with open(os.path.join(tg.run_dir, "metrics.csv")) as file:
        kinds = [line.split(",")[0] for line in file.read().splitlines()[1:]]
    # A batch whose only slice was skipped still ends: its train row holds NaN.
    assert kinds == ["train"] * 3 + ["skipped"] + ["train"] * 3 + ["skipped"] + ["train"] * 2
    with open(os.path.join(tg.run_dir, "provenance.jsonl")) as file:
        records = [json.loads(line) for line in file]
    skipped = [(r["set_name"], r["skip"]) for r in records if "skipped" in r]
    assert skipped == [("3", 1), ("6", 2)]
    assert len(records) == 8


@pytest.mark.parametrize(
    "dtype, units, labels",
    [
        ("int8", 10, [0, 9, -1]),
        ("int8", 256, [10, -56, -1]),  # more classes than int8 reaches: min and max both
        (">i4", 10, [0, 3, -7]),  # big-endian
        # big-endian, -256 small in the other byte order: viewed with its own order only
        (">i2", 300, [0, -256]),
        ("int64", 10, [0, 10, 2]),
        ("uint8", 10, [0, 10, 2]),
        ("float32", 10, [0.0, -1.0, 2.0]),
    ],
)
def test_a_label_out_of_range_is_found_in_every_integer_width_and_order(dtype, units, labels):
    from trainkit.training.construction.preflight import check_label_range

    with pytest.raises(ValueError, match="labels from"):
        check_label_range("datagen", np.array(labels, dtype=dtype), (units, None))
    check_label_range(
        "datagen", np.array([0, units - 1 if units < 128 else 100], dtype), (units, None)
    )
