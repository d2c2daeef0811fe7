"""A follower worker's writes stay in its temporary folder; gathering keeps None members.

In process: the follower's setup is called on a one-device trainer, and the gather on a
one-device strategy told it is one of two workers (the real runs are in
test_multi_worker.py, in processes of their own).
"""

from __future__ import annotations

import gc
import os
from types import SimpleNamespace

import keras
import numpy as np
import tensorflow as tf

from trainkit import DataGenerator, TrainGenerator
from trainkit.training import checkpointing
from trainkit.training.slices.distribute import Distribution


def test_a_follower_writes_its_run_folder_and_best_models_outside_the_chiefs(tmp_path, monkeypatch):
    calls: list[str] = []  # op determinism is process-wide: recorded, not enabled
    monkeypatch.setattr(tf.config.experimental, "enable_op_determinism", lambda: calls.append("on"))
    logs, best = tmp_path / "logs", tmp_path / "best"
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile("sgd", "mse")
    x = np.zeros((8, 2), dtype="float32")
    dg = DataGenerator(data=x, labels=np.zeros(8), batch_size=4)
    tg = TrainGenerator(
        model, dg, epochs=1, logs_dir=str(logs), best_models_dir=str(best),
        deterministic=True,
    )  # fmt: skip
    assert calls == ["on"]  # the chief's open_run
    chief_runs = sorted(os.listdir(logs))
    follower = checkpointing.Checkpoints(
        tg, settings=tg._settings, state=tg._state, callbacks=tg._callbacks, run_logs=tg._logs
    )
    follower.open_follower(None, SimpleNamespace(worker_index=1))
    assert follower.run is not None
    scratch = os.path.dirname(follower.run.path)
    assert not scratch.startswith(str(tmp_path))
    written = follower.save_best()
    assert written is not None and written.startswith(scratch)
    assert sorted(os.listdir(logs)) == chief_runs and not best.exists()
    assert calls == ["on", "on"]  # as on the chief: every worker computes gradients
    del follower
    gc.collect()
    assert not os.path.exists(scratch)


def test_gathering_rows_keeps_members_that_are_none():
    distribution = Distribution(tf.distribute.MirroredStrategy(["/cpu:0"]))
    distribution.workers, distribution.local_replicas = 2, 1  # worker 0 of 2: it gathers
    outputs = {"a": np.arange(6, dtype="float32").reshape(3, 2), "b": np.ones(3)}
    rows = np.array([4, 5, 6])
    gathered = distribution.gather_rows((outputs, None, None, rows))  # no labels, weights
    assert gathered[1] is None and gathered[2] is None
    np.testing.assert_array_equal(gathered[0]["a"], outputs["a"])
    np.testing.assert_array_equal(gathered[0]["b"], outputs["b"])
    np.testing.assert_array_equal(gathered[3], rows)


class GuideStep(keras.Model):
    """The custom train_step of Keras' guide: no `optimizer.scale_loss`."""

    def train_step(self, data):
        x, y = data[:2]
        with tf.GradientTape() as tape:
            loss = self.compute_loss(y=y, y_pred=self(x, training=True))
        gradients = tape.gradient(loss, self.trainable_variables)
        self.optimizer.apply(gradients, self.trainable_variables)
        return {"loss": loss}


def test_a_custom_train_step_that_bypasses_scale_loss_is_warned_about(recwarn):
    strategy = tf.distribute.MirroredStrategy(["/cpu:0"])
    x, y = np.ones((6, 2), dtype="float32"), np.zeros((6, 1), dtype="float32")
    for cls, warned in ((keras.Model, False), (GuideStep, True)):
        with strategy.scope():
            inputs = keras.Input((2,))
            model = cls(inputs, keras.layers.Dense(1)(inputs))
            model.compile("sgd", "mse")
        dg = DataGenerator(data=x, labels=y, batch_size=4)
        TrainGenerator(model, dg, epochs=1, strategy=strategy, iter_verbosity=0).train()
        messages = [str(w.message) for w in recwarn.list if "scale_loss" in str(w.message)]
        assert bool(messages) == warned, messages
        recwarn.clear()
