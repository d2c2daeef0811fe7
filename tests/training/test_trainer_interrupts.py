"""A run interrupted anywhere and continued with train() ends where the uninterrupted
run ends: no slice fit twice, none skipped."""

import numpy as np
import pytest
from training_helpers import (
    HOOKS,
    RaiseAt,
    dense_arrays,
    dense_datagens,
    dense_model,
    lstm_model,
    series_datagen,
    train_through_failures,
    weights_equal,
)

from trainkit import TrainGenerator
from trainkit.callbacks import Callback

EPOCHS = 3


def dense_trainer(callbacks=(), epochs=EPOCHS, prefetch=None, **kwargs):
    datagen, val_datagen = dense_datagens(prefetch=prefetch)
    kwargs.setdefault("val_freq", {"batch": 3})
    return TrainGenerator(
        dense_model(), datagen, val_datagen, epochs=epochs, callbacks=list(callbacks),
        iter_verbosity=0, **kwargs,
    )  # fmt: skip


def lstm_trainer(callbacks=(), epochs=EPOCHS, **kwargs):
    return TrainGenerator(
        lstm_model(), series_datagen(), series_datagen(shuffle=False), epochs=epochs,
        reset_statefuls=True, val_freq={"iter": 4}, callbacks=list(callbacks),
        iter_verbosity=0, **kwargs,
    )  # fmt: skip


@pytest.fixture(scope="module")
def dense_reference():
    trainer = dense_trainer(prefetch=0)  # the interrupted runs prefetch (the default)
    trainer.train()
    return trainer


@pytest.fixture(scope="module")
def lstm_reference():
    trainer = lstm_trainer()
    trainer.train()
    return trainer


class FlakyStep:
    """Wraps a compiled step; raises before (or after) the calls numbered in the sets."""

    def __init__(self, step, before=(), after=()):
        self.step, self.before, self.after, self.calls = step, set(before), set(after), 0

    def __call__(self, x, y):
        self.calls += 1
        if self.calls in self.before:
            raise RuntimeError(f"step {self.calls} failed before running")
        logs = self.step(x, y)
        if self.calls in self.after:
            raise RuntimeError(f"step {self.calls} failed after running")
        return logs


def assert_same_run(trainer, reference):
    assert weights_equal(trainer.model, reference.model)
    assert trainer.history == reference.history
    assert trainer.val_history == reference.val_history
    assert trainer.state_dict()["iters_fit"] == reference.iters_fit
    for name in ("epoch", "batches_fit", "iters_validated", "batches_validated"):
        assert getattr(trainer, name) == getattr(reference, name), name
    assert trainer.times_validated == reference.times_validated


def random_points(seed, count, high):
    return np.random.default_rng(seed).choice(np.arange(1, high), size=count, replace=False)


@pytest.mark.parametrize("seed", range(4))
def test_exceptions_at_random_hooks_and_steps_leave_the_dense_run_unchanged(seed, dense_reference):
    hook_calls = 2 * len(HOOKS) * 10  # more than the run makes; some points never hit
    raiser = RaiseAt(random_points(seed, 8, hook_calls))
    trainer = dense_trainer([raiser])
    trainer._train_step = FlakyStep(trainer._train_step, before=random_points(seed + 10, 3, 12))
    trainer._test_step = FlakyStep(trainer._test_step, before=random_points(seed + 20, 2, 12))
    failures = train_through_failures(trainer, expected=(RuntimeError,))
    assert failures >= 5
    assert_same_run(trainer, dense_reference)


def test_exceptions_with_deep_prefetch_leave_the_dense_run_unchanged(dense_reference):
    trainer = dense_trainer([RaiseAt(random_points(7, 8, 200))], prefetch=5)
    trainer._train_step = FlakyStep(trainer._train_step, before=random_points(8, 3, 12))
    assert train_through_failures(trainer, expected=(RuntimeError,)) >= 3
    assert_same_run(trainer, dense_reference)


@pytest.mark.parametrize("seed", range(2))
def test_interrupts_at_random_points_leave_the_stateful_lstm_run_unchanged(seed, lstm_reference):
    raiser = RaiseAt(random_points(seed, 10, 120), error=KeyboardInterrupt)
    trainer = lstm_trainer([raiser])
    trainer._train_step = FlakyStep(trainer._train_step, before=random_points(seed, 3, 18))
    failures = train_through_failures(trainer, expected=(KeyboardInterrupt, RuntimeError))
    assert failures >= 8
    assert_same_run(trainer, lstm_reference)


def test_a_step_that_fails_after_the_optimizer_applied_it_is_counted_not_refit(
    dense_reference,
):
    trainer = dense_trainer()
    trainer._train_step = FlakyStep(trainer._train_step, after={2, 7})
    with pytest.warns(UserWarning, match="counted as fit"):
        train_through_failures(trainer, expected=(RuntimeError,))
    assert weights_equal(trainer.model, dense_reference.model)
    assert trainer.iters_fit == dense_reference.iters_fit
    # The two lost slices have no values; every other batch matches.
    lost = [i for i, v in enumerate(trainer.history["loss"]) if np.isnan(v)]
    assert lost == [1, 6]
    kept = [i for i in range(trainer.batches_fit) if i not in lost]
    assert [trainer.history["loss"][i] for i in kept] == [
        dense_reference.history["loss"][i] for i in kept
    ]


class TrainsOnceAtEpochEnds(Callback):
    """One optimizer step of its own at each epoch end (a step the trainer does not count)."""

    def on_epoch_end(self, epoch, logs=None):
        x, y = dense_arrays(4, seed=9)
        self.trainer.model.train_on_batch(x, y)


def test_one_step_taken_outside_before_train_is_called_again_is_not_a_step_of_the_loop():
    reference = dense_trainer([TrainsOnceAtEpochEnds()], epochs=2)
    reference.train()
    trainer = dense_trainer([TrainsOnceAtEpochEnds()], epochs=1)
    trainer.train()
    trainer.epochs = 2
    with pytest.warns(UserWarning, match="moved by 1 steps outside"):
        trainer.train()  # not "interrupted after the optimizer applied it": no slice lost
    assert weights_equal(trainer.model, reference.model)
    assert trainer.history == reference.history


def test_raising_epochs_and_calling_train_again_continues_the_run(dense_reference):
    trainer = dense_trainer(epochs=1)
    trainer.train()
    trainer.epochs = 2
    trainer.train()
    trainer.epochs = EPOCHS
    trainer.train()
    assert_same_run(trainer, dense_reference)
    trainer.train()  # nothing left: returns at once
    assert trainer.epoch == EPOCHS


@pytest.mark.parametrize("val_freq", [{"batch": 1}, {"iter": 2}, None])
def test_validating_mid_epoch_does_not_disturb_training(val_freq, dense_reference):
    trainer = dense_trainer(val_freq=val_freq)
    trainer.train()
    assert weights_equal(trainer.model, dense_reference.model)
    assert trainer.history == dense_reference.history


def test_validating_mid_batch_sequence_keeps_the_stateful_states_of_training():
    # reset_statefuls=False: states flow across batches; validation in between must
    # hand them back untouched.
    def run(val_freq):
        with pytest.warns(UserWarning, match="reset_statefuls=False"):
            trainer = TrainGenerator(
                lstm_model(), series_datagen(), series_datagen(shuffle=False), epochs=2,
                val_freq=val_freq, iter_verbosity=0,
            )  # fmt: skip
        trainer.train()
        return trainer

    with_val, without_val = run({"batch": 1}), run(None)
    assert with_val.times_validated == 4
    assert weights_equal(with_val.model, without_val.model)
    assert with_val.history == without_val.history
