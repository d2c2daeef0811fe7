"""Fused groups of a length that recurs run their steps written out, on one thread.

The written-out graph runs on TensorFlow's single-threaded executor, bitwise what the loop
inside the graph gives (and so what one call per slice gives). The loop runs the first
two groups of a length (the second timed) and wherever the written-out graph cannot or
does not pay: lengths that do not recur, slow steps, control flow, a graph over the op
budget, an executor that refuses the graph.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf
from training_helpers import dense_arrays, dense_model, dropout_model, weights_equal

from trainkit import DataGenerator, TrainGenerator
from trainkit.training.slices import steps


@pytest.fixture(autouse=True)
def any_step_is_short(monkeypatch):
    """The bound on a step's time set out of reach of a busy machine: these tests are
    about which graph runs, not about the timing (one test sets its own bound)."""
    monkeypatch.setattr(steps, "UNROLL_STEP_SECONDS", 10.0)


def groups_of(count, size=6, seed=0):
    x, y = dense_arrays(count * size, seed=seed)
    return [(x[i : i + size], y[i : i + size]) for i in range(0, count * size, size)]


def fused_for(model):
    single = steps.CompiledStep(model, "train")
    single(*groups_of(1, seed=9)[0])  # traced, optimizer and metrics built
    return steps.FusedSteps(single)


def fit_groups(unroll, count=4, size=5):
    """`count` groups of `size` slices through a fresh model (with `unroll`, the loop
    runs the first two, the second timed, then the written-out graph where it pays);
    metric state is left behind before each (as a callback's `evaluate` would), which
    no group's values may see."""
    model = dropout_model()
    fused = fused_for(model)
    values = []
    for seed in range(count):
        group = groups_of(size, seed=seed)
        model.evaluate(*groups_of(1, seed=7)[0], verbose=0)  # metric state left behind
        values.append(fused(group, unroll=unroll))
    return model, fused, values


def test_a_full_group_written_out_equals_the_loop_bitwise():
    written, fused, values = fit_groups(unroll=True)
    looped, _, loop_values = fit_groups(unroll=False)
    assert list(fused._unrolled.values()) and None not in fused._unrolled.values()
    assert fused._proven == set(fused._unrolled)  # the written-out graph ran
    assert values == loop_values  # every slice's own values, nothing carried over
    assert weights_equal(written, looped)
    for a, b in zip(written.optimizer.variables, looped.optimizer.variables, strict=True):
        assert np.array_equal(a.numpy(), b.numpy())


def test_a_graph_the_executor_refuses_runs_in_the_loop_and_steps_once(monkeypatch):
    # An executor that does not exist is refused as that one refuses control flow: when
    # the graph is set up, before any step runs.
    monkeypatch.setattr(steps, "_SINGLE_THREADED", "NO_SUCH_EXECUTOR")
    written, fused, values = fit_groups(unroll=True)
    looped, _, loop_values = fit_groups(unroll=False)
    assert list(fused._unrolled.values()) == [None] and not fused._proven
    assert int(written.optimizer.iterations.numpy()) == 1 + 4 * 5  # no step run twice
    assert values == loop_values and weights_equal(written, looped)


def test_steps_over_the_op_budget_or_with_control_flow_are_not_written_out(monkeypatch):
    budget = steps.UNROLL_OPS
    monkeypatch.setattr(steps, "UNROLL_OPS", 5 * 40)  # a dropout MLP's step is more
    _, fused, _ = fit_groups(unroll=True, count=3)
    assert list(fused._unrolled.values()) == [None]
    monkeypatch.setattr(steps, "UNROLL_OPS", budget)
    guarded = steps.CompiledStep(dense_model(), "train", guard=True)  # a tf.cond
    guarded(*groups_of(1)[0])
    fused = steps.FusedSteps(guarded)
    for seed in range(3):
        fused(groups_of(4, seed=seed), unroll=True)
    assert list(fused._unrolled.values()) == [None]
    group = groups_of(4)
    stacked = steps.stack_slices(group)
    assert fused._unrolled_function(group[0], stacked, 4) is None  # not even traced


def test_signatures_beyond_the_first_few_stay_in_the_loop(monkeypatch):
    monkeypatch.setattr(steps, "UNROLL_GRAPHS", 1)
    model = dropout_model()
    fused = fused_for(model)
    for size in (5, 4):  # two signatures: slices of 5 rows, then of 4
        for seed in range(3):
            fused(groups_of(4, size=size, seed=seed), unroll=True)
    assert [function is not None for function in fused._unrolled.values()] == [True, False]


def test_steps_slower_than_the_bound_stay_in_the_loop(monkeypatch):
    monkeypatch.setattr(steps, "UNROLL_STEP_SECONDS", 0.0)  # every step is slower
    _, fused, _ = fit_groups(unroll=True, count=3)
    assert list(fused._loop_seconds) == list(fused._unrolled)  # timed, then chosen
    assert list(fused._unrolled.values()) == [None] and not fused._proven


@pytest.mark.parametrize("prefetch", [0, 2])
def test_a_trainer_writes_out_its_full_groups_and_loops_the_others(prefetch):
    x, y = dense_arrays(20 * 6)

    def trained(k):
        datagen = DataGenerator(data=x, labels=y, batch_size=6, shuffle=True, prefetch=prefetch)
        trainer = TrainGenerator(
            dropout_model(), datagen, epochs=3, steps_per_execution=k, iter_verbosity=0
        )
        trainer.train()
        return trainer

    one, fused = trained(1), trained(8)
    # 20 batches an epoch: the first slice alone (traced), 8 (the loop traced), 8 (timed)
    # and the epoch's last 3; then 8, 8 (written out) and 4 each epoch. Only full groups
    # are written out: an epoch's last recurs once an epoch, too rarely to pay its trace.
    unrolled = fused._fused_steps._unrolled
    assert [key[-1] for key in unrolled] == [8] and None not in unrolled.values()
    assert fused._fused_steps._proven == set(unrolled)
    assert weights_equal(fused.model, one.model) and fused.history == one.history


class FailsOnce(keras.layers.Layer):
    """The identity, through a Python call that raises on its `fail_at`-th call."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.calls, self.fail_at = 0, None

    def call(self, x):
        def identity(x):
            self.calls += 1
            if self.calls == self.fail_at:
                raise RuntimeError("a step fails inside the group")
            return x

        y = tf.py_function(identity, [x], tf.float32)
        y.set_shape(x.shape)
        return y


@pytest.mark.parametrize("failing", [0, 2])
def test_a_step_failing_inside_a_written_out_group_leaves_the_steps_before_it(failing):
    # The feeder counts `optimizer.iterations` moved by a failed call as the steps that
    # applied: written out, the steps' counts must not run ahead of the steps. (Whether
    # the failed step's own count ran before it failed is the executor's order: the
    # loop's multi-threaded one mostly runs it first.)
    def after_a_failure(unroll):
        keras.utils.set_random_seed(0)
        fails = FailsOnce()
        model = keras.Sequential(
            [keras.Input((8,)), keras.layers.Dense(16, activation="relu"), fails,
             keras.layers.Dense(3)]
        )  # fmt: skip
        model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        fused = fused_for(model)
        for seed in range(3):  # the loop traced and timed; then written out, where asked
            fused(groups_of(4, seed=seed), unroll=unroll)
        before = int(model.optimizer.iterations.numpy())
        fails.fail_at = fails.calls + 1 + failing
        with pytest.raises(tf.errors.OpError, match="fails inside the group"):
            fused(groups_of(4, seed=5), unroll=unroll)
        assert bool(fused._proven) == unroll
        return int(model.optimizer.iterations.numpy()) - before, model

    (moved, written), (loop_moved, looped) = after_a_failure(True), after_a_failure(False)
    assert failing <= moved <= failing + 1 and failing <= loop_moved <= failing + 1
    assert weights_equal(written, looped)  # the same steps applied


def test_a_written_out_call_that_fails_after_its_steps_ran_is_not_run_again(monkeypatch):
    original = steps.FusedSteps._unrolled_function

    def fails_after_its_steps(fused, *args):
        function = original(fused, *args)

        def call(stacked):
            function(stacked)
            raise tf.errors.InternalError(None, None, "failed after the steps ran")

        return call

    monkeypatch.setattr(steps.FusedSteps, "_unrolled_function", fails_after_its_steps)
    model = dropout_model()
    fused = fused_for(model)
    for seed in range(2):  # the loop's, the second timed
        fused(groups_of(5, seed=seed), unroll=True)
    with pytest.raises(tf.errors.InternalError, match="after the steps ran"):
        fused(groups_of(5), unroll=True)
    assert int(model.optimizer.iterations.numpy()) == 1 + 3 * 5  # not run again by the loop
