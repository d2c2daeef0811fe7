"""trainkit's loop on Ray Train's workers: `TensorflowTrainer` launches, trainkit trains.

Ray starts one process per worker and sets `TF_CONFIG` in each before it calls the
training function, so the function is the multi-worker recipe: the strategy first,
then the model in its scope, then `TrainGenerator`. Keras' `model.fit` fails under
`MultiWorkerMirroredStrategy` (keras-team/keras#20585, ray-project/ray#47464); trainkit
runs its own step, so it does not. On one machine, with two Ray workers:

    pip install "ray[train]"
    python examples/ray_train.py --workers 2 --logs-dir runs

On a Ray cluster, `--address auto` joins it instead of starting one here.

Checkpoints are trainkit's: the chief writes the run folder in `--logs-dir` (storage
every node reads, on several machines), and `--resume` continues it. With
`--max-failures N`, Ray starts every worker again when one of them dies, and the new
workers resume the chief's last checkpoint (`--max-failures` implies `--resume`), so the
run ends as the uninterrupted one would. Nothing is sent to `ray.train.report`, so Ray's
own run folder (`--storage-path`) holds no checkpoint.

`--single-device` trains the same model from the same starting weights on one device,
without Ray, for comparison.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2, help="Ray Train workers")
    parser.add_argument("--address", default="", help="a Ray cluster to join (or 'auto')")
    parser.add_argument("--single-device", action="store_true", help="no Ray, no strategy")
    parser.add_argument("--logs-dir", default="runs", help="trainkit's run folders")
    parser.add_argument("--storage-path", default="", help="Ray's run folder (default: logs)")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--resume", action="store_true", help="continue the newest run")
    parser.add_argument("--max-failures", type=int, default=0, help="Ray restarts this often")
    parser.add_argument(
        "--fail-once-at", type=int, default=0, help="worker 1 dies after this iter, once"
    )
    parser.add_argument("--weights-out", default="", help="the chief saves final weights here")
    parser.add_argument("--ray-temp-dir", default="", help="a local Ray's session files")
    return parser.parse_args(argv)


def train(config: dict, strategy=None) -> None:
    """Build the model (in the strategy's scope) and train it with trainkit."""
    import keras
    import numpy as np
    import tensorflow as tf

    from trainkit import DataGenerator, TrainGenerator
    from trainkit.callbacks import Callback

    class FailOnce(Callback):
        """Worker 1 dies after iter `at`, the first time only, as a lost machine would."""

        def __init__(self, at: int, marker: Path, task: int) -> None:
            super().__init__()
            self.at, self.marker, self.task = at, marker, task

        def on_train_batch_end(self, batch, logs=None):
            if self.task == 1 and self.trainer.iters_fit == self.at and not self.marker.exists():
                self.marker.touch()
                os._exit(1)

    # Every worker holds the same arrays; each serves its rows of every global batch.
    rng = np.random.default_rng(0)
    x = rng.normal(size=(100, 6)).astype("float32")
    y = (x[:, 0] - x[:, 2] > 0).astype("float32")
    scope = strategy.scope() if strategy is not None else tf.name_scope("one_device")
    with scope:  # the model's variables are the strategy's
        keras.utils.set_random_seed(1)
        model = keras.Sequential([
            keras.Input((6,)),
            keras.layers.Dense(8, activation="relu"),
            keras.layers.Dense(1, activation="sigmoid"),
        ])  # fmt: skip
        model.compile(keras.optimizers.Adam(0.02), "binary_crossentropy", metrics=["accuracy"])
    task = strategy.cluster_resolver.task_id if strategy is not None else 0
    # Every worker passes the same callbacks: the chief's checkpoint holds their states.
    callbacks = []
    if config["fail_once_at"]:
        marker = Path(config["logs_dir"]) / "failed-once"
        callbacks.append(FailOnce(config["fail_once_at"], marker, task))
    tg = TrainGenerator(
        model,
        DataGenerator(data=x, labels=y, batch_size=12, shuffle="samples", seed=5),
        DataGenerator(data=x[:30], labels=y[:30], batch_size=12),
        epochs=config["epochs"],
        strategy=strategy,
        logs_dir=config["logs_dir"],  # the chief writes it; the others write temporary folders
        checkpoint_freq={"batch": 3},
        resume=config["resume"],
        callbacks=callbacks,
        iter_verbosity=0,
    )
    if not task:
        print(f"START {tg.iters_fit}", flush=True)  # > 0: this run resumed a checkpoint
    tg.train()
    if not task and config["weights_out"]:
        np.savez(config["weights_out"], *model.get_weights())
    if not task:
        print(f"DONE {tg.iters_fit} {tg.val_history['loss'][-1]:.6f} {tg.run_dir}", flush=True)


def train_loop_per_worker(config: dict) -> None:
    """What each Ray worker runs: Ray has set TF_CONFIG, so the strategy finds the cluster."""
    import tensorflow as tf

    # First, before any other TensorFlow call: the strategy joins the cluster.
    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    train(config, strategy)


def run_on_ray(args: argparse.Namespace) -> None:
    import ray
    from ray.train import FailureConfig, RunConfig, ScalingConfig
    from ray.train.tensorflow import TensorflowTrainer

    if args.address:
        ray.init(address=args.address)
    else:  # a Ray on this machine: a CPU per worker, no dashboard
        temp_dir = os.path.abspath(args.ray_temp_dir) if args.ray_temp_dir else None
        ray.init(num_cpus=args.workers, include_dashboard=False, _temp_dir=temp_dir)
    config = {
        "epochs": args.epochs,
        # absolute: Ray's worker processes do not share the driver's working folder
        "logs_dir": os.path.abspath(args.logs_dir),
        # A worker group Ray starts again must continue the run, not start another one.
        "resume": args.resume or args.max_failures != 0,
        "fail_once_at": args.fail_once_at,
        "weights_out": os.path.abspath(args.weights_out) if args.weights_out else "",
    }
    trainer = TensorflowTrainer(
        train_loop_per_worker,
        train_loop_config=config,
        scaling_config=ScalingConfig(num_workers=args.workers, use_gpu=False),
        run_config=RunConfig(
            name="ray",
            storage_path=os.path.abspath(args.storage_path or args.logs_dir),  # Ray's own
            failure_config=FailureConfig(max_failures=args.max_failures),
        ),
    )
    trainer.fit()  # raises when the run fails more often than max_failures allows
    ray.shutdown()


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    started = time.monotonic()
    if args.single_device:
        train({**vars(args), "fail_once_at": 0})
    else:
        run_on_ray(args)
    print(f"WALL {time.monotonic() - started:.1f} s", flush=True)


if __name__ == "__main__":
    sys.exit(main())
