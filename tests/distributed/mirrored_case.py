"""One process, two logical CPU devices: trains with and without a MirroredStrategy.

Run by tests/distributed/test_mirrored.py (logical devices must be configured before
TensorFlow starts, so this runs in a process of its own). Prints one JSON line.
"""

from __future__ import annotations

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import tensorflow as tf

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

import keras  # noqa: E402

from trainkit import DataGenerator, TrainGenerator  # noqa: E402

SAMPLES, BATCH = 75, 16  # the last batch has 11 rows: 5 and 6 on the two replicas


def data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(SAMPLES, 6)).astype("float32")
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).astype("float32")
    return x, y


def build() -> keras.Model:
    keras.utils.set_random_seed(1)
    model = keras.Sequential([
        keras.Input((6,)),
        keras.layers.Dense(8, activation="relu", kernel_regularizer=keras.regularizers.l2(1e-3)),
        keras.layers.Dense(1, activation="sigmoid"),
    ])  # fmt: skip
    model.compile(keras.optimizers.Adam(0.02), "binary_crossentropy", metrics=["accuracy"])
    return model


def run(
    strategy: tf.distribute.Strategy | None,
    eval_fn: str,
    logs_dir: str | None = None,
    resume: str | bool = False,
    steps_per_execution: int = 1,
) -> dict:
    x, y = data()
    scope = strategy.scope() if strategy is not None else tf.name_scope("one_device")
    with scope:
        model = build()
    dg = DataGenerator(data=x, labels=y, batch_size=BATCH, shuffle=True, seed=3)
    val = DataGenerator(data=x[:37], labels=y[:37], batch_size=BATCH)
    tg = TrainGenerator(
        model, dg, val, epochs=3, strategy=strategy, eval_fn=eval_fn,
        val_metrics=["accuracy", "f1"] if eval_fn == "predict" else None,
        key_metric="f1" if eval_fn == "predict" else "loss",
        class_weights={0: 1.0, 1: 2.0}, iter_verbosity=0, logs_dir=logs_dir,
        checkpoint_freq={"batch": 4}, resume=resume, steps_per_execution=steps_per_execution,
    )  # fmt: skip
    tg.train()
    predictions = tg.predict(DataGenerator(data=x[:21], labels=y[:21], batch_size=10))
    return {
        "weights": [w.tolist() for w in model.get_weights()],
        "loss": tg.history["loss"],
        "val": dict(tg.val_history),
        "predictions": np.asarray(predictions.predictions).ravel().tolist(),
        "iters_fit": tg.iters_fit,
        "run_dir": tg.run_dir,
    }


def run_stateful(strategy: tf.distribute.Strategy | None) -> dict:
    """A stateful LSTM on windows: each replica keeps the states of its own rows."""
    from trainkit import TimeseriesPreprocessor

    rng = np.random.default_rng(4)
    x = rng.normal(size=(32, 20, 3)).astype("float32")
    y = (x[:, -1, 0] > 0).astype("float32")
    replicas = 1 if strategy is None else strategy.num_replicas_in_sync
    scope = strategy.scope() if strategy is not None else tf.name_scope("one_device")
    with scope:
        keras.utils.set_random_seed(2)
        model = keras.Sequential([
            keras.Input((5, 3), batch_size=8 // replicas),  # the batch of one replica
            keras.layers.LSTM(4, stateful=True),
            keras.layers.Dense(1, activation="sigmoid"),
        ])  # fmt: skip
        model.compile(keras.optimizers.Adam(0.01), "binary_crossentropy")

    def windows() -> DataGenerator:
        return DataGenerator(
            data=x, labels=y, batch_size=8, preprocessor=TimeseriesPreprocessor(window_size=5)
        )

    tg = TrainGenerator(
        model, windows(), epochs=2, strategy=strategy, reset_statefuls=True, iter_verbosity=0
    )
    tg.train()
    # Each replica predicts its rows (the model takes one replica's batch), with their states.
    predictions = np.asarray(tg.predict(windows()).predictions).ravel().tolist()
    return {
        "weights": [w.tolist() for w in model.get_weights()],
        "loss": tg.history["loss"],
        "predictions": predictions,
    }


def run_store(strategy: tf.distribute.Strategy | None, store: str) -> dict:
    """Training from an offline store: the replicas split each stored slice by rows."""
    scope = strategy.scope() if strategy is not None else tf.name_scope("one_device")
    with scope:
        model = build()
    tg = TrainGenerator(
        model, DataGenerator(data_path=store, shuffle=True, seed=5), epochs=2,
        strategy=strategy, iter_verbosity=0,
    )  # fmt: skip
    tg.train()
    return {"weights": [w.tolist() for w in model.get_weights()], "loss": tg.history["loss"]}


def main() -> None:
    logs_dir = sys.argv[1]
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    out: dict = {"replicas": strategy.num_replicas_in_sync}
    for eval_fn in ("evaluate", "predict"):
        out[eval_fn] = {
            "one": run(None, eval_fn),
            "mirrored": run(strategy, eval_fn, os.path.join(logs_dir, eval_fn)),
        }
    out["fused"] = run(strategy, "evaluate", os.path.join(logs_dir, "fused"), False, 4)
    out["stateful"] = {"one": run_stateful(None), "mirrored": run_stateful(strategy)}
    from trainkit import write_store

    x, y = data()  # 5 stored batches, the last of 11 rows
    store = write_store(DataGenerator(data=x, labels=y, batch_size=BATCH),
                        os.path.join(logs_dir, "store"), chunk_size=2)  # fmt: skip
    out["store"] = {"one": run_store(None, store), "mirrored": run_store(strategy, store)}
    # Resume the first mid-run checkpoint of the mirrored run in a fresh model.
    run_dir = out["evaluate"]["mirrored"]["run_dir"]
    first = sorted(name for name in os.listdir(run_dir) if name.startswith("ckpt-"))[0]
    out["resumed"] = run(
        strategy, "evaluate", os.path.join(logs_dir, "evaluate"), os.path.join(run_dir, first)
    )
    out["resumed_from"] = first
    print("RESULT " + json.dumps(out))


if __name__ == "__main__":
    main()
