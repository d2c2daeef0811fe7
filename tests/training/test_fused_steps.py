"""`steps_per_execution=K`: K slices per compiled call, bitwise equal to one per call.

Same weights, histories, metrics.csv, provenance, hook order and per-slice logs as
K = 1, with groups ending wherever the loop acts between slices.
"""

import os

import keras
import numpy as np
import pytest
from training_helpers import (
    RaiseAt,
    RecordingCallback,
    dense_arrays,
    dropout_model,
    lstm_model,
    series_datagen,
    train_through_failures,
    weights_equal,
)

from trainkit import DataGenerator, NonFiniteLossError, TrainGenerator
from trainkit.callbacks import Callback
from trainkit.data.preprocessors.base import Preprocessor
from trainkit.training.slices import steps


def dense_run(steps_per_execution, logs_dir=None, callbacks=(), **kwargs):
    x, y = dense_arrays(92)
    datagen = DataGenerator(data=x[:76], labels=y[:76], batch_size=6, shuffle=True, seed=3)
    val_datagen = DataGenerator(data=x[76:], labels=y[76:], batch_size=8)
    kwargs = {"val_freq": {"iter": 4}, "checkpoint_freq": {"iter": 5}, **kwargs}
    return TrainGenerator(
        dropout_model(), datagen, val_datagen, epochs=2, logs_dir=logs_dir, iter_verbosity=0,
        steps_per_execution=steps_per_execution, callbacks=list(callbacks), **kwargs,
    )  # fmt: skip


class CountGroups:
    """Counts the fused calls and their sizes (wraps FusedSteps.__call__)."""

    def __init__(self, monkeypatch):
        self.sizes = []
        original = steps.FusedSteps.__call__

        def counted(fused, slices, stacked=None, unroll=False):
            self.sizes.append(len(slices))
            return original(fused, slices, stacked, unroll)

        monkeypatch.setattr(steps.FusedSteps, "__call__", counted)


def fused_equals_one_per_call(run, k, monkeypatch):
    """`run(k)` ends like `run(1)`; returns the sizes of the fused calls it made."""
    one = run(1)
    groups = CountGroups(monkeypatch)
    assert_same_run(run(k), one)
    return groups.sizes


def read(run_dir, name):
    with open(os.path.join(run_dir, name)) as file:
        return file.read()


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    recorder = RecordingCallback()
    trainer = dense_run(1, str(tmp_path_factory.mktemp("k1")), [recorder])
    trainer.train()
    return trainer, recorder


def assert_same_run(trainer, reference_trainer):
    assert weights_equal(trainer.model, reference_trainer.model)
    assert trainer.history == reference_trainer.history
    assert trainer.val_history == reference_trainer.val_history
    assert trainer.iters_fit == reference_trainer.iters_fit


def test_fused_groups_end_bitwise_equal_to_one_slice_per_call(reference, tmp_path, monkeypatch):
    ref, ref_recorder = reference
    groups = CountGroups(monkeypatch)
    recorder = RecordingCallback()
    trainer = dense_run(8, str(tmp_path), [recorder])
    trainer.train()
    assert_same_run(trainer, ref)
    for name in ("metrics.csv", "provenance.jsonl"):
        assert read(trainer.run_dir, name) == read(ref.run_dir, name), name
    assert sorted(n for n in os.listdir(trainer.run_dir) if n.startswith("ckpt-")) == sorted(
        n for n in os.listdir(ref.run_dir) if n.startswith("ckpt-")
    )
    # The same hooks in the same order, each with its own slice's or batch's values.
    assert recorder.calls == ref_recorder.calls
    assert recorder.logs == ref_recorder.logs
    # Groups really were fused, and none crossed a checkpoint (every 5 iters).
    assert groups.sizes and max(groups.sizes) > 1
    assert max(groups.sizes) <= 5 and sum(groups.sizes) < trainer.iters_fit


class EvaluatesAtBatchEnds(Callback):
    """Calls `model.evaluate`, which leaves its metric state behind, after every batch."""

    def on_train_batch_end(self, index, logs=None):
        x, y = dense_arrays(6, seed=1)
        self.trainer.model.evaluate(x, y, verbose=0)


def test_metric_state_left_between_calls_does_not_reach_a_groups_values(monkeypatch):
    # Each fused slice starts from empty metric state, the group's first one included.
    def run(k):
        recorder = RecordingCallback()
        trainer = dense_run(k, callbacks=[EvaluatesAtBatchEnds(), recorder], val_freq=None)
        trainer.train()
        return recorder.logs

    groups = CountGroups(monkeypatch)
    assert run(4) == run(1)
    assert max(groups.sizes) == 4


def test_groups_end_at_checkpoints_validations_and_epoch_ends(monkeypatch):
    groups = CountGroups(monkeypatch)
    trainer = dense_run(32, val_freq={"batch": 3}, checkpoint_freq=None)
    trainer.train()
    # 13 batches per epoch of one slice each; validation every 3 batches.
    # The first slice is fit alone (it traces the step); the 13th ends the epoch alone.
    assert groups.sizes[:5] == [2, 3, 3, 3, 2]


def test_a_stateful_lstm_on_windows_trains_the_same_with_fused_groups(monkeypatch):
    def run(k):
        trainer = TrainGenerator(
            lstm_model(), series_datagen(n=16), series_datagen(shuffle=False), epochs=2,
            reset_statefuls=True, val_freq={"epoch": 1}, iter_verbosity=0,
            steps_per_execution=k,
        )  # fmt: skip
        trainer.train()
        return trainer

    sizes = fused_equals_one_per_call(run, 8, monkeypatch)
    # 3 windows per batch, reset after each batch; the very first slice is fit alone.
    assert sizes[0] == 2 and set(sizes[1:]) == {3}


def test_an_interrupt_inside_a_group_resumes_exactly(reference, monkeypatch):
    ref, _ = reference
    trainer = dense_run(8, callbacks=[RaiseAt(range(9, 200, 23))])
    assert train_through_failures(trainer, expected=(RuntimeError,)) >= 4
    assert_same_run(trainer, ref)


def test_a_failed_fused_call_leaves_the_generator_where_the_group_began(reference, monkeypatch):
    ref, _ = reference
    original = steps.FusedSteps.__call__
    calls = {"n": 0}

    def flaky(fused, slices, stacked=None, unroll=False):
        calls["n"] += 1
        if calls["n"] in (2, 5):
            raise RuntimeError("planned failure in a fused call")
        return original(fused, slices, stacked, unroll)

    monkeypatch.setattr(steps.FusedSteps, "__call__", flaky)
    trainer = dense_run(8)
    assert train_through_failures(trainer, expected=(RuntimeError,)) == 2
    assert_same_run(trainer, ref)


def test_checkpoint_is_refused_while_a_group_is_being_accounted(tmp_path):
    class CheckpointMidGroup(Callback):
        def on_train_iter_end(self, index, logs=None):
            if self.trainer.iters_fit == 3:
                self.trainer.checkpoint()

    trainer = dense_run(8, str(tmp_path), [CheckpointMidGroup()], checkpoint_freq=None)
    with pytest.raises(RuntimeError, match=r"fused call .*steps_per_execution=8"):
        trainer.train()


def test_steps_per_execution_is_checked_and_assignable():
    with pytest.raises(ValueError, match="steps_per_execution"):
        dense_run(0)
    trainer = dense_run(1)
    trainer.steps_per_execution = 4
    assert trainer.steps_per_execution == 4
    trainer.train()
    assert trainer.iters_fit == 2 * 13


def test_slices_of_another_shape_are_not_fused(monkeypatch):
    groups = CountGroups(monkeypatch)
    x, y = dense_arrays(40)
    datagen = DataGenerator(data=x[:34], labels=y[:34], batch_size=8)  # last batch: 2 rows
    trainer = TrainGenerator(
        dropout_model(), datagen, epochs=1, iter_verbosity=0, steps_per_execution=8,
        checkpoint_freq=None,
    )  # fmt: skip
    trainer.train()
    assert trainer.iters_fit == 5
    assert groups.sizes == [3]  # batches 2-4; the first alone, the short last one alone
    assert np.isfinite(trainer.history["loss"]).all()


def test_class_and_slice_weights_are_fused_per_slice(monkeypatch):
    def run(k):
        x = np.random.default_rng(4).random((24, 12, 1), dtype=np.float32)
        y = (x.mean(axis=(1, 2)) > 0.5).astype("float32")[:, None]
        datagen = series_datagen(n=24, batch_size=4)
        datagen = DataGenerator(
            data=x, labels=y, batch_size=4, shuffle=True, seed=2,
            preprocessor=datagen.preprocessor,
        )  # fmt: skip
        keras.utils.set_random_seed(0)
        model = keras.Sequential(
            [keras.Input((4, 1)), keras.layers.Flatten(), keras.layers.Dense(1, "sigmoid")]
        )
        model.compile(keras.optimizers.Adam(0.05), "binary_crossentropy")
        trainer = TrainGenerator(
            model, datagen, epochs=2, iter_verbosity=0, checkpoint_freq=None,
            class_weights={0: 1.0, 1: 3.0}, loss_weighted_slices_range=(0.5, 1.5),
            steps_per_execution=k,
        )  # fmt: skip
        trainer.train()
        return trainer

    assert max(fused_equals_one_per_call(run, 4, monkeypatch)) == 4


def test_a_fused_call_interrupted_after_it_applied_is_not_fit_again(reference, monkeypatch):
    ref, _ = reference
    original = steps.FusedSteps.__call__
    calls = {"n": 0}

    def applied_then_interrupted(fused, slices, stacked=None, unroll=False):
        result = original(fused, slices, stacked, unroll)
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt  # after the call returned: its steps are applied
        return result

    monkeypatch.setattr(steps.FusedSteps, "__call__", applied_then_interrupted)
    trainer = dense_run(8)
    with pytest.warns(UserWarning, match="counted as fit"), pytest.raises(KeyboardInterrupt):
        trainer.train()
    trainer.train()
    assert weights_equal(trainer.model, ref.model)
    assert trainer.iters_fit == ref.iters_fit
    assert int(trainer.model.optimizer.iterations.numpy()) == int(
        ref.model.optimizer.iterations.numpy()
    )


def labels_run(steps_per_execution, bad_row=None):
    x, y = dense_arrays(48)
    datagen = DataGenerator(data=x, labels=y, batch_size=4, prefetch=0)
    trainer = TrainGenerator(
        dropout_model(), datagen, epochs=1, iter_verbosity=0,
        steps_per_execution=steps_per_execution, checkpoint_freq=None,
    )  # fmt: skip
    if bad_row is not None:
        y[bad_row] = 7  # 3 classes: the user's array changed after construction
    return trainer


def test_a_group_checks_its_slices_in_one_pass_and_stops_where_one_slice_would(monkeypatch):
    from trainkit.training.slices.feeder import SliceFeeder

    checks = []
    original = SliceFeeder.data_ok
    monkeypatch.setattr(
        SliceFeeder, "data_ok", lambda feeder, args: checks.append(1) or original(feeder, args)
    )
    clean = labels_run(6)
    clean.train()
    assert clean.iters_fit == 12 and len(checks) <= 2 * 3  # per group, not per slice
    # A label out of range in the middle of a group: the error names the same batch as
    # one slice per call does, before any step of its group (the group is not fit).
    errors = []
    for k in (1, 6):
        trainer = labels_run(k, bad_row=4 * 3 + 1)  # batch 3 of 12, inside the first group
        with pytest.raises(ValueError, match="labels from") as error:
            trainer.train()
        errors.append(str(error.value))
        steps = int(trainer.model.optimizer.iterations.numpy())
        assert trainer.iters_fit == steps == (3 if k == 1 else 1)
    assert errors[0] == errors[1] and "set_name='3'" in errors[0]


class WeightsWithoutLabels(Preprocessor):
    """No labels, sample weights on the slices of `weighted` batches (a model with its
    own loss), a NaN weight in the batch whose samples hold the value `nan_batch`."""

    def __init__(self, nan_batch, weighted=None):
        super().__init__()
        self.nan_batch, self.weighted = nan_batch, weighted

    def process(self, batch, labels):
        number = int(batch[0, 0])
        if self.weighted is not None and number not in self.weighted:
            return batch, None
        weights = np.ones(len(batch), "float32")
        weights[0] = np.nan if number == self.nan_batch else 1.0
        return batch, None, weights


class Penalty(keras.layers.Layer):
    def call(self, x):
        self.add_loss(keras.ops.mean(keras.ops.square(x)))
        return x


@pytest.mark.parametrize("weighted", [None, (1, 3, 5)], ids=["every-slice", "some-slices"])
def test_a_nan_weight_of_a_slice_without_labels_stops_a_group_where_one_slice_would(weighted):
    # The weights are checked (though a step without labels does not fit them) in a group
    # as for one slice per call, also where only some slices carry weights.
    def run(k):
        keras.utils.set_random_seed(0)
        inputs = keras.Input((3,))
        model = keras.Model(inputs, Penalty()(keras.layers.Dense(2)(inputs)))
        model.compile(keras.optimizers.SGD(0.01))
        x = np.repeat(np.arange(12, dtype="float32")[:, None], 4, axis=0).repeat(3, axis=1)
        datagen = DataGenerator(
            data=x, batch_size=4, preprocessor=WeightsWithoutLabels(3, weighted), prefetch=0
        )
        trainer = TrainGenerator(
            model, datagen, epochs=1, iter_verbosity=0, checkpoint_freq=None,
            steps_per_execution=k,
        )  # fmt: skip
        with pytest.raises(NonFiniteLossError, match="sample weight"):
            trainer.train()
        return trainer.iters_fit, int(model.optimizer.iterations.numpy())

    assert run(6) == run(1) == (3, 3)


def test_a_group_of_plain_arrays_is_stacked_once_and_the_call_takes_that_stack(monkeypatch):
    calls = []
    original = steps.FusedSteps.__call__

    def recorded(fused, slices, stacked=None, unroll=False):
        calls.append((slices, stacked))
        return original(fused, slices, stacked, unroll)

    monkeypatch.setattr(steps.FusedSteps, "__call__", recorded)
    labels_run(6).train()
    assert [len(slices) for slices, _ in calls] == [6, 5]  # after the first, traced alone
    for slices, stacked in calls:
        assert stacked is not None  # stacked in the feeder, where it was checked
        for part, parts in zip(stacked, zip(*slices, strict=True), strict=True):
            assert np.array_equal(part, np.stack(parts))
