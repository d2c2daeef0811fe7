"""One worker of a 2-worker run with random augmentation, then (the chief) one device.

Run by tests/distributed/test_multi_worker.py as `augmented_case.py PORTS INDEX OUT`:
two such processes join a MultiWorkerMirroredStrategy on 127.0.0.1 (`TF_CONFIG`), each
serving its shard of every global batch of point clouds through a rotation, jitter and
scale chain. The chief then trains a model from the same starting weights on one device,
unsharded, and saves both final weights to OUT. Every sample is augmented alike in both
runs (its draws are keyed on its row in the global batch), so only the reduction order
of the gradients differs.
"""

from __future__ import annotations

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
PORTS, INDEX, OUT = sys.argv[1].split(","), int(sys.argv[2]), sys.argv[3]
os.environ["TF_CONFIG"] = json.dumps({
    "cluster": {"worker": [f"127.0.0.1:{port}" for port in PORTS]},
    "task": {"type": "worker", "index": INDEX},
})  # fmt: skip

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

strategy = tf.distribute.MultiWorkerMirroredStrategy()  # before any other TensorFlow call

import keras  # noqa: E402

from trainkit import (  # noqa: E402
    Chain,
    DataGenerator,
    JitterPreprocessor,
    RandomRotationPreprocessor,
    RandomScalePreprocessor,
    TrainGenerator,
)

# 40 clouds of 5 points; global batches of 12 rows split 6/6, the last one of 4 split 2/2.
rng = np.random.default_rng(0)
x = rng.normal(size=(40, 5, 3)).astype("float32")
y = (x[:, :, 2].mean(axis=1) > 0).astype("float32")


def build() -> keras.Model:
    keras.utils.set_random_seed(1)
    model = keras.Sequential([
        keras.Input((5, 3)),
        keras.layers.Flatten(),
        keras.layers.Dense(8, activation="tanh"),
        keras.layers.Dense(1, activation="sigmoid"),
    ])  # fmt: skip
    model.compile(keras.optimizers.Adam(0.05), "binary_crossentropy")
    return model


def train(model: keras.Model, strategy: tf.distribute.Strategy | None) -> list[np.ndarray]:
    augment = Chain(
        RandomRotationPreprocessor(axis="x", max_angle=np.pi),
        JitterPreprocessor(0.3),
        RandomScalePreprocessor(0.2, 3.0),
    )
    dg = DataGenerator(
        data=x, labels=y, batch_size=12, shuffle="samples", seed=4, preprocessor=augment
    )
    TrainGenerator(model, dg, epochs=3, strategy=strategy, iter_verbosity=0).train()
    return model.get_weights()


with strategy.scope():
    distributed = build()
start = distributed.get_weights()
workers = train(distributed, strategy)
if INDEX == 0:
    single = build()
    single.set_weights(start)
    alone = train(single, None)  # no strategy: one device serves every row of each batch
    np.savez(OUT, *workers, *alone)
    print("DONE", len(workers), flush=True)
