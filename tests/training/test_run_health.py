"""A non-finite train loss is pinpointed to its slice and samples; 'stop' and 'ignore'."""

import json
import os

import keras
import numpy as np
import pytest
from training_helpers import dense_arrays, dense_model

from trainkit import DataGenerator, NonFiniteLossError, TrainGenerator

BAD = 17  # in set '2' (samples 16-23) with batch_size 8


def poisoned(labels=False):
    x, y = dense_arrays(48)
    x, y = x.copy(), y.astype("float32")
    if labels:
        y[BAD] = np.nan
    else:
        x[BAD, 3] = np.nan
    return x, y


def trainer(x, y, logs_dir=None, **kwargs):
    datagen = DataGenerator(data=x, labels=y, batch_size=8)
    kwargs = {"checkpoint_freq": {"batch": 1}, **kwargs}
    return TrainGenerator(
        dense_model(), datagen, epochs=2, iter_verbosity=0, logs_dir=logs_dir, **kwargs
    )


@pytest.mark.parametrize("steps_per_execution", [1, 8])
def test_a_poisoned_sample_is_named_after_exactly_the_good_batches(tmp_path, steps_per_execution):
    tg = trainer(*poisoned(), str(tmp_path), steps_per_execution=steps_per_execution)
    with pytest.raises(NonFiniteLossError) as raised:
        tg.train()
    error = raised.value
    assert isinstance(error, FloatingPointError)
    assert (error.set_name, error.slice_idx, error.epoch) == ("2", 0, 0)
    assert error.bad_inputs == [BAD] and error.bad_labels == []
    assert error.sample_indices == list(range(16, 24))
    message = str(error)
    assert "set_name='2'" in message and "[17]" in message and "iters_fit=2" in message
    # The two good batches are counted and checkpointed; the bad one is not.
    assert tg.iters_fit == 2 and len(tg.history["loss"]) == 2
    assert np.isfinite(tg.history["loss"]).all()
    checkpoints = sorted(n for n in os.listdir(tg.run_dir) if n.startswith("ckpt-"))
    assert [n.split("-")[1] for n in checkpoints] == ["000000001", "000000002"]
    assert tg.datagen.batch_index == 2  # the generator stays at the bad slice


def test_non_finite_labels_are_named_too():
    x, y = poisoned(labels=True)
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(1)])
    model.compile("sgd", "mse")  # a regression target: a NaN label makes the loss NaN
    tg = TrainGenerator(
        model, DataGenerator(data=x, labels=y, batch_size=8), iter_verbosity=0,
        checkpoint_freq=None,
    )  # fmt: skip
    with pytest.raises(NonFiniteLossError, match=r"non-finite labels in samples \[17\]"):
        tg.train()


def test_a_model_that_diverges_is_told_so():
    x, y = dense_arrays(48)
    tg = trainer(x, y)
    kernel = tg.model.layers[0].kernel
    kernel.assign(np.full(kernel.shape, np.inf, "float32"))
    with pytest.raises(NonFiniteLossError, match="the model diverged") as raised:
        tg.train()
    assert raised.value.bad_inputs == [] and tg.iters_fit == 0


def test_stop_ends_the_run_with_the_message_in_the_report_and_provenance(tmp_path):
    tg = trainer(*poisoned(), str(tmp_path), on_nonfinite="stop")
    with pytest.warns(UserWarning, match="set_name='2'"):
        tg.train()
    assert tg.iters_fit == 2 and tg.epoch == 0
    assert "set_name='2'" in tg.nonfinite_message
    with open(os.path.join(tg.run_dir, "report.txt")) as file:
        assert "stopped" in file.read()
    with open(os.path.join(tg.run_dir, "provenance.jsonl")) as file:
        records = [json.loads(line) for line in file]
    assert "set_name='2'" in records[-1]["stopped"]
    assert [r["set_name"] for r in records[:-1]] == ["0", "1"]


def test_ignore_keeps_keras_behaviour():
    tg = trainer(*poisoned(), on_nonfinite="ignore")
    tg.train()
    assert tg.iters_fit == 12 and np.isnan(tg.history["loss"][2])


def test_a_run_resumed_after_the_error_continues_from_the_last_checkpoint(tmp_path):
    x, y = poisoned()
    first = trainer(x, y, str(tmp_path))
    with pytest.raises(NonFiniteLossError):
        first.train()
    del first
    x[BAD] = 0.0  # fixed in place: same shapes, so the checkpoint still fits the data
    resumed = trainer(x, y, str(tmp_path), resume=True)
    assert resumed.iters_fit == 2
    resumed.train()
    assert resumed.iters_fit == 12 and np.isfinite(resumed.history["loss"]).all()


def test_introspection_is_logged_when_asked_and_costs_nothing_when_not(tmp_path):
    x, y = dense_arrays(48)
    plain = trainer(x, y, str(tmp_path / "plain"), checkpoint_freq=None)
    plain.train()
    assert not os.path.exists(os.path.join(plain.run_dir, "introspection.jsonl"))
    one_by_one = trainer(
        x, y, str(tmp_path / "single"), checkpoint_freq=None, introspect_freq={"iter": 4}
    )
    one_by_one.train()
    asked = trainer(
        x, y, str(tmp_path / "asked"), checkpoint_freq=None, introspect_freq={"iter": 4},
        steps_per_execution=8,
    )  # fmt: skip
    asked.train()
    from trainkit.introspection import read_introspection

    records = read_introspection(asked.run_dir)
    assert [r["iter"] for r in records] == [4, 8, 12]
    kernel = next(k for k in records[0]["gradient_norms"] if k.endswith("kernel"))
    assert records[0]["gradient_norms"][kernel] > 0
    assert all(v["nonfinite"] == 0 for v in records[-1]["weight_health"].values())
    with open(os.path.join(asked.run_dir, "report.txt")) as file:
        report = file.read()
    assert "Introspection" in report and "global gradient norm" in report

    # Fused groups end where introspection is due: each record is taken after exactly the
    # slices the unfused run had fit (a group running past iter 4 would log other
    # weights and gradients), and the runs end equal.
    def values(record):  # variable paths differ between two models' names
        return [record["iter"], *record["gradient_norms"].values()] + [
            list(health.values()) for health in record["weight_health"].values()
        ]

    assert [values(r) for r in records] == [
        values(r) for r in read_introspection(one_by_one.run_dir)
    ]
    for a, b in zip(plain.model.get_weights(), asked.model.get_weights(), strict=True):
        assert np.array_equal(a, b)


def test_non_finite_sample_weights_are_named_before_the_step(tmp_path):
    from trainkit import Preprocessor

    class Weighs(Preprocessor):
        """One weight per sample; NaN for the second sample of the batch starting at 16."""

        def process(self, batch, labels):
            weights = np.ones(len(batch), "float32")
            if batch[0, 0] == 16.0:
                weights[1] = np.nan
            return batch, labels, weights

    x, y = dense_arrays(48)
    x = x.copy()
    x[16, 0] = 16.0  # a finite marker the preprocessor recognises
    datagen = DataGenerator(data=x, labels=y, batch_size=8, preprocessor=Weighs())
    tg = TrainGenerator(
        dense_model(), datagen, iter_verbosity=0, logs_dir=str(tmp_path),
        checkpoint_freq={"batch": 1},
    )  # fmt: skip
    with pytest.raises(NonFiniteLossError, match=r"non-finite sample weights in samples \[17\]"):
        tg.train()
    # Caught on the host before the step: the weights are untouched and may be saved.
    assert all(np.isfinite(w).all() for w in tg.model.get_weights())
    assert tg.iters_fit == 2
    tg.checkpoint()
