"""assert_resume_equivalent works for fused runs: it cuts between fused groups."""

from __future__ import annotations

import keras
import numpy as np

from trainkit import DataGenerator, TrainGenerator
from trainkit.testing import assert_resume_equivalent

RNG = np.random.default_rng(0)
X = RNG.random((40, 5), dtype=np.float32)
Y = (X.sum(axis=1) > 2.5).astype("float32")


def make_trainer(logs_dir, resume, callbacks):
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [keras.Input((5,)), keras.layers.Dropout(0.2), keras.layers.Dense(1, activation="sigmoid")]
    )
    model.compile(keras.optimizers.Adam(1e-2), "binary_crossentropy")
    train = DataGenerator(data=X[:32], labels=Y[:32], batch_size=2, shuffle=True, seed=1)
    val = DataGenerator(data=X[32:], labels=Y[32:], batch_size=8)
    return TrainGenerator(
        model, train, val, epochs=2, logs_dir=logs_dir, resume=resume, callbacks=callbacks,
        iter_verbosity=0, checkpoint_freq=None, steps_per_execution=8,
    )  # fmt: skip


def test_assert_resume_equivalent_holds_with_eight_fused_steps(tmp_path):
    # 32 iters in groups of 8: iter 3 is cut at the end of its group (8), 20 at 24.
    assert_resume_equivalent(make_trainer, str(tmp_path), cut_points=(3, 20))
