"""A fused group of whole in-memory batches: served at once, and accounted at once where
nothing listens between batches; bitwise what one slice at a time serves and counts."""

import math
from collections import deque

import keras
import numpy as np
import pytest
from training_helpers import dense_arrays, weights_equal

from trainkit import DataGenerator, TrainGenerator
from trainkit.callbacks import Callback
from trainkit.data.preprocessors.base import Preprocessor
from trainkit.training import trainer as trainer_module
from trainkit.training.callback_list import CallbackList
from trainkit.training.loop_state import LoopState, count_whole_batches
from trainkit.training.slices.record import SliceRecord

ROWS, BATCH = 50, 4  # 12 batches of 4 and a short one of 2


def arrays():
    x = np.arange(ROWS * 3, dtype=np.float32).reshape(ROWS, 3)
    return x, np.arange(ROWS) % 5


def one_by_one(datagen, count):
    served = []
    for _ in range(count):
        served.append(datagen.get())
        datagen.update_state()
    return served


def never(count):
    return False


@pytest.mark.parametrize(
    "options",
    [{}, {"shuffle": True, "seed": 2}, {"shuffle": "samples", "seed": 2}, {"shard": (1, 2)}],
    ids=["in-order", "sets-shuffled", "samples-shuffled", "shard"],
)
def test_whole_batches_are_what_get_serves_and_leave_the_same_state(options):
    x, y = arrays()
    whole, single = (DataGenerator(data=x, labels=y, batch_size=BATCH, **options) for _ in "ab")
    for datagen in (whole, single):
        one_by_one(datagen, 2)
    whole.get()
    served = whole._serve_whole_batches(5, never)
    expected = one_by_one(single, 5)
    assert len(served) == 5 and not served.epoch_ended
    assert np.array_equal(served.x, np.stack([x for x, _ in expected]))
    assert np.array_equal(served.y, np.stack([y for _, y in expected]))
    assert served.x.dtype == x.dtype and served.y.dtype == y.dtype
    assert served.x.flags.writeable and not np.shares_memory(served.x, x)  # the call's own
    for (x_read, y_read), (x_served, y_served) in zip(served, expected, strict=True):
        assert np.array_equal(x_read, x_served) and np.array_equal(y_read, y_served)
    assert whole.state_dict() == single.state_dict()
    assert whole.preprocessor.rng.random() == single.preprocessor.rng.random()  # last key
    assert all(np.array_equal(a, b) for a, b in zip(whole.get(), single.get(), strict=True))


def test_a_run_of_whole_batches_ends_where_the_size_the_epoch_or_the_caller_says():
    x, y = arrays()
    datagen = DataGenerator(data=x, labels=y, batch_size=BATCH, prefetch=0)
    datagen.get()
    assert len(datagen._serve_whole_batches(8, lambda count: count == 3)) == 3
    datagen.get()
    served = datagen._serve_whole_batches(8, never)
    assert len(served) == 8 and datagen.batch_index == 11
    datagen.get()
    served = datagen._serve_whole_batches(8, never)  # not into the short last batch
    assert len(served) == 1 and not served.epoch_ended and not datagen.all_data_exhausted
    datagen.get()
    last = datagen._serve_whole_batches(8, never)
    assert len(last) == 1 and last.x.shape == (1, 2, 3)
    assert last.epoch_ended and datagen.all_data_exhausted


def test_a_short_batch_among_the_others_ends_a_run_before_it(tmp_path):
    # shuffle_group_batches moves a set's short tail among its batches: 4, 4, 2, 4, 4.
    rng = np.random.default_rng(0)
    for k, rows in ((0, 8), (1, 10)):
        np.save(tmp_path / f"{k}.npy", rng.random((rows, 3), dtype=np.float32))

    def generator():
        options = {"superbatch": True, "shuffle_group_batches": True, "seed": 0}
        return DataGenerator(str(tmp_path), batch_size=BATCH, **options)

    whole, single = generator(), generator()
    sizes = [batch.size for batch in whole.plan(0)]
    assert sizes[-1] == 4 and 2 in sizes[:-1]
    runs = []
    while not whole.all_data_exhausted:
        whole.get()
        served = whole._serve_whole_batches(8, never)
        runs.append(len(served))
        assert np.array_equal(served.x, np.stack([x for x, _ in one_by_one(single, len(served))]))
        assert whole.state_dict() == single.state_dict()
    assert sum(runs) == len(sizes) and len(runs) == 3  # before the short one, it, after


class Doubled(Preprocessor):
    def process(self, batch, labels):
        return batch * 2, labels


def test_only_in_memory_batches_served_as_they_are_are_served_at_once(tmp_path):
    x, y = arrays()
    path = str(tmp_path / "x.npy")
    np.save(path, x)

    class Subclass(DataGenerator):  # may serve otherwise: get() is its own
        pass

    others = [
        DataGenerator(data=x, labels=y, batch_size=BATCH, preprocessor=Doubled()),
        Subclass(data=x, labels=y, batch_size=BATCH),
        DataGenerator(data=np.load(path, mmap_mode="r"), labels=y, batch_size=BATCH),
        DataGenerator(data=x, labels=y, batch_size=BATCH, prefetch=2),  # computed ahead
    ]
    for datagen in others:
        datagen.get()
        before = datagen.state_dict()
        assert datagen._serve_whole_batches(8, never) is None
        assert datagen.state_dict() == before
        datagen.close()


def model():
    keras.utils.set_random_seed(0)
    net = keras.Sequential(
        [keras.Input((8,)), keras.layers.Dense(8, "relu"), keras.layers.Dense(3)]
    )
    net.compile(
        keras.optimizers.Adam(0.02),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    return net


def build(steps_per_execution, callbacks=(), huge_row=None, **kwargs):
    x, y = dense_arrays(76)
    if huge_row is not None:  # finite, but the first layer's outputs overflow (not a NaN
        x[huge_row] = 3e38  # input, which oneDNN's fused MatMul+ReLU may map to 0)
    datagen = DataGenerator(data=x, labels=y, batch_size=4, shuffle=True, seed=3)
    return TrainGenerator(
        model(), datagen, epochs=2, iter_verbosity=0, val_freq=None,
        steps_per_execution=steps_per_execution, callbacks=list(callbacks), **kwargs,
    )  # fmt: skip


def run(steps_per_execution, callbacks=(), **kwargs):
    trainer = build(steps_per_execution, callbacks, **kwargs)
    trainer.train()
    return trainer


class Counted:
    """Counts calls of `owner.name` (wrapped for the test's duration)."""

    def __init__(self, monkeypatch, owner, name):
        self.count = 0
        original = getattr(owner, name)

        def counted(*args, **kwargs):
            self.count += 1
            return original(*args, **kwargs)

        monkeypatch.setattr(owner, name, counted)


def test_a_fused_run_serves_and_counts_its_batches_at_once_with_the_same_result(monkeypatch):
    one = run(1)
    fused = build(8)
    gets = Counted(monkeypatch, DataGenerator, "get")
    counted = Counted(monkeypatch, trainer_module.TrainGenerator, "_count_slice")
    fused.train()
    assert weights_equal(fused.model, one.model)
    assert fused.state_dict() == one.state_dict()  # counters, histories, means, stage
    assert fused._progress._epoch_batches == one._progress._epoch_batches  # the ETA's count
    # 19 batches per epoch: the very first alone (it traces the step), then groups of 8,
    # 8, 2; then 8, 8, 3. Each group: one get(), its first and last slice counted one by one.
    assert gets.count == 7
    assert counted.count == 1 + 2 * 6


class OnBatchEnd(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.batches = []

    def on_batch_end(self, batch, logs=None):  # what Keras' on_train_batch_end calls
        self.batches.append((batch, dict(logs)))


def test_a_callback_between_batches_gets_every_batch_of_a_fused_call(monkeypatch):
    reference = OnBatchEnd()
    run(1, [reference])
    counted = Counted(monkeypatch, trainer_module.TrainGenerator, "_count_slice")
    listening = OnBatchEnd()
    fused = run(8, [listening])
    assert listening.batches == reference.batches and len(listening.batches) == 2 * 19
    assert counted.count == fused.iters_fit


class LateHook(keras.callbacks.Callback):
    """Installs its batch hook after the first epoch, as some wrappers do."""

    seen: list

    def on_epoch_end(self, epoch, logs=None):
        if epoch == 0:
            self.seen = []
            self.on_batch_end = lambda batch, logs=None: self.seen.append(batch)


def test_a_hook_installed_while_training_gets_every_batch_of_a_fused_call_after():
    late = LateHook()
    run(8, [late])
    assert late.seen == list(range(19))  # the second epoch's batches, each


class TrainsAtEpochEnds(Callback):
    """Fine-tunes the model on a batch of its own at each epoch end (optimizer steps the
    trainer does not count)."""

    def on_epoch_end(self, epoch, logs=None):
        x, y = dense_arrays(4, seed=9)
        for _ in range(2):
            self.trainer.model.train_on_batch(x, y)


def test_a_failed_fused_call_counts_the_steps_it_applied_after_steps_taken_elsewhere():
    reference = run(8, [TrainsAtEpochEnds()])
    trainer = build(8, [TrainsAtEpochEnds()])
    fused, failed = trainer._fused_steps, []

    def fails_once_in_the_second_epoch(slices, stacked=None, unroll=False):
        if trainer.epoch == 1 and not failed:
            failed.append(len(slices))
            raise RuntimeError("planned failure before the call runs")
        return fused(slices, stacked, unroll)

    trainer._fused_steps = fails_once_in_the_second_epoch
    with pytest.raises(RuntimeError, match="planned failure"):
        trainer.train()
    with pytest.warns(UserWarning, match="moved by 2 steps outside"):
        trainer.train()
    assert failed and weights_equal(trainer.model, reference.model)
    assert trainer.history == reference.history  # no slice counted as fit that was not


def test_a_loss_first_not_finite_inside_a_group_is_dated_as_one_slice_at_a_time_does():
    # on_nonfinite='ignore' trains on (as Keras) and records where the loss first broke.
    iters = [
        run(k, huge_row=4 * 3 + 1, on_nonfinite="ignore").state_dict()["first_nonfinite_iter"]
        for k in (1, 8)
    ]
    assert iters[0] == iters[1] == 5  # inside the group of iters 2-9


class EpochsOnly(Callback):
    def on_epoch_end(self, epoch, logs=None):
        pass


class IterEnds(Callback):
    def on_train_iter_end(self, iteration, logs=None):
        pass


@pytest.mark.parametrize(
    "callback, quiet",
    [
        (keras.callbacks.EarlyStopping(), True),
        (EpochsOnly(), True),
        (OnBatchEnd(), False),
        (keras.callbacks.LambdaCallback(on_train_batch_begin=lambda batch, logs: None), False),
        (IterEnds(), False),
    ],
    ids=["EarlyStopping", "epoch-hook-only", "keras-on_batch_end", "LambdaCallback", "iter-end"],
)
def test_callbacks_that_listen_between_batches_are_told_apart(callback, quiet):
    trainer = build(1)
    assert CallbackList([], trainer).quiet_between_batches
    assert CallbackList([callback], trainer).quiet_between_batches is quiet


def test_batches_counted_at_once_give_a_slice_without_values_a_nan_row_and_no_weight():
    # A slice whose step applied before an interrupt is counted without values, and a
    # slice of no rows weighs nothing; the batches around them keep their rows, weights.
    def whole(samples):
        return SliceRecord(0, 1, "1", None, samples, batch_exhausted=True)

    first, second = {"loss": 1.0, "accuracy": 0.5}, {"loss": 3.0, "accuracy": 0.25}
    for empty in ({}, second):
        state = LoopState(history={"loss": [9.0], "accuracy": [9.0]})
        pending = deque([(whole(4), first), (whole(0), empty), (whole(4), second), (whole(4), {})])
        assert count_whole_batches(state, pending) == 3 and len(pending) == 1
        loss = state.history["loss"]
        assert loss[1::2] == [1.0, 3.0] and math.isnan(loss[2])
        assert state.history["accuracy"][1::2] == [0.5, 0.25]
        means = state.epoch_means
        assert (means.sums, means.weight, means.count) == ({"loss": 16.0, "accuracy": 3.0}, 8.0, 3)
        assert (state.iters_fit, state.batches_fit, state.last_iter_logs) == (3, 3, second)
