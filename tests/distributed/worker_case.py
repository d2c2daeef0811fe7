"""One worker of a MultiWorkerMirroredStrategy cluster on 127.0.0.1 (run by the tests).

`python worker_case.py INDEX PORTS LOGS_DIR OUT [--resume] [--slow]`: PORTS is a comma-
separated list, one port per worker (its length is the worker count). The chief writes
the final weights to OUT (an .npz) and every worker prints `DONE <iters_fit>`.
"""

from __future__ import annotations

import argparse
import json
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("index", type=int)
    parser.add_argument("ports")
    parser.add_argument("logs_dir")
    parser.add_argument("out")
    parser.add_argument("--resume", default="")
    parser.add_argument("--slow", type=float, default=0.0)
    parser.add_argument("--epochs", type=int, default=4)
    args = parser.parse_args()
    ports = args.ports.split(",")
    os.environ["TF_CONFIG"] = json.dumps({
        "cluster": {"worker": [f"127.0.0.1:{port}" for port in ports]},
        "task": {"type": "worker", "index": args.index},
    })  # fmt: skip

    import keras
    import numpy as np
    import tensorflow as tf

    from trainkit import DataGenerator, TrainGenerator
    from trainkit.callbacks import Callback

    strategy = tf.distribute.MultiWorkerMirroredStrategy()

    class Slow(Callback):
        """Gives the test time to kill the workers mid-run; changes nothing trained."""

        def on_train_batch_end(self, batch, logs=None):
            if args.slow:
                time.sleep(args.slow)
            print(f"BATCH {self.trainer.batches_fit}", flush=True)

    rng = np.random.default_rng(0)
    x = rng.normal(size=(90, 6)).astype("float32")
    y = (x[:, 0] - x[:, 2] > 0).astype("float32")
    with strategy.scope():
        keras.utils.set_random_seed(1)
        model = keras.Sequential([
            keras.Input((6,)),
            keras.layers.Dense(8, activation="relu"),
            keras.layers.Dense(1, activation="sigmoid"),
        ])  # fmt: skip
        model.compile(keras.optimizers.Adam(0.02), "binary_crossentropy", metrics=["accuracy"])
    tg = TrainGenerator(
        model,
        DataGenerator(data=x, labels=y, batch_size=16, shuffle="samples", seed=5),
        DataGenerator(data=x[:30], labels=y[:30], batch_size=16),
        epochs=args.epochs,
        strategy=strategy,
        logs_dir=args.logs_dir,
        checkpoint_freq={"batch": 3},
        val_freq={"epoch": 1},
        resume=True if args.resume == "true" else (args.resume or False),
        callbacks=[Slow()],
        iter_verbosity=0,
    )
    tg.train()
    if tg.run_dir is not None and args.index == 0:
        np.savez(args.out, *model.get_weights())
        print(f"RUN {tg.run_dir}", flush=True)
    print(f"DONE {tg.iters_fit} {json.dumps(tg.val_history['loss'])}", flush=True)


if __name__ == "__main__":
    main()
